//! `deckhand status`: every resource of a stack (found by its tag) with its state, and for each
//! ECS service its counts, rollouts, target health and newest events; as a table or as JSON.
//!
//! The JSON form (`--output json`) is for automation; its field names are stable:
//!
//! ```text
//! { "stack": "myapp",
//!   "resources": [ { "type", "name", "id", "state", "detail" } ],
//!   "services":  [ { "name", "cluster", "arn", "status", "running", "pending", "desired",
//!                    "task_definition",                       // family:revision
//!                    "deployments": [ { "id", "status", "rollout_state", "reason", "running",
//!                                       "pending", "desired", "task_definition", "updated_at" } ],
//!                    "targets": [ { "target_group", "id", "port", "state", "reason", "description" } ],
//!                    "events":  [ { "at", "message" } ] } ] }            // newest first
//! ```
//!
//! `type` is the script function's name (`subnet`, `load_balancer`, ...); `state` is AWS's
//! lifecycle state where the resource has one (else null); times are RFC 3339.

use std::collections::HashMap;

use comfy_table::ContentArrangement;
use futures_util::future::try_join_all;
use serde_json::{Value, json};

use crate::aws::ecs::{TaskDefinition, short_task};
use crate::aws::queries::{self, ServiceEvent, ServiceReport, TargetHealth};
use crate::aws::{Snapshot, acm, iam, logs};
use crate::error::Result;
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
    /// The targets of its target groups, with the target group's name.
    pub targets: Vec<(String, TargetHealth)>,
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
    /// Reads the stack in three rounds of concurrent requests: the snapshot with the role and log
    /// group listings; service details, task definitions, target health and states; then the
    /// tags of candidate roles and log groups.
    pub async fn read(aws: &Aws, stack: &str) -> Result<StackStatus> {
        let (snapshot, roles, log_groups, domains) = tokio::try_join!(
            Snapshot::load(aws, stack),
            iam::stack_roles(aws, stack),
            logs::stack_log_groups(aws, stack),
            acm::stack_domains(aws, stack),
        )?;
        let ours = |tag: &Option<String>| tag.as_deref() == Some(stack);
        let clusters: Vec<_> =
            snapshot.ecs.clusters.iter().filter(|c| c.status == "ACTIVE" && ours(&c.stack)).cloned().collect();
        let services: Vec<(String, String, Vec<String>)> = clusters
            .iter()
            .map(|c| {
                let names = snapshot.ecs.services.get(&c.name).into_iter().flatten();
                let names = names.filter(|s| ours(&s.stack) && s.status != "INACTIVE").map(|s| s.arn.clone());
                (c.name.clone(), c.arn.clone(), names.collect())
            })
            .collect();
        let mut task_arns: Vec<String> = snapshot
            .ecs
            .services
            .values()
            .flatten()
            .filter(|s| ours(&s.stack) && s.status != "INACTIVE")
            .map(|s| s.task_definition.clone())
            .collect();
        task_arns.sort();
        task_arns.dedup();
        let lb_arns: Vec<String> = snapshot.elbv2.load_balancers.iter().map(|l| l.arn.clone()).collect();
        let nat_ids: Vec<String> = snapshot.egress.nat_gateways.iter().map(|n| n.id.clone()).collect();
        let endpoints: Vec<_> = snapshot.egress.endpoints.iter().filter(|e| ours(&e.stack)).cloned().collect();
        let endpoint_ids: Vec<String> = endpoints.iter().map(|e| e.id.clone()).collect();

        let (reports, tasks, lb_states, health, nat_states, endpoint_states) = tokio::try_join!(
            try_join_all(services.iter().map(|(name, arn, services)| async move {
                let reports = queries::describe_services(aws, arn, services).await?;
                Ok::<_, crate::Error>(reports.into_iter().map(|r| (name.clone(), r)).collect::<Vec<_>>())
            })),
            queries::task_definitions(aws, &task_arns),
            queries::load_balancer_states(aws, &lb_arns),
            try_join_all(snapshot.elbv2.target_groups.iter().map(|tg| queries::target_health(aws, &tg.arn))),
            queries::nat_gateway_states(aws, &nat_ids),
            queries::endpoint_states(aws, &endpoint_ids),
        )?;

        let health: HashMap<&str, (&str, &Vec<TargetHealth>)> = snapshot
            .elbv2
            .target_groups
            .iter()
            .zip(&health)
            .map(|(tg, targets)| (tg.arn.as_str(), (tg.name.as_str(), targets)))
            .collect();
        let label = |arn: &str| tasks.get(arn).map(TaskDefinition::label).unwrap_or_else(|| short_task(arn));

        let mut resources = Vec::new();
        let mut add = |kind, name: &str, id: &str, state: Option<&String>, detail: String| {
            resources.push(Resource {
                kind,
                name: name.to_string(),
                id: id.to_string(),
                state: state.cloned(),
                detail,
            });
        };
        for s in snapshot.ec2.subnets.iter().filter(|s| ours(&s.stack)) {
            add("subnet", s.name.as_deref().unwrap_or("-"), &s.id, None, format!("{} {}", s.az, s.cidr));
        }
        for g in snapshot.ec2.security_groups.iter().filter(|g| ours(&g.stack)) {
            add("security_group", &g.name, &g.id, None, count(g.ingress.len(), "ingress rule"));
        }
        for n in &snapshot.egress.nat_gateways {
            add("nat_gateway", &n.name, &n.id, nat_states.get(&n.id), format!("public IP {}", n.public_ip));
        }
        for t in snapshot.egress.route_tables.iter().filter(|t| ours(&t.stack)) {
            let detail = format!("{}, {}", count(t.routes.len(), "route"), count(t.associations.len(), "subnet"));
            add("route_table", t.name.as_deref().unwrap_or("-"), &t.id, None, detail);
        }
        for e in &endpoints {
            add("vpc_endpoint", e.name.as_deref().unwrap_or("-"), &e.id, endpoint_states.get(&e.id), e.service.clone());
        }
        for lb in &snapshot.elbv2.load_balancers {
            add("load_balancer", &lb.name, &lb.arn, lb_states.get(&lb.arn), lb.dns_name.clone());
        }
        for tg in &snapshot.elbv2.target_groups {
            let targets = health.get(tg.arn.as_str()).map(|(_, t)| t.as_slice()).unwrap_or_default();
            let healthy = targets.iter().filter(|t| t.state == "healthy").count();
            let detail = format!(
                "{} {} ({}), {healthy}/{} targets healthy",
                tg.protocol,
                tg.port,
                tg.target_type,
                targets.len()
            );
            add("target_group", &tg.name, &tg.arn, None, detail);
        }
        for l in &snapshot.elbv2.listeners {
            let lb = snapshot.elbv2.load_balancers.iter().find(|lb| lb.arn == l.load_balancer_arn);
            let name = format!("{}:{}", lb.map(|lb| lb.name.as_str()).unwrap_or("?"), l.port);
            add("listener", &name, &l.arn, None, format!("{} {}", l.protocol, l.action));
        }
        for c in &domains.certificates {
            let expiry = c.not_after.as_deref().map(|t| format!("expires {t}")).unwrap_or_else(|| "not issued".into());
            let names = std::iter::once(&c.domain).chain(&c.alternative_names).cloned().collect::<Vec<_>>().join(", ");
            add("certificate", &c.domain, &c.arn, Some(&c.status), format!("{names}; {expiry}"));
        }
        for r in domains.records.iter().filter(|r| !r.set.name.starts_with("_deckhand.")) {
            let name = format!("{} {}", r.set.name, r.set.rtype);
            add("dns_record", &name, &r.zone_id, None, format!("{} (zone {})", r.set.data(), r.zone));
        }
        for r in &roles {
            add("role", &r.name, &r.arn, None, r.description.clone());
        }
        for g in &log_groups {
            let detail = g.retention_days.map(|d| format!("kept {d} days")).unwrap_or_else(|| "kept forever".into());
            add("log_group", &g.name, &g.arn, None, detail);
        }
        for c in &clusters {
            add("cluster", &c.name, &c.arn, Some(&c.status), c.capacity_providers.join(", "));
        }
        let mut task_list: Vec<&TaskDefinition> = tasks.values().collect();
        task_list.sort_by_key(|t| t.label());
        for t in task_list {
            let detail = format!("cpu {} memory {}", t.spec.cpu, t.spec.memory);
            add("task_definition", &t.label(), &t.arn, None, detail);
        }
        let reports: Vec<(String, ServiceReport)> = reports.into_iter().flatten().collect();
        for (_, r) in &reports {
            let detail = format!("{} running / {} desired", r.running, r.desired);
            add("service", &r.name, &r.arn, Some(&r.status), detail);
        }

        let services = reports
            .into_iter()
            .map(|(cluster, report)| {
                let targets = report
                    .target_groups
                    .iter()
                    .filter_map(|arn| health.get(arn.as_str()))
                    .flat_map(|(name, targets)| targets.iter().map(|t| (name.to_string(), t.clone())))
                    .collect();
                ServiceStatus { cluster, task: label(&report.task_definition), report, targets }
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
            [r.kind.to_string(), r.name.clone(), short_id(&r.id).to_string(), state, r.detail.clone()]
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
    let targets: Vec<Value> = s
        .targets
        .iter()
        .map(|(tg, t)| {
            json!({ "target_group": tg, "id": t.id, "port": t.port, "state": t.state, "reason": t.reason,
                    "description": t.description })
        })
        .collect();
    let events: Vec<Value> = r.events.iter().map(|e| json!({ "at": e.at, "message": e.message })).collect();
    json!({ "name": r.name, "cluster": s.cluster, "arn": r.arn, "status": r.status, "running": r.running,
            "pending": r.pending, "desired": r.desired, "task_definition": s.task,
            "deployments": deployments, "targets": targets, "events": events })
}

fn render_service(s: &ServiceStatus) -> String {
    let r = &s.report;
    let mut out = format!(
        "Service {} (cluster {}): {}, {} running / {} pending / {} desired, task {}\n",
        r.name, s.cluster, r.status, r.running, r.pending, r.desired, s.task
    );
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

/// `n thing` or `n things`.
fn count(n: usize, thing: &str) -> String {
    if n == 1 { format!("1 {thing}") } else { format!("{n} {thing}s") }
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

/// An ARN's resource part (`targetgroup/myapp/73e2d6bc24d8a067`); other ids as they are.
fn short_id(id: &str) -> &str {
    if id.starts_with("arn:") { id.splitn(6, ':').nth(5).unwrap_or(id) } else { id }
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
            },
            task: "web:2".into(),
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
    fn arns_show_their_resource_part() {
        let arn = "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/myapp/73e2d6bc24d8a067";
        assert_eq!(short_id(arn), "targetgroup/myapp/73e2d6bc24d8a067");
        assert_eq!(short_id("subnet-123"), "subnet-123");
        assert_eq!(short_task("arn:aws:ecs:us-west-2:123456789012:task-definition/myapp:3"), "myapp:3");
    }
}
