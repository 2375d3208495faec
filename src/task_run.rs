//! `deckhand task run`: a one-off copy of a stack's service's current task definition (a
//! migration, a console command), in the service's subnets and security groups with its command
//! and environment overridden; the container's log lines are printed as they arrive and deckhand
//! exits with the container's exit code. Ctrl-C stops the task (StopTask) before exiting.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::aws::ecs::{self, EcsState, OneOffTask, Service, Watched};
use crate::error::{Error, Result};
use crate::runtime::Aws;

/// `deckhand task ...`.
#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// Run a one-off copy of a service's current task definition with another command, print its
    /// logs as they arrive, and exit with the container's exit code.
    ///
    /// The task runs in the service's cluster, subnets and security groups (public IP as the
    /// service), with its roles; only the command (everything after `--`), the `--env` variables
    /// and, when given, the task size change. The container is the task definition's first
    /// essential one unless `--container` names another. Its awslogs lines are printed as they
    /// arrive. deckhand exits with the container's exit code, or 1 with the stopped reason when
    /// the task never ran (image pull, network, ...). Ctrl-C stops the task (StopTask) first.
    ///
    /// Example: deckhand task run --stack myapp --service myapp -- sh -c './migrate up'
    Run(TaskRunArgs),
}

/// The arguments of `deckhand task run`.
#[derive(Debug, Args)]
pub struct TaskRunArgs {
    /// The stack (the name given to `stack()` in the script).
    #[arg(long)]
    pub stack: String,
    /// The stack's service whose task definition and network the task copies.
    #[arg(long)]
    pub service: String,
    /// The container to run the command in (default: the first essential one).
    #[arg(long)]
    pub container: Option<String>,
    /// An environment variable for the container, `KEY=VALUE` (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Task CPU units instead of the task definition's (with --memory; a Fargate pair).
    #[arg(long, requires = "memory")]
    pub cpu: Option<i32>,
    /// Task memory in MiB instead of the task definition's (with --cpu).
    #[arg(long, requires = "cpu")]
    pub memory: Option<i32>,
    /// The command, after `--` (e.g. `-- sh -c 'echo migrating; ./migrate'`).
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
    #[command(flatten)]
    pub(crate) aws: crate::connect::AwsArgs,
}

/// The `KEY=VALUE` pairs of `--env`, checked before any request.
fn env_pairs(pairs: &[String]) -> Result<BTreeMap<String, String>> {
    pairs
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
            _ => Err(Error::invalid("--env", format!("{pair:?}"), "KEY=VALUE")),
        })
        .collect()
}

/// The ACTIVE service `name` of `stack`, or an error naming the stack's services.
pub(crate) async fn stack_service(aws: &Aws, stack: &str, name: &str) -> Result<Service> {
    let services = stack_services(aws, stack).await?;
    if let Some(service) = services.iter().find(|s| s.name == name) {
        return Ok(service.clone());
    }
    let mut names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
    names.sort();
    let known = if names.is_empty() { "none".to_string() } else { names.join(", ") };
    Err(Error::invalid("--service", format!("{name:?}"), format!("a service of stack {stack}: {known}")))
}

/// The stack's ACTIVE services.
pub(crate) async fn stack_services(aws: &Aws, stack: &str) -> Result<Vec<Service>> {
    let state = EcsState::load(aws, stack).await?;
    Ok(state
        .services
        .values()
        .flatten()
        .filter(|s| s.stack.as_deref() == Some(stack) && s.status == "ACTIVE")
        .cloned()
        .collect())
}

/// Runs `deckhand task run`: the exit code is the container's.
pub fn run(aws: &Aws, args: &TaskRunArgs) -> Result<ExitCode> {
    let env = env_pairs(&args.env)?;
    if let (Some(cpu), Some(memory)) = (args.cpu, args.memory) {
        ecs::validate_fargate_size(cpu, memory)?;
    }
    let (one_off, logs, label) = aws.block_on(async {
        let service = stack_service(aws, &args.stack, &args.service).await?;
        let (_, definition) = ecs::describe_task_definition(aws, &service.task_definition)
            .await?
            .ok_or_else(|| Error::conflict(format!("task definition {} not found", service.task_definition), None))?;
        let containers = &definition.spec.containers;
        let container = match &args.container {
            Some(name) if containers.iter().any(|c| &c.name == name) => name.clone(),
            Some(name) => {
                let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
                return Err(Error::invalid(
                    "--container",
                    format!("{name:?}"),
                    format!("a container of {}: {}", definition.label(), names.join(", ")),
                ));
            }
            None => containers
                .iter()
                .find(|c| c.essential)
                .or(containers.first())
                .map(|c| c.name.clone())
                .ok_or_else(|| Error::missing("DescribeTaskDefinition", "containerDefinitions"))?,
        };
        let logs = ecs::container_logs(&definition, &container);
        let one_off = OneOffTask {
            cluster: service.cluster.clone(),
            task_definition: service.task_definition.clone(),
            container,
            command: Some(args.command.clone()),
            env,
            cpu: args.cpu,
            memory: args.memory,
            subnets: service.subnets.clone(),
            security_groups: service.security_groups.clone(),
            public_ip: service.public_ip,
            capacity: if service.strategy.is_empty() {
                vec![ecs::StrategyItem { provider: "FARGATE".into(), weight: 1, base: 0 }]
            } else {
                service.strategy.clone()
            },
        };
        Ok((one_off, logs, definition.label()))
    })?;
    // From here on Ctrl-C stops the task rather than deckhand alone.
    let _interrupt = crate::interrupt::Guard::install();
    let arn = aws.block_on(ecs::start_task(aws, &one_off))?;
    let id = crate::arn::last_segment(&arn).to_string();
    eprintln!("started task {id} ({label}) in cluster {}", one_off.cluster);
    if logs.is_none() {
        eprintln!("container {} sends no logs to CloudWatch Logs (no awslogs): none to show", one_off.container);
    }
    let watched =
        aws.block_on(ecs::watch_task(aws, &one_off.cluster, &arn, &one_off.container, logs.as_ref(), |line| {
            println!("{line}")
        }))?;
    match watched {
        Watched::Interrupted(_) => {
            aws.block_on(ecs::stop_task(aws, &one_off.cluster, &arn, "stopped by deckhand task run (Ctrl-C)"))?;
            eprintln!("interrupted (Ctrl-C): stopped task {id}");
            Ok(ExitCode::from(130))
        }
        Watched::Stopped(stopped) => match stopped.exit_code {
            Some(code) => {
                eprintln!("task {id} stopped: container {} exited with {code}", one_off.container);
                Ok(ExitCode::from(code.clamp(0, 255) as u8))
            }
            None => Err(Error::conflict(
                format!("task {id} never ran: {}", stopped.stopped_reason),
                Some("deckhand status --stack NAME shows the service's own tasks and events"),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_pairs_split_at_the_first_equals_sign() {
        let pairs = env_pairs(&["A=1".into(), "URL=postgres://x?a=b".into()]).unwrap();
        assert_eq!(pairs["URL"], "postgres://x?a=b");
        assert!(env_pairs(&["=1".into()]).is_err());
        assert!(env_pairs(&["NOVALUE".into()]).unwrap_err().to_string().contains("KEY=VALUE"));
    }
}
