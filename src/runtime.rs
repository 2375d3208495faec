//! The tokio runtime and the AWS connection: region, profile, endpoint, retries, call counting.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

use crate::error::{Error, Result};
use crate::settle::Settle;
use crate::timing::{Clock, Rehearsal, SDK_RETRY_PACE, SETTLE_FLOOR, SETTLE_WINDOW, TimeScale};

/// Where deckhand sends its AWS requests.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// Region override (`--region`); else the standard chain.
    pub region: Option<String>,
    /// Profile override (`--profile`); else the standard chain.
    pub profile: Option<String>,
    /// Endpoint override (`--endpoint-url`; `AWS_ENDPOINT_URL` is honoured by the chain itself).
    pub endpoint_url: Option<String>,
    /// Use dummy static credentials (for the local emulator).
    pub dummy_credentials: bool,
    /// The time scale to use when `DECKHAND_TIME_SCALE` is not set (`--local`'s fast default);
    /// only ever in effect with an endpoint URL (see [`TimeScale::resolve`]).
    pub time_scale: Option<TimeScale>,
}

/// The AWS clients of one run, sharing one config, one runtime and one call counter.
#[derive(Debug, Clone)]
pub struct Aws {
    runtime: Arc<tokio::runtime::Runtime>,
    /// EC2: VPCs, subnets, security groups.
    pub ec2: aws_sdk_ec2::Client,
    /// Elastic Load Balancing v2: ALBs, target groups, listeners.
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    /// IAM: roles and policies.
    pub iam: aws_sdk_iam::Client,
    /// CloudWatch: metric alarms (a service's deployment rolls back on them).
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    /// CloudWatch Logs: log groups.
    pub logs: aws_sdk_cloudwatchlogs::Client,
    /// ECS: clusters, task definitions, services.
    pub ecs: aws_sdk_ecs::Client,
    /// ECR: image repositories.
    pub ecr: aws_sdk_ecr::Client,
    /// ACM: certificates validated by DNS.
    pub acm: aws_sdk_acm::Client,
    /// Route 53: hosted zones (looked up, never created) and record sets.
    pub route53: aws_sdk_route53::Client,
    /// Application Auto Scaling: ECS services' scalable targets and scaling policies.
    pub autoscaling: aws_sdk_applicationautoscaling::Client,
    /// Resource Groups Tagging API: a stack's resources found by tag (load balancers, target groups).
    pub tagging: aws_sdk_resourcegroupstagging::Client,
    /// SSM Parameter Store: the stack lock, and the parameters containers read as secrets.
    pub ssm: aws_sdk_ssm::Client,
    /// Secrets Manager: the secrets containers read (described, never read by deckhand).
    pub secretsmanager: aws_sdk_secretsmanager::Client,
    /// The region in use.
    pub region: String,
    /// The endpoint every request goes to when one is configured (`--endpoint-url`,
    /// AWS_ENDPOINT_URL), else `None` (each service's regional endpoint).
    pub endpoint_url: Option<String>,
    calls: Arc<CallCounter>,
    clock: Arc<Clock>,
}

impl Aws {
    /// Loads the AWS config for `target` (the standard chain plus overrides) and builds the clients.
    pub fn connect(target: &Target) -> Result<Aws> {
        process_start();
        let runtime = Arc::new(
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Error::io("starting the async runtime", e))?,
        );
        let config = runtime.block_on(load_config(target));
        let region = config.region().map(|r| r.to_string()).ok_or_else(|| {
            Error::conflict(
                "no AWS region is configured",
                Some("pass --region, set AWS_REGION, or set a region in the profile"),
            )
        })?;
        // The time scale is honoured only against an endpoint URL (--local, --endpoint-url,
        // AWS_ENDPOINT_URL or a profile's endpoint_url): never against AWS itself.
        let clock = Arc::new(Clock::new(TimeScale::resolve(config.endpoint_url().is_some(), target.time_scale)?));
        let calls = Arc::new(CallCounter { clock: clock.clone(), ..CallCounter::default() });
        // One memory of this run's creates for all clients: an id EC2 returned is retried on ECS too.
        let settle = Settle::new(clock.scaled(SETTLE_WINDOW).max(SETTLE_FLOOR).min(SETTLE_WINDOW));
        // The SDK's retries pause at the same scale, so that they still happen within the window.
        let retry = RetryConfig::standard()
            .with_max_attempts(MAX_ATTEMPTS)
            .with_initial_backoff(clock.scaled(SDK_RETRY_PACE.first))
            .with_max_backoff(clock.scaled(SDK_RETRY_PACE.max));
        macro_rules! client {
            ($sdk:ident) => {{
                let conf = $sdk::config::Builder::from(&config)
                    .retry_config(retry.clone())
                    .interceptor(CallLogger(calls.clone()))
                    .interceptor(settle.clone())
                    .retry_classifier(settle.clone())
                    .build();
                $sdk::Client::from_conf(conf)
            }};
        }
        Ok(Aws {
            ec2: client!(aws_sdk_ec2),
            elbv2: client!(aws_sdk_elasticloadbalancingv2),
            iam: client!(aws_sdk_iam),
            logs: client!(aws_sdk_cloudwatchlogs),
            ecs: client!(aws_sdk_ecs),
            ecr: client!(aws_sdk_ecr),
            tagging: client!(aws_sdk_resourcegroupstagging),
            acm: client!(aws_sdk_acm),
            route53: client!(aws_sdk_route53),
            autoscaling: client!(aws_sdk_applicationautoscaling),
            ssm: client!(aws_sdk_ssm),
            cloudwatch: client!(aws_sdk_cloudwatch),
            secretsmanager: client!(aws_sdk_secretsmanager),
            region,
            endpoint_url: config.endpoint_url().map(str::to_string),
            calls,
            clock,
            runtime,
        })
    }

    /// Runs `future` to completion on the run's one runtime (called from the engine thread).
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Starts `future` beside the run's work on the run's runtime (current-thread: it makes
    /// progress while the run awaits AWS or a wait), e.g. the stack lock's renewals.
    pub fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<()>
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.runtime.spawn(future)
    }

    /// How many AWS requests were sent so far.
    pub fn calls(&self) -> usize {
        self.calls.sent.load(Ordering::Relaxed)
    }

    /// The run's clock: its time scale and the waits it recorded.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// With a time scale in effect, what the run so far would take on AWS.
    pub fn rehearsal(&self) -> Option<Rehearsal> {
        self.clock.scale()?;
        Some(Rehearsal::of(&self.clock, self.calls.rounds.load(Ordering::Relaxed)))
    }
}

/// Attempts per request (the standard retry strategy's default is 3).
const MAX_ATTEMPTS: u32 = 5;

async fn load_config(target: &Target) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS));
    if let Some(region) = &target.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(profile) = &target.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(url) = &target.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if target.dummy_credentials {
        loader = loader.credentials_provider(aws_sdk_ec2::config::Credentials::new(
            "test",
            "test",
            None,
            None,
            "deckhand-local",
        ));
    }
    loader.load().await
}

/// When deckhand started: its `main` asks first (and [`Aws::connect`], for library callers).
pub(crate) fn process_start() -> Instant {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *START.get_or_init(Instant::now)
}

/// The run's requests: how many were sent, and in how many rounds outside waits (a request sent
/// while none is in flight starts a round; requests sent together share it), for the rehearsal.
#[derive(Debug, Default)]
struct CallCounter {
    sent: AtomicUsize,
    in_flight: AtomicUsize,
    rounds: AtomicUsize,
    clock: Arc<Clock>,
}

/// Counts every request and logs service, operation and duration at debug level (`-v`).
#[derive(Debug)]
struct CallLogger(Arc<CallCounter>);

#[derive(Debug, Clone)]
struct StartedAt(Instant);

impl Storable for StartedAt {
    type Storer = StoreReplace<Self>;
}

impl Intercept for CallLogger {
    fn name(&self) -> &'static str {
        "deckhand::CallLogger"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().store_put(StartedAt(Instant::now()));
        // The lock's renewals run beside the run's work: neither its calls nor its rounds.
        if crate::lock_calls::renewing() {
            return Ok(());
        }
        let calls = &self.0;
        calls.sent.fetch_add(1, Ordering::Relaxed);
        // A wait's polls are part of the wait's time, not rounds of their own.
        if calls.in_flight.fetch_add(1, Ordering::Relaxed) == 0 && !calls.clock.waiting() {
            calls.rounds.fetch_add(1, Ordering::Relaxed);
        }
        // A run whose stack lock was taken from it sends nothing more (see lock.rs). After the
        // count: the finalizer below runs for a refused request too.
        match crate::lock_calls::refusal() {
            Some(why) => Err(why.into()),
            None => Ok(()),
        }
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if !crate::lock_calls::renewing() {
            self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
        let started = cfg.load::<StartedAt>().map(|s| s.0);
        let elapsed = started.map(|s| s.elapsed().as_millis()).unwrap_or(0);
        // When it was sent, from the process's start: calls that wait on each other show as waves.
        let sent = started.map(|s| s.saturating_duration_since(process_start()).as_millis()).unwrap_or(0);
        let (service, operation) =
            cfg.load::<Metadata>().map(|m| (m.service().to_lowercase(), m.name().to_string())).unwrap_or_default();
        let outcome = match context.output_or_error() {
            Some(Ok(_)) => "ok",
            Some(Err(_)) => "error",
            None => "none",
        };
        tracing::debug!(target: "deckhand::aws", "{service} {operation} {outcome} in {elapsed} ms (sent at {sent} ms)");
        Ok(())
    }
}
