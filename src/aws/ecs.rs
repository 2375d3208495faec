//! ECS on Fargate: clusters, task definitions and services, and how each converges.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, CapacityProviderStrategyItem, ClusterField, ClusterSetting,
    ClusterSettingName, Compatibility, ContainerDefinition, ContainerRestartPolicy, DeploymentCircuitBreaker,
    DeploymentConfiguration, EfsTransitEncryption, EfsVolumeConfiguration, HealthCheck, KeyValuePair, LoadBalancer,
    LogConfiguration, LogDriver, MountPoint, NetworkConfiguration, NetworkMode, PortMapping, ServiceField, Tag,
    TaskDefinitionField, TransportProtocol, Volume,
};
use aws_smithy_types::error::operation::BuildError;

use crate::aws::NAME_TAG;
use crate::error::{Error, Result, aws_error};
use crate::pass::{Pass, STACK_TAG};
use crate::plan::{Change, ChangeKind, FieldDiff, UNKNOWN, is_known};
use crate::runtime::Aws;

/// The Fargate capacity providers every cluster can use without setup.
pub const FARGATE_PROVIDERS: [&str; 2] = ["FARGATE", "FARGATE_SPOT"];

/// One entry of a capacity provider strategy.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StrategyItem {
    /// `FARGATE`, `FARGATE_SPOT` or an Auto Scaling group capacity provider.
    pub provider: String,
    /// Relative share of tasks (0-1000).
    pub weight: i32,
    /// Tasks placed on this provider first (0-100000).
    pub base: i32,
}

impl fmt::Display for StrategyItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} weight {}", self.provider, self.weight)?;
        if self.base > 0 {
            write!(f, " base {}", self.base)?;
        }
        Ok(())
    }
}

fn show_strategy(items: &[StrategyItem]) -> String {
    if items.is_empty() { "none".into() } else { items.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ") }
}

/// What a script asks of a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    /// Cluster name, unique in the region.
    pub name: String,
    /// Capacity providers the cluster offers (default FARGATE and FARGATE_SPOT).
    pub capacity_providers: Vec<String>,
    /// The strategy for tasks and services that name none.
    pub default_strategy: Vec<StrategyItem>,
    /// `enabled`, `enhanced` or `disabled`; `None` leaves the setting alone.
    pub container_insights: Option<String>,
}

/// A cluster as it exists (or will exist) in AWS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// Its ARN, or [`UNKNOWN`].
    pub arn: String,
    /// Its name.
    pub name: String,
    /// `ACTIVE`, `PROVISIONING`, `INACTIVE`, ...
    pub status: String,
    /// Capacity providers (sorted).
    pub capacity_providers: Vec<String>,
    /// Default capacity provider strategy (sorted).
    pub default_strategy: Vec<StrategyItem>,
    /// The containerInsights setting (`disabled` when AWS reports none).
    pub container_insights: String,
    /// Its `deckhand:stack` tag.
    pub stack: Option<String>,
}

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
    /// Seconds before a check fails (2-120, default 5).
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Efs {
    /// `fs-...`.
    pub file_system_id: String,
    /// Directory of the file system to mount (default `/`).
    pub root_directory: String,
    /// Encrypt NFS traffic.
    pub transit_encryption: bool,
}

impl fmt::Display for Efs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "efs {}:{}", self.file_system_id, self.root_directory)?;
        if self.transit_encryption {
            write!(f, " (transit encryption)")?;
        }
        Ok(())
    }
}

/// A task volume: task storage (gone with the task) or EFS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeSpec {
    /// Volume name, referenced by mounts.
    pub name: String,
    /// EFS configuration, or `None` for task storage.
    pub efs: Option<Efs>,
}

impl VolumeSpec {
    fn describe(&self) -> String {
        self.efs.as_ref().map(ToString::to_string).unwrap_or_else(|| "task storage".into())
    }
}

/// What a script asks of a Fargate task definition (normalised).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDefinitionSpec {
    /// The family; each change registers a new revision of it.
    pub family: String,
    /// CPU units (256 = 0.25 vCPU).
    pub cpu: i32,
    /// Memory in MiB.
    pub memory: i32,
    /// Task execution role ARN (pulls images, writes logs), or [`UNKNOWN`].
    pub execution_role: Option<String>,
    /// Task role ARN (what the app may call), or [`UNKNOWN`].
    pub task_role: Option<String>,
    /// The containers, in script order.
    pub containers: Vec<ContainerSpec>,
    /// The volumes (sorted by name).
    pub volumes: Vec<VolumeSpec>,
}

/// A registered task definition revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDefinition {
    /// Revision ARN, or [`UNKNOWN`].
    pub arn: String,
    /// Family.
    pub family: String,
    /// Revision number, when known.
    pub revision: Option<i32>,
    /// `awsvpc` for Fargate.
    pub network_mode: String,
    /// Whether it requires FARGATE compatibility.
    pub fargate: bool,
    /// Its content, normalised like a spec.
    pub spec: TaskDefinitionSpec,
    /// Its `deckhand:stack` tag.
    pub stack: Option<String>,
}

impl TaskDefinition {
    /// `family:revision`, or `family:(known after apply)`.
    pub fn label(&self) -> String {
        match self.revision {
            Some(r) => format!("{}:{r}", self.family),
            None => format!("{}:{UNKNOWN}", self.family),
        }
    }
}

/// The load balancer mapping of a service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LoadBalancerSpec {
    /// Target group ARN (or [`UNKNOWN`]).
    pub target_group_arn: String,
    /// Container that receives traffic.
    pub container: String,
    /// Its port.
    pub port: i32,
}

impl fmt::Display for LoadBalancerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}:{}", self.target_group_arn, self.container, self.port)
    }
}

/// Deployment settings of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// Circuit breaker with rollback on.
    pub circuit_breaker: bool,
    /// Minimum healthy percent during deployments.
    pub min_healthy_percent: i32,
    /// Maximum percent during deployments.
    pub max_percent: i32,
}

impl fmt::Display for Deployment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "circuit breaker {}, {}-{}%",
            if self.circuit_breaker { "on (rollback)" } else { "off" },
            self.min_healthy_percent,
            self.max_percent
        )
    }
}

/// A reference to a cluster: its name and, when known, ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterRef {
    /// The cluster name.
    pub name: String,
    /// Its ARN, or [`UNKNOWN`].
    pub arn: String,
}

/// What a script asks of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    /// Service name, unique in the cluster.
    pub name: String,
    /// The cluster.
    pub cluster: ClusterRef,
    /// Task definition revision ARN (or [`UNKNOWN`] when a new one is planned).
    pub task_definition: String,
    /// Desired task count; `None` keeps an existing service's count (1 for a new one).
    pub desired: Option<i32>,
    /// `FARGATE` or `FARGATE_SPOT`.
    pub capacity_provider: String,
    /// Subnet ids (sorted).
    pub subnets: Vec<String>,
    /// Security group ids (sorted).
    pub security_groups: Vec<String>,
    /// Assign public IPs to tasks.
    pub public_ip: bool,
    /// Load balancer mapping.
    pub load_balancer: Option<LoadBalancerSpec>,
    /// Health check grace period in seconds (only with a load balancer).
    pub health_check_grace: Option<i32>,
    /// Deployment settings.
    pub deployment: Deployment,
}

/// A service as it exists (or will exist) in AWS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Its ARN, or [`UNKNOWN`].
    pub arn: String,
    /// Its name.
    pub name: String,
    /// Its cluster's ARN, or [`UNKNOWN`].
    pub cluster_arn: String,
    /// `ACTIVE`, `DRAINING` or `INACTIVE`.
    pub status: String,
    /// Task definition ARN.
    pub task_definition: String,
    /// Desired count.
    pub desired: i32,
    /// Capacity provider strategy (sorted; empty when AWS reports none).
    pub strategy: Vec<StrategyItem>,
    /// Subnet ids (sorted).
    pub subnets: Vec<String>,
    /// Security group ids (sorted).
    pub security_groups: Vec<String>,
    /// Whether tasks get public IPs.
    pub public_ip: bool,
    /// Load balancer mappings (sorted).
    pub load_balancers: Vec<LoadBalancerSpec>,
    /// Health check grace period.
    pub health_check_grace: Option<i32>,
    /// Deployment settings, when AWS reports them.
    pub deployment: Option<Deployment>,
    /// Its `deckhand:stack` tag.
    pub stack: Option<String>,
}

/// The ECS part of a run's snapshot.
#[derive(Debug, Default, Clone)]
pub struct EcsState {
    /// Every cluster in the region (to find the stack's and refuse names taken by others).
    pub clusters: Vec<Cluster>,
    /// Services by cluster name: loaded up front for the stack's clusters, on demand for others.
    pub services: HashMap<String, Vec<Service>>,
    /// The latest ACTIVE revision of each family asked about so far (`None`: no ACTIVE revision).
    pub task_definitions: HashMap<String, Option<TaskDefinition>>,
    /// Target group types by ARN, for target groups given as ARNs rather than handles.
    pub target_group_types: HashMap<String, Option<String>>,
    /// Containers by task definition ARN, for task definitions given as ARNs rather than handles.
    pub task_containers: HashMap<String, ContainerPorts>,
    /// Whether this state was read from AWS (false in check mode).
    pub loaded: bool,
}

impl EcsState {
    /// Reads every cluster (with tags and settings) and the services of the stack's clusters.
    pub async fn load(aws: &Aws, stack: &str) -> Result<EcsState> {
        let mut arns = Vec::new();
        let mut pages = aws.ecs.list_clusters().into_paginator().items().send();
        while let Some(arn) = pages.next().await {
            arns.push(arn.map_err(|e| aws_error("ListClusters", e))?);
        }
        let mut clusters = Vec::new();
        for chunk in arns.chunks(100) {
            clusters.extend(describe_clusters(aws, chunk.to_vec()).await?);
        }
        let mut services = HashMap::new();
        for cluster in clusters.iter().filter(|c| c.status == "ACTIVE" && c.stack.as_deref() == Some(stack)) {
            services.insert(cluster.name.clone(), cluster_services(aws, &cluster.arn).await?);
        }
        Ok(EcsState { clusters, services, loaded: true, ..EcsState::default() })
    }
}

fn built<T>(what: &str, result: std::result::Result<T, BuildError>) -> Result<T> {
    result.map_err(|e| Error::conflict(format!("internal error building {what}: {e}"), None))
}

fn tag_value(tags: &[Tag], key: &str) -> Option<String> {
    tags.iter().find(|t| t.key() == Some(key)).and_then(|t| t.value().map(str::to_string))
}

fn tags_for(stack: &str, name: &str) -> Vec<Tag> {
    vec![Tag::builder().key(NAME_TAG).value(name).build(), Tag::builder().key(STACK_TAG).value(stack).build()]
}

fn strategy_from(items: &[CapacityProviderStrategyItem]) -> Vec<StrategyItem> {
    let mut strategy: Vec<StrategyItem> = items
        .iter()
        .map(|i| StrategyItem { provider: i.capacity_provider().to_string(), weight: i.weight(), base: i.base() })
        .collect();
    strategy.sort();
    strategy
}

fn strategy_to(items: &[StrategyItem]) -> Result<Vec<CapacityProviderStrategyItem>> {
    items
        .iter()
        .map(|i| {
            built(
                "a capacity provider strategy",
                CapacityProviderStrategyItem::builder()
                    .capacity_provider(&i.provider)
                    .weight(i.weight)
                    .base(i.base)
                    .build(),
            )
        })
        .collect()
}

pub(crate) async fn describe_clusters(aws: &Aws, names: Vec<String>) -> Result<Vec<Cluster>> {
    let out = aws
        .ecs
        .describe_clusters()
        .set_clusters(Some(names))
        .include(ClusterField::Tags)
        .include(ClusterField::Settings)
        .send()
        .await
        .map_err(|e| aws_error("DescribeClusters", e))?;
    Ok(out
        .clusters()
        .iter()
        .map(|c| {
            let mut capacity_providers = c.capacity_providers().to_vec();
            capacity_providers.sort();
            let container_insights = c
                .settings()
                .iter()
                .find(|s| s.name() == Some(&ClusterSettingName::ContainerInsights))
                .and_then(|s| s.value())
                .unwrap_or("disabled")
                .to_string();
            Cluster {
                arn: c.cluster_arn().unwrap_or_default().to_string(),
                name: c.cluster_name().unwrap_or_default().to_string(),
                status: c.status().unwrap_or_default().to_string(),
                capacity_providers,
                default_strategy: strategy_from(c.default_capacity_provider_strategy()),
                container_insights,
                stack: tag_value(c.tags(), STACK_TAG),
            }
        })
        .collect())
}

async fn cluster_services(aws: &Aws, cluster_arn: &str) -> Result<Vec<Service>> {
    let mut arns = Vec::new();
    let mut pages = aws.ecs.list_services().cluster(cluster_arn).into_paginator().items().send();
    while let Some(arn) = pages.next().await {
        arns.push(arn.map_err(|e| aws_error("ListServices", e))?);
    }
    let mut services = Vec::new();
    for chunk in arns.chunks(10) {
        services.extend(describe_services(aws, cluster_arn, chunk.to_vec()).await?);
    }
    Ok(services)
}

async fn describe_services(aws: &Aws, cluster: &str, names: Vec<String>) -> Result<Vec<Service>> {
    let out = aws
        .ecs
        .describe_services()
        .cluster(cluster)
        .set_services(Some(names))
        .include(ServiceField::Tags)
        .send()
        .await
        .map_err(|e| aws_error("DescribeServices", e))?;
    Ok(out.services().iter().map(service_from).collect())
}

fn service_from(s: &aws_sdk_ecs::types::Service) -> Service {
    let vpc = s.network_configuration().and_then(|n| n.awsvpc_configuration());
    let sorted = |items: &[String]| {
        let mut items = items.to_vec();
        items.sort();
        items
    };
    let mut load_balancers: Vec<LoadBalancerSpec> = s
        .load_balancers()
        .iter()
        .map(|lb| LoadBalancerSpec {
            target_group_arn: lb.target_group_arn().unwrap_or_default().to_string(),
            container: lb.container_name().unwrap_or_default().to_string(),
            port: lb.container_port().unwrap_or_default(),
        })
        .collect();
    load_balancers.sort();
    let deployment = s.deployment_configuration().map(|d| Deployment {
        circuit_breaker: d.deployment_circuit_breaker().map(|c| c.enable() && c.rollback()).unwrap_or(false),
        min_healthy_percent: d.minimum_healthy_percent().unwrap_or(100),
        max_percent: d.maximum_percent().unwrap_or(200),
    });
    Service {
        arn: s.service_arn().unwrap_or_default().to_string(),
        name: s.service_name().unwrap_or_default().to_string(),
        cluster_arn: s.cluster_arn().unwrap_or_default().to_string(),
        status: s.status().unwrap_or_default().to_string(),
        task_definition: s.task_definition().unwrap_or_default().to_string(),
        desired: s.desired_count(),
        strategy: strategy_from(s.capacity_provider_strategy()),
        subnets: vpc.map(|v| sorted(v.subnets())).unwrap_or_default(),
        security_groups: vpc.map(|v| sorted(v.security_groups())).unwrap_or_default(),
        public_ip: vpc.and_then(|v| v.assign_public_ip()) == Some(&AssignPublicIp::Enabled),
        load_balancers,
        health_check_grace: s.health_check_grace_period_seconds(),
        deployment,
        stack: tag_value(s.tags(), STACK_TAG),
    }
}

fn not_ours(what: &str, name: &str, owner: Option<&str>, stack: &str) -> Error {
    let owner = match owner {
        Some(other) => format!("belongs to stack {other}"),
        None => "was not created by deckhand".to_string(),
    };
    Error::conflict(
        format!("{what} {name} already exists and {owner}, not to stack {stack}"),
        Some(&format!(
            "deckhand never adopts resources it did not create; choose another name, or tag it {STACK_TAG}={stack} to hand it over"
        )),
    )
}

// ---------------------------------------------------------------------------------------------
// Clusters

/// Checks a capacity provider strategy: AWS's limits on weight and base, providers the cluster
/// offers, no mix of Fargate and Auto Scaling group providers.
pub fn validate_strategy(key: &str, strategy: &[StrategyItem], providers: &[String]) -> Result<()> {
    let mut seen = BTreeSet::new();
    for (i, item) in strategy.iter().enumerate() {
        if !providers.contains(&item.provider) {
            return Err(Error::invalid(
                format!("{key}[{i}].provider"),
                format!("{:?}", item.provider),
                format!("one of the cluster's capacity providers: {}", providers.join(", ")),
            ));
        }
        if !seen.insert(&item.provider) {
            return Err(Error::invalid(
                format!("{key}[{i}].provider"),
                format!("{:?}", item.provider),
                "each capacity provider once",
            ));
        }
        if !(0..=1000).contains(&item.weight) {
            return Err(Error::invalid(format!("{key}[{i}].weight"), item.weight, "a weight from 0 to 1000"));
        }
        if !(0..=100_000).contains(&item.base) {
            return Err(Error::invalid(format!("{key}[{i}].base"), item.base, "a base from 0 to 100000"));
        }
    }
    if strategy.iter().filter(|i| i.base > 0).count() > 1 {
        return Err(Error::invalid(key, show_strategy(strategy), "a base on at most one capacity provider"));
    }
    if !strategy.is_empty() && strategy.iter().all(|i| i.weight == 0) {
        return Err(Error::invalid(
            key,
            show_strategy(strategy),
            "at least one capacity provider with a weight above 0",
        ));
    }
    let fargate = strategy.iter().filter(|i| FARGATE_PROVIDERS.contains(&i.provider.as_str())).count();
    if fargate > 0 && fargate < strategy.len() {
        return Err(Error::invalid(
            key,
            show_strategy(strategy),
            "either Fargate providers (FARGATE, FARGATE_SPOT) or Auto Scaling group providers, not both",
        ));
    }
    Ok(())
}

/// Converges a cluster: created with its capacity providers, default strategy and settings;
/// those are updated in place, the cluster itself is never re-created.
pub fn ensure_cluster(pass: &Pass, spec: &ClusterSpec) -> Result<Cluster> {
    validate_strategy("cluster.default_strategy", &spec.default_strategy, &spec.capacity_providers)?;
    let stack = pass.stack()?;
    let snapshot = pass.snapshot()?;
    let existing =
        snapshot.borrow().ecs.clusters.iter().find(|c| c.name == spec.name && c.status != "INACTIVE").cloned();
    let mut providers = spec.capacity_providers.clone();
    providers.sort();
    let mut strategy = spec.default_strategy.clone();
    strategy.sort();

    let Some(mut cluster) = existing else {
        let mut cluster = Cluster {
            arn: UNKNOWN.into(),
            name: spec.name.clone(),
            status: "ACTIVE".into(),
            capacity_providers: providers,
            default_strategy: strategy,
            container_insights: spec.container_insights.clone().unwrap_or_else(|| "disabled".into()),
            stack: Some(stack.clone()),
        };
        if pass.mode.applies() {
            cluster.arn = create_cluster(pass, spec, &stack)?;
            let state = &mut snapshot.borrow_mut().ecs;
            state.clusters.retain(|c| c.name != cluster.name);
            state.clusters.push(cluster.clone());
            state.services.insert(cluster.name.clone(), Vec::new());
        }
        pass.log.record(Change::new(ChangeKind::Create, "cluster", &spec.name, cluster.arn.clone()));
        return Ok(cluster);
    };
    if cluster.stack.as_deref() != Some(stack.as_str()) {
        return Err(not_ours("cluster", &spec.name, cluster.stack.as_deref(), &stack));
    }

    let mut diffs = Vec::new();
    let capacity_changed = cluster.capacity_providers != providers || cluster.default_strategy != strategy;
    if cluster.capacity_providers != providers {
        diffs.push(FieldDiff::changed(
            "capacity_providers",
            show_list(&cluster.capacity_providers),
            show_list(&providers),
        ));
    }
    if cluster.default_strategy != strategy {
        diffs.push(FieldDiff::changed(
            "default_strategy",
            show_strategy(&cluster.default_strategy),
            show_strategy(&strategy),
        ));
    }
    let insights = spec.container_insights.as_ref().filter(|wanted| **wanted != cluster.container_insights);
    if let Some(wanted) = insights {
        diffs.push(FieldDiff::changed("container_insights", &cluster.container_insights, wanted));
    }
    if diffs.is_empty() {
        pass.log.record(Change::new(ChangeKind::Unchanged, "cluster", &spec.name, cluster.arn.clone()));
        return Ok(cluster);
    }
    if pass.mode.applies() {
        if capacity_changed {
            let items = strategy_to(&strategy)?;
            pass.apply(async |aws| {
                aws.ecs
                    .put_cluster_capacity_providers()
                    .cluster(&cluster.arn)
                    .set_capacity_providers(Some(providers.clone()))
                    .set_default_capacity_provider_strategy(Some(items))
                    .send()
                    .await
                    .map_err(|e| aws_error("PutClusterCapacityProviders", e))
            })?;
        }
        if let Some(wanted) = insights {
            let setting = ClusterSetting::builder().name(ClusterSettingName::ContainerInsights).value(wanted).build();
            pass.apply(async |aws| {
                aws.ecs
                    .update_cluster()
                    .cluster(&cluster.arn)
                    .settings(setting)
                    .send()
                    .await
                    .map_err(|e| aws_error("UpdateCluster", e))
            })?;
            cluster.container_insights = wanted.clone();
        }
        cluster.capacity_providers = providers;
        cluster.default_strategy = strategy;
        let state = &mut snapshot.borrow_mut().ecs;
        state.clusters.retain(|c| c.arn != cluster.arn);
        state.clusters.push(cluster.clone());
    }
    pass.log.record(Change::new(ChangeKind::Update, "cluster", &spec.name, cluster.arn.clone()).with_diffs(diffs));
    Ok(cluster)
}

fn show_list(items: &[String]) -> String {
    if items.is_empty() { "none".into() } else { items.join(", ") }
}

fn create_cluster(pass: &Pass, spec: &ClusterSpec, stack: &str) -> Result<String> {
    let items = strategy_to(&spec.default_strategy)?;
    let settings = spec
        .container_insights
        .as_ref()
        .map(|v| vec![ClusterSetting::builder().name(ClusterSettingName::ContainerInsights).value(v).build()]);
    let out = pass.apply(async |aws| {
        aws.ecs
            .create_cluster()
            .cluster_name(&spec.name)
            .set_capacity_providers(Some(spec.capacity_providers.clone()))
            .set_default_capacity_provider_strategy(Some(items))
            .set_settings(settings)
            .set_tags(Some(tags_for(stack, &spec.name)))
            .send()
            .await
            .map_err(|e| aws_error("CreateCluster", e))
    })?;
    Ok(out.cluster().and_then(|c| c.cluster_arn()).unwrap_or_default().to_string())
}

// ---------------------------------------------------------------------------------------------
// Task definitions

/// The memory sizes (MiB) Fargate accepts for `cpu` units, or `None` for an unknown cpu value.
pub fn fargate_memories(cpu: i32) -> Option<Vec<i32>> {
    let (from, to, step) = match cpu {
        256 => return Some(vec![512, 1024, 2048]),
        512 => (1024, 4096, 1024),
        1024 => (2048, 8192, 1024),
        2048 => (4096, 16384, 1024),
        4096 => (8192, 30720, 1024),
        8192 => (16384, 61440, 4096),
        16384 => (32768, 122880, 8192),
        _ => return None,
    };
    Some((from..=to).step_by(step as usize).collect())
}

/// Checks a Fargate cpu/memory pair against the combinations AWS documents.
pub fn validate_fargate_size(cpu: i32, memory: i32) -> Result<()> {
    let Some(memories) = fargate_memories(cpu) else {
        return Err(Error::invalid(
            "task_definition.cpu",
            cpu,
            "a Fargate CPU size: 256, 512, 1024, 2048, 4096, 8192 or 16384 (1024 = 1 vCPU)",
        ));
    };
    if memories.contains(&memory) {
        return Ok(());
    }
    let allowed = if memories.len() <= 4 {
        memories.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    } else {
        format!("{} to {} in steps of {}", memories[0], memories[memories.len() - 1], memories[1] - memories[0])
    };
    Err(Error::invalid(
        "task_definition.memory",
        memory,
        format!("with cpu {cpu}, Fargate allows memory {allowed} (MiB)"),
    ))
}

/// Checks what AWS would reject in a task definition: the Fargate size, unique container and
/// volume names, mounts of declared volumes, and at least one essential container.
pub fn validate_task_definition(spec: &TaskDefinitionSpec) -> Result<()> {
    validate_fargate_size(spec.cpu, spec.memory)?;
    let mut names = BTreeSet::new();
    for (i, c) in spec.containers.iter().enumerate() {
        if !names.insert(c.name.as_str()) {
            return Err(Error::invalid(
                format!("task_definition.containers[{i}].name"),
                format!("{:?}", c.name),
                "a name no other container of the task uses",
            ));
        }
    }
    let mut volumes = BTreeSet::new();
    for v in &spec.volumes {
        if !volumes.insert(v.name.as_str()) {
            return Err(Error::invalid("task_definition.volumes", format!("{:?}", v.name), "each volume name once"));
        }
    }
    for (i, c) in spec.containers.iter().enumerate() {
        for (j, m) in c.mounts.iter().enumerate() {
            if !volumes.contains(m.volume.as_str()) {
                let declared = if volumes.is_empty() {
                    "none are declared; add it to `volumes: [#{ name: ... }]`".to_string()
                } else {
                    format!("declared: {}", volumes.iter().copied().collect::<Vec<_>>().join(", "))
                };
                return Err(Error::invalid(
                    format!("task_definition.containers[{i}].mounts[{j}].volume"),
                    format!("{:?}", m.volume),
                    format!("container {} can only mount a volume of the task; {declared}", c.name),
                ));
            }
        }
    }
    if spec.containers.is_empty() {
        return Err(Error::MissingKey {
            key: "containers".into(),
            context: "task_definition()".into(),
            what: "at least one container #{ name, image }".into(),
        });
    }
    if !spec.containers.iter().any(|c| c.essential) {
        return Err(Error::invalid(
            "task_definition.containers",
            "no essential container",
            "at least one container with essential: true",
        ));
    }
    Ok(())
}

/// Converges a task definition: registers a new revision only when the family's latest ACTIVE
/// revision differs from the script in what the script controls.
pub fn ensure_task_definition(pass: &Pass, spec: &TaskDefinitionSpec) -> Result<TaskDefinition> {
    validate_task_definition(spec)?;
    let stack = pass.stack()?;
    let snapshot = pass.snapshot()?;
    let cached = snapshot.borrow().ecs.task_definitions.get(&spec.family).cloned();
    let latest = match cached {
        Some(latest) => latest,
        None => match pass.read(async |aws| latest_task_definition(aws, &spec.family).await) {
            Some(found) => {
                let found = found?;
                snapshot.borrow_mut().ecs.task_definitions.insert(spec.family.clone(), found.clone());
                found
            }
            None => None,
        },
    };
    let planned = TaskDefinition {
        arn: UNKNOWN.into(),
        family: spec.family.clone(),
        revision: None,
        network_mode: "awsvpc".into(),
        fargate: true,
        spec: spec.clone(),
        stack: Some(stack.clone()),
    };
    let (kind, diffs, previous) = match &latest {
        None => (ChangeKind::Create, Vec::new(), None),
        Some(current) => {
            if current.stack.as_deref() != Some(stack.as_str()) {
                return Err(not_ours("task definition family", &spec.family, current.stack.as_deref(), &stack));
            }
            let diffs = task_definition_diffs(current, spec);
            if diffs.is_empty() {
                pass.log.record(Change::new(ChangeKind::Unchanged, "task_definition", &spec.family, current.label()));
                return Ok(current.clone());
            }
            (ChangeKind::Update, diffs, Some(current.label()))
        }
    };
    let mut registered = planned;
    if pass.mode.applies() {
        registered = register_task_definition(pass, spec, &stack)?;
        snapshot.borrow_mut().ecs.task_definitions.insert(spec.family.clone(), Some(registered.clone()));
    }
    let summary = match previous {
        Some(previous) if registered.revision.is_some() => format!("{previous} -> {}", registered.label()),
        Some(previous) => format!("{previous} -> new revision"),
        None => registered.label(),
    };
    pass.log.record(Change::new(kind, "task_definition", &spec.family, summary).with_diffs(diffs));
    Ok(registered)
}

fn opt<T: fmt::Display>(value: &Option<T>) -> String {
    value.as_ref().map(ToString::to_string).unwrap_or_else(|| "none".into())
}

fn task_definition_diffs(current: &TaskDefinition, wanted: &TaskDefinitionSpec) -> Vec<FieldDiff> {
    let mut diffs = Vec::new();
    let have = &current.spec;
    if current.network_mode != "awsvpc" {
        diffs.push(FieldDiff::changed("network_mode", &current.network_mode, "awsvpc"));
    }
    if !current.fargate {
        diffs.push(FieldDiff::changed("requires_compatibilities", "not FARGATE", "FARGATE"));
    }
    if have.cpu != wanted.cpu {
        diffs.push(FieldDiff::changed("cpu", have.cpu, wanted.cpu));
    }
    if have.memory != wanted.memory {
        diffs.push(FieldDiff::changed("memory", have.memory, wanted.memory));
    }
    if have.execution_role != wanted.execution_role {
        diffs.push(FieldDiff::changed("execution_role", opt(&have.execution_role), opt(&wanted.execution_role)));
    }
    if have.task_role != wanted.task_role {
        diffs.push(FieldDiff::changed("task_role", opt(&have.task_role), opt(&wanted.task_role)));
    }
    for c in &wanted.containers {
        match have.containers.iter().find(|h| h.name == c.name) {
            None => diffs.push(FieldDiff::added("containers", format!("{} ({})", c.name, c.image))),
            Some(h) => diffs.extend(container_diffs(h, c)),
        }
    }
    for h in have.containers.iter().filter(|h| !wanted.containers.iter().any(|c| c.name == h.name)) {
        diffs.push(FieldDiff::removed("containers", format!("{} ({})", h.name, h.image)));
    }
    let order = |specs: &[ContainerSpec]| specs.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
    let same_set = wanted.containers.len() == have.containers.len()
        && wanted.containers.iter().all(|c| have.containers.iter().any(|h| h.name == c.name));
    if same_set && order(&have.containers) != order(&wanted.containers) {
        diffs.push(FieldDiff::changed(
            "containers (order)",
            order(&have.containers).join(", "),
            order(&wanted.containers).join(", "),
        ));
    }
    for v in &wanted.volumes {
        let field = format!("volumes[{}]", v.name);
        match have.volumes.iter().find(|h| h.name == v.name) {
            None => diffs.push(FieldDiff::added("volumes", format!("{} ({})", v.name, v.describe()))),
            Some(h) if h.efs != v.efs => diffs.push(FieldDiff::changed(&field, h.describe(), v.describe())),
            Some(_) => {}
        }
    }
    for h in have.volumes.iter().filter(|h| !wanted.volumes.iter().any(|v| v.name == h.name)) {
        diffs.push(FieldDiff::removed("volumes", format!("{} ({})", h.name, h.describe())));
    }
    diffs
}

fn container_diffs(have: &ContainerSpec, want: &ContainerSpec) -> Vec<FieldDiff> {
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
            None => diffs.push(FieldDiff::added(&field("env"), format!("{key}={value}"))),
            Some(old) if old != value => diffs.push(FieldDiff::changed(&field(&format!("env.{key}")), old, value)),
            Some(_) => {}
        }
    }
    for (key, value) in have.env.iter().filter(|(k, _)| !want.env.contains_key(*k)) {
        diffs.push(FieldDiff::removed(&field("env"), format!("{key}={value}")));
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

fn show_ports(ports: &[i32]) -> String {
    if ports.is_empty() { "none".into() } else { ports.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ") }
}

/// The latest ACTIVE revision of `family`, or `None` when it has none.
pub async fn latest_task_definition(aws: &Aws, family: &str) -> Result<Option<TaskDefinition>> {
    match describe_task_definition(aws, family).await {
        Ok(Some(found)) if found.0 == "ACTIVE" => Ok(Some(found.1)),
        Ok(_) => Ok(None),
        // ECS answers ClientException "Unable to describe task definition." for a family without
        // an ACTIVE revision.
        Err(err) if err.aws_code() == Some("ClientException") => Ok(None),
        Err(err) => Err(err),
    }
}

/// A task definition by ARN, `family:revision` or family, with its status.
pub async fn describe_task_definition(aws: &Aws, name: &str) -> Result<Option<(String, TaskDefinition)>> {
    let out = aws
        .ecs
        .describe_task_definition()
        .task_definition(name)
        .include(TaskDefinitionField::Tags)
        .send()
        .await
        .map_err(|e| aws_error("DescribeTaskDefinition", e))?;
    let stack = tag_value(out.tags(), STACK_TAG);
    Ok(out.task_definition().map(|t| {
        let status = t.status().map(|s| s.as_str().to_string()).unwrap_or_else(|| "ACTIVE".into());
        (status, task_definition_from(t, stack))
    }))
}

fn task_definition_from(t: &aws_sdk_ecs::types::TaskDefinition, stack: Option<String>) -> TaskDefinition {
    let mut volumes: Vec<VolumeSpec> = t
        .volumes()
        .iter()
        .map(|v| VolumeSpec {
            name: v.name().unwrap_or_default().to_string(),
            efs: v.efs_volume_configuration().map(|e| Efs {
                file_system_id: e.file_system_id().to_string(),
                root_directory: e.root_directory().unwrap_or("/").to_string(),
                transit_encryption: e.transit_encryption() == Some(&EfsTransitEncryption::Enabled),
            }),
        })
        .collect();
    volumes.sort_by(|a, b| a.name.cmp(&b.name));
    let family = t.family().unwrap_or_default().to_string();
    TaskDefinition {
        arn: t.task_definition_arn().unwrap_or_default().to_string(),
        family: family.clone(),
        revision: Some(t.revision()),
        network_mode: t.network_mode().map(|m| m.as_str().to_string()).unwrap_or_else(|| "bridge".into()),
        fargate: t.requires_compatibilities().contains(&Compatibility::Fargate),
        spec: TaskDefinitionSpec {
            family,
            cpu: t.cpu().and_then(|c| c.parse().ok()).unwrap_or(0),
            memory: t.memory().and_then(|m| m.parse().ok()).unwrap_or(0),
            execution_role: t.execution_role_arn().map(str::to_string),
            task_role: t.task_role_arn().map(str::to_string),
            containers: t.container_definitions().iter().map(container_from).collect(),
            volumes,
        },
        stack,
    }
}

fn container_from(c: &ContainerDefinition) -> ContainerSpec {
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
    ContainerSpec {
        name: c.name().unwrap_or_default().to_string(),
        image: c.image().unwrap_or_default().to_string(),
        ports: c.port_mappings().iter().filter_map(|p| p.container_port()).collect(),
        env: c
            .environment()
            .iter()
            .map(|kv| (kv.name().unwrap_or_default().to_string(), kv.value().unwrap_or_default().to_string()))
            .collect(),
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
    }
}

fn container_definition(c: &ContainerSpec) -> Result<ContainerDefinition> {
    let mut def = ContainerDefinition::builder().name(&c.name).image(&c.image).essential(c.essential);
    for port in &c.ports {
        def = def.port_mappings(
            PortMapping::builder().container_port(*port).host_port(*port).protocol(TransportProtocol::Tcp).build(),
        );
    }
    for (name, value) in &c.env {
        def = def.environment(KeyValuePair::builder().name(name).value(value).build());
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

fn volume(v: &VolumeSpec) -> Result<Volume> {
    let mut volume = Volume::builder().name(&v.name);
    if let Some(efs) = &v.efs {
        let encryption =
            if efs.transit_encryption { EfsTransitEncryption::Enabled } else { EfsTransitEncryption::Disabled };
        let config = EfsVolumeConfiguration::builder()
            .file_system_id(&efs.file_system_id)
            .root_directory(&efs.root_directory)
            .transit_encryption(encryption)
            .build();
        volume = volume.efs_volume_configuration(built("an EFS volume", config)?);
    }
    Ok(volume.build())
}

fn register_task_definition(pass: &Pass, spec: &TaskDefinitionSpec, stack: &str) -> Result<TaskDefinition> {
    let containers = spec.containers.iter().map(container_definition).collect::<Result<Vec<_>>>()?;
    let volumes = spec.volumes.iter().map(volume).collect::<Result<Vec<_>>>()?;
    let out = pass.apply(async |aws| {
        aws.ecs
            .register_task_definition()
            .family(&spec.family)
            .network_mode(NetworkMode::Awsvpc)
            .requires_compatibilities(Compatibility::Fargate)
            .cpu(spec.cpu.to_string())
            .memory(spec.memory.to_string())
            .set_execution_role_arn(spec.execution_role.clone())
            .set_task_role_arn(spec.task_role.clone())
            .set_container_definitions(Some(containers))
            .set_volumes(Some(volumes))
            .set_tags(Some(tags_for(stack, &spec.family)))
            .send()
            .await
            .map_err(|e| aws_error("RegisterTaskDefinition", e))
    })?;
    let registered = out.task_definition().ok_or_else(|| {
        Error::conflict(format!("RegisterTaskDefinition returned no task definition for {}", spec.family), None)
    })?;
    let mut found = task_definition_from(registered, Some(stack.to_string()));
    // What we registered is what we asked for; keep the spec as the script stated it.
    found.spec = spec.clone();
    Ok(found)
}

/// A task's containers by name with their ports.
pub type ContainerPorts = Vec<(String, Vec<i32>)>;

/// The containers (name, ports) of a task definition named by ARN (read once per run); `None` in
/// check mode.
pub fn task_definition_containers(pass: &Pass, arn: &str) -> Result<Option<ContainerPorts>> {
    let snapshot = pass.snapshot()?;
    if let Some(containers) = snapshot.borrow().ecs.task_containers.get(arn) {
        return Ok(Some(containers.clone()));
    }
    let Some(found) = pass.read(async |aws| describe_task_definition(aws, arn).await) else {
        return Ok(None);
    };
    let (_, task) = found?.ok_or_else(|| Error::conflict(format!("task definition {arn} not found"), None))?;
    let containers: ContainerPorts = task.spec.containers.into_iter().map(|c| (c.name, c.ports)).collect();
    snapshot.borrow_mut().ecs.task_containers.insert(arn.to_string(), containers.clone());
    Ok(Some(containers))
}

/// The target type of a target group named by ARN (`ip`, `instance`, ...), read once per run;
/// `None` in check mode.
pub fn target_group_type(pass: &Pass, arn: &str) -> Result<Option<String>> {
    let snapshot = pass.snapshot()?;
    if let Some(target_type) = snapshot.borrow().ecs.target_group_types.get(arn) {
        return Ok(target_type.clone());
    }
    let Some(found) = pass.read(async |aws| {
        aws.elbv2
            .describe_target_groups()
            .target_group_arns(arn)
            .send()
            .await
            .map_err(|e| aws_error("DescribeTargetGroups", e))
    }) else {
        return Ok(None);
    };
    let out = found?;
    let group =
        out.target_groups().first().ok_or_else(|| Error::conflict(format!("target group {arn} not found"), None))?;
    let target_type = group.target_type().map(|t| t.as_str().to_string());
    snapshot.borrow_mut().ecs.target_group_types.insert(arn.to_string(), target_type.clone());
    Ok(target_type)
}

// ---------------------------------------------------------------------------------------------
// Services

/// The services of a cluster from the snapshot, read (once) when the snapshot has none yet.
fn services_of(pass: &Pass, cluster: &ClusterRef) -> Result<Vec<Service>> {
    let snapshot = pass.snapshot()?;
    if let Some(services) = snapshot.borrow().ecs.services.get(&cluster.name) {
        return Ok(services.clone());
    }
    if !is_known(&cluster.arn) {
        return Ok(Vec::new());
    }
    let Some(found) = pass.read(async |aws| cluster_services(aws, &cluster.arn).await) else {
        return Ok(Vec::new());
    };
    let found = found?;
    snapshot.borrow_mut().ecs.services.insert(cluster.name.clone(), found.clone());
    Ok(found)
}

fn remember_service(pass: &Pass, cluster: &str, service: &Service) -> Result<()> {
    let snapshot = pass.snapshot()?;
    let state = &mut snapshot.borrow_mut().ecs;
    let services = state.services.entry(cluster.to_string()).or_default();
    services.retain(|s| s.name != service.name);
    services.push(service.clone());
    Ok(())
}

/// Checks what AWS would reject in a service: counts and percentages in range, subnets given,
/// a grace period only with a load balancer.
pub fn validate_service(spec: &ServiceSpec) -> Result<()> {
    if let Some(desired) = spec.desired
        && desired < 0
    {
        return Err(Error::invalid("service.desired", desired, "a task count of 0 or more"));
    }
    if spec.subnets.is_empty() {
        return Err(Error::MissingKey {
            key: "subnets".into(),
            context: "service()".into(),
            what: "the subnets tasks run in (awsvpc needs at least one)".into(),
        });
    }
    if spec.subnets.len() > 16 {
        return Err(Error::invalid("service.subnets", spec.subnets.len(), "at most 16 subnets"));
    }
    if spec.security_groups.len() > 5 {
        return Err(Error::invalid("service.security_groups", spec.security_groups.len(), "at most 5 security groups"));
    }
    if !FARGATE_PROVIDERS.contains(&spec.capacity_provider.as_str()) {
        return Err(Error::invalid(
            "service.capacity_provider",
            format!("{:?}", spec.capacity_provider),
            "\"FARGATE\" or \"FARGATE_SPOT\"",
        ));
    }
    if let Some(grace) = spec.health_check_grace {
        if spec.load_balancer.is_none() {
            return Err(Error::invalid(
                "service.health_check_grace",
                grace,
                "a grace period only together with target_group (it delays load balancer health checks)",
            ));
        }
        if !(0..=2_147_483_647).contains(&grace) {
            return Err(Error::invalid("service.health_check_grace", grace, "0 or more seconds"));
        }
    }
    let d = &spec.deployment;
    if !(0..=100).contains(&d.min_healthy_percent) {
        return Err(Error::invalid("service.min_healthy_percent", d.min_healthy_percent, "a percentage from 0 to 100"));
    }
    if d.max_percent < 100 || d.max_percent > 200 {
        return Err(Error::invalid("service.max_percent", d.max_percent, "a percentage from 100 to 200"));
    }
    Ok(())
}

fn wanted_strategy(spec: &ServiceSpec) -> Vec<StrategyItem> {
    vec![StrategyItem { provider: spec.capacity_provider.clone(), weight: 1, base: 0 }]
}

/// Converges a service: created on a capacity-provider strategy in awsvpc mode, updated in place
/// (UpdateService) when anything the script controls differs.
pub fn ensure_service(pass: &Pass, spec: &ServiceSpec) -> Result<Service> {
    validate_service(spec)?;
    let stack = pass.stack()?;
    let existing = services_of(pass, &spec.cluster)?.into_iter().find(|s| s.name == spec.name && s.status == "ACTIVE");
    let strategy = wanted_strategy(spec);
    let summary = |s: &Service| format!("{}, {} desired", s.arn, s.desired);

    let Some(mut service) = existing else {
        let mut service = Service {
            arn: UNKNOWN.into(),
            name: spec.name.clone(),
            cluster_arn: spec.cluster.arn.clone(),
            status: "ACTIVE".into(),
            task_definition: spec.task_definition.clone(),
            desired: spec.desired.unwrap_or(1),
            strategy,
            subnets: spec.subnets.clone(),
            security_groups: spec.security_groups.clone(),
            public_ip: spec.public_ip,
            load_balancers: spec.load_balancer.clone().into_iter().collect(),
            health_check_grace: spec.health_check_grace,
            deployment: Some(spec.deployment.clone()),
            stack: Some(stack.clone()),
        };
        if pass.mode.applies() {
            let created = create_service(pass, spec, &service, &stack)?;
            service.arn = created.arn;
            service.cluster_arn = created.cluster_arn;
            remember_service(pass, &spec.cluster.name, &service)?;
        }
        pass.log.record(Change::new(ChangeKind::Create, "service", &spec.name, summary(&service)));
        return Ok(service);
    };
    if service.stack.as_deref() != Some(stack.as_str()) {
        return Err(not_ours("service", &spec.name, service.stack.as_deref(), &stack));
    }

    let update = service_update(&service, spec);
    if update.diffs.is_empty() {
        pass.log.record(Change::new(ChangeKind::Unchanged, "service", &spec.name, summary(&service)));
        return Ok(service);
    }
    if pass.mode.applies() {
        update_service(pass, &service, spec, &update)?;
        service.task_definition = spec.task_definition.clone();
        service.desired = spec.desired.unwrap_or(service.desired);
        if update.strategy {
            service.strategy = strategy;
        }
        service.subnets = spec.subnets.clone();
        service.security_groups = spec.security_groups.clone();
        service.public_ip = spec.public_ip;
        service.load_balancers = spec.load_balancer.clone().into_iter().collect();
        if update.grace {
            service.health_check_grace = spec.health_check_grace;
        }
        if update.deployment {
            service.deployment = Some(spec.deployment.clone());
        }
        remember_service(pass, &spec.cluster.name, &service)?;
    } else if let Some(desired) = spec.desired {
        service.desired = desired;
    }
    pass.log.record(Change::new(ChangeKind::Update, "service", &spec.name, summary(&service)).with_diffs(update.diffs));
    Ok(service)
}

/// Which parts of a service an update must send, and the diffs to show.
struct ServiceUpdate {
    diffs: Vec<FieldDiff>,
    task_definition: bool,
    desired: bool,
    network: bool,
    strategy: bool,
    load_balancers: bool,
    grace: bool,
    deployment: bool,
}

fn service_update(current: &Service, spec: &ServiceSpec) -> ServiceUpdate {
    let mut diffs = Vec::new();
    let task_definition = current.task_definition != spec.task_definition;
    if task_definition {
        diffs.push(FieldDiff::changed(
            "task_definition",
            short_task(&current.task_definition),
            short_task(&spec.task_definition),
        ));
    }
    let desired = spec.desired.is_some_and(|d| d != current.desired);
    if let Some(d) = spec.desired.filter(|_| desired) {
        diffs.push(FieldDiff::changed("desired", current.desired, d));
    }
    let mut network = false;
    if current.subnets != spec.subnets {
        network = true;
        diffs.push(FieldDiff::changed("subnets", show_list(&current.subnets), show_list(&spec.subnets)));
    }
    // Without security groups in the script, AWS puts tasks in the VPC's default group and may
    // report it; there is nothing to converge towards then.
    if !spec.security_groups.is_empty() && current.security_groups != spec.security_groups {
        network = true;
        diffs.push(FieldDiff::changed(
            "security_groups",
            show_list(&current.security_groups),
            show_list(&spec.security_groups),
        ));
    }
    if current.public_ip != spec.public_ip {
        network = true;
        diffs.push(FieldDiff::changed("public_ip", current.public_ip, spec.public_ip));
    }
    // The strategy is compared only when AWS reports one. AWS echoes the strategy a service was
    // created with, and deckhand always creates services with one, so on real AWS this converges
    // exactly. An empty strategy means the service runs on a launch type (created outside
    // deckhand) or the emulator dropped it (moto ignores capacityProviderStrategy in
    // CreateService but keeps it from UpdateService). A launch type of FARGATE runs tasks exactly
    // like the FARGATE provider, so only FARGATE_SPOT, which no launch type can express, counts
    // as drift then; this keeps the emulator's second run `=` without claiming a change that AWS
    // would not make, and real services created by deckhand are compared in full.
    let wanted = wanted_strategy(spec);
    let strategy =
        if current.strategy.is_empty() { spec.capacity_provider != "FARGATE" } else { current.strategy != wanted };
    if strategy {
        let before =
            if current.strategy.is_empty() { "launch type".to_string() } else { show_strategy(&current.strategy) };
        diffs.push(FieldDiff::changed("capacity_provider", before, show_strategy(&wanted)));
    }
    let wanted_lbs: Vec<LoadBalancerSpec> = spec.load_balancer.clone().into_iter().collect();
    let load_balancers = current.load_balancers != wanted_lbs;
    if load_balancers {
        let show = |lbs: &[LoadBalancerSpec]| {
            if lbs.is_empty() {
                "none".into()
            } else {
                lbs.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            }
        };
        diffs.push(FieldDiff::changed("target_group", show(&current.load_balancers), show(&wanted_lbs)));
    }
    // Without a load balancer AWS keeps no grace period; with one, an unset grace period is 0.
    let grace =
        spec.load_balancer.is_some() && current.health_check_grace.unwrap_or(0) != spec.health_check_grace.unwrap_or(0);
    if grace {
        diffs.push(FieldDiff::changed(
            "health_check_grace",
            current.health_check_grace.unwrap_or(0),
            spec.health_check_grace.unwrap_or(0),
        ));
    }
    // Like the strategy: AWS always reports a deployment configuration, so it is compared
    // whenever one is reported; the emulator reports none for services it created.
    let deployment = current.deployment.as_ref().is_some_and(|d| *d != spec.deployment);
    if let Some(d) = current.deployment.as_ref().filter(|_| deployment) {
        diffs.push(FieldDiff::changed("deployment", d, &spec.deployment));
    }
    ServiceUpdate { diffs, task_definition, desired, network, strategy, load_balancers, grace, deployment }
}

/// `family:revision` from a task definition ARN, for diffs and reports.
pub(crate) fn short_task(arn: &str) -> String {
    arn.rsplit('/').next().unwrap_or(arn).to_string()
}

fn network_configuration(spec: &ServiceSpec) -> Result<NetworkConfiguration> {
    let vpc = AwsVpcConfiguration::builder()
        .set_subnets(Some(spec.subnets.clone()))
        .set_security_groups(Some(spec.security_groups.clone()))
        .assign_public_ip(if spec.public_ip { AssignPublicIp::Enabled } else { AssignPublicIp::Disabled })
        .build();
    Ok(NetworkConfiguration::builder().awsvpc_configuration(built("a network configuration", vpc)?).build())
}

fn deployment_configuration(d: &Deployment) -> DeploymentConfiguration {
    DeploymentConfiguration::builder()
        .deployment_circuit_breaker(
            DeploymentCircuitBreaker::builder().enable(d.circuit_breaker).rollback(d.circuit_breaker).build(),
        )
        .minimum_healthy_percent(d.min_healthy_percent)
        .maximum_percent(d.max_percent)
        .build()
}

fn load_balancers(spec: &ServiceSpec) -> Vec<LoadBalancer> {
    spec.load_balancer
        .iter()
        .map(|lb| {
            LoadBalancer::builder()
                .target_group_arn(&lb.target_group_arn)
                .container_name(&lb.container)
                .container_port(lb.port)
                .build()
        })
        .collect()
}

fn create_service(pass: &Pass, spec: &ServiceSpec, wanted: &Service, stack: &str) -> Result<Service> {
    let network = network_configuration(spec)?;
    let strategy = strategy_to(&wanted.strategy)?;
    let created = pass.apply(async |aws| {
        aws.ecs
            .create_service()
            .cluster(&spec.cluster.arn)
            .service_name(&spec.name)
            .task_definition(&spec.task_definition)
            .desired_count(wanted.desired)
            .set_capacity_provider_strategy(Some(strategy))
            .network_configuration(network)
            .set_load_balancers(Some(load_balancers(spec)))
            .set_health_check_grace_period_seconds(spec.health_check_grace)
            .deployment_configuration(deployment_configuration(&spec.deployment))
            .set_tags(Some(tags_for(stack, &spec.name)))
            .send()
            .await
            .map_err(|e| aws_error("CreateService", e))
    });
    match created {
        Ok(out) => Ok(out.service().map(service_from).unwrap_or_else(|| wanted.clone())),
        Err(err) => {
            // "Creation of service was not idempotent": created meanwhile; adopt it only if ours.
            if err.aws_code() != Some("InvalidParameterException") {
                return Err(err);
            }
            let found =
                pass.apply(async |aws| describe_services(aws, &spec.cluster.arn, vec![spec.name.clone()]).await)?;
            match found.into_iter().find(|s| s.status == "ACTIVE") {
                Some(s) if s.stack.as_deref() == Some(stack) => Ok(s),
                Some(s) => Err(not_ours("service", &spec.name, s.stack.as_deref(), stack)),
                None => Err(err),
            }
        }
    }
}

fn update_service(pass: &Pass, current: &Service, spec: &ServiceSpec, update: &ServiceUpdate) -> Result<()> {
    let network = if update.network { Some(network_configuration(spec)?) } else { None };
    let strategy = if update.strategy { Some(strategy_to(&wanted_strategy(spec))?) } else { None };
    pass.apply(async |aws| {
        let mut request = aws.ecs.update_service().cluster(&current.cluster_arn).service(&current.name);
        if update.task_definition {
            request = request.task_definition(&spec.task_definition);
        }
        if update.desired {
            request = request.set_desired_count(spec.desired);
        }
        if let Some(network) = network {
            request = request.network_configuration(network);
        }
        if let Some(strategy) = strategy {
            // Moving to another capacity provider only takes effect with a new deployment.
            request = request.set_capacity_provider_strategy(Some(strategy)).force_new_deployment(true);
        }
        if update.load_balancers {
            request = request.set_load_balancers(Some(load_balancers(spec)));
        }
        if update.grace {
            request = request.health_check_grace_period_seconds(spec.health_check_grace.unwrap_or(0));
        }
        if update.deployment {
            request = request.deployment_configuration(deployment_configuration(&spec.deployment));
        }
        request.send().await.map_err(|e| aws_error("UpdateService", e))
    })?;
    Ok(())
}

// Deletion (deckhand destroy)

/// The services of a cluster, with their tags (one ListServices per page, one DescribeServices per
/// 10 services).
pub async fn services_in_cluster(aws: &Aws, cluster_arn: &str) -> Result<Vec<Service>> {
    cluster_services(aws, cluster_arn).await
}

/// The region's task definition families that have an ACTIVE revision.
pub async fn active_families(aws: &Aws) -> Result<Vec<String>> {
    let mut pages = aws
        .ecs
        .list_task_definition_families()
        .status(aws_sdk_ecs::types::TaskDefinitionFamilyStatus::Active)
        .into_paginator()
        .items()
        .send();
    let mut families = Vec::new();
    while let Some(family) = pages.next().await {
        families.push(family.map_err(|e| aws_error("ListTaskDefinitionFamilies", e))?);
    }
    Ok(families)
}

/// The ACTIVE revisions of `family`, as `family:revision`.
pub async fn active_revisions(aws: &Aws, family: &str) -> Result<Vec<String>> {
    let mut pages = aws
        .ecs
        .list_task_definitions()
        .family_prefix(family)
        .status(aws_sdk_ecs::types::TaskDefinitionStatus::Active)
        .into_paginator()
        .items()
        .send();
    let mut revisions = Vec::new();
    while let Some(arn) = pages.next().await {
        let arn = arn.map_err(|e| aws_error("ListTaskDefinitions", e))?;
        // `familyPrefix` names the whole family, but keep only exact matches to be sure.
        let revision = arn.rsplit_once("task-definition/").map_or(arn.as_str(), |(_, r)| r);
        if revision.rsplit_once(':').is_some_and(|(f, _)| f == family) {
            revisions.push(revision.to_string());
        }
    }
    Ok(revisions)
}

/// Scales a service to no tasks and deletes it; ECS then drains it (see [`wait_service_inactive`]).
pub async fn delete_service(aws: &Aws, cluster_arn: &str, service_arn: &str) -> Result<()> {
    aws.ecs
        .update_service()
        .cluster(cluster_arn)
        .service(service_arn)
        .desired_count(0)
        .send()
        .await
        .map_err(|e| aws_error("UpdateService", e))?;
    aws.ecs
        .delete_service()
        .cluster(cluster_arn)
        .service(service_arn)
        .send()
        .await
        .map(drop)
        .map_err(|e| aws_error("DeleteService", e))
}

/// Waits (SDK waiter) until a deleted service is INACTIVE, its tasks stopped; at most 20 minutes.
pub async fn wait_service_inactive(aws: &Aws, cluster_arn: &str, service_arn: &str) -> Result<()> {
    use aws_sdk_ecs::client::Waiters;
    use aws_smithy_runtime_api::client::waiters::error::WaiterError;
    let waited = aws
        .ecs
        .wait_until_services_inactive()
        .cluster(cluster_arn)
        .services(service_arn)
        .wait(std::time::Duration::from_secs(1200))
        .await;
    match waited {
        // The waiter's failure state is "MISSING": the service is gone altogether.
        Ok(_) | Err(WaiterError::FailureState(_)) => Ok(()),
        Err(err) => Err(Error::conflict(
            format!(
                "service {service_arn} did not become INACTIVE: {}",
                aws_smithy_types::error::display::DisplayErrorContext(&err)
            ),
            None,
        )),
    }
}

/// Deregisters one task definition revision (`family:revision`).
pub async fn deregister_task_definition(aws: &Aws, revision: &str) -> Result<()> {
    aws.ecs
        .deregister_task_definition()
        .task_definition(revision)
        .send()
        .await
        .map(drop)
        .map_err(|e| aws_error("DeregisterTaskDefinition", e))
}

/// Deletes a cluster (ECS refuses while it holds services or tasks).
pub async fn delete_cluster(aws: &Aws, cluster_arn: &str) -> Result<()> {
    aws.ecs.delete_cluster().cluster(cluster_arn).send().await.map(drop).map_err(|e| aws_error("DeleteCluster", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fargate_sizes_follow_the_documented_table() {
        assert_eq!(fargate_memories(256), Some(vec![512, 1024, 2048]));
        assert_eq!(fargate_memories(512).unwrap(), [1024, 2048, 3072, 4096]);
        assert_eq!(fargate_memories(4096).unwrap().last(), Some(&30720));
        assert_eq!(fargate_memories(8192).unwrap()[..2], [16384, 20480]);
        assert_eq!(fargate_memories(16384).unwrap().last(), Some(&122880));
        assert!(fargate_memories(300).is_none());
        assert!(validate_fargate_size(1024, 2048).is_ok());
        let err = validate_fargate_size(256, 4096).unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid task_definition.memory 4096: with cpu 256, Fargate allows memory 512, 1024, 2048 (MiB)"
        );
        let err = validate_fargate_size(2048, 2048).unwrap_err().to_string();
        assert!(err.contains("4096 to 16384 in steps of 1024"), "{err}");
    }

    fn service_pair() -> (Service, ServiceSpec) {
        let deployment = Deployment { circuit_breaker: true, min_healthy_percent: 100, max_percent: 200 };
        let spec = ServiceSpec {
            name: "web".into(),
            cluster: ClusterRef { name: "c".into(), arn: "arn:c".into() },
            task_definition: "arn:td/web:1".into(),
            desired: None,
            capacity_provider: "FARGATE".into(),
            subnets: vec!["subnet-1".into()],
            security_groups: vec!["sg-1".into()],
            public_ip: false,
            load_balancer: None,
            health_check_grace: None,
            deployment: deployment.clone(),
        };
        let service = Service {
            arn: "arn:s".into(),
            name: "web".into(),
            cluster_arn: "arn:c".into(),
            status: "ACTIVE".into(),
            task_definition: "arn:td/web:1".into(),
            desired: 3,
            strategy: wanted_strategy(&spec),
            subnets: spec.subnets.clone(),
            security_groups: spec.security_groups.clone(),
            public_ip: false,
            load_balancers: vec![],
            health_check_grace: None,
            deployment: Some(deployment),
            stack: Some("s".into()),
        };
        (service, spec)
    }

    #[test]
    fn a_service_as_asked_needs_no_update_and_keeps_its_count() {
        let (service, spec) = service_pair();
        assert!(service_update(&service, &spec).diffs.is_empty());
    }

    #[test]
    fn an_unreported_strategy_or_deployment_is_not_drift_unless_it_cannot_be_the_same() {
        let (mut service, mut spec) = service_pair();
        service.strategy.clear();
        service.deployment = None;
        assert!(service_update(&service, &spec).diffs.is_empty());
        spec.capacity_provider = "FARGATE_SPOT".into();
        let update = service_update(&service, &spec);
        assert!(update.strategy);
        assert_eq!(update.diffs[0].to_string(), "capacity_provider: launch type -> FARGATE_SPOT weight 1");
        service.strategy = wanted_strategy(&service_pair().1);
        assert!(service_update(&service, &spec).strategy, "a reported strategy is compared in full");
    }

    #[test]
    fn service_drift_lists_each_field() {
        let (service, mut spec) = service_pair();
        spec.task_definition = "arn:td/web:2".into();
        spec.desired = Some(2);
        spec.public_ip = true;
        spec.deployment.circuit_breaker = false;
        let text: Vec<String> = service_update(&service, &spec).diffs.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "task_definition: web:1 -> web:2",
                "desired: 3 -> 2",
                "public_ip: false -> true",
                "deployment: circuit breaker on (rollback), 100-200% -> circuit breaker off, 100-200%",
            ]
        );
    }

    #[test]
    fn strategies_are_checked_like_aws_does() {
        let providers: Vec<String> = FARGATE_PROVIDERS.iter().map(|p| p.to_string()).collect();
        let item = |p: &str, weight, base| StrategyItem { provider: p.into(), weight, base };
        assert!(validate_strategy("s", &[item("FARGATE", 1, 1), item("FARGATE_SPOT", 4, 0)], &providers).is_ok());
        assert!(validate_strategy("s", &[item("EC2", 1, 0)], &providers).is_err());
        assert!(validate_strategy("s", &[item("FARGATE", 1, 1), item("FARGATE_SPOT", 1, 1)], &providers).is_err());
        assert!(validate_strategy("s", &[item("FARGATE", 0, 0)], &providers).is_err());
    }
}
