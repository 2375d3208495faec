//! Script queries: `clusters`, `services`, `describe`, `tasks`, `target_health`, `events`, `logs`
//! and the `find_*` lookups. They only read (in plan passes too) and return plain values; in
//! check passes (no AWS) they return empty values.

use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

use rhai::{Array, Dynamic, Engine, EvalAltResult, Map};

use crate::aws::Pass;
use crate::aws::queries::{self, ServiceReport, TargetHealth};
use crate::aws::{iam, logs};
use crate::bindings::{AREAS, Fields, as_string, function, handle, show, text};
use crate::error::{Error, Result};
use crate::plan::is_known;
use crate::runtime::Aws;

type Rhai<T> = std::result::Result<T, Box<EvalAltResult>>;

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
        let described = || AREAS.iter().flat_map(|(_, _, described)| described.iter());
        let kinds: Vec<&str> = described().map(|(kind, _, _)| *kind).collect();
        let allowed = format!("a handle returned by a deckhand function (kind one of {})", kinds.join(", "));
        let map = value.try_cast::<Map>().ok_or_else(|| Error::invalid("describe.handle", &shown, &allowed))?;
        let kind = text(&map, "kind").unwrap_or_default();
        let Some((_, key, read)) = described().find(|(k, _, _)| *k == kind) else {
            return Err(Error::invalid("describe.handle", shown, allowed).into());
        };
        // A handle planned but not created yet names no resource.
        let known = text(&map, key).is_some_and(|key| !key.is_empty() && is_known(&key));
        if !known {
            return Ok(Dynamic::UNIT);
        }
        let found = p.read(async |aws| read(aws, &map).await).transpose()?.flatten();
        Ok(found.map(Dynamic::from).unwrap_or(Dynamic::UNIT))
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
        let since = crate::period::parse_since(&f.name("since"), &f.str("since")?.unwrap_or_else(|| "10m".into()))?;
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
pub(super) fn service_handle(s: &ServiceReport) -> Map {
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
        Ok(arn) if crate::arn::is_of(&arn, "elasticloadbalancing", "targetgroup/") => Ok(arn),
        _ => Err(kind_error(key, value, wanted)),
    }
}

/// A target and its health, as `target_health` and `describe` show it.
pub(super) fn health_map(t: &TargetHealth) -> Map {
    let mut map = Map::new();
    map.insert("id".into(), t.id.clone().into());
    map.insert("port".into(), t.port.map(|p| Dynamic::from(i64::from(p))).unwrap_or(Dynamic::UNIT));
    map.insert("state".into(), t.state.clone().into());
    map.insert("reason".into(), t.reason.clone().into());
    map.insert("description".into(), t.description.clone().into());
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
