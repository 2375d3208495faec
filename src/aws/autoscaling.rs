//! Application Auto Scaling for ECS services: a service's desired count as a scalable target
//! (min/max) with target-tracking policies (CPU, memory, ALB requests per target), and how that
//! converges (the `autoscaling` kind).

use std::collections::HashMap;
use std::fmt;

use aws_sdk_applicationautoscaling::types::{
    MetricType, PolicyType, PredefinedMetricSpecification, ScalableDimension, ServiceNamespace,
    TargetTrackingScalingPolicyConfiguration,
};

use crate::arn::Arn;
use crate::aws::Pass;
use crate::aws::Snapshot;
use crate::converge::{Created, Drift, Resource};
use crate::error::{Error, Result, aws_error, sent};
use crate::plan::{FieldDiff, UNKNOWN, is_known};
use crate::runtime::Aws;
use crate::tagged::STACK_TAG;

/// The prefix of the scaling policies deckhand manages; other policies on a target are left alone.
pub const POLICY_PREFIX: &str = "deckhand-";

/// The metric a target-tracking policy follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    /// `ECSServiceAverageCPUUtilization` (percent).
    Cpu,
    /// `ECSServiceAverageMemoryUtilization` (percent).
    Memory,
    /// `ALBRequestCountPerTarget` (requests per target per minute).
    Requests,
}

impl Metric {
    /// Every metric, in plan order.
    pub const ALL: [Metric; 3] = [Metric::Cpu, Metric::Memory, Metric::Requests];

    /// The policy's name (deckhand's prefix and the script's key's short form).
    pub fn policy_name(self) -> String {
        let short = match self {
            Metric::Cpu => "cpu",
            Metric::Memory => "memory",
            Metric::Requests => "requests",
        };
        format!("{POLICY_PREFIX}{short}")
    }

    /// The script key that asks for it.
    pub fn key(self) -> &'static str {
        match self {
            Metric::Cpu => "cpu",
            Metric::Memory => "memory",
            Metric::Requests => "requests_per_target",
        }
    }

    fn metric_type(self) -> MetricType {
        match self {
            Metric::Cpu => MetricType::EcsServiceAverageCpuUtilization,
            Metric::Memory => MetricType::EcsServiceAverageMemoryUtilization,
            Metric::Requests => MetricType::AlbRequestCountPerTarget,
        }
    }

    fn from_type(metric: &MetricType) -> Option<Metric> {
        match metric {
            MetricType::EcsServiceAverageCpuUtilization => Some(Metric::Cpu),
            MetricType::EcsServiceAverageMemoryUtilization => Some(Metric::Memory),
            MetricType::AlbRequestCountPerTarget => Some(Metric::Requests),
            _ => None,
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Metric::Cpu => "% CPU",
            Metric::Memory => "% memory",
            Metric::Requests => " requests/target",
        }
    }
}

/// One target-tracking policy, as asked for or as it exists.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Its name (`deckhand-cpu`, ... for deckhand's).
    pub name: String,
    /// The metric it tracks; `None` for a policy of another kind (never deckhand's).
    pub metric: Option<Metric>,
    /// The value the metric is held at.
    pub target: f64,
    /// `app/<alb>/<id>/targetgroup/<tg>/<id>` for `ALBRequestCountPerTarget`.
    pub resource_label: Option<String>,
    /// Seconds between scale-in activities; `None`: AWS's default.
    pub scale_in_cooldown: Option<i32>,
    /// Seconds between scale-out activities; `None`: AWS's default.
    pub scale_out_cooldown: Option<i32>,
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.metric {
            Some(metric) => write!(f, "{} {}{}", self.name, self.target, metric.unit())?,
            None => write!(f, "{} (not target tracking)", self.name)?,
        }
        if let Some(label) = &self.resource_label {
            write!(f, " on {label}")?;
        }
        if self.scale_in_cooldown.is_some() || self.scale_out_cooldown.is_some() {
            let show = |c: Option<i32>| c.map_or_else(|| "default".to_string(), |c| format!("{c}s"));
            write!(f, ", cooldown in {} out {}", show(self.scale_in_cooldown), show(self.scale_out_cooldown))?;
        }
        Ok(())
    }
}

/// What a script asks of a service's autoscaling.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoscalingSpec {
    /// The service's cluster name.
    pub cluster: String,
    /// The service's name.
    pub service: String,
    /// The fewest tasks the scaler may run.
    pub min: i64,
    /// The most tasks the scaler may run.
    pub max: i64,
    /// The policies, one per metric given, in [`Metric::ALL`] order (their names are deckhand's).
    pub policies: Vec<Policy>,
}

impl AutoscalingSpec {
    /// The scalable target's resource id, `service/<cluster>/<service>`.
    pub fn resource_id(&self) -> String {
        resource_id(&self.cluster, &self.service)
    }
}

/// A service's scalable target (its desired count) with its scaling policies.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalableTarget {
    /// `service/<cluster>/<service>`.
    pub resource_id: String,
    /// The fewest tasks.
    pub min: i32,
    /// The most tasks.
    pub max: i32,
    /// Its scaling policies, sorted by name.
    pub policies: Vec<Policy>,
    /// The stack of the service it scales (Application Auto Scaling's tags cannot be read in the
    /// same call as the target, so ownership follows the service's `deckhand:stack` tag).
    pub stack: Option<String>,
}

/// The scalable target's resource id for an ECS service.
pub fn resource_id(cluster: &str, service: &str) -> String {
    format!("service/{}", target_name(cluster, service))
}

/// The one name of a service's scalable target, as the plan, the inventory and status show it
/// and as a script declares it: `<cluster>/<service>`.
pub fn target_name(cluster: &str, service: &str) -> String {
    format!("{cluster}/{service}")
}

/// The Application Auto Scaling part of a run's snapshot: every ECS service's scalable target in
/// the region (Application Auto Scaling cannot filter by tag; a region holds few).
#[derive(Debug, Default, Clone)]
pub struct ScalingState {
    /// Scalable targets (with their policies) by resource id, `service/<cluster>/<service>`.
    pub targets: HashMap<String, ScalableTarget>,
}

impl ScalingState {
    /// Reads the ECS scalable targets and scaling policies of the region, both concurrently.
    pub async fn load(aws: &Aws) -> Result<ScalingState> {
        let (targets, policies) = tokio::try_join!(read_targets(aws), read_policies(aws))?;
        let mut targets: HashMap<String, ScalableTarget> =
            targets.into_iter().map(|t| (t.resource_id.clone(), t)).collect();
        for (resource_id, policy) in policies {
            if let Some(target) = targets.get_mut(&resource_id) {
                target.policies.push(policy);
            }
        }
        for target in targets.values_mut() {
            target.policies.sort_by(|a, b| a.name.cmp(&b.name));
        }
        Ok(ScalingState { targets })
    }

    /// The scalable target of a service, if it has one.
    pub fn of(&self, cluster: &str, service: &str) -> Option<&ScalableTarget> {
        self.targets.get(&resource_id(cluster, service))
    }
}

async fn read_targets(aws: &Aws) -> Result<Vec<ScalableTarget>> {
    let mut pages = aws
        .autoscaling
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Ecs)
        .into_paginator()
        .items()
        .send();
    let mut targets = Vec::new();
    while let Some(target) = pages.next().await {
        let target = target.map_err(|e| aws_error("DescribeScalableTargets", e))?;
        if target.scalable_dimension() != &ScalableDimension::EcsServiceDesiredCount {
            continue;
        }
        targets.push(ScalableTarget {
            resource_id: target.resource_id().to_string(),
            min: target.min_capacity(),
            max: target.max_capacity(),
            policies: Vec::new(),
            stack: None,
        });
    }
    Ok(targets)
}

async fn read_policies(aws: &Aws) -> Result<Vec<(String, Policy)>> {
    let mut pages = aws
        .autoscaling
        .describe_scaling_policies()
        .service_namespace(ServiceNamespace::Ecs)
        .into_paginator()
        .items()
        .send();
    let mut policies = Vec::new();
    while let Some(policy) = pages.next().await {
        let policy = policy.map_err(|e| aws_error("DescribeScalingPolicies", e))?;
        if policy.scalable_dimension() != &ScalableDimension::EcsServiceDesiredCount {
            continue;
        }
        let tracking = policy.target_tracking_scaling_policy_configuration();
        let predefined = tracking.and_then(|t| t.predefined_metric_specification());
        policies.push((
            policy.resource_id().to_string(),
            Policy {
                name: policy.policy_name().to_string(),
                metric: predefined.and_then(|p| Metric::from_type(p.predefined_metric_type())),
                target: tracking.map_or(0.0, |t| t.target_value()),
                resource_label: predefined.and_then(|p| p.resource_label()).map(str::to_string),
                scale_in_cooldown: tracking.and_then(|t| t.scale_in_cooldown()),
                scale_out_cooldown: tracking.and_then(|t| t.scale_out_cooldown()),
            },
        ));
    }
    Ok(policies)
}

/// The `ALBRequestCountPerTarget` resource label of a load balancer and target group, from their
/// ARNs: `app/<alb>/<id>/targetgroup/<tg>/<id>`; [`UNKNOWN`] while either is not created yet.
pub fn resource_label(load_balancer_arn: &str, target_group_arn: &str) -> String {
    let lb = Arn::of_type(load_balancer_arn, "elasticloadbalancing", "loadbalancer").map(|a| a.resource_id());
    let tg = Arn::of_type(target_group_arn, "elasticloadbalancing", "targetgroup").map(|a| a.resource);
    match (lb, tg) {
        (Some(lb), Some(tg)) if is_known(load_balancer_arn) && is_known(target_group_arn) => format!("{lb}/{tg}"),
        _ => UNKNOWN.to_string(),
    }
}

/// Checks counts, percentages and cooldowns before anything is sent.
pub fn validate_autoscaling(spec: &AutoscalingSpec) -> Result<()> {
    if !(0..=100_000).contains(&spec.min) {
        return Err(Error::invalid("autoscaling.min", spec.min, "a task count from 0 to 100000"));
    }
    if !(1..=100_000).contains(&spec.max) {
        return Err(Error::invalid("autoscaling.max", spec.max, "a task count from 1 to 100000"));
    }
    if spec.min > spec.max {
        return Err(Error::invalid(
            "autoscaling.min",
            spec.min,
            format!("at most max ({}): the scaler keeps the count between min and max", spec.max),
        ));
    }
    for policy in &spec.policies {
        let Some(metric) = policy.metric else { continue };
        match metric {
            Metric::Cpu | Metric::Memory if !(1.0..=100.0).contains(&policy.target) => {
                return Err(Error::invalid(
                    format!("autoscaling.{}", metric.key()),
                    policy.target,
                    "a utilisation percentage from 1 to 100",
                ));
            }
            Metric::Requests if policy.target < 1.0 => {
                return Err(Error::invalid(
                    "autoscaling.requests_per_target",
                    policy.target,
                    "1 or more requests per target per minute",
                ));
            }
            _ => {}
        }
        for (key, cooldown) in
            [("scale_in_cooldown", policy.scale_in_cooldown), ("scale_out_cooldown", policy.scale_out_cooldown)]
        {
            if let Some(c) = cooldown
                && !(0..=86_400).contains(&c)
            {
                return Err(Error::invalid(format!("autoscaling.{key}"), c, "0 to 86400 seconds"));
            }
        }
    }
    Ok(())
}

/// What an update sends: the target's min/max, the policies to put, the policies to delete.
#[derive(Debug, Default)]
pub struct ScalingUpdate {
    /// Re-register the target with the spec's min/max.
    pub target: bool,
    /// Policies to create or change.
    pub put: Vec<Policy>,
    /// deckhand's policies whose metric the script no longer gives.
    pub delete: Vec<String>,
}

fn scaling_drift(live: &ScalableTarget, spec: &AutoscalingSpec) -> Drift<ScalingUpdate> {
    let mut diffs = Vec::new();
    let mut update = ScalingUpdate::default();
    if i64::from(live.min) != spec.min || i64::from(live.max) != spec.max {
        update.target = true;
        diffs.push(FieldDiff::changed(
            "capacity",
            format!("{}-{}", live.min, live.max),
            format!("{}-{}", spec.min, spec.max),
        ));
    }
    for wanted in &spec.policies {
        match live.policies.iter().find(|p| p.name == wanted.name) {
            None => diffs.push(FieldDiff::added("policies", wanted)),
            // Unset cooldowns are AWS's defaults, whatever AWS reports for them.
            Some(current)
                if current.metric == wanted.metric
                    && current.target == wanted.target
                    && current.resource_label == wanted.resource_label
                    && (wanted.scale_in_cooldown.is_none()
                        || current.scale_in_cooldown == wanted.scale_in_cooldown)
                    && (wanted.scale_out_cooldown.is_none()
                        || current.scale_out_cooldown == wanted.scale_out_cooldown) =>
            {
                continue;
            }
            Some(current) => diffs.push(FieldDiff::changed(&format!("policy {}", wanted.name), current, wanted)),
        }
        update.put.push(wanted.clone());
    }
    for current in &live.policies {
        if current.name.starts_with(POLICY_PREFIX) && !spec.policies.iter().any(|p| p.name == current.name) {
            diffs.push(FieldDiff::removed("policies", current));
            update.delete.push(current.name.clone());
        }
    }
    Drift { diffs, fixed: Vec::new(), update }
}

fn scaled(live: &ScalableTarget, spec: &AutoscalingSpec) -> ScalableTarget {
    let mut policies: Vec<Policy> = live
        .policies
        .iter()
        .filter(|p| !p.name.starts_with(POLICY_PREFIX))
        .cloned()
        .chain(spec.policies.iter().cloned())
        .collect();
    policies.sort_by(|a, b| a.name.cmp(&b.name));
    ScalableTarget {
        resource_id: live.resource_id.clone(),
        min: clamp(spec.min),
        max: clamp(spec.max),
        policies,
        stack: live.stack.clone(),
    }
}

/// A validated count as AWS's type.
fn clamp(count: i64) -> i32 {
    i32::try_from(count).unwrap_or(i32::MAX)
}

/// A service's autoscaling converges by its service: the target's min/max are re-registered in
/// place, policies are put when they differ and deleted when their metric is no longer given.
impl Resource for ScalableTarget {
    type Reads = Snapshot;
    type Spec = AutoscalingSpec;
    type Update = ScalingUpdate;
    const KIND: &'static str = "autoscaling";

    fn name(spec: &AutoscalingSpec) -> String {
        target_name(&spec.cluster, &spec.service)
    }

    fn noun() -> String {
        "scalable target".into()
    }

    fn validate(_pass: &Pass, spec: &AutoscalingSpec) -> Result<()> {
        validate_autoscaling(spec)
    }

    fn find(pass: &Pass, spec: &AutoscalingSpec) -> Result<Option<ScalableTarget>> {
        let snapshot = pass.snapshot()?;
        let snapshot = snapshot.borrow();
        let Some(target) = snapshot.scaling.of(&spec.cluster, &spec.service) else { return Ok(None) };
        let stack = snapshot.ecs.service(&spec.cluster, &spec.service).and_then(|s| s.stack.clone());
        Ok(Some(ScalableTarget { stack, ..target.clone() }))
    }

    fn stack_of(live: &ScalableTarget) -> Option<&str> {
        live.stack.as_deref()
    }

    fn planned(spec: &AutoscalingSpec, stack: &str) -> ScalableTarget {
        let empty = ScalableTarget {
            resource_id: spec.resource_id(),
            min: 0,
            max: 0,
            policies: Vec::new(),
            stack: Some(stack.to_string()),
        };
        scaled(&empty, spec)
    }

    fn create(pass: &Pass, spec: &AutoscalingSpec, stack: &str) -> Result<Created<ScalableTarget>> {
        register_target(pass, spec, Some(stack))?;
        for policy in &spec.policies {
            put_policy(pass, spec, policy)?;
        }
        Ok(Created::New(Self::planned(spec, stack)))
    }

    fn diff(live: &ScalableTarget, spec: &AutoscalingSpec) -> Drift<ScalingUpdate> {
        scaling_drift(live, spec)
    }

    fn update(
        pass: &Pass,
        live: &ScalableTarget,
        spec: &AutoscalingSpec,
        update: &ScalingUpdate,
    ) -> Result<ScalableTarget> {
        if update.target {
            register_target(pass, spec, None)?;
        }
        for policy in &update.put {
            put_policy(pass, spec, policy)?;
        }
        for name in &update.delete {
            let resource_id = spec.resource_id();
            pass.apply(async |aws| delete_policy(aws, &resource_id, name).await)?;
        }
        Ok(scaled(live, spec))
    }

    fn updated(live: &ScalableTarget, spec: &AutoscalingSpec) -> ScalableTarget {
        scaled(live, spec)
    }

    fn remember(snapshot: &mut Snapshot, live: &ScalableTarget) {
        snapshot.scaling.targets.insert(live.resource_id.clone(), live.clone());
    }

    fn summary(live: &ScalableTarget) -> String {
        let policies: Vec<String> = live.policies.iter().map(ToString::to_string).collect();
        let policies = if policies.is_empty() { "no policies".to_string() } else { policies.join("; ") };
        format!("{} tasks, {policies}", show_range(live))
    }
}

fn show_range(target: &ScalableTarget) -> String {
    format!("{}-{}", target.min, target.max)
}

/// Registers (or re-registers, which updates min/max) the service's desired count as a scalable
/// target; tagged with the stack when first registered.
fn register_target(pass: &Pass, spec: &AutoscalingSpec, stack: Option<&str>) -> Result<()> {
    let resource_id = spec.resource_id();
    pass.apply(async |aws| {
        let mut request = aws
            .autoscaling
            .register_scalable_target()
            .service_namespace(ServiceNamespace::Ecs)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .resource_id(&resource_id)
            .min_capacity(clamp(spec.min))
            .max_capacity(clamp(spec.max));
        if let Some(stack) = stack {
            request = request.tags(STACK_TAG, stack);
        }
        request.send().await.map(drop).map_err(|e| aws_error("RegisterScalableTarget", e))
    })
}

fn put_policy(pass: &Pass, spec: &AutoscalingSpec, policy: &Policy) -> Result<()> {
    let metric = policy.metric.ok_or_else(|| Error::Internal(format!("policy {} has no metric", policy.name)))?;
    let mut predefined = PredefinedMetricSpecification::builder().predefined_metric_type(metric.metric_type());
    if let Some(label) = &policy.resource_label {
        predefined = predefined.resource_label(label);
    }
    let predefined = predefined.build().map_err(|e| Error::Internal(format!("building a metric: {e}")))?;
    let configuration = TargetTrackingScalingPolicyConfiguration::builder()
        .target_value(policy.target)
        .predefined_metric_specification(predefined)
        .set_scale_in_cooldown(policy.scale_in_cooldown)
        .set_scale_out_cooldown(policy.scale_out_cooldown)
        .build()
        .map_err(|e| Error::Internal(format!("building a target-tracking policy: {e}")))?;
    let resource_id = spec.resource_id();
    pass.apply(async |aws| {
        sent(
            "PutScalingPolicy",
            aws.autoscaling
                .put_scaling_policy()
                .policy_name(&policy.name)
                .service_namespace(ServiceNamespace::Ecs)
                .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                .resource_id(&resource_id)
                .policy_type(PolicyType::TargetTrackingScaling)
                .target_tracking_scaling_policy_configuration(configuration)
                .send(),
        )
        .await
    })
}

async fn delete_policy(aws: &Aws, resource_id: &str, name: &str) -> Result<()> {
    sent(
        "DeleteScalingPolicy",
        aws.autoscaling
            .delete_scaling_policy()
            .policy_name(name)
            .service_namespace(ServiceNamespace::Ecs)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .resource_id(resource_id)
            .send(),
    )
    .await
}

// Deletion (deckhand destroy)

/// Deletes a scalable target's policies (deckhand's and any other: the service is going away),
/// then deregisters the target.
pub async fn delete_scalable_target(aws: &Aws, target: &ScalableTarget) -> Result<()> {
    for policy in &target.policies {
        delete_policy(aws, &target.resource_id, &policy.name).await?;
    }
    sent(
        "DeregisterScalableTarget",
        aws.autoscaling
            .deregister_scalable_target()
            .service_namespace(ServiceNamespace::Ecs)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .resource_id(&target.resource_id)
            .send(),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(metric: Metric, target: f64) -> Policy {
        Policy {
            name: metric.policy_name(),
            metric: Some(metric),
            target,
            resource_label: None,
            scale_in_cooldown: None,
            scale_out_cooldown: None,
        }
    }

    fn spec(policies: Vec<Policy>) -> AutoscalingSpec {
        AutoscalingSpec { cluster: "c".into(), service: "web".into(), min: 2, max: 6, policies }
    }

    #[test]
    fn resource_labels_join_the_load_balancer_and_target_group() {
        let lb = "arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/app/web/50dc6c495c0c9188";
        let tg = "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/web/73e2d6bc24d8a067";
        assert_eq!(resource_label(lb, tg), "app/web/50dc6c495c0c9188/targetgroup/web/73e2d6bc24d8a067");
        assert_eq!(resource_label(UNKNOWN, tg), UNKNOWN);
    }

    #[test]
    fn bad_counts_and_percentages_are_refused() {
        let mut s = spec(vec![policy(Metric::Cpu, 60.0)]);
        assert!(validate_autoscaling(&s).is_ok());
        s.min = 7;
        assert!(validate_autoscaling(&s).unwrap_err().to_string().contains("autoscaling.min"));
        let s = spec(vec![policy(Metric::Memory, 101.0)]);
        assert!(validate_autoscaling(&s).unwrap_err().to_string().contains("autoscaling.memory"));
    }

    #[test]
    fn drift_puts_changed_policies_and_deletes_dropped_ones_only_if_deckhands() {
        let live = ScalableTarget {
            resource_id: "service/c/web".into(),
            min: 2,
            max: 6,
            policies: vec![
                policy(Metric::Cpu, 60.0),
                policy(Metric::Requests, 100.0),
                Policy { name: "by-hand".into(), ..policy(Metric::Memory, 50.0) },
            ],
            stack: Some("s".into()),
        };
        let same = spec(vec![policy(Metric::Cpu, 60.0), policy(Metric::Requests, 100.0)]);
        assert!(scaling_drift(&live, &same).is_empty());
        let drift = scaling_drift(&live, &spec(vec![policy(Metric::Cpu, 70.0)]));
        assert!(!drift.update.target);
        assert_eq!(drift.update.put.len(), 1);
        assert_eq!(drift.update.delete, ["deckhand-requests"]);
        let after = scaled(&live, &spec(vec![policy(Metric::Cpu, 70.0)]));
        let names: Vec<&str> = after.policies.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["by-hand", "deckhand-cpu"]);
    }
}
