//! Target groups: types, reads, validation, and how one converges.

use aws_sdk_elasticloadbalancingv2::types::{Matcher, ProtocolEnum, TargetGroupAttribute, TargetTypeEnum};
use futures_util::future::LocalBoxFuture;

use super::{Elbv2State, Which, describe_existing, stack_tags, stack_tags_of, validate_elb_name, with_state};
use crate::aws::Pass;
use crate::aws::Snapshot;
use crate::aws::ec2::check_port;
use crate::converge::{Created, Drift, Resource};
use crate::error::{Error, Result, aws_error};
use crate::plan::{FieldDiff, UNKNOWN, is_known};
use crate::runtime::Aws;
use crate::tagged::Keepable;

/// AWS's deregistration delay for a new target group, in seconds.
pub const DEFAULT_DEREGISTRATION_DELAY: i32 = 300;

const DEREGISTRATION_DELAY_KEY: &str = "deregistration_delay.timeout_seconds";

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

/// Which parts of a target group an in-place update sets.
#[derive(Debug, Default)]
pub struct TargetGroupUpdate {
    /// ModifyTargetGroup.
    health_check: bool,
    /// ModifyTargetGroupAttributes.
    deregistration_delay: bool,
}

fn target_group_from(tg: &aws_sdk_elasticloadbalancingv2::types::TargetGroup) -> Result<TargetGroup> {
    const OP: &str = "DescribeTargetGroups";
    let defaults = HealthCheck::default();
    Ok(TargetGroup {
        arn: tg.target_group_arn().ok_or_else(|| Error::missing(OP, "TargetGroupArn"))?.to_string(),
        name: tg.target_group_name().ok_or_else(|| Error::missing(OP, "TargetGroupName"))?.to_string(),
        // Lambda target groups have no port, protocol or VPC.
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
    })
}

/// Every target group of the region, without tags or attributes (for queries by name).
pub async fn target_groups(aws: &Aws) -> Result<Vec<TargetGroup>> {
    let mut pages = aws.elbv2.describe_target_groups().page_size(400).into_paginator().items().send();
    let mut found = Vec::new();
    while let Some(tg) = pages.next().await {
        found.push(target_group_from(&tg.map_err(|e| aws_error("DescribeTargetGroups", e))?)?);
    }
    Ok(found)
}

/// DescribeTargetGroups by names or ARNs (at most 20); `None` when one of them does not exist.
async fn describe(aws: &Aws, which: Which<'_>) -> Result<Option<Vec<TargetGroup>>> {
    let request = match which {
        // An empty list would describe every target group of the region.
        Which::Names([]) | Which::Arns([]) => return Ok(Some(Vec::new())),
        Which::Names(names) => aws.elbv2.describe_target_groups().set_names(Some(names.to_vec())),
        Which::Arns(arns) => aws.elbv2.describe_target_groups().set_target_group_arns(Some(arns.to_vec())),
    };
    match request.send().await {
        Ok(out) => out.target_groups().iter().map(target_group_from).collect::<Result<Vec<_>>>().map(Some),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_target_group_not_found_exception()) => Ok(None),
        Err(e) => Err(aws_error("DescribeTargetGroups", e)),
    }
}

/// The target groups named `names` that exist (any stack's or none's, without tags), 20 per request.
pub(super) async fn describe_by_names(aws: &Aws, names: &[String]) -> Result<Vec<TargetGroup>> {
    describe_existing(names, async |batch: &[String]| describe(aws, Which::Names(batch)).await).await
}

/// The target groups of `arns` that exist, 20 per request (without their attributes).
pub(super) async fn describe_by_arns(aws: &Aws, arns: &[String]) -> Result<Vec<TargetGroup>> {
    describe_existing(arns, async |batch: &[String]| describe(aws, Which::Arns(batch)).await).await
}

/// The target group named `name` (any stack's, or none's), with its stack tag and attributes.
async fn named(aws: &Aws, name: &str) -> Result<Option<TargetGroup>> {
    let found = describe(aws, Which::Names(&[name.to_string()])).await?;
    let Some(mut tg) = found.and_then(|found| found.into_iter().next()) else { return Ok(None) };
    let (stacks, delay) =
        tokio::try_join!(stack_tags_of(aws, std::slice::from_ref(&tg.arn)), deregistration_delay(aws, &tg.arn))?;
    tg.stack = stacks.get(&tg.arn).cloned();
    tg.deregistration_delay = delay;
    Ok(Some(tg))
}

/// A target group's deregistration delay (DescribeTargetGroupAttributes).
pub async fn deregistration_delay(aws: &Aws, arn: &str) -> Result<i32> {
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

/// Sets a target group's deregistration delay (ModifyTargetGroupAttributes).
async fn set_deregistration_delay(pass: &Pass, arn: &str, seconds: i32) -> Result<()> {
    pass.send(async |aws| {
        aws.elbv2
            .modify_target_group_attributes()
            .target_group_arn(arn)
            .attributes(
                TargetGroupAttribute::builder().key(DEREGISTRATION_DELAY_KEY).value(seconds.to_string()).build(),
            )
            .send()
            .await
            .map_err(|e| aws_error("ModifyTargetGroupAttributes", e))
    })
    .await?;
    Ok(())
}

/// Checks a target group spec the way AWS would, before any call.
fn validate_target_group(spec: &TargetGroupSpec) -> Result<()> {
    validate_elb_name("target_group.name", &spec.name)?;
    check_port("target_group.port", spec.port.into())?;
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

/// The stack's target group of this name, or the one looked up by name; `None` when unknown.
fn known(state: &Elbv2State, name: &str) -> Option<Option<TargetGroup>> {
    let ours = state.target_groups.iter().find(|t| t.name == name).cloned();
    ours.map(Some).or_else(|| state.target_groups_named.get(name).cloned())
}

/// Sets a health check's settings on a CreateTargetGroup or ModifyTargetGroup request (the two
/// take the same parameters).
macro_rules! with_health_check {
    ($request:expr, $hc:expr) => {{
        let hc: &HealthCheck = $hc;
        $request
            .health_check_path(&hc.path)
            .health_check_interval_seconds(hc.interval)
            .health_check_timeout_seconds(hc.timeout)
            .healthy_threshold_count(hc.healthy)
            .unhealthy_threshold_count(hc.unhealthy)
            .matcher(Matcher::builder().http_code(&hc.matcher).build())
    }};
}

/// A target group converges by name (names are unique in a region): created when missing, its
/// health check and deregistration delay modified in place; port, protocol, target type and VPC
/// are fixed.
impl Resource for TargetGroup {
    type Reads = Snapshot;
    type Spec = TargetGroupSpec;
    type Update = TargetGroupUpdate;
    const KIND: &'static str = "target_group";
    const FIXED: &'static [&'static str] = &["port", "protocol", "target type", "VPC"];

    fn keepable(live: &TargetGroup) -> Option<Keepable> {
        Some(Keepable::Elbv2(live.arn.clone()))
    }

    fn name(spec: &TargetGroupSpec) -> String {
        spec.name.clone()
    }

    fn locator(live: &TargetGroup) -> String {
        live.arn.clone()
    }

    fn validate(_pass: &Pass, spec: &TargetGroupSpec) -> Result<()> {
        validate_target_group(spec)
    }

    fn find(pass: &Pass, spec: &TargetGroupSpec) -> Result<Option<TargetGroup>> {
        if let Some(found) = with_state(pass, |s| known(s, &spec.name))? {
            return Ok(found);
        }
        // Not among the stack's: the name may be another stack's (or nobody's) target group, or
        // this stack's that the tagging index does not list yet. One lookup by name tells.
        let Some(found) = pass.read(async |aws| named(aws, &spec.name).await) else { return Ok(None) };
        let found = found?;
        pass.remember_read(|s| {
            s.elbv2.target_groups_named.insert(spec.name.clone(), found.clone());
        })?;
        Ok(found)
    }

    fn stack_of(live: &TargetGroup) -> Option<&str> {
        live.stack.as_deref()
    }

    fn planned(spec: &TargetGroupSpec, stack: &str) -> TargetGroup {
        TargetGroup {
            arn: UNKNOWN.into(),
            name: spec.name.clone(),
            port: spec.port,
            protocol: spec.protocol.clone(),
            target_type: spec.target_type.clone(),
            vpc_id: spec.vpc_id.clone(),
            health_check: spec.health_check.clone(),
            deregistration_delay: spec.deregistration_delay,
            stack: Some(stack.to_string()),
        }
    }

    fn create(pass: &Pass, spec: &TargetGroupSpec, stack: &str) -> Result<Created<TargetGroup>> {
        pass.block(create(pass, spec, stack))
    }

    fn create_beside(
        pass: &Pass,
        spec: TargetGroupSpec,
        stack: String,
    ) -> Option<LocalBoxFuture<'_, Result<Created<TargetGroup>>>> {
        Some(Box::pin(async move { create(pass, &spec, &stack).await }))
    }

    fn diff(live: &TargetGroup, spec: &TargetGroupSpec) -> Drift<TargetGroupUpdate> {
        let mut fixed = Vec::new();
        if live.port != spec.port {
            fixed.push(FieldDiff::changed("port", live.port, spec.port));
        }
        if live.protocol != spec.protocol {
            fixed.push(FieldDiff::changed("protocol", &live.protocol, &spec.protocol));
        }
        if live.target_type != spec.target_type {
            fixed.push(FieldDiff::changed("target_type", &live.target_type, &spec.target_type));
        }
        if is_known(&spec.vpc_id) && live.vpc_id != spec.vpc_id {
            fixed.push(FieldDiff::changed("vpc_id", &live.vpc_id, &spec.vpc_id));
        }
        let mut diffs = health_check_diffs(&live.health_check, &spec.health_check);
        let update = TargetGroupUpdate {
            health_check: !diffs.is_empty(),
            deregistration_delay: live.deregistration_delay != spec.deregistration_delay,
        };
        if update.deregistration_delay {
            diffs.push(FieldDiff::changed(
                "deregistration_delay",
                live.deregistration_delay,
                spec.deregistration_delay,
            ));
        }
        Drift { diffs, fixed, update }
    }

    fn update(
        pass: &Pass,
        live: &TargetGroup,
        spec: &TargetGroupSpec,
        update: &TargetGroupUpdate,
    ) -> Result<TargetGroup> {
        // The health check and the attributes are set by two requests that do not depend on each
        // other: together.
        let arn = live.arn.as_str();
        let health_check = async {
            if !update.health_check {
                return Ok(());
            }
            let hc = &spec.health_check;
            pass.send(async |aws| {
                with_health_check!(aws.elbv2.modify_target_group().target_group_arn(arn), hc)
                    .send()
                    .await
                    .map_err(|e| aws_error("ModifyTargetGroup", e))
            })
            .await?;
            Ok(())
        };
        let delay = async {
            match update.deregistration_delay {
                true => set_deregistration_delay(pass, arn, spec.deregistration_delay).await,
                false => Ok(()),
            }
        };
        pass.block(async { tokio::try_join!(health_check, delay) })?;
        Ok(Self::updated(live, spec))
    }

    fn updated(live: &TargetGroup, spec: &TargetGroupSpec) -> TargetGroup {
        TargetGroup {
            health_check: spec.health_check.clone(),
            deregistration_delay: spec.deregistration_delay,
            ..live.clone()
        }
    }

    fn remember(snapshot: &mut Snapshot, live: &TargetGroup) {
        let state = &mut snapshot.elbv2;
        state.target_groups.retain(|t| t.name != live.name);
        state.target_groups.push(live.clone());
    }

    /// With what the health check and the delay cost a rollout: a new target is healthy once it
    /// passes one check ("After your target is registered, it must pass one health check to be
    /// considered healthy", ELB's target group health checks guide; the healthy threshold counts
    /// only when an unhealthy target recovers), an old one drains for the delay.
    fn summary(live: &TargetGroup) -> String {
        let hc = &live.health_check;
        format!(
            "{}:{}, {}; healthy in {} s: checks every {} s, {} to recover; drains {} s",
            live.protocol, live.port, live.target_type, hc.interval, hc.interval, hc.healthy, live.deregistration_delay
        )
    }
}

/// Creates the target group tagged with the stack, then sets its deregistration delay unless it is
/// AWS's default (CreateTargetGroup takes no attributes).
///
/// CreateTargetGroup returns an existing target group of the same name and settings as if it had
/// created it, whoever owns it (ELBv2 API reference, CreateTargetGroup: the call is idempotent),
/// so the name must be looked up before it is created, its owner checked, as terraform-provider-aws
/// does (`aws_lb_target_group` refuses a name that exists). That look is the run's read by name,
/// which found none ([`Resource::find`]: the apply pass reads the script's declared names afresh
/// under the stack lock, `Elbv2State::named`, or looks an undeclared name up at its statement): no
/// DescribeTargetGroups is sent again here. What is left is the seconds between that read and this
/// request (a look just before the create leaves one too): there, one created with other settings
/// fails `DuplicateTargetGroupName` and is looked up with its owner, which the engine refuses
/// unless it is the stack's.
async fn create(pass: &Pass, spec: &TargetGroupSpec, stack: &str) -> Result<Created<TargetGroup>> {
    let hc = &spec.health_check;
    let created = pass
        .send(async |aws| {
            let request = aws
                .elbv2
                .create_target_group()
                .name(&spec.name)
                .protocol(ProtocolEnum::from(spec.protocol.as_str()))
                .port(spec.port)
                .vpc_id(&spec.vpc_id)
                .target_type(TargetTypeEnum::from(spec.target_type.as_str()))
                .set_tags(Some(stack_tags(stack, &spec.name)));
            let sent = with_health_check!(request, hc).send().await;
            match sent {
                Ok(out) => out
                    .target_groups()
                    .first()
                    .and_then(|t| t.target_group_arn())
                    .map(|arn| Some(arn.to_string()))
                    .ok_or_else(|| Error::missing("CreateTargetGroup", "TargetGroupArn")),
                // Created meanwhile with other settings (e.g. by a concurrent run).
                Err(e) if e.as_service_error().is_some_and(|e| e.is_duplicate_target_group_name_exception()) => {
                    Ok(None)
                }
                Err(e) => Err(aws_error("CreateTargetGroup", e)),
            }
        })
        .await?;
    let Some(arn) = created else {
        return pass.send(async |aws| named(aws, &spec.name).await).await?.map(Created::Existing).ok_or_else(|| {
            Error::Internal(format!("target group {} is a duplicate name but cannot be found", spec.name))
        });
    };
    if spec.deregistration_delay != DEFAULT_DEREGISTRATION_DELAY {
        set_deregistration_delay(pass, &arn, spec.deregistration_delay).await?;
    }
    Ok(Created::New(TargetGroup { arn, ..TargetGroup::planned(spec, stack) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers_take_codes_ranges_and_lists() {
        for ok in ["200", "200-299", "200,302", "200-299,404"] {
            assert!(validate_matcher(ok).is_ok(), "{ok}");
        }
        for bad in ["", "20", "600", "299-200", "200,", "abc", "200 - 299"] {
            assert!(validate_matcher(bad).is_err(), "{bad}");
        }
    }
}
