//! How an IAM role converges: found by name (it must carry this stack's tag), created when
//! missing, its trust policy and description restored, its managed policies made exactly the
//! script's; its path cannot change in place.

use std::collections::BTreeSet;

use aws_sdk_iam::types::Tag;
use futures_util::future::{LocalBoxFuture, try_join_all};
use serde_json::Value;

use super::policy::{validate_description, validate_path};
use super::{DEFAULT_DESCRIPTION, Role, RoleSpec, lookup_role};
use super::{
    describe_trust, fetch_role, normalise_policy, policy_arn, trusted_principals, validate_role_name, validate_trust,
};
use crate::aws::Pass;
use crate::aws::{NAME_TAG, Snapshot};
use crate::converge::{Created, Drift, Resource};
use crate::error::{Error, Result, aws_error, sent};
use crate::plan::{FieldDiff, UNKNOWN};
use crate::poll::{Check, Wait};
use crate::runtime::Aws;
use crate::tagged::STACK_TAG;
use crate::timing::{SDK_RETRY_PACE, SETTLE_WINDOW};

/// IAM's answer to a change of a role while another change of it is being applied.
const CONCURRENT_MODIFICATION: &str = "ConcurrentModification";

/// IAM's limit on managed policies per role (the default quota is 10).
const MAX_MANAGED_POLICIES: usize = 20;

/// A [`RoleSpec`] checked the way IAM would and resolved: defaults filled in, the trust policy
/// written out and normalised, policy names turned into ARNs. This is what a role converges to.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredRole {
    /// The role name.
    pub name: String,
    /// The IAM path, e.g. `/`.
    pub path: String,
    /// The description.
    pub description: String,
    /// The trust policy as sent to IAM.
    pub document: Value,
    /// The trust policy normalised, as compared with the stored one.
    pub trust: Value,
    /// The managed policies as the script wrote them, each with its ARN, in the script's order.
    pub written_policies: Vec<(String, String)>,
    /// The ARNs of the managed policies to attach, sorted, without duplicates.
    pub managed_policies: Vec<String>,
}

impl DesiredRole {
    /// Checks `spec` (what IAM would reject) and resolves it for `partition` (`aws`, `aws-cn`, ...).
    pub fn resolve(spec: &RoleSpec, partition: &str) -> Result<DesiredRole> {
        validate_role_name("role.name", &spec.name)?;
        let path = spec.path.clone().unwrap_or_else(|| "/".to_string());
        validate_path(&path)?;
        let description = spec.description.clone().unwrap_or_else(|| DEFAULT_DESCRIPTION.to_string());
        validate_description(&description)?;
        let document = validate_trust(&spec.trust)?;
        let written_policies = spec
            .managed_policies
            .iter()
            .enumerate()
            .map(|(i, p)| Ok((p.clone(), policy_arn(&format!("role.managed_policies[{i}]"), p, partition)?)))
            .collect::<Result<Vec<_>>>()?;
        let managed_policies: Vec<String> =
            written_policies.iter().map(|(_, arn)| arn.clone()).collect::<BTreeSet<_>>().into_iter().collect();
        if managed_policies.len() > MAX_MANAGED_POLICIES {
            return Err(Error::invalid(
                "role.managed_policies",
                format!("{} policies", managed_policies.len()),
                "at most 20 managed policies per role (IAM's limit; the default quota is 10)",
            ));
        }
        Ok(DesiredRole {
            name: spec.name.clone(),
            path,
            description,
            trust: normalise_policy(&document),
            document,
            written_policies,
            managed_policies,
        })
    }
}

/// What an in-place role update sends.
#[derive(Debug, Default)]
pub struct RoleUpdate {
    /// The trust policy drifted: UpdateAssumeRolePolicy.
    trust: bool,
    /// The description drifted: UpdateRoleDescription.
    description: bool,
    /// Policies to attach.
    attach: Vec<String>,
    /// Policies to detach.
    detach: Vec<String>,
}

/// An IAM role converges by name; IAM cannot move it to another path in place.
impl Resource for Role {
    type Reads = Snapshot;
    type Spec = DesiredRole;
    type Update = RoleUpdate;
    const KIND: &'static str = "role";
    const FIXED: &'static [&'static str] = &["path"];

    fn name(spec: &DesiredRole) -> String {
        spec.name.clone()
    }

    fn noun() -> String {
        "IAM role".to_string()
    }

    fn locator(live: &Role) -> String {
        live.arn.clone()
    }

    /// The role by name; when it is absent or this stack's, also checks that the policies about to
    /// be attached exist, so a typo fails the plan (a foreign role is refused by the engine first).
    fn find(pass: &Pass, spec: &DesiredRole) -> Result<Option<Role>> {
        let found = lookup_role(pass, &spec.name)?;
        let stack = pass.stack()?;
        match &found {
            Some(role) if role.stack.as_deref() != Some(stack.as_str()) => {}
            found => check_policies_exist(pass, spec, found.as_ref().map(|r| r.managed_policies.as_slice()))?,
        }
        Ok(found)
    }

    fn stack_of(live: &Role) -> Option<&str> {
        live.stack.as_deref()
    }

    fn planned(spec: &DesiredRole, stack: &str) -> Role {
        Role {
            name: spec.name.clone(),
            arn: UNKNOWN.into(),
            path: spec.path.clone(),
            description: spec.description.clone(),
            trust: spec.trust.clone(),
            managed_policies: spec.managed_policies.clone(),
            stack: Some(stack.to_string()),
        }
    }

    fn create(pass: &Pass, spec: &DesiredRole, stack: &str) -> Result<Created<Role>> {
        pass.block(create(pass, spec, stack))
    }

    fn create_beside(
        pass: &Pass,
        spec: DesiredRole,
        stack: String,
    ) -> Option<LocalBoxFuture<'_, Result<Created<Role>>>> {
        Some(Box::pin(async move { create(pass, &spec, &stack).await }))
    }

    fn diff(live: &Role, spec: &DesiredRole) -> Drift<RoleUpdate> {
        let mut diffs = Vec::new();
        let trust = live.trust != spec.trust;
        if trust {
            diffs.push(FieldDiff::changed("trust", describe_trust(&live.trust), describe_trust(&spec.trust)));
        }
        let description = live.description != spec.description;
        if description {
            diffs.push(FieldDiff::changed(
                "description",
                format!("{:?}", live.description),
                format!("{:?}", spec.description),
            ));
        }
        let attach: Vec<String> =
            spec.managed_policies.iter().filter(|a| !live.managed_policies.contains(a)).cloned().collect();
        let detach: Vec<String> =
            live.managed_policies.iter().filter(|a| !spec.managed_policies.contains(a)).cloned().collect();
        diffs.extend(attach.iter().map(|a| FieldDiff::added("managed_policies", a)));
        diffs.extend(detach.iter().map(|a| FieldDiff::removed("managed_policies", a)));
        let fixed =
            if live.path == spec.path { Vec::new() } else { vec![FieldDiff::changed("path", &live.path, &spec.path)] };
        Drift { diffs, fixed, update: RoleUpdate { trust, description, attach, detach } }
    }

    fn update(pass: &Pass, live: &Role, spec: &DesiredRole, update: &RoleUpdate) -> Result<Role> {
        pass.block(update_role(pass, &spec.name, spec, update))?;
        Ok(Self::updated(live, spec))
    }

    fn updated(live: &Role, spec: &DesiredRole) -> Role {
        Role {
            trust: spec.trust.clone(),
            description: spec.description.clone(),
            managed_policies: spec.managed_policies.clone(),
            ..live.clone()
        }
    }

    fn remember(snapshot: &mut Snapshot, live: &Role) {
        snapshot.iam.roles.insert(live.name.clone(), Some(live.clone()));
    }

    fn summary(live: &Role) -> String {
        format!("{}, trusts {}", live.arn, trusted_principals(&live.trust))
    }
}

/// Checks (once per run) that the policies about to be attached exist, so a typo fails the plan;
/// those already `attached` exist.
fn check_policies_exist(pass: &Pass, spec: &DesiredRole, attached: Option<&[String]>) -> Result<()> {
    let snapshot = pass.snapshot()?;
    for (i, (written, arn)) in spec.written_policies.iter().enumerate() {
        if attached.is_some_and(|a| a.contains(arn)) {
            continue;
        }
        let known = snapshot.borrow().iam.policies.get(arn).copied();
        let exists = match known {
            Some(exists) => exists,
            None => {
                let Some(found) = pass.read(async |aws| match aws.iam.get_policy().policy_arn(arn).send().await {
                    Ok(_) => Ok(true),
                    Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_entity_exception()) => Ok(false),
                    Err(e) => Err(aws_error("GetPolicy", e)),
                }) else {
                    continue;
                };
                let found = found?;
                pass.remember_read(|s| {
                    s.iam.policies.insert(arn.clone(), found);
                })?;
                found
            }
        };
        if !exists {
            return Err(Error::invalid(
                format!("role.managed_policies[{i}]"),
                format!("{written:?}"),
                format!("an existing managed policy; {arn} does not exist"),
            ));
        }
    }
    Ok(())
}

fn role_tags(stack: &str, name: &str) -> Vec<Tag> {
    let mut tags = Vec::new();
    // IAM tag values cannot contain ',', which role names may.
    if !name.contains(',') {
        tags.extend(Tag::builder().key(NAME_TAG).value(name).build().ok());
    }
    tags.extend(Tag::builder().key(STACK_TAG).value(stack).build().ok());
    tags
}

/// Creates the role, then attaches its managed policies; or finds the role created meanwhile.
async fn create(pass: &Pass, spec: &DesiredRole, stack: &str) -> Result<Created<Role>> {
    match create_role(pass, spec, stack).await? {
        Outcome::New(arn) => {
            let update = RoleUpdate { attach: spec.managed_policies.clone(), ..RoleUpdate::default() };
            update_role(pass, &spec.name, spec, &update).await?;
            Ok(Created::New(Role { arn, ..Role::planned(spec, stack) }))
        }
        Outcome::Existing(role) => Ok(Created::Existing(role)),
    }
}

/// Sends what `update` says a role needs (trust policy, description, policies to attach and to
/// detach) all at once: none of them needs another's result.
async fn update_role(pass: &Pass, name: &str, spec: &DesiredRole, update: &RoleUpdate) -> Result<()> {
    pass.send(async |aws| {
        let trust = async {
            if !update.trust {
                return Ok(());
            }
            changing(aws, name, "UpdateAssumeRolePolicy", async || {
                let document = spec.document.to_string();
                let call = aws.iam.update_assume_role_policy().role_name(name).policy_document(document);
                sent("UpdateAssumeRolePolicy", call.send()).await
            })
            .await
        };
        let description = async {
            if !update.description {
                return Ok(());
            }
            // Not UpdateRole: without MaxSessionDuration it may reset the session limit to 1 hour.
            changing(aws, name, "UpdateRoleDescription", async || {
                let call = aws.iam.update_role_description().role_name(name).description(&spec.description);
                sent("UpdateRoleDescription", call.send()).await
            })
            .await
        };
        let attached = try_join_all(update.attach.iter().map(|arn| {
            changing(aws, name, "AttachRolePolicy", async move || {
                sent("AttachRolePolicy", aws.iam.attach_role_policy().role_name(name).policy_arn(arn).send()).await
            })
        }));
        let detached = try_join_all(update.detach.iter().map(|arn| {
            changing(aws, name, "DetachRolePolicy", async move || super::detach_policy(aws, name, arn).await)
        }));
        tokio::try_join!(trust, description, attached, detached).map(drop)
    })
    .await
}

/// Sends one change to the role `name`, again while IAM answers `ConcurrentModification`: a
/// role's changes go out together (and its inline policies beside them), and IAM may refuse one
/// while it applies another to the same role ("multiple requests to change this object were
/// submitted simultaneously"). terraform-provider-aws retries AttachRolePolicy and
/// DetachRolePolicy on that code for its `propagationTimeout`, 2 minutes
/// (internal/service/iam/role_policy_attachment.go: `attachPolicyToRole`, `detachPolicyFromRole`);
/// so does this, at the SDK's retry pace. Any other error fails at once.
pub(super) async fn changing(
    aws: &Aws,
    name: &str,
    operation: &str,
    mut send: impl AsyncFnMut() -> Result<()>,
) -> Result<()> {
    Wait::new(aws.clock(), "IAM role change", format!("{operation} on IAM role {name}"), SDK_RETRY_PACE, SETTLE_WINDOW)
        .quiet()
        .until(async |_| match send().await {
            Ok(()) => Ok(Check::Done(())),
            Err(err) if err.aws_code() == Some(CONCURRENT_MODIFICATION) => Ok(Check::waiting_or(err.to_string(), err)),
            Err(err) => Err(err),
        })
        .await
}

/// What `CreateRole` led to.
enum Outcome {
    /// A new role, with its ARN.
    New(String),
    /// The name was taken meanwhile (e.g. by a concurrent run); this is the role that holds it.
    Existing(Role),
}

/// Creates the role, tagged with Name and the stack.
async fn create_role(pass: &Pass, spec: &DesiredRole, stack: &str) -> Result<Outcome> {
    let created = pass
        .send(async |aws| {
            Ok(aws
                .iam
                .create_role()
                .role_name(&spec.name)
                .path(&spec.path)
                .description(&spec.description)
                .assume_role_policy_document(spec.document.to_string())
                .set_tags(Some(role_tags(stack, &spec.name)))
                .send()
                .await)
        })
        .await?;
    match created {
        Ok(out) => {
            let arn = out.role().map(|r| r.arn()).filter(|arn| !arn.is_empty());
            Ok(Outcome::New(arn.ok_or_else(|| Error::missing("CreateRole", "Role.Arn"))?.to_string()))
        }
        Err(e) if e.as_service_error().is_some_and(|e| e.is_entity_already_exists_exception()) => {
            let existing = pass.send(async |aws| fetch_role(aws, &spec.name).await).await?;
            // IAM is eventually consistent: a role another run just created may not read back yet.
            existing.map(Outcome::Existing).ok_or_else(|| aws_error("CreateRole", e))
        }
        Err(e) => Err(aws_error("CreateRole", e)),
    }
}
