//! Elastic Load Balancing v2: Application Load Balancers, target groups and listeners. This file
//! holds what the three kinds share: the stack's part of the snapshot (found through the Resource
//! Groups Tagging API, so its cost does not grow with the account), lookups by name, tags and
//! deletion; each kind converges in its own file.

mod listener;
mod load_balancer;
mod rule;
mod target_group;

use std::collections::{BTreeSet, HashMap};

use aws_sdk_elasticloadbalancingv2::types::Tag;

pub use listener::{Listener, ListenerAction, ListenerSpec, LoadBalancerRef, WeightedGroup, listener_name, listeners};
pub use load_balancer::{GroupRef, LoadBalancer, LoadBalancerSpec, SubnetRef, load_balancer_from, resolve_subnets};
pub use rule::{ListenerRef, ListenerRule, ListenerRuleSpec, delete_rule, rule_name};
pub use target_group::{
    DEFAULT_DEREGISTRATION_DELAY, HealthCheck, TargetGroup, TargetGroupSpec, deregistration_delay, target_groups,
};

use crate::aws::Pass;
use crate::aws::{NAME_TAG, concurrently};
use crate::error::{Error, Result, aws_error, sent};
use crate::poll::{Check, Wait};
use crate::runtime::Aws;
use crate::tagged::STACK_TAG;
use crate::tagged::StackTagged;
use crate::timing::{DELETION_PACE, LOAD_BALANCER_DELETED_TIMEOUT};

/// The TLS policy deckhand gives HTTPS listeners when the script names none (AWS's recommended one).
pub const DEFAULT_SSL_POLICY: &str = "ELBSecurityPolicy-TLS13-1-2-2021-06";

/// How many ARNs DescribeLoadBalancers, DescribeTargetGroups and DescribeTags take per request.
const ARNS_PER_REQUEST: usize = 20;

/// Which load balancers or target groups to describe (DescribeLoadBalancers and
/// DescribeTargetGroups take either).
enum Which<'a> {
    Names(&'a [String]),
    Arns(&'a [String]),
}

/// The resources of `arns` (or names) that exist, [`ARNS_PER_REQUEST`] per `describe` (which
/// answers `None` when one of them does not exist). The tagging index lists a deleted load balancer or target
/// group for a while, so a batch with a gone one is described again one by one, skipping the gone.
async fn describe_existing<T>(
    arns: &[String],
    describe: impl AsyncFn(&[String]) -> Result<Option<Vec<T>>>,
) -> Result<Vec<T>> {
    let describe = &describe;
    let found = concurrently(arns.chunks(ARNS_PER_REQUEST), async |batch| match describe(batch).await? {
        Some(found) => Ok(found),
        None if batch.len() == 1 => Ok(Vec::new()),
        None => {
            let each = concurrently(batch, |arn| describe(std::slice::from_ref(arn))).await?;
            Ok(each.into_iter().flatten().flatten().collect())
        }
    })
    .await?;
    Ok(found.into_iter().flatten().collect())
}

/// Load balancers and target groups described by name ([`Elbv2State::named`]), with the names asked.
#[derive(Debug, Default)]
pub struct Named {
    lb_names: Vec<String>,
    tg_names: Vec<String>,
    load_balancers: Vec<LoadBalancer>,
    target_groups: Vec<TargetGroup>,
}

/// The ELBv2 part of a run's snapshot.
#[derive(Debug, Default, Clone)]
pub struct Elbv2State {
    /// The stack's load balancers.
    pub load_balancers: Vec<LoadBalancer>,
    /// The stack's target groups.
    pub target_groups: Vec<TargetGroup>,
    /// The listeners of the load balancers in `listeners_read`.
    pub listeners: Vec<Listener>,
    /// The load balancers (ARNs) whose listeners are in `listeners`.
    pub listeners_read: BTreeSet<String>,
    /// Load balancers looked up by name outside the stack's tag (`None`: no such name).
    pub load_balancers_named: HashMap<String, Option<LoadBalancer>>,
    /// Target groups looked up by name outside the stack's tag (`None`: no such name).
    pub target_groups_named: HashMap<String, Option<TargetGroup>>,
    /// The rules (not the default ones) of the listeners in `rules_read`, the stack's and any
    /// other's (each carries its own stack tag).
    pub rules: Vec<ListenerRule>,
    /// The listeners (ARNs) whose rules are in `rules`.
    pub rules_read: BTreeSet<String>,
    /// The rules this pass declared, by listener ARN and priority (a priority is one rule).
    pub rules_declared: BTreeSet<(String, i32)>,
}

impl Elbv2State {
    /// Describes the stack's load balancers and target groups by ARN (as `tagged` lists them),
    /// then reads their listeners and target group attributes: requests in proportion to the
    /// stack, whatever else the region holds.
    /// The tagging API's index lags behind creates (see `tagged.rs`), so the region's load
    /// balancers and target groups it does not list are asked for their tags too: a destroy right
    /// after a deploy must not skip the ALB (its subnets and security groups would then wait for
    /// it in vain, and it would keep billing).
    pub async fn load(aws: &Aws, stack: &str, tagged: &StackTagged) -> Result<Elbv2State> {
        let mut tagged = tagged.clone();
        let listed: Vec<String> = tagged
            .arns("elasticloadbalancing", "loadbalancer")
            .into_iter()
            .chain(tagged.arns("elasticloadbalancing", "targetgroup"))
            .collect();
        tagged.add_arns(missed_by_tagging(aws, stack, &listed).await?);
        Self::complete(aws, stack, &tagged, Named::default()).await
    }

    /// The load balancers and target groups named `lb_names` and `tg_names` (any stack's or none's,
    /// without tags): a run describes those its script declares alongside the tag lookup, not
    /// after it, so their listeners, attributes and rules are read a wave earlier (see
    /// [`Elbv2State::complete`]).
    pub async fn named(aws: &Aws, lb_names: &[String], tg_names: &[String]) -> Result<Named> {
        let (load_balancers, target_groups) = tokio::try_join!(
            load_balancer::describe_by_names(aws, lb_names),
            target_group::describe_by_names(aws, tg_names),
        )?;
        Ok(Named { lb_names: lb_names.to_vec(), tg_names: tg_names.to_vec(), load_balancers, target_groups })
    }

    /// The stack's part from its tagged load balancers and target groups and what was described
    /// by name: those of the stack not described yet are described by ARN, then the listeners,
    /// target group attributes and rules are read. A name that does not exist is remembered as
    /// such (no lookup when the script reaches it); one that exists outside the stack's tag is
    /// looked up when reached (its tag tells whose it is, or the tagging index lags behind).
    pub async fn complete(aws: &Aws, stack: &str, tagged: &StackTagged, named: Named) -> Result<Elbv2State> {
        let Named { lb_names, tg_names, load_balancers: lbs_named, target_groups: tgs_named } = named;
        let lb_arns = tagged.arns("elasticloadbalancing", "loadbalancer");
        let tg_arns = tagged.arns("elasticloadbalancing", "targetgroup");
        let (lbs_ours, lbs_other): (Vec<LoadBalancer>, Vec<LoadBalancer>) =
            lbs_named.into_iter().partition(|lb| lb_arns.contains(&lb.arn));
        let (tgs_ours, tgs_other): (Vec<TargetGroup>, Vec<TargetGroup>) =
            tgs_named.into_iter().partition(|tg| tg_arns.contains(&tg.arn));
        let lb_rest: Vec<String> = lb_arns.into_iter().filter(|arn| !lbs_ours.iter().any(|l| l.arn == *arn)).collect();
        let tg_rest: Vec<String> = tg_arns.into_iter().filter(|arn| !tgs_ours.iter().any(|t| t.arn == *arn)).collect();
        let (lbs_rest, tgs_rest) = tokio::try_join!(
            load_balancer::describe_by_arns(aws, &lb_rest),
            target_group::describe_by_arns(aws, &tg_rest),
        )?;
        let mut load_balancers: Vec<LoadBalancer> = lbs_ours.into_iter().chain(lbs_rest).collect();
        let mut target_groups: Vec<TargetGroup> = tgs_ours.into_iter().chain(tgs_rest).collect();
        for lb in &mut load_balancers {
            lb.stack = Some(stack.to_string());
        }
        for tg in &mut target_groups {
            tg.stack = Some(stack.to_string());
        }
        // Declared names that do not exist: nothing to look up when the script reaches them.
        let absent = |name: &&String, found: &[String]| !found.contains(name);
        let lb_found: Vec<String> = load_balancers.iter().chain(&lbs_other).map(|l| l.name.clone()).collect();
        let tg_found: Vec<String> = target_groups.iter().chain(&tgs_other).map(|t| t.name.clone()).collect();
        let load_balancers_named =
            lb_names.iter().filter(|n| absent(n, &lb_found)).map(|n| (n.clone(), None)).collect();
        let target_groups_named = tg_names.iter().filter(|n| absent(n, &tg_found)).map(|n| (n.clone(), None)).collect();
        let (listeners, delays) = tokio::try_join!(
            concurrently(&load_balancers, |lb| listeners(aws, &lb.arn)),
            concurrently(&target_groups, |tg| target_group::deregistration_delay(aws, &tg.arn)),
        )?;
        for (tg, delay) in target_groups.iter_mut().zip(delays) {
            tg.deregistration_delay = delay;
        }
        let mut state = Elbv2State {
            listeners_read: load_balancers.iter().map(|lb| lb.arn.clone()).collect(),
            load_balancers,
            target_groups,
            load_balancers_named,
            target_groups_named,
            ..Elbv2State::default()
        };
        let listeners = listeners.into_iter().flatten().map(|l| Listener { stack: Some(stack.to_string()), ..l });
        state.add_listeners(listeners.collect());
        // Each listener's rules with their own stack tags (a listener's DescribeTags follows its
        // DescribeRules, beside the other listeners' reads): a rule on the stack's listener may be
        // someone else's.
        let arns: Vec<String> = state.listeners.iter().map(|l| l.arn.clone()).collect();
        let rules = concurrently(&arns, |arn| rule::rules(aws, arn)).await?;
        for (arn, rules) in arns.iter().zip(rules) {
            state.add_rules(arn, rules);
        }
        Ok(state)
    }

    /// Names the target group a forward action goes to, where the snapshot knows it.
    fn name_target_group(&self, action: &mut ListenerAction) {
        let named: Vec<&TargetGroup> =
            self.target_groups.iter().chain(self.target_groups_named.values().flatten()).collect();
        let name_of = |arn: &str, name: &mut String| {
            if let Some(tg) = named.iter().find(|t| t.arn == arn) {
                name.clone_from(&tg.name);
            }
        };
        match action {
            ListenerAction::Forward { arn, name } => name_of(arn, name),
            ListenerAction::Weighted(groups) => groups.iter_mut().for_each(|g| name_of(&g.arn, &mut g.name)),
            _ => {}
        }
    }

    /// Adds the rules of a listener of the stack read from AWS, naming the target groups they
    /// forward to where known.
    fn add_rules(&mut self, listener_arn: &str, rules: Vec<ListenerRule>) {
        for mut rule in rules {
            self.name_target_group(&mut rule.action);
            self.rules.retain(|r| r.arn != rule.arn);
            self.rules.push(rule);
        }
        self.rules_read.insert(listener_arn.to_string());
    }

    /// Adds listeners of the stack's load balancers read from AWS, naming the target groups they
    /// forward to where known.
    fn add_listeners(&mut self, listeners: Vec<Listener>) {
        for mut listener in listeners {
            self.name_target_group(&mut listener.action);
            self.listeners.retain(|l| l.arn != listener.arn);
            self.listeners.push(listener);
        }
    }
}

/// The ARNs of the stack's load balancers and target groups that are not in `listed`: every one
/// of the region (DescribeLoadBalancers and DescribeTargetGroups, paged) not listed is asked for its
/// tags (DescribeTags, 20 at a time).
async fn missed_by_tagging(aws: &Aws, stack: &str, listed: &[String]) -> Result<Vec<String>> {
    let load_balancers = async {
        let mut pages = aws.elbv2.describe_load_balancers().page_size(400).into_paginator().items().send();
        let mut arns = Vec::new();
        while let Some(lb) = pages.next().await {
            let lb = lb.map_err(|e| aws_error("DescribeLoadBalancers", e))?;
            arns.extend(lb.load_balancer_arn().map(str::to_string));
        }
        Ok::<_, Error>(arns)
    };
    let (lbs, tgs) = tokio::try_join!(load_balancers, target_group::target_groups(aws))?;
    let unlisted: Vec<String> =
        lbs.into_iter().chain(tgs.into_iter().map(|tg| tg.arn)).filter(|arn| !listed.contains(arn)).collect();
    let tags = concurrently(unlisted.chunks(ARNS_PER_REQUEST), |batch| stack_tags_of(aws, batch)).await?;
    Ok(tags.into_iter().flatten().filter(|(_, of)| of == stack).map(|(arn, _)| arn).collect())
}

/// The `deckhand:stack` tags of `arns` (load balancers, target groups or rules; at most 20); an
/// ARN without the tag is absent from the map.
async fn stack_tags_of(aws: &Aws, arns: &[String]) -> Result<HashMap<String, String>> {
    let mut stacks = HashMap::new();
    if arns.is_empty() {
        return Ok(stacks);
    }
    let out = aws
        .elbv2
        .describe_tags()
        .set_resource_arns(Some(arns.to_vec()))
        .send()
        .await
        .map_err(|e| aws_error("DescribeTags", e))?;
    for description in out.tag_descriptions() {
        let arn = description.resource_arn().ok_or_else(|| Error::missing("DescribeTags", "ResourceArn"))?;
        if let Some(tag) = description.tags().iter().find(|t| t.key() == Some(STACK_TAG)) {
            stacks.insert(arn.to_string(), tag.value().unwrap_or_default().to_string());
        }
    }
    Ok(stacks)
}

fn sdk_tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

/// The tags deckhand puts on what it creates: `Name` and the stack.
fn stack_tags(stack: &str, name: &str) -> Vec<Tag> {
    vec![sdk_tag(NAME_TAG, name), sdk_tag(STACK_TAG, stack)]
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

/// This pass's ELBv2 snapshot, read (immutably) by `f`.
fn with_state<T>(pass: &Pass, f: impl FnOnce(&Elbv2State) -> T) -> Result<T> {
    Ok(f(&pass.snapshot()?.borrow().elbv2))
}

// Deletion (deckhand destroy)

/// Deletes a listener.
pub async fn delete_listener(aws: &Aws, arn: &str) -> Result<()> {
    sent("DeleteListener", aws.elbv2.delete_listener().listener_arn(arn).send()).await
}

/// Deletes a load balancer (with any listener left); it goes away in the background (see
/// [`wait_load_balancer_deleted`]).
pub async fn delete_load_balancer(aws: &Aws, arn: &str) -> Result<()> {
    sent("DeleteLoadBalancer", aws.elbv2.delete_load_balancer().load_balancer_arn(arn).send()).await
}

/// Waits until a deleted load balancer is gone: the acceptors of the SDK's LoadBalancersDeleted
/// waiter (aws-sdk-elasticloadbalancingv2 `waiters/load_balancers_deleted.rs`), polled by deckhand
/// so the time scale applies: `LoadBalancerNotFound` is done, any state is waited out (ELB
/// deletes in the background, usually within a minute).
pub async fn wait_load_balancer_deleted(aws: &Aws, arn: &str, report: &dyn Fn(&str)) -> Result<()> {
    use aws_sdk_elasticloadbalancingv2::error::ProvideErrorMetadata;
    let what = format!("load balancer {arn} to be deleted");
    Wait::new(aws.clock(), "load balancer deletion", what, DELETION_PACE, LOAD_BALANCER_DELETED_TIMEOUT)
        .report_to(report)
        .until(async |_| match aws.elbv2.describe_load_balancers().load_balancer_arns(arn).send().await {
            Err(err) if err.code() == Some("LoadBalancerNotFound") => Ok(Check::Done(())),
            Err(err) => Err(aws_error("DescribeLoadBalancers", err)),
            Ok(out) => match out.load_balancers().first() {
                // Not listed at all: as gone as not found.
                None => Ok(Check::Done(())),
                Some(lb) => {
                    let state = lb.state().and_then(|s| s.code()).map_or("listed", |c| c.as_str());
                    Ok(Check::waiting(state))
                }
            },
        })
        .await
}

/// Deletes a target group (fails with `ResourceInUse` while a listener or rule forwards to it).
pub async fn delete_target_group(aws: &Aws, arn: &str) -> Result<()> {
    sent("DeleteTargetGroup", aws.elbv2.delete_target_group().target_group_arn(arn).send()).await
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
}
