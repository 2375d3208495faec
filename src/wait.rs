//! Waiting for an ECS service to become stable: polling with backoff, progress on a terminal,
//! and a verdict that never mistakes a failed or rolled-back deployment for success, nor a stale
//! read right after a create or update for a failure.

use std::time::Duration;

use aws_sdk_ecs::types::DeploymentRolloutState;

use crate::aws::Pass;
use crate::aws::ecs::{self, short_task};
use crate::aws::queries;
use crate::error::{Error, Result, aws_error};
use crate::plan::is_known;
use crate::poll::{Check, Wait};
use crate::runtime::Aws;
use crate::timing::ROLLOUT_PACE;

/// How long `wait_stable` waits by default (see the table in `timing`).
pub use crate::timing::ROLLOUT_TIMEOUT as DEFAULT_TIMEOUT;

/// How a target group paces a rolling update: new targets must pass its health checks, old ones
/// drain for its deregistration delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetGroupPace {
    /// Seconds between health checks.
    pub interval: u64,
    /// Consecutive passed checks before a target that failed one is healthy again (a new target
    /// needs one; the budget allows for a failed first check).
    pub healthy_threshold: u64,
    /// Seconds an old target drains before it is deregistered.
    pub deregistration_delay: u64,
}

/// How long a rolling update behind these target groups may take, at least [`DEFAULT_TIMEOUT`]:
/// task start-up (~1 min on Fargate, more for big images), the health checks, the old targets'
/// deregistration delay, and 5 minutes' headroom (ECS replaces tasks in batches).
pub fn rollout_budget(groups: &[TargetGroupPace]) -> Duration {
    let slowest =
        groups.iter().map(|g| 60 + g.interval * g.healthy_threshold + g.deregistration_delay + 300).max().unwrap_or(0);
    DEFAULT_TIMEOUT.max(Duration::from_secs(slowest))
}

/// For how long after the wait starts a read may predate the create or update that preceded it
/// (modelled time; see the table in `timing`). ECS reads are eventually consistent:
/// DescribeServices can report a just-created service as MISSING, or the previous deployment and
/// task definition right after UpdateService, for a few seconds. A circuit-breaker rollback takes
/// minutes (several tasks must fail first), so a read this early that is not ours is stale.
pub use crate::timing::STALE_READ_GRACE;

/// The service to wait for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StableTarget {
    /// Cluster ARN or name.
    pub cluster: String,
    /// Service name.
    pub name: String,
    /// The task definition ARN the service should end up running, when known.
    pub task_definition: Option<String>,
    /// How long to wait at most.
    pub timeout: Duration,
    /// Whether its deployments shift load balancer traffic (blue/green, canary, linear): the wait
    /// then follows their lifecycle stages (DescribeServiceDeployments).
    pub shifts_traffic: bool,
}

/// A script's check, run while a deployment holds part of the traffic; an error fails it.
pub type DeployCheck<'a> = &'a dyn Fn() -> Result<()>;

/// Where a wait stopped: the service is stable, or a deployment waits for the script's check.
enum Moment {
    Stable(ServiceStatus, Duration),
    /// A PAUSE hook awaits ContinueServiceDeployment (blue/green, after test traffic moved).
    Paused {
        deployment: String,
        hook: String,
        line: String,
    },
    /// A canary's or linear step's bake (or the final bake) is under way.
    Baking {
        deployment: String,
        key: String,
        line: String,
    },
}

/// The deployment the wait follows, and when (modelled time) each stage was first seen.
#[derive(Default)]
struct Followed {
    arn: Option<String>,
    stage: Option<(String, Duration)>,
}

/// One deployment of a service, as the verdict needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentStatus {
    /// `ecs-svc/...`.
    pub id: String,
    /// `PRIMARY`, `ACTIVE` or `INACTIVE`.
    pub status: String,
    /// `IN_PROGRESS`, `COMPLETED` or `FAILED`, when reported.
    pub rollout_state: Option<String>,
    /// Why it is in that state.
    pub reason: String,
    /// Its task definition ARN.
    pub task_definition: String,
    /// Tasks that failed to start.
    pub failed_tasks: i32,
}

/// DescribeServices' status for a service it does not know (in `failures[].reason`).
const MISSING: &str = "MISSING";

/// What one DescribeServices said about the service.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceStatus {
    /// `ACTIVE`, `DRAINING`, `INACTIVE`.
    pub status: String,
    /// The service's task definition.
    pub task_definition: String,
    /// Desired task count.
    pub desired: i32,
    /// Running tasks.
    pub running: i32,
    /// Pending tasks.
    pub pending: i32,
    /// Its deployments.
    pub deployments: Vec<DeploymentStatus>,
    /// Service events, newest first.
    pub events: Vec<String>,
    /// The target groups the service registers its tasks with.
    pub target_groups: Vec<String>,
}

impl ServiceStatus {
    fn primary(&self) -> Option<&DeploymentStatus> {
        self.deployments.iter().find(|d| d.status == "PRIMARY")
    }

    /// A one-line progress summary, e.g. `1/2 running, 1 pending`.
    pub fn progress(&self) -> String {
        if self.status == MISSING {
            return "not visible yet (DescribeServices: MISSING)".to_string();
        }
        let mut text = format!("{}/{} running, {} pending", self.running, self.desired, self.pending);
        let failed: i32 = self.deployments.iter().map(|d| d.failed_tasks).sum();
        if failed > 0 {
            text.push_str(&format!(", {failed} failed to start"));
        }
        if let Some(state) = self.primary().and_then(|d| d.rollout_state.as_deref()) {
            text.push_str(&format!(", rollout {state}"));
        }
        if self.events.first().is_some_and(|e| is_role_not_yet_assumable(e)) {
            text.push_str(" (a new IAM role is not assumable yet; ECS starts new tasks)");
        }
        text
    }
}

/// Where a service stands after one poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The primary deployment completed and the desired count runs.
    Stable,
    /// Still rolling out.
    Waiting,
    /// The deployment failed or was rolled back.
    Failed(String),
}

/// True for the stopped reason (and service event) of a task whose role IAM has not propagated
/// yet: "ECS was unable to assume the role ... that was provided for this task". A role created
/// seconds ago becomes assumable within a minute; ECS keeps starting tasks meanwhile.
pub fn is_role_not_yet_assumable(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    text.contains("unable to assume the role") || text.contains("unable to assume role")
}

/// Judges one poll, made `elapsed` (modelled time) after the wait started. `tracked` is the primary deployment
/// running the wanted task definition, as first seen: if a different deployment becomes primary
/// later, the circuit breaker rolled back (or another deploy replaced ours), which is a failure
/// even when the new deployment completes. Within [`STALE_READ_GRACE`] a service reported
/// MISSING, or a primary deployment that is not ours yet, is a stale read: keep waiting.
/// Tasks that failed to start while the deployment is IN_PROGRESS (e.g. a new role not yet
/// assumable) are not a verdict: ECS retries them, and its circuit breaker (when enabled) fails
/// the deployment, which is.
pub fn assess(
    status: &ServiceStatus,
    tracked: &mut Option<String>,
    wanted_task: Option<&str>,
    elapsed: Duration,
) -> Verdict {
    let early = elapsed < STALE_READ_GRACE;
    match status.status.as_str() {
        "ACTIVE" => {}
        MISSING if early => return Verdict::Waiting,
        MISSING => return Verdict::Failed("the service does not exist (DescribeServices: MISSING)".to_string()),
        other => return Verdict::Failed(format!("the service is {other}")),
    }
    if let Some(failed) = status.deployments.iter().find(|d| d.rollout_state.as_deref() == Some("FAILED")) {
        // With rollback on, the circuit breaker's new deployment (of the last completed task
        // definition) is primary at once.
        let rollback = status
            .primary()
            .filter(|p| p.id != failed.id)
            .map(|p| {
                format!("; the circuit breaker rolled back to {} (deployment {})", short_task(&p.task_definition), p.id)
            })
            .unwrap_or_default();
        return Verdict::Failed(format!("deployment {} failed: {}{rollback}", failed.id, failed.reason));
    }
    let Some(primary) = status.primary() else {
        return Verdict::Waiting;
    };
    if let Some(wanted) = wanted_task.filter(|w| is_known(w))
        && status.task_definition != wanted
    {
        if early {
            return Verdict::Waiting;
        }
        return Verdict::Failed(format!(
            "the service runs {}, not {}: it was rolled back (or changed by someone else)",
            short_task(&status.task_definition),
            short_task(wanted)
        ));
    }
    match tracked {
        None => *tracked = Some(primary.id.clone()),
        Some(id) if *id != primary.id && early => *tracked = Some(primary.id.clone()),
        Some(id) if *id != primary.id => {
            return Verdict::Failed(format!(
                "deployment {id} was replaced by {} running {}: the circuit breaker rolled back (or another deploy started)",
                primary.id,
                short_task(&primary.task_definition)
            ));
        }
        Some(_) => {}
    }
    let completed = match primary.rollout_state.as_deref() {
        Some(state) => state == DeploymentRolloutState::Completed.as_str(),
        None => status.deployments.len() == 1,
    };
    if completed && status.deployments.len() == 1 && status.running == status.desired {
        Verdict::Stable
    } else {
        Verdict::Waiting
    }
}

async fn poll(aws: &Aws, target: &StableTarget) -> Result<ServiceStatus> {
    let out = aws
        .ecs
        .describe_services()
        .cluster(&target.cluster)
        .services(&target.name)
        .send()
        .await
        .map_err(|e| aws_error("DescribeServices", e))?;
    let Some(s) = out.services().first() else {
        // A just-created service can read as MISSING for a while; the verdict decides how long.
        let reason = out.failures().first().and_then(|f| f.reason()).unwrap_or(MISSING);
        return Ok(ServiceStatus { status: reason.to_string(), ..ServiceStatus::default() });
    };
    Ok(ServiceStatus {
        status: s.status().unwrap_or_default().to_string(),
        task_definition: s.task_definition().unwrap_or_default().to_string(),
        desired: s.desired_count(),
        running: s.running_count(),
        pending: s.pending_count(),
        deployments: s
            .deployments()
            .iter()
            .map(|d| DeploymentStatus {
                id: d.id().unwrap_or_default().to_string(),
                status: d.status().unwrap_or_default().to_string(),
                rollout_state: d.rollout_state().map(|r| r.as_str().to_string()),
                reason: d.rollout_state_reason().unwrap_or_default().to_string(),
                task_definition: d.task_definition().unwrap_or_default().to_string(),
                failed_tasks: d.failed_tasks(),
            })
            .collect(),
        events: s.events().iter().filter_map(|e| e.message().map(str::to_string)).collect(),
        target_groups: s.load_balancers().iter().filter_map(|lb| lb.target_group_arn().map(str::to_string)).collect(),
    })
}

/// The pace of the service's target groups as this pass knows them (it created or read them),
/// when it knows them all: no reads then.
fn known_paces(pass: &Pass, arns: &[String]) -> Option<Vec<TargetGroupPace>> {
    let snapshot = pass.snapshot().ok()?;
    let snapshot = snapshot.borrow();
    let seconds = |value: i32| u64::try_from(value).unwrap_or(0);
    arns.iter()
        .map(|arn| {
            let group = snapshot.elbv2.target_groups.iter().find(|g| &g.arn == arn)?;
            Some(TargetGroupPace {
                interval: seconds(group.health_check.interval),
                healthy_threshold: seconds(group.health_check.healthy),
                deregistration_delay: seconds(group.deregistration_delay),
            })
        })
        .collect()
}

/// Reads the pace of the service's target groups (health checks, deregistration delay).
async fn target_group_paces(aws: &Aws, arns: &[String]) -> Result<Vec<TargetGroupPace>> {
    let groups = aws
        .elbv2
        .describe_target_groups()
        .set_target_group_arns(Some(arns.to_vec()))
        .send()
        .await
        .map_err(|e| aws_error("DescribeTargetGroups", e))?;
    let mut paces = Vec::new();
    for group in groups.target_groups() {
        let arn = group.target_group_arn().ok_or_else(|| Error::missing("DescribeTargetGroups", "TargetGroupArn"))?;
        let delay = crate::aws::elbv2::deregistration_delay(aws, arn).await?;
        let seconds = |value: Option<i32>, default: u64| value.and_then(|v| u64::try_from(v).ok()).unwrap_or(default);
        paces.push(TargetGroupPace {
            interval: seconds(group.health_check_interval_seconds(), 30),
            healthy_threshold: seconds(group.healthy_threshold_count(), 5),
            deregistration_delay: seconds(Some(delay), 300),
        });
    }
    Ok(paces)
}

/// Waits until the service is stable: its primary deployment COMPLETED and running == desired.
/// (Not the SDK's services-stable waiter: it only counts deployments and tasks, so it would call a
/// completed circuit-breaker rollback a success, and it shows no progress.)
/// Fails with the newest service events when the deployment failed, was rolled back, or the
/// timeout passed. Outside the apply pass there is nothing to wait for and it returns at once.
///
/// A service whose deployments shift traffic is followed stage by stage (DescribeServiceDeployments),
/// and `check` runs where the design puts it: at a blue/green deployment's PAUSE hook after
/// test traffic moved (then ContinueServiceDeployment CONTINUE, or ROLLBACK when it failed), and
/// during each canary or linear bake (StopServiceDeployment ROLLBACK when it fails). A rollback,
/// ours, an alarm's or the circuit breaker's, fails the wait saying so.
pub fn wait_stable(pass: &Pass, target: &StableTarget, check: Option<DeployCheck>) -> Result<()> {
    if !pass.mode.applies() {
        return Ok(());
    }
    // What the run put off (a load balancer still provisioning, ...) is part of "stable".
    pass.finish(&format!("the rollout of service {}", target.name))?;
    let say = |line: &str| pass.log.say(line);
    let mut tracked = None;
    let mut followed = Followed::default();
    let mut checked: Vec<String> = Vec::new();
    loop {
        let outcome = pass.read(async |aws| {
            let mut paced = false;
            let what = format!("service {}", target.name);
            Wait::new(aws.clock(), "rollout", what, ROLLOUT_PACE, target.timeout)
                .report_to(&say)
                .until(async |round| {
                    let status = poll(aws, target).await?;
                    // Without a timeout of the script's own, the service's target groups may need
                    // longer than the default (a long deregistration delay): wait that long instead.
                    if !paced && target.timeout == DEFAULT_TIMEOUT && !status.target_groups.is_empty() {
                        paced = true;
                        let paces = match known_paces(pass, &status.target_groups) {
                            Some(paces) => paces,
                            None => target_group_paces(aws, &status.target_groups).await?,
                        };
                        round.timeout = rollout_budget(&paces);
                        if round.timeout > target.timeout {
                            tracing::debug!(
                                "waiting up to {} s for {}: its target groups are slow",
                                round.timeout.as_secs(),
                                target.name
                            );
                        }
                    }
                    let elapsed = round.elapsed;
                    let deployment = if target.shifts_traffic {
                        ecs::latest_deployment(aws, &target.cluster, &target.name).await?
                    } else {
                        None
                    };
                    let mut stage_line = None;
                    if let Some(d) = &deployment {
                        // Only a deployment seen unfinished is this wait's: an older one that
                        // ended (even rolled back) says nothing about this run.
                        if followed.arn.as_deref() != Some(d.arn.as_str())
                            && (d.in_progress() || d.rolled_back() && d.status != "ROLLBACK_SUCCESSFUL")
                        {
                            followed = Followed { arn: Some(d.arn.clone()), stage: None };
                        }
                        if followed.arn.as_deref() == Some(d.arn.as_str()) {
                            if d.rolled_back() {
                                let why = format!("deployment {} was rolled back ({}): {}", d.arn, d.status, d.reason);
                                return Err(failure(&target.name, &why, &status, &[]));
                            }
                            let stage = d.stage.clone().unwrap_or_default();
                            if followed.stage.as_ref().is_none_or(|(s, _)| *s != stage) {
                                followed.stage = Some((stage.clone(), elapsed));
                            }
                            let since =
                                followed.stage.as_ref().map_or(Duration::ZERO, |(_, at)| elapsed.saturating_sub(*at));
                            let line = ecs::stage_line(d, bake_left(d, since));
                            // deckhand's PAUSE hook waits for an answer, with or without a check.
                            if let (Some(hook), true) = (d.paused.first(), d.in_progress()) {
                                return Ok(Check::Done(Moment::Paused {
                                    deployment: d.arn.clone(),
                                    hook: hook.id.clone(),
                                    line,
                                }));
                            }
                            if let (Some(_), true) = (check, d.in_progress())
                                && let Some(key) = bake_key(d).filter(|k| !checked.contains(k))
                            {
                                return Ok(Check::Done(Moment::Baking { deployment: d.arn.clone(), key, line }));
                            }
                            stage_line = Some(line).filter(|_| d.in_progress());
                        }
                    }
                    let verdict = match assess(&status, &mut tracked, target.task_definition.as_deref(), elapsed) {
                        Verdict::Stable if stage_line.is_some() => Verdict::Waiting,
                        verdict => verdict,
                    };
                    match verdict {
                        Verdict::Stable => Ok(Check::Done(Moment::Stable(status, elapsed))),
                        Verdict::Failed(why) => {
                            Err(failure(&target.name, &why, &status, &stopped_reasons(aws, target).await))
                        }
                        Verdict::Waiting => {
                            let why = format!("not stable after {} s: {}", round.timeout.as_secs(), status.progress());
                            let event = status.events.first().map(|e| format!(" — {e}")).unwrap_or_default();
                            let stage = stage_line.map(|s| format!("{s}: ")).unwrap_or_default();
                            let line = format!("{stage}{}{event}", status.progress());
                            // The tasks' stopped reasons are read only by the round that gives up.
                            let stopped = if round.elapsed >= round.timeout {
                                stopped_reasons(aws, target).await
                            } else {
                                Vec::new()
                            };
                            Ok(Check::waiting_or(line, failure(&target.name, &why, &status, &stopped)))
                        }
                    }
                })
                .await
        });
        let Some(outcome) = outcome else { return Ok(()) };
        match outcome? {
            Moment::Stable(status, elapsed) => {
                pass.log.say(&format!(
                    "service {} is stable: {} ({} s)",
                    target.name,
                    status.progress(),
                    elapsed.as_secs()
                ));
                return Ok(());
            }
            Moment::Paused { deployment, hook, line } => {
                if check.is_some() {
                    pass.log.say(&format!("service {}: {line}: running the check", target.name));
                }
                let verdict = check.map_or(Ok(()), |check| check());
                let proceed = verdict.is_ok();
                pass.apply(async |aws| ecs::continue_deployment(aws, &deployment, &hook, proceed).await)?;
                if let Err(err) = verdict {
                    pass.log.say(&format!(
                        "service {}: the check failed; ContinueServiceDeployment ROLLBACK: production traffic stays on the old revision",
                        target.name
                    ));
                    return Err(rolled_back(&target.name, "at the test traffic pause", &err));
                }
                let why = if check.is_some() { "the check passed" } else { "no check to run" };
                pass.log.say(&format!("service {}: {why}; ContinueServiceDeployment CONTINUE", target.name));
            }
            Moment::Baking { deployment, key, line } => {
                pass.log.say(&format!("service {}: {line}: running the check", target.name));
                checked.push(key);
                if let Err(err) = check.map_or(Ok(()), |check| check()) {
                    pass.apply(async |aws| ecs::stop_and_roll_back(aws, &deployment).await)?;
                    pass.log.say(&format!(
                        "service {}: the check failed; StopServiceDeployment ROLLBACK: ECS moves the traffic back",
                        target.name
                    ));
                    return Err(rolled_back(&target.name, "during the bake", &err));
                }
            }
        }
    }
}

/// The run's failure after deckhand rolled a deployment back because the script's check failed.
fn rolled_back(name: &str, when: &str, err: &Error) -> Error {
    Error::conflict(
        format!("service {name}: the deployment was rolled back: its check failed {when}: {err}"),
        Some("the old revision keeps serving; fix the script or the image and run again"),
    )
}

/// Minutes of the bake under way left, `since` it began: a canary's or linear step's bake during
/// production traffic shift, the final bake during BAKE_TIME.
fn bake_left(d: &ecs::ServiceDeploymentState, since: Duration) -> Option<u64> {
    let deployment = d.deployment.as_ref()?;
    let minutes = match (d.stage.as_deref()?, &deployment.strategy) {
        (
            "PRODUCTION_TRAFFIC_SHIFT",
            ecs::Strategy::Canary { step_bake, .. } | ecs::Strategy::Linear { step_bake, .. },
        ) => *step_bake,
        ("BAKE_TIME", strategy) => strategy.bake(),
        _ => return None,
    };
    let total = u64::try_from(minutes).unwrap_or(0) * 60;
    Some(total.saturating_sub(since.as_secs()).div_ceil(60))
}

/// What identifies one bake of a canary or linear deployment, where the script's check runs once:
/// the deployment, and the production traffic its new revision holds while it bakes (each linear
/// step is another share). Blue/green bakes only after production traffic moved: no check there.
fn bake_key(d: &ecs::ServiceDeploymentState) -> Option<String> {
    let strategy = &d.deployment.as_ref()?.strategy;
    if !matches!(strategy, ecs::Strategy::Canary { .. } | ecs::Strategy::Linear { .. }) {
        return None;
    }
    if d.stage.as_deref() != Some("PRODUCTION_TRAFFIC_SHIFT") {
        return None;
    }
    let weight = match d.production_weight {
        Some(w) if w > 0.0 && w < 100.0 => w.to_string(),
        Some(_) => return None,
        None => "shift".into(),
    };
    Some(format!("{}@{weight}", d.arn))
}

/// Why the service's tasks of the wanted task definition stopped, newest first, each reason once:
/// AWS's own words when they could not pull their image or reach their logs or secrets
/// (`CannotPullContainerError: ...`, `ResourceInitializationError: ...`) or failed the load
/// balancer's health checks (`Task failed ELB health checks in (target-group ...)`). Tasks the
/// scheduler stopped to make way for another deployment say nothing about the failure. Read only
/// for the failure report: when the read fails, the report goes without them.
async fn stopped_reasons(aws: &Aws, target: &StableTarget) -> Vec<String> {
    let tasks = queries::tasks(aws, &target.cluster, &target.name).await.unwrap_or_default();
    let wanted = target.task_definition.as_deref().filter(|w| is_known(w));
    let mut reasons: Vec<String> = Vec::new();
    for task in tasks.iter().rev() {
        let ours = wanted.is_none_or(|w| task.task_definition == w);
        let reason = &task.stopped_reason;
        if task.last_status == "STOPPED"
            && ours
            && !reason.is_empty()
            && !reason.starts_with("Scaling activity initiated by")
            && !reasons.contains(reason)
        {
            reasons.push(reason.clone());
        }
    }
    reasons
}

fn failure(name: &str, why: &str, status: &ServiceStatus, stopped: &[String]) -> Error {
    let mut message = format!("service {name} did not become stable: {why}");
    if !stopped.is_empty() {
        message.push_str("\n  tasks stopped:");
        for reason in stopped.iter().take(3) {
            message.push_str(&format!("\n    {reason}"));
        }
    }
    if status.events.is_empty() {
        message.push_str("\n  (no service events)");
    } else {
        message.push_str("\n  newest events:");
        for event in status.events.iter().take(5) {
            message.push_str(&format!("\n    {event}"));
        }
    }
    Error::conflict(message, Some("check the tasks' stopped reasons (`aws ecs describe-tasks`) and the container logs"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The task definition revisions the deployments below run.
    const APP_1: &str = "arn:aws:ecs:us-west-2:123456789012:task-definition/app:1";
    const APP_2: &str = "arn:aws:ecs:us-west-2:123456789012:task-definition/app:2";

    /// A poll right after the wait started (reads may be stale).
    const NOW: Duration = Duration::ZERO;
    /// A poll well after the stale-read grace.
    const LATER: Duration = Duration::from_secs(120);

    fn deployment(id: &str, status: &str, state: &str, task: &str) -> DeploymentStatus {
        DeploymentStatus {
            id: id.into(),
            status: status.into(),
            rollout_state: Some(state.into()),
            reason: format!("{state} reason"),
            task_definition: task.into(),
            failed_tasks: 0,
        }
    }

    fn service(running: i32, deployments: Vec<DeploymentStatus>) -> ServiceStatus {
        ServiceStatus {
            status: "ACTIVE".into(),
            task_definition: APP_2.into(),
            desired: 2,
            running,
            pending: 2 - running,
            deployments,
            events: vec![],
            target_groups: vec![],
        }
    }

    #[test]
    fn completed_primary_with_desired_running_is_stable() {
        let mut tracked = None;
        let s = service(2, vec![deployment("d2", "PRIMARY", "COMPLETED", APP_2)]);
        assert_eq!(assess(&s, &mut tracked, Some(APP_2), NOW), Verdict::Stable);
        let s = service(1, vec![deployment("d2", "PRIMARY", "IN_PROGRESS", APP_2)]);
        assert_eq!(assess(&s, &mut tracked, None, NOW), Verdict::Waiting);
    }

    #[test]
    fn old_deployment_still_draining_is_not_stable() {
        let mut tracked = None;
        let s = service(
            2,
            vec![deployment("d2", "PRIMARY", "COMPLETED", APP_2), deployment("d1", "ACTIVE", "COMPLETED", APP_1)],
        );
        assert_eq!(assess(&s, &mut tracked, None, NOW), Verdict::Waiting);
    }

    #[test]
    fn a_failed_deployment_is_a_failure() {
        let mut tracked = None;
        let s = service(
            0,
            vec![deployment("d3", "PRIMARY", "IN_PROGRESS", APP_1), deployment("d2", "ACTIVE", "FAILED", APP_2)],
        );
        assert!(matches!(assess(&s, &mut tracked, None, NOW), Verdict::Failed(why) if why.contains("d2 failed")));
    }

    #[test]
    fn a_failed_deployment_reports_the_circuit_breakers_rollback() {
        let mut tracked = None;
        let mut failed = deployment("d2", "ACTIVE", "FAILED", APP_2);
        failed.reason = "ECS deployment circuit breaker: tasks failed to start.".into();
        let s = service(0, vec![deployment("d3", "PRIMARY", "IN_PROGRESS", APP_1), failed]);
        let Verdict::Failed(why) = assess(&s, &mut tracked, Some(APP_2), LATER) else {
            panic!("a failed deployment is a failure")
        };
        assert_eq!(
            why,
            "deployment d2 failed: ECS deployment circuit breaker: tasks failed to start.; \
             the circuit breaker rolled back to app:1 (deployment d3)"
        );
    }

    #[test]
    fn a_completed_rollback_is_never_success() {
        // First poll: our deployment d2 is primary and in progress.
        let mut tracked = None;
        let s = service(1, vec![deployment("d2", "PRIMARY", "IN_PROGRESS", APP_2)]);
        assert_eq!(assess(&s, &mut tracked, Some(APP_2), NOW), Verdict::Waiting);
        // Later: the circuit breaker rolled back to app:1, which completed and runs everything.
        let mut s = service(2, vec![deployment("d3", "PRIMARY", "COMPLETED", APP_1)]);
        s.task_definition = APP_1.into();
        assert!(
            matches!(assess(&s, &mut tracked, Some(APP_2), LATER), Verdict::Failed(why) if why.contains("rolled back"))
        );
        // Even when first seen after the rollback, the task definition gives it away.
        let mut fresh = None;
        assert!(
            matches!(assess(&s, &mut fresh, Some(APP_2), LATER), Verdict::Failed(why) if why.contains("rolled back"))
        );
        // And a replaced deployment of our task definition (another deploy) after the grace.
        let mut tracked = Some("d2".to_string());
        let s = service(2, vec![deployment("d4", "PRIMARY", "COMPLETED", APP_2)]);
        assert!(
            matches!(assess(&s, &mut tracked, Some(APP_2), LATER), Verdict::Failed(why) if why.contains("replaced by d4"))
        );
    }

    #[test]
    fn the_rollout_budget_covers_slow_target_groups() {
        let default = TargetGroupPace { interval: 30, healthy_threshold: 5, deregistration_delay: 300 };
        assert_eq!(rollout_budget(&[]), DEFAULT_TIMEOUT);
        assert_eq!(rollout_budget(&[default]), DEFAULT_TIMEOUT, "the default covers default target groups");
        let slow = TargetGroupPace { deregistration_delay: 1800, ..default };
        assert_eq!(rollout_budget(&[default, slow]), Duration::from_secs(60 + 150 + 1800 + 300));
    }

    #[test]
    fn a_just_created_service_read_as_missing_is_waited_for_then_a_failure() {
        let missing = ServiceStatus { status: "MISSING".into(), ..ServiceStatus::default() };
        assert_eq!(assess(&missing, &mut None, Some(APP_1), NOW), Verdict::Waiting);
        assert_eq!(assess(&missing, &mut None, Some(APP_1), Duration::from_secs(29)), Verdict::Waiting);
        assert!(matches!(assess(&missing, &mut None, None, LATER), Verdict::Failed(why) if why.contains("MISSING")));
        assert_eq!(missing.progress(), "not visible yet (DescribeServices: MISSING)");
        // Draining or inactive is never a stale read.
        let draining = ServiceStatus { status: "DRAINING".into(), ..ServiceStatus::default() };
        assert!(matches!(assess(&draining, &mut None, None, NOW), Verdict::Failed(why) if why.contains("DRAINING")));
    }

    #[test]
    fn the_old_task_definition_right_after_update_service_is_a_stale_read() {
        let wanted = Some(APP_2);
        let mut tracked = None;
        // First poll: the read predates UpdateService (old deployment, old task definition).
        let mut stale = service(2, vec![deployment("d1", "PRIMARY", "COMPLETED", APP_1)]);
        stale.task_definition = APP_1.into();
        assert_eq!(assess(&stale, &mut tracked, wanted, NOW), Verdict::Waiting);
        assert_eq!(tracked, None, "a deployment that is not ours is not tracked");
        // Then the update shows: our deployment rolls out, the old one drains.
        let rolling = service(
            1,
            vec![deployment("d2", "PRIMARY", "IN_PROGRESS", APP_2), deployment("d1", "ACTIVE", "COMPLETED", APP_1)],
        );
        assert_eq!(assess(&rolling, &mut tracked, wanted, Duration::from_secs(5)), Verdict::Waiting);
        assert_eq!(tracked.as_deref(), Some("d2"));
        // A replica behind again within the grace: still a stale read, not a rollback.
        assert_eq!(assess(&stale, &mut tracked, wanted, Duration::from_secs(10)), Verdict::Waiting);
        let done = service(2, vec![deployment("d2", "PRIMARY", "COMPLETED", APP_2)]);
        assert_eq!(assess(&done, &mut tracked, wanted, LATER), Verdict::Stable);
    }

    #[test]
    fn a_primary_deployment_flipping_within_the_grace_is_retracked() {
        // Without a known task definition, only the grace tells a stale read from a replacement.
        let mut tracked = None;
        let old = service(1, vec![deployment("d1", "PRIMARY", "IN_PROGRESS", APP_1)]);
        assert_eq!(assess(&old, &mut tracked, None, NOW), Verdict::Waiting);
        let new = service(2, vec![deployment("d2", "PRIMARY", "COMPLETED", APP_2)]);
        assert_eq!(assess(&new, &mut tracked, None, Duration::from_secs(3)), Verdict::Stable);
    }

    #[test]
    fn tasks_stopping_because_a_new_role_is_not_assumable_yet_are_not_a_failure() {
        let mut tracked = None;
        let mut d2 = deployment("d2", "PRIMARY", "IN_PROGRESS", APP_2);
        d2.failed_tasks = 3;
        let mut s = service(0, vec![d2]);
        s.events = vec![
            "(service shop) (task 1a2b) failed to start: ECS was unable to assume the role              'arn:aws:iam::123456789012:role/shop-exec' that was provided for this task."
                .into(),
        ];
        assert_eq!(assess(&s, &mut tracked, Some(APP_2), NOW), Verdict::Waiting);
        assert_eq!(assess(&s, &mut tracked, Some(APP_2), LATER), Verdict::Waiting);
        assert!(s.progress().contains("3 failed to start") && s.progress().contains("not assumable yet"));
        assert!(is_role_not_yet_assumable("unable to assume role arn:aws:iam::1:role/x"));
        assert!(!is_role_not_yet_assumable("CannotPullContainerError: pull image manifest has been retried"));
    }
}
