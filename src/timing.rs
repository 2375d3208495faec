//! Time in deckhand: every duration it waits, polls or tolerates, in one table with the real-AWS
//! behaviour each rests on; the time scale (`DECKHAND_TIME_SCALE`) that shrinks them all against
//! an emulator; and the run's [`Clock`], which records the time spent waiting so that a scaled run
//! can say how long it would take on AWS (the rehearsal line).
//!
//! The durations below are real AWS's. Code never sleeps or times out on them directly: the
//! polling helper (`crate::poll`) and the other users go through [`TimeScale`], which is 1 unless
//! deckhand talks to an endpoint URL (an emulator) and a scale was set.

use std::sync::Mutex;
use std::sync::PoisonError;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// The setting that scales modelled time (0 < s <= 1), read by deckhand and by the emulator alike.
pub const TIME_SCALE_ENV: &str = "DECKHAND_TIME_SCALE";

/// The shortest pause between two polls, however small the scale: below it a wait would only
/// flood the emulator with reads (at the test scale 0.005 it is 10 s of modelled time).
pub const POLL_FLOOR: Duration = Duration::from_millis(50);

/// What one round of AWS calls (calls sent together, waited for together) takes on real AWS in
/// the rehearsal's estimate: a typical round trip to a region's API endpoint plus the service's
/// own work for a Describe or Create call (observed 30-100 ms from within the region).
pub const CALL_LATENCY: Duration = Duration::from_millis(60);

// The table: every duration deckhand waits for, polls at, or tolerates, at its real-AWS value.

/// How often a long wait without a terminal says it is still waiting (a line per change, and at
/// least this often otherwise).
pub const PROGRESS_EVERY: Duration = Duration::from_secs(30);

/// `--lock-timeout`'s default: how long a run waits for another run's lock. Most applies that are
/// finishing release it within a minute; longer waits are asked for explicitly.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a run renews the lock it holds (rewrites its value with the renewal's time, after
/// checking that the lock is still its own; see `lock.rs`). A renewal is two SSM calls; SSM's
/// default PutParameter throughput (3 per second per account) leaves room for many runs.
pub const LOCK_RENEW_EVERY: Duration = Duration::from_secs(60);
/// A lock not renewed for this long is stale, and the next run takes it over: its run died
/// without releasing it (kill -9, a lost machine, a cancelled CI job). Ten renewal periods: a few
/// missed renewals (a slow SSM, a throttled call) do not make it stale, and neither does a clock
/// off by up to 5 minutes (the most SigV4 accepts) between the holder's host and another.
pub const LOCK_STALE_AFTER: Duration = Duration::from_secs(600);
/// The shortest a scaled [`LOCK_STALE_AFTER`] gets: a scaled run's own work (deckhand's and the
/// emulator's) is not scaled, and the renewals run only while deckhand awaits AWS, so between
/// two of them may pass a second or two of wall time. The other lock periods keep their ratio to
/// the stale period under this floor (see `lock.rs`).
pub const LOCK_STALE_FLOOR: Duration = Duration::from_secs(5);
/// After overwriting a stale lock, how long a run lets pass before it reads the lock again to see
/// whether it won: long enough for a contender that read the stale lock at the same moment to
/// have written its own value too (one SSM call, well under a second), so that the re-read sees
/// the last write.
pub const LOCK_TAKEOVER_SETTLE: Duration = Duration::from_secs(10);
/// Polling another run's lock: start fast (a run that is just finishing), then at most every 10 s
/// (other runs apply for minutes).
pub const LOCK_PACE: Pace = Pace::new(500, 10_000);

/// How long after a create AWS may still answer "not found" for it (terraform-provider-aws's
/// `propagationTimeout`, see `settle.rs`).
pub const SETTLE_WINDOW: Duration = Duration::from_secs(120);
/// The shortest a scaled [`SETTLE_WINDOW`] gets: a scaled run's own work between a create and the
/// request naming it (other calls, polls at [`POLL_FLOOR`]) is not scaled, so the create may be
/// seconds old in wall time when a dependent request names it (a subnet created before the NAT
/// gateway wait, associated after it).
pub const SETTLE_FLOOR: Duration = Duration::from_secs(10);

/// How long after a deletion what it used may still be held: a cluster may refuse DeleteCluster
/// after its last service went INACTIVE, since ECS marks a deleted service INACTIVE while its tasks
/// are still stopping (each task's stop timeout, up to 120 s, then Fargate releases its network
/// interface); and a route table is used by VPC endpoints that are still deleting (DeleteVpcEndpoints
/// is asynchronous: interface endpoints stay `deleting` for a minute or more).
/// terraform-provider-aws's `resourceClusterDelete` (internal/service/ecs/cluster.go) retries
/// DeleteCluster on ClusterContainsContainerInstancesException, ClusterContainsServicesException,
/// ClusterContainsTasksException and UpdateInProgressException for 10 minutes, and
/// `resourceVPCEndpointDelete` (internal/service/ec2/vpc_endpoint.go) waits for the endpoint to be
/// gone (`waitVPCEndpointDeleted`, ec2/wait.go) for the resource's delete timeout, 10 minutes by
/// default.
pub const RELEASE_WINDOW: Duration = Duration::from_secs(600);
/// The SDK's retry backoff (standard strategy): the first pause and the longest one. Scaled too,
/// so that retries within [`SETTLE_WINDOW`] still happen when the window is scaled.
pub const SDK_RETRY_PACE: Pace = Pace::new(1000, 20_000);

/// `wait_stable`'s default timeout: a real rolling update takes task start-up (~1 min), the
/// target group's health checks (one interval for a new target, the healthy threshold's worth,
/// 5 x 30 s by default, for one that fails a check first) and the old
/// targets' deregistration delay (300 s by default): 8 to 9 minutes, plus headroom.
pub const ROLLOUT_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// For how long after a rollout wait starts a read may predate the create or update before it:
/// DescribeServices can report a just-created service as MISSING, or the previous deployment,
/// for a few seconds; a circuit-breaker rollback takes minutes (several tasks must fail first).
pub const STALE_READ_GRACE: Duration = Duration::from_secs(30);
/// Polling a rollout: ECS updates counts and rollout states within seconds, a rollout takes minutes.
/// At most 4 s apart, as Copilot follows its deployments (copilot-cli `internal/pkg/stream`,
/// `streamerFetchIntervalDurationMs = 4000`, backing off only when throttled, which the SDK's
/// retries do for us): a rollout's end is seen within seconds, not up to 10 s late.
pub const ROLLOUT_PACE: Pace = Pace::new(1000, 4000);

/// How long a run waits for ACM to issue a certificate. DNS validation usually completes within
/// minutes of the CNAME being served, but ACM documents that it can take up to 30 minutes.
pub const CERTIFICATE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Polling a certificate's status while ACM validates it (about a minute, up to 30).
pub const CERTIFICATE_PACE: Pace = Pace::new(1000, 15_000);
/// How long a run waits for ACM to report a new certificate's validation records:
/// RequestCertificate returns before ACM has generated them; DescribeCertificate lists them a
/// few seconds later.
pub const VALIDATION_RECORDS_TIMEOUT: Duration = Duration::from_secs(120);
/// Polling for the validation records (seconds).
pub const VALIDATION_RECORDS_PACE: Pace = Pace::new(1000, 5000);

/// How long a NAT gateway may take to become available or to be deleted: usually 1-2 minutes;
/// the SDK's waiters and terraform-provider-aws (`natGatewayCreatedTimeout`) allow 10.
pub const NAT_GATEWAY_TIMEOUT: Duration = Duration::from_secs(600);
/// Polling a NAT gateway (pending for about 90 s): every 5 s at first, then every 15 s (the SDK
/// waiter polls every 15 s at least, which cannot be scaled; this replaces it).
pub const NAT_GATEWAY_PACE: Pace = Pace::new(5000, 15_000);

/// How long a new VPC may take to become `available` (CreateVpc answers `pending`; it takes
/// seconds): terraform-provider-aws's `vpcCreatedTimeout` (internal/service/ec2/wait.go) allows 10 minutes.
pub const VPC_AVAILABLE_TIMEOUT: Duration = Duration::from_secs(600);
/// Polling a new VPC: every second at first, then every 5 s.
pub const VPC_AVAILABLE_PACE: Pace = Pace::new(1000, 5000);
/// How long a new load balancer may stay `provisioning` (usually 2-3 minutes): the limit of
/// terraform-provider-aws's `waitLoadBalancerActive` (`loadBalancerCreateTimeout`, 10 minutes,
/// internal/service/elbv2/wait.go).
pub const LOAD_BALANCER_ACTIVE_TIMEOUT: Duration = Duration::from_secs(600);
/// Polling a provisioning load balancer: every 5 s at first, then every 15 s (the SDK's
/// LoadBalancerAvailable waiter polls every 15 s; terraform-provider-aws every 10 s at least).
pub const LOAD_BALANCER_ACTIVE_PACE: Pace = Pace::new(5000, 15_000);

/// How long a deleted load balancer may take to disappear (the SDK waiter's own budget).
pub const LOAD_BALANCER_DELETED_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a deleted service may take to become INACTIVE: ECS drains its tasks first (each
/// target's deregistration delay, 300 s by default, then the task's stop timeout).
pub const SERVICE_INACTIVE_TIMEOUT: Duration = Duration::from_secs(20 * 60);
/// Polling a deletion that takes minutes (a load balancer, a draining service).
pub const DELETION_PACE: Pace = Pace::new(5000, 15_000);

/// How long a deletion is retried while AWS still releases a dependency (`DependencyViolation`:
/// network interfaces of stopped tasks or of a deleted load balancer, which also keep an internet
/// gateway's VPC mapping public addresses and a VPC in use; `ResourceInUse`): AWS releases them
/// within minutes; terraform-provider-aws allows a security group 15 minutes, an internet
/// gateway's detach 20 (its delete timeout) and DeleteVpc 5 (`vpcDeletedTimeout`).
pub const DEPENDENCY_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Retrying such a deletion: 2 s, growing to 30 s.
pub const DEPENDENCY_PACE: Pace = Pace::new(2000, 30_000);

/// Polls of a one-off task: from 1 s to 6 s, about what the ECS console's refresh does (its logs
/// stream as they arrive).
pub const ONE_OFF_TASK_PACE: Pace = Pace::new(1000, 6000);
/// How long a one-off task (`run_task`, `deckhand task run`) is watched at most: ECS sets no limit
/// on a task's run; a migration or batch job of half a day is the longest deckhand waits for.
pub const ONE_OFF_TASK_TIMEOUT: Duration = Duration::from_secs(12 * 3600);
/// Following logs (`deckhand logs -f`): 1 s after new events, backing off to 5 s while quiet.
pub const LOG_FOLLOW_PACE: Pace = Pace::new(1000, 5000);
/// How long ECS holds a deployment at deckhand's PAUSE hook (after test traffic moved) before it
/// rolls back by itself (DeploymentLifecycleHookTimeoutConfiguration, whose default is 1440
/// minutes): a deckhand that dies mid-deploy leaves no deployment paused for a day. A setting
/// sent to ECS, not a wait of deckhand's: the time scale does not change it (the emulator's
/// modelled time does).
pub const DEPLOYMENT_PAUSE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// How long the local emulator may take to answer after it was started (a local process, not
/// AWS: never scaled).
pub const EMULATOR_START_TIMEOUT: Duration = Duration::from_secs(60);
/// Polling the starting emulator (local, never scaled).
pub const EMULATOR_START_PACE: Pace = Pace::new(10, 200);

/// How a wait polls, at real-AWS values: the first pause, growing by half each poll up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    /// The first pause.
    pub first: Duration,
    /// The longest pause.
    pub max: Duration,
}

impl Pace {
    /// A pace from milliseconds.
    pub const fn new(first_ms: u64, max_ms: u64) -> Pace {
        Pace { first: Duration::from_millis(first_ms), max: Duration::from_millis(max_ms) }
    }
}

/// How much faster than real AWS modelled time runs (0 < s <= 1); 1 against AWS itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeScale(f64);

impl TimeScale {
    /// Real time: every duration as on AWS.
    pub const REAL: TimeScale = TimeScale(1.0);
    /// The scale `--local` and `deckhand emulator` use unless `DECKHAND_TIME_SCALE` is set: 50
    /// times as fast as AWS (a 90 s NAT gateway is pending for 1.8 s, a 5-minute rollout takes
    /// 6 s), slow enough that the emulator's own work stays small beside modelled time.
    pub const LOCAL: TimeScale = TimeScale(0.02);

    /// Parses a scale: a number with 0 < s <= 1.
    pub fn parse(text: &str) -> Result<TimeScale> {
        let invalid =
            || Error::invalid(TIME_SCALE_ENV, format!("{text:?}"), "a number above 0 and at most 1 (e.g. 0.05)");
        let value: f64 = text.trim().parse().map_err(|_| invalid())?;
        if value > 0.0 && value <= 1.0 { Ok(TimeScale(value)) } else { Err(invalid()) }
    }

    /// The scale deckhand uses: `DECKHAND_TIME_SCALE` (validated), else `chosen` (`--local`'s
    /// default), only when it talks to an endpoint URL. Against AWS itself (no endpoint) a stray
    /// variable is ignored with a warning: it must never shrink real AWS's waits.
    pub fn resolve(endpoint: bool, chosen: Option<TimeScale>) -> Result<Option<TimeScale>> {
        let set = std::env::var(TIME_SCALE_ENV).ok().filter(|v| !v.trim().is_empty());
        match (endpoint, set) {
            (false, Some(value)) => {
                anstream::eprintln!(
                    "warning: {TIME_SCALE_ENV}={value} is ignored: deckhand talks to AWS itself (no endpoint URL), \
                     whose waits are never shortened"
                );
                Ok(None)
            }
            (false, None) => Ok(None),
            (true, Some(value)) => TimeScale::parse(&value).map(Some),
            (true, None) => Ok(chosen),
        }
    }

    /// The factor, as written.
    pub fn factor(self) -> f64 {
        self.0
    }

    /// A real-AWS duration at this scale (timeouts, windows, grace periods).
    pub fn of(self, real: Duration) -> Duration {
        real.mul_f64(self.0)
    }

    /// A pause between polls at this scale, never below [`POLL_FLOOR`] (nor above `real`).
    pub fn pause(self, real: Duration) -> Duration {
        self.of(real).max(POLL_FLOOR).min(real)
    }

    /// The modelled (real-AWS) duration of `wall` time passed at this scale.
    pub fn modelled(self, wall: Duration) -> Duration {
        wall.div_f64(self.0)
    }
}

/// One wait, as the clock recorded it.
#[derive(Debug, Clone)]
struct Span {
    name: &'static str,
    start: Instant,
    end: Option<Instant>,
    /// Whether it paused at all (a wait done at its first poll did not wait).
    paused: bool,
}

/// A run's time: its scale, and the waits it spent (for the rehearsal line).
#[derive(Debug, Default)]
pub struct Clock {
    scale: Option<TimeScale>,
    spans: Mutex<Vec<Span>>,
}

impl Clock {
    /// A clock at `scale` (`None`: real AWS).
    pub fn new(scale: Option<TimeScale>) -> Clock {
        Clock { scale, spans: Mutex::new(Vec::new()) }
    }

    /// The scale in effect, if one is (an endpoint URL and a scale set or chosen).
    pub fn scale(&self) -> Option<TimeScale> {
        self.scale
    }

    fn factor(&self) -> TimeScale {
        self.scale.unwrap_or(TimeScale::REAL)
    }

    /// A real-AWS duration (timeout, window, grace) as this run waits it.
    pub fn scaled(&self, real: Duration) -> Duration {
        self.factor().of(real)
    }

    /// The modelled time since `start`: what has passed on AWS's clock.
    pub fn modelled_since(&self, start: Instant) -> Duration {
        self.factor().modelled(start.elapsed())
    }

    /// Sleeps a real-AWS pause at this run's scale (at least [`POLL_FLOOR`]), waking early on
    /// Ctrl-C while an interrupt guard is installed; returns whether Ctrl-C was pressed.
    pub async fn sleep(&self, real: Duration) -> bool {
        crate::interrupt::sleep(self.factor().pause(real)).await
    }

    /// Records the start of a wait named `name` (e.g. `NAT gateway`); it ends when the returned
    /// guard is dropped.
    pub fn start_wait(&self, name: &'static str) -> WaitRecord<'_> {
        let mut spans = self.spans.lock().unwrap_or_else(PoisonError::into_inner);
        spans.push(Span { name, start: Instant::now(), end: None, paused: false });
        WaitRecord { clock: self, index: spans.len() - 1 }
    }

    /// Whether a wait is pausing now (calls made meanwhile are its polls, in its time; a wait's
    /// first poll is a call like any other until the wait pauses).
    pub fn waiting(&self) -> bool {
        self.spans.lock().unwrap_or_else(PoisonError::into_inner).iter().any(|s| s.end.is_none() && s.paused)
    }

    /// The modelled time spent waiting, counting only waits that paused (one done at its first
    /// poll was a call): all together (concurrent waits count once), and per name, longest first.
    pub fn waited(&self) -> (Duration, Vec<(&'static str, Duration)>) {
        let spans: Vec<Span> =
            self.spans.lock().unwrap_or_else(PoisonError::into_inner).iter().filter(|s| s.paused).cloned().collect();
        let now = Instant::now();
        let all: Vec<(Instant, Instant)> = spans.iter().map(|s| (s.start, s.end.unwrap_or(now))).collect();
        let mut names: Vec<&'static str> = spans.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        let mut each: Vec<(&'static str, Duration)> = names
            .into_iter()
            .map(|name| {
                let of_name = spans.iter().filter(|s| s.name == name).map(|s| (s.start, s.end.unwrap_or(now)));
                (name, self.factor().modelled(union(of_name.collect())))
            })
            .collect();
        each.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        (self.factor().modelled(union(all)), each)
    }
}

/// A wait in progress; dropping it records its end.
#[derive(Debug)]
pub struct WaitRecord<'a> {
    clock: &'a Clock,
    index: usize,
}

impl WaitRecord<'_> {
    /// Records that the wait pauses (it was not done at its first poll).
    pub fn pausing(&self) {
        let mut spans = self.clock.spans.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(span) = spans.get_mut(self.index) {
            span.paused = true;
        }
    }
}

impl Drop for WaitRecord<'_> {
    fn drop(&mut self) {
        let mut spans = self.clock.spans.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(span) = spans.get_mut(self.index) {
            span.end = Some(Instant::now());
        }
    }
}

/// The total length of possibly overlapping intervals.
fn union(mut spans: Vec<(Instant, Instant)>) -> Duration {
    spans.sort();
    let mut total = Duration::ZERO;
    let mut current: Option<(Instant, Instant)> = None;
    for (start, end) in spans {
        current = match current {
            Some((s, e)) if start <= e => Some((s, e.max(end))),
            Some((s, e)) => {
                total += e - s;
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    total + current.map_or(Duration::ZERO, |(s, e)| e - s)
}

/// What a scaled run would take on AWS: its waits in modelled time, plus its rounds of AWS calls
/// (those outside waits) at [`CALL_LATENCY`] each. Not wall time divided by the scale, which would
/// multiply deckhand's and the emulator's own local work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rehearsal {
    /// The whole estimate.
    pub total: Duration,
    /// Each named wait, longest first.
    pub waits: Vec<(&'static str, Duration)>,
    /// Rounds of AWS calls outside waits.
    pub rounds: usize,
}

impl Rehearsal {
    /// The estimate for a run that waited as `clock` recorded and sent `rounds` rounds of calls.
    pub fn of(clock: &Clock, rounds: usize) -> Rehearsal {
        let (waited, waits) = clock.waited();
        let calls = CALL_LATENCY * u32::try_from(rounds).unwrap_or(u32::MAX);
        Rehearsal { total: waited + calls, waits, rounds }
    }

    /// The rehearsal line: `rehearsed: about 5m 10s on AWS (NAT gateway 1m 30s, rollout 3m 20s,
    /// AWS calls 2s: 35 rounds at 60 ms)`.
    pub fn line(&self) -> String {
        let mut parts: Vec<String> = self.waits.iter().map(|(name, took)| format!("{name} {}", about(*took))).collect();
        let calls = CALL_LATENCY * u32::try_from(self.rounds).unwrap_or(u32::MAX);
        parts.push(format!("AWS calls {}: {} rounds at {} ms", about(calls), self.rounds, CALL_LATENCY.as_millis()));
        format!("rehearsed: about {} on AWS ({})", about(self.total), parts.join(", "))
    }
}

/// A duration for people, to the second: `5m 10s`, `45s`, `0s`.
pub fn about(duration: Duration) -> String {
    humantime::format_duration(Duration::from_secs(duration.as_secs_f64().round() as u64)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scale_is_a_number_above_zero_and_at_most_one() {
        assert_eq!(TimeScale::parse("0.05").unwrap().factor(), 0.05);
        assert_eq!(TimeScale::parse("1").unwrap(), TimeScale::REAL);
        for bad in ["0", "-0.5", "1.5", "fast", "", "NaN"] {
            let err = TimeScale::parse(bad).unwrap_err().to_string();
            assert!(err.contains(TIME_SCALE_ENV) && err.contains("at most 1"), "{bad}: {err}");
        }
    }

    #[test]
    fn pauses_scale_down_to_the_floor_and_durations_scale_without_one() {
        let s = TimeScale::parse("0.01").unwrap();
        assert_eq!(s.pause(Duration::from_secs(15)), Duration::from_millis(150));
        assert_eq!(s.pause(Duration::from_secs(1)), POLL_FLOOR);
        assert_eq!(s.pause(Duration::from_millis(10)), Duration::from_millis(10), "never above the real pause");
        assert_eq!(s.of(SETTLE_WINDOW), Duration::from_millis(1200));
        assert_eq!(s.modelled(Duration::from_millis(900)), Duration::from_secs(90));
        assert_eq!(TimeScale::REAL.pause(Duration::from_secs(15)), Duration::from_secs(15));
    }

    #[test]
    fn overlapping_waits_count_once() {
        let t = Instant::now();
        let at = |ms: u64| t + Duration::from_millis(ms);
        assert_eq!(union(vec![(at(0), at(10)), (at(5), at(20)), (at(30), at(40))]), Duration::from_millis(30));
        assert_eq!(union(vec![]), Duration::ZERO);
    }

    #[test]
    fn the_rehearsal_line_names_each_wait_and_the_calls() {
        let rehearsal = Rehearsal {
            total: Duration::from_secs(310),
            waits: vec![("rollout", Duration::from_secs(200)), ("NAT gateway", Duration::from_millis(90_400))],
            rounds: 35,
        };
        assert_eq!(
            rehearsal.line(),
            "rehearsed: about 5m 10s on AWS (rollout 3m 20s, NAT gateway 1m 30s, AWS calls 2s: 35 rounds at 60 ms)"
        );
        let clock = Clock::new(Some(TimeScale::parse("0.5").unwrap()));
        drop(clock.start_wait("stack lock"));
        let nat = clock.start_wait("NAT gateway");
        assert!(!clock.waiting(), "its first poll is a call like any other");
        nat.pausing();
        assert!(clock.waiting());
        drop(nat);
        let rehearsal = Rehearsal::of(&clock, 10);
        assert_eq!(rehearsal.total.as_millis() / 100, 6, "10 rounds at 60 ms, and waits of next to nothing");
        let names: Vec<&str> = rehearsal.waits.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, ["NAT gateway"], "a wait done at its first poll is not named");
        assert!(!clock.waiting());
    }
}
