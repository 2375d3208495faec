//! `service()` and `wait_stable()`: the service's cluster, network, load balancer mapping and
//! deployment settings, the egress-trap warning, and what waiting for a rollout watches.

use std::time::Duration;

use rhai::{Array, Dynamic, FnPtr, Map};

use crate::arn::{self, Arn};
use crate::aws::Pass;
use crate::aws::ec2::check_port;
use crate::aws::ecs::{
    self, Arch, ClusterRef, ContainerPorts, Deployment, FARGATE_PROVIDERS, LoadBalancerSpec, Service, ServiceSpec,
    Strategy, StrategyItem,
};
use crate::aws::egress;
use crate::bindings::ec2::subnet_from;
use crate::bindings::{Fields, as_array, handle, handle_field, handle_id, handle_or_string, show};
use crate::error::{Error, Result};
use crate::plan::is_known;
use crate::wait::StableTarget;

use super::deploy::{DeployOptions, deploy_options};
use super::{DEFAULT_TIMEOUT, int_in, validate_identifier};

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
    let name = crate::aws::ecs::cluster_name(&arn).to_string();
    Ok((ClusterRef { name, arn }, None))
}

pub(super) fn service_spec(pass: &Pass, cluster: &Dynamic, map: Map) -> Result<(ServiceSpec, DeployOptions)> {
    let (cluster, providers) = cluster_ref(cluster)?;
    let f = Fields::new(
        "service",
        map,
        &[
            "name",
            "task",
            "desired",
            "capacity_provider",
            "capacity",
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
            "exec",
            "deploy",
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
        |s| arn::is_of(s, "ecs", "task-definition/"),
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
    let capacity = capacity_strategy(pass, &f, &cluster, providers.as_deref(), task, &task_definition)?;
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
    let deploy = deploy_options(&f)?;
    let deployment = Deployment {
        circuit_breaker: f.bool("circuit_breaker")?.unwrap_or(true),
        min_healthy_percent: percent("min_healthy_percent", 100, 0..=100)?,
        max_percent: percent("max_percent", 200, 100..=200)?,
        strategy: deploy.strategy.clone(),
        alarms: deploy.alarms.clone(),
        pause_after_test: matches!(deploy.strategy, Strategy::BlueGreen { .. }) && deploy.test_listener.is_some(),
    };
    // The strategy's numbers first: what deckhand creates for it comes next.
    ecs::validate_deployment(&deployment)?;
    let spec = ServiceSpec {
        name,
        cluster,
        task_definition,
        desired: desired.map(|d| d as i32),
        capacity,
        subnets,
        security_groups,
        public_ip: f.bool("public_ip")?.unwrap_or(false),
        load_balancer,
        health_check_grace: grace,
        deployment,
        exec: f.bool("exec")?.unwrap_or(false),
    };
    Ok((spec, deploy))
}

/// The service's capacity provider strategy: `capacity_provider` (one provider) or `capacity` (a
/// mixed strategy), never both; FARGATE alone by default. Spot only where the cluster has the
/// provider (when the cluster handle says), and never for an ARM64 task definition.
fn capacity_strategy(
    pass: &Pass,
    f: &Fields,
    cluster: &ClusterRef,
    providers: Option<&[String]>,
    task: &Dynamic,
    task_definition: &str,
) -> Result<Vec<StrategyItem>> {
    let (key, mut items) = match (f.str("capacity_provider")?, f.raw("capacity")) {
        (Some(_), Some(capacity)) => {
            return Err(Error::invalid(
                f.name("capacity"),
                show(capacity),
                "either capacity_provider (one provider) or capacity (a strategy), not both",
            ));
        }
        (Some(provider), None) => {
            if !FARGATE_PROVIDERS.contains(&provider.as_str()) {
                return Err(Error::invalid(
                    f.name("capacity_provider"),
                    format!("{provider:?}"),
                    "\"FARGATE\" or \"FARGATE_SPOT\"",
                ));
            }
            (f.name("capacity_provider"), vec![StrategyItem { provider, weight: 1, base: 0 }])
        }
        (None, Some(capacity)) => {
            (f.name("capacity"), super::strategy("service.capacity", &f.name("capacity"), capacity)?)
        }
        (None, None) => {
            (f.name("capacity_provider"), vec![StrategyItem { provider: "FARGATE".into(), weight: 1, base: 0 }])
        }
    };
    ecs::validate_capacity(&items)?;
    if let Some(providers) = providers
        && let Some(missing) = items.iter().find(|i| !providers.contains(&i.provider))
    {
        return Err(Error::invalid(
            &key,
            format!("{:?}", missing.provider),
            format!("a capacity provider of cluster {}: {}", cluster.name, providers.join(", ")),
        ));
    }
    if items.iter().any(|i| i.provider == "FARGATE_SPOT")
        && task_arch(pass, task, task_definition)? == Some(Arch::Arm64)
    {
        return Err(Error::invalid(&key, "\"FARGATE_SPOT\"", SPOT_ARM64));
    }
    items.sort();
    Ok(items)
}

/// Why ARM64 and Fargate Spot exclude each other (ECS developer guide, "AWS Fargate capacity
/// providers": Fargate Spot does not support Linux tasks with the ARM64 architecture).
pub const SPOT_ARM64: &str =
    "FARGATE alone for an arm64 task definition: Fargate Spot does not run Linux ARM64 tasks (use x86_64 for Spot)";

/// The task definition's architecture: from its handle, else read by ARN (`None` in check mode).
fn task_arch(pass: &Pass, task: &Dynamic, arn: &str) -> Result<Option<Arch>> {
    if let Some(arch) = handle_field(task, "arch") {
        return Ok(Arch::parse(&arch.to_string()));
    }
    if !is_known(arn) {
        return Ok(None);
    }
    let Some(found) = pass.read(async |aws| ecs::describe_task_definition(aws, arn).await) else {
        return Ok(None);
    };
    Ok(found?.map(|(_, task)| task.spec.arch))
}

/// The egress trap: tasks without a public IP pull images only through a NAT route or VPC
/// endpoints. Warns (an error with `--strict`) when the service's subnets have neither, or when
/// they have only endpoints and an image is not in the region's private ECR (the endpoints serve
/// nothing else).
pub(super) fn warn_without_egress(pass: &Pass, subnets: &Dynamic, images: &[String]) -> Result<()> {
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

/// With exec on and tasks that reach AWS only through VPC endpoints: warns (an error with
/// `--strict`) when there is no ssmmessages endpoint for ECS Exec's agent.
pub(super) fn warn_exec_without_endpoint(pass: &Pass, subnets: &Dynamic) -> Result<()> {
    let subnets = as_array("service.subnets", subnets)?
        .iter()
        .enumerate()
        .map(|(i, s)| subnet_from(&format!("service.subnets[{i}]"), s))
        .collect::<Result<Vec<_>>>()?;
    match egress::exec_without_ssmmessages(pass, &subnets)? {
        Some(warning) => pass.warn(&warning),
        None => Ok(()),
    }
}

/// The container images of a task_definition handle (none for a task given by ARN).
pub(super) fn task_images(task: &Dynamic) -> Vec<String> {
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
        arn::is_of(s, "elasticloadbalancing", "targetgroup/")
    })?;
    let target_type = if tg.is_map() {
        handle_field(tg, "target_type").map(|t| t.to_string())
    } else {
        ecs::target_group_type(pass, &arn)?
    };
    if let Some(t) = target_type.filter(|t| t != "ip") {
        let from_arn = Arn::parse(&arn).and_then(|a| a.segments().nth(1));
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
        return Ok(LoadBalancerSpec { target_group_arn: arn, container, port: port as i32, advanced: None });
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
    Ok(LoadBalancerSpec { target_group_arn: arn, container: name.clone(), port, advanced: None })
}

fn missing_lb(key: &str) -> Error {
    Error::MissingKey {
        key: key.into(),
        context: "service()".into(),
        what: "with a target group, the container and port that receive its traffic".into(),
    }
}

pub(super) fn service_handle(service: &Service, spec: &ServiceSpec) -> Map {
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
            ("strategy", spec.deployment.strategy.name().into()),
        ],
    )
}

/// What `wait_stable` waits for, and the script's `check` (a function) when it gives one.
pub(super) fn stable_target(service: &Map, options: Map) -> Result<(StableTarget, Option<FnPtr>)> {
    let value = Dynamic::from(service.clone());
    handle_or_string("wait_stable.service", &value, "service", "name", "a service handle", |_| false)?;
    let field = |name: &str| service.get(name).map(ToString::to_string).unwrap_or_default();
    let f = Fields::new("wait_stable", options, &["timeout", "check"])?;
    let check = match f.raw("check") {
        None => None,
        Some(value) => Some(value.clone().try_cast::<FnPtr>().ok_or_else(|| {
            Error::invalid(f.name("check"), show(value), "a function, e.g. || http_check(url, #{ status: 200 })")
        })?),
    };
    let strategy = field("strategy");
    if check.is_some() && !["blue_green", "canary", "linear"].contains(&strategy.as_str()) {
        return Err(Error::invalid(
            f.name("check"),
            "a function",
            "a check only for a service with deploy strategy \"blue_green\" (with a test_listener), \"canary\" or \"linear\": a rolling update has no stage to hold traffic back at",
        ));
    }
    let timeout = f.int("timeout")?.unwrap_or(DEFAULT_TIMEOUT);
    if !(1..=86_400).contains(&timeout) {
        return Err(Error::invalid(f.name("timeout"), timeout, "seconds from 1 to 86400"));
    }
    let cluster =
        [field("cluster_arn"), field("cluster")].into_iter().find(|c| is_known(c) && !c.is_empty()).unwrap_or_default();
    let task = field("task_definition");
    let target = StableTarget {
        cluster,
        name: field("name"),
        task_definition: (!task.is_empty()).then_some(task),
        timeout: Duration::from_secs(timeout as u64),
        shifts_traffic: ["blue_green", "canary", "linear"].contains(&strategy.as_str()),
    };
    Ok((target, check))
}
