//! Script queries: `clusters`, `services`, `describe`, `tasks`, `target_health`, `events`, `logs`
//! and the `find_*` lookups. They only read (in plan passes too) and return plain values; in
//! check passes (no AWS) they return empty values.

use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_ec2::types::Filter;
use rhai::{Array, Dynamic, Engine, EvalAltResult, Map};

use crate::aws::ec2::{self, Rule};
use crate::aws::ecs::Cluster;
use crate::aws::queries::{self, ServiceReport, TargetHealth};
use crate::aws::{egress, elbv2, iam, logs};
use crate::bindings::{Fields, as_string, from_json, function, handle, show, string_array};
use crate::error::{Error, Result};
use crate::pass::Pass;
use crate::plan::is_known;
use crate::runtime::Aws;

type Rhai<T> = std::result::Result<T, Box<EvalAltResult>>;

/// The handle kinds `describe` re-reads.
const DESCRIBED: &[&str] = &[
    "vpc",
    "subnet",
    "security_group",
    "nat_gateway",
    "route_table",
    "vpc_endpoint",
    "load_balancer",
    "target_group",
    "listener",
    "role",
    "log_group",
    "cluster",
    "task_definition",
    "service",
];

/// Default and largest number of log events `logs` returns.
const LOG_LIMIT: i64 = 100;
const LOG_LIMIT_MAX: i64 = 10_000;

/// Registers the queries, bound to `pass`.
pub(super) fn register(engine: &mut Engine, pass: &Rc<Pass>) {
    let p = pass.clone();
    function(
        "clusters",
        &["Array"],
        "Lists the region's ACTIVE ECS clusters as cluster handles.\n\
         Each is #{ kind: \"cluster\", arn, name, capacity_providers }.\nExample: `for c in clusters() { print(c.name); }`",
    )
    .register_into_engine(engine, move || -> Rhai<Array> {
        let found = p.read(async |aws| queries::clusters(aws).await).transpose()?.unwrap_or_default();
        Ok(found.iter().map(|c| Dynamic::from(super::ecs::cluster_handle(c))).collect())
    });

    let p = pass.clone();
    function(
        "services",
        &["cluster: Dynamic", "Array"],
        "Lists a cluster's services (cluster handle, name or ARN) as service handles.\n\
         Each is #{ kind: \"service\", arn, name, cluster_arn, cluster, desired, task_definition }.\n\
         Example: `services(find_cluster(\"myapp\"))`",
    )
    .register_into_engine(engine, move |cluster: Dynamic| -> Rhai<Array> {
        let cluster = cluster_id("services.cluster", &cluster)?;
        let Some(cluster) = cluster.filter(|c| is_known(c)) else { return Ok(Array::new()) };
        let found = p.read(async |aws| queries::services(aws, &cluster).await).transpose()?.unwrap_or_default();
        Ok(found.iter().map(|s| Dynamic::from(service_handle(s))).collect())
    });

    let p = pass.clone();
    function(
        "describe",
        &["handle: Map", "Dynamic"],
        "Re-reads a handle deckhand returned and gives the resource's current state as a map.\n\
         () when it does not exist (yet). The map has the handle's keys and more: services add status,\n\
         running, pending, deployments and target_groups; load balancers state; target groups\n\
         health_check and targets; listeners action (\"forward\" with target_group_arn, or the\n\
         redirect); roles policies and trust; most add their stack tag.\n\
         Example: `describe(find_service(\"myapp\", \"myapp\")).running`",
    )
    .register_into_engine(engine, move |value: Dynamic| -> Rhai<Dynamic> {
        let shown = show(&value);
        let allowed = format!("a handle returned by a deckhand function (kind one of {})", DESCRIBED.join(", "));
        let map = value.try_cast::<Map>().ok_or_else(|| Error::invalid("describe.handle", &shown, &allowed))?;
        let kind = text(&map, "kind").unwrap_or_default();
        if !DESCRIBED.contains(&kind.as_str()) {
            return Err(Error::invalid("describe.handle", shown, allowed).into());
        }
        Ok(p.read(async |aws| describe(aws, &kind, &map).await).transpose()?.flatten().unwrap_or(Dynamic::UNIT))
    });

    let p = pass.clone();
    function(
        "tasks",
        &["service: Map", "Array"],
        "Lists a service's tasks (running and recently stopped), oldest first.\n\
         Each is #{ kind: \"task\", id, arn, last_status, desired_status, health, task_definition, started_at, stopped_reason, private_ip }.\n\
         Example: `tasks(svc).filter(|t| t.last_status == \"RUNNING\").len()`",
    )
    .register_into_engine(engine, move |service: Map| -> Rhai<Array> {
        let (cluster, name) = service_id("tasks.service", &service)?;
        if !is_known(&cluster) || !is_known(&name) {
            return Ok(Array::new());
        }
        let found = p.read(async |aws| queries::tasks(aws, &cluster, &name).await).transpose()?.unwrap_or_default();
        Ok(found
            .into_iter()
            .map(|t| {
                Dynamic::from(handle(
                    "task",
                    [
                        ("id", t.id.into()),
                        ("arn", t.arn.into()),
                        ("last_status", t.last_status.into()),
                        ("desired_status", t.desired_status.into()),
                        ("health", t.health.into()),
                        ("task_definition", t.task_definition.into()),
                        ("started_at", t.started_at.into()),
                        ("stopped_reason", t.stopped_reason.into()),
                        ("private_ip", t.private_ip.into()),
                    ],
                ))
            })
            .collect())
    });

    let p = pass.clone();
    function(
        "target_health",
        &["target_group: Dynamic", "Array"],
        "Lists the targets of a target group (handle or ARN) with their health.\n\
         Each is #{ id, port, state, reason, description }; state is initial, healthy, unhealthy, unused,\n\
         draining or unavailable.\nExample: `target_health(find_target_group(\"myapp\"))`",
    )
    .register_into_engine(engine, move |target_group: Dynamic| -> Rhai<Array> {
        let arn = target_group_arn("target_health.target_group", &target_group)?;
        if !is_known(&arn) {
            return Ok(Array::new());
        }
        let found = p.read(async |aws| queries::target_health(aws, &arn).await).transpose()?.unwrap_or_default();
        Ok(found.iter().map(|t| Dynamic::from(health_map(t))).collect())
    });

    let p = pass.clone();
    function(
        "events",
        &["service: Map", "count: i64", "Array"],
        "The newest `count` (1 to 100) events of a service, newest first, as maps #{ at, message }.\n\
         Example: `for e in events(svc, 5) { print(`${e.at} ${e.message}`); }`",
    )
    .register_into_engine(engine, move |service: Map, count: i64| -> Rhai<Array> {
        if !(1..=100).contains(&count) {
            return Err(Error::invalid("events.count", count, "an integer from 1 to 100").into());
        }
        let (cluster, name) = service_id("events.service", &service)?;
        if !is_known(&cluster) || !is_known(&name) {
            return Ok(Array::new());
        }
        let found = p.read(async |aws| queries::find_service(aws, &cluster, &name).await).transpose()?.flatten();
        let events = found.map(|s| s.events).unwrap_or_default();
        Ok(events
            .into_iter()
            .take(usize::try_from(count).unwrap_or(100))
            .map(|e| {
                let mut map = Map::new();
                map.insert("at".into(), e.at.into());
                map.insert("message".into(), e.message.into());
                Dynamic::from(map)
            })
            .collect())
    });

    let p = pass.clone();
    function(
        "logs",
        &["source: Dynamic", "options: Map", "Array"],
        "Reads log events of a log group (handle or name) or of a service (handle).\n\
         A service's events come from its task definition's awslogs group and stream prefix.\n\
         Options: #{ since: \"10m\", limit: 100 }.\n\
         `since` is a number and s, m, h or d (default \"10m\"); `limit` (1 to 10000, default 100)\n\
         keeps the newest events. Returns maps #{ stream, task, timestamp, at, message }, oldest first.\n\
         Example: `for e in logs(svc, #{ since: \"1h\" }) { print(e.message); }`",
    )
    .register_into_engine(engine, move |source: Dynamic, options: Map| -> Rhai<Array> {
        let f = Fields::new("logs", options, &["since", "limit"])?;
        let since = crate::tail::parse_since(&f.name("since"), &f.str("since")?.unwrap_or_else(|| "10m".into()))?;
        let limit = f.int("limit")?.unwrap_or(LOG_LIMIT);
        if !(1..=LOG_LIMIT_MAX).contains(&limit) {
            return Err(Error::invalid(f.name("limit"), limit, format!("an integer from 1 to {LOG_LIMIT_MAX}")).into());
        }
        Ok(read_logs(&p, &source, since, limit)?)
    });

    let p = pass.clone();
    function(
        "logs",
        &["source: Dynamic", "Array"],
        "Reads log events of a log group (handle or name) or of a service (handle).\n\
         Without options: the newest 100 events of the last 10 minutes.\n\
         Example: `logs(\"/ecs/myapp\")`",
    )
    .register_into_engine(engine, move |source: Dynamic| -> Rhai<Array> {
        Ok(read_logs(&p, &source, std::time::Duration::from_secs(600), LOG_LIMIT)?)
    });

    register_finders(engine, pass);
}

fn register_finders(engine: &mut Engine, pass: &Rc<Pass>) {
    let any_name = |_: &str, _: &str| Ok(());
    finder(
        engine,
        pass,
        "find_cluster",
        "The ACTIVE ECS cluster named `name` as a cluster handle, or ().\nExample: `let c = find_cluster(\"myapp\");`",
        any_name,
        queries::find_cluster,
        super::ecs::cluster_handle,
    );

    let p = pass.clone();
    function(
        "find_service",
        &["cluster: Dynamic", "name: &str", "Dynamic"],
        "The service `name` of a cluster (handle, name or ARN) as a service handle, or ().\n\
         Example: `let svc = find_service(\"myapp\", \"myapp\");`",
    )
    .register_into_engine(engine, move |cluster: Dynamic, name: &str| -> Rhai<Dynamic> {
        let Some(cluster) = cluster_id("find_service.cluster", &cluster)?.filter(|c| is_known(c)) else {
            return Ok(Dynamic::UNIT);
        };
        let found = p.read(async |aws| queries::find_service(aws, &cluster, name).await).transpose()?.flatten();
        Ok(found.map(|s| Dynamic::from(service_handle(&s))).unwrap_or(Dynamic::UNIT))
    });

    finder(
        engine,
        pass,
        "find_load_balancer",
        "The load balancer named `name` as a load_balancer handle, or ().\n\
         Example: `print(find_load_balancer(\"myapp\").dns_name)`",
        any_name,
        queries::find_load_balancer,
        super::elbv2::load_balancer_handle,
    );
    finder(
        engine,
        pass,
        "find_target_group",
        "The target group named `name` as a target_group handle, or ().\n\
         Example: `target_health(find_target_group(\"myapp\"))`",
        any_name,
        queries::find_target_group,
        super::elbv2::target_group_handle,
    );
    finder(
        engine,
        pass,
        "find_role",
        "The IAM role named `name` as a role handle, or ().\nExample: `find_role(\"myapp-exec\").arn`",
        iam::validate_role_name,
        iam::fetch_role,
        super::iam::role_handle,
    );
    finder(
        engine,
        pass,
        "find_log_group",
        "The log group named `name` as a log_group handle, or ().\nExample: `find_log_group(\"/ecs/myapp\")`",
        logs::validate_log_group_name,
        queries::find_log_group,
        super::logs::log_group_handle,
    );
}

/// Registers the lookup `function(name)`: `valid` rejects a name AWS could not hold (as the key
/// `function.name`), `lookup` reads the resource, `to_handle` makes it a handle; () when there is
/// none, and in check passes.
fn finder<T: 'static>(
    engine: &mut Engine,
    pass: &Rc<Pass>,
    function_name: &'static str,
    doc: &str,
    valid: impl Fn(&str, &str) -> Result<()> + 'static,
    lookup: impl AsyncFn(&Aws, &str) -> Result<Option<T>> + 'static,
    to_handle: fn(&T) -> Map,
) {
    let p = pass.clone();
    let key = format!("{function_name}.name");
    function(function_name, &["name: &str", "Dynamic"], doc).register_into_engine(
        engine,
        move |name: &str| -> Rhai<Dynamic> {
            valid(&key, name)?;
            let found = p.read(async |aws| lookup(aws, name).await).transpose()?.flatten();
            Ok(found.map(|found| Dynamic::from(to_handle(&found))).unwrap_or(Dynamic::UNIT))
        },
    );
}

/// A service handle with the keys `service()` returns.
fn service_handle(s: &ServiceReport) -> Map {
    handle(
        "service",
        [
            ("arn", s.arn.clone().into()),
            ("name", s.name.clone().into()),
            ("cluster_arn", s.cluster_arn.clone().into()),
            ("cluster", crate::aws::ecs::cluster_name(&s.cluster_arn).to_string().into()),
            ("desired", i64::from(s.desired).into()),
            ("task_definition", s.task_definition.clone().into()),
        ],
    )
}

fn text(map: &Map, key: &str) -> Option<String> {
    map.get(key).filter(|v| !v.is_unit()).map(ToString::to_string)
}

fn kind_error(key: &str, value: &Dynamic, wanted: &str) -> Error {
    Error::invalid(key, show(value), wanted.to_string())
}

/// A cluster given as handle (its ARN), name or ARN; `None` for () (e.g. a `find_cluster` miss).
fn cluster_id(key: &str, value: &Dynamic) -> Result<Option<String>> {
    if value.is_unit() {
        return Ok(None);
    }
    if let Some(map) = value.read_lock::<Map>() {
        return match (text(&map, "kind").as_deref(), text(&map, "arn")) {
            (Some("cluster"), Some(arn)) => Ok(Some(arn)),
            _ => Err(kind_error(key, value, "a cluster handle, name or ARN")),
        };
    }
    as_string(key, value).map(Some).map_err(|_| kind_error(key, value, "a cluster handle, name or ARN"))
}

/// The cluster ARN and service name of a service handle.
fn service_id(key: &str, service: &Map) -> Result<(String, String)> {
    match (text(service, "kind").as_deref(), text(service, "cluster_arn"), text(service, "name")) {
        (Some("service"), Some(cluster), Some(name)) => Ok((cluster, name)),
        _ => Err(Error::invalid(key, show(&Dynamic::from(service.clone())), "a service handle")),
    }
}

fn target_group_arn(key: &str, value: &Dynamic) -> Result<String> {
    let wanted = "a target group handle or ARN";
    if let Some(map) = value.read_lock::<Map>() {
        return match (text(&map, "kind").as_deref(), text(&map, "arn")) {
            (Some("target_group"), Some(arn)) => Ok(arn),
            _ => Err(kind_error(key, value, wanted)),
        };
    }
    match as_string(key, value) {
        Ok(arn) if crate::aws::arn::is_of(&arn, "elasticloadbalancing", "targetgroup/") => Ok(arn),
        _ => Err(kind_error(key, value, wanted)),
    }
}

fn health_map(t: &TargetHealth) -> Map {
    let mut map = Map::new();
    map.insert("id".into(), t.id.clone().into());
    map.insert("port".into(), t.port.map(|p| Dynamic::from(i64::from(p))).unwrap_or(Dynamic::UNIT));
    map.insert("state".into(), t.state.clone().into());
    map.insert("reason".into(), t.reason.clone().into());
    map.insert("description".into(), t.description.clone().into());
    map
}

fn optional(value: Option<String>) -> Dynamic {
    value.map(Dynamic::from).unwrap_or(Dynamic::UNIT)
}

fn rule_text(rule: &Rule) -> String {
    let ports = match (rule.protocol.as_str(), rule.from_port, rule.to_port) {
        ("-1", ..) => "all".to_string(),
        (_, from, to) if from == to => format!("{}/{from}", rule.protocol),
        (_, from, to) => format!("{}/{from}-{to}", rule.protocol),
    };
    format!("{ports} {}", rule.peer)
}

fn id_filter(name: &str, id: &str) -> Vec<Filter> {
    vec![Filter::builder().name(name).values(id).build()]
}

/// The current state of the resource behind a handle of `kind`; `None` when it does not exist.
async fn describe(aws: &Aws, kind: &str, map: &Map) -> Result<Option<Dynamic>> {
    let id = text(map, "id").unwrap_or_default();
    let arn = text(map, "arn").unwrap_or_default();
    let name = text(map, "name").unwrap_or_default();
    let key = match kind {
        "vpc" | "subnet" | "security_group" | "nat_gateway" | "route_table" | "vpc_endpoint" => &id,
        "role" | "log_group" => &name,
        _ => &arn,
    };
    if key.is_empty() || !is_known(key) {
        return Ok(None);
    }
    let described = match kind {
        "vpc" => ec2::vpcs(aws, id_filter("vpc-id", &id)).await?.first().map(super::ec2::vpc_handle),
        "subnet" => ec2::subnets(aws, id_filter("subnet-id", &id)).await?.first().map(|s| {
            let mut map = super::ec2::subnet_handle(s);
            map.insert("default_for_az".into(), s.default_for_az.into());
            map.insert("stack".into(), optional(s.stack.clone()));
            map
        }),
        "security_group" => ec2::security_groups(aws, id_filter("group-id", &id)).await?.first().map(|g| {
            let mut map = super::ec2::security_group_handle(g);
            let rules = |rules: &[Rule]| string_array(&rules.iter().map(rule_text).collect::<Vec<_>>());
            map.insert("ingress".into(), rules(&g.ingress));
            map.insert("egress".into(), rules(&g.egress));
            map.insert("stack".into(), optional(g.stack.clone()));
            map
        }),
        "nat_gateway" => {
            let (found, states) = tokio::try_join!(
                egress::nat_gateways(aws, id_filter("nat-gateway-id", &id)),
                queries::nat_gateway_states(aws, std::slice::from_ref(&id)),
            )?;
            found.first().map(|n| {
                let mut map = super::egress::nat_handle(n);
                map.insert("state".into(), optional(states.get(&n.id).cloned()));
                map
            })
        }
        "route_table" => egress::route_tables(aws, id_filter("route-table-id", &id)).await?.first().map(|t| {
            let mut map = super::egress::route_table_handle(t);
            map.insert("main".into(), t.main.into());
            map.insert("routes".into(), string_array(&t.routes.iter().map(ToString::to_string).collect::<Vec<_>>()));
            let subnets: Vec<String> = t.associations.iter().map(|a| a.subnet.clone()).collect();
            map.insert("subnets".into(), string_array(&subnets));
            map.insert("stack".into(), optional(t.stack.clone()));
            map
        }),
        "vpc_endpoint" => {
            let (found, states) = tokio::try_join!(
                egress::endpoints(aws, id_filter("vpc-endpoint-id", &id)),
                queries::endpoint_states(aws, std::slice::from_ref(&id)),
            )?;
            found.first().map(|e| {
                let mut map = super::egress::endpoint_handle(e);
                map.insert("state".into(), optional(states.get(&e.id).cloned()));
                map.insert("vpc_id".into(), e.is.vpc_id.clone().into());
                map.insert("route_tables".into(), string_array(&e.is.route_tables));
                map.insert("subnets".into(), string_array(&e.is.subnets));
                map.insert("security_groups".into(), string_array(&e.is.security_groups));
                map.insert("stack".into(), optional(e.stack.clone()));
                map
            })
        }
        "load_balancer" => {
            let (found, states) = tokio::try_join!(
                queries::find_load_balancer(aws, &name),
                queries::load_balancer_states(aws, std::slice::from_ref(&arn)),
            )?;
            found.filter(|lb| lb.arn == arn).map(|lb| {
                let mut map = super::elbv2::load_balancer_handle(&lb);
                map.insert("state".into(), optional(states.get(&lb.arn).cloned()));
                map.insert("type".into(), lb.lb_type.clone().into());
                map
            })
        }
        "target_group" => {
            let (found, targets) =
                tokio::try_join!(queries::find_target_group(aws, &name), queries::target_health(aws, &arn))?;
            found.filter(|tg| tg.arn == arn).map(|tg| {
                let mut map = super::elbv2::target_group_handle(&tg);
                let h = &tg.health_check;
                let check = [
                    ("path", Dynamic::from(h.path.clone())),
                    ("interval", i64::from(h.interval).into()),
                    ("timeout", i64::from(h.timeout).into()),
                    ("healthy", i64::from(h.healthy).into()),
                    ("unhealthy", i64::from(h.unhealthy).into()),
                    ("matcher", h.matcher.clone().into()),
                ];
                map.insert(
                    "health_check".into(),
                    check.into_iter().map(|(k, v)| (k.into(), v)).collect::<Map>().into(),
                );
                let targets: Array = targets.iter().map(|t| Dynamic::from(health_map(t))).collect();
                map.insert("targets".into(), targets.into());
                map
            })
        }
        "listener" => {
            let lb = text(map, "load_balancer_arn").unwrap_or_default();
            let found = if lb.is_empty() { vec![] } else { elbv2::listeners(aws, &lb).await? };
            found.into_iter().find(|l| l.arn == arn).map(|l| {
                let mut map = super::elbv2::listener_handle(&l);
                match &l.action {
                    elbv2::ListenerAction::Forward { arn, .. } => {
                        map.insert("action".into(), "forward".into());
                        map.insert("target_group_arn".into(), arn.clone().into());
                    }
                    other => {
                        map.insert("action".into(), other.to_string().into());
                    }
                }
                map.insert("certificate".into(), optional(l.certificate.clone()));
                map.insert("ssl_policy".into(), optional(l.ssl_policy.clone()));
                map
            })
        }
        "role" => iam::fetch_role(aws, &name)
            .await?
            .map(|r| -> Result<Map> {
                let mut map = super::iam::role_handle(&r);
                map.insert("path".into(), r.path.clone().into());
                map.insert("description".into(), r.description.clone().into());
                map.insert("managed_policies".into(), string_array(&r.managed_policies));
                map.insert("trust".into(), from_json(&r.trust)?);
                map.insert("stack".into(), optional(r.stack.clone()));
                Ok(map)
            })
            .transpose()?,
        "log_group" => queries::find_log_group(aws, &name).await?.map(|g| {
            let mut map = super::logs::log_group_handle(&g);
            map.insert("stack".into(), optional(g.stack.clone()));
            map
        }),
        "cluster" => queries::find_cluster(aws, &arn).await?.map(|c: Cluster| {
            let mut map = super::ecs::cluster_handle(&c);
            map.insert("status".into(), c.status.clone().into());
            let strategy: Vec<String> = c.default_strategy.iter().map(ToString::to_string).collect();
            map.insert("default_strategy".into(), string_array(&strategy));
            map.insert("container_insights".into(), c.container_insights.clone().into());
            map.insert("stack".into(), optional(c.stack.clone()));
            map
        }),
        "task_definition" => crate::aws::ecs::describe_task_definition(aws, &arn).await?.map(|(status, t)| {
            let mut map = super::ecs::task_definition_handle(&t);
            map.insert("status".into(), status.into());
            map.insert("cpu".into(), i64::from(t.spec.cpu).into());
            map.insert("memory".into(), i64::from(t.spec.memory).into());
            map.insert("execution_role".into(), optional(t.spec.execution_role.clone()));
            map.insert("task_role".into(), optional(t.spec.task_role.clone()));
            let images: Vec<String> = t.spec.containers.iter().map(|c| format!("{}={}", c.name, c.image)).collect();
            map.insert("images".into(), string_array(&images));
            let groups: Vec<String> = queries::log_sources(&t).into_iter().map(|s| s.group).collect();
            map.insert("log_groups".into(), string_array(&groups));
            map.insert("stack".into(), optional(t.stack.clone()));
            map
        }),
        "service" => {
            let cluster = text(map, "cluster_arn").unwrap_or_default();
            queries::find_service(aws, &cluster, &arn).await?.map(|s| service_state(&s))
        }
        _ => None,
    };
    Ok(described.map(Dynamic::from))
}

fn service_state(s: &ServiceReport) -> Map {
    let mut map = service_handle(s);
    map.insert("status".into(), s.status.clone().into());
    map.insert("running".into(), i64::from(s.running).into());
    map.insert("pending".into(), i64::from(s.pending).into());
    map.insert("target_groups".into(), string_array(&s.target_groups));
    let deployments: Array = s
        .deployments
        .iter()
        .map(|d| {
            let fields = [
                ("id", Dynamic::from(d.id.clone())),
                ("status", d.status.clone().into()),
                ("rollout_state", d.rollout_state.clone().into()),
                ("reason", d.reason.clone().into()),
                ("running", i64::from(d.running).into()),
                ("pending", i64::from(d.pending).into()),
                ("desired", i64::from(d.desired).into()),
                ("task_definition", d.task_definition.clone().into()),
                ("updated_at", d.updated_at.clone().into()),
            ];
            Dynamic::from(fields.into_iter().map(|(k, v)| (k.into(), v)).collect::<Map>())
        })
        .collect();
    map.insert("deployments".into(), deployments.into());
    map.insert("stack".into(), optional(s.stack.clone()));
    map
}

/// The log events of a log group (handle or name) or service (handle), newest `limit` since `since`.
fn read_logs(pass: &Pass, source: &Dynamic, since: std::time::Duration, limit: i64) -> Result<Array> {
    let key = "logs.source";
    let wanted = "a log_group handle, a log group name or a service handle";
    enum Source {
        Group(String),
        Service(String, String),
    }
    let source = if let Some(map) = source.read_lock::<Map>() {
        match text(&map, "kind").as_deref() {
            Some("log_group") => Source::Group(text(&map, "name").unwrap_or_default()),
            Some("service") => {
                let (cluster, name) = service_id(key, &map)?;
                Source::Service(cluster, name)
            }
            _ => return Err(kind_error(key, source, wanted)),
        }
    } else {
        let name = as_string(key, source).map_err(|_| kind_error(key, source, wanted))?;
        logs::validate_log_group_name(key, &name)?;
        Source::Group(name)
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    let start = i64::try_from(now.saturating_sub(since.as_millis())).unwrap_or(0);
    let limit = usize::try_from(limit).unwrap_or(1);
    let events = pass.read(async |aws| match &source {
        Source::Group(group) if is_known(group) => queries::log_events(aws, group, "", start, limit).await,
        Source::Service(cluster, name) if is_known(cluster) && is_known(name) => {
            let Some(service) = queries::find_service(aws, cluster, name).await? else { return Ok(vec![]) };
            let tasks = queries::task_definitions(aws, std::slice::from_ref(&service.task_definition)).await?;
            let sources = tasks.values().flat_map(queries::log_sources).collect::<Vec<_>>();
            let reads = sources.iter().map(|s| queries::log_events(aws, &s.group, &s.stream_prefix, start, limit));
            let mut events: Vec<_> = futures_util::future::try_join_all(reads).await?.into_iter().flatten().collect();
            events.sort_by_key(|e| e.timestamp);
            Ok(events.split_off(events.len().saturating_sub(limit)))
        }
        _ => Ok(vec![]),
    });
    let events = events.transpose()?.unwrap_or_default();
    Ok(events
        .into_iter()
        .map(|e| {
            let fields = [
                ("task", Dynamic::from(e.stream.rsplit('/').next().unwrap_or_default().to_string())),
                ("stream", e.stream.into()),
                ("timestamp", e.timestamp.into()),
                ("at", queries::millis_rfc3339(e.timestamp).into()),
                ("message", e.message.into()),
            ];
            Dynamic::from(fields.into_iter().map(|(k, v)| (k.into(), v)).collect::<Map>())
        })
        .collect())
}
