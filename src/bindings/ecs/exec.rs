//! `service(..., #{ exec: true })`: ECS Exec needs the task definition's task role, and that role
//! needs the Session Manager channel permissions; deckhand puts them on a role of its stack as the
//! inline policy `deckhand-exec`, converged like the secrets policy.

use rhai::Dynamic;
use serde_json::json;

use crate::aws::Pass;
use crate::aws::iam::{self, RolePolicy, RolePolicySpec};
use crate::bindings::handle_field;
use crate::converge::converge;
use crate::error::{Error, Result};

/// The inline policy deckhand puts on a stack's task role for ECS Exec.
pub const EXEC_POLICY: &str = "deckhand-exec";

/// What the ECS Exec agent in the task calls with the task role (ECS developer guide, "Monitor
/// Amazon ECS containers with ECS Exec", IAM permissions required for ECS Exec).
fn exec_policy() -> serde_json::Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "EcsExec",
            "Effect": "Allow",
            "Action": [
                "ssmmessages:CreateControlChannel",
                "ssmmessages:CreateDataChannel",
                "ssmmessages:OpenControlChannel",
                "ssmmessages:OpenDataChannel",
            ],
            "Resource": "*",
        }],
    })
}

/// With exec on: the task definition (a handle) must have a task role, and a task role of this
/// stack gets [`EXEC_POLICY`]; a role of someone else's gets a warning naming what it needs. A task
/// definition given by ARN is not checked here (ExecuteCommand says so later).
pub(super) fn converge_exec_policy(pass: &Pass, task: &Dynamic) -> Result<()> {
    if !task.is_map() {
        return Ok(());
    }
    let family = handle_field(task, "family").map(|f| f.to_string()).unwrap_or_default();
    let Some(role_arn) = handle_field(task, "task_role").map(|r| r.to_string()) else {
        return Err(Error::invalid(
            "service.exec",
            "true",
            format!(
                "a task definition with a task_role: ECS Exec's agent in the task opens its Session Manager \
                 channels with the task role (add task_role: role(...) to task definition {family})"
            ),
        ));
    };
    let role = match handle_field(task, "task_role_name") {
        Some(name) => name.to_string(),
        None => crate::arn::last_segment(&role_arn).to_string(),
    };
    if !iam::role_is_stacks(pass, &role)? {
        return pass.warn(&format!(
            "task role {role} of task definition {family} is not part of this stack, so deckhand does not change \
             it: for ECS Exec it must allow ssmmessages:CreateControlChannel, CreateDataChannel, \
             OpenControlChannel and OpenDataChannel"
        ));
    }
    converge::<RolePolicy>(pass, &RolePolicySpec { role, name: EXEC_POLICY.into(), document: exec_policy() })?;
    Ok(())
}
