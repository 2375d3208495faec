//! `deckhand rollback --stack NAME [--service SVC]`: puts a stack's service back on what ran before.
//! A deployment in progress is stopped and rolled back by ECS (StopServiceDeployment, ROLLBACK),
//! then watched until ECS reports the rollback done. Otherwise the service redeploys the task
//! definition of its last deployment that completed before the current one (ListServiceDeployments
//! and DescribeServiceRevisions, in `aws/ecs/service_rollback.rs`), not simply revision N-1 of the
//! family, which may never have run; that rollout is watched as `wait_stable` watches a run's.
//!
//! The script still names its own image: the next `deckhand run` of an unchanged script deploys it
//! again (its plan shows the task definition change). A rollback buys time to fix the script.

use std::rc::Rc;

use clap::Args;

use crate::aws::ecs::{self, Service, ServiceDeploymentEntry, short_task};
use crate::aws::{Pass, State};
use crate::error::{Error, Result};
use crate::lock::{LockOptions, StackLock};
use crate::plan::{Mode, Sink};
use crate::poll::{Check, Wait};
use crate::runtime::Aws;
use crate::timing::{ROLLOUT_PACE, ROLLOUT_TIMEOUT};
use crate::wait::{StableTarget, wait_stable};

/// The arguments of `deckhand rollback`.
#[derive(Debug, Args)]
#[command(after_long_help = "\
What it does:
  A deployment in progress (PENDING or IN_PROGRESS) is stopped with StopServiceDeployment
  (stopType ROLLBACK): ECS moves the service back to the revision that ran before, whatever the
  deployment's strategy (rolling, blue/green, canary, linear), and deckhand watches it until ECS
  reports ROLLBACK_SUCCESSFUL. One already rolling back is only watched.

  Otherwise the service redeploys (UpdateService) the task definition of its last deployment that
  completed (SUCCESSFUL) before the current one, read from ECS's service deployments
  (ListServiceDeployments, DescribeServiceRevisions): not the family's previous revision, which may
  never have run (a deployment the circuit breaker rolled back did not complete). The rollout is
  watched like `wait_stable` in a script. ECS keeps 90 days of service deployments.

  The stack lock is held throughout, as `run` holds it while it applies.

Afterwards:
  The script still names its own image: the next `deckhand run` of the unchanged script deploys
  it again, and `deckhand run --plan` shows that as a task definition change. Fix the script
  (or pin the image that works) before the next run.

Examples:
  deckhand rollback --stack myapp                   the stack's only service
  deckhand rollback --stack myapp --service api     one service of several")]
pub struct RollbackArgs {
    /// The stack (the name given to `stack()` in the script).
    #[arg(long)]
    pub stack: String,
    /// The stack's service to roll back (needed when the stack has several).
    #[arg(long)]
    pub service: Option<String>,
    /// While another run applies the same stack, wait this long for it to finish (e.g. 30s, 2m,
    /// 0 for no wait), then stop.
    #[arg(long, value_name = "DURATION", default_value = "1m")]
    pub lock_timeout: String,
    #[command(flatten)]
    pub(crate) aws: crate::connect::AwsArgs,
}

/// What a rollback did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolledBack {
    /// The deployment in progress was stopped, and ECS rolled the service back.
    Stopped {
        /// The stopped deployment's id.
        deployment: String,
        /// The task definition it was deploying (usually the script's).
        stopped: String,
        /// The task definition the service runs after the rollback.
        now: String,
    },
    /// The service redeployed the task definition of an earlier deployment.
    Redeployed {
        /// The task definition it ran before.
        replaced: String,
        /// The task definition it runs now.
        now: String,
    },
}

/// Runs `deckhand rollback`: holds the stack lock (like `run`'s apply pass) while it reads the
/// service's deployments, rolls back and watches the rollback, then says what it did.
pub fn rollback(args: &RollbackArgs) -> Result<()> {
    let options = LockOptions::for_this_command(crate::lock::parse_timeout(&args.lock_timeout)?);
    let (aws, _emulator) = args.aws.connect()?;
    // Ctrl-C stops the watch at its next poll instead of killing deckhand, so the lock is released.
    let _interrupt = crate::interrupt::Guard::install();
    let lock = StackLock::acquire(&aws, &args.stack, &options)?;
    let outcome = aws
        .block_on(pick_service(&aws, &args.stack, args.service.as_deref()))
        .and_then(|service| roll_back(&aws, &service).map(|done| (service, done)));
    drop(lock);
    let (service, done) = outcome?;
    let label = |task: &str| {
        let images = aws.block_on(images_of(&aws, task)).unwrap_or_default();
        if images.is_empty() { short_task(task) } else { format!("{} ({})", short_task(task), images.join(", ")) }
    };
    match &done {
        RolledBack::Stopped { deployment, stopped, now } => println!(
            "Rolled back: service {} runs {} again; deployment {deployment} of {} was stopped and rolled back by ECS.",
            service.name,
            label(now),
            label(stopped)
        ),
        RolledBack::Redeployed { replaced, now } => println!(
            "Rolled back: service {} runs {} again, in place of {}.",
            service.name,
            label(now),
            label(replaced)
        ),
    }
    println!(
        "The script is unchanged: the next `deckhand run` deploys the image it names again, as its plan shows \
         (`~ service {}`, its task_definition). The rollback buys time to fix the script.",
        service.name
    );
    println!("({} AWS calls)", aws.calls());
    if let Some(rehearsal) = aws.rehearsal() {
        println!("{}", rehearsal.line());
    }
    Ok(())
}

/// The stack's service named `name`, or its only one; with several and no name, an error listing
/// them.
async fn pick_service(aws: &Aws, stack: &str, name: Option<&str>) -> Result<Service> {
    if let Some(name) = name {
        return crate::task_run::stack_service(aws, stack, name).await;
    }
    let mut services = crate::task_run::stack_services(aws, stack).await?;
    services.sort_by(|a, b| a.name.cmp(&b.name));
    match services.len() {
        1 => Ok(services.remove(0)),
        0 => Err(Error::conflict(
            format!("stack {stack} has no ECS service: nothing to roll back"),
            Some(&format!("`deckhand status --stack {stack}` shows what the stack has")),
        )),
        n => {
            let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
            Err(Error::conflict(
                format!("stack {stack} has {n} services ({}): which one to roll back?", names.join(", ")),
                Some(&format!("name it: deckhand rollback --stack {stack} --service {}", names[0])),
            ))
        }
    }
}

/// Rolls `service` back, watching the rollback until it is done: stops its deployment in progress
/// (ECS rolls it back), else redeploys the task definition of its last deployment that completed
/// before the current one.
pub fn roll_back(aws: &Aws, service: &Service) -> Result<RolledBack> {
    let (cluster, name) = (&service.cluster_arn, &service.name);
    if let Some(ongoing) = aws.block_on(ecs::unfinished_deployment(aws, cluster, name))? {
        return stop(aws, service, &ongoing);
    }
    let running = &service.task_definition;
    let Some((earlier, revision)) = aws.block_on(ecs::last_completed_before(aws, cluster, name, running))? else {
        return Err(Error::conflict(
            format!(
                "service {name} has no deployment that completed before the current one ({}): nothing to roll back to",
                short_task(running)
            ),
            Some(
                "ECS lists a service's deployments of the last 90 days; to run an older image, `deckhand run` the script with it",
            ),
        ));
    };
    println!(
        "Service {name} runs {}; its last deployment that completed before that one ({}) ran {}{}.",
        short_task(running),
        earlier.id(),
        short_task(&revision.task_definition),
        if revision.images.is_empty() { String::new() } else { format!(" ({})", revision.images.join(", ")) }
    );
    println!("Redeploying {} (UpdateService).", short_task(&revision.task_definition));
    aws.block_on(ecs::redeploy(aws, cluster, name, &revision.task_definition))?;
    // wait_stable reports through a pass's log: an apply pass printing to stdout, without a script.
    let pass = Pass::new(Mode::Apply, Some(aws.clone()), None, Sink::stdout(), Rc::new(State::default()));
    let target = StableTarget {
        cluster: cluster.clone(),
        name: name.clone(),
        task_definition: Some(revision.task_definition.clone()),
        timeout: crate::wait::DEFAULT_TIMEOUT,
        shifts_traffic: service.deployment.as_ref().is_some_and(|d| d.strategy.shifts_traffic()),
    };
    wait_stable(&pass, &target, None)?;
    Ok(RolledBack::Redeployed { replaced: running.clone(), now: revision.task_definition })
}

/// Stops the deployment in progress with a rollback (unless ECS already rolls it back), then
/// watches it until ECS reports the rollback done.
fn stop(aws: &Aws, service: &Service, ongoing: &ServiceDeploymentEntry) -> Result<RolledBack> {
    let name = &service.name;
    let sources = aws.block_on(ecs::describe_deployment(aws, &ongoing.arn))?.map(|d| d.sources).unwrap_or_default();
    if ongoing.can_roll_back() && sources.is_empty() {
        // A service's first deployment has no source revision: StopServiceDeployment's rollback
        // goes "to the previous service revision" (API_StopServiceDeployment), and there is none.
        return Err(Error::conflict(
            format!(
                "service {name}'s deployment {} is its first: there is nothing before it to roll back to",
                ongoing.id()
            ),
            Some(
                "to take the service away, drop it from the script and `deckhand run` it (or `deckhand destroy` the stack)",
            ),
        ));
    }
    let deploying = match &ongoing.target_revision {
        Some(arn) => aws.block_on(ecs::service_revisions(aws, std::slice::from_ref(arn)))?.pop(),
        None => None,
    };
    let stopped = deploying.map_or_else(|| service.task_definition.clone(), |r| r.task_definition);
    if ongoing.can_roll_back() {
        println!(
            "Service {name} is deploying {} (deployment {}, {}): stopping it with a rollback (StopServiceDeployment ROLLBACK).",
            short_task(&stopped),
            ongoing.id(),
            ongoing.status
        );
        aws.block_on(ecs::stop_and_roll_back(aws, &ongoing.arn))?;
    } else if ongoing.status.starts_with("ROLLBACK") {
        let why = if ongoing.reason.is_empty() { String::new() } else { format!(": {}", ongoing.reason) };
        println!(
            "Service {name}'s deployment {} is already rolling back ({}{why}): watching it.",
            ongoing.id(),
            ongoing.status
        );
    } else {
        return Err(Error::conflict(
            format!("service {name}'s deployment {} is being stopped ({})", ongoing.id(), ongoing.status),
            Some("run `deckhand rollback` again once it has stopped"),
        ));
    }
    let stack = service.stack.as_deref().unwrap_or_default();
    aws.block_on(watch_rollback(aws, stack, name, &ongoing.arn))?;
    // What the service runs once ECS rolled it back (DescribeServices' taskDefinition).
    let now = aws
        .block_on(crate::aws::queries::find_service(aws, &service.cluster_arn, name))?
        .map(|s| s.task_definition)
        .unwrap_or_default();
    Ok(RolledBack::Stopped { deployment: ongoing.id().to_string(), stopped, now })
}

/// Polls the rolled-back deployment (DescribeServiceDeployments) until ECS reports the rollback
/// done (ROLLBACK_SUCCESSFUL); ROLLBACK_FAILED, or a deployment that ended otherwise, is an
/// error. A rolling rollback is a rollout of the earlier revision, a blue/green, canary or linear
/// one moves the traffic back and stops the new tasks: the rollout's pace and timeout (`timing`).
async fn watch_rollback(aws: &Aws, stack: &str, service: &str, arn: &str) -> Result<()> {
    let say = |line: &str| println!("{line}");
    let id = crate::arn::last_segment(arn);
    Wait::new(aws.clock(), "rollback", format!("the rollback of service {service}"), ROLLOUT_PACE, ROLLOUT_TIMEOUT)
        .report_to(&say)
        .hint(format!(
            "`deckhand status --stack ...` shows the service's deployments; ECS goes on with deployment {id}"
        ))
        .until(async |_round| {
            let state = ecs::describe_deployment(aws, arn).await?.ok_or_else(|| {
                Error::conflict(format!("ECS no longer knows deployment {id} of service {service}"), None)
            })?;
            let why = if state.reason.is_empty() { String::new() } else { format!(": {}", state.reason) };
            match state.status.as_str() {
                "ROLLBACK_SUCCESSFUL" => Ok(Check::Done(())),
                _ if state.finished() => Err(Error::conflict(
                    format!("deployment {id} of service {service} ended {} instead of rolling back{why}", state.status),
                    Some(&format!("`deckhand status --stack {stack}` shows the service's deployments and events")),
                )),
                status => {
                    let stage = state.stage.as_deref().map(|s| format!(" ({})", s.to_lowercase().replace('_', " ")));
                    let (running, wanted) = state.sources_running;
                    Ok(Check::waiting(format!(
                        "deployment {id} {status}{}: {running}/{wanted} tasks of the revision before it running, {} of its own",
                        stage.unwrap_or_default(),
                        state.target_running
                    )))
                }
            }
        })
        .await
}

/// The images of a task definition's containers, as `name=image`.
async fn images_of(aws: &Aws, task_definition: &str) -> Result<Vec<String>> {
    let described = ecs::describe_task_definition(aws, task_definition).await?;
    Ok(described
        .map(|(_, d)| d.spec.containers.iter().map(|c| format!("{}={}", c.name, c.image)).collect())
        .unwrap_or_default())
}
