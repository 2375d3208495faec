//! IAM roles: trust policies, attached managed policies, and how a role converges.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_iam::types::Tag;
use serde_json::{Map as JsonMap, Value};

use crate::aws::NAME_TAG;
use crate::error::{Error, Result, aws_error};
use crate::pass::{Pass, STACK_TAG};
use crate::plan::{Change, ChangeKind, FieldDiff, UNKNOWN};
use crate::runtime::Aws;

/// The description a role gets when the script gives none.
pub const DEFAULT_DESCRIPTION: &str = "managed by deckhand";

/// The service principal ECS tasks assume their roles as.
pub const ECS_TASKS: &str = "ecs-tasks.amazonaws.com";

/// The AWS managed policy that lets ECS pull images and write logs for a task.
pub const TASK_EXECUTION_POLICY: &str = "AmazonECSTaskExecutionRolePolicy";

/// AWS managed policies (ECS-related) that do not live at the root path `/`.
const POLICY_PATHS: &[(&str, &str)] = &[
    ("AmazonECSTaskExecutionRolePolicy", "service-role/"),
    ("AmazonEC2ContainerServiceforEC2Role", "service-role/"),
    ("AmazonEC2ContainerServiceRole", "service-role/"),
    ("AmazonEC2ContainerServiceAutoscaleRole", "service-role/"),
    ("AmazonEC2ContainerServiceEventsRole", "service-role/"),
    ("AmazonECSInfrastructureRolePolicyForVolumes", "service-role/"),
    ("AmazonECSInfrastructureRolePolicyForServiceConnectTransportLayerSecurity", "service-role/"),
];

/// An IAM role as it exists (or will exist) in AWS.
#[derive(Debug, Clone, PartialEq)]
pub struct Role {
    /// The role name, unique in the account.
    pub name: String,
    /// `arn:aws:iam::...:role/...`, or [`UNKNOWN`] before creation.
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

/// The IAM part of a run's snapshot: per-name lookups, filled on demand and kept for the run.
#[derive(Debug, Default, Clone)]
pub struct IamState {
    /// Roles looked up by name (`None`: no such role).
    pub roles: HashMap<String, Option<Role>>,
    /// Whether a managed policy ARN exists, for the policies checked so far.
    pub policies: HashMap<String, bool>,
}

/// The partition of `region` (`aws`, `aws-cn`, `aws-us-gov`), for ARNs.
pub fn partition(region: Option<&str>) -> &'static str {
    match region {
        Some(r) if r.starts_with("cn-") => "aws-cn",
        Some(r) if r.starts_with("us-gov-") => "aws-us-gov",
        _ => "aws",
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "+=,.@_-".contains(c)
}

/// Checks a role name: 1 to 64 characters of `A-Za-z0-9+=,.@_-`.
pub fn validate_role_name(key: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 64 || !name.chars().all(is_name_char) {
        return Err(Error::invalid(key, format!("{name:?}"), "1 to 64 characters of A-Z a-z 0-9 + = , . @ _ -"));
    }
    Ok(())
}

/// The ARN of a managed policy written as an ARN, an AWS managed policy name (`ReadOnlyAccess`,
/// `AmazonECSTaskExecutionRolePolicy`) or a name with its path (`service-role/Name`).
pub fn policy_arn(key: &str, text: &str, partition: &str) -> Result<String> {
    let allowed = "a policy ARN (arn:aws:iam::aws:policy/NAME or arn:aws:iam::123456789012:policy/NAME) \
                   or an AWS managed policy name like \"AmazonECSTaskExecutionRolePolicy\"";
    let bad = || Error::invalid(key, format!("{text:?}"), allowed);
    let (account, path_and_name) = if let Some(rest) = text.strip_prefix("arn:") {
        let mut parts = rest.splitn(5, ':');
        let (Some(part), Some("iam"), Some(""), Some(account), Some(resource)) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let Some(path_and_name) = resource.strip_prefix("policy/") else { return Err(bad()) };
        let account_ok = account == "aws" || (account.len() == 12 && account.chars().all(|c| c.is_ascii_digit()));
        if !["aws", "aws-cn", "aws-us-gov"].contains(&part) || !account_ok {
            return Err(bad());
        }
        (Some(account), path_and_name)
    } else {
        (None, text)
    };
    let (path, name) = match path_and_name.rsplit_once('/') {
        Some((path, name)) => (format!("{path}/"), name),
        None => (String::new(), path_and_name),
    };
    let path_ok = path.is_empty() || path.split('/').filter(|s| !s.is_empty()).all(|s| s.chars().all(is_name_char));
    if name.is_empty() || name.len() > 128 || !name.chars().all(is_name_char) || !path_ok || path.starts_with('/') {
        return Err(bad());
    }
    match account {
        Some(_) => Ok(text.to_string()),
        None => {
            let path = if path.is_empty() {
                POLICY_PATHS.iter().find(|(n, _)| *n == name).map(|(_, p)| p.to_string()).unwrap_or_default()
            } else {
                path
            };
            Ok(format!("arn:{partition}:iam::aws:policy/{path}{name}"))
        }
    }
}

fn validate_path(path: &str) -> Result<()> {
    let ok = path.starts_with('/')
        && path.ends_with('/')
        && path.len() <= 512
        && path.chars().all(|c| ('\u{21}'..='\u{7e}').contains(&c));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid("role.path", format!("{path:?}"), "a path that starts and ends with /, like \"/ecs/\""))
    }
}

fn validate_description(description: &str) -> Result<()> {
    let ok = description.chars().count() <= 1000
        && description.chars().all(|c| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{7e}' | '\u{a1}'..='\u{ff}'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "role.description",
            format!("{description:?}"),
            "at most 1000 printable characters (Latin-1)",
        ))
    }
}

fn validate_service(key: &str, service: &str) -> Result<()> {
    let host = service.strip_suffix(".amazonaws.com").or_else(|| service.strip_suffix(".amazonaws.com.cn"));
    let ok = host.is_some_and(|h| {
        !h.is_empty() && h.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
    });
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            key,
            format!("{service:?}"),
            format!("a service principal like \"{ECS_TASKS}\", or a trust policy document #{{ Statement: [...] }}"),
        ))
    }
}

/// The standard trust policy letting `services` assume a role.
pub fn service_trust(services: &[String]) -> Value {
    let service = match services {
        [one] => Value::String(one.clone()),
        many => Value::Array(many.iter().cloned().map(Value::String).collect()),
    };
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{ "Effect": "Allow", "Principal": { "Service": service }, "Action": "sts:AssumeRole" }]
    })
}

/// Checks a trust policy document the way IAM would and returns it (with `Version` added when absent).
pub fn validate_trust(trust: &Trust) -> Result<Value> {
    let document = match trust {
        Trust::Services(services) => {
            if services.is_empty() {
                return Err(Error::invalid("role.trust", "[]", format!("at least one service, like \"{ECS_TASKS}\"")));
            }
            for (i, service) in services.iter().enumerate() {
                let key = if services.len() == 1 { "role.trust".to_string() } else { format!("role.trust[{i}]") };
                validate_service(&key, service)?;
            }
            return Ok(service_trust(services));
        }
        Trust::Document(document) => document,
    };
    let Value::Object(top) = document else {
        return Err(Error::invalid("role.trust", document, "a service principal or a policy document map"));
    };
    let mut document = top.clone();
    check_keys("role.trust", &document, &["Version", "Id", "Statement"])?;
    match document.get("Version") {
        None => {
            document.insert("Version".into(), "2012-10-17".into());
        }
        Some(Value::String(v)) if v == "2012-10-17" || v == "2008-10-17" => {}
        Some(other) => return Err(Error::invalid("role.trust.Version", other, "\"2012-10-17\" (or \"2008-10-17\")")),
    }
    let statements = match document.get("Statement") {
        Some(Value::Array(list)) if !list.is_empty() => list.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        Some(other) => return Err(Error::invalid("role.trust.Statement", other, "a non-empty array of statements")),
        None => {
            return Err(Error::MissingKey {
                key: "Statement".into(),
                context: "role.trust".into(),
                what: "the policy's statements, e.g. [#{ Effect: \"Allow\", Principal: #{ Service: \"ecs-tasks.amazonaws.com\" }, Action: \"sts:AssumeRole\" }]".into(),
            });
        }
    };
    for (i, statement) in statements.iter().enumerate() {
        validate_statement(&format!("role.trust.Statement[{i}]"), statement)?;
    }
    Ok(Value::Object(document))
}

fn check_keys(key: &str, map: &JsonMap<String, Value>, allowed: &[&str]) -> Result<()> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => {
            Err(Error::UnknownKey { key: unknown.clone(), context: key.to_string(), allowed: allowed.join(", ") })
        }
        None => Ok(()),
    }
}

fn validate_statement(key: &str, statement: &Value) -> Result<()> {
    let Value::Object(s) = statement else {
        return Err(Error::invalid(key, statement, "a statement map #{ Effect, Principal, Action }"));
    };
    if s.contains_key("Resource") || s.contains_key("NotResource") {
        return Err(Error::invalid(
            format!("{key}.Resource"),
            s.get("Resource").or(s.get("NotResource")).unwrap_or(&Value::Null),
            "no Resource: a trust policy's resource is the role itself (IAM rejects the field)",
        ));
    }
    check_keys(key, s, &["Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Condition"])?;
    match s.get("Effect") {
        Some(Value::String(e)) if e == "Allow" || e == "Deny" => {}
        Some(other) => return Err(Error::invalid(format!("{key}.Effect"), other, "\"Allow\" or \"Deny\"")),
        None => return Err(missing(key, "Effect", "\"Allow\" or \"Deny\"")),
    }
    let principal = match (s.get("Principal"), s.get("NotPrincipal")) {
        (Some(p), None) => ("Principal", p),
        (None, Some(p)) => ("NotPrincipal", p),
        _ => {
            return Err(missing(
                key,
                "Principal",
                "who may assume the role, e.g. #{ Service: \"ecs-tasks.amazonaws.com\" }",
            ));
        }
    };
    let principal_key = format!("{key}.{}", principal.0);
    match principal.1 {
        Value::String(s) if s == "*" => {}
        Value::Object(kinds) if !kinds.is_empty() => {
            check_keys(&principal_key, kinds, &["AWS", "Service", "Federated", "CanonicalUser"])?;
            for (kind, value) in kinds {
                strings(&format!("{principal_key}.{kind}"), value)?;
                if kind == "Service" {
                    for (i, service) in strings(&principal_key, value)?.into_iter().enumerate() {
                        validate_service(&format!("{principal_key}.Service[{i}]"), service)?;
                    }
                }
            }
        }
        other => {
            return Err(Error::invalid(
                principal_key,
                other,
                "\"*\" or a map like #{ Service: \"ecs-tasks.amazonaws.com\" }",
            ));
        }
    }
    let action = match (s.get("Action"), s.get("NotAction")) {
        (Some(a), None) => ("Action", a),
        (None, Some(a)) => ("NotAction", a),
        _ => return Err(missing(key, "Action", "e.g. \"sts:AssumeRole\"")),
    };
    let action_key = format!("{key}.{}", action.0);
    for a in strings(&action_key, action.1)? {
        if a != "*" && !a.starts_with("sts:") {
            return Err(Error::invalid(
                &action_key,
                format!("{a:?}"),
                "sts actions, e.g. \"sts:AssumeRole\", \"sts:AssumeRoleWithWebIdentity\", \"sts:TagSession\"",
            ));
        }
    }
    if let Some(condition) = s.get("Condition") {
        let Value::Object(operators) = condition else {
            return Err(Error::invalid(format!("{key}.Condition"), condition, "a map of condition operators"));
        };
        for (operator, keys) in operators {
            if !keys.is_object() {
                return Err(Error::invalid(
                    format!("{key}.Condition.{operator}"),
                    keys,
                    "a map of condition keys to values, e.g. #{ \"aws:SourceAccount\": \"123456789012\" }",
                ));
            }
        }
    }
    Ok(())
}

fn missing(context: &str, key: &str, what: &str) -> Error {
    Error::MissingKey { key: key.to_string(), context: context.to_string(), what: what.to_string() }
}

fn strings<'v>(key: &str, value: &'v Value) -> Result<Vec<&'v str>> {
    let bad = || Error::invalid(key, value, "a string or a non-empty array of strings");
    match value {
        Value::String(s) => Ok(vec![s.as_str()]),
        Value::Array(items) if !items.is_empty() => items.iter().map(|i| i.as_str().ok_or_else(bad)).collect(),
        _ => Err(bad()),
    }
}

/// A policy document in a canonical form, so that documents IAM treats as equal compare equal:
/// one statement or a list, one value or a one-element list, value order, duplicates, empty `Sid`,
/// scalars written as numbers/booleans, and account ids vs `:root` ARNs as principals.
pub fn normalise_policy(document: &Value) -> Value {
    let Value::Object(top) = document else { return document.clone() };
    let mut out = JsonMap::new();
    for (key, value) in top {
        let value = match key.as_str() {
            "Statement" => {
                let statements = match value {
                    Value::Array(list) => list.clone(),
                    one => vec![one.clone()],
                };
                Value::Array(statements.iter().map(normalise_statement).collect())
            }
            _ => value.clone(),
        };
        out.insert(key.clone(), value);
    }
    Value::Object(out)
}

fn normalise_statement(statement: &Value) -> Value {
    let Value::Object(s) = statement else { return statement.clone() };
    let mut out = JsonMap::new();
    for (key, value) in s {
        let value = match key.as_str() {
            "Sid" if value.as_str() == Some("") => continue,
            "Action" | "NotAction" | "Resource" | "NotResource" => normalise_set(value),
            "Principal" | "NotPrincipal" => match value {
                Value::Object(kinds) => Value::Object(
                    kinds
                        .iter()
                        .map(|(kind, v)| {
                            let v = if kind == "AWS" { account_principals(v) } else { v.clone() };
                            (kind.clone(), normalise_set(&v))
                        })
                        .collect(),
                ),
                other => other.clone(),
            },
            "Condition" => match value {
                Value::Object(operators) => Value::Object(
                    operators
                        .iter()
                        .map(|(op, keys)| {
                            let keys = match keys {
                                Value::Object(k) => {
                                    Value::Object(k.iter().map(|(k, v)| (k.clone(), normalise_set(v))).collect())
                                }
                                other => other.clone(),
                            };
                            (op.clone(), keys)
                        })
                        .collect(),
                ),
                other => other.clone(),
            },
            _ => value.clone(),
        };
        out.insert(key.clone(), value);
    }
    Value::Object(out)
}

/// IAM stores a bare account id principal as the account's root ARN.
fn account_principals(value: &Value) -> Value {
    let convert = |v: &Value| match v.as_str() {
        Some(id) if id.len() == 12 && id.chars().all(|c| c.is_ascii_digit()) => {
            Value::String(format!("arn:aws:iam::{id}:root"))
        }
        _ => v.clone(),
    };
    match value {
        Value::Array(items) => Value::Array(items.iter().map(convert).collect()),
        one => convert(one),
    }
}

fn normalise_set(value: &Value) -> Value {
    let scalar = |v: &Value| match v {
        Value::Number(n) => Value::String(n.to_string()),
        Value::Bool(b) => Value::String(b.to_string()),
        other => other.clone(),
    };
    match value {
        Value::Array(items) => {
            let mut items: Vec<Value> = items.iter().map(scalar).collect();
            items.sort_by_key(|v| v.to_string());
            items.dedup();
            if items.len() == 1 { items.remove(0) } else { Value::Array(items) }
        }
        one => scalar(one),
    }
}

/// How a trust policy reads in change lines: the services for a standard one, else compact JSON.
pub fn describe_trust(trust: &Value) -> String {
    let standard = |services: &[String]| normalise_policy(&service_trust(services)) == *trust;
    let services: Vec<String> = trust
        .pointer("/Statement/0/Principal/Service")
        .map(|s| match s {
            Value::Array(items) => items.iter().filter_map(|i| i.as_str().map(str::to_string)).collect(),
            one => one.as_str().map(str::to_string).into_iter().collect(),
        })
        .unwrap_or_default();
    if !services.is_empty() && standard(&services) { services.join(", ") } else { trust.to_string() }
}

/// Who a trust policy lets assume the role, in short (for summaries): `ecs-tasks.amazonaws.com`,
/// `arn:aws:iam::123456789012:root (with conditions)`.
pub fn trusted_principals(trust: &Value) -> String {
    let statements = trust.get("Statement").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let allowed = statements.iter().filter(|s| s.get("Effect").and_then(Value::as_str) == Some("Allow"));
    let mut principals = Vec::new();
    let mut conditions = false;
    for statement in allowed {
        conditions |= statement.get("Condition").is_some();
        match statement.get("Principal") {
            Some(Value::Object(kinds)) => {
                for value in kinds.values() {
                    match value {
                        Value::Array(items) => principals.extend(items.iter().filter_map(Value::as_str)),
                        one => principals.extend(one.as_str()),
                    }
                }
            }
            Some(Value::String(any)) => principals.push(any),
            _ => {}
        }
    }
    if principals.is_empty() {
        return "nobody".to_string();
    }
    let suffix = if conditions { " (with conditions)" } else { "" };
    format!("{}{suffix}", principals.join(", "))
}

/// Decodes the percent-encoding IAM applies to policy documents (RFC 3986; `+` stays `+`).
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_trust(raw: Option<&str>) -> Value {
    let Some(raw) = raw else { return Value::Null };
    let decoded = percent_decode(raw);
    serde_json::from_str::<Value>(&decoded)
        .or_else(|_| serde_json::from_str::<Value>(raw))
        .map(|v| normalise_policy(&v))
        .unwrap_or(Value::String(raw.to_string()))
}

/// Reads a role and its attached managed policies concurrently; `None` when there is no such role.
pub async fn fetch_role(aws: &Aws, name: &str) -> Result<Option<Role>> {
    let get = async { aws.iam.get_role().role_name(name).send().await.map_err(|e| aws_error("GetRole", e)) };
    let attached = async {
        let mut pages = aws.iam.list_attached_role_policies().role_name(name).into_paginator().items().send();
        let mut arns = Vec::new();
        while let Some(policy) = pages.next().await {
            let policy = policy.map_err(|e| aws_error("ListAttachedRolePolicies", e))?;
            arns.extend(policy.policy_arn().map(str::to_string));
        }
        Ok::<_, Error>(arns)
    };
    let (out, mut arns) = match tokio::try_join!(get, attached) {
        Ok(found) => found,
        Err(err) if err.aws_code() == Some("NoSuchEntity") => return Ok(None),
        Err(err) => return Err(err),
    };
    let Some(role) = out.role() else { return Ok(None) };
    arns.sort();
    arns.dedup();
    Ok(Some(Role {
        name: role.role_name().to_string(),
        arn: role.arn().to_string(),
        path: role.path().to_string(),
        description: role.description().unwrap_or_default().to_string(),
        trust: parse_trust(role.assume_role_policy_document()),
        managed_policies: arns,
        stack: role.tags().iter().find(|t| t.key() == STACK_TAG).map(|t| t.value().to_string()),
    }))
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

/// Checks (once per run) that the policies about to be attached exist, so a typo fails the plan.
fn check_policies_exist(pass: &Pass, spec: &RoleSpec, wanted: &[String], attached: &[String]) -> Result<()> {
    let snapshot = pass.snapshot()?;
    for (i, (written, arn)) in spec.managed_policies.iter().zip(wanted).enumerate() {
        if attached.contains(arn) {
            continue;
        }
        let known = snapshot.borrow().iam.policies.get(arn).copied();
        let exists = match known {
            Some(exists) => exists,
            None => {
                let Some(found) = pass.read(async |aws| match aws.iam.get_policy().policy_arn(arn).send().await {
                    Ok(_) => Ok(true),
                    Err(e) => match aws_error("GetPolicy", e) {
                        err if err.aws_code() == Some("NoSuchEntity") => Ok(false),
                        err => Err(err),
                    },
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

fn not_ours(role: &Role, stack: &str) -> Error {
    let owner = match &role.stack {
        Some(other) => format!("it belongs to stack {other}"),
        None => format!("it has no {STACK_TAG} tag"),
    };
    Error::conflict(
        format!(
            "an IAM role named {} already exists ({}) and is not part of stack {stack}: {owner}",
            role.name, role.arn
        ),
        Some(
            "deckhand never adopts resources it did not create; choose another name (or tag the role deckhand:stack=<stack> if this stack should own it)",
        ),
    )
}

/// Converges a role: finds it by name (it must carry this stack's tag), creates it when missing,
/// restores its trust policy and description, and makes its managed policies exactly the script's.
pub fn ensure_role(pass: &Pass, spec: &RoleSpec) -> Result<Role> {
    validate_role_name("role.name", &spec.name)?;
    let path = spec.path.clone().unwrap_or_else(|| "/".to_string());
    validate_path(&path)?;
    let description = spec.description.clone().unwrap_or_else(|| DEFAULT_DESCRIPTION.to_string());
    validate_description(&description)?;
    let document = validate_trust(&spec.trust)?;
    let trust = normalise_policy(&document);
    let part = partition(pass.region());
    let arns = spec
        .managed_policies
        .iter()
        .enumerate()
        .map(|(i, p)| policy_arn(&format!("role.managed_policies[{i}]"), p, part))
        .collect::<Result<Vec<_>>>()?;
    let wanted: Vec<String> = arns.iter().cloned().collect::<BTreeSet<_>>().into_iter().collect();
    if wanted.len() > 20 {
        return Err(Error::invalid(
            "role.managed_policies",
            format!("{} policies", wanted.len()),
            "at most 20 managed policies per role (IAM's limit; the default quota is 10)",
        ));
    }
    let stack = pass.stack()?;
    let existing = lookup_role(pass, &spec.name)?;
    if let Some(role) = &existing
        && role.stack.as_deref() != Some(stack.as_str())
    {
        return Err(not_ours(role, &stack));
    }
    check_policies_exist(pass, spec, &arns, existing.as_ref().map(|r| r.managed_policies.as_slice()).unwrap_or(&[]))?;

    let mut role = match existing {
        Some(role) => role,
        None => {
            let mut role = Role {
                name: spec.name.clone(),
                arn: UNKNOWN.into(),
                path: path.clone(),
                description: description.clone(),
                trust: trust.clone(),
                managed_policies: wanted.clone(),
                stack: Some(stack.clone()),
            };
            if !pass.mode.applies() {
                pass.log.record(Change::new(ChangeKind::Create, "role", &spec.name, summary(&role)));
                return Ok(role);
            }
            match create_role(pass, spec, &path, &description, &document, &stack)? {
                Created::New(arn) => {
                    let attach: Vec<&String> = wanted.iter().collect();
                    update_role(pass, &spec.name, None, None, &attach, &[])?;
                    role.arn = arn;
                    pass.snapshot()?.borrow_mut().iam.roles.insert(spec.name.clone(), Some(role.clone()));
                    pass.log.record(Change::new(ChangeKind::Create, "role", &spec.name, summary(&role)));
                    return Ok(role);
                }
                // Created meanwhile (e.g. by a concurrent run): converge it below if it is ours.
                Created::Existing(found) if found.stack.as_deref() == Some(stack.as_str()) => found,
                Created::Existing(found) => return Err(not_ours(&found, &stack)),
            }
        }
    };
    if role.path != path {
        return Err(Error::conflict(
            format!(
                "role {} has path {}, the script asks for {path}; IAM cannot change a role's path in place",
                spec.name, role.path
            ),
            Some("keep the old path, or give the role another name"),
        ));
    }
    let mut diffs = Vec::new();
    let trust_drifted = role.trust != trust;
    if trust_drifted {
        diffs.push(FieldDiff::changed("trust", describe_trust(&role.trust), describe_trust(&trust)));
    }
    let description_drifted = role.description != description;
    if description_drifted {
        diffs.push(FieldDiff::changed("description", format!("{:?}", role.description), format!("{description:?}")));
    }
    let attach: Vec<&String> = wanted.iter().filter(|a| !role.managed_policies.contains(a)).collect();
    let detach: Vec<&String> = role.managed_policies.iter().filter(|a| !wanted.contains(a)).collect();
    diffs.extend(attach.iter().map(|a| FieldDiff::added("managed_policies", a)));
    diffs.extend(detach.iter().map(|a| FieldDiff::removed("managed_policies", a)));
    if diffs.is_empty() {
        pass.log.record(Change::new(ChangeKind::Unchanged, "role", &spec.name, summary(&role)));
        return Ok(role);
    }
    if pass.mode.applies() {
        let policy_document = document.to_string();
        update_role(
            pass,
            &spec.name,
            trust_drifted.then_some(policy_document.as_str()),
            description_drifted.then_some(description.as_str()),
            &attach,
            &detach,
        )?;
        role.trust = trust;
        role.description = description;
        role.managed_policies = wanted;
        pass.snapshot()?.borrow_mut().iam.roles.insert(spec.name.clone(), Some(role.clone()));
    }
    pass.log.record(Change::new(ChangeKind::Update, "role", &spec.name, summary(&role)).with_diffs(diffs));
    Ok(role)
}

fn summary(role: &Role) -> String {
    format!("{}, trusts {}", role.arn, trusted_principals(&role.trust))
}

/// Sends the updates a role needs: trust policy, description, policies to attach and detach.
fn update_role(
    pass: &Pass,
    name: &str,
    trust: Option<&str>,
    description: Option<&str>,
    attach: &[&String],
    detach: &[&String],
) -> Result<()> {
    pass.apply(async |aws| {
        if let Some(document) = trust {
            aws.iam
                .update_assume_role_policy()
                .role_name(name)
                .policy_document(document)
                .send()
                .await
                .map_err(|e| aws_error("UpdateAssumeRolePolicy", e))?;
        }
        if let Some(description) = description {
            // Not UpdateRole: without MaxSessionDuration it may reset the session limit to 1 hour.
            aws.iam
                .update_role_description()
                .role_name(name)
                .description(description)
                .send()
                .await
                .map_err(|e| aws_error("UpdateRoleDescription", e))?;
        }
        for arn in attach {
            aws.iam
                .attach_role_policy()
                .role_name(name)
                .policy_arn(*arn)
                .send()
                .await
                .map_err(|e| aws_error("AttachRolePolicy", e))?;
        }
        for arn in detach {
            aws.iam
                .detach_role_policy()
                .role_name(name)
                .policy_arn(*arn)
                .send()
                .await
                .map_err(|e| aws_error("DetachRolePolicy", e))?;
        }
        Ok(())
    })
}

/// What `CreateRole` led to.
enum Created {
    /// A new role, with its ARN.
    New(String),
    /// The name was taken meanwhile; this is the role that holds it.
    Existing(Role),
}

/// Creates the role, tagged with Name and the stack.
fn create_role(
    pass: &Pass,
    spec: &RoleSpec,
    path: &str,
    description: &str,
    document: &Value,
    stack: &str,
) -> Result<Created> {
    let policy_document = document.to_string();
    let created = pass.apply(async |aws| {
        aws.iam
            .create_role()
            .role_name(&spec.name)
            .path(path)
            .description(description)
            .assume_role_policy_document(&policy_document)
            .set_tags(Some(role_tags(stack, &spec.name)))
            .send()
            .await
            .map_err(|e| aws_error("CreateRole", e))
    });
    match created {
        Ok(out) => Ok(Created::New(out.role().map(|r| r.arn().to_string()).unwrap_or_default())),
        Err(err) if err.aws_code() == Some("EntityAlreadyExists") => {
            pass.apply(async |aws| fetch_role(aws, &spec.name).await)?.map(Created::Existing).ok_or(err)
        }
        Err(err) => Err(err),
    }
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

/// Where and when a role was last used (GetRole's RoleLastUsed), if AWS knows.
pub async fn role_last_used(aws: &Aws, name: &str) -> Result<Option<(String, aws_smithy_types::DateTime)>> {
    let out = match aws.iam.get_role().role_name(name).send().await {
        Ok(out) => out,
        Err(err) => match aws_error("GetRole", err) {
            err if err.aws_code() == Some("NoSuchEntity") => return Ok(None),
            err => return Err(err),
        },
    };
    let last = out.role().and_then(|r| r.role_last_used());
    Ok(last.and_then(|l| Some((l.region()?.to_string(), *l.last_used_date()?))))
}

/// Every role of the account (ListRoles, up to 1000 per page).
pub async fn list_roles(aws: &Aws) -> Result<Vec<RoleSummary>> {
    let mut pages = aws.iam.list_roles().max_items(1000).into_paginator().items().send();
    let mut roles = Vec::new();
    while let Some(role) = pages.next().await {
        let role = role.map_err(|e| aws_error("ListRoles", e))?;
        roles.push(RoleSummary {
            name: role.role_name().to_string(),
            arn: role.arn().to_string(),
            path: role.path().to_string(),
            description: role.description().unwrap_or_default().to_string(),
        });
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
        Err(err) => match aws_error("ListRoleTags", err) {
            err if err.aws_code() == Some("NoSuchEntity") => Ok(None),
            err => Err(err),
        },
    }
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
    for arn in arns {
        aws.iam
            .detach_role_policy()
            .role_name(name)
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| aws_error("DetachRolePolicy", e))?;
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
    aws.iam.delete_role().role_name(name).send().await.map(drop).map_err(|e| aws_error("DeleteRole", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn policy_names_map_to_their_arns() {
        let arn = |text| policy_arn("p", text, "aws");
        assert_eq!(
            arn("AmazonECSTaskExecutionRolePolicy").unwrap(),
            "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
        );
        assert_eq!(arn("AmazonS3ReadOnlyAccess").unwrap(), "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess");
        assert_eq!(arn("service-role/Custom").unwrap(), "arn:aws:iam::aws:policy/service-role/Custom");
        assert_eq!(arn("arn:aws:iam::123456789012:policy/team/x").unwrap(), "arn:aws:iam::123456789012:policy/team/x");
        assert_eq!(policy_arn("p", "ReadOnlyAccess", "aws-cn").unwrap(), "arn:aws-cn:iam::aws:policy/ReadOnlyAccess");
        for bad in ["", "has space", "arn:aws:iam::12345:policy/x", "arn:aws:s3:::bucket", "arn:aws:iam::aws:role/x"] {
            assert!(arn(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn role_names_follow_iam_rules() {
        assert!(validate_role_name("n", "web-exec_1+=,.@").is_ok());
        assert!(validate_role_name("n", "").is_err());
        assert!(validate_role_name("n", "a b").is_err());
        assert!(validate_role_name("n", &"r".repeat(65)).is_err());
    }

    #[test]
    fn equivalent_policies_normalise_to_the_same_value() {
        let written = json!({
            "Version": "2012-10-17",
            "Statement": {
                "Sid": "",
                "Effect": "Allow",
                "Principal": { "Service": ["ecs-tasks.amazonaws.com"], "AWS": "123456789012" },
                "Action": ["sts:TagSession", "sts:AssumeRole", "sts:AssumeRole"],
                "Condition": { "Bool": { "aws:SecureTransport": true } }
            }
        });
        let stored = json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": { "AWS": "arn:aws:iam::123456789012:root", "Service": "ecs-tasks.amazonaws.com" },
                "Action": ["sts:AssumeRole", "sts:TagSession"],
                "Condition": { "Bool": { "aws:SecureTransport": "true" } }
            }]
        });
        assert_eq!(normalise_policy(&written), normalise_policy(&stored));
        let other = json!({ "Version": "2012-10-17", "Statement": [{ "Effect": "Deny", "Principal": "*", "Action": "sts:AssumeRole" }] });
        assert_ne!(normalise_policy(&written), normalise_policy(&other));
    }

    #[test]
    fn stored_documents_are_percent_decoded() {
        let raw = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22Service%22%3A%22ecs-tasks.amazonaws.com%22%7D%2C%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D";
        let trust = parse_trust(Some(raw));
        assert_eq!(trust, normalise_policy(&service_trust(&["ecs-tasks.amazonaws.com".into()])));
        assert_eq!(describe_trust(&trust), "ecs-tasks.amazonaws.com");
        assert_eq!(percent_decode("a+b%20c%2"), "a+b c%2");
        // An undecoded document parses as well.
        assert_eq!(parse_trust(Some(&service_trust(&["ecs-tasks.amazonaws.com".into()]).to_string())), trust);
    }

    #[test]
    fn trust_documents_are_checked_like_iam_does() {
        let check = |doc: Value| validate_trust(&Trust::Document(doc)).map_err(|e| e.to_string());
        let ok = check(json!({ "Statement": [{ "Effect": "Allow", "Principal": { "Service": "ecs-tasks.amazonaws.com" }, "Action": "sts:AssumeRole" }] })).unwrap();
        assert_eq!(ok["Version"], "2012-10-17");
        let err = check(json!({ "Statement": [{ "Effect": "Allow", "Action": "sts:AssumeRole" }] })).unwrap_err();
        assert!(err.starts_with("missing key `Principal` in role.trust.Statement[0]"), "{err}");
        let err = check(json!({ "Statement": [{ "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject" }] }))
            .unwrap_err();
        assert!(err.starts_with("invalid role.trust.Statement[0].Action \"s3:GetObject\": sts actions"), "{err}");
        let err = check(json!({ "Version": "2020-01-01", "Statement": [] })).unwrap_err();
        assert!(err.starts_with("invalid role.trust.Version \"2020-01-01\""), "{err}");
        let err = check(json!({ "Statment": [] })).unwrap_err();
        assert!(err.starts_with("unknown key `Statment` in role.trust"), "{err}");
        let two = validate_trust(&Trust::Services(vec![ECS_TASKS.into(), "ec2.amazonaws.com".into()])).unwrap();
        assert_eq!(two["Statement"][0]["Principal"]["Service"], json!([ECS_TASKS, "ec2.amazonaws.com"]));
        assert_eq!(trusted_principals(&normalise_policy(&two)), "ec2.amazonaws.com, ecs-tasks.amazonaws.com");
        let err = validate_trust(&Trust::Services(vec!["ecs-tasks".into()])).unwrap_err().to_string();
        assert!(err.starts_with("invalid role.trust \"ecs-tasks\": a service principal"), "{err}");
    }
}
