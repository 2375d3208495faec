//! The Rhai layer: converts script maps into typed specs (rejecting unknown keys and wrong types),
//! calls the typed AWS layer, and converts results back into handles (object maps).

mod alarms;
mod autoscaling;
mod core;
mod dns;
mod ec2;
mod ecr;
mod ecs;
mod egress;
mod elbv2;
mod iam;
mod logs;
mod queries;
mod secrets;
mod tasks;

use std::rc::Rc;

use futures_util::future::LocalBoxFuture;
use rhai::{Array, Dynamic, Engine, FuncRegistration, Map};

use crate::aws::Pass;
use crate::error::{Error, Result};
use crate::runtime::Aws;

/// Registers one area's script functions into an engine, bound to a pass.
pub(crate) type Register = fn(&mut Engine, &Rc<Pass>);

/// Re-reads the resource behind a handle (the map a script function returned) for `describe`:
/// its current state as a map, `None` when it does not exist.
pub(crate) type Describe = for<'a> fn(&'a Aws, &'a Map) -> LocalBoxFuture<'a, Result<Option<Map>>>;

/// How `describe` re-reads the handles of one kind: the kind, the handle's key that identifies
/// the resource (`id`, `arn` or `name`: nothing is read while it is unknown), and the read.
pub(crate) type Described = (&'static str, &'static str, Describe);

/// The script functions by area (as `deckhand docs` groups them): each area's `register`, and
/// how `describe` re-reads the handles its functions return. One line per area, so adding an
/// area is adding a line.
pub(crate) const AREAS: &[(&str, Register, &[Described])] = &[
    ("core", core::register, &[]),                         // stack, region, zones, note
    ("networking", ec2::register, ec2::DESCRIBED),         // VPCs, subnets, security groups
    ("egress", egress::register, egress::DESCRIBED),       // NAT gateways, route tables, VPC endpoints
    ("load balancing", elbv2::register, elbv2::DESCRIBED), // load balancers, target groups, listeners, rules
    ("iam", iam::register, iam::DESCRIBED),                // roles
    ("logs", logs::register, logs::DESCRIBED),             // log groups
    ("alarms", alarms::register, &[]),                     // CloudWatch metric alarms
    ("ecs", ecs::register, ecs::DESCRIBED),                // clusters, task definitions, services, waiting
    ("ecr", ecr::register, &[]),                           // image repositories
    ("autoscaling", autoscaling::register, &[]),           // service autoscaling: scalable targets, policies
    ("domains", dns::register, &[]),                       // hosted zones, certificates, DNS records
    ("secrets", secrets::register, &[]),                   // parameters and secrets containers read
    ("tasks", tasks::register, &[]),                       // one-off tasks (apply pass only)
    ("queries", queries::register, &[]),                   // read-only: clusters, services, describe, logs, find_*
];

/// Registers every primitive and query into `engine`, bound to `pass`.
pub fn register(engine: &mut Engine, pass: &Rc<Pass>) {
    for (_, register, _) in AREAS {
        register(engine, pass);
    }
}

/// Registers `f` as script function `name` with its signature and doc comment (for `deckhand docs`).
pub(crate) fn function(name: &str, params: &[&str], doc: &str) -> FuncRegistration {
    let comments: Vec<String> = doc.lines().map(|l| format!("/// {l}").trim_end().to_string()).collect();
    FuncRegistration::new(name).with_params_info(params).with_comments([comments.join("\n")])
}

/// Takes `keep` out of a resource's option map: `keep: true` marks the resource so a run whose
/// script no longer declares it keeps it (see [`crate::converge::converge_kept`]).
pub(crate) fn keep_of(context: &'static str, mut map: Map) -> Result<(bool, Map)> {
    let keep = match map.remove("keep") {
        None => false,
        Some(value) => value
            .as_bool()
            .map_err(|_| Error::invalid(format!("{context}.keep"), value.to_string(), "true or false"))?,
    };
    Ok((keep, map))
}

/// A script's option map, read key by key with precise errors; unknown keys are rejected up front.
pub(crate) struct Fields {
    context: &'static str,
    map: Map,
}

impl Fields {
    /// Wraps `map` given to `context` (e.g. `subnet`), rejecting keys outside `allowed`.
    pub fn new(context: &'static str, map: Map, allowed: &[&str]) -> Result<Fields> {
        if let Some(key) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            let close = allowed.iter().find(|a| similar(a, key));
            let allowed_text = match close {
                Some(c) => format!("{} (did you mean `{c}`?)", allowed.join(", ")),
                None => allowed.join(", "),
            };
            return Err(Error::UnknownKey {
                key: key.to_string(),
                context: format!("{context}()"),
                allowed: allowed_text,
            });
        }
        Ok(Fields { context, map })
    }

    fn key(&self, key: &str) -> String {
        format!("{}.{key}", self.context)
    }

    fn value(&self, key: &str) -> Option<&Dynamic> {
        self.map.get(key).filter(|v| !v.is_unit())
    }

    fn missing(&self, key: &str, what: &str) -> Error {
        Error::MissingKey { key: key.to_string(), context: format!("{}()", self.context), what: what.to_string() }
    }

    /// An optional string.
    pub fn str(&self, key: &str) -> Result<Option<String>> {
        self.value(key).map(|v| as_string(&self.key(key), v)).transpose()
    }

    /// A required string; `what` explains the key in the error when it is missing.
    pub fn req_str(&self, key: &str, what: &str) -> Result<String> {
        self.str(key)?.ok_or_else(|| self.missing(key, what))
    }

    /// An optional integer.
    pub fn int(&self, key: &str) -> Result<Option<i64>> {
        self.value(key).map(|v| as_int(&self.key(key), v)).transpose()
    }

    /// An optional boolean.
    pub fn bool(&self, key: &str) -> Result<Option<bool>> {
        self.value(key)
            .map(|v| {
                v.as_bool()
                    .map_err(|_| Error::invalid(self.key(key), show(v), format!("true or false, not {}", type_name(v))))
            })
            .transpose()
    }

    /// An optional array of maps (e.g. rules); each item is named `key[i]` in errors.
    pub fn maps(&self, key: &str) -> Result<Option<Vec<Map>>> {
        let Some(value) = self.value(key) else {
            return Ok(None);
        };
        let array = as_array(&self.key(key), value)?;
        array
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                item.clone().try_cast::<Map>().ok_or_else(|| {
                    Error::invalid(
                        format!("{}[{i}]", self.key(key)),
                        show(&item),
                        format!("a map #{{ ... }}, not {}", type_name(&item)),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// An optional raw value, for keys that take a handle or an id.
    pub fn raw(&self, key: &str) -> Option<&Dynamic> {
        self.value(key)
    }

    /// The full key name for errors, e.g. `subnet.cidr`.
    pub fn name(&self, key: &str) -> String {
        self.key(key)
    }
}

/// The string in `value`, or an error naming `key`.
pub(crate) fn as_string(key: &str, value: &Dynamic) -> Result<String> {
    value
        .clone()
        .into_string()
        .map_err(|_| Error::invalid(key, show(value), format!("a string, not {}", type_name(value))))
}

/// The integer in `value`, or an error naming `key`.
pub(crate) fn as_int(key: &str, value: &Dynamic) -> Result<i64> {
    value.as_int().map_err(|_| Error::invalid(key, show(value), format!("an integer, not {}", type_name(value))))
}

/// The array in `value`, or an error naming `key`.
pub(crate) fn as_array(key: &str, value: &Dynamic) -> Result<Array> {
    value
        .clone()
        .try_cast::<Array>()
        .ok_or_else(|| Error::invalid(key, show(value), format!("an array [ ... ], not {}", type_name(value))))
}

/// A value as the script would write it, for error messages.
pub(crate) fn show(value: &Dynamic) -> String {
    if value.is_string() { format!("{:?}", value.to_string()) } else { value.to_string() }
}

fn type_name(value: &Dynamic) -> &'static str {
    match value.type_name() {
        "i64" => "an integer",
        "f64" => "a float",
        "bool" => "a boolean",
        "string" | "ImmutableString" => "a string",
        "map" => "a map",
        "array" => "an array",
        "()" => "()",
        _ => "another type",
    }
}

/// Whether `b` looks like a typo of `a` (edit distance at most 2).
pub(crate) fn similar(a: &str, b: &str) -> bool {
    strsim::levenshtein(a, b) <= 2
}

/// A script value (maps, arrays, strings, numbers, booleans, `()` as null) as JSON, or an error
/// naming `key`.
pub(crate) fn to_json(key: &str, value: &Dynamic) -> Result<serde_json::Value> {
    rhai::serde::from_dynamic(value)
        .map_err(|_| Error::invalid(key, show(value), "a string, number, boolean, array or map (a JSON value)"))
}

/// A JSON value as a script value: objects become maps, arrays arrays, null `()`.
pub(crate) fn from_json(value: &serde_json::Value) -> Result<Dynamic> {
    rhai::serde::to_dynamic(value).map_err(|e| Error::Internal(format!("JSON {value} as a script value: {e}")))
}

/// Reads the id of a handle of `kind` (an object map from a primitive) or a plain id string.
pub(crate) fn handle_id(key: &str, value: &Dynamic, kind: &str, prefix: &str) -> Result<String> {
    handle_or_string(key, value, kind, "id", &format!("a \"{prefix}...\" id"), |text| text.starts_with(prefix))
}

/// Reads `field` of a handle of `kind`, or takes a plain string that `accept` approves (`what`
/// describes such a string in errors, e.g. `a "sg-..." id`).
pub(crate) fn handle_or_string(
    key: &str,
    value: &Dynamic,
    kind: &str,
    field: &str,
    what: &str,
    accept: impl Fn(&str) -> bool,
) -> Result<String> {
    let expected = || format!("a {kind} handle or {what}");
    if let Some(map) = value.read_lock::<Map>() {
        let found_kind = map.get("kind").map(ToString::to_string).unwrap_or_default();
        if found_kind != kind {
            let found = format!("a {} handle", if found_kind.is_empty() { "map" } else { &found_kind });
            return Err(Error::invalid(key, found, expected()));
        }
        return map.get(field).map(|v| v.to_string()).ok_or_else(|| {
            Error::invalid(key, format!("a {kind} handle without {field}"), format!("a {kind} handle"))
        });
    }
    let text = as_string(key, value).map_err(|_| Error::invalid(key, show(value), expected()))?;
    if accept(&text) { Ok(text) } else { Err(Error::invalid(key, show(value), expected())) }
}

/// A field of a handle map, if `value` is one and the field is set.
pub(crate) fn handle_field(value: &Dynamic, field: &str) -> Option<Dynamic> {
    value.read_lock::<Map>().and_then(|m| m.get(field).cloned()).filter(|v| !v.is_unit())
}

/// A handle's field as text; `None` when it is absent or ().
pub(crate) fn text(map: &Map, key: &str) -> Option<String> {
    map.get(key).filter(|v| !v.is_unit()).map(ToString::to_string)
}

/// A value that may be absent, as a script sees it (text or ()).
pub(crate) fn optional(value: Option<String>) -> Dynamic {
    value.map(Dynamic::from).unwrap_or(Dynamic::UNIT)
}

/// Strings as a Rhai array (ids in handles, rules in descriptions).
pub(crate) fn string_array(items: &[String]) -> Dynamic {
    items.iter().map(|s| Dynamic::from(s.clone())).collect::<Array>().into()
}

/// Builds a handle: an object map with `kind` and the given fields.
pub(crate) fn handle(kind: &str, fields: impl IntoIterator<Item = (&'static str, Dynamic)>) -> Map {
    let mut map = Map::new();
    map.insert("kind".into(), kind.into());
    for (key, value) in fields {
        map.insert(key.into(), value);
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_rejected_with_a_suggestion() {
        let mut map = Map::new();
        map.insert("cidrr".into(), "10.0.0.0/24".into());
        let err = Fields::new("subnet", map, &["name", "az", "cidr"]).err().unwrap().to_string();
        assert_eq!(err, "unknown key `cidrr` in subnet(); allowed keys: name, az, cidr (did you mean `cidr`?)");
    }

    #[test]
    fn wrong_types_name_the_key_and_the_type() {
        let mut map = Map::new();
        map.insert("name".into(), Dynamic::from(42_i64));
        let fields = Fields::new("subnet", map, &["name"]).unwrap();
        assert_eq!(fields.str("name").unwrap_err().to_string(), "invalid subnet.name 42: a string, not an integer");
    }

    #[test]
    fn json_round_trips_through_script_values() {
        let json = serde_json::json!({ "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "Max": 3, "On": true, "Off": null }] });
        let value = from_json(&json).unwrap();
        let statement = value.read_lock::<Map>().unwrap()["Statement"].clone().into_array().unwrap()[0].clone();
        let statement = statement.read_lock::<Map>().unwrap().clone();
        assert_eq!(statement["Max"].as_int(), Ok(3));
        assert_eq!(statement["On"].as_bool(), Ok(true));
        assert!(statement["Off"].is_unit());
        assert_eq!(to_json("trust", &value).unwrap(), json);
    }

    #[test]
    fn values_json_cannot_hold_name_the_key() {
        let fn_ptr = Dynamic::from(rhai::FnPtr::new("f").unwrap());
        let err = to_json("role.trust", &fn_ptr).unwrap_err().to_string();
        assert!(err.starts_with("invalid role.trust"), "{err}");
        assert!(err.ends_with("(a JSON value)"), "{err}");
    }
}
