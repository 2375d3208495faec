//! Listener rules: path-pattern and host-header conditions forwarding to a target group. A rule is
//! a sub-resource of its listener: it converges by priority, and a rule a run's script no longer
//! declares is deleted by the run's pruning, like every kind ([`crate::prune`]).
//!
//! A rule belongs to the stack its own `deckhand:stack` tag names (CreateRule tags deckhand's),
//! not to its listener's: a shared load balancer is where another team adds its rules, and those
//! are never the stack's to prune, delete or take over (a script declaring a priority such a rule
//! holds is refused by the engine's ownership check).

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, HostHeaderConditionConfig, PathPatternConditionConfig, RuleCondition,
};

use std::collections::HashMap;

use futures_util::future::LocalBoxFuture;

use super::{ListenerAction, describe_existing, stack_tags, stack_tags_of, with_state};
use crate::aws::Pass;
use crate::aws::Snapshot;
use crate::converge::{Created, Drift, Resource};
use crate::error::{Error, Result, aws_error, sent};
use crate::plan::{FieldDiff, UNKNOWN, is_known};
use crate::runtime::Aws;

/// The priorities a rule may have (AWS's range; the default action is not a numbered rule).
pub const PRIORITIES: std::ops::RangeInclusive<i32> = 1..=50_000;

/// At most this many condition values per rule (all conditions together), as ALB allows.
pub const MAX_CONDITION_VALUES: usize = 5;

/// The longest path pattern or host header ALB accepts.
const MAX_VALUE_LEN: usize = 128;

/// A listener rule as it exists (or will exist) in AWS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerRule {
    /// Its ARN, or [`UNKNOWN`].
    pub arn: String,
    /// The listener it belongs to.
    pub listener_arn: String,
    /// Its priority (1-50000).
    pub priority: i32,
    /// Path patterns (empty: no path condition).
    pub paths: Vec<String>,
    /// Host headers (empty: no host condition).
    pub hosts: Vec<String>,
    /// What it does with a matching request.
    pub action: ListenerAction,
    /// Its own `deckhand:stack` tag (DescribeTags; `None`: untagged, someone else's rule).
    pub stack: Option<String>,
}

/// The listener a rule is declared on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerRef {
    /// Its ARN, or [`UNKNOWN`] when it is only planned.
    pub arn: String,
    /// Its name in the plan, `<load balancer>:<port>`.
    pub name: String,
}

/// What a script asks of a listener rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerRuleSpec {
    /// The listener.
    pub listener: ListenerRef,
    /// 1-50000, unique on the listener.
    pub priority: i32,
    /// Path patterns, e.g. `/api/*`.
    pub paths: Vec<String>,
    /// Host headers, e.g. `api.example.com`.
    pub hosts: Vec<String>,
    /// The target group it forwards to (a [`ListenerAction::Forward`]), or the two groups of a
    /// service's blue/green, canary or linear deployments (a [`ListenerAction::Weighted`]).
    pub action: ListenerAction,
}

/// The rules of a listener (DescribeRules), without its default rule, each with its own stack tag
/// ([`rule_stacks`]: a second request only when the listener has rules).
pub async fn rules(aws: &Aws, listener_arn: &str) -> Result<Vec<ListenerRule>> {
    const OP: &str = "DescribeRules";
    let mut pages =
        aws.elbv2.describe_rules().listener_arn(listener_arn).page_size(400).into_paginator().items().send();
    let mut rules = Vec::new();
    while let Some(rule) = pages.next().await {
        let rule = rule.map_err(|e| aws_error(OP, e))?;
        if rule.is_default() == Some(true) {
            continue;
        }
        let priority = rule.priority().ok_or_else(|| Error::missing(OP, "Priority"))?;
        let Ok(priority) = priority.parse() else { continue };
        let (mut paths, mut hosts) = (Vec::new(), Vec::new());
        for condition in rule.conditions() {
            match condition.field() {
                Some("path-pattern") => paths
                    .extend(condition_values(condition.path_pattern_config().map(|c| c.values()), condition.values())),
                Some("host-header") => hosts
                    .extend(condition_values(condition.host_header_config().map(|c| c.values()), condition.values())),
                Some(other) => paths.push(format!("({other} condition)")),
                None => {}
            }
        }
        rules.push(ListenerRule {
            arn: rule.rule_arn().ok_or_else(|| Error::missing(OP, "RuleArn"))?.to_string(),
            listener_arn: listener_arn.to_string(),
            priority,
            paths,
            hosts,
            action: super::listener::action_from(rule.actions()),
            stack: None,
        });
    }
    let arns: Vec<String> = rules.iter().map(|r| r.arn.clone()).collect();
    let stacks = rule_stacks(aws, &arns).await?;
    for rule in &mut rules {
        rule.stack = stacks.get(&rule.arn).cloned();
    }
    Ok(rules)
}

/// The `deckhand:stack` tags of these rules by ARN (a rule without the tag is absent): DescribeTags
/// takes rule ARNs, 20 a request (ELBv2 API reference, DescribeTags), asked concurrently. A rule
/// deleted since DescribeRules listed it fails its whole request with `RuleNotFound` (the same
/// reference's errors): that batch is asked again one by one, and the gone rule skipped.
async fn rule_stacks(aws: &Aws, arns: &[String]) -> Result<HashMap<String, String>> {
    let found = describe_existing(arns, async |batch| match stack_tags_of(aws, batch).await {
        Ok(stacks) => Ok(Some(stacks.into_iter().collect::<Vec<_>>())),
        Err(err) if err.aws_code() == Some("RuleNotFound") => Ok(None),
        Err(err) => Err(err),
    })
    .await?;
    Ok(found.into_iter().collect())
}

/// A condition's values: from its config where AWS reports one, else from the legacy `Values`.
fn condition_values(config: Option<&[String]>, legacy: &[String]) -> Vec<String> {
    match config {
        Some(values) if !values.is_empty() => values.to_vec(),
        _ => legacy.to_vec(),
    }
}

/// Checks a rule the way ALB would, before any request.
fn validate_rule(spec: &ListenerRuleSpec) -> Result<()> {
    if !PRIORITIES.contains(&spec.priority) {
        return Err(Error::invalid("listener_rule.priority", spec.priority, "a priority from 1 to 50000"));
    }
    if spec.paths.is_empty() && spec.hosts.is_empty() {
        return Err(Error::MissingKey {
            key: "paths".into(),
            context: "listener_rule()".into(),
            what: "a rule needs at least one condition: `paths` (e.g. [\"/api/*\"]) and/or `hosts` (e.g. [\"api.example.com\"])"
                .into(),
        });
    }
    for (key, values) in [("listener_rule.paths", &spec.paths), ("listener_rule.hosts", &spec.hosts)] {
        for value in values {
            if value.is_empty() || value.len() > MAX_VALUE_LEN || value.chars().any(char::is_whitespace) {
                return Err(Error::invalid(key, format!("{value:?}"), "1 to 128 characters, no spaces"));
            }
        }
    }
    let total = spec.paths.len() + spec.hosts.len();
    if total > MAX_CONDITION_VALUES {
        return Err(Error::invalid(
            "listener_rule",
            format!("{total} condition values ({} paths, {} hosts)", spec.paths.len(), spec.hosts.len()),
            format!(
                "at most {MAX_CONDITION_VALUES} condition values in total per rule (an ALB limit); split it into several rules"
            ),
        ));
    }
    Ok(())
}

/// Claims the rule's priority on its listener for this statement: the pass declares one rule per
/// priority on a listener. Claimed where a statement finds its rule, so only statements claim:
/// not a create sent ahead of the script (see `converge::create_early`), whose statement, when it
/// records the rule, must not find its priority taken.
fn claim_priority(pass: &Pass, spec: &ListenerRuleSpec) -> Result<()> {
    // A listener still to be created has no ARN to tell it from another planned one: its name does.
    let key = if is_known(&spec.listener.arn) {
        spec.listener.arn.clone()
    } else {
        format!("(planned) {}", spec.listener.name)
    };
    let snapshot = pass.snapshot()?;
    if snapshot.borrow_mut().elbv2.rules_declared.insert((key, spec.priority)) {
        return Ok(());
    }
    Err(Error::invalid(
        "listener_rule.priority",
        spec.priority,
        format!("a priority no other rule of listener {} has (each priority is one rule)", spec.listener.name),
    ))
}

/// Makes sure the rules of `listener_arn` (a listener of the stack) are in the pass's snapshot,
/// each with its own stack tag.
fn read_rules(pass: &Pass, listener_arn: &str) -> Result<()> {
    if !is_known(listener_arn) || with_state(pass, |s| s.rules_read.contains(listener_arn))? {
        return Ok(());
    }
    let Some(found) = pass.read(async |aws| rules(aws, listener_arn).await) else { return Ok(()) };
    let found = found?;
    pass.remember_read(|s| s.elbv2.add_rules(listener_arn, found.clone()))
}

fn sdk_conditions(paths: &[String], hosts: &[String]) -> Vec<RuleCondition> {
    let mut conditions = Vec::new();
    if !paths.is_empty() {
        conditions.push(
            RuleCondition::builder()
                .field("path-pattern")
                .path_pattern_config(PathPatternConditionConfig::builder().set_values(Some(paths.to_vec())).build())
                .build(),
        );
    }
    if !hosts.is_empty() {
        conditions.push(
            RuleCondition::builder()
                .field("host-header")
                .host_header_config(HostHeaderConditionConfig::builder().set_values(Some(hosts.to_vec())).build())
                .build(),
        );
    }
    conditions
}

fn sdk_forward(action: &ListenerAction) -> Result<Action> {
    match action {
        ListenerAction::Forward { arn, .. } if is_known(arn) => {
            Ok(Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(arn).build())
        }
        ListenerAction::Weighted(groups) if groups.iter().all(|g| is_known(&g.arn)) => {
            Ok(super::listener::weighted_action(groups))
        }
        other => Err(Error::Internal(format!("a listener rule forwarding to {other} (no target group ARN)"))),
    }
}

fn sorted(values: &[String]) -> Vec<String> {
    let mut values = values.to_vec();
    values.sort();
    values
}

fn show(values: &[String]) -> String {
    if values.is_empty() { "(none)".into() } else { values.join(", ") }
}

/// The one name of a rule, as the plan, the inventory and status show it:
/// `<load balancer>:<port>#<priority>` (`listener` is the listener's [`super::listener::listener_name`]).
pub fn rule_name(listener: &str, priority: i32) -> String {
    format!("{listener}#{priority}")
}

/// A listener rule converges by priority on its listener: created when missing, its conditions
/// and target group modified in place (ModifyRule).
impl Resource for ListenerRule {
    type Reads = Snapshot;
    type Spec = ListenerRuleSpec;
    type Update = ();
    const KIND: &'static str = "listener_rule";

    fn name(spec: &ListenerRuleSpec) -> String {
        rule_name(&spec.listener.name, spec.priority)
    }

    fn validate(_pass: &Pass, spec: &ListenerRuleSpec) -> Result<()> {
        validate_rule(spec)
    }

    fn find(pass: &Pass, spec: &ListenerRuleSpec) -> Result<Option<ListenerRule>> {
        claim_priority(pass, spec)?;
        let listener = &spec.listener.arn;
        if !is_known(listener) {
            return Ok(None);
        }
        let stack = pass.stack()?;
        let ours = with_state(pass, |s| s.listeners.iter().any(|l| l.arn == *listener))?;
        if !ours && pass.aws().is_some() {
            return Err(Error::conflict(
                format!("listener {} ({listener}) is not part of stack {stack}", spec.listener.name),
                Some("deckhand manages rules only on the listeners of its stack: pass a listener() handle"),
            ));
        }
        read_rules(pass, listener)?;
        // The rule at this priority, whoever made it: one that is not the stack's is refused by
        // the engine's ownership check (its own tag, see `stack_of`), never taken over.
        with_state(pass, |s| {
            s.rules.iter().find(|r| r.listener_arn == *listener && r.priority == spec.priority).cloned()
        })
    }

    fn locator(live: &ListenerRule) -> String {
        crate::arn::short_id(&live.arn).to_string()
    }

    fn stack_of(live: &ListenerRule) -> Option<&str> {
        live.stack.as_deref()
    }

    fn foreign_hint() -> &'static str {
        "deckhand never takes over a rule it did not create: give this rule a priority no other rule of the listener \
         has (or tag that rule deckhand:stack=<stack> if this stack should own it)"
    }

    fn planned(spec: &ListenerRuleSpec, stack: &str) -> ListenerRule {
        ListenerRule {
            arn: UNKNOWN.into(),
            listener_arn: spec.listener.arn.clone(),
            priority: spec.priority,
            paths: spec.paths.clone(),
            hosts: spec.hosts.clone(),
            action: spec.action.clone(),
            stack: Some(stack.to_string()),
        }
    }

    fn create(pass: &Pass, spec: &ListenerRuleSpec, stack: &str) -> Result<Created<ListenerRule>> {
        pass.block(create(pass, spec, stack))
    }

    fn create_beside(
        pass: &Pass,
        spec: ListenerRuleSpec,
        stack: String,
    ) -> Option<LocalBoxFuture<'_, Result<Created<ListenerRule>>>> {
        Some(Box::pin(async move { create(pass, &spec, &stack).await }))
    }

    fn diff(live: &ListenerRule, spec: &ListenerRuleSpec) -> Drift<()> {
        let mut diffs = Vec::new();
        if sorted(&live.paths) != sorted(&spec.paths) {
            diffs.push(FieldDiff::changed("paths", show(&live.paths), show(&spec.paths)));
        }
        if sorted(&live.hosts) != sorted(&spec.hosts) {
            diffs.push(FieldDiff::changed("hosts", show(&live.hosts), show(&spec.hosts)));
        }
        if !live.action.same_as(&spec.action) {
            diffs.push(FieldDiff::changed("forward", &live.action, &spec.action));
        }
        Drift::of(diffs)
    }

    fn update(pass: &Pass, live: &ListenerRule, spec: &ListenerRuleSpec, _: &()) -> Result<ListenerRule> {
        let action = sdk_forward(&spec.action)?;
        pass.apply(async |aws| {
            aws.elbv2
                .modify_rule()
                .rule_arn(&live.arn)
                .set_conditions(Some(sdk_conditions(&spec.paths, &spec.hosts)))
                .actions(action)
                .send()
                .await
                .map_err(|e| aws_error("ModifyRule", e))
        })?;
        Ok(Self::updated(live, spec))
    }

    fn updated(live: &ListenerRule, spec: &ListenerRuleSpec) -> ListenerRule {
        ListenerRule {
            paths: spec.paths.clone(),
            hosts: spec.hosts.clone(),
            action: spec.action.clone(),
            ..live.clone()
        }
    }

    fn remember(snapshot: &mut Snapshot, live: &ListenerRule) {
        let state = &mut snapshot.elbv2;
        state.rules.retain(|r| !(r.listener_arn == live.listener_arn && r.priority == live.priority));
        state.rules.push(live.clone());
    }

    fn summary(live: &ListenerRule) -> String {
        live.summary()
    }
}

/// Creates the rule tagged with the stack (its own tag: see the module's comment).
async fn create(pass: &Pass, spec: &ListenerRuleSpec, stack: &str) -> Result<Created<ListenerRule>> {
    let name = ListenerRule::name(spec);
    if !is_known(&spec.listener.arn) {
        return Err(Error::Internal(format!("listener rule {name} on a listener that was not created")));
    }
    let action = sdk_forward(&spec.action)?;
    let out = pass
        .send(async |aws| {
            aws.elbv2
                .create_rule()
                .listener_arn(&spec.listener.arn)
                .priority(spec.priority)
                .set_conditions(Some(sdk_conditions(&spec.paths, &spec.hosts)))
                .actions(action)
                .set_tags(Some(stack_tags(stack, &name)))
                .send()
                .await
                .map_err(|e| aws_error("CreateRule", e))
        })
        .await?;
    let arn = out.rules().first().and_then(|r| r.rule_arn()).ok_or_else(|| Error::missing("CreateRule", "RuleArn"))?;
    Ok(Created::New(ListenerRule { arn: arn.to_string(), ..ListenerRule::planned(spec, stack) }))
}

impl ListenerRule {
    /// Its conditions and action in a line, e.g. `paths /api/*, forward api`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if !self.paths.is_empty() {
            parts.push(format!("paths {}", self.paths.join(" ")));
        }
        if !self.hosts.is_empty() {
            parts.push(format!("hosts {}", self.hosts.join(" ")));
        }
        parts.push(self.action.to_string());
        parts.join(", ")
    }
}

/// Deletes a listener rule.
pub async fn delete_rule(aws: &Aws, arn: &str) -> Result<()> {
    sent("DeleteRule", aws.elbv2.delete_rule().rule_arn(arn).send()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_compare_conditions_as_sets() {
        let spec = ListenerRuleSpec {
            listener: ListenerRef { arn: "arn:l".into(), name: "app:80".into() },
            priority: 10,
            paths: vec!["/b".into(), "/a".into()],
            hosts: vec![],
            action: ListenerAction::Forward { arn: "arn:tg".into(), name: "api".into() },
        };
        let mut live = ListenerRule::planned(&spec, "s");
        live.paths = vec!["/a".into(), "/b".into()];
        assert!(ListenerRule::diff(&live, &spec).is_empty());
        live.paths = vec!["/a".into()];
        let drift = ListenerRule::diff(&live, &spec);
        assert_eq!(drift.diffs[0].to_string(), "paths: /a -> /b, /a");
        assert_eq!(ListenerRule::name(&spec), "app:80#10");
        assert_eq!(live.summary(), "paths /a, forward api");
    }
}
