//! `service(..., #{ deploy: #{ strategy, bake, canary, linear, alarms, test_listener } })`: the
//! deployment strategy, and what ECS needs to shift a load balancer's traffic, which deckhand
//! creates and owns (ECS developer guide, "Application Load Balancer resources for blue/green,
//! linear, and canary deployments"):
//!
//! - the alternate target group, a copy of the service's target group's settings named
//!   `<name>-alt`;
//! - the production listener rule: on the listener that forwards to the service's target group,
//!   a rule at the last priority ([`SHIFT_PRIORITY`]) matching every path and forwarding to both
//!   groups by weight. ECS's productionListenerRule must be a rule ARN; a listener's default rule
//!   has one too (DescribeRules, IsDefault), but ECS would then rewrite the listener's default
//!   action, which the script declares (`forward: tg`, or a redirect), so deckhand gives ECS a
//!   rule of its own and leaves the default action alone (it serves nothing while the rule
//!   matches every path);
//! - the same rule on the test listener, when the script gives one;
//! - the infrastructure role ECS calls Elastic Load Balancing with: trusted by ecs.amazonaws.com,
//!   with AWS's managed policy AmazonECSInfrastructureRolePolicyForLoadBalancers.
//!
//! ECS moves the rules' weights and swaps the two groups at every deployment; the rule kind and
//! the service kind accept either group as primary ([`ListenerAction::Weighted`],
//! [`crate::aws::ecs::LoadBalancerSpec::oriented_to`]), so a re-run changes nothing.

use rhai::{Dynamic, Map};

use crate::aws::Pass;
use crate::aws::ecs::{AdvancedLb, Service, ServiceSpec, Strategy};
use crate::aws::elbv2::{
    ListenerAction, ListenerRef, ListenerRule, ListenerRuleSpec, TargetGroup, TargetGroupSpec, WeightedGroup,
    listener_name,
};
use crate::aws::iam::{self, DesiredRole, Role, RoleSpec, Trust};
use crate::bindings::{Fields, as_array, as_string, handle_field, show};
use crate::converge::{Resource, converge};
use crate::error::{Error, Result};
use crate::plan::{Change, ChangeKind, UNKNOWN, is_known};

use super::sub_map;

/// The priority of deckhand's traffic-shifting rules: the last one, so the script's own rules
/// (paths, hosts) are evaluated first.
pub const SHIFT_PRIORITY: i32 = 50_000;

/// The service principal ECS calls other services as for a service's infrastructure.
const ECS_SERVICE: &str = "ecs.amazonaws.com";

/// AWS's managed policy for ECS's load balancer traffic shifts (ECS developer guide, "Amazon ECS
/// infrastructure IAM role for load balancers").
const LOAD_BALANCER_POLICY: &str = "AmazonECSInfrastructureRolePolicyForLoadBalancers";

/// The script's `deploy` map, read: the deployment settings it sets, and the test listener.
pub(super) struct DeployOptions {
    /// How tasks are replaced.
    pub strategy: Strategy,
    /// Alarm names (sorted, unique).
    pub alarms: Vec<String>,
    /// The test listener's handle.
    pub test_listener: Option<Map>,
}

impl Default for DeployOptions {
    fn default() -> Self {
        DeployOptions { strategy: Strategy::Rolling, alarms: Vec::new(), test_listener: None }
    }
}

/// Reads `deploy`: `strategy` ("rolling" default), `bake` (minutes after production traffic
/// moved; default 5, blue/green needs one), `canary: #{ percent, bake }` (ECS's defaults 5% and
/// 10 minutes), `linear: #{ step, bake }` (10% and 6 minutes), `alarms` (alarm handles or
/// names) and `test_listener` (blue/green, canary and linear).
pub(super) fn deploy_options(f: &Fields) -> Result<DeployOptions> {
    let Some(map) = sub_map(f, "deploy")? else { return Ok(DeployOptions::default()) };
    let d = Fields::new("service.deploy", map, &["strategy", "bake", "canary", "linear", "alarms", "test_listener"])?;
    let strategy = d.str("strategy")?.unwrap_or_else(|| "rolling".into());
    let minutes = |fields: &Fields, key: &str, default: i64| -> Result<i32> {
        let value = fields.int(key)?.unwrap_or(default);
        i32::try_from(value).map_err(|_| Error::invalid(fields.name(key), value, "minutes from 0 to 1440 (24 hours)"))
    };
    let bake = minutes(&d, "bake", 5)?;
    let steps = |key: &str, percent_key: &str, default_percent: f64, default_bake: i64| -> Result<(i32, i32)> {
        let Some(map) = sub_map(&d, key)? else {
            return Ok(((default_percent * 10.0) as i32, default_bake as i32));
        };
        let s = Fields::new(
            if key == "canary" { "service.deploy.canary" } else { "service.deploy.linear" },
            map,
            &[percent_key, "bake"],
        )?;
        let tenths = match s.raw(percent_key) {
            None => (default_percent * 10.0) as i32,
            Some(value) => tenths(&s.name(percent_key), value)?,
        };
        Ok((tenths, minutes(&s, "bake", default_bake)?))
    };
    let only = |key: &str, strategy: &str| -> Result<()> {
        match d.raw(key) {
            Some(value) => Err(Error::invalid(d.name(key), show(value), format!("only with strategy \"{strategy}\""))),
            None => Ok(()),
        }
    };
    let strategy = match strategy.as_str() {
        "rolling" => {
            for key in ["bake", "test_listener"] {
                if let Some(value) = d.raw(key) {
                    return Err(Error::invalid(
                        d.name(key),
                        show(value),
                        "only with strategy \"blue_green\", \"canary\" or \"linear\"",
                    ));
                }
            }
            only("canary", "canary")?;
            only("linear", "linear")?;
            Strategy::Rolling
        }
        "blue_green" => {
            only("canary", "canary")?;
            only("linear", "linear")?;
            Strategy::BlueGreen { bake }
        }
        "canary" => {
            only("linear", "linear")?;
            let (tenths, step_bake) = steps("canary", "percent", 5.0, 10)?;
            Strategy::Canary { bake, tenths, step_bake }
        }
        "linear" => {
            only("canary", "canary")?;
            let (tenths, step_bake) = steps("linear", "step", 10.0, 6)?;
            Strategy::Linear { bake, tenths, step_bake }
        }
        other => {
            return Err(Error::invalid(
                d.name("strategy"),
                format!("{other:?}"),
                "\"rolling\", \"blue_green\", \"canary\" or \"linear\"",
            ));
        }
    };
    let mut alarms = match d.raw("alarms") {
        None => Vec::new(),
        Some(value) => as_array(&d.name("alarms"), value)?
            .iter()
            .enumerate()
            .map(|(i, alarm)| alarm_name(&format!("{}[{i}]", d.name("alarms")), alarm))
            .collect::<Result<Vec<_>>>()?,
    };
    alarms.sort();
    alarms.dedup();
    let test_listener = match d.raw("test_listener") {
        None => None,
        Some(value) => Some(
            value
                .clone()
                .try_cast::<Map>()
                .filter(|m| m.get("kind").map(ToString::to_string).as_deref() == Some("listener"))
                .ok_or_else(|| Error::invalid(d.name("test_listener"), show(value), "a listener() handle"))?,
        ),
    };
    Ok(DeployOptions { strategy, alarms, test_listener })
}

/// A percentage in tenths: ECS takes multiples of 0.1.
fn tenths(key: &str, value: &Dynamic) -> Result<i32> {
    let percent = match (value.as_int(), value.as_float()) {
        (Ok(i), _) => i as f64,
        (_, Ok(f)) => f,
        _ => return Err(Error::invalid(key, show(value), "a percentage, e.g. 10 or 2.5")),
    };
    let tenths = (percent * 10.0).round();
    if (percent * 10.0 - tenths).abs() > 1e-6 || !(0.0..=1000.0).contains(&tenths) {
        return Err(Error::invalid(key, show(value), "a percentage from 0.1 to 100, in steps of 0.1"));
    }
    Ok(tenths as i32)
}

/// An alarm: an alarm() handle or an alarm name.
fn alarm_name(key: &str, value: &Dynamic) -> Result<String> {
    if value.is_map() {
        let kind = handle_field(value, "kind").map(|k| k.to_string()).unwrap_or_default();
        return match handle_field(value, "name") {
            Some(name) if kind == "alarm" => Ok(name.to_string()),
            _ => Err(Error::invalid(key, show(value), "an alarm() handle or an alarm name")),
        };
    }
    let name = as_string(key, value)?;
    if name.is_empty() || name.len() > 255 {
        return Err(Error::invalid(key, format!("{name:?}"), "an alarm name of 1 to 255 characters"));
    }
    Ok(name)
}

/// The name of a service's alternate target group: its target group's name (at most 32
/// characters, as ELB allows) with `-alt`.
pub fn alternate_name(name: &str) -> String {
    let base: String = name.chars().take(28).collect();
    format!("{}-alt", base.trim_end_matches('-'))
}

/// The name of a service's infrastructure role.
fn role_name(stack: &str, service: &str) -> String {
    let name = format!("{stack}-{service}-ecs-infra");
    if name.len() <= 64 { name } else { format!("{}-ecs-infra", &name[..54]) }
}

/// For a strategy that shifts traffic: converges the alternate target group, the infrastructure
/// role and the listener rules, and sets the service's advanced configuration to them. Checks
/// first what ECS requires: a target group, exactly one listener of the stack forwarding to it,
/// and a test listener on the same load balancer (on another port).
pub(super) fn converge_traffic_shift(
    pass: &Pass,
    spec: &mut ServiceSpec,
    options: &DeployOptions,
    target_group: Option<&Dynamic>,
) -> Result<()> {
    if !options.strategy.shifts_traffic() {
        return Ok(());
    }
    let strategy = options.strategy.name();
    let Some(lb) = spec.load_balancer.clone() else {
        return Err(Error::invalid(
            "service.deploy.strategy",
            format!("{strategy:?}"),
            "\"rolling\" for a service without target_group: blue_green, canary and linear shift a load balancer's traffic",
        ));
    };
    let tg_name = target_group.and_then(|tg| handle_field(tg, "name")).map(|n| n.to_string());
    let snapshot = pass.snapshot()?;
    let (primary, listener, lb_name) = {
        let guard = snapshot.borrow();
        let state = &guard.elbv2;
        let primary = state
            .target_groups
            .iter()
            .chain(state.target_groups_named.values().flatten())
            .find(|t| {
                if is_known(&lb.target_group_arn) {
                    t.arn == lb.target_group_arn
                } else {
                    Some(&t.name) == tg_name.as_ref()
                }
            })
            .cloned();
        let forwards = |action: &ListenerAction| match action {
            ListenerAction::Forward { arn, name } => {
                if is_known(&lb.target_group_arn) {
                    *arn == lb.target_group_arn
                } else {
                    !is_known(arn) && primary.as_ref().is_some_and(|p| p.name == *name)
                }
            }
            _ => false,
        };
        // The test listener may forward to the group too: it is not the production listener.
        let test_arn = options.test_listener.as_ref().and_then(|t| t.get("arn")).map(ToString::to_string);
        let test_port = options.test_listener.as_ref().and_then(|t| t.get("port")).and_then(|p| p.as_int().ok());
        let is_test = |l: &crate::aws::elbv2::Listener| {
            test_arn.as_deref().is_some_and(|arn| is_known(arn) && arn == l.arn)
                || test_port.is_some_and(|port| port == i64::from(l.port) && !is_known(&l.arn))
        };
        let mut listeners: Vec<_> = state.listeners.iter().filter(|l| forwards(&l.action)).cloned().collect();
        if listeners.len() > 1 {
            listeners.retain(|l| !is_test(l));
        }
        let listener = match listeners.as_slice() {
            [one] => one.clone(),
            [] => {
                return Err(Error::invalid(
                    "service.deploy.strategy",
                    format!("{strategy:?}"),
                    "a service whose target group a listener of the stack forwards to (declare \
                     listener(alb, #{ port: 80, forward: tg }) before service(): ECS shifts that listener's traffic)",
                ));
            }
            many => {
                let ports: Vec<String> = many.iter().map(|l| l.port.to_string()).collect();
                return Err(Error::invalid(
                    "service.deploy.strategy",
                    format!("{strategy:?}"),
                    format!(
                        "a target group one listener forwards to (listeners on ports {} all do; ECS shifts one \
                         production listener's traffic, give the others test_listener or a redirect)",
                        ports.join(", ")
                    ),
                ));
            }
        };
        // The listener's load balancer by ARN; one still planned has none, so it is the only
        // planned one, when there is only one.
        let planned: Vec<_> = state.load_balancers.iter().filter(|b| !is_known(&b.arn)).collect();
        let lb_name = match state.load_balancers.iter().find(|b| b.arn == listener.load_balancer_arn) {
            Some(lb) if is_known(&lb.arn) => Some(lb.name.clone()),
            _ if !is_known(&listener.load_balancer_arn) && planned.len() == 1 => Some(planned[0].name.clone()),
            _ => None,
        };
        (primary, listener, lb_name)
    };
    let Some(primary) = primary else {
        return Err(Error::invalid(
            "service.target_group",
            &lb.target_group_arn,
            format!(
                "a target group of this stack, declared before service() (deploy strategy {strategy:?} copies its settings into the alternate group)"
            ),
        ));
    };
    let test_listener =
        options.test_listener.as_ref().map(|m| test_listener_ref(m, &listener, lb_name.as_deref())).transpose()?;

    let alternate = converge::<TargetGroup>(pass, &alternate_spec(&primary))?;
    let stack = pass.stack()?;
    let role = RoleSpec {
        name: role_name(&stack, &spec.name),
        trust: Trust::Services(vec![ECS_SERVICE.to_string()]),
        managed_policies: vec![LOAD_BALANCER_POLICY.to_string()],
        description: Some(format!("ECS shifts the load balancer traffic of service {} (deckhand)", spec.name)),
        path: None,
    };
    iam::validate_role_name("service.deploy", &role.name)?;
    let role = converge::<Role>(pass, &DesiredRole::resolve(&role, iam::partition(pass.region()))?)?;

    // Weights at creation: all to the group the service serves from now (the script's, or the
    // alternate after ECS swapped them); from then on ECS moves them.
    let live = Service::find(pass, spec)?;
    let swapped = live.is_some_and(|s| {
        s.load_balancers.iter().any(|l| l.target_group_arn == alternate.arn && is_known(&alternate.arn))
    });
    let (first, second) = if swapped { (&alternate, &primary) } else { (&primary, &alternate) };
    let action = ListenerAction::Weighted(vec![
        WeightedGroup { arn: first.arn.clone(), name: first.name.clone(), weight: 100 },
        WeightedGroup { arn: second.arn.clone(), name: second.name.clone(), weight: 0 },
    ]);
    let listener_label = listener_name(lb_name.as_deref().unwrap_or("load balancer"), listener.port);
    let rule = |listener: ListenerRef| -> Result<ListenerRule> {
        converge::<ListenerRule>(
            pass,
            &ListenerRuleSpec {
                listener,
                priority: SHIFT_PRIORITY,
                paths: vec!["/*".into()],
                hosts: Vec::new(),
                action: action.clone(),
            },
        )
    };
    let production = rule(ListenerRef { arn: listener.arn.clone(), name: listener_label })?;
    let test = test_listener.map(rule).transpose()?;
    let advanced = AdvancedLb {
        alternate_target_group_arn: alternate.arn,
        production_rule_arn: production.arn,
        test_rule_arn: test.map(|t| t.arn),
        role_arn: role.arn,
    };
    if let Some(lb) = spec.load_balancer.as_mut() {
        lb.advanced = Some(advanced);
    }
    Ok(())
}

/// Back to rolling: the infrastructure role deckhand made for the service's traffic shifts is no
/// longer needed once the service's mapping no longer names it (the service converged first), so
/// it is deleted, like the exec and secrets policies that are no longer needed. The alternate
/// target group and the rules are the stack's like any, and pruned when the run ends; the role is
/// not (a run lists no roles: IAM cannot list them by tag).
pub(super) fn release_infra_role(pass: &Pass, before: Option<&Service>, options: &DeployOptions) -> Result<()> {
    if options.strategy.shifts_traffic() {
        return Ok(());
    }
    let Some(before) = before else { return Ok(()) };
    let named = before.load_balancers.iter().find_map(|lb| lb.advanced.as_ref()).map(|a| a.role_arn.clone());
    let Some(arn) = named else { return Ok(()) };
    let name = crate::arn::last_segment(&arn).to_string();
    if name != role_name(&pass.stack()?, &before.name) || !iam::role_is_stacks(pass, &name)? {
        return Ok(());
    }
    if pass.mode.applies() {
        pass.apply(async |aws| iam::delete_role(aws, &name).await)?;
        pass.snapshot()?.borrow_mut().iam.roles.insert(name.clone(), None);
    }
    pass.log.record(Change::new(
        ChangeKind::Delete,
        "role",
        &name,
        format!("no longer needed: service {} deploys rolling", before.name),
    ));
    Ok(())
}

/// The test listener: another port of the production listener's load balancer.
fn test_listener_ref(
    handle: &Map,
    production: &crate::aws::elbv2::Listener,
    lb_name: Option<&str>,
) -> Result<ListenerRef> {
    let text = |key: &str| handle.get(key).map(ToString::to_string).unwrap_or_default();
    let (arn, name, lb_arn) = (text("arn"), text("name"), text("load_balancer_arn"));
    let port = handle.get("port").and_then(|p| p.as_int().ok()).unwrap_or_default();
    let same_lb = match (is_known(&lb_arn) && !lb_arn.is_empty(), is_known(&production.load_balancer_arn)) {
        (true, true) => lb_arn == production.load_balancer_arn,
        // Both only planned: the handle's name, `<load balancer>:<port>`, says which.
        _ => lb_name.is_none_or(|lb| name.rsplit_once(':').is_none_or(|(n, _)| n == lb)),
    };
    if !same_lb {
        return Err(Error::invalid(
            "service.deploy.test_listener",
            format!("listener {name}"),
            "a listener on the load balancer of the service's production listener (ECS shifts test and production traffic on one load balancer)",
        ));
    }
    if port == i64::from(production.port) {
        return Err(Error::invalid(
            "service.deploy.test_listener",
            format!("listener {name}"),
            format!("a listener on another port than the production listener's {}", production.port),
        ));
    }
    Ok(ListenerRef { arn: if arn.is_empty() { UNKNOWN.into() } else { arn }, name })
}

/// The alternate target group: the service's target group's settings under another name.
fn alternate_spec(primary: &TargetGroup) -> TargetGroupSpec {
    TargetGroupSpec {
        name: alternate_name(&primary.name),
        vpc_id: primary.vpc_id.clone(),
        port: primary.port,
        protocol: primary.protocol.clone(),
        target_type: primary.target_type.clone(),
        health_check: primary.health_check.clone(),
        deregistration_delay: primary.deregistration_delay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_names_fit_aws_limits() {
        assert_eq!(alternate_name("myapp"), "myapp-alt");
        let long = "a".repeat(32);
        assert_eq!(alternate_name(&long).len(), 32);
        assert_eq!(role_name("shop", "web"), "shop-web-ecs-infra");
        assert!(role_name(&"s".repeat(40), &"w".repeat(40)).len() <= 64);
    }
}
