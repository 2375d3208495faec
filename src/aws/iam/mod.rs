//! IAM roles: their types and reads (here), trust policies and policy names ([`policy`]), how a
//! role converges ([`role`]), and a stack's roles for `status` and `destroy` (here).

mod policy;
mod role;
mod role_policy;

use std::collections::HashMap;

use serde_json::Value;

use crate::aws::Pass;
use crate::error::{Error, Result, aws_error, sent};
use crate::runtime::Aws;
use crate::tagged::STACK_TAG;

pub use policy::{
    describe_trust, normalise_policy, policy_arn, service_trust, trusted_principals, validate_role_name, validate_trust,
};
pub use role::DesiredRole;
pub use role_policy::{RolePolicy, RolePolicySpec, remove_role_policy, role_is_stacks, validate_policy_name};

/// The description a role gets when the script gives none.
pub const DEFAULT_DESCRIPTION: &str = "managed by deckhand";

/// The service principal ECS tasks assume their roles as.
pub const ECS_TASKS: &str = "ecs-tasks.amazonaws.com";

/// The AWS managed policy that lets ECS pull images and write logs for a task.
pub const TASK_EXECUTION_POLICY: &str = "AmazonECSTaskExecutionRolePolicy";

/// An IAM role as it exists (or will exist) in AWS.
#[derive(Debug, Clone, PartialEq)]
pub struct Role {
    /// The role name, unique in the account.
    pub name: String,
    /// `arn:aws:iam::...:role/...`, or [`crate::plan::UNKNOWN`] before creation.
    pub arn: String,
    /// The IAM path, e.g. `/`.
    pub path: String,
    /// Its description (empty when it has none).
    pub description: String,
    /// The trust (assume role) policy, normalised with [`normalise_policy`].
    pub trust: Value,
    /// ARNs of the attached managed policies, sorted.
    pub managed_policies: Vec<String>,
    /// Its `deckhand:stack` tag.
    pub stack: Option<String>,
}

/// Who may assume a role.
#[derive(Debug, Clone, PartialEq)]
pub enum Trust {
    /// AWS services, e.g. `ecs-tasks.amazonaws.com`; deckhand writes the `sts:AssumeRole` policy.
    Services(Vec<String>),
    /// A full trust policy document.
    Document(Value),
}

/// What a script asks of a role.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleSpec {
    /// The role name.
    pub name: String,
    /// Who may assume it.
    pub trust: Trust,
    /// Exactly the managed policies to attach: ARNs or AWS managed policy names.
    pub managed_policies: Vec<String>,
    /// Description; defaults to [`DEFAULT_DESCRIPTION`].
    pub description: Option<String>,
    /// IAM path; defaults to `/`.
    pub path: Option<String>,
}

/// The IAM part of a run's snapshot: per-name lookups, read up front for the names a script
/// declares ([`crate::aws::Declared`]), else on demand, and kept for the run.
#[derive(Debug, Default, Clone)]
pub struct IamState {
    /// Roles looked up by name (`None`: no such role).
    pub roles: HashMap<String, Option<Role>>,
    /// Whether a managed policy ARN exists, for the policies checked so far.
    pub policies: HashMap<String, bool>,
    /// Inline policies looked up by (role, policy name), normalised (`None`: no such policy). A
    /// check pass records the ones it asks for (as `None`), so a run reads them up front.
    pub role_policies: HashMap<(String, String), Option<serde_json::Value>>,
}

impl IamState {
    /// Reads the roles named `names` (GetRole and ListAttachedRolePolicies each) and the inline
    /// policies `inline` (role, policy name; GetRolePolicy each), all concurrently.
    /// `known`: managed policies whose existence an earlier pass of the run found out.
    pub async fn load(
        aws: &Aws,
        names: &[String],
        inline: &[(String, String)],
        known: &[(String, bool)],
    ) -> Result<IamState> {
        let (roles, documents) = tokio::try_join!(
            crate::aws::concurrently(names, |name| fetch_role(aws, name)),
            crate::aws::concurrently(inline, async |(role, name)| role_policy::get(aws, role, name).await),
        )?;
        Ok(IamState {
            roles: names.iter().cloned().zip(roles).collect(),
            policies: known.iter().cloned().collect(),
            role_policies: inline.iter().cloned().zip(documents).collect(),
        })
    }
}

/// The partition of `region` (`aws`, `aws-cn`, `aws-us-gov`), for ARNs.
pub fn partition(region: Option<&str>) -> &'static str {
    match region {
        Some(r) if r.starts_with("cn-") => "aws-cn",
        Some(r) if r.starts_with("us-gov-") => "aws-us-gov",
        _ => "aws",
    }
}

/// Reads a role and its attached managed policies concurrently; `None` when there is no such role.
pub async fn fetch_role(aws: &Aws, name: &str) -> Result<Option<Role>> {
    let get = get_role(aws, name);
    let attached = async {
        let mut pages = aws.iam.list_attached_role_policies().role_name(name).into_paginator().items().send();
        let mut arns = Vec::new();
        while let Some(policy) = pages.next().await {
            match policy {
                Ok(policy) => arns.extend(policy.policy_arn().map(str::to_string)),
                Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_entity_exception()) => return Ok(None),
                Err(e) => return Err(aws_error("ListAttachedRolePolicies", e)),
            }
        }
        Ok(Some(arns))
    };
    let (Some(role), Some(mut arns)) = tokio::try_join!(get, attached)? else { return Ok(None) };
    arns.sort();
    arns.dedup();
    Ok(Some(Role {
        name: role.role_name().to_string(),
        arn: role.arn().to_string(),
        path: role.path().to_string(),
        description: role.description().unwrap_or_default().to_string(),
        trust: policy::parse_trust(role.assume_role_policy_document()),
        managed_policies: arns,
        stack: stack_of(&role),
    }))
}

/// GetRole: the role with its tags and last use; `None` when there is no such role.
pub async fn get_role(aws: &Aws, name: &str) -> Result<Option<aws_sdk_iam::types::Role>> {
    match aws.iam.get_role().role_name(name).send().await {
        Ok(out) => Ok(out.role),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_entity_exception()) => Ok(None),
        Err(e) => Err(aws_error("GetRole", e)),
    }
}

/// A role's `deckhand:stack` tag (GetRole reports tags; ListRoles does not).
pub fn stack_of(role: &aws_sdk_iam::types::Role) -> Option<String> {
    role.tags().iter().find(|t| t.key() == STACK_TAG).map(|t| t.value().to_string())
}

/// The role named `name`, from the run's cache or read once (nothing in check mode).
fn lookup_role(pass: &Pass, name: &str) -> Result<Option<Role>> {
    let snapshot = pass.snapshot()?;
    if let Some(found) = snapshot.borrow().iam.roles.get(name) {
        return Ok(found.clone());
    }
    let Some(found) = pass.read(async |aws| fetch_role(aws, name).await) else { return Ok(None) };
    let found = found?;
    pass.remember_read(|s| {
        s.iam.roles.insert(name.to_string(), found.clone());
    })?;
    Ok(found)
}

// Deletion (deckhand destroy)

/// A role as ListRoles reports it (without tags or policies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSummary {
    /// The role name.
    pub name: String,
    /// Its ARN.
    pub arn: String,
    /// Its IAM path, e.g. `/`.
    pub path: String,
    /// Its description.
    pub description: String,
}

impl RoleSummary {
    /// The summary of a role as ListRoles or GetRole reports it.
    pub fn of(role: &aws_sdk_iam::types::Role) -> RoleSummary {
        RoleSummary {
            name: role.role_name().to_string(),
            arn: role.arn().to_string(),
            path: role.path().to_string(),
            description: role.description().unwrap_or_default().to_string(),
        }
    }
}

/// Where and when a role was last used (GetRole's RoleLastUsed), if AWS knows.
pub async fn role_last_used(aws: &Aws, name: &str) -> Result<Option<(String, aws_smithy_types::DateTime)>> {
    Ok(get_role(aws, name).await?.and_then(|role| last_used(&role)))
}

/// Where and when `role` was last used, from a GetRole reply (ListRoles leaves it out).
pub fn last_used(role: &aws_sdk_iam::types::Role) -> Option<(String, aws_smithy_types::DateTime)> {
    let last = role.role_last_used()?;
    Some((last.region()?.to_string(), *last.last_used_date()?))
}

/// Every role of the account (ListRoles, up to 1000 per page).
pub async fn list_roles(aws: &Aws) -> Result<Vec<RoleSummary>> {
    let mut pages = aws.iam.list_roles().max_items(1000).into_paginator().items().send();
    let mut roles = Vec::new();
    while let Some(role) = pages.next().await {
        let role = role.map_err(|e| aws_error("ListRoles", e))?;
        roles.push(RoleSummary::of(&role));
    }
    Ok(roles)
}

/// IAM paths reserved by AWS (service-linked roles, IAM Identity Center roles): deckhand cannot
/// have created roles there, so their tags are not read.
const RESERVED_ROLE_PATHS: [&str; 2] = ["/aws-service-role/", "/aws-reserved/"];

/// The stack's IAM roles. IAM cannot list roles by tag, so this lists every role (ListRoles, 1000
/// a page) and reads the tags of each outside the reserved paths (ListRoleTags): for N roles,
/// ceil(N/1000) + N requests, [`crate::aws::LOOKUPS_AT_ONCE`] at a time — a few seconds for
/// hundreds of roles. `status` and `destroy` both use it, so they always agree.
pub async fn stack_roles(aws: &Aws, stack: &str) -> Result<Vec<RoleSummary>> {
    let candidates: Vec<RoleSummary> = list_roles(aws)
        .await?
        .into_iter()
        .filter(|role| !RESERVED_ROLE_PATHS.iter().any(|path| role.path.starts_with(path)))
        .collect();
    let stacks = crate::aws::concurrently(&candidates, |role| role_stack(aws, &role.name)).await?;
    Ok(candidates.into_iter().zip(stacks).filter(|(_, s)| s.as_deref() == Some(stack)).map(|(r, _)| r).collect())
}

/// The `deckhand:stack` tag of a role (one ListRoleTags); `None` when untagged or gone.
pub async fn role_stack(aws: &Aws, name: &str) -> Result<Option<String>> {
    // A role has at most 50 tags: one page holds them all.
    match aws.iam.list_role_tags().role_name(name).max_items(100).send().await {
        Ok(out) => Ok(out.tags().iter().find(|t| t.key() == STACK_TAG).map(|t| t.value().to_string())),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_entity_exception()) => Ok(None),
        Err(e) => Err(aws_error("ListRoleTags", e)),
    }
}

/// Detaches the managed policy `arn` from the role `name` (DetachRolePolicy).
async fn detach_policy(aws: &Aws, name: &str, arn: &str) -> Result<()> {
    sent("DetachRolePolicy", aws.iam.detach_role_policy().role_name(name).policy_arn(arn).send()).await
}

/// Deletes a role: detaches its managed policies, deletes its inline policies, then the role.
/// A role in an instance profile is refused before anything changes: IAM would not delete it, and
/// stripping its policies would break the instances that use it.
pub async fn delete_role(aws: &Aws, name: &str) -> Result<()> {
    let mut pages = aws.iam.list_instance_profiles_for_role().role_name(name).into_paginator().items().send();
    let mut profiles = Vec::new();
    while let Some(profile) = pages.next().await {
        profiles.push(
            profile.map_err(|e| aws_error("ListInstanceProfilesForRole", e))?.instance_profile_name().to_string(),
        );
    }
    if let Some(profile) = profiles.first() {
        return Err(Error::conflict(
            format!(
                "role {name} is in instance profile {}: IAM cannot delete it there (it was left as it is)",
                profiles.join(", ")
            ),
            Some(&format!(
                "if nothing needs it there: aws iam remove-role-from-instance-profile --instance-profile-name {profile} --role-name {name}"
            )),
        ));
    }
    let mut attached = aws.iam.list_attached_role_policies().role_name(name).into_paginator().items().send();
    let mut arns = Vec::new();
    while let Some(policy) = attached.next().await {
        let policy = policy.map_err(|e| aws_error("ListAttachedRolePolicies", e))?;
        arns.extend(policy.policy_arn().map(str::to_string));
    }
    for arn in &arns {
        detach_policy(aws, name, arn).await?;
    }
    let mut inline = aws.iam.list_role_policies().role_name(name).into_paginator().items().send();
    let mut policies = Vec::new();
    while let Some(policy) = inline.next().await {
        policies.push(policy.map_err(|e| aws_error("ListRolePolicies", e))?);
    }
    for policy in policies {
        aws.iam
            .delete_role_policy()
            .role_name(name)
            .policy_name(policy)
            .send()
            .await
            .map_err(|e| aws_error("DeleteRolePolicy", e))?;
    }
    sent("DeleteRole", aws.iam.delete_role().role_name(name).send()).await
}
