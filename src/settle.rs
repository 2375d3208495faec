//! Riding out AWS's eventual consistency right after a create: the call that follows a create
//! and names the new resource fails for a few seconds with "not found" until the create has
//! propagated through AWS. [`Settle`] is one object registered on every client twice: as an
//! interceptor it remembers what this run created (ids from the replies of Create* calls), and as
//! a retry classifier it marks exactly those "not found" errors transient, so the SDK's standard
//! retry strategy retries them with its exponential backoff. A genuinely wrong id (one this run
//! did not just create) is not retried and fails at once with AWS's code and message.
//!
//! The behaviour is documented by AWS ("Eventual consistency in the Amazon EC2 API": right after
//! a create, calls naming the new resource may fail with `Invalid*.NotFound`; retry with
//! exponential backoff). terraform-provider-aws rides out the same errors: its EC2 resources
//! retry them for `ec2PropagationTimeout`, 5 minutes (internal/service/ec2/wait.go; e.g.
//! AssociateAddress on `InvalidAllocationID.NotFound`, "a newly allocated address may not be
//! visible yet"); ECS's `retryClusterCreate` (internal/service/ecs/cluster.go) retries "Unable to
//! assume the service linked role" for its two-minute `propagationTimeout` (ecs/consts.go), and
//! its `retryServiceCreate` (internal/service/ecs/service.go, `propagationTimeout` plus 2 minutes)
//! covers `ClusterNotFoundException` and "does not have an associated load balancer". deckhand
//! bounds all of them by two minutes ([`WINDOW`]).
//!
//! The same goes for errors that follow other events of the run, each retried by
//! terraform-provider-aws too (cited where each is classified): DescribeCertificate's
//! `ResourceNotFoundException` right after RequestCertificate; `CertificateNotFound` on
//! CreateListener/ModifyListener with a certificate just issued; RegisterScalableTarget's
//! `ValidationException` ("ECS service doesn't exist", "Unable to assume IAM role") right after the
//! service or a role; PutScalingPolicy's `ObjectNotFoundException`/`FailedResourceAccessException`
//! right after RegisterScalableTarget; DeleteCluster's `ClusterContains*`/`UpdateInProgressException`
//! after the services went INACTIVE; DeleteRouteTable's `DependencyViolation` after
//! DeleteVpcEndpoints (these two for [`RELEASE_WINDOW`]). Their retries have their own budget, not the
//! service's shared retry tokens (see [`own_budget`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_smithy_runtime::client::retries::TokenBucket;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, FinalizerInterceptorContextRef, InterceptorContext, Output,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_runtime_api::client::retries::classifiers::{ClassifyRetry, RetryAction};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use aws_smithy_xml::decode::{Document, ScopedDecoder, try_data};
use serde::Deserialize;

/// How long after a create AWS may still answer "not found" for it (terraform's
/// `propagationTimeout`); retries stop once the create is older than this (at the run's time
/// scale: see [`Settle::new`]).
pub use crate::timing::SETTLE_WINDOW as WINDOW;

/// Attempts allowed to a request failing with a settling error: with the standard strategy's
/// backoff (1 s doubling, capped at 20 s, jittered: 10 s on average once capped) more than
/// [`RELEASE_WINDOW`] can take, so the window, not the count, ends the retries. They cost nothing
/// from the service's shared retry budget (see [`own_budget`]). Every other error keeps the
/// clients' usual attempts.
const SETTLING_ATTEMPTS: u32 = 70;

/// How long after a deletion what it used may still be held (see the table in `timing`).
pub use crate::timing::RELEASE_WINDOW;

/// ECS's answers to DeleteCluster while the cluster still counts a stopping task or service.
const CLUSTER_NOT_EMPTY_YET: &[&str] =
    &["ClusterContainsServicesException", "ClusterContainsTasksException", "UpdateInProgressException"];

/// EC2 "not found" codes whose message names the id that is not visible yet.
const EC2_NOT_YET_VISIBLE: &[&str] = &[
    "InvalidGroup.NotFound",
    "InvalidSubnetID.NotFound",
    "InvalidAllocationID.NotFound",
    "InvalidRouteTableID.NotFound",
    "InvalidNatGatewayID.NotFound",
    "InvalidVpcID.NotFound",
    // terraform-provider-aws's attachInternetGateway retries it right after the create.
    "InvalidInternetGatewayID.NotFound",
];

/// What this run created, and when: shared by every client of one run.
#[derive(Debug, Clone)]
pub struct Settle(Arc<Mutex<Memory>>);

impl Default for Settle {
    fn default() -> Self {
        Settle::new(WINDOW)
    }
}

impl Settle {
    /// A memory whose creates settle within `window` (the run's [`WINDOW`], scaled).
    pub fn new(window: Duration) -> Settle {
        let release_window = window.mul_f64(RELEASE_WINDOW.as_secs_f64() / WINDOW.as_secs_f64());
        Settle(Arc::new(Mutex::new(Memory { window, release_window, ..Memory::default() })))
    }
}

#[derive(Debug, Default)]
struct Memory {
    /// How long after a create its "not found" errors are retried.
    window: Duration,
    /// EC2 ids (sg-, subnet-, eipalloc-, rtb-, nat-, vpc-, igw-) returned by this run's creates.
    created: HashMap<String, Instant>,
    /// This run's last CreateCluster.
    cluster_created: Option<Instant>,
    /// This run's last change to what attaches a target group to a load balancer (a target
    /// group, listener or rule created or modified).
    load_balancing_changed: Option<Instant>,
    /// When ECS first said its service-linked role could not be assumed in this run.
    linked_role_missing_since: Option<Instant>,
    /// How long after a deletion what it used may still be held (see [`RELEASE_WINDOW`]), at the
    /// run's scale.
    release_window: Duration,
    /// When a certificate this run requested was last seen ISSUED.
    certificate_issued: Option<Instant>,
    /// This run's last CreateService or UpdateService.
    service_changed: Option<Instant>,
    /// This run's last CreateRole.
    role_created: Option<Instant>,
    /// This run's last RegisterScalableTarget.
    scalable_target_registered: Option<Instant>,
    /// When this run last saw a service INACTIVE (deleted; its tasks may still be stopping).
    service_inactive: Option<Instant>,
    /// This run's last DeleteVpcEndpoints (asynchronous: the endpoints go on using their route
    /// tables while they are deleting).
    endpoints_deleted: Option<Instant>,
}

impl Memory {
    /// Remembers the events after which AWS answers "not found" or "in use" for a while: a
    /// certificate requested or issued, a service or role changed, a scalable target registered,
    /// a service gone INACTIVE, VPC endpoints deleted.
    fn remember_event(&mut self, output: &Output, now: Instant) {
        use aws_sdk_acm::operation as acm;
        use aws_sdk_applicationautoscaling::operation as autoscaling;
        use aws_sdk_ecs::operation as ecs;
        if let Some(out) = output.downcast_ref::<acm::request_certificate::RequestCertificateOutput>() {
            if let Some(arn) = out.certificate_arn() {
                self.created.insert(arn.to_string(), now);
            }
        } else if let Some(out) = output.downcast_ref::<acm::describe_certificate::DescribeCertificateOutput>() {
            let certificate = out.certificate();
            let arn = certificate.and_then(|c| c.certificate_arn()).unwrap_or_default();
            let issued = certificate.and_then(|c| c.status()) == Some(&aws_sdk_acm::types::CertificateStatus::Issued);
            // Issued just now, as far as this run knows: one it requested (a certificate issued
            // long ago is visible to ELB).
            if issued && self.created.contains_key(arn) {
                self.created.insert(arn.to_string(), now);
                self.certificate_issued = Some(now);
            }
        } else if output.downcast_ref::<ecs::create_service::CreateServiceOutput>().is_some()
            || output.downcast_ref::<ecs::update_service::UpdateServiceOutput>().is_some()
        {
            self.service_changed = Some(now);
        } else if output.downcast_ref::<aws_sdk_iam::operation::create_role::CreateRoleOutput>().is_some() {
            self.role_created = Some(now);
        } else if output.downcast_ref::<autoscaling::register_scalable_target::RegisterScalableTargetOutput>().is_some()
        {
            self.scalable_target_registered = Some(now);
        } else if let Some(out) = output.downcast_ref::<ecs::describe_services::DescribeServicesOutput>() {
            if out.services().iter().any(|s| s.status() == Some("INACTIVE")) {
                self.service_inactive = Some(now);
            }
        } else if output
            .downcast_ref::<aws_sdk_ec2::operation::delete_vpc_endpoints::DeleteVpcEndpointsOutput>()
            .is_some()
        {
            self.endpoints_deleted = Some(now);
        }
    }
}

/// Why an error is AWS still propagating something this run just did.
#[derive(Debug)]
struct Settling {
    code: String,
    /// What is not visible yet, and since when: "sg-0abc was created by this run 3 s ago".
    what: String,
}

impl Settle {
    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Remembers the ids and events of a successful reply.
    fn remember(&self, output: &Output) {
        use aws_sdk_ec2::operation as ec2;
        use aws_sdk_elasticloadbalancingv2::operation as elbv2;
        let now = Instant::now();
        let id = if let Some(out) = output.downcast_ref::<ec2::create_security_group::CreateSecurityGroupOutput>() {
            out.group_id()
        } else if let Some(out) = output.downcast_ref::<ec2::create_subnet::CreateSubnetOutput>() {
            out.subnet().and_then(|s| s.subnet_id())
        } else if let Some(out) = output.downcast_ref::<ec2::allocate_address::AllocateAddressOutput>() {
            out.allocation_id()
        } else if let Some(out) = output.downcast_ref::<ec2::create_route_table::CreateRouteTableOutput>() {
            out.route_table().and_then(|t| t.route_table_id())
        } else if let Some(out) = output.downcast_ref::<ec2::create_nat_gateway::CreateNatGatewayOutput>() {
            out.nat_gateway().and_then(|n| n.nat_gateway_id())
        } else if let Some(out) = output.downcast_ref::<ec2::create_vpc::CreateVpcOutput>() {
            out.vpc().and_then(|v| v.vpc_id())
        } else if let Some(out) = output.downcast_ref::<ec2::create_internet_gateway::CreateInternetGatewayOutput>() {
            out.internet_gateway().and_then(|g| g.internet_gateway_id())
        } else {
            None
        };
        let mut memory = self.memory();
        if let Some(id) = id.filter(|id| !id.is_empty()) {
            memory.created.insert(id.to_string(), now);
        } else if output.downcast_ref::<aws_sdk_ecs::operation::create_cluster::CreateClusterOutput>().is_some() {
            memory.cluster_created = Some(now);
        } else if output.downcast_ref::<elbv2::create_target_group::CreateTargetGroupOutput>().is_some()
            || output.downcast_ref::<elbv2::create_listener::CreateListenerOutput>().is_some()
            || output.downcast_ref::<elbv2::modify_listener::ModifyListenerOutput>().is_some()
            || output.downcast_ref::<elbv2::create_rule::CreateRuleOutput>().is_some()
            || output.downcast_ref::<elbv2::modify_rule::ModifyRuleOutput>().is_some()
        {
            memory.load_balancing_changed = Some(now);
        } else {
            memory.remember_event(output, now);
        }
    }

    /// Whether the failed attempt in `ctx` is AWS still propagating what this run just did.
    fn settling(&self, ctx: &InterceptorContext) -> Option<Settling> {
        if !matches!(ctx.output_or_error(), Some(Err(e)) if e.is_operation_error()) {
            return None;
        }
        let (code, message) = error_code_and_message(ctx.response()?.body().bytes()?)?;
        let now = Instant::now();
        let mut memory = self.memory();
        let window = memory.window;
        let age = |at: Option<Instant>| at.map(|at| now - at).filter(|age| *age < window).map(|age| age.as_secs());
        let what = if EC2_NOT_YET_VISIBLE.contains(&code.as_str()) {
            // EC2 names the id in the message: "The security group 'sg-0abc' does not exist".
            let (id, at) = memory.created.iter().find(|(id, _)| message.contains(id.as_str()))?;
            format!("{id} was created by this run {} s ago", age(Some(*at))?)
        } else if code == "InvalidParameterException" && message.contains("Unable to assume the service linked role") {
            // An account's first ECS call creates the AWSServiceRoleForECS role; IAM takes a
            // while to make it assumable, and until then CreateCluster/CreateService fail.
            let since = *memory.linked_role_missing_since.get_or_insert(now);
            format!("ECS is still creating its service-linked role for this account (for {} s)", age(Some(since))?)
        } else if code == "InvalidParameterException" && message.contains("does not have an associated load balancer") {
            // ECS learns of a target group's new listener a few seconds after ELB has it.
            format!("this run attached the target group {} s ago", age(memory.load_balancing_changed)?)
        } else if code == "ClusterNotFoundException" {
            // A new cluster is not visible to CreateService for a few seconds.
            format!("this run created the cluster {} s ago", age(memory.cluster_created)?)
        } else if code == "ResourceNotFoundException" && message.contains("arn:aws:acm:") {
            // DescribeCertificate right after RequestCertificate: ACM names the ARN it cannot find
            // (terraform-provider-aws's acm/certificate.go: `waitCertificateDomainValidationsAvailable`
            // keeps polling while `statusCertificateDomainValidationsAvailable` finds no certificate).
            let (arn, at) = memory.created.iter().find(|(id, _)| message.contains(id.as_str()))?;
            format!("this run requested {arn} {} s ago", age(Some(*at))?)
        } else if code == "CertificateNotFound" {
            // CreateListener/ModifyListener with a certificate ACM has just issued: ELB sees it a
            // few seconds later (terraform-provider-aws's elbv2/listener.go retries
            // CertificateNotFoundException on both: `retryListenerCreate` and
            // `resourceListenerUpdate`, for the resource's create and update timeouts).
            format!("a certificate of this run was issued {} s ago", age(memory.certificate_issued)?)
        } else if code == "ValidationException"
            && (message.contains("ECS service doesn't exist") || message.contains("Unable to assume IAM role"))
        {
            // RegisterScalableTarget right after the service or its roles: Application Auto
            // Scaling reads them through ECS and IAM, both eventually consistent
            // (terraform-provider-aws's appautoscaling/target.go: `registerScalableTarget` retries
            // both ValidationException messages for `propagationTimeout`).
            let changed = age(memory.service_changed).or(age(memory.role_created))?;
            format!("this run changed the service or created a role {changed} s ago")
        } else if code == "ObjectNotFoundException" || code == "FailedResourceAccessException" {
            // PutScalingPolicy right after RegisterScalableTarget: the target is not visible yet
            // (terraform-provider-aws's appautoscaling/policy.go retries PutScalingPolicy for
            // `propagationTimeout` on ObjectNotFoundException, and on FailedResourceAccessException:
            // any on update, on create those saying "is not authorized to perform", "Rate
            // exceeded" or "token included in the request is invalid", IAM still propagating).
            format!("this run registered the scalable target {} s ago", age(memory.scalable_target_registered)?)
        } else if CLUSTER_NOT_EMPTY_YET.contains(&code.as_str()) {
            // DeleteCluster after the services went INACTIVE, while their tasks still stop.
            let since = memory.service_inactive.map(|at| now - at).filter(|age| *age < memory.release_window)?;
            format!("this run's services went INACTIVE {} s ago and their tasks may still be stopping", since.as_secs())
        } else if code == "DependencyViolation" && message.contains("rtb-") {
            // DeleteRouteTable after DeleteVpcEndpoints: endpoints are deleted asynchronously and
            // keep their route table entries until they are gone.
            let since = memory.endpoints_deleted.map(|at| now - at).filter(|age| *age < memory.release_window)?;
            format!("this run deleted VPC endpoints {} s ago", since.as_secs())
        } else {
            return None;
        };
        Some(Settling { code, what })
    }
}

/// The AWS error code and message of an error reply: the JSON protocols' `{"__type", "message"}`
/// or the query protocols' XML (EC2's `<Response><Errors><Error>`, the others'
/// `<ErrorResponse><Error>`).
fn error_code_and_message(body: &[u8]) -> Option<(String, String)> {
    if body.trim_ascii_start().starts_with(b"{") {
        /// A JSON protocol's error body.
        #[derive(Deserialize)]
        struct JsonError {
            #[serde(rename = "__type", alias = "code")]
            code: String,
            #[serde(default, alias = "Message")]
            message: String,
        }
        let JsonError { code, message } = serde_json::from_slice(body).ok()?;
        // "com.amazonaws.ecs#ClusterNotFoundException" or "ClusterNotFoundException:http://..."
        let code = code.rsplit('#').next()?.split(':').next()?;
        Some((code.to_string(), message))
    } else {
        xml_code_and_message(body)
    }
}

/// The `Code` and `Message` of a query protocol's error XML, read with the SDK's XML decoder.
fn xml_code_and_message(body: &[u8]) -> Option<(String, String)> {
    let mut doc = Document::try_from(body).ok()?;
    let mut root = doc.root_element().ok()?;
    let (mut code, mut message) = (None, String::new());
    let mut read = |error: &mut ScopedDecoder| {
        while let Some(mut field) = error.next_tag() {
            let text = try_data(&mut field).map(|t| t.into_owned());
            match field.start_el().local() {
                "Code" => code = text.ok(),
                "Message" => message = text.unwrap_or_default(),
                _ => {}
            }
        }
    };
    while let Some(mut tag) = root.next_tag() {
        match tag.start_el().local() {
            "Errors" => {
                while let Some(mut error) = tag.next_tag() {
                    read(&mut error);
                }
            }
            "Error" => read(&mut tag),
            _ => {}
        }
    }
    Some((code?, message))
}

impl Intercept for Settle {
    fn name(&self) -> &'static str {
        "deckhand::Settle"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Ok(output) = context.output_or_error() {
            self.remember(output);
        }
        Ok(())
    }

    /// Runs after each attempt and before the retry strategy decides: gives a settling request
    /// the attempts its window needs, and logs the retry (`-v`).
    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let settling = self.settling(context.inner());
        own_budget(settling.is_some(), cfg);
        let Some(settling) = settling else {
            return Ok(());
        };
        if let Some(retry) = cfg.load::<RetryConfig>() {
            let retry = retry.clone().with_max_attempts(SETTLING_ATTEMPTS);
            cfg.interceptor_state().store_put(retry);
        }
        let attempt = cfg.load::<RequestAttempts>().map_or(1, |a| a.attempts());
        let (service, operation) =
            cfg.load::<Metadata>().map(|m| (m.service().to_lowercase(), m.name().to_string())).unwrap_or_default();
        tracing::debug!(
            target: "deckhand::aws",
            "{service} {operation} attempt {attempt}: {}, but {}: AWS has not propagated it yet, retrying",
            settling.code,
            settling.what,
        );
        Ok(())
    }
}

/// The shared retry budget of the request's service, kept aside while a settling error is retried.
#[derive(Debug, Clone)]
struct SharedBudget(TokenBucket);

impl Storable for SharedBudget {
    type Storer = StoreReplace<Self>;
}

/// Gives settling retries their own budget. The standard retry strategy takes each retry's cost
/// from a token bucket in the config bag: 500 per retry partition (one per service, global to the
/// process), 10 per transient retry, a permit replaced by the next retry's forgotten for good, 1
/// regenerated per first-attempt success (aws-smithy-runtime 1.10,
/// `client/retries/strategy/standard.rs` and `token_bucket.rs`). A settle episode of 20 retries
/// costs 190, so a few of them in a run would leave nothing for throttling and 5xx retries, which
/// the bucket is for. Settling retries are bounded by their window and [`SETTLING_ATTEMPTS`]
/// instead: before the strategy decides on a settling error, the request's bag gets a bucket that
/// costs nothing (the interceptor state is read before the client's layers); on any other error
/// it gets the service's shared bucket back.
fn own_budget(settling: bool, cfg: &mut ConfigBag) {
    if settling {
        if cfg.load::<SharedBudget>().is_none()
            && let Some(shared) = cfg.load::<TokenBucket>().cloned()
        {
            cfg.interceptor_state().store_put(SharedBudget(shared));
        }
        cfg.interceptor_state().store_put(TokenBucket::unlimited());
    } else if let Some(SharedBudget(shared)) = cfg.load::<SharedBudget>().cloned() {
        cfg.interceptor_state().store_put(shared);
    }
}

impl ClassifyRetry for Settle {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        match self.settling(ctx) {
            Some(_) => RetryAction::transient_error(),
            None => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "deckhand::Settle"
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use aws_smithy_runtime_api::client::interceptors::context::{Error, Input, InterceptorContext};
    use aws_smithy_runtime_api::client::orchestrator::OrchestratorError;
    use aws_smithy_runtime_api::http::Response;
    use aws_smithy_types::body::SdkBody;

    use super::{Settle, WINDOW, error_code_and_message};

    /// A failed attempt whose 400 reply has `body`.
    fn failed(body: &str) -> InterceptorContext {
        let mut ctx = InterceptorContext::new(Input::doesnt_matter());
        ctx.set_response(Response::new(400.try_into().unwrap(), SdkBody::from(body)));
        ctx.set_output_or_error(Err(OrchestratorError::operation(Error::erase(std::io::Error::other("error")))));
        ctx
    }

    fn ec2_error(code: &str, message: &str) -> InterceptorContext {
        failed(&format!(
            "<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors></Response>"
        ))
    }

    #[test]
    fn retries_a_not_found_only_for_an_id_this_run_just_created() {
        let settle = Settle::default();
        let missing = ec2_error("InvalidSubnetID.NotFound", "The subnet ID 'subnet-0new' does not exist");
        assert!(settle.settling(&missing).is_none(), "not created by this run: the user's id is wrong");

        settle.memory().created.insert("subnet-0new".into(), Instant::now());
        assert!(settle.settling(&missing).is_some());
        let other = ec2_error("InvalidSubnetID.NotFound", "The subnet ID 'subnet-0typo' does not exist");
        assert!(settle.settling(&other).is_none(), "another id is still the user's mistake");
        let unrelated = ec2_error("InvalidParameterValue", "subnet-0new is in use");
        assert!(settle.settling(&unrelated).is_none(), "only the listed codes settle");

        settle.memory().created.insert("subnet-0new".into(), Instant::now() - WINDOW - Duration::from_secs(1));
        assert!(settle.settling(&missing).is_none(), "past the window the error is real");
    }

    #[test]
    fn retries_ecs_errors_only_after_this_runs_change() {
        let settle = Settle::default();
        let cluster = failed(r#"{"__type": "ClusterNotFoundException", "message": "Cluster not found."}"#);
        assert!(settle.settling(&cluster).is_none());
        settle.memory().cluster_created = Some(Instant::now());
        assert!(settle.settling(&cluster).is_some());

        let target_group = failed(
            r#"{"__type": "InvalidParameterException", "message": "The target group with targetGroupArn arn:tg does not have an associated load balancer."}"#,
        );
        assert!(settle.settling(&target_group).is_none());
        settle.memory().load_balancing_changed = Some(Instant::now());
        assert!(settle.settling(&target_group).is_some());

        let role = failed(
            r#"{"__type": "InvalidParameterException", "message": "Unable to assume the service linked role. Please verify that the ECS service linked role exists."}"#,
        );
        assert!(settle.settling(&role).is_some(), "the first time: the role is being created");
        settle.memory().linked_role_missing_since = Some(Instant::now() - WINDOW - Duration::from_secs(1));
        assert!(settle.settling(&role).is_none(), "still missing after the window: give up");
    }

    #[test]
    fn retries_certificate_scaling_and_deletion_errors_only_after_this_runs_event() {
        let settle = Settle::default();
        let arn = "arn:aws:acm:us-west-2:1:certificate/new";
        let describe = failed(&format!(
            r#"{{"__type": "ResourceNotFoundException", "message": "Could not find certificate {arn}."}}"#
        ));
        assert!(settle.settling(&describe).is_none(), "a certificate this run did not request");
        settle.memory().created.insert(arn.into(), Instant::now());
        assert!(settle.settling(&describe).is_some());

        let elb = "<ErrorResponse><Error><Type>Sender</Type><Code>CertificateNotFound</Code><Message>Certificate not found</Message></Error></ErrorResponse>";
        assert!(settle.settling(&failed(elb)).is_none(), "requested, not issued yet: ELB's answer is real");
        settle.memory().certificate_issued = Some(Instant::now());
        assert!(settle.settling(&failed(elb)).is_some());

        let no_service =
            failed(r#"{"__type": "ValidationException", "message": "ECS service doesn't exist: service/myapp/web"}"#);
        assert!(settle.settling(&no_service).is_none());
        settle.memory().service_changed = Some(Instant::now());
        assert!(settle.settling(&no_service).is_some());
        let other =
            failed(r#"{"__type": "ValidationException", "message": "Maximum capacity cannot be less than minimum"}"#);
        assert!(settle.settling(&other).is_none(), "another validation error is the script's");

        let no_target = failed(r#"{"__type": "ObjectNotFoundException", "message": "No scalable target registered"}"#);
        assert!(settle.settling(&no_target).is_none());
        settle.memory().scalable_target_registered = Some(Instant::now());
        assert!(settle.settling(&no_target).is_some());

        let tasks = failed(
            r#"{"__type": "ClusterContainsTasksException", "message": "The Cluster cannot be deleted while Tasks are active."}"#,
        );
        assert!(settle.settling(&tasks).is_none(), "no service of this run went INACTIVE");
        settle.memory().service_inactive = Some(Instant::now() - WINDOW - Duration::from_secs(1));
        assert!(settle.settling(&tasks).is_some(), "tasks may stop for longer than the usual window");
        settle.memory().service_inactive = Some(Instant::now() - super::RELEASE_WINDOW - Duration::from_secs(1));
        assert!(settle.settling(&tasks).is_none());

        let table = ec2_error("DependencyViolation", "The routeTable 'rtb-1' has dependencies and cannot be deleted.");
        assert!(settle.settling(&table).is_none());
        settle.memory().endpoints_deleted = Some(Instant::now());
        assert!(settle.settling(&table).is_some());
        let group = ec2_error("DependencyViolation", "resource sg-1 has a dependent object");
        assert!(settle.settling(&group).is_none(), "security groups and subnets wait in destroy itself");
    }

    #[test]
    fn settling_retries_take_nothing_from_the_service_s_shared_retry_budget() {
        use aws_smithy_runtime::client::retries::TokenBucket;
        use aws_smithy_types::config_bag::{ConfigBag, Layer};

        // The service's shared bucket, drained (by earlier retries of this process).
        let drained = TokenBucket::new(0);
        let mut layer = Layer::new("token_bucket_partition");
        layer.store_put(drained);
        let mut cfg = ConfigBag::base();
        cfg.push_layer(layer);
        let can_retry = |cfg: &ConfigBag| !cfg.load::<TokenBucket>().unwrap().is_empty();
        assert!(!can_retry(&cfg));
        super::own_budget(true, &mut cfg);
        assert!(can_retry(&cfg), "a settling error is retried from its own budget");
        super::own_budget(true, &mut cfg);
        super::own_budget(false, &mut cfg);
        assert!(!can_retry(&cfg), "any other error is paid from the shared bucket again");
        super::own_budget(false, &mut cfg);
        assert!(!can_retry(&cfg));
    }

    #[test]
    fn reads_ec2_and_json_errors() {
        let ec2 = br"<Response><Errors><Error><Code>InvalidGroup.NotFound</Code><Message>The security group 'sg-1' does not exist</Message></Error></Errors><RequestID>x</RequestID></Response>";
        assert_eq!(
            error_code_and_message(ec2),
            Some(("InvalidGroup.NotFound".into(), "The security group 'sg-1' does not exist".into()))
        );
        let ecs = br#"{"__type": "com.amazonaws.ecs#ClusterNotFoundException", "message": "Cluster not found."}"#;
        assert_eq!(error_code_and_message(ecs), Some(("ClusterNotFoundException".into(), "Cluster not found.".into())));
        assert_eq!(error_code_and_message(b"not an error"), None);
        let elb = br"<ErrorResponse><Error><Type>Sender</Type><Code>TargetGroupNotFound</Code><Message>One or more target groups not found</Message></Error><RequestId>x</RequestId></ErrorResponse>";
        let found = error_code_and_message(elb);
        assert_eq!(found, Some(("TargetGroupNotFound".into(), "One or more target groups not found".into())));
    }
}
