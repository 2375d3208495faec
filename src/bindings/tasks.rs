//! `run_task`: a one-off task (a migration, a batch job) run in the apply pass only. It is an
//! action, not a resource: the plan shows it on a line of its own (`! run_task FAMILY (runs when
//! applied)`) and it counts as no change, so a run whose plan changes nothing runs no task.

use std::collections::BTreeMap;
use std::rc::Rc;

use rhai::{Array, Dynamic, Engine, EvalAltResult, Map};

use crate::aws::Pass;
use crate::aws::ecs::{self, OneOffTask, StrategyItem, TaskRun, Watched};
use crate::bindings::{Fields, as_array, as_string, function, handle_field, handle_id, handle_or_string, show};
use crate::error::{Error, Result};
use crate::plan::Mode;

type Rhai<T> = std::result::Result<T, Box<EvalAltResult>>;

/// Registers `run_task`, bound to `pass`.
pub(super) fn register(engine: &mut Engine, pass: &Rc<Pass>) {
    let p = pass.clone();
    function(
        "run_task",
        &["task: Map", "options: Map", "Map"],
        "Runs a one-off copy of a task definition, in the apply pass only: #{ cluster, subnets,\n\
         security_groups, public_ip, container, command, env, wait }. It is an action, not a resource:\n\
         the plan shows `! run_task FAMILY (runs when applied)` and counts no change, so a run whose\n\
         plan changes nothing runs no task. `command` is an array, or a string run with `sh -c`;\n\
         `env` adds variables; both apply to `container` (default: the task's first container).\n\
         With `wait` (default true) it waits until the task stops and returns\n\
         #{ exit_code, stopped_reason, task_arn, logs } (the container's log lines when it logs with\n\
         awslogs); without, #{ task_arn } at once. In plan and check passes `exit_code` is ().\n\
         Example: `let m = run_task(task, #{ cluster: cluster, subnets: subnets,\n\
         command: \"./migrate\" }); if m.exit_code != 0 { throw `migration failed: ${m.logs}`; }`",
    )
    .register_into_engine(engine, move |task: Map, options: Map| -> Rhai<Map> {
        Ok(run_task(&p, &Dynamic::from(task), options)?)
    });
}

fn run_task(pass: &Pass, task: &Dynamic, options: Map) -> Result<Map> {
    let (run, wait) = one_off(task, options)?;
    let family = handle_field(task, "family")
        .map(|f| f.to_string())
        .unwrap_or_else(|| family_of(&run.task_definition).to_string());
    match pass.mode {
        Mode::Check => return Ok(result(None, Vec::new())),
        Mode::Plan => {
            pass.log.say(&format!("! run_task {family} (runs when applied)"));
            return Ok(result(None, Vec::new()));
        }
        Mode::Apply => {}
    }
    // Its container pulls its image through the subnets' egress, as a service's do.
    crate::aws::egress::egress_ready(pass, &run.subnets, &format!("run_task {family}"))?;
    let outcome = pass.apply(async |aws| {
        let definition = ecs::describe_task_definition(aws, &run.task_definition)
            .await?
            .ok_or_else(|| Error::conflict(format!("task definition {} not found", run.task_definition), None))?
            .1;
        let logs = ecs::container_logs(&definition, &run.container);
        let arn = ecs::start_task(aws, &run).await?;
        if !wait {
            return Ok((TaskRun { arn, ..TaskRun::default() }, Vec::new()));
        }
        let mut lines = Vec::new();
        let watched = ecs::watch_task(aws, &run.cluster, &arn, &run.container, logs.as_ref(), |line| {
            lines.push(line.to_string())
        })
        .await?;
        match watched {
            Watched::Stopped(stopped) => Ok((stopped, lines)),
            // The apply pass stops at its next operation on Ctrl-C; the one-off task goes with it.
            Watched::Interrupted(running) => {
                ecs::stop_task(aws, &run.cluster, &running.arn, "deckhand run interrupted (Ctrl-C)").await?;
                Err(Error::conflict(format!("interrupted (Ctrl-C): stopped one-off task {}", running.arn), None))
            }
        }
    })?;
    let (stopped, lines) = outcome;
    if !wait {
        pass.log.say(&format!("run_task {family}: started {}", stopped.arn));
        return Ok(result(Some(&stopped), lines));
    }
    let exit = stopped.exit_code.map_or_else(|| "never ran".to_string(), |code| format!("exit code {code}"));
    pass.log.say(&format!("run_task {family}: task {} stopped, {exit} ({})", stopped.id(), stopped.stopped_reason));
    Ok(result(Some(&stopped), lines))
}

/// The script's answer: `exit_code` is `()` until a task ran and exited.
fn result(run: Option<&TaskRun>, lines: Vec<String>) -> Map {
    let text = |s: Option<&String>| s.filter(|s| !s.is_empty()).map_or(Dynamic::UNIT, |s| s.clone().into());
    let mut map = Map::new();
    map.insert("exit_code".into(), run.and_then(|r| r.exit_code).map_or(Dynamic::UNIT, |c| (c as i64).into()));
    map.insert("stopped_reason".into(), text(run.map(|r| &r.stopped_reason)));
    map.insert("task_arn".into(), text(run.map(|r| &r.arn)));
    map.insert("logs".into(), lines.into_iter().map(Dynamic::from).collect::<Array>().into());
    map
}

/// The family of a task definition ARN (`...:task-definition/FAMILY:REV`) or `family:revision`.
fn family_of(task_definition: &str) -> &str {
    let tail = crate::arn::Arn::of_type(task_definition, "ecs", "task-definition")
        .map_or(task_definition, |a| a.resource_id());
    tail.split(':').next().unwrap_or(tail)
}

/// The run asked for, and whether to wait for it.
fn one_off(task: &Dynamic, options: Map) -> Result<(OneOffTask, bool)> {
    let task_definition =
        handle_or_string("run_task.task", task, "task_definition", "arn", "a task definition ARN", |s| {
            s.starts_with("arn:") && s.contains(":task-definition/")
        })?;
    let f = Fields::new(
        "run_task",
        options,
        &["cluster", "subnets", "security_groups", "public_ip", "container", "command", "env", "wait"],
    )?;
    let cluster = f.raw("cluster").ok_or_else(|| Error::MissingKey {
        key: "cluster".into(),
        context: "run_task()".into(),
        what: "the cluster the task runs in (a cluster handle or name)".into(),
    })?;
    let cluster =
        handle_or_string(&f.name("cluster"), cluster, "cluster", "name", "a cluster name", |s| !s.is_empty())?;
    let ids = |key: &str, kind: &str, prefix: &str| -> Result<Vec<String>> {
        let Some(value) = f.raw(key) else { return Ok(Vec::new()) };
        as_array(&f.name(key), value)?
            .iter()
            .enumerate()
            .map(|(i, v)| handle_id(&format!("{}[{i}]", f.name(key)), v, kind, prefix))
            .collect()
    };
    let subnets = ids("subnets", "subnet", "subnet-")?;
    if subnets.is_empty() {
        return Err(Error::MissingKey {
            key: "subnets".into(),
            context: "run_task()".into(),
            what: "the subnets the task runs in (awsvpc needs at least one)".into(),
        });
    }
    let containers: Vec<String> = handle_field(task, "containers")
        .and_then(|c| c.try_cast::<Array>())
        .unwrap_or_default()
        .iter()
        .map(|c| handle_field(c, "name").map(|n| n.to_string()).unwrap_or_default())
        .collect();
    let container = match f.str("container")? {
        Some(name) => {
            if !containers.is_empty() && !containers.contains(&name) {
                return Err(Error::invalid(
                    f.name("container"),
                    format!("{name:?}"),
                    format!("a container of the task definition: {}", containers.join(", ")),
                ));
            }
            name
        }
        None => containers.first().cloned().ok_or_else(|| Error::MissingKey {
            key: "container".into(),
            context: "run_task()".into(),
            what: "the container to run the command in (the task is given by ARN)".into(),
        })?,
    };
    let command = match f.raw("command") {
        None => None,
        Some(v) if v.is_string() => Some(vec!["sh".to_string(), "-c".to_string(), v.to_string()]),
        Some(v) => Some(
            as_array(&f.name("command"), v)?
                .iter()
                .enumerate()
                .map(|(i, s)| as_string(&format!("{}[{i}]", f.name("command")), s))
                .collect::<Result<Vec<_>>>()?,
        ),
    };
    let mut env = BTreeMap::new();
    if let Some(value) = f.raw("env") {
        let map = value.clone().try_cast::<Map>().ok_or_else(|| Error::invalid(f.name("env"), show(value), "a map"))?;
        for (k, v) in map {
            if v.is_map() || v.is_array() || v.is_unit() {
                return Err(Error::invalid(format!("run_task.env.{k}"), show(&v), "a string, number or boolean"));
            }
            env.insert(k.to_string(), v.to_string());
        }
    }
    let run = OneOffTask {
        cluster,
        task_definition,
        container,
        command,
        env,
        cpu: None,
        memory: None,
        subnets,
        security_groups: ids("security_groups", "security_group", "sg-")?,
        public_ip: f.bool("public_ip")?.unwrap_or(false),
        capacity: vec![StrategyItem { provider: "FARGATE".into(), weight: 1, base: 0 }],
    };
    Ok((run, f.bool("wait")?.unwrap_or(true)))
}
