//! Script functions for ECS on Fargate: `cluster`, `task_definition`, `service`, `wait_stable`.
//! Here: their registration, the option helpers they share, and clusters; task definitions and
//! services in their own files.

use std::rc::Rc;

use futures_util::FutureExt;
use futures_util::future::LocalBoxFuture;
use rhai::{Array, Dynamic, Engine, EvalAltResult, Map, NativeCallContext};

use crate::aws::Pass;
use crate::aws::ecs::{Cluster, ClusterSpec, FARGATE_PROVIDERS, Service, StrategyItem, TaskDefinition};
use crate::aws::queries::{self, ServiceReport};
use crate::bindings::queries::service_handle as report_handle;
use crate::bindings::{
    Described, Fields, as_array, as_string, function, handle, handle_field, keep_of, optional, show, string_array, text,
};
use crate::converge::{Resource, converge, converge_kept};
use crate::error::{Error, Result};
use crate::runtime::Aws;
use crate::wait;

mod deploy;
mod exec;
mod service;
mod task_definition;

use service::{
    service_handle, service_spec, stable_target, task_images, warn_exec_without_endpoint, warn_without_egress,
};
pub(super) use task_definition::task_definition_handle;
use task_definition::{converge_secrets_policy, task_definition_spec};

type Rhai<T> = std::result::Result<T, Box<EvalAltResult>>;

/// wait_stable's default timeout, in seconds.
const DEFAULT_TIMEOUT: i64 = wait::DEFAULT_TIMEOUT.as_secs() as i64;

/// Registers the ECS primitives, bound to `pass`.
pub(super) fn register(engine: &mut Engine, pass: &Rc<Pass>) {
    let p = pass.clone();
    function(
        "cluster",
        &["name: &str", "Map"],
        "Ensures an ECS cluster with the FARGATE and FARGATE_SPOT capacity providers.\n\
         Returns #{ kind, arn, name, capacity_providers }.\nExample: `let cluster = cluster(\"myapp\");`",
    )
    .register_into_engine(engine, move |name: &str| -> Rhai<Map> {
        let spec = cluster_spec(name, Map::new())?;
        Ok(cluster_handle(&converge::<Cluster>(&p, &spec)?))
    });

    let p = pass.clone();
    function(
        "cluster",
        &["name: &str", "options: Map", "Map"],
        "Ensures an ECS cluster: #{ capacity_providers, default_strategy, container_insights }.\n\
         `keep: true` marks it (tag deckhand:keep): a run whose script no longer declares it keeps it.\n\
         `capacity_providers` (default [\"FARGATE\", \"FARGATE_SPOT\"]), `default_strategy` (array of\n\
         \"FARGATE\" or #{ provider, weight, base }; default FARGATE weight 1), `container_insights`\n\
         (true, false or \"enhanced\"; unset leaves it alone). All are changed in place; the cluster is\n\
         never re-created.\n\
         Example: `cluster(\"myapp\", #{ container_insights: true })`",
    )
    .register_into_engine(engine, move |name: &str, options: Map| -> Rhai<Map> {
        let (keep, options) = keep_of("cluster", options)?;
        let spec = cluster_spec(name, options)?;
        Ok(cluster_handle(&converge_kept::<Cluster>(&p, &spec, keep)?))
    });

    let p = pass.clone();
    function(
        "task_definition",
        &["spec: Map", "Map"],
        "Ensures a Fargate task definition (awsvpc): #{ family, cpu, memory, execution_role, task_role,\n\
         containers, volumes, arch, ephemeral_storage }. A new revision is registered only when the\n\
         family's latest one differs. `cpu`/`memory` must be a Fargate pair (256/512 ...). `arch` is\n\
         \"x86_64\" (default) or \"arm64\" (Graviton; not on FARGATE_SPOT), `ephemeral_storage` 21 to 200\n\
         GiB (default: Fargate's 20). A container is #{ name, image, port, env,\n\
         secrets, command, essential, logs, restart, mounts, health_check }: `secrets` maps variable\n\
         names to parameter(\"/name\") or secret(\"name\"[, \"json-key\"]) (full ARNs as valueFrom; the\n\
         execution role gets the inline policy deckhand-secrets-FAMILY reading exactly those, removed\n\
         when none are left), `logs` is a log group (awslogs),\n\
         `restart` #{ enabled, ignored_exit_codes, attempt_period }, `mounts` [#{ volume, path, read_only }],\n\
         `health_check` #{ command, interval, timeout, retries, start_period }. A volume is #{ name }\n\
         (task storage, gone with the task) or #{ name, efs: #{ file_system_id, root_directory,\n\
         transit_encryption } }.\n\
         Returns #{ kind, arn, family, revision, containers: [#{ name, port }] }.\n\
         Example: `task_definition(#{ family: \"myapp\", cpu: 256, memory: 512, execution_role: role,\n\
         containers: [#{ name: \"app\", image: \"nginx\", port: 80, logs: logs }] })`",
    )
    .register_into_engine(engine, move |spec: Map| -> Rhai<Map> {
        let role = spec.get("execution_role").cloned();
        let task_role = spec.get("task_role").and_then(|r| handle_field(r, "name"));
        let mut sources = Vec::new();
        let spec = task_definition_spec(&p, spec, &mut sources)?;
        converge_secrets_policy(&p, &spec, role.as_ref(), &sources)?;
        let mut handle = task_definition_handle(&converge::<TaskDefinition>(&p, &spec)?);
        // The task role's name (ECS Exec puts a policy on it), known even before the role exists.
        if let Some(name) = task_role {
            handle.insert("task_role_name".into(), name);
        }
        Ok(handle)
    });

    let p = pass.clone();
    function(
        "service",
        &["cluster: Map", "spec: Map", "Map"],
        "Ensures a Fargate service: #{ name, task, desired, capacity_provider, capacity, subnets,\n\
         security_groups, public_ip, target_group, container, port, health_check_grace, circuit_breaker,\n\
         min_healthy_percent, max_percent, exec, deploy }. Runs on a capacity provider (\"FARGATE\" default or\n\
         \"FARGATE_SPOT\"), or on a mixed strategy `capacity: [#{ provider: \"FARGATE\", base: 1, weight: 1 },\n\
         #{ provider: \"FARGATE_SPOT\", weight: 3 }]` (not both; Spot only in a cluster with the provider\n\
         and never for an arm64 task) in awsvpc mode (`public_ip` default false), behind `target_group` (type ip)\n\
         on `container`:`port` (default: the task's only container with a port), with the deployment\n\
         circuit breaker and rollback on (default). `desired` defaults to 1 for a new service; an\n\
         existing one keeps its count unless the script gives one. Changes are applied in place.\n\
         `exec: true` turns on ECS Exec (`deckhand exec`) for tasks started from then on; the task\n\
         definition needs a task_role, which gets the inline policy deckhand-exec when it is the stack's.\n\
         `keep: true` marks it (tag deckhand:keep): a run whose script no longer declares it keeps it.\n\
         `deploy: #{ strategy, bake, canary: #{ percent, bake }, linear: #{ step, bake }, alarms, test_listener }`:\n\
         `strategy` \"rolling\" (default), \"blue_green\", \"canary\" or \"linear\" (ECS shifts the load balancer's\n\
         traffic: deckhand creates the alternate target group `<tg>-alt`, a rule at priority 50000 on the listener\n\
         forwarding to the target group (and on `test_listener`, another port of that load balancer), and the\n\
         role `<stack>-<service>-ecs-infra`); `bake` minutes both versions run after production traffic moved\n\
         (default 5); canary `percent` (default 5) for `bake` minutes (default 10); linear `step` percent\n\
         (default 10) every `bake` minutes (default 6); `alarms` (alarm() handles or names) roll a deployment\n\
         back when one is in ALARM. A blue_green service with a test_listener pauses after test traffic\n\
         moved until wait_stable answers, after its check if any (ECS rolls back after 30 minutes without).\n\
         `health_check_grace` (seconds; none by default): how long after a task starts ECS ignores failing\n\
         load balancer health checks; fit it to the container's start plus its first checks (30 s for a web\n\
         server with checks 2 x 10 s, 60-120 s for a slow-booting app). It costs nothing while checks pass.\n\
         The service waits for the egress of its subnets (a NAT gateway this run created) before it is created.\n\
         Returns #{ kind, arn, name, cluster_arn, cluster, desired, task_definition }.\n\
         Example: `service(cluster, #{ name: \"myapp\", task: task, desired: 2, subnets: subnets,\n\
         security_groups: [app_sg], target_group: tg, deploy: #{ strategy: \"canary\", canary: #{ percent: 10 } } })`",
    )
    .register_into_engine(engine, move |cluster: Dynamic, spec: Map| -> Rhai<Map> {
        let (keep, spec) = keep_of("service", spec)?;
        let subnets = spec.get("subnets").cloned();
        let images = spec.get("task").map(task_images).unwrap_or_default();
        let task = spec.get("task").cloned().unwrap_or_default();
        let target_group = spec.get("target_group").cloned();
        let (mut spec, deploy) = service_spec(&p, &cluster, spec)?;
        deploy::converge_traffic_shift(&p, &mut spec, &deploy, target_group.as_ref())?;
        if spec.exec {
            exec::converge_exec_policy(&p, &task)?;
        }
        if !spec.public_ip
            && let Some(subnets) = subnets
        {
            warn_without_egress(&p, &subnets, &images)?;
            if spec.exec {
                warn_exec_without_endpoint(&p, &subnets)?;
            }
        }
        let before = if deploy.strategy.shifts_traffic() { None } else { Service::find(&p, &spec)? };
        let service = converge_kept::<Service>(&p, &spec, keep)?;
        deploy::release_infra_role(&p, before.as_ref(), &deploy)?;
        Ok(service_handle(&service, &spec))
    });

    let p = pass.clone();
    function(
        "wait_stable",
        &["service: Map", "Map"],
        "Waits until a service is stable (its deployment completed, the desired count running); fails\n\
         with the newest service events when the deployment fails, is rolled back, or 15 minutes pass.\n\
         A blue_green, canary or linear service's progress names the deployment's stage (\"canary 10%\n\
         (bake 3m left)\", \"test traffic\", \"production traffic shifted\", \"cleaning up\").\n\
         In plan and check passes it returns at once. Returns the service handle.\n\
         Example: `wait_stable(svc);`",
    )
    .register_into_engine(engine, move |service: Map| -> Rhai<Map> {
        let (target, _) = stable_target(&service, Map::new())?;
        wait::wait_stable(&p, &target, None)?;
        Ok(service)
    });

    let p = pass.clone();
    function(
        "wait_stable",
        &["service: Map", "options: Map", "Map"],
        "Waits until a service is stable, at most `timeout` seconds: #{ timeout, check } (default 900:\n\
         task start-up, health checks and the old targets' 300 s deregistration delay).\n\
         `check` (a function; blue_green with a test_listener, canary, linear) runs while the new revision\n\
         holds part of the traffic: at blue_green's pause after test traffic moved (deckhand then answers\n\
         ContinueServiceDeployment CONTINUE, or ROLLBACK when the check threw), and at each canary or linear\n\
         bake (a throw stops the deployment: StopServiceDeployment ROLLBACK). A rollback fails the run.\n\
         Example: `wait_stable(svc, #{ check: || http_check(`http://${alb.dns_name}:8081/health`, #{ status: 200 }) });`",
    )
    .register_into_engine(engine, move |context: NativeCallContext, service: Map, options: Map| -> Rhai<Map> {
        let (target, check) = stable_target(&service, options)?;
        let run_check = || -> Result<()> {
            let Some(check) = &check else { return Ok(()) };
            check.call_within_context::<Dynamic>(&context, ()).map(|_| ()).map_err(|err| Error::Script(check_failure(&err)))
        };
        wait::wait_stable(&p, &target, check.is_some().then_some(&run_check as &dyn Fn() -> Result<()>))?;
        Ok(service)
    });

    function(
        "http_check",
        &["url: &str", "options: Map", "Map"],
        "GETs `url` and throws unless it answers as expected: #{ status (default 200), contains (text\n\
         the body must hold), timeout (seconds, default 10) }. Plain http only. Returns #{ status, body }.\n\
         Made for wait_stable's `check`. Example: `http_check(url, #{ status: 200, contains: \"ok\" })`",
    )
    .register_into_engine(engine, |url: &str, options: Map| -> Rhai<Map> { Ok(http_check(url, options)?) });
}

/// What a failed check threw, in a line: the thrown value (a string or map), or the error.
fn check_failure(err: &EvalAltResult) -> String {
    match err {
        EvalAltResult::ErrorRuntime(value, _) => value.to_string(),
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _) => check_failure(inner),
        other => other.to_string(),
    }
}

/// `http_check`: one GET with a timeout; a transport error, another status, or a body without the
/// text is an error naming what came back.
fn http_check(url: &str, options: Map) -> Result<Map> {
    let f = Fields::new("http_check", options, &["status", "contains", "timeout"])?;
    let status = f.int("status")?.unwrap_or(200);
    let timeout = f.int("timeout")?.unwrap_or(10);
    if !(1..=300).contains(&timeout) {
        return Err(Error::invalid(f.name("timeout"), timeout, "seconds from 1 to 300"));
    }
    if !url.starts_with("http://") {
        return Err(Error::invalid("http_check.url", format!("{url:?}"), "an http:// URL"));
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(timeout as u64)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent.get(url).call().map_err(|e| Error::Script(format!("http_check {url}: no answer: {e}")))?;
    let got = i64::from(response.status().as_u16());
    let body = response.body_mut().with_config().limit(1 << 20).read_to_string().unwrap_or_default();
    if got != status {
        return Err(Error::Script(format!("http_check {url}: status {got}, expected {status}")));
    }
    if let Some(text) = f.str("contains")?
        && !body.contains(&text)
    {
        return Err(Error::Script(format!("http_check {url}: the body does not contain {text:?}")));
    }
    Ok(handle("http_check", [("status", got.into()), ("body", body.into())]))
}

fn sub_map(f: &Fields, key: &str) -> Result<Option<Map>> {
    f.raw(key)
        .map(|v| v.clone().try_cast::<Map>().ok_or_else(|| Error::invalid(f.name(key), show(v), "a map #{ ... }")))
        .transpose()
}

fn strings(key: &str, value: &Dynamic) -> Result<Vec<String>> {
    as_array(key, value)?.iter().enumerate().map(|(i, v)| as_string(&format!("{key}[{i}]"), v)).collect()
}

fn int_in(key: &str, value: i64, range: std::ops::RangeInclusive<i64>, what: &str) -> Result<i32> {
    if range.contains(&value) {
        Ok(value as i32)
    } else {
        Err(Error::invalid(key, value, format!("{what} from {} to {}", range.start(), range.end())))
    }
}

fn validate_identifier(key: &str, name: &str, max: usize) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= max
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(key, format!("{name:?}"), format!("1 to {max} letters, digits, hyphens and underscores")))
    }
}

// ---------------------------------------------------------------------------------------------
// Clusters

fn cluster_spec(name: &str, options: Map) -> Result<ClusterSpec> {
    validate_identifier("cluster.name", name, 255)?;
    let f = Fields::new("cluster", options, &["capacity_providers", "default_strategy", "container_insights"])?;
    let capacity_providers = match f.raw("capacity_providers") {
        Some(v) => strings(&f.name("capacity_providers"), v)?,
        None => FARGATE_PROVIDERS.iter().map(|p| p.to_string()).collect(),
    };
    for (i, p) in capacity_providers.iter().enumerate() {
        validate_identifier(&format!("cluster.capacity_providers[{i}]"), p, 255)?;
    }
    let default_strategy = match f.raw("default_strategy") {
        Some(v) => strategy("cluster.default_strategy", &f.name("default_strategy"), v)?,
        None if capacity_providers.iter().any(|p| p == "FARGATE") => {
            vec![StrategyItem { provider: "FARGATE".into(), weight: 1, base: 0 }]
        }
        None => Vec::new(),
    };
    let container_insights = match f.raw("container_insights") {
        None => None,
        Some(v) if v.is_bool() => Some(if v.as_bool().unwrap_or(false) { "enabled" } else { "disabled" }.to_string()),
        Some(v) => match as_string(&f.name("container_insights"), v).ok().as_deref() {
            Some(s @ ("enabled" | "disabled" | "enhanced")) => Some(s.to_string()),
            _ => {
                return Err(Error::invalid(
                    f.name("container_insights"),
                    show(v),
                    "true, false, \"enabled\", \"disabled\" or \"enhanced\"",
                ));
            }
        },
    };
    Ok(ClusterSpec { name: name.to_string(), capacity_providers, default_strategy, container_insights })
}

/// A capacity provider strategy given as `key` to `context`: provider names (weight 1) or
/// `#{ provider, weight, base }` maps.
fn strategy(context: &'static str, key: &str, value: &Dynamic) -> Result<Vec<StrategyItem>> {
    let mut items = Vec::new();
    for (i, item) in as_array(key, value)?.into_iter().enumerate() {
        if item.is_string() {
            items.push(StrategyItem { provider: item.to_string(), weight: 1, base: 0 });
            continue;
        }
        let map = item.clone().try_cast::<Map>().ok_or_else(|| {
            Error::invalid(format!("{key}[{i}]"), show(&item), "a provider name or #{ provider, weight, base }")
        })?;
        let f = Fields::new(context, map, &["provider", "weight", "base"])?;
        let provider = f.req_str("provider", "the capacity provider, e.g. \"FARGATE\"")?;
        let weight = f.int("weight")?.unwrap_or(1);
        let base = f.int("base")?.unwrap_or(0);
        items.push(StrategyItem {
            provider,
            weight: int_in(&format!("{key}[{i}].weight"), weight, 0..=1000, "a weight")?,
            base: int_in(&format!("{key}[{i}].base"), base, 0..=100_000, "a base")?,
        });
    }
    Ok(items)
}

pub(super) fn cluster_handle(cluster: &Cluster) -> Map {
    let providers: Array = cluster.capacity_providers.iter().map(|p| Dynamic::from(p.clone())).collect();
    handle(
        "cluster",
        [
            ("arn", cluster.arn.clone().into()),
            ("name", cluster.name.clone().into()),
            ("capacity_providers", providers.into()),
        ],
    )
}

/// How `describe` re-reads clusters, task definitions and services (by ARN).
pub(super) const DESCRIBED: &[Described] = &[
    ("cluster", "arn", describe_cluster),
    ("task_definition", "arn", describe_task_definition),
    ("service", "arn", describe_service),
];

fn describe_cluster<'a>(aws: &'a Aws, map: &'a Map) -> LocalBoxFuture<'a, Result<Option<Map>>> {
    async move {
        let arn = text(map, "arn").unwrap_or_default();
        Ok(queries::find_cluster(aws, &arn).await?.map(|c: Cluster| {
            let mut map = cluster_handle(&c);
            map.insert("status".into(), c.status.clone().into());
            let strategy: Vec<String> = c.default_strategy.iter().map(ToString::to_string).collect();
            map.insert("default_strategy".into(), string_array(&strategy));
            map.insert("container_insights".into(), c.container_insights.clone().into());
            map.insert("stack".into(), optional(c.stack.clone()));
            map
        }))
    }
    .boxed_local()
}

fn describe_task_definition<'a>(aws: &'a Aws, map: &'a Map) -> LocalBoxFuture<'a, Result<Option<Map>>> {
    async move {
        let arn = text(map, "arn").unwrap_or_default();
        Ok(crate::aws::ecs::describe_task_definition(aws, &arn).await?.map(|(status, t)| {
            let mut map = task_definition_handle(&t);
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
        }))
    }
    .boxed_local()
}

fn describe_service<'a>(aws: &'a Aws, map: &'a Map) -> LocalBoxFuture<'a, Result<Option<Map>>> {
    async move {
        let (arn, cluster) = (text(map, "arn").unwrap_or_default(), text(map, "cluster_arn").unwrap_or_default());
        Ok(queries::find_service(aws, &cluster, &arn).await?.map(|s| service_state(&s)))
    }
    .boxed_local()
}

fn service_state(s: &ServiceReport) -> Map {
    let mut map = report_handle(s);
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
