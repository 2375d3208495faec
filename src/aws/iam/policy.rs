//! IAM policy documents and names: validation the way IAM does it, policy ARNs, and the
//! canonical form that lets a stored trust policy compare equal to the script's.

use percent_encoding::percent_decode_str;
use serde_json::{Map as JsonMap, Value};

use super::{ECS_TASKS, Trust};
use crate::arn::Arn;
use crate::error::{Error, Result};

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
    let (account, path_and_name) = if text.starts_with("arn:") {
        let Some(Arn { partition, region: "", account, resource, .. }) = Arn::of_type(text, "iam", "policy") else {
            return Err(bad());
        };
        let Some(path_and_name) = resource.strip_prefix("policy/") else { return Err(bad()) };
        let account_ok = account == "aws" || (account.len() == 12 && account.chars().all(|c| c.is_ascii_digit()));
        if !["aws", "aws-cn", "aws-us-gov"].contains(&partition) || !account_ok {
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

pub(super) fn validate_path(path: &str) -> Result<()> {
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

pub(super) fn validate_description(description: &str) -> Result<()> {
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

/// A stored policy document, normalised. GetRole and GetRolePolicy return policy documents
/// URL-encoded (RFC 3986, so `+` stays `+`): "The policy document returned in this structure is
/// URL-encoded compliant with RFC 3986"
/// (<https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetRolePolicy.html>).
pub(super) fn parse_trust(raw: Option<&str>) -> Value {
    let Some(raw) = raw else { return Value::Null };
    let decoded = percent_decode_str(raw).decode_utf8_lossy();
    serde_json::from_str::<Value>(&decoded).map(|v| normalise_policy(&v)).unwrap_or(Value::String(raw.to_string()))
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
        // `+` is not a space in RFC 3986, and a stray `%` is kept as it is.
        assert_eq!(parse_trust(Some("%22a+b%20c%2%22")), json!("a+b c%2"));
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
