//! A service's deployments as ECS tracks them (ListServiceDeployments, DescribeServiceDeployments,
//! DescribeServiceRevisions): the lifecycle stage of the one in progress, its PAUSE hooks, the
//! production and test traffic its new revision gets; and what deckhand does to one:
//! ContinueServiceDeployment (answer a PAUSE hook: CONTINUE or ROLLBACK). StopServiceDeployment
//! (ROLLBACK) is `service_rollback.rs`'s `stop_and_roll_back`, which `deckhand rollback` uses too.

use aws_sdk_ecs::types::{
    DeploymentLifecycleHookAction, DeploymentLifecycleHookStatus, DeploymentLifecycleHookTargetType,
};

use super::deploy::{Deployment, deployment_from};
use crate::error::{Result, aws_error, sent};
use crate::runtime::Aws;

/// A PAUSE hook waiting for ContinueServiceDeployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PausedHook {
    /// Its id (ContinueServiceDeployment's hookId).
    pub id: String,
}

/// One deployment of a service, as DescribeServiceDeployments reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceDeploymentState {
    /// Its ARN.
    pub arn: String,
    /// `PENDING`, `IN_PROGRESS`, `SUCCESSFUL`, `STOPPED`, `ROLLBACK_REQUESTED`,
    /// `ROLLBACK_IN_PROGRESS`, `ROLLBACK_SUCCESSFUL`, `ROLLBACK_FAILED`, `STOP_REQUESTED`.
    pub status: String,
    /// Why it is in that status (the alarm that fired, the circuit breaker...).
    pub reason: String,
    /// The lifecycle stage (`SCALE_UP`, `TEST_TRAFFIC_SHIFT`, `PRODUCTION_TRAFFIC_SHIFT`,
    /// `BAKE_TIME`, `CLEAN_UP`...), when reported.
    pub stage: Option<String>,
    /// The new revision's share of production traffic (percent), when reported.
    pub production_weight: Option<f64>,
    /// The PAUSE hooks awaiting an answer.
    pub paused: Vec<PausedHook>,
    /// The deployment settings it runs with.
    pub deployment: Option<Deployment>,
    /// The service revision it deploys.
    pub target_revision: Option<String>,
    /// The revisions that ran when it started (`sourceServiceRevisions`).
    pub sources: Vec<String>,
    /// Tasks of the source revisions running, and how many ECS wants of them.
    pub sources_running: (i32, i32),
    /// Tasks of the target revision running.
    pub target_running: i32,
}

impl ServiceDeploymentState {
    /// Whether it is still running (not finished, stopped or rolled back).
    pub fn in_progress(&self) -> bool {
        matches!(self.status.as_str(), "PENDING" | "IN_PROGRESS")
    }

    /// Whether it reached a completed status (ECS developer guide, service-deployment.html).
    pub fn finished(&self) -> bool {
        matches!(self.status.as_str(), "SUCCESSFUL" | "STOPPED" | "ROLLBACK_SUCCESSFUL" | "ROLLBACK_FAILED")
    }

    /// Whether ECS rolls it back or did (an alarm, the circuit breaker, StopServiceDeployment, a
    /// hook's ROLLBACK or its timeout).
    pub fn rolled_back(&self) -> bool {
        self.status.starts_with("ROLLBACK")
    }
}

/// The deployment of the service created last (every page of ListServiceDeployments, newest by
/// createdAt, then DescribeServiceDeployments); `None` when the service has none.
pub async fn latest_deployment(aws: &Aws, cluster: &str, service: &str) -> Result<Option<ServiceDeploymentState>> {
    let listed = super::service_deployments(aws, cluster, service, &[]).await?;
    let Some(newest) = listed.first() else { return Ok(None) };
    describe_deployment(aws, &newest.arn).await
}

/// One deployment by ARN (DescribeServiceDeployments).
pub async fn describe_deployment(aws: &Aws, arn: &str) -> Result<Option<ServiceDeploymentState>> {
    let out = aws
        .ecs
        .describe_service_deployments()
        .service_deployment_arns(arn)
        .send()
        .await
        .map_err(|e| aws_error("DescribeServiceDeployments", e))?;
    Ok(out.service_deployments().first().map(|d| ServiceDeploymentState {
        arn: d.service_deployment_arn().unwrap_or(arn).to_string(),
        status: d.status().map(|s| s.as_str().to_string()).unwrap_or_default(),
        reason: d.status_reason().unwrap_or_default().to_string(),
        stage: d.lifecycle_stage().map(|s| s.as_str().to_string()),
        production_weight: d.target_service_revision().and_then(|r| r.requested_production_traffic_weight()),
        paused: d
            .lifecycle_hook_details()
            .iter()
            .filter(|h| {
                h.target_type() == Some(&DeploymentLifecycleHookTargetType::Pause)
                    && h.status() == Some(&DeploymentLifecycleHookStatus::AwaitingAction)
            })
            .filter_map(|h| h.hook_id().map(|id| PausedHook { id: id.to_string() }))
            .collect(),
        deployment: d.deployment_configuration().map(deployment_from),
        target_revision: d.target_service_revision().and_then(|r| r.arn()).map(str::to_string),
        sources: d.source_service_revisions().iter().filter_map(|r| r.arn()).map(str::to_string).collect(),
        sources_running: d
            .source_service_revisions()
            .iter()
            .fold((0, 0), |(running, wanted), r| (running + r.running_task_count(), wanted + r.requested_task_count())),
        target_running: d.target_service_revision().map_or(0, |r| r.running_task_count()),
    }))
}

/// Answers a PAUSE hook: CONTINUE lets the deployment go on, ROLLBACK rolls it back
/// (ContinueServiceDeployment).
pub async fn continue_deployment(aws: &Aws, arn: &str, hook: &str, proceed: bool) -> Result<()> {
    let action =
        if proceed { DeploymentLifecycleHookAction::Continue } else { DeploymentLifecycleHookAction::Rollback };
    sent(
        "ContinueServiceDeployment",
        aws.ecs.continue_service_deployment().service_deployment_arn(arn).hook_id(hook).action(action).send(),
    )
    .await
}

/// The stage of a deployment in words, as `wait_stable` reports it: "canary 10% (bake 3m left)",
/// "test traffic", "production traffic shifted", "cleaning up". `bake_left` is the minutes of the
/// current bake left, when known.
pub fn stage_line(state: &ServiceDeploymentState, bake_left: Option<u64>) -> String {
    use super::deploy::Strategy;
    let left = bake_left.map(|m| format!(" (bake {m}m left)")).unwrap_or_default();
    let weight = state.production_weight.map(|w| format!("{}%", (w * 10.0).round() / 10.0));
    let strategy = state.deployment.as_ref().map(|d| &d.strategy);
    match state.stage.as_deref().unwrap_or_default() {
        _ if state.rolled_back() => format!("rolling back ({})", state.status),
        "RECONCILE_SERVICE" | "PRE_SCALE_UP" | "SCALE_UP" | "POST_SCALE_UP" => "starting the new revision".into(),
        "TEST_TRAFFIC_SHIFT" | "POST_TEST_TRAFFIC_SHIFT" if !state.paused.is_empty() => {
            "test traffic (paused for the check)".into()
        }
        "TEST_TRAFFIC_SHIFT" | "POST_TEST_TRAFFIC_SHIFT" => "test traffic".into(),
        "PRE_PRODUCTION_TRAFFIC_SHIFT" | "PRODUCTION_TRAFFIC_SHIFT" => match (strategy, weight) {
            (Some(Strategy::Canary { tenths, .. }), None) => format!("canary {}%{left}", f64::from(*tenths) / 10.0),
            (Some(Strategy::Canary { .. }), Some(w)) => format!("canary {w}{left}"),
            (Some(Strategy::Linear { .. }), Some(w)) => format!("linear {w}{left}"),
            (_, Some(w)) => format!("shifting production traffic ({w})"),
            _ => "shifting production traffic".into(),
        },
        "POST_PRODUCTION_TRAFFIC_SHIFT" => "production traffic shifted".into(),
        "BAKE_TIME" => format!("production traffic shifted{left}"),
        "CLEAN_UP" => "cleaning up".into(),
        "" => state.status.to_lowercase().replace('_', " "),
        other => other.to_lowercase().replace('_', " "),
    }
}

#[cfg(test)]
mod tests {
    use super::super::deploy::Strategy;
    use super::*;

    #[test]
    fn stages_read_as_words() {
        let mut state = ServiceDeploymentState {
            arn: "arn:d".into(),
            status: "IN_PROGRESS".into(),
            reason: String::new(),
            stage: Some("PRODUCTION_TRAFFIC_SHIFT".into()),
            production_weight: Some(10.0),
            paused: Vec::new(),
            deployment: Some(Deployment {
                strategy: Strategy::Canary { bake: 5, tenths: 100, step_bake: 3 },
                ..Deployment::default()
            }),
            target_revision: None,
            sources: Vec::new(),
            sources_running: (0, 0),
            target_running: 0,
        };
        assert_eq!(stage_line(&state, Some(3)), "canary 10% (bake 3m left)");
        state.stage = Some("TEST_TRAFFIC_SHIFT".into());
        assert_eq!(stage_line(&state, None), "test traffic");
        state.stage = Some("BAKE_TIME".into());
        assert_eq!(stage_line(&state, None), "production traffic shifted");
        state.stage = Some("CLEAN_UP".into());
        assert_eq!(stage_line(&state, None), "cleaning up");
        state.status = "ROLLBACK_IN_PROGRESS".into();
        assert_eq!(stage_line(&state, None), "rolling back (ROLLBACK_IN_PROGRESS)");
    }
}
