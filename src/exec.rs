//! `deckhand exec`: ECS Exec into a running task of a stack's service. ExecuteCommand opens a
//! Session Manager session; AWS's `session-manager-plugin` carries it, started with the arguments
//! the AWS CLI's `aws ecs execute-command` passes (awscli/customizations/ecs/executecommand.py):
//! the session JSON, the region, `StartSession`, the profile, `{"Target": "ecs:CLUSTER_TASK_RUNTIMEID"}`
//! and the ECS endpoint.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use clap::Args;
use serde_json::json;

use crate::aws::queries;
use crate::error::{Error, Result, aws_error};
use crate::runtime::Aws;

/// The Session Manager plugin's program name.
pub const PLUGIN: &str = "session-manager-plugin";

/// Where AWS documents installing the plugin.
const PLUGIN_INSTALL: &str =
    "https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-working-with-install-plugin.html";

/// The arguments of `deckhand exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The stack (the name given to `stack()` in the script).
    #[arg(long)]
    pub stack: String,
    /// The stack's service whose task to enter.
    #[arg(long)]
    pub service: String,
    /// The task id (default: the service's first running task).
    #[arg(long)]
    pub task: Option<String>,
    /// The container (default: the task's first).
    #[arg(long)]
    pub container: Option<String>,
    /// The command, after `--` (default /bin/sh).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
    #[command(flatten)]
    pub(crate) aws: crate::connect::AwsArgs,
}

/// The plugin's path on PATH, or an error with the install hint.
pub fn find_plugin() -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|dir| dir.join(PLUGIN)).find(|p| p.is_file()).ok_or_else(|| {
        Error::conflict(
            format!("deckhand exec needs AWS's {PLUGIN} on PATH, and it is not there"),
            Some(&format!("install the Session Manager plugin: {PLUGIN_INSTALL}")),
        )
    })
}

/// Runs `deckhand exec` with the profile in use (`--profile`, else AWS_PROFILE, else none);
/// exits with the plugin's exit code.
pub fn exec(aws: &Aws, args: &ExecArgs, profile: &str) -> Result<ExitCode> {
    let plugin = find_plugin()?;
    let command = if args.command.is_empty() { "/bin/sh".to_string() } else { shell_words(&args.command) };
    let (session, target) = aws.block_on(async {
        let service = crate::task_run::stack_service(aws, &args.stack, &args.service).await?;
        if !service.exec {
            return Err(Error::conflict(
                format!("ECS Exec is off for service {}", service.name),
                Some("give its service() exec: true and run the script; tasks started from then on can be entered"),
            ));
        }
        let tasks = queries::tasks(aws, &service.cluster, &service.name).await?;
        let running: Vec<_> = tasks.iter().filter(|t| t.last_status == "RUNNING").collect();
        let task = match &args.task {
            Some(id) => running.iter().find(|t| t.id == *id || t.arn == *id).ok_or_else(|| {
                let ids: Vec<&str> = running.iter().map(|t| t.id.as_str()).collect();
                Error::invalid(
                    "--task",
                    format!("{id:?}"),
                    format!("a running task of {}: {}", service.name, ids.join(", ")),
                )
            })?,
            None => running
                .first()
                .ok_or_else(|| Error::conflict(format!("service {} has no running task", service.name), None))?,
        };
        let described = aws
            .ecs
            .describe_tasks()
            .cluster(&service.cluster)
            .tasks(&task.arn)
            .send()
            .await
            .map_err(|e| aws_error("DescribeTasks", e))?;
        let found = described.tasks().first().ok_or_else(|| Error::missing("DescribeTasks", "tasks[0]"))?;
        if !found.enable_execute_command() {
            return Err(Error::conflict(
                format!("task {} started before ECS Exec was turned on for service {}", task.id, service.name),
                Some("only tasks started after exec: true can be entered: wait for a new deployment's tasks"),
            ));
        }
        let container = match &args.container {
            Some(name) => found.containers().iter().find(|c| c.name() == Some(name.as_str())),
            None => found.containers().first(),
        }
        .ok_or_else(|| Error::invalid("--container", format!("{:?}", args.container), "a container of the task"))?;
        let name = container.name().unwrap_or_default().to_string();
        let runtime_id =
            container.runtime_id().ok_or_else(|| Error::missing("DescribeTasks", "containers.runtimeId"))?;
        let cluster = crate::aws::ecs::cluster_name(&service.cluster).to_string();
        let out = aws
            .ecs
            .execute_command()
            .cluster(&service.cluster)
            .task(&task.arn)
            .container(&name)
            .interactive(true)
            .command(&command)
            .send()
            .await
            .map_err(|e| aws_error("ExecuteCommand", e))?;
        let session = out.session().ok_or_else(|| Error::missing("ExecuteCommand", "session"))?;
        let session = json!({
            "sessionId": session.session_id(),
            "streamUrl": session.stream_url(),
            "tokenValue": session.token_value(),
        });
        Ok((session, format!("ecs:{cluster}_{}_{runtime_id}", task.id)))
    })?;
    let endpoint = aws.endpoint_url.clone().unwrap_or_else(|| format!("https://ecs.{}.amazonaws.com", aws.region));
    let status = Command::new(plugin)
        .arg(session.to_string())
        .arg(&aws.region)
        .arg("StartSession")
        .arg(profile)
        .arg(json!({ "Target": target }).to_string())
        .arg(endpoint)
        .status()
        .map_err(|e| Error::io(format!("starting {PLUGIN}"), e))?;
    Ok(ExitCode::from(status.code().unwrap_or(1).clamp(0, 255) as u8))
}

/// The command as one string for ExecuteCommand (which takes a single string): words with spaces
/// or quotes are single-quoted the POSIX way.
fn shell_words(words: &[String]) -> String {
    words
        .iter()
        .map(|w| {
            if !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@".contains(c)) {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_with_spaces_or_quotes_are_quoted_for_the_shell() {
        let words = ["sh", "-c", "echo it's here"].map(String::from);
        assert_eq!(shell_words(&words), r"sh -c 'echo it'\''s here'");
    }
}
