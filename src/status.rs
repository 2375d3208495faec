//! `deckhand status`: every resource of a stack (found by its tag) with its state, and for each
//! ECS service its counts, rollouts, target health and newest events; as a table or as JSON.
//!
//! The JSON form (`--output json`) is for automation; its field names are stable:
//!
//! ```text
//! { "stack": "myapp",
//!   "resources": [ { "type", "name", "id", "state", "detail" } ],
//!   "services":  [ { "name", "cluster", "arn", "status", "running", "pending", "desired", "exec",
//!                    "task_definition",                       // family:revision
//!                    "deployments": [ { "id", "status", "rollout_state", "reason", "running",
//!                                       "pending", "desired", "task_definition", "updated_at" } ],
//!                    "tasks":   [ { "id", "last_status", "desired_status", "private_ip", "task_definition",
//!                                    "started_at" } ],                // not yet stopped, oldest first
//!                    "targets": [ { "target_group", "id", "port", "state", "reason", "description" } ],
//!                    "autoscaling": null | { "min", "max", "policies": [ { "name", "metric", "target" } ] },
//!                    "service_deployment": null | { "arn", "status", "reason", "lifecycle_stage",
//!                                                   "stage", "in_progress" },   // the newest
//!                    "events":  [ { "at", "message" } ] } ] }            // newest first
//! ```
//!
//! `type` is the script function's name (`subnet`, `load_balancer`, ...); `state` is AWS's
//! lifecycle state where the resource has one (else null); times are RFC 3339. A service
//! deployment's `lifecycle_stage` is ECS's (`PRODUCTION_TRAFFIC_SHIFT`, ...), its `stage` the same
//! in the words `wait_stable` reports it with ("canary 10%", "test traffic", "cleaning up").

use std::collections::{BTreeMap, HashMap};

use comfy_table::ContentArrangement;
use futures_util::future::try_join_all;
use serde_json::{Value, json};

use crate::aws::autoscaling::ScalableTarget;
use crate::aws::ecs::{self, ServiceDeploymentState, short_task};
use crate::aws::queries::{self, ServiceEvent, ServiceReport, TargetHealth, Task};
use crate::error::Result;
use crate::kinds::{self, Inventory, Showing, StatusReads};
use crate::runtime::Aws;

/// How many service events the table shows (JSON has every event ECS returns).
const EVENTS_SHOWN: usize = 5;

/// One resource of the stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// The script function that makes it, e.g. `subnet`.
    pub kind: &'static str,
    /// Its name.
    pub name: String,
    /// Its id or ARN.
    pub id: String,
    /// AWS's lifecycle state, where it has one.
    pub state: Option<String>,
    /// A few words about it (AZ and CIDR, DNS name, counts).
    pub detail: String,
}

/// One ECS service of the stack as it runs now.
#[derive(Debug, Clone)]
pub struct ServiceStatus {
    /// The cluster's name.
    pub cluster: String,
    /// Counts, rollouts, events.
    pub report: ServiceReport,
    /// The primary task definition as `family:revision`.
    pub task: String,
    /// Its tasks that have not stopped (running, starting or stopping), oldest first.
    pub tasks: Vec<Task>,
    /// The targets of its target groups, with the target group's name.
    pub targets: Vec<(String, TargetHealth)>,
    /// Its scalable target (min/max and policies), when autoscaling manages its count.
    pub autoscaling: Option<ScalableTarget>,
    /// Its newest service deployment (DescribeServiceDeployments), when it has one.
    pub deployment: Option<ServiceDeploymentState>,
}

/// Everything `deckhand status` shows about a stack.
#[derive(Debug, Clone)]
pub struct StackStatus {
    /// The stack's name.
    pub stack: String,
    /// Its resources, in dependency order (network first, services last).
    pub resources: Vec<Resource>,
    /// Its ECS services.
    pub services: Vec<ServiceStatus>,
}

impl StackStatus {
    /// Reads the stack's [`Inventory`] (what `destroy` would delete), then, concurrently, service
    /// details, task definitions, target health and lifecycle states.
    pub async fn read(aws: &Aws, stack: &str) -> Result<StackStatus> {
        let inventory = Inventory::read(aws, stack).await?;
        let snapshot = &inventory.snapshot;
        // The stack's services by cluster, its own or not.
        let mut by_cluster: BTreeMap<(&str, &str), Vec<String>> = BTreeMap::new();
        for s in &inventory.services {
            by_cluster.entry((s.cluster.as_str(), s.cluster_arn.as_str())).or_default().push(s.arn.clone());
        }

        let (reports, health) = tokio::try_join!(
            try_join_all(by_cluster.iter().map(|((name, arn), services)| async move {
                let reports = queries::describe_services(aws, arn, services).await?;
                Ok::<_, crate::Error>(reports.into_iter().map(|r| (name.to_string(), r)).collect::<Vec<_>>())
            })),
            try_join_all(snapshot.elbv2.target_groups.iter().map(|tg| queries::target_health(aws, &tg.arn))),
        )?;

        let health: HashMap<&str, (&str, &Vec<TargetHealth>)> = snapshot
            .elbv2
            .target_groups
            .iter()
            .zip(&health)
            .map(|(tg, targets)| (tg.arn.as_str(), (tg.name.as_str(), targets)))
            .collect();
        let reports: Vec<(String, ServiceReport)> = reports.into_iter().flatten().collect();
        let (service_tasks, deployments) = tokio::try_join!(
            try_join_all(reports.iter().map(|(_, r)| queries::tasks(aws, &r.cluster_arn, &r.name))),
            try_join_all(reports.iter().map(|(_, r)| ecs::latest_deployment(aws, &r.cluster_arn, &r.name))),
        )?;

        // Each kind shows its own, in the registry's order (what others use first).
        let reads = StatusReads { inventory: &inventory, reports: &reports, health: &health };
        let shown = try_join_all(kinds::KINDS.iter().map(|kind| {
            let entries = inventory.entries.iter().filter(|e| e.kind == kind.kind()).collect();
            kind.status(Showing { aws, reads: &reads, entries })
        }))
        .await?;
        let resources = kinds::KINDS
            .iter()
            .zip(shown)
            .flat_map(|(kind, rows)| {
                rows.into_iter().map(|row| Resource {
                    kind: kind.kind().name(),
                    name: row.name,
                    id: row.id,
                    state: row.state,
                    detail: row.detail,
                })
            })
            .collect();

        let services = reports
            .into_iter()
            .zip(service_tasks)
            .zip(deployments)
            .map(|(((cluster, report), tasks), deployment)| {
                let targets = report
                    .target_groups
                    .iter()
                    .filter_map(|arn| health.get(arn.as_str()))
                    .flat_map(|(name, targets)| targets.iter().map(|t| (name.to_string(), t.clone())))
                    .collect();
                let autoscaling = snapshot.scaling.of(&cluster, &report.name).cloned();
                let tasks = tasks.into_iter().filter(|t| t.last_status != "STOPPED").collect();
                ServiceStatus {
                    task: short_task(&report.task_definition),
                    autoscaling,
                    cluster,
                    report,
                    tasks,
                    targets,
                    deployment,
                }
            })
            .collect();
        Ok(StackStatus { stack: stack.to_string(), resources, services })
    }

    /// The status as JSON, with the field names documented at the top of this module.
    pub fn to_json(&self) -> Value {
        let resources: Vec<Value> = self
            .resources
            .iter()
            .map(|r| json!({ "type": r.kind, "name": r.name, "id": r.id, "state": r.state, "detail": r.detail }))
            .collect();
        let services: Vec<Value> = self.services.iter().map(service_json).collect();
        json!({ "stack": self.stack, "resources": resources, "services": services })
    }

    /// The status as a readable table followed by one section per service.
    pub fn render(&self) -> String {
        if self.resources.is_empty() {
            return format!("Stack {} has no resources.", self.stack);
        }
        let mut out = format!("Stack {}: {} resources\n\n", self.stack, self.resources.len());
        let header = ["TYPE", "NAME", "ID", "STATE", "DETAIL"].map(String::from);
        let rows = self.resources.iter().map(|r| {
            let state = r.state.clone().unwrap_or_else(|| "-".into());
            [r.kind.to_string(), r.name.clone(), crate::arn::short_id(&r.id).to_string(), state, r.detail.clone()]
        });
        out.push_str(&plain_table(Some(header), rows));
        out.push('\n');
        for s in &self.services {
            out.push('\n');
            out.push_str(&render_service(s));
        }
        out.trim_end().to_string()
    }
}

fn service_json(s: &ServiceStatus) -> Value {
    let r = &s.report;
    let deployments: Vec<Value> = r
        .deployments
        .iter()
        .map(|d| {
            json!({ "id": d.id, "status": d.status, "rollout_state": d.rollout_state, "reason": d.reason,
                    "running": d.running, "pending": d.pending, "desired": d.desired,
                    "task_definition": short_task(&d.task_definition), "updated_at": d.updated_at })
        })
        .collect();
    let tasks: Vec<Value> = s
        .tasks
        .iter()
        .map(|t| {
            json!({ "id": t.id, "last_status": t.last_status, "desired_status": t.desired_status,
                    "private_ip": t.private_ip, "task_definition": short_task(&t.task_definition),
                    "started_at": t.started_at })
        })
        .collect();
    let targets: Vec<Value> = s
        .targets
        .iter()
        .map(|(tg, t)| {
            json!({ "target_group": tg, "id": t.id, "port": t.port, "state": t.state, "reason": t.reason,
                    "description": t.description })
        })
        .collect();
    let events: Vec<Value> = r.events.iter().map(|e| json!({ "at": e.at, "message": e.message })).collect();
    let autoscaling = s.autoscaling.as_ref().map(|t| {
        let policies: Vec<Value> = t
            .policies
            .iter()
            .map(|p| json!({ "name": p.name, "metric": p.metric.map(|m| m.key()), "target": p.target }))
            .collect();
        json!({ "min": t.min, "max": t.max, "policies": policies })
    });
    let service_deployment = s.deployment.as_ref().map(|d| {
        json!({ "arn": d.arn, "status": d.status, "reason": d.reason, "lifecycle_stage": d.stage,
                "stage": ecs::stage_line(d, None), "in_progress": !d.finished() })
    });
    json!({ "name": r.name, "cluster": s.cluster, "arn": r.arn, "status": r.status, "running": r.running,
            "pending": r.pending, "desired": r.desired, "task_definition": s.task, "exec": r.exec,
            "deployments": deployments, "service_deployment": service_deployment, "tasks": tasks,
            "targets": targets, "autoscaling": autoscaling, "events": events })
}

fn render_service(s: &ServiceStatus) -> String {
    let r = &s.report;
    let mut out = format!(
        "Service {} (cluster {}): {}, {} running / {} pending / {} desired, task {}{}\n",
        r.name,
        s.cluster,
        r.status,
        r.running,
        r.pending,
        r.desired,
        s.task,
        if r.exec { ", exec on" } else { "" }
    );
    // A deployment under way (or rolling back) in wait_stable's words. How long the current bake
    // has left is not shown: DescribeServiceDeployments says when a deployment started, not when
    // its stage did.
    if let Some(d) = s.deployment.as_ref().filter(|d| !d.finished()) {
        let id = d.arn.rsplit('/').next().unwrap_or_default();
        out.push_str(&format!("  in progress: {}, service deployment {id}\n", ecs::stage_line(d, None)));
    }
    for d in &r.deployments {
        let state = if d.rollout_state.is_empty() { "-" } else { &d.rollout_state };
        out.push_str(&format!(
            "  deployment {} {}: {state}, {} running / {} pending / {} desired, task {}\n",
            d.status,
            d.id,
            d.running,
            d.pending,
            d.desired,
            short_task(&d.task_definition)
        ));
        if !d.reason.is_empty() {
            out.push_str(&format!("    {}\n", d.reason));
        }
    }
    if !s.tasks.is_empty() {
        out.push_str("  tasks:\n");
        for t in &s.tasks {
            let ip = if t.private_ip.is_empty() { "-" } else { &t.private_ip };
            let wanted =
                if t.desired_status == t.last_status { String::new() } else { format!(" -> {}", t.desired_status) };
            out.push_str(&format!(
                "    {} {ip} {}{wanted}, task {}\n",
                t.id,
                t.last_status,
                short_task(&t.task_definition)
            ));
        }
    }
    if r.target_groups.is_empty() {
        out.push_str("  targets: no target group\n");
    } else if s.targets.is_empty() {
        out.push_str("  targets: none registered\n");
    } else {
        out.push_str("  targets:\n");
        for (tg, t) in &s.targets {
            let port = t.port.map(|p| format!(":{p}")).unwrap_or_default();
            let why = if t.reason.is_empty() { String::new() } else { format!(" ({}: {})", t.reason, t.description) };
            out.push_str(&format!("    {tg} {}{port} {}{why}\n", t.id, t.state));
        }
    }
    if let Some(t) = &s.autoscaling {
        out.push_str(&format!("  autoscaling: {}-{} tasks (now {} desired)\n", t.min, t.max, r.desired));
        for p in &t.policies {
            out.push_str(&format!("    policy {p}\n"));
        }
    }
    out.push_str(&render_events(&r.events));
    out
}

fn render_events(events: &[ServiceEvent]) -> String {
    if events.is_empty() {
        return "  events: none\n".into();
    }
    let mut out = String::from("  events (newest first):\n");
    for e in events.iter().take(EVENTS_SHOWN) {
        out.push_str(&format!("    {} {}\n", e.at, e.message));
    }
    out
}

/// A borderless table (comfy-table): columns two spaces apart, padded to their widest cell, no
/// trailing spaces; the header row, when given, first.
pub(crate) fn plain_table<R: IntoIterator<Item = String>>(
    header: Option<R>,
    rows: impl IntoIterator<Item = R>,
) -> String {
    let mut table = comfy_table::Table::new();
    table.load_style(comfy_table::presets::NOTHING).set_content_arrangement(ContentArrangement::Disabled);
    if let Some(header) = header {
        table.set_header(header);
    }
    for row in rows {
        table.add_row(row);
    }
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    table.trim_fmt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::queries::Rollout;

    #[test]
    fn tables_pad_every_column_but_the_last() {
        let header = ["TYPE", "NAME", "DETAIL"].map(String::from);
        let rows = [
            ["subnet", "myapp-a", "x"].map(String::from),
            ["log_group", "/ecs/myapp", "kept 30 days"].map(String::from),
        ];
        assert_eq!(
            plain_table(Some(header), rows),
            "TYPE       NAME        DETAIL\nsubnet     myapp-a     x\nlog_group  /ecs/myapp  kept 30 days"
        );
    }

    fn failing_service() -> ServiceStatus {
        let rollout = |status: &str, state: &str, reason: &str, revision: i32, running: i32| Rollout {
            id: format!("ecs-svc/{revision}"),
            status: status.into(),
            rollout_state: state.into(),
            reason: reason.into(),
            running,
            pending: 0,
            desired: 2,
            task_definition: format!("arn:aws:ecs:us-west-2:123456789012:task-definition/web:{revision}"),
            updated_at: "2026-11-25T10:00:00Z".into(),
        };
        ServiceStatus {
            cluster: "web".into(),
            report: ServiceReport {
                arn: "arn:aws:ecs:us-west-2:123456789012:service/web/web".into(),
                name: "web".into(),
                cluster_arn: "arn:aws:ecs:us-west-2:123456789012:cluster/web".into(),
                status: "ACTIVE".into(),
                running: 1,
                pending: 0,
                desired: 2,
                task_definition: "arn:aws:ecs:us-west-2:123456789012:task-definition/web:2".into(),
                deployments: vec![
                    rollout("PRIMARY", "FAILED", "circuit breaker: tasks failed to start", 2, 0),
                    rollout("ACTIVE", "COMPLETED", "", 1, 1),
                ],
                events: (1..=7)
                    .map(|i| ServiceEvent { at: format!("2026-11-25T10:0{i}:00Z"), message: format!("event {i}") })
                    .collect(),
                target_groups: vec!["arn:tg".into()],
                stack: Some("web".into()),
                exec: false,
            },
            task: "web:2".into(),
            tasks: vec![],
            targets: vec![(
                "web".into(),
                TargetHealth {
                    id: "10.0.1.5".into(),
                    port: Some(8080),
                    state: "unhealthy".into(),
                    reason: "Target.Timeout".into(),
                    description: "Request timed out".into(),
                },
            )],
            autoscaling: None,
            deployment: None,
        }
    }

    #[test]
    fn a_failing_rollout_shows_both_deployments_the_unhealthy_target_and_the_newest_events() {
        let text = render_service(&failing_service());
        assert_eq!(
            text,
            "Service web (cluster web): ACTIVE, 1 running / 0 pending / 2 desired, task web:2\n\
             \x20 deployment PRIMARY ecs-svc/2: FAILED, 0 running / 0 pending / 2 desired, task web:2\n\
             \x20   circuit breaker: tasks failed to start\n\
             \x20 deployment ACTIVE ecs-svc/1: COMPLETED, 1 running / 0 pending / 2 desired, task web:1\n\
             \x20 targets:\n\
             \x20   web 10.0.1.5:8080 unhealthy (Target.Timeout: Request timed out)\n\
             \x20 events (newest first):\n\
             \x20   2026-11-25T10:01:00Z event 1\n\
             \x20   2026-11-25T10:02:00Z event 2\n\
             \x20   2026-11-25T10:03:00Z event 3\n\
             \x20   2026-11-25T10:04:00Z event 4\n\
             \x20   2026-11-25T10:05:00Z event 5\n"
        );
    }

    #[test]
    fn json_keeps_every_event_and_names_deployments_by_family_and_revision() {
        let status = StackStatus { stack: "web".into(), resources: vec![], services: vec![failing_service()] };
        let json = status.to_json();
        let service = &json["services"][0];
        assert_eq!(service["events"].as_array().unwrap().len(), 7);
        assert_eq!(service["deployments"][0]["rollout_state"], "FAILED");
        assert_eq!(service["deployments"][1]["task_definition"], "web:1");
        assert_eq!(service["targets"][0]["reason"], "Target.Timeout");
    }

    #[test]
    fn a_deployment_under_way_shows_its_stage_and_a_finished_one_does_not() {
        let mut service = failing_service();
        service.deployment = Some(ServiceDeploymentState {
            arn: "arn:aws:ecs:us-west-2:123456789012:service-deployment/web/web/Abc123".into(),
            status: "IN_PROGRESS".into(),
            reason: String::new(),
            stage: Some("PRODUCTION_TRAFFIC_SHIFT".into()),
            production_weight: Some(10.0),
            paused: Vec::new(),
            deployment: Some(ecs::Deployment {
                strategy: ecs::Strategy::Canary { bake: 5, tenths: 100, step_bake: 3 },
                ..ecs::Deployment::default()
            }),
            target_revision: None,
            sources: Vec::new(),
            sources_running: (0, 0),
            target_running: 0,
        });
        let text = render_service(&service);
        assert!(text.contains("\n  in progress: canary 10%, service deployment Abc123\n"), "{text}");
        let status = StackStatus { stack: "web".into(), resources: vec![], services: vec![service.clone()] };
        let json = &status.to_json()["services"][0]["service_deployment"];
        assert_eq!(json["stage"], "canary 10%");
        assert_eq!(json["lifecycle_stage"], "PRODUCTION_TRAFFIC_SHIFT");
        assert_eq!(json["in_progress"], true);

        service.deployment.as_mut().unwrap().status = "SUCCESSFUL".into();
        assert!(!render_service(&service).contains("in progress"));
    }

    #[test]
    fn arns_show_their_resource_part() {
        let arn = "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/myapp/73e2d6bc24d8a067";
        assert_eq!(crate::arn::short_id(arn), "targetgroup/myapp/73e2d6bc24d8a067");
        assert_eq!(crate::arn::short_id("subnet-123"), "subnet-123");
        assert_eq!(short_task("arn:aws:ecs:us-west-2:123456789012:task-definition/myapp:3"), "myapp:3");
    }
}
