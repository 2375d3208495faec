//! Script functions for Application Auto Scaling: `autoscaling`.

use std::rc::Rc;

use rhai::{Array, Dynamic, Engine, EvalAltResult, Map};

use crate::arn;
use crate::aws::Pass;
use crate::aws::autoscaling::{self, AutoscalingSpec, Metric, Policy, ScalableTarget};
use crate::bindings::{Fields, function, handle, handle_or_string, show};
use crate::converge::converge;
use crate::error::{Error, Result};

type Rhai<T> = std::result::Result<T, Box<EvalAltResult>>;

/// The keys `autoscaling()` accepts.
const KEYS: &[&str] = &[
    "min",
    "max",
    "cpu",
    "memory",
    "requests_per_target",
    "load_balancer",
    "target_group",
    "scale_in_cooldown",
    "scale_out_cooldown",
];

pub(super) fn register(engine: &mut Engine, pass: &Rc<Pass>) {
    let p = pass.clone();
    function(
        "autoscaling",
        &["service: Map", "options: Map", "Map"],
        "Ensures target-tracking autoscaling for a service (Application Auto Scaling): #{ min, max,\n\
         cpu, memory, requests_per_target, load_balancer, target_group, scale_in_cooldown,\n\
         scale_out_cooldown }. The service's desired count becomes a scalable target kept between\n\
         `min` and `max`; each metric given gets one target-tracking policy: `cpu` and `memory` are\n\
         average utilisation percentages (1-100), `requests_per_target` is ALB requests per target per\n\
         minute and needs `load_balancer` and `target_group` (handles or ARNs). Cooldowns are seconds\n\
         (unset: AWS's defaults). A metric no longer given loses its policy. Once autoscaling is\n\
         attached, `service()` no longer resets the desired count the scaler chose.\n\
         Returns #{ kind, resource_id, min, max, policies }.\n\
         Example: `autoscaling(svc, #{ min: 2, max: 10, cpu: 60 });`",
    )
    .register_into_engine(engine, move |service: Map, options: Dynamic| -> Rhai<Map> {
        let shown = show(&options);
        let options = options
            .try_cast::<Map>()
            .ok_or_else(|| Error::invalid("autoscaling.options", shown, "a map like #{ min: 1, max: 4, cpu: 60 }"))?;
        let spec = autoscaling_spec(&service, options)?;
        Ok(autoscaling_handle(&converge::<ScalableTarget>(&p, &spec)?))
    });
}

fn autoscaling_spec(service: &Map, options: Map) -> Result<AutoscalingSpec> {
    let value = Dynamic::from(service.clone());
    let name = handle_or_string("autoscaling.service", &value, "service", "name", "a service handle", |_| false)?;
    let cluster = handle_or_string("autoscaling.service", &value, "service", "cluster", "a service handle", |_| false)?;
    let f = Fields::new("autoscaling", options, KEYS)?;
    let min = f.int("min")?.ok_or_else(|| missing("min", "the fewest tasks the scaler may run"))?;
    let max = f.int("max")?.ok_or_else(|| missing("max", "the most tasks the scaler may run"))?;
    let cooldown = |key: &str| -> Result<Option<i32>> {
        f.int(key)?
            .map(|c| i32::try_from(c).map_err(|_| Error::invalid(f.name(key), c, "0 to 86400 seconds")))
            .transpose()
    };
    let (scale_in_cooldown, scale_out_cooldown) = (cooldown("scale_in_cooldown")?, cooldown("scale_out_cooldown")?);
    let arn = |key: &str, kind: &str, resource_prefix: &str| -> Result<Option<String>> {
        let is_arn = |s: &str| arn::is_of(s, "elasticloadbalancing", resource_prefix);
        f.raw(key).map(|v| handle_or_string(&f.name(key), v, kind, "arn", &format!("a {kind} ARN"), is_arn)).transpose()
    };
    let load_balancer = arn("load_balancer", "load_balancer", "loadbalancer/app/")?;
    let target_group = arn("target_group", "target_group", "targetgroup/")?;
    let mut policies = Vec::new();
    for metric in Metric::ALL {
        let Some(target) = f.int(metric.key())? else { continue };
        let resource_label = if metric == Metric::Requests {
            let (Some(lb), Some(tg)) = (&load_balancer, &target_group) else {
                return Err(Error::invalid(
                    "autoscaling.requests_per_target",
                    target,
                    "requests per target only together with load_balancer and target_group (the ALB and the \
                     service's target group the requests are counted on)",
                ));
            };
            Some(autoscaling::resource_label(lb, tg))
        } else {
            None
        };
        policies.push(Policy {
            name: metric.policy_name(),
            metric: Some(metric),
            target: target as f64,
            resource_label,
            scale_in_cooldown,
            scale_out_cooldown,
        });
    }
    if policies.is_empty() && (load_balancer.is_some() || target_group.is_some()) {
        return Err(Error::invalid(
            "autoscaling.target_group",
            "given without requests_per_target",
            "load_balancer and target_group only together with requests_per_target",
        ));
    }
    Ok(AutoscalingSpec { cluster, service: name, min, max, policies })
}

fn missing(key: &str, what: &str) -> Error {
    Error::MissingKey { key: key.into(), context: "autoscaling()".into(), what: what.into() }
}

fn autoscaling_handle(target: &ScalableTarget) -> Map {
    let policies: Array = target.policies.iter().map(|p| Dynamic::from(p.name.clone())).collect();
    handle(
        "autoscaling",
        [
            ("resource_id", target.resource_id.clone().into()),
            ("min", i64::from(target.min).into()),
            ("max", i64::from(target.max).into()),
            ("policies", policies.into()),
        ],
    )
}
