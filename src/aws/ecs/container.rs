//! The containers of a task definition: their normalised form (AWS's defaults filled in, so what a
//! script asks and what AWS reports compare equal), their diffs and their SDK conversions.

use std::collections::BTreeMap;
use std::fmt;

use aws_sdk_ecs::types::{
    ContainerDefinition, ContainerRestartPolicy, HealthCheck, KeyValuePair, LogConfiguration, LogDriver, MountPoint,
    PortMapping, Secret, TransportProtocol,
};

use super::{built, opt};
use crate::aws::secrets::looks_like_credential;
use crate::error::{Error, Result};
use crate::plan::FieldDiff;

/// The awslogs configuration of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logs {
    /// The log driver (deckhand sets `awslogs`).
    pub driver: String,
    /// `awslogs-group`.
    pub group: String,
    /// `awslogs-region`.
    pub region: String,
    /// `awslogs-stream-prefix`.
    pub stream_prefix: String,
}

impl fmt::Display for Logs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ({}, prefix {})", self.driver, self.group, self.region, self.stream_prefix)
    }
}

/// A container restart policy (only present when enabled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restart {
    /// Exit codes that do not trigger a restart (sorted).
    pub ignored_exit_codes: Vec<i32>,
    /// Seconds a container must run before a restart is attempted (60-1800, AWS default 300).
    pub attempt_period: i32,
}

impl fmt::Display for Restart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "enabled, attempt period {} s", self.attempt_period)?;
        if !self.ignored_exit_codes.is_empty() {
            write!(f, ", ignoring exit codes {:?}", self.ignored_exit_codes)?;
        }
        Ok(())
    }
}

/// A volume mounted into a container.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mount {
    /// The task volume's name.
    pub volume: String,
    /// Where it appears in the container.
    pub path: String,
    /// Mounted read-only.
    pub read_only: bool,
}

impl fmt::Display for Mount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}{}", self.volume, self.path, if self.read_only { " (read-only)" } else { "" })
    }
}

/// A container health check, with AWS's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckSpec {
    /// e.g. `["CMD-SHELL", "curl -f http://localhost/ || exit 1"]`.
    pub command: Vec<String>,
    /// Seconds between checks (5-300, default 30).
    pub interval: i32,
    /// Seconds before a check fails (2-60, default 5).
    pub timeout: i32,
    /// Failures before unhealthy (1-10, default 3).
    pub retries: i32,
    /// Grace seconds after start (0-300, default 0).
    pub start_period: i32,
}

impl fmt::Display for HealthCheckSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} every {} s, timeout {} s, {} retries, start period {} s",
            self.command, self.interval, self.timeout, self.retries, self.start_period
        )
    }
}

/// One container of a task definition, normalised (defaults filled) so that what the script asks
/// and what AWS reports compare equal when they mean the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec {
    /// Container name, unique in the task.
    pub name: String,
    /// Image reference.
    pub image: String,
    /// Container ports (TCP; host port = container port in awsvpc mode).
    pub ports: Vec<i32>,
    /// Environment variables.
    pub env: BTreeMap<String, String>,
    /// Secrets ECS injects as environment variables: name -> `valueFrom` (a parameter's or
    /// secret's ARN, `ARN:json-key::` for a secret's key).
    pub secrets: BTreeMap<String, String>,
    /// Command override (empty: the image's).
    pub command: Vec<String>,
    /// Whether the task stops when this container stops (AWS default true).
    pub essential: bool,
    /// awslogs configuration.
    pub logs: Option<Logs>,
    /// Restart policy, when enabled.
    pub restart: Option<Restart>,
    /// Volumes mounted into the container (sorted).
    pub mounts: Vec<Mount>,
    /// Container health check.
    pub health_check: Option<HealthCheckSpec>,
}

/// An EFS volume configuration.
pub(super) fn container_diffs(have: &ContainerSpec, want: &ContainerSpec) -> Vec<FieldDiff> {
    let mut diffs = Vec::new();
    let field = |name: &str| format!("containers[{}].{name}", want.name);
    if have.image != want.image {
        diffs.push(FieldDiff::changed(&field("image"), &have.image, &want.image));
    }
    if have.ports != want.ports {
        diffs.push(FieldDiff::changed(&field("port"), show_ports(&have.ports), show_ports(&want.ports)));
    }
    for (key, value) in &want.env {
        match have.env.get(key) {
            None => diffs.push(FieldDiff::added(&field("env"), format!("{key}={}", shown(value)))),
            Some(old) if old != value => {
                diffs.push(FieldDiff::changed(&field(&format!("env.{key}")), shown(old), shown(value)));
            }
            Some(_) => {}
        }
    }
    for (key, value) in have.env.iter().filter(|(k, _)| !want.env.contains_key(*k)) {
        diffs.push(FieldDiff::removed(&field("env"), format!("{key}={}", shown(value))));
    }
    for (key, value) in &want.secrets {
        match have.secrets.get(key) {
            None => diffs.push(FieldDiff::added(&field("secrets"), format!("{key} from {value}"))),
            Some(old) if old != value => diffs.push(FieldDiff::changed(&field(&format!("secrets.{key}")), old, value)),
            Some(_) => {}
        }
    }
    for (key, value) in have.secrets.iter().filter(|(k, _)| !want.secrets.contains_key(*k)) {
        diffs.push(FieldDiff::removed(&field("secrets"), format!("{key} from {value}")));
    }
    if have.command != want.command {
        diffs.push(FieldDiff::changed(&field("command"), format!("{:?}", have.command), format!("{:?}", want.command)));
    }
    if have.essential != want.essential {
        diffs.push(FieldDiff::changed(&field("essential"), have.essential, want.essential));
    }
    if have.logs != want.logs {
        diffs.push(FieldDiff::changed(&field("logs"), opt(&have.logs), opt(&want.logs)));
    }
    if have.restart != want.restart {
        diffs.push(FieldDiff::changed(&field("restart"), opt(&have.restart), opt(&want.restart)));
    }
    for m in want.mounts.iter().filter(|m| !have.mounts.contains(m)) {
        diffs.push(FieldDiff::added(&field("mounts"), m));
    }
    for m in have.mounts.iter().filter(|m| !want.mounts.contains(m)) {
        diffs.push(FieldDiff::removed(&field("mounts"), m));
    }
    if have.health_check != want.health_check {
        diffs.push(FieldDiff::changed(&field("health_check"), opt(&have.health_check), opt(&want.health_check)));
    }
    diffs
}

/// An env value as the plan shows it: hidden when it looks like a credential.
fn shown(value: &str) -> &str {
    if looks_like_credential(value).is_some() { "(hidden: looks like a credential)" } else { value }
}

fn show_ports(ports: &[i32]) -> String {
    if ports.is_empty() { "none".into() } else { ports.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ") }
}

/// The latest ACTIVE revision of `family`, or `None` when it has none.
pub(super) fn container_from(c: &ContainerDefinition) -> Result<ContainerSpec> {
    let logs = c.log_configuration().map(|l| {
        let option = |key: &str| l.options().and_then(|o| o.get(key)).cloned().unwrap_or_default();
        Logs {
            driver: l.log_driver().as_str().to_string(),
            group: option("awslogs-group"),
            region: option("awslogs-region"),
            stream_prefix: option("awslogs-stream-prefix"),
        }
    });
    let restart = c.restart_policy().filter(|r| r.enabled()).map(|r| {
        let mut codes = r.ignored_exit_codes().to_vec();
        codes.sort();
        Restart { ignored_exit_codes: codes, attempt_period: r.restart_attempt_period().unwrap_or(300) }
    });
    let mut mounts: Vec<Mount> = c
        .mount_points()
        .iter()
        .map(|m| Mount {
            volume: m.source_volume().unwrap_or_default().to_string(),
            path: m.container_path().unwrap_or_default().to_string(),
            read_only: m.read_only().unwrap_or(false),
        })
        .collect();
    mounts.sort();
    Ok(ContainerSpec {
        name: c
            .name()
            .ok_or_else(|| Error::missing("DescribeTaskDefinition", "containerDefinitions.name"))?
            .to_string(),
        image: c.image().unwrap_or_default().to_string(),
        ports: c.port_mappings().iter().filter_map(|p| p.container_port()).collect(),
        env: c
            .environment()
            .iter()
            .map(|kv| (kv.name().unwrap_or_default().to_string(), kv.value().unwrap_or_default().to_string()))
            .collect(),
        secrets: c.secrets().iter().map(|s| (s.name().to_string(), s.value_from().to_string())).collect(),
        command: c.command().to_vec(),
        essential: c.essential().unwrap_or(true),
        logs,
        restart,
        mounts,
        health_check: c.health_check().map(|h| HealthCheckSpec {
            command: h.command().to_vec(),
            interval: h.interval().unwrap_or(30),
            timeout: h.timeout().unwrap_or(5),
            retries: h.retries().unwrap_or(3),
            start_period: h.start_period().unwrap_or(0),
        }),
    })
}

pub(super) fn container_definition(c: &ContainerSpec) -> Result<ContainerDefinition> {
    let mut def = ContainerDefinition::builder().name(&c.name).image(&c.image).essential(c.essential);
    for port in &c.ports {
        def = def.port_mappings(
            PortMapping::builder().container_port(*port).host_port(*port).protocol(TransportProtocol::Tcp).build(),
        );
    }
    for (name, value) in &c.env {
        def = def.environment(KeyValuePair::builder().name(name).value(value).build());
    }
    for (name, value_from) in &c.secrets {
        def = def.secrets(built("a secret", Secret::builder().name(name).value_from(value_from).build())?);
    }
    if !c.command.is_empty() {
        def = def.set_command(Some(c.command.clone()));
    }
    if let Some(logs) = &c.logs {
        let config = LogConfiguration::builder()
            .log_driver(LogDriver::from(logs.driver.as_str()))
            .options("awslogs-group", &logs.group)
            .options("awslogs-region", &logs.region)
            .options("awslogs-stream-prefix", &logs.stream_prefix)
            .build();
        def = def.log_configuration(built("a log configuration", config)?);
    }
    if let Some(restart) = &c.restart {
        let policy = ContainerRestartPolicy::builder()
            .enabled(true)
            .set_ignored_exit_codes(Some(restart.ignored_exit_codes.clone()))
            .restart_attempt_period(restart.attempt_period)
            .build();
        def = def.restart_policy(built("a restart policy", policy)?);
    }
    for m in &c.mounts {
        def = def.mount_points(
            MountPoint::builder().source_volume(&m.volume).container_path(&m.path).read_only(m.read_only).build(),
        );
    }
    if let Some(h) = &c.health_check {
        let check = HealthCheck::builder()
            .set_command(Some(h.command.clone()))
            .interval(h.interval)
            .timeout(h.timeout)
            .retries(h.retries)
            .start_period(h.start_period)
            .build();
        def = def.health_check(built("a health check", check)?);
    }
    Ok(def.build())
}
