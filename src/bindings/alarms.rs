//! Script functions for CloudWatch: `alarm`.

use std::rc::Rc;

use rhai::{Dynamic, Engine, EvalAltResult, Map};

use crate::aws::Pass;
use crate::bindings::{Fields, function, handle, handle_or_string, show};
use crate::converge::converge;
use crate::error::{Error, Result};
use crate::kinds::alarm::{Alarm, AlarmSpec, METRICS, Metric};

type Rhai<T> = std::result::Result<T, Box<EvalAltResult>>;

pub(super) fn register(engine: &mut Engine, pass: &Rc<Pass>) {
    let p = pass.clone();
    function(
        "alarm",
        &["options: Map", "Map"],
        "Ensures a CloudWatch metric alarm on a load balancer: #{ name, metric, load_balancer, threshold, periods }.\n\
         `metric` is \"target_5xx\" (the targets' 5xx answers), \"elb_5xx\" (the load balancer's own),\n\
         \"p99_response_time\" (seconds) or \"unhealthy_hosts\"; over the whole load balancer, never one\n\
         target group (ECS swaps a service's two groups at every blue/green, canary or linear deployment).\n\
         In ALARM when the metric is at or above `threshold` for `periods` consecutive minutes (default 1);\n\
         no requests count as fine. Name it in a service's `deploy.alarms` to roll a failing deployment back.\n\
         Returns #{ kind: \"alarm\", name, arn }.\n\
         Example: `let errors = alarm(#{ name: \"myapp-5xx\", metric: \"target_5xx\", load_balancer: alb, threshold: 5 });`",
    )
    .register_into_engine(engine, move |options: Dynamic| -> Rhai<Map> {
        let spec = alarm_spec(options)?;
        let alarm = converge::<Alarm>(&p, &spec)?;
        Ok(handle("alarm", [("name", alarm.name.clone().into()), ("arn", alarm.arn.clone().into())]))
    });
}

fn alarm_spec(options: Dynamic) -> Result<AlarmSpec> {
    let shown = show(&options);
    let options = options
        .try_cast::<Map>()
        .ok_or_else(|| Error::invalid("alarm.options", shown, "a map like #{ name: \"myapp-5xx\", ... }"))?;
    let f = Fields::new("alarm", options, &["name", "metric", "load_balancer", "threshold", "periods"])?;
    let name = f.req_str("name", "the alarm's name, unique in the region")?;
    let metric_name = f.req_str(
        "metric",
        "what it watches: \"target_5xx\", \"elb_5xx\", \"p99_response_time\" or \"unhealthy_hosts\"",
    )?;
    let metric = Metric::parse(&metric_name).ok_or_else(|| {
        let allowed: Vec<String> = METRICS.iter().map(|m| format!("{m:?}")).collect();
        Error::invalid(f.name("metric"), format!("{metric_name:?}"), allowed.join(", "))
    })?;
    let lb = f.raw("load_balancer").ok_or_else(|| Error::MissingKey {
        key: "load_balancer".into(),
        context: "alarm()".into(),
        what: "the load balancer whose metric it watches (a load_balancer() handle or its ARN)".into(),
    })?;
    let load_balancer_arn = handle_or_string(
        &f.name("load_balancer"),
        lb,
        "load_balancer",
        "arn",
        "a load balancer ARN \"arn:aws:elasticloadbalancing:...:loadbalancer/app/...\"",
        |s| crate::arn::is_of(s, "elasticloadbalancing", "loadbalancer/app/"),
    )?;
    let threshold = match f.raw("threshold") {
        None => {
            return Err(Error::MissingKey {
                key: "threshold".into(),
                context: "alarm()".into(),
                what: "the value at or above which it alarms (a count per minute, or seconds for p99_response_time)"
                    .into(),
            });
        }
        Some(value) => match (value.as_int(), value.as_float()) {
            (Ok(i), _) => i as f64,
            (_, Ok(x)) => x,
            _ => return Err(Error::invalid(f.name("threshold"), show(value), "a number")),
        },
    };
    let periods = f.int("periods")?.unwrap_or(1);
    Ok(AlarmSpec { name, metric, load_balancer_arn, threshold, periods: i32::try_from(periods).unwrap_or(i32::MAX) })
}
