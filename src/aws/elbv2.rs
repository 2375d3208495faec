//! Elastic Load Balancing v2: Application Load Balancers, target groups and listeners, and how
//! each converges.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, Certificate, LoadBalancerSchemeEnum, LoadBalancerTypeEnum, Matcher, ProtocolEnum,
    RedirectActionConfig, RedirectActionStatusCodeEnum, Tag, TargetGroupAttribute, TargetTypeEnum,
};
use futures_util::future::try_join_all;

use crate::aws::NAME_TAG;
use crate::aws::ec2::Ec2State;
use crate::error::{Error, Result, aws_error};
use crate::pass::{Pass, STACK_TAG};
use crate::plan::{Change, ChangeKind, FieldDiff, UNKNOWN, is_known};
use crate::runtime::Aws;

/// The TLS policy deckhand gives HTTPS listeners when the script names none (AWS's recommended one).
pub const DEFAULT_SSL_POLICY: &str = "ELBSecurityPolicy-TLS13-1-2-2021-06";

/// AWS's deregistration delay for a new target group, in seconds.
pub const DEFAULT_DEREGISTRATION_DELAY: i32 = 300;

const DEREGISTRATION_DELAY_KEY: &str = "deregistration_delay.timeout_seconds";

/// An Application Load Balancer as it exists (or will exist) in AWS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadBalancer {
    /// Its ARN, or [`UNKNOWN`].
    pub arn: String,
    /// Its name (unique in the region).
    pub name: String,
    /// Its DNS name, or [`UNKNOWN`].
    pub dns_name: String,
    /// `internet-facing` or `internal`.
    pub scheme: String,
    /// `application`, `network` or `gateway`.
    pub lb_type: String,
    /// The VPC of its subnets.
    pub vpc_id: String,
    /// Its subnet ids, sorted.
    pub subnets: Vec<String>,
    /// Its security group ids, sorted.
    pub security_groups: Vec<String>,
    /// Its `deckhand:stack` tag.
    pub stack: Option<String>,
}

/// A subnet given to a load balancer: a handle (which knows its AZ and VPC) or a plain id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetRef {
    /// `subnet-...` or [`UNKNOWN`] (a subnet created by this run).
    pub id: String,
    /// Its availability zone, when the handle tells.
    pub az: Option<String>,
    /// Its VPC, when the handle tells.
    pub vpc_id: Option<String>,
}

/// A security group given to a load balancer: a handle or a plain id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    /// `sg-...` or [`UNKNOWN`].
    pub id: String,
    /// Its VPC, when the handle tells.
    pub vpc_id: Option<String>,
}

/// What a script asks of an Application Load Balancer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadBalancerSpec {
    /// 1-32 letters, digits and hyphens.
    pub name: String,
    /// `internet-facing` (default) or `internal`.
    pub scheme: String,
    /// Subnets in at least two availability zones, one per zone.
    pub subnets: Vec<SubnetRef>,
    /// One to five security groups.
    pub security_groups: Vec<GroupRef>,
}

/// A target group's health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// The HTTP path probed, starting with `/`.
    pub path: String,
    /// Seconds between probes (5-300).
    pub interval: i32,
    /// Seconds before a probe fails (2-120, less than the interval).
    pub timeout: i32,
    /// Consecutive successes before a target is healthy (2-10).
    pub healthy: i32,
    /// Consecutive failures before a target is unhealthy (2-10).
    pub unhealthy: i32,
    /// The HTTP codes that count as success: `200`, `200-299`, `200,302`.
    pub matcher: String,
}

impl Default for HealthCheck {
    /// AWS's defaults for an HTTP target group.
    fn default() -> Self {
        HealthCheck { path: "/".into(), interval: 30, timeout: 5, healthy: 5, unhealthy: 2, matcher: "200".into() }
    }
}

/// A target group as it exists (or will exist) in AWS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetGroup {
    /// Its ARN, or [`UNKNOWN`].
    pub arn: String,
    /// Its name (unique in the region).
    pub name: String,
    /// The port targets receive traffic on.
    pub port: i32,
    /// `HTTP` or `HTTPS`.
    pub protocol: String,
    /// `ip` or `instance`.
    pub target_type: String,
    /// Its VPC.
    pub vpc_id: String,
    /// Its health check.
    pub health_check: HealthCheck,
    /// Seconds a draining target keeps its connections.
    pub deregistration_delay: i32,
    /// Its `deckhand:stack` tag.
    pub stack: Option<String>,
}

/// What a script asks of a target group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetGroupSpec {
    /// 1-32 letters, digits and hyphens.
    pub name: String,
    /// The VPC id (may be [`UNKNOWN`] in check mode).
    pub vpc_id: String,
    /// 1-65535.
    pub port: i32,
    /// `HTTP` or `HTTPS`.
    pub protocol: String,
    /// `ip` (Fargate / awsvpc) or `instance`.
    pub target_type: String,
    /// The health check, AWS's defaults where the script is silent.
    pub health_check: HealthCheck,
    /// 0-3600 seconds.
    pub deregistration_delay: i32,
}

/// What a listener does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenerAction {
    /// Forward to one target group.
    Forward {
        /// The target group's ARN, or [`UNKNOWN`].
        arn: String,
        /// Its name, for display.
        name: String,
    },
    /// Redirect to another port and protocol, keeping host, path and query.
    Redirect {
        /// `HTTP` or `HTTPS`.
        protocol: String,
        /// 1-65535.
        port: i32,
        /// 301 or 302.
        status: i32,
    },
    /// Anything else found in AWS (fixed responses, weighted forwards, custom redirects...).
    Other(String),
}

impl ListenerAction {
    fn same_as(&self, other: &ListenerAction) -> bool {
        match (self, other) {
            (ListenerAction::Forward { arn: a, .. }, ListenerAction::Forward { arn: b, .. }) => is_known(a) && a == b,
            (ListenerAction::Other(_), _) | (_, ListenerAction::Other(_)) => false,
            (a, b) => a == b,
        }
    }
}

impl fmt::Display for ListenerAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenerAction::Forward { name, .. } => write!(f, "forward {name}"),
            ListenerAction::Redirect { protocol, port, status } => write!(f, "redirect {protocol}:{port} ({status})"),
            ListenerAction::Other(text) => f.write_str(text),
        }
    }
}

/// A listener as it exists (or will exist) in AWS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Its ARN, or [`UNKNOWN`].
    pub arn: String,
    /// The load balancer it belongs to.
    pub load_balancer_arn: String,
    /// The port it listens on.
    pub port: i32,
    /// `HTTP` or `HTTPS`.
    pub protocol: String,
    /// Its default action.
    pub action: ListenerAction,
    /// The default certificate (HTTPS only).
    pub certificate: Option<String>,
    /// The TLS policy (HTTPS only).
    pub ssl_policy: Option<String>,
}

/// The load balancer a listener is declared on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadBalancerRef {
    /// Its ARN, or [`UNKNOWN`] when it is only planned.
    pub arn: String,
    /// Its name.
    pub name: String,
    /// Its VPC, when known.
    pub vpc_id: Option<String>,
}

/// What a script asks of a listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    /// The load balancer.
    pub load_balancer: LoadBalancerRef,
    /// 1-65535.
    pub port: i32,
    /// `HTTP` or `HTTPS`.
    pub protocol: String,
    /// The default action.
    pub action: ListenerAction,
    /// The VPC of the forward target group, when known (it must be the load balancer's).
    pub target_group_vpc: Option<String>,
    /// The default certificate ARN (HTTPS only, required there).
    pub certificate: Option<String>,
    /// The TLS policy (HTTPS only; defaults to [`DEFAULT_SSL_POLICY`]).
    pub ssl_policy: Option<String>,
}

/// A load balancer or target group that is not this stack's, kept to report name clashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Foreign {
    /// `load_balancer` or `target_group`.
    pub kind: &'static str,
    /// Its name.
    pub name: String,
    /// Its ARN.
    pub arn: String,
    /// The stack that owns it, if any.
    pub stack: Option<String>,
}

/// The ELBv2 part of a run's snapshot.
#[derive(Debug, Default, Clone)]
pub struct Elbv2State {
    /// The stack's load balancers.
    pub load_balancers: Vec<LoadBalancer>,
    /// The stack's target groups.
    pub target_groups: Vec<TargetGroup>,
    /// The listeners of the stack's load balancers.
    pub listeners: Vec<Listener>,
    /// Every other load balancer and target group of the region (their names are taken).
    pub others: Vec<Foreign>,
    /// Whether this state was read from AWS (false in check mode).
    pub loaded: bool,
}

impl Elbv2State {
    /// Reads the region's load balancers and target groups, keeps the stack's (by tag), then reads
    /// their listeners and target group attributes: three rounds of concurrent requests.
    pub async fn load(aws: &Aws, stack: &str) -> Result<Elbv2State> {
        let (load_balancers, target_groups) = tokio::try_join!(load_balancers(aws), target_groups(aws))?;
        let arns: Vec<String> =
            load_balancers.iter().map(|l| l.arn.clone()).chain(target_groups.iter().map(|t| t.arn.clone())).collect();
        let tags = tags(aws, &arns).await?;
        let mut state = Elbv2State { loaded: true, ..Elbv2State::default() };
        for mut lb in load_balancers {
            lb.stack = tags.get(&lb.arn).and_then(|t| t.get(STACK_TAG)).cloned();
            if lb.stack.as_deref() == Some(stack) {
                state.load_balancers.push(lb);
            } else {
                state.others.push(Foreign { kind: "load_balancer", name: lb.name, arn: lb.arn, stack: lb.stack });
            }
        }
        for mut tg in target_groups {
            tg.stack = tags.get(&tg.arn).and_then(|t| t.get(STACK_TAG)).cloned();
            if tg.stack.as_deref() == Some(stack) {
                state.target_groups.push(tg);
            } else {
                state.others.push(Foreign { kind: "target_group", name: tg.name, arn: tg.arn, stack: tg.stack });
            }
        }
        let (listeners, delays) = tokio::try_join!(
            try_join_all(state.load_balancers.iter().map(|lb| listeners(aws, &lb.arn))),
            try_join_all(state.target_groups.iter().map(|tg| deregistration_delay(aws, &tg.arn))),
        )?;
        for (tg, delay) in state.target_groups.iter_mut().zip(delays) {
            tg.deregistration_delay = delay;
        }
        let mut listeners: Vec<Listener> = listeners.into_iter().flatten().collect();
        for listener in &mut listeners {
            if let ListenerAction::Forward { arn, name } = &mut listener.action {
                *name = state.target_group_name(arn);
            }
        }
        state.listeners = listeners;
        Ok(state)
    }

    fn target_group_name(&self, arn: &str) -> String {
        let ours = self.target_groups.iter().find(|t| t.arn == arn).map(|t| t.name.clone());
        ours.or_else(|| self.others.iter().find(|o| o.arn == arn).map(|o| o.name.clone()))
            .unwrap_or_else(|| arn.to_string())
    }

    fn foreign(&self, kind: &str, name: &str) -> Option<&Foreign> {
        self.others.iter().find(|o| o.kind == kind && o.name == name)
    }
}

fn sdk_tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

fn stack_tags(stack: &str, name: &str) -> Vec<Tag> {
    vec![sdk_tag(NAME_TAG, name), sdk_tag(STACK_TAG, stack)]
}

async fn load_balancers(aws: &Aws) -> Result<Vec<LoadBalancer>> {
    let mut pages = aws.elbv2.describe_load_balancers().page_size(400).into_paginator().items().send();
    let mut found = Vec::new();
    while let Some(lb) = pages.next().await {
        found.push(load_balancer_from(&lb.map_err(|e| aws_error("DescribeLoadBalancers", e))?));
    }
    Ok(found)
}

pub(crate) fn load_balancer_from(lb: &aws_sdk_elasticloadbalancingv2::types::LoadBalancer) -> LoadBalancer {
    let mut subnets: Vec<String> =
        lb.availability_zones().iter().filter_map(|z| z.subnet_id()).map(str::to_string).collect();
    subnets.sort();
    let mut security_groups = lb.security_groups().to_vec();
    security_groups.sort();
    LoadBalancer {
        arn: lb.load_balancer_arn().unwrap_or_default().to_string(),
        name: lb.load_balancer_name().unwrap_or_default().to_string(),
        dns_name: lb.dns_name().unwrap_or_default().to_string(),
        scheme: lb.scheme().map(|s| s.as_str().to_string()).unwrap_or_default(),
        lb_type: lb.r#type().map(|t| t.as_str().to_string()).unwrap_or_else(|| "application".into()),
        vpc_id: lb.vpc_id().unwrap_or_default().to_string(),
        subnets,
        security_groups,
        stack: None,
    }
}

pub(crate) async fn target_groups(aws: &Aws) -> Result<Vec<TargetGroup>> {
    let mut pages = aws.elbv2.describe_target_groups().page_size(400).into_paginator().items().send();
    let mut found = Vec::new();
    while let Some(tg) = pages.next().await {
        let tg = tg.map_err(|e| aws_error("DescribeTargetGroups", e))?;
        let defaults = HealthCheck::default();
        found.push(TargetGroup {
            arn: tg.target_group_arn().unwrap_or_default().to_string(),
            name: tg.target_group_name().unwrap_or_default().to_string(),
            port: tg.port().unwrap_or_default(),
            protocol: tg.protocol().map(|p| p.as_str().to_string()).unwrap_or_default(),
            target_type: tg.target_type().map(|t| t.as_str().to_string()).unwrap_or_else(|| "instance".into()),
            vpc_id: tg.vpc_id().unwrap_or_default().to_string(),
            health_check: HealthCheck {
                path: tg.health_check_path().unwrap_or(&defaults.path).to_string(),
                interval: tg.health_check_interval_seconds().unwrap_or(defaults.interval),
                timeout: tg.health_check_timeout_seconds().unwrap_or(defaults.timeout),
                healthy: tg.healthy_threshold_count().unwrap_or(defaults.healthy),
                unhealthy: tg.unhealthy_threshold_count().unwrap_or(defaults.unhealthy),
                matcher: tg.matcher().and_then(|m| m.http_code()).unwrap_or(&defaults.matcher).to_string(),
            },
            deregistration_delay: DEFAULT_DEREGISTRATION_DELAY,
            stack: None,
        });
    }
    Ok(found)
}

/// The tags of `arns` (any mix of load balancers and target groups), 20 ARNs per request, concurrently.
async fn tags(aws: &Aws, arns: &[String]) -> Result<HashMap<String, HashMap<String, String>>> {
    let batches = arns.chunks(20).map(|batch| async move {
        aws.elbv2
            .describe_tags()
            .set_resource_arns(Some(batch.to_vec()))
            .send()
            .await
            .map_err(|e| aws_error("DescribeTags", e))
    });
    let mut tags = HashMap::new();
    for out in try_join_all(batches).await? {
        for description in out.tag_descriptions() {
            let map = description
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
                .collect();
            tags.insert(description.resource_arn().unwrap_or_default().to_string(), map);
        }
    }
    Ok(tags)
}

pub(crate) async fn listeners(aws: &Aws, load_balancer_arn: &str) -> Result<Vec<Listener>> {
    let mut pages = aws
        .elbv2
        .describe_listeners()
        .load_balancer_arn(load_balancer_arn)
        .page_size(400)
        .into_paginator()
        .items()
        .send();
    let mut found = Vec::new();
    while let Some(listener) = pages.next().await {
        let l = listener.map_err(|e| aws_error("DescribeListeners", e))?;
        found.push(Listener {
            arn: l.listener_arn().unwrap_or_default().to_string(),
            load_balancer_arn: l.load_balancer_arn().unwrap_or(load_balancer_arn).to_string(),
            port: l.port().unwrap_or_default(),
            protocol: l.protocol().map(|p| p.as_str().to_string()).unwrap_or_default(),
            action: action_from(l.default_actions()),
            certificate: l.certificates().first().and_then(|c| c.certificate_arn()).map(str::to_string),
            ssl_policy: l.ssl_policy().map(str::to_string),
        });
    }
    Ok(found)
}

fn action_from(actions: &[Action]) -> ListenerAction {
    let [action] = actions else {
        return ListenerAction::Other(format!("{} actions", actions.len()));
    };
    match action.r#type() {
        Some(ActionTypeEnum::Forward) => {
            let tuples = action.forward_config().map(|c| c.target_groups()).unwrap_or_default();
            let arn = action.target_group_arn().or(match tuples {
                [only] => only.target_group_arn(),
                _ => None,
            });
            match arn {
                Some(arn) => ListenerAction::Forward { arn: arn.to_string(), name: arn.to_string() },
                None => ListenerAction::Other(format!("forward to {} target groups", tuples.len())),
            }
        }
        Some(ActionTypeEnum::Redirect) => {
            let Some(r) = action.redirect_config() else {
                return ListenerAction::Other("redirect".into());
            };
            let status = match r.status_code() {
                Some(RedirectActionStatusCodeEnum::Http301) => 301,
                Some(RedirectActionStatusCodeEnum::Http302) => 302,
                _ => 0,
            };
            let kept = r.host().unwrap_or("#{host}") == "#{host}"
                && r.path().unwrap_or("/#{path}") == "/#{path}"
                && r.query().unwrap_or("#{query}") == "#{query}";
            match (kept, r.protocol(), r.port().and_then(|p| p.parse().ok())) {
                (true, Some(protocol), Some(port)) if protocol != "#{protocol}" => {
                    ListenerAction::Redirect { protocol: protocol.to_string(), port, status }
                }
                _ => ListenerAction::Other(format!(
                    "redirect to {}://{}:{}{}?{} ({status})",
                    r.protocol().unwrap_or("#{protocol}"),
                    r.host().unwrap_or("#{host}"),
                    r.port().unwrap_or("#{port}"),
                    r.path().unwrap_or("/#{path}"),
                    r.query().unwrap_or("#{query}")
                )),
            }
        }
        Some(other) => ListenerAction::Other(other.as_str().to_string()),
        None => ListenerAction::Other("unknown action".into()),
    }
}

async fn deregistration_delay(aws: &Aws, arn: &str) -> Result<i32> {
    let out = aws
        .elbv2
        .describe_target_group_attributes()
        .target_group_arn(arn)
        .send()
        .await
        .map_err(|e| aws_error("DescribeTargetGroupAttributes", e))?;
    Ok(out
        .attributes()
        .iter()
        .find(|a| a.key() == Some(DEREGISTRATION_DELAY_KEY))
        .and_then(|a| a.value()?.parse().ok())
        .unwrap_or(DEFAULT_DEREGISTRATION_DELAY))
}

fn not_ours(label: &str, foreign: &Foreign, stack: &str) -> Error {
    let owner = match &foreign.stack {
        Some(other) => format!("it belongs to stack {other}"),
        None => "it carries no deckhand:stack tag".to_string(),
    };
    Error::Conflict {
        message: format!(
            "a {label} named {} already exists ({}) and is not part of stack {stack}: {owner}",
            foreign.name, foreign.arn
        ),
        hint: Some(format!(
            "deckhand never adopts or changes resources it did not create; give the {label} another name"
        )),
    }
}

/// Checks an ELB name: 1-32 letters, digits and hyphens, no hyphen at either end.
fn validate_elb_name(key: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !ok {
        return Err(Error::invalid(
            key,
            format!("{name:?}"),
            format!(
                "1 to 32 letters, digits and hyphens, not starting or ending with a hyphen{}",
                if name.len() > 32 { format!(" (it has {} characters)", name.len()) } else { String::new() }
            ),
        ));
    }
    Ok(())
}

/// Checks a load balancer spec against the region's subnets (where known); returns its VPC id.
fn validate_load_balancer(spec: &LoadBalancerSpec, ec2: &Ec2State) -> Result<Option<String>> {
    validate_elb_name("load_balancer.name", &spec.name)?;
    if spec.name.starts_with("internal-") {
        return Err(Error::invalid(
            "load_balancer.name",
            format!("{:?}", spec.name),
            "a name that does not start with \"internal-\" (AWS reserves it)",
        ));
    }
    if spec.scheme != "internet-facing" && spec.scheme != "internal" {
        return Err(Error::invalid(
            "load_balancer.scheme",
            format!("{:?}", spec.scheme),
            "\"internet-facing\" or \"internal\"",
        ));
    }
    let two_zones = "subnets in at least two availability zones, one subnet per zone (AWS requires two zones for an Application Load Balancer)";
    let ids = |subnets: &[SubnetRef]| subnets.iter().map(|s| s.id.clone()).collect::<Vec<_>>().join(", ");
    if spec.subnets.len() < 2 {
        return Err(Error::invalid(
            "load_balancer.subnets",
            format!("[{}] ({} subnet)", ids(&spec.subnets), spec.subnets.len()),
            two_zones,
        ));
    }
    let mut zones: Vec<(String, &SubnetRef)> = Vec::new();
    let mut vpcs = BTreeSet::new();
    for (i, subnet) in spec.subnets.iter().enumerate() {
        let found = ec2.subnets.iter().find(|s| s.id == subnet.id);
        if ec2.loaded && is_known(&subnet.id) && found.is_none() {
            return Err(Error::invalid(
                format!("load_balancer.subnets[{i}]"),
                format!("{:?}", subnet.id),
                "an existing subnet of this region",
            ));
        }
        let az = subnet.az.clone().or_else(|| found.map(|s| s.az.clone()));
        if let Some(vpc) = subnet.vpc_id.clone().or_else(|| found.map(|s| s.vpc_id.clone())).filter(|v| is_known(v)) {
            vpcs.insert(vpc);
        }
        let Some(az) = az else { continue };
        if let Some((_, other)) = zones.iter().find(|(z, _)| *z == az) {
            return Err(Error::invalid(
                "load_balancer.subnets",
                format!("[{}] ({} and {} are both in {az})", ids(&spec.subnets), other.id, subnet.id),
                two_zones,
            ));
        }
        zones.push((az, subnet));
    }
    if vpcs.len() > 1 {
        return Err(Error::invalid(
            "load_balancer.subnets",
            format!("[{}] (in {})", ids(&spec.subnets), vpcs.iter().cloned().collect::<Vec<_>>().join(" and ")),
            "subnets of one VPC",
        ));
    }
    let vpc = vpcs.into_iter().next();
    if spec.security_groups.is_empty() || spec.security_groups.len() > 5 {
        let groups: Vec<String> = spec.security_groups.iter().map(|g| g.id.clone()).collect();
        return Err(Error::invalid(
            "load_balancer.security_groups",
            format!("[{}]", groups.join(", ")),
            "one to five security groups (an Application Load Balancer without one admits nothing)",
        ));
    }
    for (i, group) in spec.security_groups.iter().enumerate() {
        if let (Some(lb_vpc), Some(group_vpc)) = (&vpc, group.vpc_id.as_ref().filter(|v| is_known(v)))
            && lb_vpc != group_vpc
        {
            return Err(Error::invalid(
                format!("load_balancer.security_groups[{i}]"),
                format!("{} (in {group_vpc})", group.id),
                format!("a security group of the subnets' VPC {lb_vpc}"),
            ));
        }
    }
    Ok(vpc)
}

fn set_diffs(field: &str, current: &[String], wanted: &[String]) -> Vec<FieldDiff> {
    let current: BTreeSet<&String> = current.iter().collect();
    let wanted_set: BTreeSet<&String> = wanted.iter().collect();
    let unknown = wanted.iter().filter(|w| !is_known(w)).map(|w| FieldDiff::added(field, w));
    let added = wanted_set.difference(&current).filter(|w| is_known(w)).map(|w| FieldDiff::added(field, w));
    let removed = current.difference(&wanted_set).map(|c| FieldDiff::removed(field, c));
    added.chain(unknown).chain(removed).collect()
}

/// Converges an Application Load Balancer: found by name and stack tag, created when missing,
/// its subnets and security groups set in place when they drifted.
pub fn ensure_load_balancer(pass: &Pass, spec: &LoadBalancerSpec) -> Result<LoadBalancer> {
    let stack = pass.stack()?;
    let snapshot = pass.snapshot()?;
    let (existing, vpc) = {
        let state = snapshot.borrow();
        let vpc = validate_load_balancer(spec, &state.ec2)?;
        if let Some(foreign) = state.elbv2.foreign("load_balancer", &spec.name) {
            return Err(not_ours("load balancer", foreign, &stack));
        }
        (state.elbv2.load_balancers.iter().find(|l| l.name == spec.name).cloned(), vpc)
    };
    let mut subnets: Vec<String> = spec.subnets.iter().map(|s| s.id.clone()).collect();
    subnets.sort();
    let mut groups: Vec<String> = spec.security_groups.iter().map(|g| g.id.clone()).collect();
    groups.sort();
    groups.dedup();
    let summary = |lb: &LoadBalancer| format!("{}, {}", lb.dns_name, lb.scheme);

    let Some(mut lb) = existing else {
        let mut lb = LoadBalancer {
            arn: UNKNOWN.into(),
            name: spec.name.clone(),
            dns_name: UNKNOWN.into(),
            scheme: spec.scheme.clone(),
            lb_type: "application".into(),
            vpc_id: vpc.unwrap_or_else(|| UNKNOWN.into()),
            subnets,
            security_groups: groups,
            stack: Some(stack.clone()),
        };
        if pass.mode.applies() {
            lb = create_load_balancer(pass, &lb, &stack)?;
            snapshot.borrow_mut().elbv2.load_balancers.push(lb.clone());
        }
        pass.log.record(Change::new(ChangeKind::Create, "load_balancer", &spec.name, summary(&lb)));
        return Ok(lb);
    };

    let replace = |what: String| {
        Error::conflict(
            format!(
                "load balancer {} {what}; AWS cannot change that in place, the load balancer needs replacement",
                spec.name
            ),
            Some("give the new load balancer another name, then `deckhand destroy` or delete the old one"),
        )
    };
    if lb.lb_type != "application" {
        return Err(replace(format!("is a {} load balancer, not an application load balancer", lb.lb_type)));
    }
    if lb.scheme != spec.scheme {
        return Err(replace(format!("is {}, the script asks for {}", lb.scheme, spec.scheme)));
    }
    if let Some(vpc) = vpc.filter(|v| *v != lb.vpc_id) {
        return Err(replace(format!("is in {}, the script's subnets are in {vpc}", lb.vpc_id)));
    }
    let subnet_diffs = set_diffs("subnets", &lb.subnets, &subnets);
    let group_diffs = set_diffs("security_groups", &lb.security_groups, &groups);
    if subnet_diffs.is_empty() && group_diffs.is_empty() {
        pass.log.record(Change::new(ChangeKind::Unchanged, "load_balancer", &spec.name, summary(&lb)));
        return Ok(lb);
    }
    if pass.mode.applies() {
        let arn = lb.arn.as_str();
        pass.apply(async |aws| {
            if !group_diffs.is_empty() {
                aws.elbv2
                    .set_security_groups()
                    .load_balancer_arn(arn)
                    .set_security_groups(Some(groups.clone()))
                    .send()
                    .await
                    .map_err(|e| aws_error("SetSecurityGroups", e))?;
            }
            if !subnet_diffs.is_empty() {
                aws.elbv2
                    .set_subnets()
                    .load_balancer_arn(arn)
                    .set_subnets(Some(subnets.clone()))
                    .send()
                    .await
                    .map_err(|e| aws_error("SetSubnets", e))?;
            }
            Ok(())
        })?;
        lb.subnets = subnets;
        lb.security_groups = groups;
        let state = &mut snapshot.borrow_mut().elbv2;
        state.load_balancers.retain(|l| l.arn != lb.arn);
        state.load_balancers.push(lb.clone());
    }
    let diffs = subnet_diffs.into_iter().chain(group_diffs).collect();
    pass.log.record(Change::new(ChangeKind::Update, "load_balancer", &spec.name, summary(&lb)).with_diffs(diffs));
    Ok(lb)
}

fn create_load_balancer(pass: &Pass, wanted: &LoadBalancer, stack: &str) -> Result<LoadBalancer> {
    let created = pass.apply(async |aws| {
        aws.elbv2
            .create_load_balancer()
            .name(&wanted.name)
            .r#type(LoadBalancerTypeEnum::Application)
            .scheme(LoadBalancerSchemeEnum::from(wanted.scheme.as_str()))
            .set_subnets(Some(wanted.subnets.clone()))
            .set_security_groups(Some(wanted.security_groups.clone()))
            .set_tags(Some(stack_tags(stack, &wanted.name)))
            .send()
            .await
            .map_err(|e| aws_error("CreateLoadBalancer", e))
    });
    match created {
        Ok(out) => {
            let lb = out.load_balancers().first().map(load_balancer_from).ok_or_else(|| {
                Error::conflict(format!("CreateLoadBalancer returned no load balancer for {}", wanted.name), None)
            })?;
            Ok(LoadBalancer { stack: Some(stack.to_string()), ..lb })
        }
        Err(err) if err.aws_code() == Some("DuplicateLoadBalancerName") => {
            // Created meanwhile (e.g. by a concurrent run)? Adopt it only if it is ours.
            let found = pass.apply(async |aws| {
                let out = aws
                    .elbv2
                    .describe_load_balancers()
                    .names(&wanted.name)
                    .send()
                    .await
                    .map_err(|e| aws_error("DescribeLoadBalancers", e))?;
                let lbs: Vec<LoadBalancer> = out.load_balancers().iter().map(load_balancer_from).collect();
                let arns: Vec<String> = lbs.iter().map(|l| l.arn.clone()).collect();
                Ok((lbs, tags(aws, &arns).await?))
            })?;
            let (lbs, tags) = found;
            let lb = lbs.into_iter().next().ok_or(err)?;
            let owner = tags.get(&lb.arn).and_then(|t| t.get(STACK_TAG)).cloned();
            if owner.as_deref() == Some(stack) {
                return Ok(LoadBalancer { stack: owner, ..lb });
            }
            let foreign = Foreign { kind: "load_balancer", name: lb.name, arn: lb.arn, stack: owner };
            Err(not_ours("load balancer", &foreign, stack))
        }
        Err(err) => Err(err),
    }
}

/// Checks a target group spec the way AWS would, before any call.
fn validate_target_group(spec: &TargetGroupSpec) -> Result<()> {
    validate_elb_name("target_group.name", &spec.name)?;
    if !(1..=65535).contains(&spec.port) {
        return Err(Error::invalid("target_group.port", spec.port, "a port from 1 to 65535"));
    }
    if spec.protocol != "HTTP" && spec.protocol != "HTTPS" {
        return Err(Error::invalid(
            "target_group.protocol",
            format!("{:?}", spec.protocol),
            "\"HTTP\" or \"HTTPS\" (what an Application Load Balancer speaks to its targets)",
        ));
    }
    if spec.target_type != "ip" && spec.target_type != "instance" {
        return Err(Error::invalid(
            "target_group.target_type",
            format!("{:?}", spec.target_type),
            "\"ip\" (Fargate and other awsvpc tasks) or \"instance\"",
        ));
    }
    let hc = &spec.health_check;
    let path_ok = hc.path.starts_with('/') && hc.path.len() <= 1024 && hc.path.chars().all(|c| c.is_ascii_graphic());
    if !path_ok {
        return Err(Error::invalid(
            "target_group.health_check.path",
            format!("{:?}", hc.path),
            "a path starting with \"/\", up to 1024 characters, without spaces",
        ));
    }
    let range = |key: &str, value: i32, low: i32, high: i32, unit: &str| {
        if (low..=high).contains(&value) {
            Ok(())
        } else {
            Err(Error::invalid(key, value, format!("{low} to {high}{unit}")))
        }
    };
    range("target_group.health_check.interval", hc.interval, 5, 300, " seconds")?;
    range("target_group.health_check.timeout", hc.timeout, 2, 120, " seconds")?;
    if hc.timeout >= hc.interval {
        return Err(Error::invalid(
            "target_group.health_check.timeout",
            hc.timeout,
            format!("less than the interval ({} seconds)", hc.interval),
        ));
    }
    range("target_group.health_check.healthy", hc.healthy, 2, 10, " consecutive checks")?;
    range("target_group.health_check.unhealthy", hc.unhealthy, 2, 10, " consecutive checks")?;
    validate_matcher(&hc.matcher)?;
    range("target_group.deregistration_delay", spec.deregistration_delay, 0, 3600, " seconds")
}

fn validate_matcher(matcher: &str) -> Result<()> {
    let code = |text: &str| text.len() == 3 && text.parse::<u16>().is_ok_and(|c| (200..=499).contains(&c));
    let ok = !matcher.is_empty()
        && matcher.split(',').all(|part| match part.split_once('-') {
            Some((a, b)) => code(a) && code(b) && a < b,
            None => code(part),
        });
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "target_group.health_check.matcher",
            format!("{matcher:?}"),
            "HTTP codes from 200 to 499: one (\"200\"), a range (\"200-299\") or a list (\"200,302\")",
        ))
    }
}

fn health_check_diffs(current: &HealthCheck, wanted: &HealthCheck) -> Vec<FieldDiff> {
    let mut diffs = Vec::new();
    let mut field = |name: &str, a: String, b: String| {
        if a != b {
            diffs.push(FieldDiff::changed(name, a, b));
        }
    };
    field("health_check.path", current.path.clone(), wanted.path.clone());
    field("health_check.interval", current.interval.to_string(), wanted.interval.to_string());
    field("health_check.timeout", current.timeout.to_string(), wanted.timeout.to_string());
    field("health_check.healthy", current.healthy.to_string(), wanted.healthy.to_string());
    field("health_check.unhealthy", current.unhealthy.to_string(), wanted.unhealthy.to_string());
    field("health_check.matcher", current.matcher.clone(), wanted.matcher.clone());
    diffs
}

/// Converges a target group: found by name and stack tag, created when missing, its health check
/// and deregistration delay modified in place; port, protocol, VPC and target type cannot change.
pub fn ensure_target_group(pass: &Pass, spec: &TargetGroupSpec) -> Result<TargetGroup> {
    validate_target_group(spec)?;
    let stack = pass.stack()?;
    let snapshot = pass.snapshot()?;
    let existing = {
        let state = &snapshot.borrow().elbv2;
        if let Some(foreign) = state.foreign("target_group", &spec.name) {
            return Err(not_ours("target group", foreign, &stack));
        }
        state.target_groups.iter().find(|t| t.name == spec.name).cloned()
    };
    let summary = |tg: &TargetGroup| format!("{}:{}, {}", tg.protocol, tg.port, tg.target_type);
    let Some(mut tg) = existing else {
        let mut tg = TargetGroup {
            arn: UNKNOWN.into(),
            name: spec.name.clone(),
            port: spec.port,
            protocol: spec.protocol.clone(),
            target_type: spec.target_type.clone(),
            vpc_id: spec.vpc_id.clone(),
            health_check: spec.health_check.clone(),
            deregistration_delay: spec.deregistration_delay,
            stack: Some(stack.clone()),
        };
        if pass.mode.applies() {
            tg.arn = create_target_group(pass, spec, &stack)?;
            if spec.deregistration_delay != DEFAULT_DEREGISTRATION_DELAY {
                set_deregistration_delay(pass, &tg.arn, spec.deregistration_delay)?;
            }
            snapshot.borrow_mut().elbv2.target_groups.push(tg.clone());
        }
        pass.log.record(Change::new(ChangeKind::Create, "target_group", &spec.name, summary(&tg)));
        return Ok(tg);
    };

    let vpc_differs = is_known(&spec.vpc_id) && tg.vpc_id != spec.vpc_id;
    if tg.port != spec.port || tg.protocol != spec.protocol || tg.target_type != spec.target_type || vpc_differs {
        return Err(Error::conflict(
            format!(
                "target group {} exists as {}:{} ({}) in {}; the script asks for {}:{} ({}) in {}. AWS cannot change a target group's port, protocol, target type or VPC in place: the target group needs replacement",
                spec.name,
                tg.protocol,
                tg.port,
                tg.target_type,
                tg.vpc_id,
                spec.protocol,
                spec.port,
                spec.target_type,
                spec.vpc_id
            ),
            Some(
                "give the new target group another name (e.g. add -2) and point the listener at it; then delete the old one",
            ),
        ));
    }
    let health_diffs = health_check_diffs(&tg.health_check, &spec.health_check);
    let delay_differs = tg.deregistration_delay != spec.deregistration_delay;
    if health_diffs.is_empty() && !delay_differs {
        pass.log.record(Change::new(ChangeKind::Unchanged, "target_group", &spec.name, summary(&tg)));
        return Ok(tg);
    }
    let mut diffs = health_diffs.clone();
    if delay_differs {
        diffs.push(FieldDiff::changed("deregistration_delay", tg.deregistration_delay, spec.deregistration_delay));
    }
    if pass.mode.applies() {
        if !health_diffs.is_empty() {
            let hc = &spec.health_check;
            let arn = tg.arn.as_str();
            pass.apply(async |aws| {
                aws.elbv2
                    .modify_target_group()
                    .target_group_arn(arn)
                    .health_check_path(&hc.path)
                    .health_check_interval_seconds(hc.interval)
                    .health_check_timeout_seconds(hc.timeout)
                    .healthy_threshold_count(hc.healthy)
                    .unhealthy_threshold_count(hc.unhealthy)
                    .matcher(Matcher::builder().http_code(&hc.matcher).build())
                    .send()
                    .await
                    .map_err(|e| aws_error("ModifyTargetGroup", e))
            })?;
        }
        if delay_differs {
            set_deregistration_delay(pass, &tg.arn, spec.deregistration_delay)?;
        }
        tg.health_check = spec.health_check.clone();
        tg.deregistration_delay = spec.deregistration_delay;
        let state = &mut snapshot.borrow_mut().elbv2;
        state.target_groups.retain(|t| t.arn != tg.arn);
        state.target_groups.push(tg.clone());
    }
    pass.log.record(Change::new(ChangeKind::Update, "target_group", &spec.name, summary(&tg)).with_diffs(diffs));
    Ok(tg)
}

fn create_target_group(pass: &Pass, spec: &TargetGroupSpec, stack: &str) -> Result<String> {
    let hc = &spec.health_check;
    let created = pass.apply(async |aws| {
        aws.elbv2
            .create_target_group()
            .name(&spec.name)
            .protocol(ProtocolEnum::from(spec.protocol.as_str()))
            .port(spec.port)
            .vpc_id(&spec.vpc_id)
            .target_type(TargetTypeEnum::from(spec.target_type.as_str()))
            .health_check_path(&hc.path)
            .health_check_interval_seconds(hc.interval)
            .health_check_timeout_seconds(hc.timeout)
            .healthy_threshold_count(hc.healthy)
            .unhealthy_threshold_count(hc.unhealthy)
            .matcher(Matcher::builder().http_code(&hc.matcher).build())
            .set_tags(Some(stack_tags(stack, &spec.name)))
            .send()
            .await
            .map_err(|e| aws_error("CreateTargetGroup", e))
    });
    match created {
        Ok(out) => Ok(out.target_groups().first().and_then(|t| t.target_group_arn()).unwrap_or_default().to_string()),
        Err(err) if err.aws_code() == Some("DuplicateTargetGroupName") => {
            // Created meanwhile? Adopt it only if it is ours (its settings converge on the next run).
            let found = pass.apply(async |aws| {
                let out = aws
                    .elbv2
                    .describe_target_groups()
                    .names(&spec.name)
                    .send()
                    .await
                    .map_err(|e| aws_error("DescribeTargetGroups", e))?;
                let arn = out.target_groups().first().and_then(|t| t.target_group_arn()).map(str::to_string);
                let tags = tags(aws, &arn.iter().cloned().collect::<Vec<_>>()).await?;
                Ok(arn.map(|a| (tags.get(&a).and_then(|t| t.get(STACK_TAG)).cloned(), a)))
            })?;
            match found {
                Some((Some(owner), arn)) if owner == stack => Ok(arn),
                Some((owner, arn)) => {
                    let foreign = Foreign { kind: "target_group", name: spec.name.clone(), arn, stack: owner };
                    Err(not_ours("target group", &foreign, stack))
                }
                None => Err(err),
            }
        }
        Err(err) => Err(err),
    }
}

fn set_deregistration_delay(pass: &Pass, arn: &str, seconds: i32) -> Result<()> {
    pass.apply(async |aws| {
        aws.elbv2
            .modify_target_group_attributes()
            .target_group_arn(arn)
            .attributes(
                TargetGroupAttribute::builder().key(DEREGISTRATION_DELAY_KEY).value(seconds.to_string()).build(),
            )
            .send()
            .await
            .map_err(|e| aws_error("ModifyTargetGroupAttributes", e))
    })?;
    Ok(())
}

/// Checks a listener spec the way AWS would, before any call.
fn validate_listener(pass: &Pass, spec: &ListenerSpec) -> Result<()> {
    if !(1..=65535).contains(&spec.port) {
        return Err(Error::invalid("listener.port", spec.port, "a port from 1 to 65535"));
    }
    if spec.protocol != "HTTP" && spec.protocol != "HTTPS" {
        return Err(Error::invalid(
            "listener.protocol",
            format!("{:?}", spec.protocol),
            "\"HTTP\" or \"HTTPS\" (what an Application Load Balancer listens for)",
        ));
    }
    let https = spec.protocol == "HTTPS";
    match (&spec.certificate, https) {
        (None, true) => {
            return Err(Error::MissingKey {
                key: "certificate".into(),
                context: "listener()".into(),
                what: "an HTTPS listener needs the ARN of an ACM certificate for its domain".into(),
            });
        }
        (Some(cert), false) => {
            return Err(Error::invalid(
                "listener.certificate",
                format!("{cert:?}"),
                "no certificate on an HTTP listener; set protocol: \"HTTPS\" to use it",
            ));
        }
        (Some(cert), true) => validate_certificate(pass, cert)?,
        (None, false) => {}
    }
    if let Some(policy) = &spec.ssl_policy {
        if !https {
            return Err(Error::invalid(
                "listener.ssl_policy",
                format!("{policy:?}"),
                "no TLS policy on an HTTP listener; it applies to HTTPS only",
            ));
        }
        if !policy.starts_with("ELBSecurityPolicy-") {
            return Err(Error::invalid(
                "listener.ssl_policy",
                format!("{policy:?}"),
                format!("a predefined ELB security policy, such as \"{DEFAULT_SSL_POLICY}\""),
            ));
        }
    }
    if let ListenerAction::Redirect { protocol, port, status } = &spec.action {
        if protocol != "HTTP" && protocol != "HTTPS" {
            return Err(Error::invalid("listener.redirect.protocol", format!("{protocol:?}"), "\"HTTP\" or \"HTTPS\""));
        }
        if !(1..=65535).contains(port) {
            return Err(Error::invalid("listener.redirect.port", port, "a port from 1 to 65535"));
        }
        if *status != 301 && *status != 302 {
            return Err(Error::invalid("listener.redirect.status", status, "301 (moved permanently) or 302 (found)"));
        }
        if *port == spec.port && *protocol == spec.protocol {
            return Err(Error::invalid(
                "listener.redirect",
                format!("{protocol}:{port}"),
                "another port or protocol than the listener's own (this would redirect to itself forever)",
            ));
        }
    }
    if let (Some(lb_vpc), Some(tg_vpc)) = (&spec.load_balancer.vpc_id, &spec.target_group_vpc)
        && is_known(lb_vpc)
        && is_known(tg_vpc)
        && lb_vpc != tg_vpc
    {
        return Err(Error::invalid(
            "listener.forward",
            format!("{} (a target group in {tg_vpc})", spec.action),
            format!("a target group in the load balancer's VPC {lb_vpc}"),
        ));
    }
    Ok(())
}

fn validate_certificate(pass: &Pass, arn: &str) -> Result<()> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let shape_ok = parts.len() == 6
        && parts[0] == "arn"
        && ((parts[2] == "acm" && parts[5].starts_with("certificate/"))
            || (parts[2] == "iam" && parts[5].starts_with("server-certificate/")));
    if !shape_ok {
        return Err(Error::invalid(
            "listener.certificate",
            format!("{arn:?}"),
            "the ARN of an ACM certificate (arn:aws:acm:<region>:<account>:certificate/<id>) or an IAM server certificate",
        ));
    }
    if let Some(region) = pass.region()
        && parts[2] == "acm"
        && parts[3] != region
    {
        return Err(Error::invalid(
            "listener.certificate",
            format!("{arn:?}"),
            format!("an ACM certificate of region {region} (a load balancer uses certificates of its own region)"),
        ));
    }
    Ok(())
}

fn listener_diffs(current: &Listener, spec: &ListenerSpec, ssl_policy: Option<&str>) -> Vec<FieldDiff> {
    let mut diffs = Vec::new();
    if current.protocol != spec.protocol {
        diffs.push(FieldDiff::changed("protocol", &current.protocol, &spec.protocol));
    }
    if !current.action.same_as(&spec.action) {
        diffs.push(FieldDiff::changed("default_action", &current.action, &spec.action));
    }
    if spec.protocol == "HTTPS" {
        let show = |v: Option<&str>| v.unwrap_or("(none)").to_string();
        if current.certificate.as_deref() != spec.certificate.as_deref() {
            diffs.push(FieldDiff::changed(
                "certificate",
                show(current.certificate.as_deref()),
                show(spec.certificate.as_deref()),
            ));
        }
        if current.ssl_policy.as_deref() != ssl_policy {
            diffs.push(FieldDiff::changed("ssl_policy", show(current.ssl_policy.as_deref()), show(ssl_policy)));
        }
    }
    diffs
}

fn sdk_action(action: &ListenerAction) -> Action {
    match action {
        ListenerAction::Forward { arn, .. } => {
            Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(arn).build()
        }
        ListenerAction::Redirect { protocol, port, status } => Action::builder()
            .r#type(ActionTypeEnum::Redirect)
            .redirect_config(
                RedirectActionConfig::builder()
                    .protocol(protocol)
                    .port(port.to_string())
                    .host("#{host}")
                    .path("/#{path}")
                    .query("#{query}")
                    .status_code(if *status == 301 {
                        RedirectActionStatusCodeEnum::Http301
                    } else {
                        RedirectActionStatusCodeEnum::Http302
                    })
                    .build(),
            )
            .build(),
        ListenerAction::Other(_) => Action::builder().build(),
    }
}

/// Converges a listener: found by port on its load balancer, created when missing, its protocol,
/// default action, certificate and TLS policy modified in place.
pub fn ensure_listener(pass: &Pass, spec: &ListenerSpec) -> Result<Listener> {
    validate_listener(pass, spec)?;
    let stack = pass.stack()?;
    let snapshot = pass.snapshot()?;
    let lb = &spec.load_balancer;
    let name = format!("{}:{}", lb.name, spec.port);
    let https = spec.protocol == "HTTPS";
    let ssl_policy = https.then(|| spec.ssl_policy.clone().unwrap_or_else(|| DEFAULT_SSL_POLICY.to_string()));
    let summary = |l: &Listener| format!("{}, {}", l.protocol, l.action);
    let existing = {
        let state = &snapshot.borrow().elbv2;
        if state.loaded && is_known(&lb.arn) && !state.load_balancers.iter().any(|l| l.arn == lb.arn) {
            return Err(Error::conflict(
                format!("load balancer {} ({}) is not part of stack {stack}", lb.name, lb.arn),
                Some(
                    "deckhand manages listeners only on the load balancers of its stack: pass a load_balancer() handle",
                ),
            ));
        }
        state.listeners.iter().find(|l| l.load_balancer_arn == lb.arn && l.port == spec.port).cloned()
    };
    let Some(mut listener) = existing else {
        let mut listener = Listener {
            arn: UNKNOWN.into(),
            load_balancer_arn: lb.arn.clone(),
            port: spec.port,
            protocol: spec.protocol.clone(),
            action: spec.action.clone(),
            certificate: spec.certificate.clone(),
            ssl_policy: ssl_policy.clone(),
        };
        if pass.mode.applies() {
            listener.arn = create_listener(pass, spec, ssl_policy.as_deref(), &stack, &name)?;
            snapshot.borrow_mut().elbv2.listeners.push(listener.clone());
        }
        pass.log.record(Change::new(ChangeKind::Create, "listener", &name, summary(&listener)));
        return Ok(listener);
    };
    let diffs = listener_diffs(&listener, spec, ssl_policy.as_deref());
    if diffs.is_empty() {
        pass.log.record(Change::new(ChangeKind::Unchanged, "listener", &name, summary(&listener)));
        return Ok(listener);
    }
    if pass.mode.applies() {
        let arn = listener.arn.as_str();
        pass.apply(async |aws| {
            let mut modify = aws
                .elbv2
                .modify_listener()
                .listener_arn(arn)
                .protocol(ProtocolEnum::from(spec.protocol.as_str()))
                .default_actions(sdk_action(&spec.action));
            if let (Some(cert), Some(policy)) = (&spec.certificate, &ssl_policy) {
                modify = modify.certificates(Certificate::builder().certificate_arn(cert).build()).ssl_policy(policy);
            }
            modify.send().await.map_err(|e| aws_error("ModifyListener", e))
        })?;
        listener.protocol = spec.protocol.clone();
        listener.action = spec.action.clone();
        listener.certificate = spec.certificate.clone();
        listener.ssl_policy = ssl_policy;
        let state = &mut snapshot.borrow_mut().elbv2;
        state.listeners.retain(|l| l.arn != listener.arn);
        state.listeners.push(listener.clone());
    }
    pass.log.record(Change::new(ChangeKind::Update, "listener", &name, summary(&listener)).with_diffs(diffs));
    Ok(listener)
}

fn create_listener(
    pass: &Pass,
    spec: &ListenerSpec,
    ssl_policy: Option<&str>,
    stack: &str,
    name: &str,
) -> Result<String> {
    if !is_known(&spec.load_balancer.arn) {
        return Err(Error::conflict(
            format!("internal error: listener {name} on a load balancer that was not created"),
            None,
        ));
    }
    let out = pass.apply(async |aws| {
        let mut create = aws
            .elbv2
            .create_listener()
            .load_balancer_arn(&spec.load_balancer.arn)
            .port(spec.port)
            .protocol(ProtocolEnum::from(spec.protocol.as_str()))
            .default_actions(sdk_action(&spec.action))
            .set_tags(Some(stack_tags(stack, name)));
        if let (Some(cert), Some(policy)) = (&spec.certificate, ssl_policy) {
            create = create.certificates(Certificate::builder().certificate_arn(cert).build()).ssl_policy(policy);
        }
        create.send().await.map_err(|e| aws_error("CreateListener", e))
    })?;
    Ok(out.listeners().first().and_then(|l| l.listener_arn()).unwrap_or_default().to_string())
}

// Deletion (deckhand destroy)

/// Deletes a listener.
pub async fn delete_listener(aws: &Aws, arn: &str) -> Result<()> {
    aws.elbv2.delete_listener().listener_arn(arn).send().await.map(drop).map_err(|e| aws_error("DeleteListener", e))
}

/// Deletes a load balancer (with any listener left); it goes away in the background (see
/// [`wait_load_balancer_deleted`]).
pub async fn delete_load_balancer(aws: &Aws, arn: &str) -> Result<()> {
    aws.elbv2
        .delete_load_balancer()
        .load_balancer_arn(arn)
        .send()
        .await
        .map(drop)
        .map_err(|e| aws_error("DeleteLoadBalancer", e))
}

/// Waits (SDK waiter) until a deleted load balancer is gone; at most 10 minutes.
pub async fn wait_load_balancer_deleted(aws: &Aws, arn: &str) -> Result<()> {
    use aws_sdk_elasticloadbalancingv2::client::Waiters;
    aws.elbv2
        .wait_until_load_balancers_deleted()
        .load_balancer_arns(arn)
        .wait(std::time::Duration::from_secs(600))
        .await
        .map(drop)
        .map_err(|e| {
            Error::conflict(
                format!(
                    "load balancer {arn} was not deleted in time: {}",
                    aws_smithy_types::error::display::DisplayErrorContext(&e)
                ),
                None,
            )
        })
}

/// Deletes a target group (fails with `ResourceInUse` while a listener or rule forwards to it).
pub async fn delete_target_group(aws: &Aws, arn: &str) -> Result<()> {
    aws.elbv2
        .delete_target_group()
        .target_group_arn(arn)
        .send()
        .await
        .map(drop)
        .map_err(|e| aws_error("DeleteTargetGroup", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elb_names_follow_aws_rules() {
        assert!(validate_elb_name("n", "my-app-1").is_ok());
        assert!(validate_elb_name("n", "").is_err());
        assert!(validate_elb_name("n", "-app").is_err());
        assert!(validate_elb_name("n", "app-").is_err());
        assert!(validate_elb_name("n", "my_app").is_err());
        let err = validate_elb_name("n", &"a".repeat(33)).unwrap_err().to_string();
        assert!(err.contains("(it has 33 characters)"), "{err}");
    }

    #[test]
    fn matchers_take_codes_ranges_and_lists() {
        for ok in ["200", "200-299", "200,302", "200-299,404"] {
            assert!(validate_matcher(ok).is_ok(), "{ok}");
        }
        for bad in ["", "20", "600", "299-200", "200,", "abc", "200 - 299"] {
            assert!(validate_matcher(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn actions_compare_by_target_group_arn_and_redirect_target() {
        let forward = |arn: &str| ListenerAction::Forward { arn: arn.into(), name: "web".into() };
        assert!(forward("arn:1").same_as(&forward("arn:1")));
        assert!(!forward("arn:1").same_as(&forward("arn:2")));
        assert!(!forward(UNKNOWN).same_as(&forward(UNKNOWN)));
        let redirect = ListenerAction::Redirect { protocol: "HTTPS".into(), port: 443, status: 301 };
        assert!(redirect.same_as(&redirect.clone()));
        assert_eq!(redirect.to_string(), "redirect HTTPS:443 (301)");
        assert_eq!(
            FieldDiff::changed("default_action", forward("arn:1"), &redirect).to_string(),
            "default_action: forward web -> redirect HTTPS:443 (301)"
        );
    }

    #[test]
    fn set_diffs_show_unknown_ids_as_added() {
        let diffs = set_diffs("subnets", &["subnet-1".into(), "subnet-2".into()], &["subnet-1".into(), UNKNOWN.into()]);
        let text: Vec<String> = diffs.iter().map(ToString::to_string).collect();
        assert_eq!(text, ["subnets: + (known after apply)", "subnets: - subnet-2"]);
    }
}
