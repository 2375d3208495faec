//! How a service deploys: the strategy (rolling, blue/green, canary, linear) with its bake
//! times and traffic steps, the CloudWatch alarms that roll a deployment back, the PAUSE hook
//! after test traffic, and the load balancer's advanced configuration (the alternate target
//! group, the production and test listener rules, the infrastructure role) that ECS needs for
//! every strategy but rolling. ECS API reference: DeploymentConfiguration, CanaryConfiguration,
//! LinearConfiguration, DeploymentAlarms, DeploymentLifecycleHook, AdvancedConfiguration.

use std::fmt;

use aws_sdk_ecs::types::{
    AdvancedConfiguration, CanaryConfiguration, DeploymentAlarms, DeploymentCircuitBreaker, DeploymentConfiguration,
    DeploymentLifecycleHook, DeploymentLifecycleHookAction, DeploymentLifecycleHookStage,
    DeploymentLifecycleHookTargetType, DeploymentLifecycleHookTimeoutConfiguration, DeploymentStrategy,
    LinearConfiguration,
};

use super::built;
use crate::error::{Error, Result};
use crate::timing::DEPLOYMENT_PAUSE_TIMEOUT;

/// The bake time ranges ECS accepts, in minutes (bakeTimeInMinutes, canaryBakeTimeInMinutes,
/// stepBakeTimeInMinutes: 0 to 1440).
pub const BAKE_MINUTES: std::ops::RangeInclusive<i32> = 0..=1440;

/// [`DEPLOYMENT_PAUSE_TIMEOUT`] in minutes, as ECS takes it.
pub const PAUSE_TIMEOUT_MINUTES: i32 = (DEPLOYMENT_PAUSE_TIMEOUT.as_secs() / 60) as i32;

/// How a service replaces its tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// ECS's rolling update (minimum healthy / maximum percent).
    Rolling,
    /// All production traffic moves at once to the new revision; `bake` minutes later the old
    /// one stops.
    BlueGreen {
        /// bakeTimeInMinutes.
        bake: i32,
    },
    /// `percent` of production traffic first, the rest after `step_bake` minutes.
    Canary {
        /// bakeTimeInMinutes.
        bake: i32,
        /// canaryPercent in tenths of a percent (ECS takes multiples of 0.1 from 0.1 to 100).
        tenths: i32,
        /// canaryBakeTimeInMinutes.
        step_bake: i32,
    },
    /// Production traffic in equal steps of `percent`, `step_bake` minutes apart.
    Linear {
        /// bakeTimeInMinutes.
        bake: i32,
        /// stepPercent in tenths of a percent (ECS takes multiples of 0.1 from 3 to 100).
        tenths: i32,
        /// stepBakeTimeInMinutes.
        step_bake: i32,
    },
}

impl Strategy {
    /// The script's name of the strategy.
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::Rolling => "rolling",
            Strategy::BlueGreen { .. } => "blue_green",
            Strategy::Canary { .. } => "canary",
            Strategy::Linear { .. } => "linear",
        }
    }

    /// Whether ECS shifts traffic between two target groups (every strategy but rolling), so the
    /// service needs the load balancer's advanced configuration.
    pub fn shifts_traffic(&self) -> bool {
        *self != Strategy::Rolling
    }

    /// The bake time after production traffic has moved, in minutes (0 for rolling).
    pub fn bake(&self) -> i32 {
        match self {
            Strategy::Rolling => 0,
            Strategy::BlueGreen { bake } | Strategy::Canary { bake, .. } | Strategy::Linear { bake, .. } => *bake,
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let percent = |tenths: i32| {
            if tenths % 10 == 0 { format!("{}%", tenths / 10) } else { format!("{}.{}%", tenths / 10, tenths % 10) }
        };
        match self {
            Strategy::Rolling => f.write_str("rolling"),
            Strategy::BlueGreen { bake } => write!(f, "blue_green, bake {bake}m"),
            Strategy::Canary { bake, tenths, step_bake } => {
                write!(f, "canary {} for {step_bake}m, bake {bake}m", percent(*tenths))
            }
            Strategy::Linear { bake, tenths, step_bake } => {
                write!(f, "linear {} every {step_bake}m, bake {bake}m", percent(*tenths))
            }
        }
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
    /// How tasks are replaced.
    pub strategy: Strategy,
    /// CloudWatch alarms (names, sorted) that fail the deployment and roll it back when one is in
    /// ALARM (deploymentConfiguration.alarms with enable and rollback on).
    pub alarms: Vec<String>,
    /// A PAUSE hook at POST_TEST_TRAFFIC_SHIFT (blue/green with a test listener): ECS waits for
    /// ContinueServiceDeployment before production traffic moves, or rolls back after
    /// [`PAUSE_TIMEOUT_MINUTES`].
    pub pause_after_test: bool,
}

impl Default for Deployment {
    /// ECS's defaults for a rolling service, with the circuit breaker and rollback on.
    fn default() -> Self {
        Deployment {
            circuit_breaker: true,
            min_healthy_percent: 100,
            max_percent: 200,
            strategy: Strategy::Rolling,
            alarms: Vec::new(),
            pause_after_test: false,
        }
    }
}

impl fmt::Display for Deployment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "circuit breaker {}, {}-{}%",
            if self.circuit_breaker { "on (rollback)" } else { "off" },
            self.min_healthy_percent,
            self.max_percent
        )?;
        if self.strategy.shifts_traffic() {
            write!(f, ", {}", self.strategy)?;
        }
        if !self.alarms.is_empty() {
            write!(f, ", alarms {}", self.alarms.join(" "))?;
        }
        if self.pause_after_test {
            f.write_str(", pause after test traffic")?;
        }
        Ok(())
    }
}

/// Checks the strategy's numbers against the ranges ECS documents (CanaryConfiguration,
/// LinearConfiguration, bakeTimeInMinutes), naming the script's key.
pub fn validate_deployment(d: &Deployment) -> Result<()> {
    let bake = |key: &str, minutes: i32| {
        if BAKE_MINUTES.contains(&minutes) {
            Ok(())
        } else {
            Err(Error::invalid(key, minutes, "minutes from 0 to 1440 (24 hours)"))
        }
    };
    if d.alarms.len() > 10 {
        return Err(Error::invalid("service.deploy.alarms", d.alarms.len(), "at most 10 alarms"));
    }
    // The traffic steps: the strategy's key, its percent key, the lowest percent in tenths.
    let (name, percent_key, lowest, allowed, b, tenths, step_bake) = match &d.strategy {
        Strategy::Rolling => return Ok(()),
        Strategy::BlueGreen { bake: b } => return bake("service.deploy.bake", *b),
        Strategy::Canary { bake, tenths, step_bake } => {
            ("canary", "percent", 1, "a percentage from 0.1 to 100, in steps of 0.1", bake, tenths, step_bake)
        }
        Strategy::Linear { bake, tenths, step_bake } => {
            ("linear", "step", 30, "a percentage from 3 to 100, in steps of 0.1", bake, tenths, step_bake)
        }
    };
    bake("service.deploy.bake", *b)?;
    bake(&format!("service.deploy.{name}.bake"), *step_bake)?;
    if !(lowest..=1000).contains(tenths) {
        return Err(Error::invalid(format!("service.deploy.{name}.{percent_key}"), f64::from(*tenths) / 10.0, allowed));
    }
    Ok(())
}

/// The SDK's deployment configuration for `d`. Alarms and lifecycle hooks are always sent (empty
/// when the script has none), so taking them out of a script takes them off the service.
pub fn deployment_configuration(d: &Deployment) -> Result<DeploymentConfiguration> {
    let alarms = DeploymentAlarms::builder()
        .set_alarm_names(Some(d.alarms.clone()))
        .enable(!d.alarms.is_empty())
        .rollback(!d.alarms.is_empty())
        .build();
    let mut config = DeploymentConfiguration::builder()
        .deployment_circuit_breaker(
            DeploymentCircuitBreaker::builder().enable(d.circuit_breaker).rollback(d.circuit_breaker).build(),
        )
        .minimum_healthy_percent(d.min_healthy_percent)
        .maximum_percent(d.max_percent)
        .alarms(built("deployment alarms", alarms)?)
        .set_lifecycle_hooks(Some(lifecycle_hooks(d)));
    config = match &d.strategy {
        Strategy::Rolling => config.strategy(DeploymentStrategy::Rolling),
        Strategy::BlueGreen { bake } => config.strategy(DeploymentStrategy::BlueGreen).bake_time_in_minutes(*bake),
        Strategy::Canary { bake, tenths, step_bake } => {
            config.strategy(DeploymentStrategy::Canary).bake_time_in_minutes(*bake).canary_configuration(
                CanaryConfiguration::builder()
                    .canary_percent(f64::from(*tenths) / 10.0)
                    .canary_bake_time_in_minutes(*step_bake)
                    .build(),
            )
        }
        Strategy::Linear { bake, tenths, step_bake } => {
            config.strategy(DeploymentStrategy::Linear).bake_time_in_minutes(*bake).linear_configuration(
                LinearConfiguration::builder()
                    .step_percent(f64::from(*tenths) / 10.0)
                    .step_bake_time_in_minutes(*step_bake)
                    .build(),
            )
        }
    };
    Ok(config.build())
}

/// deckhand's lifecycle hooks: the PAUSE hook after test traffic, with a timeout that rolls back.
fn lifecycle_hooks(d: &Deployment) -> Vec<DeploymentLifecycleHook> {
    if !d.pause_after_test {
        return Vec::new();
    }
    vec![
        DeploymentLifecycleHook::builder()
            .target_type(DeploymentLifecycleHookTargetType::Pause)
            .lifecycle_stages(DeploymentLifecycleHookStage::PostTestTrafficShift)
            .timeout_configuration(
                DeploymentLifecycleHookTimeoutConfiguration::builder()
                    .timeout_in_minutes(PAUSE_TIMEOUT_MINUTES)
                    .action(DeploymentLifecycleHookAction::Rollback)
                    .build(),
            )
            .build(),
    ]
}

/// The deployment settings AWS reports, in deckhand's terms. What a strategy does not use (a
/// rolling service's bake time, a blue/green service's canary settings) is left out, so it never
/// shows as drift; the percentages default as ECS's do.
pub fn deployment_from(d: &DeploymentConfiguration) -> Deployment {
    let bake = d.bake_time_in_minutes().unwrap_or(0);
    let tenths = |percent: Option<f64>, default: f64| (percent.unwrap_or(default) * 10.0).round() as i32;
    let strategy = match d.strategy() {
        Some(DeploymentStrategy::BlueGreen) => Strategy::BlueGreen { bake },
        Some(DeploymentStrategy::Canary) => {
            let c = d.canary_configuration();
            Strategy::Canary {
                bake,
                tenths: tenths(c.and_then(|c| c.canary_percent()), 5.0),
                step_bake: c.and_then(|c| c.canary_bake_time_in_minutes()).unwrap_or(10),
            }
        }
        Some(DeploymentStrategy::Linear) => {
            let l = d.linear_configuration();
            Strategy::Linear {
                bake,
                tenths: tenths(l.and_then(|l| l.step_percent()), 10.0),
                step_bake: l.and_then(|l| l.step_bake_time_in_minutes()).unwrap_or(6),
            }
        }
        _ => Strategy::Rolling,
    };
    let mut alarms: Vec<String> =
        d.alarms().filter(|a| a.enable()).map(|a| a.alarm_names().to_vec()).unwrap_or_default();
    alarms.sort();
    let pause_after_test = d.lifecycle_hooks().iter().any(|h| {
        h.target_type() == Some(&DeploymentLifecycleHookTargetType::Pause)
            && h.lifecycle_stages().contains(&DeploymentLifecycleHookStage::PostTestTrafficShift)
    });
    Deployment {
        circuit_breaker: d.deployment_circuit_breaker().map(|c| c.enable() && c.rollback()).unwrap_or(false),
        min_healthy_percent: d.minimum_healthy_percent().unwrap_or(100),
        max_percent: d.maximum_percent().unwrap_or(200),
        strategy,
        alarms,
        pause_after_test,
    }
}

/// What ECS needs of a load balancer mapping to shift traffic between two target groups
/// (loadBalancers[].advancedConfiguration).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AdvancedLb {
    /// The second target group; ECS swaps it with the mapping's at each deployment.
    pub alternate_target_group_arn: String,
    /// The listener rule forwarding production traffic to both groups by weight.
    pub production_rule_arn: String,
    /// The rule forwarding test traffic, when the script gives a test listener.
    pub test_rule_arn: Option<String>,
    /// The infrastructure role ECS calls Elastic Load Balancing with.
    pub role_arn: String,
}

impl fmt::Display for AdvancedLb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "alternate {}, rule {}", self.alternate_target_group_arn, self.production_rule_arn)?;
        if let Some(test) = &self.test_rule_arn {
            write!(f, ", test rule {test}")?;
        }
        write!(f, ", role {}", self.role_arn)
    }
}

/// The SDK's advanced configuration.
pub fn advanced_configuration(a: &AdvancedLb) -> Result<AdvancedConfiguration> {
    Ok(AdvancedConfiguration::builder()
        .alternate_target_group_arn(&a.alternate_target_group_arn)
        .production_listener_rule(&a.production_rule_arn)
        .set_test_listener_rule(a.test_rule_arn.clone())
        .role_arn(&a.role_arn)
        .build())
}

/// The advanced configuration AWS reports.
pub fn advanced_from(a: &AdvancedConfiguration) -> AdvancedLb {
    AdvancedLb {
        alternate_target_group_arn: a.alternate_target_group_arn().unwrap_or_default().to_string(),
        production_rule_arn: a.production_listener_rule().unwrap_or_default().to_string(),
        test_rule_arn: a.test_listener_rule().map(str::to_string),
        role_arn: a.role_arn().unwrap_or_default().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deployment_configuration_reads_back_as_sent() {
        let canary = Deployment {
            strategy: Strategy::Canary { bake: 5, tenths: 105, step_bake: 3 },
            alarms: vec!["a".into(), "b".into()],
            ..Deployment::default()
        };
        let blue_green =
            Deployment { strategy: Strategy::BlueGreen { bake: 0 }, pause_after_test: true, ..Deployment::default() };
        let linear = Deployment { strategy: Strategy::Linear { bake: 1, tenths: 250, step_bake: 2 }, ..canary.clone() };
        for d in [Deployment::default(), canary.clone(), blue_green, linear] {
            assert_eq!(deployment_from(&deployment_configuration(&d).unwrap()), d);
        }
        assert_eq!(
            canary.to_string(),
            "circuit breaker on (rollback), 100-200%, canary 10.5% for 3m, bake 5m, alarms a b"
        );
    }

    #[test]
    fn strategy_numbers_are_checked_as_ecs_documents_them() {
        let with = |strategy| Deployment { strategy, ..Deployment::default() };
        assert!(validate_deployment(&with(Strategy::Canary { bake: 0, tenths: 1, step_bake: 1440 })).is_ok());
        let err = validate_deployment(&with(Strategy::Canary { bake: 0, tenths: 0, step_bake: 1 })).unwrap_err();
        assert!(err.to_string().contains("service.deploy.canary.percent"), "{err}");
        let err = validate_deployment(&with(Strategy::Linear { bake: 0, tenths: 20, step_bake: 1 })).unwrap_err();
        assert!(err.to_string().contains("from 3 to 100"), "{err}");
        let err = validate_deployment(&with(Strategy::BlueGreen { bake: 1441 })).unwrap_err();
        assert!(err.to_string().contains("service.deploy.bake"), "{err}");
    }
}
