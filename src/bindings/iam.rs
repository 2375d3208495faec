//! Script functions for IAM: `role`, `task_execution_role`.

use std::rc::Rc;

use futures_util::FutureExt;
use futures_util::future::LocalBoxFuture;
use rhai::{Dynamic, Engine, EvalAltResult, Map};
use serde_json::Value;

use crate::aws::Pass;
use crate::aws::iam::{self, DesiredRole, ECS_TASKS, Role, RoleSpec, TASK_EXECUTION_POLICY, Trust};
use crate::bindings::{
    Described, Fields, as_array, as_string, from_json, function, handle, optional, show, string_array, text,
};
use crate::converge::converge;
use crate::error::{Error, Result};
use crate::runtime::Aws;

type Rhai<T> = std::result::Result<T, Box<EvalAltResult>>;

pub(super) fn register(engine: &mut Engine, pass: &Rc<Pass>) {
    let p = pass.clone();
    function(
        "role",
        &["spec: Map", "Map"],
        "Ensures an IAM role: #{ name, trust, managed_policies, description, path }.\n\
         `trust` is a service principal (\"ecs-tasks.amazonaws.com\"), an array of them, or a full trust\n\
         policy document as a map. `managed_policies` lists policy ARNs or AWS managed policy names\n\
         (\"AmazonECSTaskExecutionRolePolicy\"); exactly these stay attached. `path` (default \"/\")\n\
         cannot change in place. Returns #{ kind: \"role\", arn, name }.\n\
         Example: `role(#{ name: \"myapp-task\", trust: \"ecs-tasks.amazonaws.com\", managed_policies: [\"AmazonS3ReadOnlyAccess\"] })`",
    )
    .register_into_engine(engine, move |spec: Map| -> Rhai<Map> {
        let spec = role_spec(spec)?;
        Ok(role_handle(&converge_role(&p, &spec)?))
    });

    let p = pass.clone();
    function(
        "task_execution_role",
        &["name: &str", "Map"],
        "Ensures the role ECS uses to pull images and write logs for a task: trusted by\n\
         ecs-tasks.amazonaws.com, with AmazonECSTaskExecutionRolePolicy attached.\n\
         Returns #{ kind: \"role\", arn, name }.\nExample: `let exec = task_execution_role(\"myapp-exec\");`",
    )
    .register_into_engine(engine, move |name: &str| -> Rhai<Map> {
        iam::validate_role_name("task_execution_role.name", name)?;
        let spec = RoleSpec {
            name: name.to_string(),
            trust: Trust::Services(vec![ECS_TASKS.to_string()]),
            managed_policies: vec![TASK_EXECUTION_POLICY.to_string()],
            description: None,
            path: None,
        };
        Ok(role_handle(&converge_role(&p, &spec)?))
    });
}

/// Checks and resolves the script's role (policy ARNs depend on the region's partition), then
/// converges it.
fn converge_role(pass: &Pass, spec: &RoleSpec) -> Result<Role> {
    converge::<Role>(pass, &DesiredRole::resolve(spec, iam::partition(pass.region()))?)
}

fn role_spec(map: Map) -> Result<RoleSpec> {
    let f = Fields::new("role", map, &["name", "trust", "managed_policies", "description", "path"])?;
    let name = f.req_str("name", "the role name, unique in the account")?;
    iam::validate_role_name(&f.name("name"), &name)?;
    let trust = match f.raw("trust") {
        Some(value) => trust(&f.name("trust"), value)?,
        None => {
            return Err(Error::MissingKey {
                key: "trust".into(),
                context: "role()".into(),
                what: format!("who may assume the role: a service like \"{ECS_TASKS}\" or a trust policy map"),
            });
        }
    };
    let managed_policies = match f.raw("managed_policies") {
        Some(value) => as_array(&f.name("managed_policies"), value)?
            .iter()
            .enumerate()
            .map(|(i, item)| as_string(&format!("{}[{i}]", f.name("managed_policies")), item))
            .collect::<Result<Vec<_>>>()?,
        None => Vec::new(),
    };
    Ok(RoleSpec { name, trust, managed_policies, description: f.str("description")?, path: f.str("path")? })
}

fn trust(key: &str, value: &Dynamic) -> Result<Trust> {
    if value.is_string() {
        return Ok(Trust::Services(vec![as_string(key, value)?]));
    }
    if value.is_array() {
        let services = as_array(key, value)?
            .iter()
            .enumerate()
            .map(|(i, item)| as_string(&format!("{key}[{i}]"), item))
            .collect::<Result<Vec<_>>>()?;
        return Ok(Trust::Services(services));
    }
    if value.is_map() {
        return Ok(Trust::Document(to_json(key, value)?));
    }
    Err(Error::invalid(
        key,
        show(value),
        format!("a service principal like \"{ECS_TASKS}\", an array of them, or a trust policy map"),
    ))
}

/// Converts a script value (maps, arrays, strings, numbers, booleans) into JSON.
fn to_json(key: &str, value: &Dynamic) -> Result<Value> {
    super::to_json(key, value)
}

pub(super) fn role_handle(role: &Role) -> Map {
    handle("role", [("arn", role.arn.clone().into()), ("name", role.name.clone().into())])
}

/// How `describe` re-reads roles (by name).
pub(super) const DESCRIBED: &[Described] = &[("role", "name", describe_role)];

fn describe_role<'a>(aws: &'a Aws, map: &'a Map) -> LocalBoxFuture<'a, Result<Option<Map>>> {
    async move {
        let name = text(map, "name").unwrap_or_default();
        iam::fetch_role(aws, &name)
            .await?
            .map(|r| -> Result<Map> {
                let mut map = role_handle(&r);
                map.insert("path".into(), r.path.clone().into());
                map.insert("description".into(), r.description.clone().into());
                map.insert("managed_policies".into(), string_array(&r.managed_policies));
                map.insert("trust".into(), from_json(&r.trust)?);
                map.insert("stack".into(), optional(r.stack.clone()));
                Ok(map)
            })
            .transpose()
    }
    .boxed_local()
}
