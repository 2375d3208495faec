//! `task_definition()`: the task and its volumes, containers (ports, logs, restart policy, health
//! check, secrets) and the execution role's secrets policy.

use std::collections::BTreeMap;

use rhai::{Array, Dynamic, Map};

use crate::arn::{self, Arn};
use crate::aws::Pass;
use crate::aws::ec2::check_port;
use crate::aws::ecs::{
    self, Arch, ContainerSpec, Efs, HealthCheckSpec, Logs, Mount, Restart, TaskDefinition, TaskDefinitionSpec,
    VolumeSpec,
};
use crate::aws::iam::{self, RolePolicy, RolePolicySpec};
use crate::aws::secrets::{SecretSource, access_policy, looks_like_credential};
use crate::bindings::{Fields, as_array, as_int, handle, handle_field, handle_or_string, show};
use crate::converge::converge;
use crate::error::{Error, Result};
use crate::plan::UNKNOWN;

use super::{int_in, strings, sub_map, validate_identifier};

/// Lets the task definition's execution role read exactly the containers' secrets: the role's
/// inline policy `deckhand-secrets-FAMILY` is put when the task has secrets (and changed when they
/// change) and deleted when it has none left.
pub(super) fn converge_secrets_policy(
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
    let name = crate::bindings::secrets::policy_name(&spec.family)?;
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
    arn.and_then(|arn| Arn::of_type(arn, "iam", "role"))
        .map(|arn| arn.last_segment().to_string())
        .ok_or_else(|| Error::invalid("task_definition.execution_role", show(value), "a role or role ARN"))
}

pub(super) fn task_definition_spec(
    pass: &Pass,
    map: Map,
    sources: &mut Vec<SecretSource>,
) -> Result<TaskDefinitionSpec> {
    let f = Fields::new(
        "task_definition",
        map,
        &[
            "family",
            "cpu",
            "memory",
            "execution_role",
            "task_role",
            "containers",
            "volumes",
            "arch",
            "ephemeral_storage",
        ],
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
                    arn::is_of(s, "iam", "role/")
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
    let arch = match f.str("arch")? {
        None => Arch::default(),
        Some(arch) => Arch::parse(&arch)
            .ok_or_else(|| Error::invalid(f.name("arch"), format!("{arch:?}"), "\"x86_64\" or \"arm64\" (Graviton)"))?,
    };
    let ephemeral_storage = match f.int("ephemeral_storage")? {
        None => ecs::DEFAULT_EPHEMERAL_STORAGE,
        Some(gib) => int_in(
            &f.name("ephemeral_storage"),
            gib,
            (ecs::DEFAULT_EPHEMERAL_STORAGE as i64 + 1)..=ecs::MAX_EPHEMERAL_STORAGE as i64,
            "GiB",
        )?,
    };
    let spec = TaskDefinitionSpec {
        family,
        cpu,
        memory,
        execution_role,
        task_role,
        containers,
        volumes,
        arch,
        ephemeral_storage,
    };
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
        let source = crate::bindings::secrets::source_from(&at_key, &value)?;
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

pub(in crate::bindings) fn task_definition_handle(task: &TaskDefinition) -> Map {
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
            ("arch", task.spec.arch.as_str().into()),
            ("task_role", task.spec.task_role.clone().map_or(Dynamic::UNIT, Dynamic::from)),
        ],
    )
}
