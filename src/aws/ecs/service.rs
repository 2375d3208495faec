//! ECS services on Fargate: awsvpc networking, a capacity provider strategy, a target group,
//! deployment settings; all changed in place with UpdateService.

use std::fmt;

use aws_sdk_ecs::types::{AssignPublicIp, AwsVpcConfiguration, LoadBalancer, NetworkConfiguration};

use super::deploy::{AdvancedLb, Deployment, advanced_configuration, deployment_configuration, validate_deployment};
use super::service_reads::{describe_services, service_from};
use super::{FARGATE_PROVIDERS, StrategyItem, built, opt, show_list, show_strategy, strategy_to, tags_for};
use crate::aws::Pass;
use crate::aws::Snapshot;
use crate::converge::{Created, Drift, Resource};
use crate::error::{Error, Result, aws_error};
use crate::plan::{FieldDiff, UNKNOWN, is_known};
use crate::runtime::Aws;
use crate::tagged::Keepable;

/// The load balancer mapping of a service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LoadBalancerSpec {
    /// Target group ARN (or [`UNKNOWN`]).
    pub target_group_arn: String,
    /// Container that receives traffic.
    pub container: String,
    /// Its port.
    pub port: i32,
    /// The second target group, rules and role ECS shifts traffic with (every strategy but
    /// rolling).
    pub advanced: Option<AdvancedLb>,
}

impl fmt::Display for LoadBalancerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}:{}", self.target_group_arn, self.container, self.port)?;
        match &self.advanced {
            Some(advanced) => write!(f, " ({advanced})"),
            None => Ok(()),
        }
    }
}

impl LoadBalancerSpec {
    /// This mapping with its two target groups the way round `live` has them: ECS swaps the
    /// primary and alternate groups at every blue/green, canary or linear deployment (ECS
    /// developer guide, "Amazon ECS blue/green deployments": the green revision's group becomes
    /// production), so either order is the script's, and a re-run must not swap them back.
    pub fn oriented_to(&self, live: &[LoadBalancerSpec]) -> LoadBalancerSpec {
        let Some(advanced) = &self.advanced else { return self.clone() };
        let swapped = live.iter().any(|l| {
            l.target_group_arn == advanced.alternate_target_group_arn
                && l.advanced.as_ref().is_some_and(|a| a.alternate_target_group_arn == self.target_group_arn)
        });
        if !swapped {
            return self.clone();
        }
        LoadBalancerSpec {
            target_group_arn: advanced.alternate_target_group_arn.clone(),
            advanced: Some(AdvancedLb {
                alternate_target_group_arn: self.target_group_arn.clone(),
                ..advanced.clone()
            }),
            ..self.clone()
        }
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
    /// The capacity provider strategy (sorted): `FARGATE` and/or `FARGATE_SPOT` with weights and
    /// a base.
    pub capacity: Vec<StrategyItem>,
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
    /// ECS Exec (enableExecuteCommand): only tasks started after it is on can be reached.
    pub exec: bool,
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
    /// Its cluster's name (the key of [`super::EcsState::services`]).
    pub cluster: String,
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
    /// Whether ECS Exec is on (enableExecuteCommand).
    pub exec: bool,
    /// Its `deckhand:stack` tag.
    pub stack: Option<String>,
    /// Whether Application Auto Scaling manages its desired count (a scalable target exists for
    /// it), so deckhand leaves the count to the scaler.
    pub autoscaled: bool,
}

/// The services of a cluster, with their tags (one ListServices per page, one DescribeServices per
/// 10 services).
pub(super) async fn cluster_services(aws: &Aws, cluster_arn: &str) -> Result<Vec<Service>> {
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

/// The service of this name in `cluster` from the snapshot (looked up by name up front, or among
/// the cluster's services), else every service of the cluster, read (once) on demand.
fn service_named(pass: &Pass, cluster: &ClusterRef, name: &str) -> Result<Option<Service>> {
    let snapshot = pass.snapshot()?;
    let key = (cluster.name.clone(), name.to_string());
    if let Some(found) = snapshot.borrow().ecs.services_named.get(&key) {
        return Ok(found.clone());
    }
    let services = services_of(pass, cluster)?;
    Ok(services.into_iter().find(|s| s.name == name && s.status == "ACTIVE"))
}

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
    validate_capacity(&spec.capacity)?;
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
    validate_deployment(d)?;
    if d.strategy.shifts_traffic() && spec.load_balancer.as_ref().is_none_or(|lb| lb.advanced.is_none()) {
        return Err(Error::invalid(
            "service.deploy.strategy",
            format!("{:?}", d.strategy.name()),
            "\"rolling\" without a target_group (blue_green, canary and linear shift the load balancer's traffic)",
        ));
    }
    if !(0..=100).contains(&d.min_healthy_percent) {
        return Err(Error::invalid("service.min_healthy_percent", d.min_healthy_percent, "a percentage from 0 to 100"));
    }
    if d.max_percent < 100 || d.max_percent > 200 {
        return Err(Error::invalid("service.max_percent", d.max_percent, "a percentage from 100 to 200"));
    }
    Ok(())
}

/// Checks a service's capacity provider strategy the way CreateService does (ECS API reference,
/// CapacityProviderStrategyItem): Fargate providers, each once, at most one with a base, and some
/// weight to place tasks beyond the base.
pub fn validate_capacity(items: &[StrategyItem]) -> Result<()> {
    if items.is_empty() {
        return Err(Error::invalid("service.capacity", "[]", "at least one capacity provider"));
    }
    for (i, item) in items.iter().enumerate() {
        if !FARGATE_PROVIDERS.contains(&item.provider.as_str()) {
            return Err(Error::invalid(
                format!("service.capacity[{i}].provider"),
                format!("{:?}", item.provider),
                "\"FARGATE\" or \"FARGATE_SPOT\"",
            ));
        }
        if items[..i].iter().any(|other| other.provider == item.provider) {
            return Err(Error::invalid(
                format!("service.capacity[{i}].provider"),
                format!("{:?}", item.provider),
                "each capacity provider once",
            ));
        }
    }
    if items.iter().filter(|i| i.base > 0).count() > 1 {
        return Err(Error::invalid(
            "service.capacity",
            show_strategy(items),
            "a base on one capacity provider only (ECS places the base tasks there first)",
        ));
    }
    if items.iter().all(|i| i.weight == 0) {
        return Err(Error::invalid(
            "service.capacity",
            show_strategy(items),
            "a weight above 0 on at least one capacity provider",
        ));
    }
    Ok(())
}

fn wanted_strategy(spec: &ServiceSpec) -> Vec<StrategyItem> {
    spec.capacity.clone()
}

/// Which parts of a service an update must send.
#[derive(Debug, Default)]
pub struct ServiceUpdate {
    task_definition: bool,
    desired: bool,
    network: bool,
    strategy: bool,
    load_balancers: bool,
    grace: bool,
    deployment: bool,
    exec: bool,
}

/// A service converges by name within its cluster (an ACTIVE one; DRAINING and INACTIVE services
/// are deleted ones); everything the script controls is changed in place with UpdateService.
impl Resource for Service {
    type Reads = Snapshot;
    type Spec = ServiceSpec;
    type Update = ServiceUpdate;
    const KIND: &'static str = "service";

    fn keepable(live: &Service) -> Option<Keepable> {
        Some(Keepable::Ecs(live.arn.clone()))
    }

    fn name(spec: &ServiceSpec) -> String {
        spec.name.clone()
    }

    fn locator(live: &Service) -> String {
        live.arn.clone()
    }

    fn validate(_pass: &Pass, spec: &ServiceSpec) -> Result<()> {
        validate_service(spec)
    }

    fn find(pass: &Pass, spec: &ServiceSpec) -> Result<Option<Service>> {
        let found = service_named(pass, &spec.cluster, &spec.name)?.filter(|s| s.status == "ACTIVE");
        // A scalable target owns the count while the script scales the service. Once a whole
        // script no longer does, the run deletes the target after the apply pass, so the
        // script's count applies again in the same run.
        let declared = pass.declared();
        let scaled_by_script = !declared.whole_script
            || declared.autoscaling.contains(&crate::aws::autoscaling::target_name(&spec.cluster.name, &spec.name));
        let autoscaled =
            scaled_by_script && pass.snapshot()?.borrow().scaling.of(&spec.cluster.name, &spec.name).is_some();
        Ok(found.map(|service| Service { autoscaled, ..service }))
    }

    fn stack_of(live: &Service) -> Option<&str> {
        live.stack.as_deref()
    }

    fn planned(spec: &ServiceSpec, stack: &str) -> Service {
        Service {
            arn: UNKNOWN.into(),
            name: spec.name.clone(),
            cluster_arn: spec.cluster.arn.clone(),
            cluster: spec.cluster.name.clone(),
            status: "ACTIVE".into(),
            task_definition: spec.task_definition.clone(),
            desired: spec.desired.unwrap_or(1),
            strategy: wanted_strategy(spec),
            subnets: spec.subnets.clone(),
            security_groups: spec.security_groups.clone(),
            public_ip: spec.public_ip,
            load_balancers: spec.load_balancer.clone().into_iter().collect(),
            health_check_grace: spec.health_check_grace,
            deployment: Some(spec.deployment.clone()),
            exec: spec.exec,
            stack: Some(stack.to_string()),
            autoscaled: false,
        }
    }

    fn create(pass: &Pass, spec: &ServiceSpec, stack: &str) -> Result<Created<Service>> {
        let wanted = Self::planned(spec, stack);
        let network = network_configuration(spec)?;
        let strategy = strategy_to(&wanted.strategy)?;
        // Its first tasks pull their image through the subnets' egress: a NAT gateway this run
        // created is waited for here, not before (the statements in between went ahead).
        crate::aws::egress::egress_ready(pass, &spec.subnets, &format!("service {}", spec.name))?;
        let mappings = load_balancers(&wanted.load_balancers)?;
        let deployment = deployment_configuration(&spec.deployment)?;
        let sent = pass.apply(async |aws| {
            Ok(aws
                .ecs
                .create_service()
                .cluster(&spec.cluster.arn)
                .service_name(&spec.name)
                .task_definition(&spec.task_definition)
                .desired_count(wanted.desired)
                .set_capacity_provider_strategy(Some(strategy))
                .network_configuration(network)
                .set_load_balancers(Some(mappings))
                .set_health_check_grace_period_seconds(spec.health_check_grace)
                .deployment_configuration(deployment)
                .enable_execute_command(spec.exec)
                .set_tags(Some(tags_for(stack, &spec.name)))
                .send()
                .await)
        })?;
        match sent {
            Ok(out) => {
                let created = out.service().ok_or_else(|| Error::missing("CreateService", "service"))?;
                let created = service_from("CreateService", created)?;
                // What AWS echoes is what was asked; keep the request's view of the rest.
                Ok(Created::New(Service { arn: created.arn, cluster_arn: created.cluster_arn, ..wanted }))
            }
            // "Creation of service was not idempotent": an ACTIVE service of this name appeared
            // meanwhile (a concurrent run, a retried request); the engine checks whose it is.
            Err(err) if err.as_service_error().is_some_and(|e| e.is_invalid_parameter_exception()) => {
                let found =
                    pass.apply(async |aws| describe_services(aws, &spec.cluster.arn, vec![spec.name.clone()]).await)?;
                match found.into_iter().find(|s| s.status == "ACTIVE") {
                    Some(service) => Ok(Created::Existing(service)),
                    None => Err(aws_error("CreateService", err)),
                }
            }
            Err(err) => Err(aws_error("CreateService", err)),
        }
    }

    fn diff(live: &Service, spec: &ServiceSpec) -> Drift<ServiceUpdate> {
        service_update(live, spec)
    }

    fn update(pass: &Pass, live: &Service, spec: &ServiceSpec, update: &ServiceUpdate) -> Result<Service> {
        update_service(pass, live, spec, update)?;
        Ok(updated_service(live, spec, update))
    }

    fn updated(live: &Service, spec: &ServiceSpec) -> Service {
        updated_service(live, spec, &service_update(live, spec).update)
    }

    fn remember(snapshot: &mut Snapshot, live: &Service) {
        let ecs = &mut snapshot.ecs;
        ecs.services_named.insert((live.cluster.clone(), live.name.clone()), Some(live.clone()));
        // A cluster's list is complete or absent: absent, it is read whole on demand.
        if let Some(services) = ecs.services.get_mut(&live.cluster) {
            services.retain(|s| s.name != live.name);
            services.push(live.clone());
        }
    }

    fn summary(live: &Service) -> String {
        let managed = if live.autoscaled { " (managed by autoscaling)" } else { "" };
        format!("{}, {} desired{managed}", live.arn, live.desired)
    }
}

/// The service as it is once `update` is applied.
fn updated_service(live: &Service, spec: &ServiceSpec, update: &ServiceUpdate) -> Service {
    let mut service = live.clone();
    service.task_definition = spec.task_definition.clone();
    if update.desired {
        service.desired = spec.desired.unwrap_or(live.desired);
    }
    if update.network {
        service.subnets = spec.subnets.clone();
        service.security_groups = spec.security_groups.clone();
        service.public_ip = spec.public_ip;
    }
    if update.strategy {
        service.strategy = wanted_strategy(spec);
    }
    service.load_balancers = wanted_load_balancers(live, spec);
    if update.grace {
        service.health_check_grace = spec.health_check_grace;
    }
    if update.exec {
        service.exec = spec.exec;
    }
    if update.deployment {
        service.deployment = Some(spec.deployment.clone());
    }
    service
}

fn service_update(current: &Service, spec: &ServiceSpec) -> Drift<ServiceUpdate> {
    let mut diffs = Vec::new();
    let task_definition = current.task_definition != spec.task_definition;
    if task_definition {
        diffs.push(FieldDiff::changed(
            "task_definition",
            short_task(&current.task_definition),
            short_task(&spec.task_definition),
        ));
    }
    // Once a scalable target manages the count, the scaler's choice stands: the script's
    // `desired` only sizes a new service (what terraform users need `ignore_changes` for).
    let desired = !current.autoscaled && spec.desired.is_some_and(|d| d != current.desired);
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
    // AWS echoes the strategy a service was created or last updated with, and deckhand always
    // sends one; an empty strategy means the service runs on a launch type (created outside
    // deckhand), which moving to a capacity provider changes (with a new deployment).
    let wanted = wanted_strategy(spec);
    let strategy = current.strategy != wanted;
    if strategy {
        let before =
            if current.strategy.is_empty() { "launch type".to_string() } else { show_strategy(&current.strategy) };
        diffs.push(FieldDiff::changed("capacity_provider", before, show_strategy(&wanted)));
    }
    let wanted_lbs = wanted_load_balancers(current, spec);
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
    // AWS always reports a service's deployment configuration (its defaults when none was sent).
    let deployment = current.deployment.as_ref() != Some(&spec.deployment);
    if deployment {
        diffs.push(FieldDiff::changed("deployment", opt(&current.deployment), &spec.deployment));
    }
    let exec = current.exec != spec.exec;
    if exec {
        diffs.push(FieldDiff::changed("exec", current.exec, spec.exec));
    }
    let update = ServiceUpdate { task_definition, desired, network, strategy, load_balancers, grace, deployment, exec };
    Drift { diffs, fixed: Vec::new(), update }
}

/// The service's load balancer mappings as the script asks, their target groups the way round
/// `live` has them ([`LoadBalancerSpec::oriented_to`]).
fn wanted_load_balancers(live: &Service, spec: &ServiceSpec) -> Vec<LoadBalancerSpec> {
    spec.load_balancer.iter().map(|lb| lb.oriented_to(&live.load_balancers)).collect()
}

/// `family:revision` from a task definition ARN, for diffs and reports.
pub(crate) fn short_task(arn: &str) -> String {
    crate::arn::last_segment(arn).to_string()
}

fn network_configuration(spec: &ServiceSpec) -> Result<NetworkConfiguration> {
    let vpc = AwsVpcConfiguration::builder()
        .set_subnets(Some(spec.subnets.clone()))
        .set_security_groups(Some(spec.security_groups.clone()))
        .assign_public_ip(if spec.public_ip { AssignPublicIp::Enabled } else { AssignPublicIp::Disabled })
        .build();
    Ok(NetworkConfiguration::builder().awsvpc_configuration(built("a network configuration", vpc)?).build())
}

fn load_balancers(wanted: &[LoadBalancerSpec]) -> Result<Vec<LoadBalancer>> {
    wanted
        .iter()
        .map(|lb| {
            Ok(LoadBalancer::builder()
                .target_group_arn(&lb.target_group_arn)
                .container_name(&lb.container)
                .container_port(lb.port)
                .set_advanced_configuration(lb.advanced.as_ref().map(advanced_configuration).transpose()?)
                .build())
        })
        .collect()
}

fn update_service(pass: &Pass, current: &Service, spec: &ServiceSpec, update: &ServiceUpdate) -> Result<()> {
    let network = if update.network { Some(network_configuration(spec)?) } else { None };
    let strategy = if update.strategy { Some(strategy_to(&wanted_strategy(spec))?) } else { None };
    // The new tasks pull through the subnets' egress, as a new service's do (see `create`).
    crate::aws::egress::egress_ready(pass, &spec.subnets, &format!("service {}", spec.name))?;
    let mappings = load_balancers(&wanted_load_balancers(current, spec))?;
    let deployment = deployment_configuration(&spec.deployment)?;
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
            request = request.set_load_balancers(Some(mappings));
        }
        if update.grace {
            request = request.health_check_grace_period_seconds(spec.health_check_grace.unwrap_or(0));
        }
        if update.exec {
            request = request.enable_execute_command(spec.exec);
        }
        if update.deployment {
            request = request.deployment_configuration(deployment);
        }
        request.send().await.map_err(|e| aws_error("UpdateService", e))
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::ecs::service_reads::cluster_name;

    fn service_pair() -> (Service, ServiceSpec) {
        let deployment = Deployment::default();
        let spec = ServiceSpec {
            name: "web".into(),
            cluster: ClusterRef { name: "c".into(), arn: "arn:c".into() },
            task_definition: "arn:aws:ecs:us-west-2:1:task-definition/web:1".into(),
            desired: None,
            capacity: vec![StrategyItem { provider: "FARGATE".into(), weight: 1, base: 0 }],
            subnets: vec!["subnet-1".into()],
            security_groups: vec!["sg-1".into()],
            public_ip: false,
            load_balancer: None,
            health_check_grace: None,
            deployment: deployment.clone(),
            exec: false,
        };
        let service = Service {
            arn: "arn:s".into(),
            name: "web".into(),
            cluster_arn: "arn:c".into(),
            cluster: "c".into(),
            status: "ACTIVE".into(),
            task_definition: "arn:aws:ecs:us-west-2:1:task-definition/web:1".into(),
            desired: 3,
            strategy: wanted_strategy(&spec),
            subnets: spec.subnets.clone(),
            security_groups: spec.security_groups.clone(),
            public_ip: false,
            load_balancers: vec![],
            health_check_grace: None,
            deployment: Some(deployment),
            exec: false,
            stack: Some("s".into()),
            autoscaled: false,
        };
        (service, spec)
    }

    #[test]
    fn a_service_as_asked_needs_no_update_and_keeps_its_count() {
        let (service, spec) = service_pair();
        assert!(service_update(&service, &spec).is_empty());
        assert_eq!(Service::updated(&service, &spec).desired, 3);
    }

    #[test]
    fn a_service_without_the_strategy_or_deployment_settings_asked_for_drifts() {
        let (mut service, spec) = service_pair();
        service.strategy.clear();
        service.deployment = None;
        let drift = service_update(&service, &spec);
        assert!(drift.update.strategy && drift.update.deployment);
        let text: Vec<String> = drift.diffs.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "capacity_provider: launch type -> FARGATE weight 1",
                "deployment: none -> circuit breaker on (rollback), 100-200%",
            ]
        );
        let (mut service, mut spec) = service_pair();
        spec.capacity = vec![StrategyItem { provider: "FARGATE_SPOT".into(), weight: 1, base: 0 }];
        service.deployment = Some(Deployment { max_percent: 150, ..spec.deployment.clone() });
        let text: Vec<String> = service_update(&service, &spec).diffs.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "capacity_provider: FARGATE weight 1 -> FARGATE_SPOT weight 1",
                "deployment: circuit breaker on (rollback), 100-150% -> circuit breaker on (rollback), 100-200%",
            ]
        );
    }

    #[test]
    fn service_drift_lists_each_field() {
        let (service, mut spec) = service_pair();
        spec.task_definition = "arn:aws:ecs:us-west-2:1:task-definition/web:2".into();
        spec.desired = Some(2);
        spec.public_ip = true;
        spec.deployment.circuit_breaker = false;
        let drift = service_update(&service, &spec);
        let text: Vec<String> = drift.diffs.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "task_definition: web:1 -> web:2",
                "desired: 3 -> 2",
                "public_ip: false -> true",
                "deployment: circuit breaker on (rollback), 100-200% -> circuit breaker off, 100-200%",
            ]
        );
        let u = &drift.update;
        assert!(u.task_definition && u.desired && u.network && u.deployment);
        assert!(!u.strategy && !u.load_balancers && !u.grace);
        let after = Service::updated(&service, &spec);
        assert_eq!(
            (after.desired, after.public_ip, after.task_definition.as_str()),
            (2, true, "arn:aws:ecs:us-west-2:1:task-definition/web:2")
        );
    }

    #[test]
    fn an_autoscaled_service_keeps_the_scalers_count() {
        let (mut service, mut spec) = service_pair();
        service.autoscaled = true;
        spec.desired = Some(1);
        assert!(service_update(&service, &spec).is_empty());
        assert_eq!(Service::updated(&service, &spec).desired, 3);
        assert_eq!(Service::summary(&service), "arn:s, 3 desired (managed by autoscaling)");
    }

    #[test]
    fn services_remember_their_cluster_by_name() {
        assert_eq!(cluster_name("arn:aws:ecs:us-west-2:123456789012:cluster/shop"), "shop");
        let (service, _) = service_pair();
        let mut snapshot = Snapshot::default();
        // A cluster whose services were read whole keeps its list current.
        snapshot.ecs.services.insert("c".into(), Vec::new());
        Service::remember(&mut snapshot, &service);
        Service::remember(&mut snapshot, &Service { desired: 5, ..service.clone() });
        assert_eq!(snapshot.ecs.services["c"].len(), 1);
        assert_eq!(snapshot.ecs.services["c"][0].desired, 5);
        let named = &snapshot.ecs.services_named[&("c".to_string(), service.name.clone())];
        assert_eq!(named.as_ref().map(|s| s.desired), Some(5));
    }

    #[test]
    fn a_service_remembered_by_name_does_not_stand_for_its_cluster() {
        // Only the declared services of a cluster were read: the cluster's list stays unread, so
        // another service of it is still looked up (not taken as missing, and created twice).
        let (service, _) = service_pair();
        let mut snapshot = Snapshot::default();
        Service::remember(&mut snapshot, &service);
        assert!(!snapshot.ecs.services.contains_key("c"));
        assert!(snapshot.ecs.services_named.contains_key(&("c".to_string(), service.name.clone())));
    }
}
