//! A role's inline policy (`impl Resource`): found by role and policy name (GetRolePolicy), put
//! when missing or different (PutRolePolicy replaces the document), deleted when the script no
//! longer needs it. It belongs to its role: it is only changed on a role of this stack.

use futures_util::future::LocalBoxFuture;
use serde_json::Value;

use super::lookup_role;
use super::policy::parse_trust;
use crate::aws::Pass;
use crate::aws::Snapshot;
use crate::converge::{Created, Drift, Resource};
use crate::error::{Error, Result, aws_error, sent};
use crate::plan::{Change, ChangeKind, FieldDiff, UNKNOWN};
use crate::runtime::Aws;

/// What a script's resources ask of an inline policy.
#[derive(Debug, Clone, PartialEq)]
pub struct RolePolicySpec {
    /// The role's name.
    pub role: String,
    /// The policy's name, unique among the role's inline policies.
    pub name: String,
    /// The policy document as sent to IAM.
    pub document: Value,
}

/// An inline policy as it exists in AWS (or will).
#[derive(Debug, Clone, PartialEq)]
pub struct RolePolicy {
    /// The role's name.
    pub role: String,
    /// The policy's name.
    pub name: String,
    /// The document, normalised for comparison.
    pub document: Value,
    /// The role's `deckhand:stack` tag (inline policies have no tags of their own).
    pub stack: Option<String>,
}

/// Checks an inline policy name the way IAM does: 1 to 128 of letters, digits and `+=,.@_-`.
pub fn validate_policy_name(key: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(key, format!("{name:?}"), "1 to 128 letters, digits and +=,.@_- (an IAM policy name)"))
    }
}

/// Whether deckhand may change `role`'s inline policies: the role is this stack's, or does not
/// exist yet (this pass plans to create it, with the stack's tag).
pub fn role_is_stacks(pass: &Pass, role: &str) -> Result<bool> {
    let stack = pass.stack()?;
    Ok(lookup_role(pass, role)?.is_none_or(|found| found.stack.as_deref() == Some(stack.as_str())))
}

/// The role's stack, and an error when the role exists but is not this stack's: deckhand adds
/// policies only to roles it created.
fn owning_stack(pass: &Pass, role: &str) -> Result<Option<String>> {
    let stack = pass.stack()?;
    match lookup_role(pass, role)? {
        Some(found) => {
            crate::converge::check_owner("IAM role", role, &found.arn, found.stack.as_deref(), &stack)?;
            Ok(found.stack)
        }
        // A role this pass plans to create (it will carry the stack's tag).
        None => Ok(Some(stack)),
    }
}

/// The inline policy `name` of `role`, normalised; `None` when the role has none of that name, or
/// the role does not exist.
pub(super) async fn get(aws: &Aws, role: &str, name: &str) -> Result<Option<Value>> {
    match aws.iam.get_role_policy().role_name(role).policy_name(name).send().await {
        Ok(out) => Ok(Some(parse_trust(Some(out.policy_document())))),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_entity_exception()) => Ok(None),
        Err(e) => Err(aws_error("GetRolePolicy", e)),
    }
}

/// The inline policy `name` of `role`, read once per run: up front when a check pass asked for it
/// (a check pass records what it asks for, and finds nothing), else now.
fn fetch(pass: &Pass, role: &str, name: &str) -> Result<Option<Value>> {
    let key = (role.to_string(), name.to_string());
    if let Some(found) = pass.snapshot()?.borrow().iam.role_policies.get(&key) {
        return Ok(found.clone());
    }
    let found = match pass.read(async |aws| get(aws, role, name).await) {
        Some(found) => found?,
        None => None,
    };
    pass.remember_read(|s| {
        s.iam.role_policies.insert(key.clone(), found.clone());
    })?;
    Ok(found)
}

/// Puts the policy on its role (PutRolePolicy replaces a document of that name), again while IAM
/// answers that another change of the role is being applied ([`super::role::changing`]: this
/// role's other inline policies may go out beside this one).
async fn put(pass: &Pass, spec: &RolePolicySpec) -> Result<()> {
    pass.send(async |aws| {
        super::role::changing(aws, &spec.role, "PutRolePolicy", async || {
            let call = aws
                .iam
                .put_role_policy()
                .role_name(&spec.role)
                .policy_name(&spec.name)
                .policy_document(spec.document.to_string());
            sent("PutRolePolicy", call.send()).await
        })
        .await
    })
    .await
}

/// Whether the role `role` exists as far as this pass knows (read, or created by it): an inline
/// policy can only be put on an existing role.
fn role_exists(pass: &Pass, role: &str) -> bool {
    let Ok(snapshot) = pass.snapshot() else { return false };
    let exists = matches!(snapshot.borrow().iam.roles.get(role), Some(Some(found)) if found.arn != UNKNOWN);
    exists
}

fn describe(document: &Value) -> String {
    let statements = document["Statement"].as_array().cloned().unwrap_or_default();
    statements
        .iter()
        .map(|s| {
            let resources = match &s["Resource"] {
                Value::Array(list) => list.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "),
                Value::String(one) => one.clone(),
                other => other.to_string(),
            };
            let action = match &s["Action"] {
                Value::String(a) => a.clone(),
                other => other.to_string(),
            };
            format!("{action} on {resources}")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A role's inline policy converges by role and name; PutRolePolicy replaces it in place.
impl Resource for RolePolicy {
    type Reads = Snapshot;
    type Spec = RolePolicySpec;
    type Update = ();
    const KIND: &'static str = "role_policy";

    fn name(spec: &RolePolicySpec) -> String {
        format!("{}/{}", spec.role, spec.name)
    }

    fn noun() -> String {
        "inline policy".to_string()
    }

    fn validate(_pass: &Pass, spec: &RolePolicySpec) -> Result<()> {
        validate_policy_name("role_policy.name", &spec.name)
    }

    fn find(pass: &Pass, spec: &RolePolicySpec) -> Result<Option<RolePolicy>> {
        let stack = owning_stack(pass, &spec.role)?;
        Ok(fetch(pass, &spec.role, &spec.name)?.map(|document| RolePolicy {
            role: spec.role.clone(),
            name: spec.name.clone(),
            document,
            stack,
        }))
    }

    fn stack_of(live: &RolePolicy) -> Option<&str> {
        live.stack.as_deref()
    }

    fn planned(spec: &RolePolicySpec, stack: &str) -> RolePolicy {
        RolePolicy {
            role: spec.role.clone(),
            name: spec.name.clone(),
            document: super::normalise_policy(&spec.document),
            stack: Some(stack.to_string()),
        }
    }

    fn create(pass: &Pass, spec: &RolePolicySpec, stack: &str) -> Result<Created<RolePolicy>> {
        pass.block(put(pass, spec))?;
        Ok(Created::New(Self::planned(spec, stack)))
    }

    /// Beside other creates only once its role exists: a spec names its role by name, so it
    /// holds nothing unknown even while the role is still to be created (in this wave), and
    /// IAM would refuse it (NoSuchEntity). The next wave, or the statement, puts it then.
    fn create_beside(
        pass: &Pass,
        spec: RolePolicySpec,
        stack: String,
    ) -> Option<LocalBoxFuture<'_, Result<Created<RolePolicy>>>> {
        if !role_exists(pass, &spec.role) {
            return None;
        }
        Some(Box::pin(async move {
            put(pass, &spec).await?;
            Ok(Created::New(RolePolicy::planned(&spec, &stack)))
        }))
    }

    fn diff(live: &RolePolicy, spec: &RolePolicySpec) -> Drift<()> {
        let want = super::normalise_policy(&spec.document);
        if live.document == want {
            return Drift::none();
        }
        Drift::of(vec![FieldDiff::changed("document", describe(&live.document), describe(&want))])
    }

    fn update(pass: &Pass, live: &RolePolicy, spec: &RolePolicySpec, _update: &()) -> Result<RolePolicy> {
        pass.block(put(pass, spec))?;
        Ok(Self::updated(live, spec))
    }

    fn updated(live: &RolePolicy, spec: &RolePolicySpec) -> RolePolicy {
        RolePolicy { document: super::normalise_policy(&spec.document), ..live.clone() }
    }

    fn remember(snapshot: &mut Snapshot, live: &RolePolicy) {
        let key = (live.role.clone(), live.name.clone());
        snapshot.iam.role_policies.insert(key, Some(live.document.clone()));
    }

    fn summary(live: &RolePolicy) -> String {
        describe(&live.document)
    }
}

/// Deletes the inline policy `name` of `role` when it exists on a role of this stack, and records
/// it as a change to the role's policy; nothing when it does not exist or the role is not the stack's.
pub fn remove_role_policy(pass: &Pass, role: &str, name: &str) -> Result<()> {
    validate_policy_name("role_policy.name", name)?;
    let Some(document) = fetch(pass, role, name)? else { return Ok(()) };
    if !role_is_stacks(pass, role)? {
        return Ok(());
    }
    if pass.mode.applies() {
        pass.apply(async |aws| match aws.iam.delete_role_policy().role_name(role).policy_name(name).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_entity_exception()) => Ok(()),
            Err(e) => Err(aws_error("DeleteRolePolicy", e)),
        })?;
        pass.snapshot()?.borrow_mut().iam.role_policies.insert((role.to_string(), name.to_string()), None);
    }
    let full = format!("{role}/{name}");
    pass.log.record(
        Change::new(ChangeKind::Update, RolePolicy::KIND, &full, "deleted: no longer needed")
            .with_diffs(vec![FieldDiff::removed("document", describe(&document))]),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use serde_json::json;

    use super::*;
    use crate::aws::iam::Role;
    use crate::plan::{Mode, Sink};

    #[test]
    fn an_inline_policy_goes_beside_other_creates_only_once_its_role_exists() {
        let pass = Pass::new(Mode::Apply, None, Some("us-west-2".into()), Sink::buffer(), Rc::default());
        pass.set_stack("web").unwrap();
        let spec = RolePolicySpec {
            role: "web-exec".into(),
            name: "web-secrets".into(),
            document: json!({ "Version": "2012-10-17", "Statement": [] }),
        };
        let beside = |pass| RolePolicy::create_beside(pass, spec.clone(), "web".into()).is_some();
        // Its role still to be created (in this very wave, say): the statement or a later wave puts it.
        assert!(!beside(&pass));
        let role = |arn: &str| Role {
            name: "web-exec".into(),
            arn: arn.into(),
            path: "/".into(),
            description: String::new(),
            trust: json!({}),
            managed_policies: Vec::new(),
            stack: Some("web".into()),
        };
        pass.remember_read(|s| Role::remember(s, &role(UNKNOWN))).unwrap();
        assert!(!beside(&pass), "a role only planned does not exist");
        // Created by an earlier wave (remembered with its ARN), or found: now.
        pass.remember_read(|s| Role::remember(s, &role("arn:aws:iam::123456789012:role/web-exec"))).unwrap();
        assert!(beside(&pass));
    }
}
