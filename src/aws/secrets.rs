//! Where containers' secrets come from: SSM Parameter Store parameters and Secrets Manager secrets,
//! found read-only (DescribeParameters, DescribeSecret: never GetParameter or GetSecretValue, so no
//! value is ever read), the `valueFrom` ECS reads them by, and the execution role's policy that lets
//! ECS read exactly those.

use std::collections::BTreeSet;
use std::fmt;

use aws_sdk_ssm::types::ParameterStringFilter;
use serde_json::{Value, json};

use crate::arn::Arn;
use crate::aws::Pass;
use crate::error::{Error, Result, aws_error};
use crate::plan::UNKNOWN;

/// Where a secret lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Store {
    /// SSM Parameter Store.
    Parameter,
    /// Secrets Manager.
    SecretsManager,
}

/// A parameter or secret a container reads, as found in AWS (never its value).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SecretSource {
    /// Where it lives.
    pub store: Store,
    /// The parameter's name (`/myapp/db-password`) or the secret's name (`prod/db`).
    pub name: String,
    /// Its full ARN (a secret's ends in the random suffix Secrets Manager adds), or [`UNKNOWN`].
    pub arn: String,
    /// The JSON key of a secret to inject instead of the whole secret.
    pub key: Option<String>,
    /// The KMS key it is encrypted with, when it is a customer-managed key (not `alias/aws/...`).
    pub kms_key: Option<String>,
}

impl SecretSource {
    /// The container definition's `valueFrom`: the ARN, and for a secret's JSON key
    /// `ARN:key::` (json-key, then the default version stage and version id).
    pub fn value_from(&self) -> String {
        match &self.key {
            Some(key) => format!("{}:{key}::", self.arn),
            None => self.arn.clone(),
        }
    }

    /// The action the execution role needs to read it.
    fn action(&self) -> &'static str {
        match self.store {
            Store::Parameter => "ssm:GetParameters",
            Store::SecretsManager => "secretsmanager:GetSecretValue",
        }
    }
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.store, &self.key) {
            (Store::Parameter, _) => write!(f, "parameter({:?})", self.name),
            (Store::SecretsManager, None) => write!(f, "secret({:?})", self.name),
            (Store::SecretsManager, Some(key)) => write!(f, "secret({:?}, {key:?})", self.name),
        }
    }
}

/// Checks a parameter name the way SSM does: up to 2048 characters of letters, digits and
/// `_.-/`; a path starts with `/`.
pub fn validate_parameter_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 2048
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c))
        && !name.contains("//");
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "parameter.name",
            format!("{name:?}"),
            "an SSM parameter name: letters, digits and _.-/ (a path starts with /)",
        ))
    }
}

/// Checks a secret name or ARN the way Secrets Manager does: up to 512 characters of letters,
/// digits and `/_+=.@-`.
pub fn validate_secret_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 2048
        && (name.starts_with("arn:") || name.chars().all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c)));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "secret.name",
            format!("{name:?}"),
            "a Secrets Manager secret name (letters, digits and /_+=.@-) or ARN",
        ))
    }
}

/// A KMS key other than the AWS managed ones (`alias/aws/ssm`, `alias/aws/secretsmanager`).
fn customer_key(key: Option<&str>) -> Option<String> {
    key.filter(|k| !k.is_empty() && !k.starts_with("alias/aws/") && !k.contains(":alias/aws/")).map(str::to_string)
}

/// Finds a parameter by name (DescribeParameters, which reports no value); `None` when there is no
/// such parameter. In a check pass nothing is read and the ARN is unknown.
pub fn find_parameter(pass: &Pass, name: &str) -> Result<Option<SecretSource>> {
    let Some(found) = pass.read(async |aws| {
        let filter = ParameterStringFilter::builder()
            .key("Name")
            .option("Equals")
            .values(name)
            .build()
            .map_err(|e| Error::Internal(format!("building a parameter filter: {e}")))?;
        // DescribeParameters pages are best effort: AWS documents that a page may hold fewer
        // results than asked, none at all, with a NextToken to go on (it filters after reading a
        // page of the account's parameters). So page until the name is found or no token is left,
        // as terraform-provider-aws does (internal/service/ssm/parameter.go: findParameterMetadataByName
        // filters DescribeParameters by Name Equals and findParametersMetadata reads every page).
        let mut pages = aws.ssm.describe_parameters().parameter_filters(filter).into_paginator().send();
        let meta = loop {
            let Some(page) = pages.next().await else { return Ok(None) };
            let page = page.map_err(|e| aws_error("DescribeParameters", e))?;
            if let Some(meta) = page.parameters().iter().find(|p| p.name() == Some(name)) {
                break meta.clone();
            }
        };
        let arn = meta.arn().ok_or_else(|| Error::missing("DescribeParameters", "Parameters.ARN"))?.to_string();
        Ok::<_, Error>(Some(SecretSource {
            store: Store::Parameter,
            name: name.to_string(),
            arn,
            key: None,
            kms_key: customer_key(meta.key_id()),
        }))
    }) else {
        return Ok(Some(unknown(Store::Parameter, name)));
    };
    found
}

/// Finds a secret by name or ARN (DescribeSecret, which reports no value); `None` when there is no
/// such secret (or it is scheduled for deletion). In a check pass nothing is read.
pub fn find_secret(pass: &Pass, name: &str) -> Result<Option<SecretSource>> {
    let Some(found) = pass.read(async |aws| {
        let out = match aws.secretsmanager.describe_secret().secret_id(name).send().await {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => return Ok(None),
            Err(e) => return Err(aws_error("DescribeSecret", e)),
        };
        if out.deleted_date().is_some() {
            return Ok(None);
        }
        let arn = out.arn().ok_or_else(|| Error::missing("DescribeSecret", "ARN"))?;
        Ok(Some(SecretSource {
            store: Store::SecretsManager,
            name: name.to_string(),
            arn: arn.to_string(),
            key: None,
            kms_key: customer_key(out.kms_key_id()),
        }))
    }) else {
        return Ok(Some(unknown(Store::SecretsManager, name)));
    };
    found
}

fn unknown(store: Store, name: &str) -> SecretSource {
    SecretSource { store, name: name.to_string(), arn: UNKNOWN.into(), key: None, kms_key: None }
}

/// The identity policy that lets an execution role read exactly `sources` (ssm:GetParameters,
/// secretsmanager:GetSecretValue on their ARNs) and decrypt them with their customer-managed KMS
/// keys; `None` when there are none.
pub fn access_policy(sources: &[SecretSource], partition: &str, region: &str) -> Option<Value> {
    if sources.is_empty() {
        return None;
    }
    let mut statements = Vec::new();
    for (sid, store) in [("ReadParameters", Store::Parameter), ("ReadSecrets", Store::SecretsManager)] {
        let arns: BTreeSet<&str> = sources.iter().filter(|s| s.store == store).map(|s| s.arn.as_str()).collect();
        if let Some(first) = sources.iter().find(|s| s.store == store) {
            statements.push(json!({
                "Sid": sid,
                "Effect": "Allow",
                "Action": first.action(),
                "Resource": arns.into_iter().collect::<Vec<_>>(),
            }));
        }
    }
    let account =
        sources.iter().find_map(|s| Arn::parse(&s.arn).map(|a| a.account).filter(|a| !a.is_empty())).unwrap_or("*");
    let mut keys = BTreeSet::new();
    let mut aliases = BTreeSet::new();
    for key in sources.iter().filter_map(|s| s.kms_key.as_deref()) {
        match kms_key(key, account, partition, region) {
            Kms::Key(arn) => keys.insert(arn),
            Kms::Alias(alias) => aliases.insert(alias),
        };
    }
    if !keys.is_empty() {
        statements.push(json!({
            "Sid": "DecryptSecrets",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": keys.into_iter().collect::<Vec<_>>(),
        }));
    }
    if !aliases.is_empty() {
        // kms:Decrypt is authorised on the key, not on an alias: the keys those aliases name.
        statements.push(json!({
            "Sid": "DecryptSecretsByAlias",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": format!("arn:{partition}:kms:{region}:{account}:key/*"),
            "Condition": { "ForAnyValue:StringEquals": { "kms:ResourceAliases": aliases.into_iter().collect::<Vec<_>>() } },
        }));
    }
    Some(json!({ "Version": "2012-10-17", "Statement": statements }))
}

/// Why an environment value looks like a credential (an AWS access key id, `password=...`,
/// `secret=...`), or `None`. The value itself is never part of the reason.
pub fn looks_like_credential(value: &str) -> Option<&'static str> {
    let bytes = value.as_bytes();
    let access_key = (0..bytes.len()).any(|i| {
        let rest = &bytes[i..];
        (rest.starts_with(b"AKIA") || rest.starts_with(b"ASIA"))
            && rest.len() >= 20
            && rest[4..20].iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric())
    });
    if access_key {
        return Some("an AWS access key id");
    }
    let lower = value.to_ascii_lowercase();
    for (needle, reason) in [
        ("password=", "a password=..."),
        ("passwd=", "a passwd=..."),
        ("pwd=", "a pwd=..."),
        ("secret=", "a secret=..."),
        ("aws_secret_access_key", "an AWS secret access key"),
    ] {
        if lower.contains(needle) {
            return Some(reason);
        }
    }
    // user:password@host in a connection URL.
    let has_password =
        |word: &str| url::Url::parse(word).is_ok_and(|url| url.password().is_some_and(|p| !p.is_empty()));
    if value.split_whitespace().any(has_password) {
        return Some("a URL with a password");
    }
    None
}

/// How a policy names the KMS key a parameter or secret reports.
enum Kms {
    /// A key ARN.
    Key(String),
    /// An alias, `alias/NAME`.
    Alias(String),
}

/// The key ARN kms:Decrypt names: a key ARN as reported, or a key id made into one; an alias
/// (by name or ARN) is kept as `alias/NAME`.
fn kms_key(key: &str, account: &str, partition: &str, region: &str) -> Kms {
    match key.split_once(":alias/") {
        Some((_, alias)) => Kms::Alias(format!("alias/{alias}")),
        None if key.starts_with("alias/") => Kms::Alias(key.to_string()),
        None if key.starts_with("arn:") => Kms::Key(key.to_string()),
        None => Kms::Key(format!("arn:{partition}:kms:{region}:{account}:key/{key}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(store: Store, arn: &str, key: Option<&str>, kms: Option<&str>) -> SecretSource {
        SecretSource {
            store,
            name: "n".into(),
            arn: arn.into(),
            key: key.map(str::to_string),
            kms_key: customer_key(kms),
        }
    }

    #[test]
    fn credentials_in_env_values_are_spotted() {
        assert_eq!(looks_like_credential("AKIAIOSFODNN7EXAMPLE"), Some("an AWS access key id"));
        assert_eq!(looks_like_credential("key ASIAIOSFODNN7EXAMPLE"), Some("an AWS access key id"));
        assert_eq!(looks_like_credential("host=db;Password=hunter2"), Some("a password=..."));
        assert_eq!(looks_like_credential("SECRET=abc"), Some("a secret=..."));
        assert_eq!(looks_like_credential("postgres://app:hunter2@db:5432/app"), Some("a URL with a password"));
        assert_eq!(looks_like_credential("postgres://app@db:5432/app"), None);
        assert_eq!(looks_like_credential("AKIA-not-a-key"), None);
        assert_eq!(looks_like_credential("production"), None);
        assert_eq!(looks_like_credential("8080"), None);
    }

    #[test]
    fn value_from_picks_a_json_key() {
        let s = source(
            Store::SecretsManager,
            "arn:aws:secretsmanager:us-east-1:1:secret:prod/db-AbCdEf",
            Some("password"),
            None,
        );
        assert_eq!(s.value_from(), "arn:aws:secretsmanager:us-east-1:1:secret:prod/db-AbCdEf:password::");
        let p = source(Store::Parameter, "arn:aws:ssm:us-east-1:1:parameter/a/b", None, None);
        assert_eq!(p.value_from(), "arn:aws:ssm:us-east-1:1:parameter/a/b");
    }

    #[test]
    fn policy_names_exactly_the_sources_and_customer_keys() {
        assert_eq!(access_policy(&[], "aws", "us-east-1"), None);
        let sources = [
            source(Store::Parameter, "arn:aws:ssm:us-east-1:1:parameter/a", None, Some("alias/aws/ssm")),
            source(Store::SecretsManager, "arn:aws:secretsmanager:us-east-1:1:secret:s-1", Some("k"), Some("abcd")),
            source(Store::SecretsManager, "arn:aws:secretsmanager:us-east-1:1:secret:s-1", None, Some("alias/mine")),
        ];
        let policy = access_policy(&sources, "aws", "us-east-1").unwrap();
        let statements = policy["Statement"].as_array().unwrap();
        assert_eq!(statements[0]["Resource"], json!(["arn:aws:ssm:us-east-1:1:parameter/a"]));
        assert_eq!(statements[1]["Action"], "secretsmanager:GetSecretValue");
        assert_eq!(statements[1]["Resource"], json!(["arn:aws:secretsmanager:us-east-1:1:secret:s-1"]));
        assert_eq!(statements[2]["Resource"], json!(["arn:aws:kms:us-east-1:1:key/abcd"]));
        assert_eq!(
            statements[3]["Condition"]["ForAnyValue:StringEquals"]["kms:ResourceAliases"],
            json!(["alias/mine"])
        );
        assert_eq!(statements.len(), 4);
        let aws_keys_only =
            [source(Store::Parameter, "arn:aws:ssm:us-east-1:1:parameter/a", None, Some("alias/aws/ssm"))];
        assert_eq!(
            access_policy(&aws_keys_only, "aws", "us-east-1").unwrap()["Statement"].as_array().unwrap().len(),
            1
        );
    }
}
