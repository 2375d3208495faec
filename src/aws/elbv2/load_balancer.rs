//! Application Load Balancers: types, reads, validation, and how one converges.

use std::collections::BTreeSet;

use aws_sdk_elasticloadbalancingv2::types::{LoadBalancerSchemeEnum, LoadBalancerTypeEnum};
use futures_util::future::LocalBoxFuture;

use super::{Elbv2State, Which, describe_existing, stack_tags, stack_tags_of, validate_elb_name, with_state};
use crate::aws::Pass;
use crate::aws::Snapshot;
use crate::aws::ec2::Ec2State;
use crate::converge::{Created, Drift, Resource};
use crate::error::{Error, Result, aws_error};
use crate::plan::{FieldDiff, UNKNOWN, is_known};
use crate::poll::{Check, Wait};
use crate::runtime::Aws;
use crate::tagged::Keepable;
use crate::timing::{LOAD_BALANCER_ACTIVE_PACE, LOAD_BALANCER_ACTIVE_TIMEOUT};

/// An Application Load Balancer as it exists (or will exist) in AWS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadBalancer {
    /// Its ARN, or [`UNKNOWN`].
    pub arn: String,
    /// Its name (unique in the region).
    pub name: String,
    /// Its DNS name, or [`UNKNOWN`].
    pub dns_name: String,
    /// The Route 53 hosted zone id of its DNS name (what an alias record to it names), or [`UNKNOWN`].
    pub canonical_hosted_zone_id: String,
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

/// Which parts of a load balancer an in-place update sets.
#[derive(Debug, Default)]
pub struct LoadBalancerUpdate {
    /// SetSubnets.
    subnets: bool,
    /// SetSecurityGroups.
    security_groups: bool,
}

/// A load balancer from an ELBv2 reply (without its tags).
pub fn load_balancer_from(lb: &aws_sdk_elasticloadbalancingv2::types::LoadBalancer) -> Result<LoadBalancer> {
    const OP: &str = "DescribeLoadBalancers";
    let mut subnets: Vec<String> =
        lb.availability_zones().iter().filter_map(|z| z.subnet_id()).map(str::to_string).collect();
    subnets.sort();
    let mut security_groups = lb.security_groups().to_vec();
    security_groups.sort();
    Ok(LoadBalancer {
        arn: lb.load_balancer_arn().ok_or_else(|| Error::missing(OP, "LoadBalancerArn"))?.to_string(),
        name: lb.load_balancer_name().ok_or_else(|| Error::missing(OP, "LoadBalancerName"))?.to_string(),
        // Gateway Load Balancers have no DNS name.
        dns_name: lb.dns_name().unwrap_or_default().to_string(),
        canonical_hosted_zone_id: lb.canonical_hosted_zone_id().unwrap_or_default().to_string(),
        // Internet-facing is what AWS creates when no scheme is asked for.
        scheme: lb.scheme().map(|s| s.as_str().to_string()).unwrap_or_else(|| "internet-facing".into()),
        lb_type: lb.r#type().map(|t| t.as_str().to_string()).unwrap_or_else(|| "application".into()),
        vpc_id: lb.vpc_id().ok_or_else(|| Error::missing(OP, "VpcId"))?.to_string(),
        subnets,
        security_groups,
        stack: None,
    })
}

/// DescribeLoadBalancers by names or ARNs (at most 20); `None` when one of them does not exist.
async fn describe(aws: &Aws, which: Which<'_>) -> Result<Option<Vec<LoadBalancer>>> {
    let request = match which {
        // An empty list would describe every load balancer of the region.
        Which::Names([]) | Which::Arns([]) => return Ok(Some(Vec::new())),
        Which::Names(names) => aws.elbv2.describe_load_balancers().set_names(Some(names.to_vec())),
        Which::Arns(arns) => aws.elbv2.describe_load_balancers().set_load_balancer_arns(Some(arns.to_vec())),
    };
    match request.send().await {
        Ok(out) => out.load_balancers().iter().map(load_balancer_from).collect::<Result<Vec<_>>>().map(Some),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_load_balancer_not_found_exception()) => Ok(None),
        Err(e) => Err(aws_error("DescribeLoadBalancers", e)),
    }
}

/// The load balancers named `names` that exist (any stack's or none's, without tags), 20 per request.
pub(super) async fn describe_by_names(aws: &Aws, names: &[String]) -> Result<Vec<LoadBalancer>> {
    describe_existing(names, async |batch: &[String]| describe(aws, Which::Names(batch)).await).await
}

/// The load balancers of `arns` that exist, 20 per request.
pub(super) async fn describe_by_arns(aws: &Aws, arns: &[String]) -> Result<Vec<LoadBalancer>> {
    describe_existing(arns, async |batch: &[String]| describe(aws, Which::Arns(batch)).await).await
}

/// The load balancer with this name or ARN, with its stack tag; `None` when there is none.
async fn lookup(aws: &Aws, which: Which<'_>) -> Result<Option<LoadBalancer>> {
    let Some(mut lb) = describe(aws, which).await?.and_then(|found| found.into_iter().next()) else {
        return Ok(None);
    };
    lb.stack = stack_tags_of(aws, std::slice::from_ref(&lb.arn)).await?.remove(&lb.arn);
    Ok(Some(lb))
}

/// The load balancer named `name` (any stack's, or none's), with its stack tag.
pub(super) async fn named(aws: &Aws, name: &str) -> Result<Option<LoadBalancer>> {
    lookup(aws, Which::Names(&[name.to_string()])).await
}

/// The load balancer with this ARN (any stack's, or none's), with its stack tag.
pub(super) async fn by_arn(aws: &Aws, arn: &str) -> Result<Option<LoadBalancer>> {
    lookup(aws, Which::Arns(&[arn.to_string()])).await
}

/// Fills in the AZ and VPC of subnets given by id from the pass's snapshot, so the spec says
/// which VPC the load balancer is in.
pub fn resolve_subnets(pass: &Pass, mut spec: LoadBalancerSpec) -> Result<LoadBalancerSpec> {
    let snapshot = pass.snapshot()?;
    let ec2 = &snapshot.borrow().ec2;
    for subnet in &mut spec.subnets {
        if let Some(found) = ec2.subnets.iter().find(|s| s.id == subnet.id) {
            subnet.az.get_or_insert_with(|| found.az.clone());
            subnet.vpc_id.get_or_insert_with(|| found.vpc_id.clone());
        }
    }
    Ok(spec)
}

/// The VPC of the spec's subnets, when known.
fn spec_vpc(spec: &LoadBalancerSpec) -> Option<String> {
    spec.subnets.iter().filter_map(|s| s.vpc_id.clone()).find(|v| is_known(v))
}

fn wanted_subnets(spec: &LoadBalancerSpec) -> Vec<String> {
    let mut subnets: Vec<String> = spec.subnets.iter().map(|s| s.id.clone()).collect();
    subnets.sort();
    subnets
}

fn wanted_groups(spec: &LoadBalancerSpec) -> Vec<String> {
    let mut groups: Vec<String> = spec.security_groups.iter().map(|g| g.id.clone()).collect();
    groups.sort();
    groups.dedup();
    groups
}

/// Checks a load balancer spec against the region's subnets (where known).
fn validate_load_balancer(spec: &LoadBalancerSpec, ec2: &Ec2State) -> Result<()> {
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
    Ok(())
}

/// How a set of ids differs: `+ id` for each wanted one missing (an unknown id is always
/// missing), `- id` for each one that is not wanted.
pub(super) fn set_diffs(field: &str, current: &[String], wanted: &[String]) -> Vec<FieldDiff> {
    let current: BTreeSet<&String> = current.iter().collect();
    let wanted_set: BTreeSet<&String> = wanted.iter().collect();
    let unknown = wanted.iter().filter(|w| !is_known(w)).map(|w| FieldDiff::added(field, w));
    let added = wanted_set.difference(&current).filter(|w| is_known(w)).map(|w| FieldDiff::added(field, w));
    let removed = current.difference(&wanted_set).map(|c| FieldDiff::removed(field, c));
    added.chain(unknown).chain(removed).collect()
}

/// The stack's load balancer of this name, or the one looked up by name; `None` when unknown.
fn known(state: &Elbv2State, name: &str) -> Option<Option<LoadBalancer>> {
    let ours = state.load_balancers.iter().find(|l| l.name == name).cloned();
    ours.map(Some).or_else(|| state.load_balancers_named.get(name).cloned())
}

/// An Application Load Balancer converges by name (names are unique in a region): created when
/// missing, its subnets and security groups set in place; its type, scheme and VPC are fixed.
impl Resource for LoadBalancer {
    type Reads = Snapshot;
    type Spec = LoadBalancerSpec;
    type Update = LoadBalancerUpdate;
    const KIND: &'static str = "load_balancer";
    const FIXED: &'static [&'static str] = &["type", "scheme", "VPC"];

    fn keepable(live: &LoadBalancer) -> Option<Keepable> {
        Some(Keepable::Elbv2(live.arn.clone()))
    }

    fn name(spec: &LoadBalancerSpec) -> String {
        spec.name.clone()
    }

    fn locator(live: &LoadBalancer) -> String {
        live.arn.clone()
    }

    fn validate(pass: &Pass, spec: &LoadBalancerSpec) -> Result<()> {
        validate_load_balancer(spec, &pass.snapshot()?.borrow().ec2)
    }

    fn find(pass: &Pass, spec: &LoadBalancerSpec) -> Result<Option<LoadBalancer>> {
        if let Some(found) = with_state(pass, |s| known(s, &spec.name))? {
            return Ok(found);
        }
        // Not among the stack's: the name may be another stack's (or nobody's) load balancer,
        // or this stack's that the tagging index does not list yet. One lookup by name tells.
        let Some(found) = pass.read(async |aws| named(aws, &spec.name).await) else { return Ok(None) };
        let found = found?;
        pass.remember_read(|s| {
            s.elbv2.load_balancers_named.insert(spec.name.clone(), found.clone());
        })?;
        Ok(found)
    }

    fn stack_of(live: &LoadBalancer) -> Option<&str> {
        live.stack.as_deref()
    }

    fn planned(spec: &LoadBalancerSpec, stack: &str) -> LoadBalancer {
        LoadBalancer {
            arn: UNKNOWN.into(),
            name: spec.name.clone(),
            dns_name: UNKNOWN.into(),
            canonical_hosted_zone_id: UNKNOWN.into(),
            scheme: spec.scheme.clone(),
            lb_type: "application".into(),
            vpc_id: spec_vpc(spec).unwrap_or_else(|| UNKNOWN.into()),
            subnets: wanted_subnets(spec),
            security_groups: wanted_groups(spec),
            stack: Some(stack.to_string()),
        }
    }

    fn create(pass: &Pass, spec: &LoadBalancerSpec, stack: &str) -> Result<Created<LoadBalancer>> {
        pass.block(create(pass, spec, stack))
    }

    fn create_beside(
        pass: &Pass,
        spec: LoadBalancerSpec,
        stack: String,
    ) -> Option<LocalBoxFuture<'_, Result<Created<LoadBalancer>>>> {
        Some(Box::pin(async move { create(pass, &spec, &stack).await }))
    }

    fn diff(live: &LoadBalancer, spec: &LoadBalancerSpec) -> Drift<LoadBalancerUpdate> {
        let mut fixed = Vec::new();
        if live.lb_type != "application" {
            fixed.push(FieldDiff::changed("type", &live.lb_type, "application"));
        }
        if live.scheme != spec.scheme {
            fixed.push(FieldDiff::changed("scheme", &live.scheme, &spec.scheme));
        }
        if let Some(vpc) = spec_vpc(spec).filter(|v| *v != live.vpc_id) {
            fixed.push(FieldDiff::changed("vpc_id", &live.vpc_id, vpc));
        }
        let subnet_diffs = set_diffs("subnets", &live.subnets, &wanted_subnets(spec));
        let group_diffs = set_diffs("security_groups", &live.security_groups, &wanted_groups(spec));
        let update = LoadBalancerUpdate { subnets: !subnet_diffs.is_empty(), security_groups: !group_diffs.is_empty() };
        Drift { diffs: subnet_diffs.into_iter().chain(group_diffs).collect(), fixed, update }
    }

    fn update(
        pass: &Pass,
        live: &LoadBalancer,
        spec: &LoadBalancerSpec,
        update: &LoadBalancerUpdate,
    ) -> Result<LoadBalancer> {
        let arn = live.arn.as_str();
        pass.apply(async |aws| {
            if update.security_groups {
                aws.elbv2
                    .set_security_groups()
                    .load_balancer_arn(arn)
                    .set_security_groups(Some(wanted_groups(spec)))
                    .send()
                    .await
                    .map_err(|e| aws_error("SetSecurityGroups", e))?;
            }
            if update.subnets {
                aws.elbv2
                    .set_subnets()
                    .load_balancer_arn(arn)
                    .set_subnets(Some(wanted_subnets(spec)))
                    .send()
                    .await
                    .map_err(|e| aws_error("SetSubnets", e))?;
            }
            Ok(())
        })?;
        Ok(Self::updated(live, spec))
    }

    fn updated(live: &LoadBalancer, spec: &LoadBalancerSpec) -> LoadBalancer {
        LoadBalancer { subnets: wanted_subnets(spec), security_groups: wanted_groups(spec), ..live.clone() }
    }

    fn remember(snapshot: &mut Snapshot, live: &LoadBalancer) {
        let state = &mut snapshot.elbv2;
        state.load_balancers.retain(|l| l.name != live.name);
        state.load_balancers.push(live.clone());
    }

    fn summary(live: &LoadBalancer) -> String {
        format!("{}, {}", live.dns_name, live.scheme)
    }
}

/// Creates the load balancer tagged with the stack; its wait until active is deferred.
///
/// CreateLoadBalancer returns an existing load balancer of the same name and settings as if it had
/// created it, whoever owns it (ELBv2 API reference, CreateLoadBalancer: the call is idempotent),
/// so the name must be looked up before it is created, its owner checked. That look is the run's
/// read by name, which found none ([`Resource::find`]: the apply pass reads the script's declared
/// names afresh under the stack lock, `Elbv2State::named`, or looks an undeclared name up at its
/// statement): no DescribeLoadBalancers is sent again here. What is left is the seconds between
/// that read and this request (a look just before the create leaves one too): there, one created
/// with other settings fails `DuplicateLoadBalancerName` and is looked up with its owner, which
/// the engine refuses unless it is the stack's.
async fn create(pass: &Pass, spec: &LoadBalancerSpec, stack: &str) -> Result<Created<LoadBalancer>> {
    let wanted = LoadBalancer::planned(spec, stack);
    let created = pass
        .send(async |aws| {
            let sent = aws
                .elbv2
                .create_load_balancer()
                .name(&spec.name)
                .r#type(LoadBalancerTypeEnum::Application)
                .scheme(LoadBalancerSchemeEnum::from(spec.scheme.as_str()))
                .set_subnets(Some(wanted.subnets.clone()))
                .set_security_groups(Some(wanted.security_groups.clone()))
                .set_tags(Some(stack_tags(stack, &spec.name)))
                .send()
                .await;
            match sent {
                Ok(out) => out.load_balancers().first().map(load_balancer_from).transpose(),
                // Created meanwhile with other settings (e.g. by a concurrent run).
                Err(e) if e.as_service_error().is_some_and(|e| e.is_duplicate_load_balancer_name_exception()) => {
                    Ok(None)
                }
                Err(e) => Err(aws_error("CreateLoadBalancer", e)),
            }
        })
        .await?;
    match created {
        Some(lb) => {
            // A new load balancer has no listeners: none to read for the listeners declared on it
            // (remembered in the run's reads, so a later gathering pass knows it too).
            pass.remember_read(|s| {
                s.elbv2.listeners_read.insert(lb.arn.clone());
            })?;
            defer_active(pass, &lb.arn, &spec.name);
            Ok(Created::New(LoadBalancer { stack: Some(stack.to_string()), ..lb }))
        }
        None => pass.send(async |aws| named(aws, &spec.name).await).await?.map(Created::Existing).ok_or_else(|| {
            Error::Internal(format!("load balancer {} is a duplicate name but cannot be found", spec.name))
        }),
    }
}

/// Defers the wait until a new load balancer is active (it is `provisioning` for 2-3 minutes) to
/// the end of the run or `wait_stable`: listeners, target groups, rules and DNS aliases can name a
/// provisioning load balancer, so nothing in the script waits for it; its targets' health checks
/// start once it is active, which a rollout waits for anyway.
fn defer_active(pass: &Pass, arn: &str, name: &str) {
    let (arn, name) = (arn.to_string(), name.to_string());
    pass.defer(format!("load balancer {arn}"), move |pass, by| {
        let say = |line: &str| pass.log.say(&format!("  {line}"));
        pass.apply(async |aws| wait_active(aws, &arn, &name, by, &say).await)
    });
}

/// Waits until a load balancer is active: the SDK's LoadBalancerAvailable waiter's acceptors
/// (`active` is done, `provisioning` and `LoadBalancerNotFound`, a create not visible yet, are
/// waited out), polled by deckhand so the time scale applies; `failed` fails at once.
async fn wait_active(aws: &Aws, arn: &str, name: &str, by: &str, report: &dyn Fn(&str)) -> Result<()> {
    let what = format!("load balancer {name} to become active for {by} (usually 2-3 minutes)");
    Wait::new(aws.clock(), "load balancer", what, LOAD_BALANCER_ACTIVE_PACE, LOAD_BALANCER_ACTIVE_TIMEOUT)
        .report_to(report)
        .hint("see its state with `aws elbv2 describe-load-balancers`; run deckhand again to continue")
        .until(async |_| {
            let states = crate::aws::queries::load_balancer_states(aws, &[arn.to_string()]).await;
            let state = match states {
                Ok(mut states) => states.remove(arn),
                Err(err) if err.aws_code() == Some("LoadBalancerNotFound") => None,
                Err(err) => return Err(err),
            };
            match state.as_deref() {
                Some("active" | "active_impaired") => Ok(Check::Done(())),
                Some("failed") => Err(Error::conflict(
                    format!("load balancer {name} ({arn}) failed to provision"),
                    Some("see `aws elbv2 describe-load-balancers` for its state's reason; delete it and run again"),
                )),
                Some(state) => Ok(Check::waiting(state)),
                None => Ok(Check::waiting("not visible yet")),
            }
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_diffs_show_unknown_ids_as_added() {
        let diffs = set_diffs("subnets", &["subnet-1".into(), "subnet-2".into()], &["subnet-1".into(), UNKNOWN.into()]);
        let text: Vec<String> = diffs.iter().map(ToString::to_string).collect();
        assert_eq!(text, ["subnets: + (known after apply)", "subnets: - subnet-2"]);
    }
}
