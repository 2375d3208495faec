//! Script functions for CloudWatch Logs: `log_group`.

use std::rc::Rc;

use futures_util::FutureExt;
use futures_util::future::LocalBoxFuture;
use rhai::{Dynamic, Engine, EvalAltResult, Map};

use crate::aws::Pass;
use crate::aws::logs::{self, LogGroup, LogGroupSpec};
use crate::aws::queries;
use crate::bindings::keep_of;
use crate::bindings::{Described, Fields, function, handle, optional, show, text};
use crate::converge::converge;
use crate::converge::converge_kept;
use crate::error::{Error, Result};
use crate::runtime::Aws;

type Rhai<T> = std::result::Result<T, Box<EvalAltResult>>;

pub(super) fn register(engine: &mut Engine, pass: &Rc<Pass>) {
    let p = pass.clone();
    function(
        "log_group",
        &["name: &str", "options: Map", "Map"],
        "Ensures a CloudWatch Logs log group: #{ retention_days }.\n\
         `keep: true` marks it (tag deckhand:keep): a run whose script no longer declares it keeps it.\n\
         `retention_days` is one of 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096,\n\
         1827, 2192, 2557, 2922, 3288, 3653; () or absent keeps events forever.\n\
         Returns #{ kind: \"log_group\", name, arn, retention_days }.\n\
         Example: `let logs = log_group(\"/ecs/myapp\", #{ retention_days: 30 });`",
    )
    .register_into_engine(engine, move |name: &str, options: Dynamic| -> Rhai<Map> {
        let shown = show(&options);
        let options = options
            .try_cast::<Map>()
            .ok_or_else(|| Error::invalid("log_group.options", shown, "a map like #{ retention_days: 30 }"))?;
        let (keep, options) = keep_of("log_group", options)?;
        let f = Fields::new("log_group", options, &["retention_days"])?;
        logs::validate_log_group_name("log_group.name", name)?;
        let spec = LogGroupSpec { name: name.to_string(), retention_days: f.int("retention_days")? };
        Ok(log_group_handle(&converge_kept::<LogGroup>(&p, &spec, keep)?))
    });

    let p = pass.clone();
    function(
        "log_group",
        &["name: &str", "Map"],
        "Ensures a CloudWatch Logs log group that keeps events forever.\n\
         Returns #{ kind: \"log_group\", name, arn, retention_days }.\nExample: `log_group(\"/ecs/myapp\")`",
    )
    .register_into_engine(engine, move |name: &str| -> Rhai<Map> {
        logs::validate_log_group_name("log_group.name", name)?;
        let spec = LogGroupSpec { name: name.to_string(), retention_days: None };
        Ok(log_group_handle(&converge::<LogGroup>(&p, &spec)?))
    });
}

pub(super) fn log_group_handle(group: &LogGroup) -> Map {
    handle(
        "log_group",
        [
            ("name", group.name.clone().into()),
            ("arn", group.arn.clone().into()),
            ("retention_days", group.retention_days.map(|d| Dynamic::from(i64::from(d))).unwrap_or(Dynamic::UNIT)),
        ],
    )
}

/// How `describe` re-reads log groups (by name).
pub(super) const DESCRIBED: &[Described] = &[("log_group", "name", describe_log_group)];

fn describe_log_group<'a>(aws: &'a Aws, map: &'a Map) -> LocalBoxFuture<'a, Result<Option<Map>>> {
    async move {
        let name = text(map, "name").unwrap_or_default();
        Ok(queries::find_log_group(aws, &name).await?.map(|g| {
            let mut map = log_group_handle(&g);
            map.insert("stack".into(), optional(g.stack.clone()));
            map
        }))
    }
    .boxed_local()
}
