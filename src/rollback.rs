//! `deckhand rollback --stack NAME [--service SVC]`: rolls a stack's service back. A deployment in
//! progress is stopped and rolled back by ECS (StopServiceDeployment ROLLBACK); otherwise the
//! service redeploys the task definition of the last deployment that completed before the current
//! one (ListServiceDeployments SUCCESSFUL, DescribeServiceRevisions), not simply revision N-1 of
//! the family, which may never have run. The script still names its own image: the next `deckhand
//! run` of an unchanged script deploys it again (its plan shows the task definition change), so a
//! rollback buys time to fix the script.

use clap::Args;

use crate::aws::ecs::{self, Service, short_task};
use crate::error::{Error, Result, aws_error};
use crate::lock::{LockOptions, StackLock};
use crate::runtime::Aws;

/// The arguments of `deckhand rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The stack (the name given to `stack()` in the script).
    #[arg(long)]
    pub stack: String,
    /// The stack's service to roll back (default: its only service).
    #[arg(long)]
    pub service: Option<String>,
    /// While another run applies the same stack, wait this long for it to finish.
    #[arg(long, value_name = "DURATION", default_value = "1m")]
    pub lock_timeout: String,
    #[command(flatten)]
    pub(crate) aws: crate::connect::AwsArgs,
}

/// What a rollback did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolledBack {
    /// The deployment in progress was stopped; ECS rolls the service back.
    Stopped {
        /// The deployment's ARN.
        deployment: String,
    },
    /// The service redeploys an earlier task definition.
    Redeployed {
        /// The task definition it ran.
        from: String,
        /// The task definition it runs now.
        to: String,
    },
}

/// Runs `deckhand rollback`, printing what it did.
pub fn rollback(args: &RollbackArgs) -> Result<()> {
    let (aws, _emulator) = args.aws.connect()?;
    let options = LockOptions::for_this_command(crate::lock::parse_timeout(&args.lock_timeout)?);
    let lock = StackLock::acquire(&aws, &args.stack, &options)?;
    let service = aws.block_on(stack_service(&aws, &args.stack, args.service.as_deref()))?;
    let done = aws.block_on(roll_back(&aws, &service))?;
    drop(lock);
    match done {
        RolledBack::Stopped { deployment } => println!(
            "Stopped the deployment in progress of service {} ({deployment}): ECS rolls it back to the revision that ran before.",
            service.name
        ),
        RolledBack::Redeployed { from, to } => println!(
            "Service {} redeploys {} (it ran {}), the task definition of its last deployment that completed before the current one.",
            service.name,
            short_task(&to),
            short_task(&from)
        ),
    }
    println!(
        "The script still names its own image: the next `deckhand run` of an unchanged script deploys it again \
         (its plan shows the task definition change). Fix the script first."
    );
    Ok(())
}

/// The stack's service named `name`, or its only one.
async fn stack_service(aws: &Aws, stack: &str, name: Option<&str>) -> Result<Service> {
    if let Some(name) = name {
        return crate::task_run::stack_service(aws, stack, name).await;
    }
    let services = crate::task_run::stack_services(aws, stack).await?;
    match services.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(Error::conflict(format!("stack {stack} has no service to roll back"), None)),
        many => {
            let names: Vec<&str> = many.iter().map(|s| s.name.as_str()).collect();
            Err(Error::MissingKey {
                key: "--service".into(),
                context: "deckhand rollback".into(),
                what: format!("which service of stack {stack} to roll back: {}", names.join(", ")),
            })
        }
    }
}

/// Rolls `service` back: stops its deployment in progress, else redeploys the task definition of
/// its last deployment that completed before the current one.
pub async fn roll_back(aws: &Aws, service: &Service) -> Result<RolledBack> {
    if let Some(current) = ecs::latest_deployment(aws, &service.cluster_arn, &service.name).await?
        && current.in_progress()
    {
        ecs::roll_back_deployment(aws, &current.arn).await?;
        return Ok(RolledBack::Stopped { deployment: current.arn });
    }
    let previous =
        ecs::previous_completed_task_definition(aws, &service.cluster_arn, &service.name).await?.ok_or_else(|| {
            Error::conflict(
                format!(
                    "service {} has no deployment that completed before the current one: nothing to roll back to",
                    service.name
                ),
                None,
            )
        })?;
    aws.ecs
        .update_service()
        .cluster(&service.cluster_arn)
        .service(&service.name)
        .task_definition(&previous)
        .send()
        .await
        .map_err(|e| aws_error("UpdateService", e))?;
    Ok(RolledBack::Redeployed { from: service.task_definition.clone(), to: previous })
}
