//! Script functions for container secrets: `parameter`, `secret` (found read-only; values are
//! never read), and the conversions task definitions use for `secrets: #{ NAME: source }`.

use std::rc::Rc;

use rhai::{Dynamic, Engine, EvalAltResult, Map};

use crate::aws::Pass;
use crate::aws::iam;
use crate::aws::secrets::{self, SecretSource, Store};
use crate::bindings::{as_string, function, handle, handle_field, show};
use crate::error::{Error, Result};

type Rhai<T> = std::result::Result<T, Box<EvalAltResult>>;

pub(super) fn register(engine: &mut Engine, pass: &Rc<Pass>) {
    let p = pass.clone();
    function(
        "parameter",
        &["name: &str", "Map"],
        "An SSM Parameter Store parameter for a container's `secrets`; it must exist (checked with\n\
         DescribeParameters in the plan pass; its value is never read or printed).\n\
         Returns #{ kind: \"parameter\", name, arn, kms_key }.\n\
         Example: `secrets: #{ DB_PASSWORD: parameter(\"/myapp/db-password\") }`",
    )
    .register_into_engine(engine, move |name: &str| -> Rhai<Map> { Ok(parameter(&p, name)?) });

    let p = pass.clone();
    function(
        "secret",
        &["name: &str", "Map"],
        "A Secrets Manager secret (name or ARN) for a container's `secrets`, injected whole; it must\n\
         exist (checked with DescribeSecret in the plan pass; its value is never read or printed).\n\
         Returns #{ kind: \"secret\", name, arn, key, kms_key }.\n\
         Example: `secrets: #{ DB: secret(\"prod/db\") }`",
    )
    .register_into_engine(engine, move |name: &str| -> Rhai<Map> { Ok(secret(&p, name, None)?) });

    let p = pass.clone();
    function(
        "secret",
        &["name: &str", "key: &str", "Map"],
        "One JSON key of a Secrets Manager secret for a container's `secrets` (valueFrom\n\
         `ARN:key::`, the current version).\n\
         Example: `secrets: #{ DB_PASSWORD: secret(\"prod/db\", \"password\") }`",
    )
    .register_into_engine(engine, move |name: &str, key: &str| -> Rhai<Map> { Ok(secret(&p, name, Some(key))?) });
}

fn parameter(pass: &Pass, name: &str) -> Result<Map> {
    secrets::validate_parameter_name(name)?;
    let found = secrets::find_parameter(pass, name)?.ok_or_else(|| {
        Error::invalid(
            "parameter",
            format!("{name:?}"),
            format!(
                "an existing SSM parameter; there is no parameter {name} in {} (create it with `aws ssm put-parameter --type SecureString`)",
                pass.region().unwrap_or("this region")
            ),
        )
    })?;
    Ok(source_handle(&found))
}

fn secret(pass: &Pass, name: &str, key: Option<&str>) -> Result<Map> {
    secrets::validate_secret_name(name)?;
    if let Some(key) = key
        && (key.is_empty() || key.contains(':'))
    {
        return Err(Error::invalid("secret.key", format!("{key:?}"), "a JSON key of the secret (no ':')"));
    }
    let mut found = secrets::find_secret(pass, name)?.ok_or_else(|| {
        Error::invalid(
            "secret",
            format!("{name:?}"),
            format!(
                "an existing Secrets Manager secret; there is no secret {name} in {} (create it with `aws secretsmanager create-secret`)",
                pass.region().unwrap_or("this region")
            ),
        )
    })?;
    found.key = key.map(str::to_string);
    Ok(source_handle(&found))
}

fn source_handle(source: &SecretSource) -> Map {
    let opt = |v: &Option<String>| v.clone().map_or(Dynamic::UNIT, Dynamic::from);
    let kind = match source.store {
        Store::Parameter => "parameter",
        Store::SecretsManager => "secret",
    };
    handle(
        kind,
        [
            ("name", source.name.clone().into()),
            ("arn", source.arn.clone().into()),
            ("key", opt(&source.key)),
            ("kms_key", opt(&source.kms_key)),
        ],
    )
}

/// The source behind a `secrets` entry: a handle from `parameter(...)` or `secret(...)`.
pub(super) fn source_from(key: &str, value: &Dynamic) -> Result<SecretSource> {
    let wrong =
        || Error::invalid(key, show(value), "parameter(\"/name\"), secret(\"name\") or secret(\"name\", \"json-key\")");
    let store = match handle_field(value, "kind").map(|k| k.to_string()).as_deref() {
        Some("parameter") => Store::Parameter,
        Some("secret") => Store::SecretsManager,
        _ => return Err(wrong()),
    };
    let field = |name: &str| -> Result<Option<String>> {
        handle_field(value, name).map(|v| as_string(&format!("{key}.{name}"), &v)).transpose()
    };
    Ok(SecretSource {
        store,
        name: field("name")?.ok_or_else(wrong)?,
        arn: field("arn")?.ok_or_else(wrong)?,
        key: field("key")?,
        kms_key: field("kms_key")?,
    })
}

/// The inline policy name that grants a task definition family's execution role its secrets.
pub(super) fn policy_name(family: &str) -> Result<String> {
    let name = format!("deckhand-secrets-{family}");
    iam::validate_policy_name("task_definition.family", &name)?;
    Ok(name)
}
