//! Read-only queries for `deckhand status`, `deckhand logs` and the script queries: service
//! rollouts and events, target health, tasks, log events, and the stack's roles and log groups
//! (which IAM and CloudWatch Logs cannot list by tag). Nothing here sends a mutating request.

use std::collections::{HashMap, VecDeque};

use aws_sdk_ec2::types::Filter;
use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use futures_util::future::try_join_all;

use crate::aws::ecs::{self, Cluster, TaskDefinition};
use crate::aws::elbv2::{self, LoadBalancer, TargetGroup};
use crate::aws::logs::{self, LogGroup};
use crate::error::{Error, Result, aws_error};
use crate::runtime::Aws;
use crate::tagged::STACK_TAG;

/// An ECS service as it runs now: counts, rollouts, newest events.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceReport {
    /// Its ARN.
    pub arn: String,
    /// Its name.
    pub name: String,
    /// The cluster's ARN.
    pub cluster_arn: String,
    /// `ACTIVE`, `DRAINING` or `INACTIVE`.
    pub status: String,
    /// Tasks running.
    pub running: i32,
    /// Tasks starting.
    pub pending: i32,
    /// Tasks wanted.
    pub desired: i32,
    /// The task definition ARN of the primary deployment.
    pub task_definition: String,
    /// Deployments, primary first.
    pub deployments: Vec<Rollout>,
    /// Service events, newest first.
    pub events: Vec<ServiceEvent>,
    /// The target groups it registers tasks in.
    pub target_groups: Vec<String>,
    /// Its `deckhand:stack` tag.
    pub stack: Option<String>,
    /// Whether ECS Exec is on (enableExecuteCommand).
    pub exec: bool,
}

/// One deployment of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    /// `ecs-svc/...`.
    pub id: String,
    /// `PRIMARY`, `ACTIVE` or `INACTIVE`.
    pub status: String,
    /// `IN_PROGRESS`, `COMPLETED` or `FAILED` (empty when ECS gives none).
    pub rollout_state: String,
    /// Why it is in that state.
    pub reason: String,
    /// Tasks running.
    pub running: i32,
    /// Tasks starting.
    pub pending: i32,
    /// Tasks wanted.
    pub desired: i32,
    /// The task definition ARN it deploys.
    pub task_definition: String,
    /// When it last changed (RFC 3339), empty when unknown.
    pub updated_at: String,
}

/// One service event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEvent {
    /// When (RFC 3339).
    pub at: String,
    /// What ECS says.
    pub message: String,
}

/// The health of one target in a target group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetHealth {
    /// The target: an IP address or instance id.
    pub id: String,
    /// Its port.
    pub port: Option<i32>,
    /// `initial`, `healthy`, `unhealthy`, `unused`, `draining` or `unavailable`.
    pub state: String,
    /// The reason code, when not healthy.
    pub reason: String,
    /// The explanation, when not healthy.
    pub description: String,
}

/// One ECS task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// Its ARN.
    pub arn: String,
    /// The short id (the last part of the ARN; the awslogs stream ends with it).
    pub id: String,
    /// `PROVISIONING`, `PENDING`, `RUNNING`, `STOPPED`, ...
    pub last_status: String,
    /// `RUNNING` or `STOPPED`.
    pub desired_status: String,
    /// `HEALTHY`, `UNHEALTHY` or `UNKNOWN`.
    pub health: String,
    /// Its task definition ARN.
    pub task_definition: String,
    /// When it started (RFC 3339), empty when it has not.
    pub started_at: String,
    /// Why it stopped, when it did.
    pub stopped_reason: String,
    /// The private IPv4 address of its network interface (awsvpc), empty when it has none yet.
    pub private_ip: String,
}

/// One log event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    /// Its id (unique in the log group).
    pub id: String,
    /// The log stream (for awslogs: `prefix/container/task-id`).
    pub stream: String,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    /// The line.
    pub message: String,
}

/// Where a container's logs go (awslogs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSource {
    /// The log group.
    pub group: String,
    /// The stream name prefix of the container's tasks: `prefix/container/`.
    pub stream_prefix: String,
}

/// A timestamp as RFC 3339 text (empty when it cannot be shown).
pub fn rfc3339(at: &DateTime) -> String {
    at.fmt(Format::DateTime).unwrap_or_default()
}

/// Milliseconds since the epoch as RFC 3339 text.
pub fn millis_rfc3339(millis: i64) -> String {
    rfc3339(&DateTime::from_millis(millis))
}

/// The awslogs destinations of a task definition's containers.
pub fn log_sources(task: &TaskDefinition) -> Vec<LogSource> {
    task.spec
        .containers
        .iter()
        .filter_map(|c| {
            let logs = c.logs.as_ref().filter(|l| l.driver == "awslogs" && !l.group.is_empty())?;
            let stream_prefix = if logs.stream_prefix.is_empty() {
                String::new()
            } else {
                format!("{}/{}/", logs.stream_prefix, c.name)
            };
            Some(LogSource { group: logs.group.clone(), stream_prefix })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// ECS

/// Every ACTIVE cluster of the region.
pub async fn clusters(aws: &Aws) -> Result<Vec<Cluster>> {
    let arns: Vec<String> = aws
        .ecs
        .list_clusters()
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| aws_error("ListClusters", e))?;
    let batches = try_join_all(arns.chunks(100).map(|chunk| ecs::describe_clusters(aws, chunk.to_vec()))).await?;
    let mut found: Vec<Cluster> = batches.into_iter().flatten().filter(|c| c.status == "ACTIVE").collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// The ACTIVE cluster named `name` (or with this ARN), if any.
pub async fn find_cluster(aws: &Aws, name: &str) -> Result<Option<Cluster>> {
    let found = ecs::describe_clusters(aws, vec![name.to_string()]).await?;
    Ok(found.into_iter().find(|c| c.status == "ACTIVE"))
}

/// The services of a cluster (name or ARN), with counts, rollouts and events; empty when the
/// cluster does not exist.
pub async fn services(aws: &Aws, cluster: &str) -> Result<Vec<ServiceReport>> {
    let mut arns = Vec::new();
    let mut pages = aws.ecs.list_services().cluster(cluster).into_paginator().items().send();
    while let Some(arn) = pages.next().await {
        match arn {
            Ok(arn) => arns.push(arn),
            Err(e) => {
                let err = aws_error("ListServices", e);
                return if err.aws_code() == Some("ClusterNotFoundException") { Ok(vec![]) } else { Err(err) };
            }
        }
    }
    describe_services(aws, cluster, &arns).await
}

/// The named services of a cluster as they run now (missing and INACTIVE ones left out),
/// ten per request, concurrently.
pub async fn describe_services(aws: &Aws, cluster: &str, names: &[String]) -> Result<Vec<ServiceReport>> {
    let batches = names.chunks(10).map(|chunk| async move {
        let out = aws
            .ecs
            .describe_services()
            .cluster(cluster)
            .set_services(Some(chunk.to_vec()))
            .include(aws_sdk_ecs::types::ServiceField::Tags)
            .send()
            .await;
        match out {
            Ok(out) => Ok(out.services().iter().map(service_report).collect::<Vec<_>>()),
            Err(e) => {
                let err = aws_error("DescribeServices", e);
                if err.aws_code() == Some("ClusterNotFoundException") { Ok(vec![]) } else { Err(err) }
            }
        }
    });
    let mut found: Vec<ServiceReport> =
        try_join_all(batches).await?.into_iter().flatten().filter(|s| s.status != "INACTIVE").collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// The service `name` of `cluster`, if it exists and is not INACTIVE.
pub async fn find_service(aws: &Aws, cluster: &str, name: &str) -> Result<Option<ServiceReport>> {
    Ok(describe_services(aws, cluster, &[name.to_string()]).await?.into_iter().next())
}

fn service_report(s: &aws_sdk_ecs::types::Service) -> ServiceReport {
    let mut target_groups: Vec<String> =
        s.load_balancers().iter().filter_map(|lb| lb.target_group_arn()).map(str::to_string).collect();
    target_groups.sort();
    target_groups.dedup();
    let mut deployments: Vec<Rollout> = s
        .deployments()
        .iter()
        .map(|d| Rollout {
            id: d.id().unwrap_or_default().to_string(),
            status: d.status().unwrap_or_default().to_string(),
            rollout_state: d.rollout_state().map(|r| r.as_str().to_string()).unwrap_or_default(),
            reason: d.rollout_state_reason().unwrap_or_default().to_string(),
            running: d.running_count(),
            pending: d.pending_count(),
            desired: d.desired_count(),
            task_definition: d.task_definition().unwrap_or_default().to_string(),
            updated_at: d.updated_at().map(rfc3339).unwrap_or_default(),
        })
        .collect();
    deployments.sort_by_key(|d| d.status != "PRIMARY");
    let primary_task = deployments.first().map(|d| d.task_definition.clone()).filter(|t| !t.is_empty());
    ServiceReport {
        arn: s.service_arn().unwrap_or_default().to_string(),
        name: s.service_name().unwrap_or_default().to_string(),
        cluster_arn: s.cluster_arn().unwrap_or_default().to_string(),
        status: s.status().unwrap_or_default().to_string(),
        running: s.running_count(),
        pending: s.pending_count(),
        desired: s.desired_count(),
        exec: s.enable_execute_command(),
        task_definition: primary_task.unwrap_or_else(|| s.task_definition().unwrap_or_default().to_string()),
        deployments,
        events: s
            .events()
            .iter()
            .map(|e| ServiceEvent {
                at: e.created_at().map(rfc3339).unwrap_or_default(),
                message: e.message().unwrap_or_default().to_string(),
            })
            .collect(),
        target_groups,
        stack: s.tags().iter().find(|t| t.key() == Some(STACK_TAG)).and_then(|t| t.value()).map(str::to_string),
    }
}

/// The tasks of a service (running and recently stopped), oldest first.
pub async fn tasks(aws: &Aws, cluster: &str, service: &str) -> Result<Vec<Task>> {
    let list = |status: aws_sdk_ecs::types::DesiredStatus| async move {
        let mut arns = Vec::new();
        let mut pages = aws
            .ecs
            .list_tasks()
            .cluster(cluster)
            .service_name(service)
            .desired_status(status)
            .into_paginator()
            .items()
            .send();
        while let Some(arn) = pages.next().await {
            match arn {
                Ok(arn) => arns.push(arn),
                Err(e) => {
                    let err = aws_error("ListTasks", e);
                    let gone = matches!(err.aws_code(), Some("ClusterNotFoundException" | "ServiceNotFoundException"));
                    return if gone { Ok(vec![]) } else { Err(err) };
                }
            }
        }
        Ok::<_, Error>(arns)
    };
    let (running, stopped) = tokio::try_join!(
        list(aws_sdk_ecs::types::DesiredStatus::Running),
        list(aws_sdk_ecs::types::DesiredStatus::Stopped)
    )?;
    let arns: Vec<String> = running.into_iter().chain(stopped).collect();
    let batches = arns.chunks(100).map(|chunk| async move {
        aws.ecs
            .describe_tasks()
            .cluster(cluster)
            .set_tasks(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| aws_error("DescribeTasks", e))
    });
    let mut found = Vec::new();
    for out in try_join_all(batches).await? {
        for t in out.tasks() {
            let arn = t.task_arn().unwrap_or_default().to_string();
            found.push((
                t.created_at().and_then(|c| c.to_millis().ok()).unwrap_or(0),
                Task {
                    id: crate::arn::last_segment(&arn).to_string(),
                    arn,
                    last_status: t.last_status().unwrap_or_default().to_string(),
                    desired_status: t.desired_status().unwrap_or_default().to_string(),
                    health: t.health_status().map(|h| h.as_str().to_string()).unwrap_or_else(|| "UNKNOWN".into()),
                    task_definition: t.task_definition_arn().unwrap_or_default().to_string(),
                    started_at: t.started_at().map(rfc3339).unwrap_or_default(),
                    stopped_reason: t.stopped_reason().unwrap_or_default().to_string(),
                    private_ip: private_ip(t).unwrap_or_default().to_string(),
                },
            ));
        }
    }
    found.sort_by_key(|(created, _)| *created);
    Ok(found.into_iter().map(|(_, task)| task).collect())
}

/// A task's private IPv4 address: its ENI attachment's `privateIPv4Address` detail.
fn private_ip(task: &aws_sdk_ecs::types::Task) -> Option<&str> {
    task.attachments()
        .iter()
        .flat_map(|a| a.details())
        .find(|d| d.name() == Some("privateIPv4Address"))
        .and_then(|d| d.value())
}

/// Task definitions by ARN (or family:revision), concurrently; missing ones are left out.
pub async fn task_definitions(aws: &Aws, names: &[String]) -> Result<HashMap<String, TaskDefinition>> {
    let reads = names.iter().map(|name| async move {
        match ecs::describe_task_definition(aws, name).await {
            Ok(found) => Ok(found.map(|(_, task)| (name.clone(), task))),
            Err(err) if err.aws_code() == Some("ClientException") => Ok(None),
            Err(err) => Err(err),
        }
    });
    Ok(try_join_all(reads).await?.into_iter().flatten().collect())
}

// ---------------------------------------------------------------------------------------------
// Load balancing

/// The health of every target registered in a target group.
pub async fn target_health(aws: &Aws, target_group_arn: &str) -> Result<Vec<TargetHealth>> {
    let out = aws
        .elbv2
        .describe_target_health()
        .target_group_arn(target_group_arn)
        .send()
        .await
        .map_err(|e| aws_error("DescribeTargetHealth", e))?;
    let mut found: Vec<TargetHealth> = out
        .target_health_descriptions()
        .iter()
        .map(|d| {
            let health = d.target_health();
            TargetHealth {
                id: d.target().and_then(|t| t.id()).unwrap_or_default().to_string(),
                port: d.target().and_then(|t| t.port()),
                state: health.and_then(|h| h.state()).map(|s| s.as_str().to_string()).unwrap_or_default(),
                reason: health.and_then(|h| h.reason()).map(|r| r.as_str().to_string()).unwrap_or_default(),
                description: health.and_then(|h| h.description()).unwrap_or_default().to_string(),
            }
        })
        .collect();
    found.sort_by(|a, b| (&a.id, a.port).cmp(&(&b.id, b.port)));
    Ok(found)
}

/// The load balancer named `name`, if any.
pub async fn find_load_balancer(aws: &Aws, name: &str) -> Result<Option<LoadBalancer>> {
    match aws.elbv2.describe_load_balancers().names(name).send().await {
        Ok(out) => out.load_balancers().first().map(elbv2::load_balancer_from).transpose(),
        Err(e) => {
            let err = aws_error("DescribeLoadBalancers", e);
            if err.aws_code() == Some("LoadBalancerNotFound") { Ok(None) } else { Err(err) }
        }
    }
}

/// The target group named `name`, if any.
pub async fn find_target_group(aws: &Aws, name: &str) -> Result<Option<TargetGroup>> {
    Ok(elbv2::target_groups(aws).await?.into_iter().find(|t| t.name == name))
}

/// The state (`provisioning`, `active`, `active_impaired`, `failed`) of load balancers by ARN.
pub async fn load_balancer_states(aws: &Aws, arns: &[String]) -> Result<HashMap<String, String>> {
    let batches = arns.chunks(20).map(|chunk| async move {
        aws.elbv2
            .describe_load_balancers()
            .set_load_balancer_arns(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| aws_error("DescribeLoadBalancers", e))
    });
    let mut states = HashMap::new();
    for out in try_join_all(batches).await? {
        for lb in out.load_balancers() {
            let state = lb.state().and_then(|s| s.code()).map(|c| c.as_str().to_string()).unwrap_or_default();
            states.insert(lb.load_balancer_arn().unwrap_or_default().to_string(), state);
        }
    }
    Ok(states)
}

// ---------------------------------------------------------------------------------------------
// EC2

/// The state of NAT gateways (`pending`, `available`, ...) by id.
pub async fn nat_gateway_states(aws: &Aws, ids: &[String]) -> Result<HashMap<String, String>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let out = aws
        .ec2
        .describe_nat_gateways()
        .set_nat_gateway_ids(Some(ids.to_vec()))
        .send()
        .await
        .map_err(|e| aws_error("DescribeNatGateways", e))?;
    Ok(out
        .nat_gateways()
        .iter()
        .map(|n| {
            let state = n.state().map(|s| s.as_str().to_string()).unwrap_or_default();
            (n.nat_gateway_id().unwrap_or_default().to_string(), state)
        })
        .collect())
}

/// The state of VPC endpoints (`pending`, `available`, ...) by id.
pub async fn endpoint_states(aws: &Aws, ids: &[String]) -> Result<HashMap<String, String>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let filter = Filter::builder().name("vpc-endpoint-id").set_values(Some(ids.to_vec())).build();
    let out = aws
        .ec2
        .describe_vpc_endpoints()
        .filters(filter)
        .send()
        .await
        .map_err(|e| aws_error("DescribeVpcEndpoints", e))?;
    Ok(out
        .vpc_endpoints()
        .iter()
        .map(|e| {
            let state = e.state().map(|s| s.as_str().to_ascii_lowercase()).unwrap_or_default();
            (e.vpc_endpoint_id().unwrap_or_default().to_string(), state)
        })
        .collect())
}

/// The log group named `name` with its tags, if any.
pub async fn find_log_group(aws: &Aws, name: &str) -> Result<Option<LogGroup>> {
    logs::fetch_log_group(aws, name).await
}

/// The newest `limit` events of `group` from `start` (ms since the epoch) on, in streams that
/// start with `stream_prefix` (all streams when empty), oldest first. Empty when the group does
/// not exist.
pub async fn log_events(
    aws: &Aws,
    group: &str,
    stream_prefix: &str,
    start: i64,
    limit: usize,
) -> Result<Vec<LogEvent>> {
    let mut request = aws.logs.filter_log_events().log_group_name(group).start_time(start);
    if !stream_prefix.is_empty() {
        request = request.log_stream_name_prefix(stream_prefix);
    }
    let mut pages = request.into_paginator().send();
    let mut newest = VecDeque::new();
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(page) => page,
            Err(e) => {
                let err = aws_error("FilterLogEvents", e);
                return if err.aws_code() == Some("ResourceNotFoundException") { Ok(vec![]) } else { Err(err) };
            }
        };
        for e in page.events() {
            newest.push_back(LogEvent {
                id: e.event_id().unwrap_or_default().to_string(),
                stream: e.log_stream_name().unwrap_or_default().to_string(),
                timestamp: e.timestamp().unwrap_or_default(),
                message: e.message().unwrap_or_default().trim_end().to_string(),
            });
            if newest.len() > limit {
                newest.pop_front();
            }
        }
    }
    let mut events: Vec<LogEvent> = newest.into();
    events.sort_by_key(|e| e.timestamp);
    Ok(events)
}
