//! One-off tasks (RunTask): a copy of a task definition run with its command and environment
//! overridden, watched until it stops (its log lines on the way), its exit code and stopped
//! reason; StopTask when whoever waits gives up.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, ContainerOverride, KeyValuePair, NetworkConfiguration, TaskOverride,
};

use super::{StrategyItem, TaskDefinition, built, strategy_to};
use crate::aws::queries::{LogSource, log_events, log_sources};
use crate::error::{Error, Result, aws_error, sent};
use crate::poll::{Check, Wait};
use crate::runtime::Aws;
use crate::timing::{ONE_OFF_TASK_PACE, ONE_OFF_TASK_TIMEOUT};

/// A one-off run of a task definition: where it runs and what it overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneOffTask {
    /// The cluster (name or ARN).
    pub cluster: String,
    /// The task definition (ARN, `family:revision` or family).
    pub task_definition: String,
    /// The container whose command and environment are overridden.
    pub container: String,
    /// The command to run instead of the image's, when given.
    pub command: Option<Vec<String>>,
    /// Environment variables added to (or replacing those of) the container.
    pub env: BTreeMap<String, String>,
    /// Task CPU units instead of the task definition's, when given.
    pub cpu: Option<i32>,
    /// Task memory (MiB) instead of the task definition's, when given.
    pub memory: Option<i32>,
    /// Subnet ids (awsvpc).
    pub subnets: Vec<String>,
    /// Security group ids (none: the VPC's default group, as ECS does).
    pub security_groups: Vec<String>,
    /// Whether the task gets a public IP.
    pub public_ip: bool,
    /// The capacity provider strategy.
    pub capacity: Vec<StrategyItem>,
}

/// A one-off task as DescribeTasks last showed it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskRun {
    /// Its ARN.
    pub arn: String,
    /// `PROVISIONING`, `PENDING`, `RUNNING`, ..., `STOPPED`.
    pub last_status: String,
    /// Why it stopped (empty while it runs).
    pub stopped_reason: String,
    /// The overridden container's exit code, when it ran and exited.
    pub exit_code: Option<i32>,
}

impl TaskRun {
    /// Whether the task has stopped.
    pub fn stopped(&self) -> bool {
        self.last_status == "STOPPED"
    }

    /// The task id: the last part of its ARN (awslogs streams end with it).
    pub fn id(&self) -> &str {
        crate::arn::last_segment(&self.arn)
    }
}

/// Where `container` of `definition` sends its logs (awslogs), if it does.
pub fn container_logs(definition: &TaskDefinition, container: &str) -> Option<LogSource> {
    let mut only = definition.clone();
    only.spec.containers.retain(|c| c.name == container);
    log_sources(&only).into_iter().next()
}

/// Starts the task (RunTask) and returns its ARN; RunTask's failures (no capacity, a bad
/// subnet, ...) are an error with AWS's reason.
pub async fn start_task(aws: &Aws, task: &OneOffTask) -> Result<String> {
    let vpc = AwsVpcConfiguration::builder()
        .set_subnets(Some(task.subnets.clone()))
        .set_security_groups((!task.security_groups.is_empty()).then(|| task.security_groups.clone()))
        .assign_public_ip(if task.public_ip { AssignPublicIp::Enabled } else { AssignPublicIp::Disabled })
        .build();
    let network = NetworkConfiguration::builder().awsvpc_configuration(built("the task's network", vpc)?).build();
    let env: Vec<KeyValuePair> =
        task.env.iter().map(|(k, v)| KeyValuePair::builder().name(k).value(v).build()).collect();
    let container = ContainerOverride::builder()
        .name(&task.container)
        .set_command(task.command.clone())
        .set_environment((!env.is_empty()).then_some(env))
        .build();
    let overrides = TaskOverride::builder()
        .container_overrides(container)
        .set_cpu(task.cpu.map(|c| c.to_string()))
        .set_memory(task.memory.map(|m| m.to_string()))
        .build();
    let out = aws
        .ecs
        .run_task()
        .cluster(&task.cluster)
        .task_definition(&task.task_definition)
        .count(1)
        .started_by("deckhand")
        .set_capacity_provider_strategy(Some(strategy_to(&task.capacity)?))
        .network_configuration(network)
        .overrides(overrides)
        .send()
        .await
        .map_err(|e| aws_error("RunTask", e))?;
    if let Some(failure) = out.failures().first() {
        let reason = [failure.reason(), failure.detail()].into_iter().flatten().collect::<Vec<_>>().join(": ");
        return Err(Error::conflict(format!("RunTask of {} failed: {reason}", task.task_definition), None));
    }
    out.tasks()
        .first()
        .and_then(|t| t.task_arn())
        .map(str::to_string)
        .ok_or_else(|| Error::missing("RunTask", "tasks[0].taskArn"))
}

/// The task as DescribeTasks shows it now, with `container`'s exit code.
pub async fn describe_run(aws: &Aws, cluster: &str, arn: &str, container: &str) -> Result<TaskRun> {
    let out =
        aws.ecs.describe_tasks().cluster(cluster).tasks(arn).send().await.map_err(|e| aws_error("DescribeTasks", e))?;
    let task = out.tasks().first().ok_or_else(|| Error::missing("DescribeTasks", "tasks[0]"))?;
    Ok(TaskRun {
        arn: arn.to_string(),
        last_status: task.last_status().unwrap_or_default().to_string(),
        stopped_reason: task.stopped_reason().unwrap_or_default().to_string(),
        exit_code: task.containers().iter().find(|c| c.name() == Some(container)).and_then(|c| c.exit_code()),
    })
}

/// Stops the task (StopTask) with `reason`.
pub async fn stop_task(aws: &Aws, cluster: &str, arn: &str, reason: &str) -> Result<()> {
    sent("StopTask", aws.ecs.stop_task().cluster(cluster).task(arn).reason(reason).send()).await
}

/// How a wait for a one-off task ended.
#[derive(Debug)]
pub enum Watched {
    /// The task stopped.
    Stopped(TaskRun),
    /// Ctrl-C before it stopped (the task still runs; the caller decides whether to stop it).
    Interrupted(TaskRun),
}

/// Polls the task until it stops, handing each new log line of its container (`logs`: the
/// container's awslogs destination) to `on_line` as it appears; the lines already seen are read
/// once more after it stopped (the awslogs driver flushes the last ones as the container exits).
/// A one-off task takes from seconds (a task that never starts) to as long as its command runs;
/// the polls go through the polling helper at [`ONE_OFF_TASK_PACE`].
pub async fn watch_task(
    aws: &Aws,
    cluster: &str,
    arn: &str,
    container: &str,
    logs: Option<&LogSource>,
    mut on_line: impl FnMut(&str),
) -> Result<Watched> {
    let mut seen = BTreeSet::new();
    let mut last = None;
    let new_lines = async |seen: &mut BTreeSet<String>, id: &str| -> Result<Vec<String>> {
        let Some(source) = logs else { return Ok(Vec::new()) };
        let stream = format!("{}{id}", source.stream_prefix);
        let events = log_events(aws, &source.group, &stream, 0, 10_000).await?;
        Ok(events.into_iter().filter(|e| seen.insert(e.id.clone())).map(|e| e.message).collect())
    };
    let watched =
        Wait::new(aws.clock(), "one-off task", format!("task {arn}"), ONE_OFF_TASK_PACE, ONE_OFF_TASK_TIMEOUT)
            .quiet()
            .until(async |_| {
                let run = describe_run(aws, cluster, arn, container).await?;
                for line in new_lines(&mut seen, run.id()).await? {
                    on_line(&line);
                }
                if run.stopped() {
                    return Ok(Check::Done(run));
                }
                let line = run.last_status.clone();
                last = Some(run);
                Ok(Check::waiting(line))
            })
            .await;
    match (watched, last) {
        (Ok(run), _) => Ok(Watched::Stopped(run)),
        // Ctrl-C: the caller stops the task (StopTask) and says so.
        (Err(_), Some(run)) if crate::interrupt::requested() => Ok(Watched::Interrupted(run)),
        (Err(err), _) => Err(err),
    }
}
