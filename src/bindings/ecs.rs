//! Script functions for ECS on Fargate: `cluster`, `task_definition`, `service`, `wait_stable`.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use rhai::{Array, Dynamic, Engine, EvalAltResult, Map};

use crate::aws::ec2::check_port;
use crate::aws::ecs::{
    self, Cluster, ClusterRef, ClusterSpec, ContainerPorts, ContainerSpec, Deployment, Efs, FARGATE_PROVIDERS,
    HealthCheckSpec, LoadBalancerSpec, Logs, Mount, Restart, Service, ServiceSpec, StrategyItem, TaskDefinition,
    TaskDefinitionSpec, VolumeSpec,
};
use crate::aws::egress;
use crate::aws::iam::{self, RolePolicy, RolePolicySpec};
use crate::aws::secrets::{SecretSource, access_policy, looks_like_credential};
use crate::bindings::ec2::subnet_from;
use crate::bindings::keep_of;
use crate::bindings::{
    Fields, as_array, as_int, as_string, function, handle, handle_field, handle_id, handle_or_string, show,
};
use crate::converge::converge;
use crate::converge::converge_kept;
use crate::error::{Error, Result};
use crate::pass::Pass;
use crate::plan::{UNKNOWN, is_known};
use crate::wait::{self, StableTarget};

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
         containers, volumes }. A new revision is registered only when the family's latest one differs.\n\
         `cpu`/`memory` must be a Fargate pair (256/512 ...). A container is #{ name, image, port, env,\n\
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
        let mut sources = Vec::new();
        let spec = task_definition_spec(&p, spec, &mut sources)?;
        converge_secrets_policy(&p, &spec, role.as_ref(), &sources)?;
        Ok(task_definition_handle(&converge::<TaskDefinition>(&p, &spec)?))
    });

    let p = pass.clone();
    function(
        "service",
        &["cluster: Map", "spec: Map", "Map"],
        "Ensures a Fargate service: #{ name, task, desired, capacity_provider, subnets, security_groups,\n\
         public_ip, target_group, container, port, health_check_grace, circuit_breaker,\n\
         min_healthy_percent, max_percent }. Runs on a capacity provider (\"FARGATE\" default or\n\
         \"FARGATE_SPOT\") in awsvpc mode (`public_ip` default false), behind `target_group` (type ip)\n\
         on `container`:`port` (default: the task's only container with a port), with the deployment\n\
         circuit breaker and rollback on (default). `desired` defaults to 1 for a new service; an\n\
         existing one keeps its count unless the script gives one. Changes are applied in place.\n\
         Returns #{ kind, arn, name, cluster_arn, cluster, desired, task_definition }.\n\
         Example: `service(cluster, #{ name: \"myapp\", task: task, desired: 2, subnets: subnets,\n\
         security_groups: [app_sg], target_group: tg })`",
    )
    .register_into_engine(engine, move |cluster: Dynamic, spec: Map| -> Rhai<Map> {
        let (keep, spec) = keep_of("service", spec)?;
        let subnets = spec.get("subnets").cloned();
        let images = spec.get("task").map(task_images).unwrap_or_default();
        let spec = service_spec(&p, &cluster, spec)?;
        if !spec.public_ip
            && let Some(subnets) = subnets
        {
            warn_without_egress(&p, &subnets, &images)?;
        }
        let service = converge_kept::<Service>(&p, &spec, keep)?;
        Ok(service_handle(&service, &spec))
    });

    let p = pass.clone();
    function(
        "wait_stable",
        &["service: Map", "Map"],
        "Waits until a service is stable (its deployment completed, the desired count running); fails\n\
         with the newest service events when the deployment fails, is rolled back, or 15 minutes pass.\n\
         In plan and check passes it returns at once. Returns the service handle.\n\
         Example: `wait_stable(svc);`",
    )
    .register_into_engine(engine, move |service: Map| -> Rhai<Map> {
        let target = stable_target(&service, Map::new())?;
        wait::wait_stable(&p, &target)?;
        Ok(service)
    });

    let p = pass.clone();
    function(
        "wait_stable",
        &["service: Map", "options: Map", "Map"],
        "Waits until a service is stable, at most `timeout` seconds: #{ timeout } (default 900:\n\
         task start-up, health checks and the old targets' 300 s deregistration delay).\n\
         Example: `wait_stable(svc, #{ timeout: 1800 });`",
    )
    .register_into_engine(engine, move |service: Map, options: Map| -> Rhai<Map> {
        let target = stable_target(&service, options)?;
        wait::wait_stable(&p, &target)?;
        Ok(service)
    });
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
        Some(v) => strategy(&f.name("default_strategy"), v)?,
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

fn strategy(key: &str, value: &Dynamic) -> Result<Vec<StrategyItem>> {
    let mut items = Vec::new();
    for (i, item) in as_array(key, value)?.into_iter().enumerate() {
        if item.is_string() {
            items.push(StrategyItem { provider: item.to_string(), weight: 1, base: 0 });
            continue;
        }
        let map = item.clone().try_cast::<Map>().ok_or_else(|| {
            Error::invalid(format!("{key}[{i}]"), show(&item), "a provider name or #{ provider, weight, base }")
        })?;
        let f = Fields::new("cluster.default_strategy", map, &["provider", "weight", "base"])?;
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

// ---------------------------------------------------------------------------------------------
// Task definitions

/// Lets the task definition's execution role read exactly the containers' secrets: the role's
/// inline policy `deckhand-secrets-FAMILY` is put when the task has secrets (and changed when they
/// change) and deleted when it has none left.
fn converge_secrets_policy(
    pass: &Pass,
    spec: &TaskDefinitionSpec,
    role: Option<&Dynamic>,
    sources: &[SecretSource],
) -> Result<()> {
    let Some(role) = role.map(|r| execution_role_name(r, spec.execution_role.as_deref())).transpose()? else {
        if let Some(first) = sources.first() {
            return Err(Error::invalid(
                "task_definition.execution_role",
                "none",
                format!("an execution role: ECS reads the containers' secrets ({first}, ...) with it"),
            ));
        }
        return Ok(());
    };
    let name = super::secrets::policy_name(&spec.family)?;
    if !sources.is_empty() && !iam::role_is_stacks(pass, &role)? {
        let arns: Vec<&str> = sources.iter().map(|s| s.arn.as_str()).collect();
        return pass.warn(&format!(
            "execution role {role} of task definition {} is not part of this stack, so deckhand does not \
             change it: it must allow ssm:GetParameters / secretsmanager:GetSecretValue on {} (and \
             kms:Decrypt for customer-managed keys) for the tasks to start",
            spec.family,
            arns.join(", ")
        ));
    }
    match access_policy(sources, iam::partition(pass.region()), pass.region().unwrap_or(UNKNOWN)) {
        Some(document) => {
            converge::<RolePolicy>(pass, &RolePolicySpec { role, name, document })?;
        }
        None => iam::remove_role_policy(pass, &role, &name)?,
    }
    Ok(())
}

/// The execution role's name: a role handle's `name`, else the last part of its ARN.
fn execution_role_name(value: &Dynamic, arn: Option<&str>) -> Result<String> {
    if let Some(name) = handle_field(value, "name") {
        return Ok(name.to_string());
    }
    arn.and_then(|arn| arn.rsplit_once(":role/"))
        .map(|(_, path)| path.rsplit('/').next().unwrap_or(path).to_string())
        .ok_or_else(|| Error::invalid("task_definition.execution_role", show(value), "a role or role ARN"))
}

fn task_definition_spec(pass: &Pass, map: Map, sources: &mut Vec<SecretSource>) -> Result<TaskDefinitionSpec> {
    let f = Fields::new(
        "task_definition",
        map,
        &["family", "cpu", "memory", "execution_role", "task_role", "containers", "volumes"],
    )?;
    let family = f.req_str("family", "the task definition family, e.g. \"myapp\"")?;
    validate_identifier(&f.name("family"), &family, 255)?;
    let cpu = f.int("cpu")?.ok_or_else(|| Error::MissingKey {
        key: "cpu".into(),
        context: "task_definition()".into(),
        what: "CPU units for Fargate: 256, 512, 1024, 2048, 4096, 8192 or 16384".into(),
    })?;
    let memory = f.int("memory")?.ok_or_else(|| Error::MissingKey {
        key: "memory".into(),
        context: "task_definition()".into(),
        what: "memory in MiB, a Fargate size for the cpu (256 cpu: 512, 1024 or 2048)".into(),
    })?;
    let cpu = int_in(&f.name("cpu"), cpu, 1..=i32::MAX as i64, "CPU units")?;
    let memory = int_in(&f.name("memory"), memory, 1..=i32::MAX as i64, "MiB")?;
    let role = |key: &str| -> Result<Option<String>> {
        f.raw(key)
            .map(|v| {
                handle_or_string(&f.name(key), v, "role", "arn", "a role ARN \"arn:aws:iam::...:role/...\"", |s| {
                    s.starts_with("arn:") && s.contains(":role/")
                })
            })
            .transpose()
    };
    let execution_role = role("execution_role")?;
    let task_role = role("task_role")?;

    let mut volumes = Vec::new();
    for (i, v) in f.maps("volumes")?.unwrap_or_default().into_iter().enumerate() {
        volumes.push(volume_spec(i, v)?);
    }
    volumes.sort_by(|a, b| a.name.cmp(&b.name));

    let maps = f.maps("containers")?.ok_or_else(|| Error::MissingKey {
        key: "containers".into(),
        context: "task_definition()".into(),
        what: "the containers, e.g. [#{ name: \"app\", image: \"nginx\", port: 80 }]".into(),
    })?;
    let mut containers = Vec::new();
    for (i, c) in maps.into_iter().enumerate() {
        containers.push(container_spec(pass, &family, i, c, sources)?);
    }
    let spec = TaskDefinitionSpec { family, cpu, memory, execution_role, task_role, containers, volumes };
    ecs::validate_task_definition(&spec)?;
    for v in spec.volumes.iter().filter(|v| v.efs.is_none()) {
        pass.warn(&format!(
            "volume {} of task definition {} is task storage: Fargate deletes it with the task; use efs: #{{ file_system_id: ... }} for data that must persist",
            v.name, spec.family
        ))?;
    }
    Ok(spec)
}

fn volume_spec(i: usize, map: Map) -> Result<VolumeSpec> {
    let f = Fields::new("task_definition.volumes", map, &["name", "efs"])?;
    let name = f.req_str("name", "the volume name that mounts refer to")?;
    validate_identifier(&format!("task_definition.volumes[{i}].name"), &name, 255)?;
    let efs = match sub_map(&f, "efs")? {
        None => None,
        Some(map) => {
            let e = Fields::new(
                "task_definition.volumes.efs",
                map,
                &["file_system_id", "root_directory", "transit_encryption"],
            )?;
            let file_system_id = e.req_str("file_system_id", "the EFS file system, \"fs-...\"")?;
            if !file_system_id.starts_with("fs-") {
                return Err(Error::invalid(
                    format!("task_definition.volumes[{i}].efs.file_system_id"),
                    format!("{file_system_id:?}"),
                    "an EFS file system id \"fs-...\"",
                ));
            }
            let root_directory = e.str("root_directory")?.unwrap_or_else(|| "/".into());
            if !root_directory.starts_with('/') {
                return Err(Error::invalid(
                    format!("task_definition.volumes[{i}].efs.root_directory"),
                    format!("{root_directory:?}"),
                    "an absolute path like \"/data\"",
                ));
            }
            Some(Efs {
                file_system_id,
                root_directory,
                transit_encryption: e.bool("transit_encryption")?.unwrap_or(false),
            })
        }
    };
    Ok(VolumeSpec { name, efs })
}

fn container_spec(
    pass: &Pass,
    family: &str,
    i: usize,
    map: Map,
    sources: &mut Vec<SecretSource>,
) -> Result<ContainerSpec> {
    let at = |k: &str| format!("task_definition.containers[{i}].{k}");
    let f = Fields::new(
        "task_definition.containers",
        map,
        &[
            "name",
            "image",
            "port",
            "env",
            "secrets",
            "command",
            "essential",
            "logs",
            "restart",
            "mounts",
            "health_check",
        ],
    )?;
    let name = f.req_str("name", "the container name, unique in the task")?;
    validate_identifier(&at("name"), &name, 255)?;
    let image = f.req_str("image", "the image, e.g. \"public.ecr.aws/nginx/nginx-unprivileged:stable\"")?;
    if image.trim().is_empty() {
        return Err(Error::invalid(at("image"), format!("{image:?}"), "a non-empty image reference"));
    }
    let ports = match f.int("port")? {
        Some(port) => {
            check_port(&at("port"), port)?;
            vec![port as i32]
        }
        None => Vec::new(),
    };
    let env = match sub_map(&f, "env")? {
        None => BTreeMap::new(),
        Some(map) => map
            .into_iter()
            .map(|(k, v)| {
                if v.is_map() || v.is_array() || v.is_unit() {
                    return Err(Error::invalid(format!("{}.{k}", at("env")), show(&v), "a string, number or boolean"));
                }
                Ok((k.to_string(), v.to_string()))
            })
            .collect::<Result<_>>()?,
    };
    for (key, value) in &env {
        if let Some(reason) = looks_like_credential(value) {
            pass.warn(&format!(
                "env {key} of container {name} (task definition {family}) looks like a credential ({reason}): \
                 task definitions show env values to anyone who can describe them; use \
                 secrets: #{{ {key}: parameter(\"/...\") }} or secret(\"...\") instead"
            ))?;
        }
    }
    let mut secrets = BTreeMap::new();
    for (key, value) in sub_map(&f, "secrets")?.unwrap_or_default() {
        let at_key = format!("{}.{key}", at("secrets"));
        if env.contains_key(key.as_str()) {
            return Err(Error::invalid(&at_key, show(&value), format!("{key} is already set in env; give it once")));
        }
        let source = super::secrets::source_from(&at_key, &value)?;
        secrets.insert(key.to_string(), source.value_from());
        sources.push(source);
    }
    let command = f.raw("command").map(|v| strings(&at("command"), v)).transpose()?.unwrap_or_default();
    let logs = f
        .raw("logs")
        .map(|v| {
            let group = handle_or_string(&at("logs"), v, "log_group", "name", "a log group name", |s| !s.is_empty())?;
            Ok::<_, Error>(Logs {
                driver: "awslogs".into(),
                group,
                region: pass.region().unwrap_or(UNKNOWN).to_string(),
                stream_prefix: family.to_string(),
            })
        })
        .transpose()?;
    let restart = match sub_map(&f, "restart")? {
        None => None,
        Some(map) => {
            let r = Fields::new(
                "task_definition.containers.restart",
                map,
                &["enabled", "ignored_exit_codes", "attempt_period"],
            )?;
            let enabled = r.bool("enabled")?.unwrap_or(true);
            let mut codes = match r.raw("ignored_exit_codes") {
                Some(v) => as_array(&at("restart.ignored_exit_codes"), v)?
                    .iter()
                    .enumerate()
                    .map(|(j, c)| {
                        let key = format!("{}[{j}]", at("restart.ignored_exit_codes"));
                        int_in(&key, as_int(&key, c)?, 0..=255, "an exit code")
                    })
                    .collect::<Result<Vec<_>>>()?,
                None => Vec::new(),
            };
            if codes.len() > 50 {
                return Err(Error::invalid(at("restart.ignored_exit_codes"), codes.len(), "at most 50 exit codes"));
            }
            codes.sort();
            codes.dedup();
            let attempt_period = r
                .int("attempt_period")?
                .map(|p| int_in(&at("restart.attempt_period"), p, 60..=1800, "seconds"))
                .transpose()?
                .unwrap_or(300);
            enabled.then_some(Restart { ignored_exit_codes: codes, attempt_period })
        }
    };
    let mut mounts = Vec::new();
    for (j, m) in f.maps("mounts")?.unwrap_or_default().into_iter().enumerate() {
        let m = Fields::new("task_definition.containers.mounts", m, &["volume", "path", "read_only"])?;
        let volume = m.req_str("volume", "the name of a volume declared in `volumes`")?;
        let path = m.req_str("path", "where the volume appears in the container, e.g. \"/data\"")?;
        if !path.starts_with('/') {
            return Err(Error::invalid(
                format!("{}[{j}].path", at("mounts")),
                format!("{path:?}"),
                "an absolute path like \"/data\"",
            ));
        }
        mounts.push(Mount { volume, path, read_only: m.bool("read_only")?.unwrap_or(false) });
    }
    mounts.sort();
    let health_check = match sub_map(&f, "health_check")? {
        None => None,
        Some(map) => Some(health_check(&at("health_check"), map)?),
    };
    Ok(ContainerSpec {
        name,
        image,
        ports,
        env,
        secrets,
        command,
        essential: f.bool("essential")?.unwrap_or(true),
        logs,
        restart,
        mounts,
        health_check,
    })
}

fn health_check(key: &str, map: Map) -> Result<HealthCheckSpec> {
    let h = Fields::new(
        "task_definition.containers.health_check",
        map,
        &["command", "interval", "timeout", "retries", "start_period"],
    )?;
    let command = match h.raw("command") {
        None => {
            return Err(Error::MissingKey {
                key: "command".into(),
                context: "health_check".into(),
                what: "the check, e.g. \"curl -f http://localhost/ || exit 1\" or [\"CMD\", \"/healthcheck\"]".into(),
            });
        }
        Some(v) if v.is_string() => vec!["CMD-SHELL".to_string(), v.to_string()],
        Some(v) => strings(&format!("{key}.command"), v)?,
    };
    if !matches!(command.first().map(String::as_str), Some("CMD" | "CMD-SHELL" | "NONE")) {
        return Err(Error::invalid(
            format!("{key}.command"),
            format!("{command:?}"),
            "a shell command string, or an array starting with \"CMD\" or \"CMD-SHELL\"",
        ));
    }
    let int = |name: &str, default: i64, range: std::ops::RangeInclusive<i64>| -> Result<i32> {
        int_in(&format!("{key}.{name}"), h.int(name)?.unwrap_or(default), range, "seconds")
    };
    Ok(HealthCheckSpec {
        command,
        interval: int("interval", 30, 5..=300)?,
        timeout: int("timeout", 5, 2..=60)?,
        retries: int_in(&format!("{key}.retries"), h.int("retries")?.unwrap_or(3), 1..=10, "retries")?,
        start_period: int("start_period", 0, 0..=300)?,
    })
}

pub(super) fn task_definition_handle(task: &TaskDefinition) -> Map {
    let containers: Array = task
        .spec
        .containers
        .iter()
        .map(|c| {
            let port = c.ports.first().map(|p| Dynamic::from(*p as i64)).unwrap_or(Dynamic::UNIT);
            Dynamic::from(handle(
                "container",
                [("name", c.name.clone().into()), ("image", c.image.clone().into()), ("port", port)],
            ))
        })
        .collect();
    handle(
        "task_definition",
        [
            ("arn", task.arn.clone().into()),
            ("family", task.family.clone().into()),
            ("revision", task.revision.map(|r| Dynamic::from(r as i64)).unwrap_or_else(|| UNKNOWN.into())),
            ("containers", containers.into()),
        ],
    )
}

// ---------------------------------------------------------------------------------------------
// Services

fn cluster_ref(value: &Dynamic) -> Result<(ClusterRef, Option<Vec<String>>)> {
    let key = "service.cluster";
    let arn = handle_or_string(key, value, "cluster", "arn", "a cluster name or ARN", |s| !s.is_empty())?;
    if value.is_map() {
        let name = handle_field(value, "name").map(|n| n.to_string()).unwrap_or_default();
        let providers = handle_field(value, "capacity_providers")
            .and_then(|p| p.try_cast::<Array>())
            .map(|p| p.iter().map(ToString::to_string).collect());
        return Ok((ClusterRef { name, arn }, providers));
    }
    // A plain name or ARN: ECS accepts either wherever a cluster is named.
    let name = arn.rsplit_once(":cluster/").map(|(_, n)| n.to_string()).unwrap_or_else(|| arn.clone());
    Ok((ClusterRef { name, arn }, None))
}

fn service_spec(pass: &Pass, cluster: &Dynamic, map: Map) -> Result<ServiceSpec> {
    let (cluster, providers) = cluster_ref(cluster)?;
    let f = Fields::new(
        "service",
        map,
        &[
            "name",
            "task",
            "desired",
            "capacity_provider",
            "subnets",
            "security_groups",
            "public_ip",
            "target_group",
            "container",
            "port",
            "health_check_grace",
            "circuit_breaker",
            "min_healthy_percent",
            "max_percent",
        ],
    )?;
    let name = f.req_str("name", "the service name, unique in the cluster")?;
    validate_identifier(&f.name("name"), &name, 255)?;
    let task = f.raw("task").ok_or_else(|| Error::MissingKey {
        key: "task".into(),
        context: "service()".into(),
        what: "the task definition (a task_definition handle or its ARN)".into(),
    })?;
    let task_definition = handle_or_string(
        &f.name("task"),
        task,
        "task_definition",
        "arn",
        "a task definition ARN \"arn:aws:ecs:...:task-definition/family:1\"",
        |s| s.starts_with("arn:") && s.contains(":task-definition/"),
    )?;
    let containers: Option<ContainerPorts> = if task.is_map() {
        handle_field(task, "containers").and_then(|c| c.try_cast::<Array>()).map(|list| {
            list.iter()
                .map(|c| {
                    let name = handle_field(c, "name").map(|n| n.to_string()).unwrap_or_default();
                    let port = handle_field(c, "port").and_then(|p| p.as_int().ok()).map(|p| p as i32);
                    (name, port.into_iter().collect())
                })
                .collect()
        })
    } else {
        ecs::task_definition_containers(pass, &task_definition)?
    };

    let desired = f.int("desired")?;
    if let Some(d) = desired
        && !(0..=i32::MAX as i64).contains(&d)
    {
        return Err(Error::invalid(f.name("desired"), d, "a task count of 0 or more"));
    }
    let capacity_provider = f.str("capacity_provider")?.unwrap_or_else(|| "FARGATE".into());
    if !FARGATE_PROVIDERS.contains(&capacity_provider.as_str()) {
        return Err(Error::invalid(
            f.name("capacity_provider"),
            format!("{capacity_provider:?}"),
            "\"FARGATE\" or \"FARGATE_SPOT\"",
        ));
    }
    if let Some(providers) = &providers
        && !providers.contains(&capacity_provider)
    {
        return Err(Error::invalid(
            f.name("capacity_provider"),
            format!("{capacity_provider:?}"),
            format!("a capacity provider of cluster {}: {}", cluster.name, providers.join(", ")),
        ));
    }
    let ids = |key: &str, kind: &str, prefix: &str| -> Result<Vec<String>> {
        let Some(value) = f.raw(key) else {
            return Ok(Vec::new());
        };
        let mut ids = as_array(&f.name(key), value)?
            .iter()
            .enumerate()
            .map(|(i, v)| handle_id(&format!("{}[{i}]", f.name(key)), v, kind, prefix))
            .collect::<Result<Vec<_>>>()?;
        ids.sort();
        ids.dedup();
        Ok(ids)
    };
    let subnets = ids("subnets", "subnet", "subnet-")?;
    let security_groups = ids("security_groups", "security_group", "sg-")?;

    let load_balancer = match f.raw("target_group") {
        None => {
            for key in ["container", "port"] {
                if let Some(v) = f.raw(key) {
                    return Err(Error::invalid(f.name(key), show(v), "only together with target_group"));
                }
            }
            None
        }
        Some(tg) => Some(load_balancer(pass, &f, tg, containers.as_deref())?),
    };
    let grace = f
        .int("health_check_grace")?
        .map(|g| int_in(&f.name("health_check_grace"), g, 0..=2_147_483_647, "seconds"))
        .transpose()?;
    let percent = |key: &str, default: i64, range| -> Result<i32> {
        int_in(&f.name(key), f.int(key)?.unwrap_or(default), range, "a percentage")
    };
    let deployment = Deployment {
        circuit_breaker: f.bool("circuit_breaker")?.unwrap_or(true),
        min_healthy_percent: percent("min_healthy_percent", 100, 0..=100)?,
        max_percent: percent("max_percent", 200, 100..=200)?,
    };
    Ok(ServiceSpec {
        name,
        cluster,
        task_definition,
        desired: desired.map(|d| d as i32),
        capacity_provider,
        subnets,
        security_groups,
        public_ip: f.bool("public_ip")?.unwrap_or(false),
        load_balancer,
        health_check_grace: grace,
        deployment,
    })
}

/// The egress trap: tasks without a public IP pull images only through a NAT route or VPC
/// endpoints. Warns (an error with `--strict`) when the service's subnets have neither, or when
/// they have only endpoints and an image is not in the region's private ECR (the endpoints serve
/// nothing else).
fn warn_without_egress(pass: &Pass, subnets: &Dynamic, images: &[String]) -> Result<()> {
    let subnets = as_array("service.subnets", subnets)?
        .iter()
        .enumerate()
        .map(|(i, s)| subnet_from(&format!("service.subnets[{i}]"), s))
        .collect::<Result<Vec<_>>>()?;
    if let Some(warning) = egress::private_egress_gap(pass, &subnets)? {
        return pass.warn(&warning);
    }
    match egress::images_beyond_endpoints(pass, &subnets, images)? {
        Some(warning) => pass.warn(&warning),
        None => Ok(()),
    }
}

/// The container images of a task_definition handle (none for a task given by ARN).
fn task_images(task: &Dynamic) -> Vec<String> {
    let containers = handle_field(task, "containers").and_then(|c| c.try_cast::<Array>()).unwrap_or_default();
    containers.iter().filter_map(|c| handle_field(c, "image")).map(|i| i.to_string()).collect()
}

/// The load balancer mapping: the target group must take IP targets (awsvpc), and the container
/// and port must exist in the task definition.
fn load_balancer(
    pass: &Pass,
    f: &Fields,
    tg: &Dynamic,
    containers: Option<&[(String, Vec<i32>)]>,
) -> Result<LoadBalancerSpec> {
    let key = f.name("target_group");
    let arn = handle_or_string(&key, tg, "target_group", "arn", "a target group ARN", |s| {
        s.starts_with("arn:") && s.contains(":targetgroup/")
    })?;
    let target_type = if tg.is_map() {
        handle_field(tg, "target_type").map(|t| t.to_string())
    } else {
        ecs::target_group_type(pass, &arn)?
    };
    if let Some(t) = target_type.filter(|t| t != "ip") {
        let from_arn = arn.split(":targetgroup/").nth(1).and_then(|rest| rest.split('/').next());
        let name = handle_field(tg, "name")
            .map(|n| n.to_string())
            .or(from_arn.map(str::to_string))
            .unwrap_or_else(|| arn.clone());
        return Err(Error::invalid(
            key,
            format!("target group {name} of type {t:?}"),
            "a target group of type \"ip\": Fargate tasks (awsvpc) register by IP address",
        ));
    }
    let container = f.str("container")?;
    let port = f.int("port")?;
    if let Some(p) = port {
        check_port(&f.name("port"), p)?;
    }
    let Some(containers) = containers else {
        // Check mode with a task definition given by ARN: nothing to check against.
        let container = container.ok_or_else(|| missing_lb("container"))?;
        let port = port.ok_or_else(|| missing_lb("port"))?;
        return Ok(LoadBalancerSpec { target_group_arn: arn, container, port: port as i32 });
    };
    let with_ports: Vec<&(String, Vec<i32>)> = containers.iter().filter(|(_, p)| !p.is_empty()).collect();
    let describe = || {
        containers
            .iter()
            .map(|(n, p)| if p.is_empty() { n.clone() } else { format!("{n}:{}", p[0]) })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (name, ports) = match &container {
        Some(c) => containers.iter().find(|(n, _)| n == c).ok_or_else(|| {
            Error::invalid(
                f.name("container"),
                format!("{c:?}"),
                format!("a container of the task definition: {}", describe()),
            )
        })?,
        None if with_ports.len() == 1 => with_ports[0],
        None => {
            return Err(Error::MissingKey {
                key: "container".into(),
                context: "service()".into(),
                what: format!("which container receives the target group's traffic ({})", describe()),
            });
        }
    };
    let port = match port {
        Some(p) if ports.contains(&(p as i32)) => p as i32,
        Some(p) => {
            return Err(Error::invalid(
                f.name("port"),
                p,
                format!(
                    "a port container {name} exposes: {}",
                    if ports.is_empty() { "it has none".into() } else { format!("{:?}", ports) }
                ),
            ));
        }
        None => *ports.first().ok_or_else(|| {
            Error::invalid(
                f.name("container"),
                format!("{name:?}"),
                "a container with a port (the target group sends traffic to it)",
            )
        })?,
    };
    Ok(LoadBalancerSpec { target_group_arn: arn, container: name.clone(), port })
}

fn missing_lb(key: &str) -> Error {
    Error::MissingKey {
        key: key.into(),
        context: "service()".into(),
        what: "with a target group, the container and port that receive its traffic".into(),
    }
}

fn service_handle(service: &Service, spec: &ServiceSpec) -> Map {
    let cluster_arn = if is_known(&service.cluster_arn) && !service.cluster_arn.is_empty() {
        service.cluster_arn.clone()
    } else {
        spec.cluster.arn.clone()
    };
    handle(
        "service",
        [
            ("arn", service.arn.clone().into()),
            ("name", service.name.clone().into()),
            ("cluster_arn", cluster_arn.into()),
            ("cluster", spec.cluster.name.clone().into()),
            ("desired", (service.desired as i64).into()),
            ("task_definition", spec.task_definition.clone().into()),
        ],
    )
}

fn stable_target(service: &Map, options: Map) -> Result<StableTarget> {
    let value = Dynamic::from(service.clone());
    handle_or_string("wait_stable.service", &value, "service", "name", "a service handle", |_| false)?;
    let field = |name: &str| service.get(name).map(ToString::to_string).unwrap_or_default();
    let f = Fields::new("wait_stable", options, &["timeout"])?;
    let timeout = f.int("timeout")?.unwrap_or(DEFAULT_TIMEOUT);
    if !(1..=86_400).contains(&timeout) {
        return Err(Error::invalid(f.name("timeout"), timeout, "seconds from 1 to 86400"));
    }
    let cluster =
        [field("cluster_arn"), field("cluster")].into_iter().find(|c| is_known(c) && !c.is_empty()).unwrap_or_default();
    let task = field("task_definition");
    Ok(StableTarget {
        cluster,
        name: field("name"),
        task_definition: (!task.is_empty()).then_some(task),
        timeout: Duration::from_secs(timeout as u64),
    })
}
