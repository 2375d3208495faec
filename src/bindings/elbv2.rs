//! Script functions for load balancing: `load_balancer`, `target_group`, `listener`, `listener_rule`.

use std::rc::Rc;

use futures_util::FutureExt;
use futures_util::future::LocalBoxFuture;
use rhai::{Array, Dynamic, Engine, EvalAltResult, Map};

use crate::arn::{self, Arn};
use crate::aws::Pass;
use crate::aws::ec2::check_port;
use crate::aws::elbv2::{
    self, DEFAULT_DEREGISTRATION_DELAY, GroupRef, HealthCheck, Listener, ListenerAction, ListenerRef, ListenerRule,
    ListenerRuleSpec, ListenerSpec, LoadBalancer, LoadBalancerRef, LoadBalancerSpec, SubnetRef, TargetGroup,
    TargetGroupSpec,
};
use crate::aws::queries;
use crate::bindings::ec2::vpc_from;
use crate::bindings::keep_of;
use crate::bindings::queries::health_map;
use crate::bindings::{
    Described, Fields, as_array, as_int, as_string, function, handle, handle_field, handle_id, handle_or_string,
    optional, show, string_array, text,
};
use crate::converge::converge;
use crate::converge::converge_kept;
use crate::error::{Error, Result};
use crate::runtime::Aws;

type Rhai<T> = std::result::Result<T, Box<EvalAltResult>>;

pub(super) fn register(engine: &mut Engine, pass: &Rc<Pass>) {
    let p = pass.clone();
    function(
        "load_balancer",
        &["spec: Map", "Map"],
        "Ensures an Application Load Balancer: #{ name, subnets, security_groups, scheme }.\n\
         `keep: true` marks it (tag deckhand:keep): a run whose script no longer declares it keeps it.\n\
         `name` (1-32 letters, digits, hyphens), `subnets` (subnet handles or ids in at least two AZs, one per\n\
         AZ), `security_groups` (1-5 handles or ids), `scheme` (\"internet-facing\", the default, or \"internal\").\n\
         Subnets and security groups converge in place; the scheme cannot change.\n\
         Returns #{ kind, arn, name, dns_name, canonical_hosted_zone_id, scheme, vpc_id, subnets, security_groups }.\n\
         Example: `load_balancer(#{ name: \"myapp\", subnets: [a, b], security_groups: [alb_sg] })`",
    )
    .register_into_engine(engine, move |spec: Map| -> Rhai<Map> {
        let (keep, spec) = keep_of("load_balancer", spec)?;
        let spec = load_balancer_spec(spec)?;
        let spec = elbv2::resolve_subnets(&p, spec)?;
        Ok(load_balancer_handle(&converge_kept::<LoadBalancer>(&p, &spec, keep)?))
    });

    let p = pass.clone();
    function(
        "target_group",
        &["vpc: Map", "spec: Map", "Map"],
        "Ensures a target group: #{ name, port, protocol, target_type, health_check, deregistration_delay }.\n\
         `keep: true` marks it (tag deckhand:keep): a run whose script no longer declares it keeps it.\n\
         `port` (1-65535), `protocol` (\"HTTP\", the default, or \"HTTPS\"), `target_type` (\"ip\", the default,\n\
         what Fargate needs, or \"instance\"), `health_check` #{ path, interval (5-300), timeout (2-120, below\n\
         the interval), healthy (2-10), unhealthy (2-10), matcher (\"200\", \"200-299\", \"200,302\") } with AWS's\n\
         defaults, `deregistration_delay` (0-3600 seconds, default 300). Health check and delay converge in\n\
         place; port, protocol, VPC and target type cannot change.\n\
         What they cost a rollout (the plan line says it): a new target is healthy after `healthy` checks\n\
         `interval` apart (AWS's defaults: 5 x 30 s = 150 s; a web service: `interval: 10, healthy: 2`, 20 s),\n\
         and an old one drains for the delay before its task stops (300 s by default; 30 s suits a stateless\n\
         web app). Keep a longer delay for long requests, uploads or websockets (their longest connection).\n\
         Returns #{ kind, arn, name, port, protocol, target_type, vpc_id }.\n\
         Example: `target_group(vpc, #{ name: \"myapp\", port: 8080, health_check: #{ path: \"/health\" } })`",
    )
    .register_into_engine(engine, move |vpc: Dynamic, spec: Map| -> Rhai<Map> {
        let (keep, spec) = keep_of("target_group", spec)?;
        let spec = target_group_spec(&vpc, spec)?;
        Ok(target_group_handle(&converge_kept::<TargetGroup>(&p, &spec, keep)?))
    });

    let p = pass.clone();
    function(
        "listener",
        &["load_balancer: Map", "spec: Map", "Map"],
        "Ensures a listener on a load balancer's port: #{ port, protocol, forward, redirect, fixed_response, certificate, ssl_policy }.\n\
         Exactly one default action: `forward` (a target group), `redirect` #{ port, protocol, status (301 or 302) }\n\
         or `fixed_response` #{ status, content_type (\"text/plain\"), body } (e.g. a 404 until rules forward).\n\
         `protocol` is \"HTTP\" or \"HTTPS\" (the default when a `certificate` is given: a certificate() handle or an ACM ARN); HTTPS needs a\n\
         certificate, and takes an optional `ssl_policy` (default ELBSecurityPolicy-TLS13-1-2-2021-06).\n\
         Returns #{ kind, arn, name, port, protocol, load_balancer_arn }.\n\
         Example: `listener(alb, #{ port: 80, redirect: #{ port: 443, protocol: \"HTTPS\", status: 301 } })`",
    )
    .register_into_engine(engine, move |lb: Dynamic, spec: Map| -> Rhai<Map> {
        let spec = listener_spec(&lb, spec)?;
        let mut handle = listener_handle(&converge::<Listener>(&p, &spec)?);
        handle.insert("name".into(), <Listener as crate::converge::Resource>::name(&spec).into());
        Ok(handle)
    });

    let p = pass.clone();
    function(
        "listener_rule",
        &["listener: Map", "spec: Map", "Map"],
        "Ensures a rule on a listener: #{ priority, paths, hosts, forward }. Requests whose path matches one of\n\
         `paths` (patterns such as \"/api/*\") and whose host matches one of `hosts` (such as \"api.example.com\")\n\
         go to the `forward` target group; give paths, hosts or both (at most 5 values in all, an ALB limit).\n\
         `priority` (1-50000, lower first) identifies the rule on its listener: one rule per priority; conditions\n\
         and target group converge in place. Rules of the stack's listeners that the script no longer declares\n\
         are deleted when the run ends (`- listener_rule` in the plan).\n\
         Returns #{ kind, arn, priority, listener_arn }.\n\
         Example: `listener_rule(http, #{ priority: 10, paths: [\"/api/*\"], forward: api_tg })`",
    )
    .register_into_engine(engine, move |listener: Dynamic, spec: Map| -> Rhai<Map> {
        let spec = listener_rule_spec(&listener, spec)?;
        Ok(listener_rule_handle(&converge::<ListenerRule>(&p, &spec)?))
    });
}

fn listener_rule_spec(listener: &Dynamic, map: Map) -> Result<ListenerRuleSpec> {
    let (arn, listener_map) = arn_handle("listener_rule.listener", listener, "listener", "listener/app/")?;
    let name = listener_map.as_ref().and_then(|m| m.get("name").map(ToString::to_string)).unwrap_or_else(|| {
        // arn:...:listener/app/NAME/LB-ID/LISTENER-ID
        let parts: Vec<&str> = Arn::parse(&arn).map(|a| a.segments().collect()).unwrap_or_default();
        parts.get(2).map_or_else(|| arn.clone(), |name| format!("{name}:{}", parts[parts.len() - 1]))
    });
    let f = Fields::new("listener_rule", map, &["priority", "paths", "hosts", "forward"])?;
    let priority = f.int("priority")?.ok_or_else(|| Error::MissingKey {
        key: "priority".into(),
        context: "listener_rule()".into(),
        what: "the rule's priority on its listener, 1-50000 (lower is evaluated first)".into(),
    })?;
    let priority = i32::try_from(priority).unwrap_or(i32::MAX);
    let strings = |key: &str| -> Result<Vec<String>> {
        let Some(value) = f.raw(key) else { return Ok(Vec::new()) };
        let name = f.name(key);
        if value.is_string() {
            return Ok(vec![as_string(&name, value)?]);
        }
        let items = as_array(&name, value)?;
        if items.is_empty() {
            return Err(Error::invalid(&name, "[]", "at least one value (or leave the key out)"));
        }
        items.iter().map(|v| as_string(&name, v)).collect()
    };
    let (paths, hosts) = (strings("paths")?, strings("hosts")?);
    let tg = f.raw("forward").ok_or_else(|| Error::MissingKey {
        key: "forward".into(),
        context: "listener_rule()".into(),
        what: "the target group matching requests go to".into(),
    })?;
    let (tg_arn, tg_map) = arn_handle("listener_rule.forward", tg, "target_group", "targetgroup/")?;
    let tg_name =
        tg_map.as_ref().and_then(|m| m.get("name").map(ToString::to_string)).unwrap_or_else(|| name_in_arn(&tg_arn));
    Ok(ListenerRuleSpec {
        listener: ListenerRef { arn, name },
        priority,
        paths,
        hosts,
        action: ListenerAction::Forward { arn: tg_arn, name: tg_name },
    })
}

fn listener_rule_handle(rule: &ListenerRule) -> Map {
    handle(
        "listener_rule",
        [
            ("arn", rule.arn.clone().into()),
            ("priority", i64::from(rule.priority).into()),
            ("listener_arn", rule.listener_arn.clone().into()),
        ],
    )
}

fn handle_text(value: &Dynamic, field: &str) -> Option<String> {
    handle_field(value, field).map(|v| v.to_string())
}

/// The required array `key` of `load_balancer()`, each item read by `item` with its name
/// (`load_balancer.key[i]`); `what` explains the key when it is missing.
fn required_items<T>(f: &Fields, key: &str, what: &str, item: impl Fn(&str, &Dynamic) -> Result<T>) -> Result<Vec<T>> {
    let value = f.raw(key).ok_or_else(|| Error::MissingKey {
        key: key.into(),
        context: "load_balancer()".into(),
        what: what.into(),
    })?;
    let name = f.name(key);
    as_array(&name, value)?.iter().enumerate().map(|(i, v)| item(&format!("{name}[{i}]"), v)).collect()
}

fn load_balancer_spec(map: Map) -> Result<LoadBalancerSpec> {
    let f = Fields::new("load_balancer", map, &["name", "subnets", "security_groups", "scheme"])?;
    let name = f.req_str("name", "the load balancer's name, 1-32 letters, digits and hyphens")?;
    let scheme = f.str("scheme")?.unwrap_or_else(|| "internet-facing".into());
    let subnets = required_items(&f, "subnets", "subnets in at least two availability zones", |key, subnet| {
        Ok(SubnetRef {
            id: handle_id(key, subnet, "subnet", "subnet-")?,
            az: handle_text(subnet, "az"),
            vpc_id: handle_text(subnet, "vpc_id"),
        })
    })?;
    let security_groups = required_items(
        &f,
        "security_groups",
        "at least one security group that admits the listeners' ports",
        |key, group| {
            Ok(GroupRef { id: handle_id(key, group, "security_group", "sg-")?, vpc_id: handle_text(group, "vpc_id") })
        },
    )?;
    Ok(LoadBalancerSpec { name, scheme, subnets, security_groups })
}

pub(super) fn load_balancer_handle(lb: &LoadBalancer) -> Map {
    handle(
        "load_balancer",
        [
            ("arn", lb.arn.clone().into()),
            ("name", lb.name.clone().into()),
            ("dns_name", lb.dns_name.clone().into()),
            ("canonical_hosted_zone_id", lb.canonical_hosted_zone_id.clone().into()),
            ("scheme", lb.scheme.clone().into()),
            ("vpc_id", lb.vpc_id.clone().into()),
            ("subnets", string_array(&lb.subnets)),
            ("security_groups", string_array(&lb.security_groups)),
        ],
    )
}

/// A nested option map, e.g. `health_check: #{ ... }`.
fn nested_map(f: &Fields, key: &str) -> Result<Option<Map>> {
    f.raw(key)
        .map(|v| {
            v.clone()
                .try_cast::<Map>()
                .ok_or_else(|| Error::invalid(f.name(key), show(v), "a map #{ ... }".to_string()))
        })
        .transpose()
}

fn int32(f: &Fields, key: &str, low: i64, high: i64, what: &str) -> Result<Option<i32>> {
    match f.int(key)? {
        None => Ok(None),
        Some(n) if (low..=high).contains(&n) => Ok(Some(n as i32)),
        Some(n) => Err(Error::invalid(f.name(key), n, format!("{low} to {high}{what}"))),
    }
}

/// A protocol key; `http` and `https` are accepted in any case (the service layer checks the value).
fn protocol_key(f: &Fields, key: &str) -> Result<Option<String>> {
    let normalize = |s: String| {
        if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https") { s.to_uppercase() } else { s }
    };
    Ok(f.str(key)?.map(normalize))
}

/// A port key (1-65535).
fn port_key(f: &Fields, key: &str) -> Result<Option<i32>> {
    f.int(key)?
        .map(|n| {
            check_port(&f.name(key), n)?;
            Ok(n as i32)
        })
        .transpose()
}

fn target_group_spec(vpc: &Dynamic, map: Map) -> Result<TargetGroupSpec> {
    let vpc = vpc_from("target_group.vpc", vpc)?;
    let f = Fields::new(
        "target_group",
        map,
        &["name", "port", "protocol", "target_type", "health_check", "deregistration_delay"],
    )?;
    let name = f.req_str("name", "the target group's name, 1-32 letters, digits and hyphens")?;
    let port = port_key(&f, "port")?.ok_or_else(|| Error::MissingKey {
        key: "port".into(),
        context: "target_group()".into(),
        what: "the port the targets (containers) listen on, e.g. 8080".into(),
    })?;
    let mut health_check = HealthCheck::default();
    if let Some(map) = nested_map(&f, "health_check")? {
        let h = Fields::new(
            "target_group.health_check",
            map,
            &["path", "interval", "timeout", "healthy", "unhealthy", "matcher"],
        )?;
        let defaults = HealthCheck::default();
        health_check = HealthCheck {
            path: h.str("path")?.unwrap_or(defaults.path),
            interval: int32(&h, "interval", 5, 300, " seconds")?.unwrap_or(defaults.interval),
            timeout: int32(&h, "timeout", 2, 120, " seconds")?.unwrap_or(defaults.timeout),
            healthy: int32(&h, "healthy", 2, 10, " consecutive checks")?.unwrap_or(defaults.healthy),
            unhealthy: int32(&h, "unhealthy", 2, 10, " consecutive checks")?.unwrap_or(defaults.unhealthy),
            matcher: match h.raw("matcher") {
                None => defaults.matcher,
                Some(v) if v.is_int() => as_int(&h.name("matcher"), v)?.to_string(),
                Some(v) => as_string(&h.name("matcher"), v)?,
            },
        };
    }
    Ok(TargetGroupSpec {
        name,
        vpc_id: vpc.id,
        port,
        protocol: protocol_key(&f, "protocol")?.unwrap_or_else(|| "HTTP".into()),
        target_type: f.str("target_type")?.unwrap_or_else(|| "ip".into()),
        health_check,
        deregistration_delay: int32(&f, "deregistration_delay", 0, 3600, " seconds")?
            .unwrap_or(DEFAULT_DEREGISTRATION_DELAY),
    })
}

pub(super) fn target_group_handle(tg: &TargetGroup) -> Map {
    handle(
        "target_group",
        [
            ("arn", tg.arn.clone().into()),
            ("name", tg.name.clone().into()),
            ("port", i64::from(tg.port).into()),
            ("protocol", tg.protocol.clone().into()),
            ("target_type", tg.target_type.clone().into()),
            ("vpc_id", tg.vpc_id.clone().into()),
        ],
    )
}

/// Reads a handle of `kind` that is identified by its ARN (or a plain ELB ARN whose resource starts with `resource_prefix`),
/// returning the ARN and the handle's map when it is one.
fn arn_handle(key: &str, value: &Dynamic, kind: &str, resource_prefix: &str) -> Result<(String, Option<Map>)> {
    if let Some(map) = value.read_lock::<Map>() {
        let found = map.get("kind").map(ToString::to_string).unwrap_or_default();
        if found != kind {
            let what = if found.is_empty() { "map".to_string() } else { found };
            return Err(Error::invalid(key, format!("a {what} handle"), format!("a {kind} handle")));
        }
        let arn = map
            .get("arn")
            .map(ToString::to_string)
            .ok_or_else(|| Error::invalid(key, "a handle without arn", format!("a {kind} handle")))?;
        return Ok((arn, Some(map.clone())));
    }
    let allowed = format!("a {kind} handle or its ARN");
    let arn = as_string(key, value).map_err(|_| Error::invalid(key, show(value), allowed.clone()))?;
    if arn::is_of(&arn, "elasticloadbalancing", resource_prefix) {
        Ok((arn, None))
    } else {
        Err(Error::invalid(key, show(value), allowed))
    }
}

/// The name inside an ELB ARN: `...:loadbalancer/app/NAME/ID` or `...:targetgroup/NAME/ID`.
fn name_in_arn(text: &str) -> String {
    let name = Arn::parse(text).and_then(|arn| arn.segments().nth_back(1));
    name.map_or_else(|| text.to_string(), str::to_string)
}

fn listener_spec(lb: &Dynamic, map: Map) -> Result<ListenerSpec> {
    let (lb_arn, lb_map) = arn_handle("listener.load_balancer", lb, "load_balancer", "loadbalancer/app/")?;
    let load_balancer = LoadBalancerRef {
        name: lb_map
            .as_ref()
            .and_then(|m| m.get("name").map(ToString::to_string))
            .unwrap_or_else(|| name_in_arn(&lb_arn)),
        vpc_id: lb_map.as_ref().and_then(|m| m.get("vpc_id").map(ToString::to_string)),
        arn: lb_arn,
    };
    let f = Fields::new(
        "listener",
        map,
        &["port", "protocol", "forward", "redirect", "fixed_response", "certificate", "ssl_policy"],
    )?;
    let port = port_key(&f, "port")?.ok_or_else(|| Error::MissingKey {
        key: "port".into(),
        context: "listener()".into(),
        what: "the port the load balancer listens on, e.g. 80 or 443".into(),
    })?;
    let certificate = f
        .raw("certificate")
        .map(|c| handle_or_string("listener.certificate", c, "certificate", "arn", "a certificate ARN", |_| true))
        .transpose()?;
    let protocol = protocol_key(&f, "protocol")?
        .unwrap_or_else(|| if certificate.is_some() { "HTTPS".into() } else { "HTTP".into() });
    let fixed = nested_map(&f, "fixed_response")?;
    let given = [f.raw("forward").is_some(), f.raw("redirect").is_some(), fixed.is_some()];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(Error::invalid(
            "listener",
            "more than one of forward, redirect, fixed_response",
            "exactly one default action: `forward` (a target group), `redirect` or `fixed_response`",
        ));
    }
    let (action, target_group_vpc) = match (f.raw("forward"), nested_map(&f, "redirect")?, fixed) {
        (Some(tg), _, _) => {
            let (arn, tg_map) = arn_handle("listener.forward", tg, "target_group", "targetgroup/")?;
            let name = tg_map
                .as_ref()
                .and_then(|m| m.get("name").map(ToString::to_string))
                .unwrap_or_else(|| name_in_arn(&arn));
            let vpc = tg_map.as_ref().and_then(|m| m.get("vpc_id").map(ToString::to_string));
            (ListenerAction::Forward { arn, name }, vpc)
        }
        (None, Some(redirect), _) => {
            let r = Fields::new("listener.redirect", redirect, &["port", "protocol", "status"])?;
            let redirect_protocol = protocol_key(&r, "protocol")?.unwrap_or_else(|| "HTTPS".into());
            let default_port = if redirect_protocol == "HTTPS" { 443 } else { 80 };
            let action = ListenerAction::Redirect {
                port: port_key(&r, "port")?.unwrap_or(default_port),
                protocol: redirect_protocol,
                status: r.int("status")?.map(|s| i32::try_from(s).unwrap_or(i32::MAX)).unwrap_or(301),
            };
            (action, None)
        }
        (None, None, Some(fixed)) => {
            let r = Fields::new("listener.fixed_response", fixed, &["status", "content_type", "body"])?;
            let status = r.int("status")?.ok_or_else(|| Error::MissingKey {
                key: "status".into(),
                context: "listener.fixed_response".into(),
                what: "the HTTP status to answer with, e.g. 404".into(),
            })?;
            let action = ListenerAction::FixedResponse {
                status: i32::try_from(status).unwrap_or(i32::MAX),
                content_type: r.str("content_type")?.unwrap_or_else(|| "text/plain".into()),
                body: r.str("body")?.filter(|b| !b.is_empty()),
            };
            (action, None)
        }
        (None, None, None) => {
            return Err(Error::MissingKey {
                key: "forward".into(),
                context: "listener()".into(),
                what: "give `forward: <target group>`, `redirect: #{ port, protocol, status }` or `fixed_response: #{ status, body }`"
                    .into(),
            });
        }
    };
    Ok(ListenerSpec {
        load_balancer,
        port,
        protocol,
        action,
        target_group_vpc,
        certificate,
        ssl_policy: f.str("ssl_policy")?,
    })
}

pub(super) fn listener_handle(listener: &Listener) -> Map {
    handle(
        "listener",
        [
            ("arn", listener.arn.clone().into()),
            ("port", i64::from(listener.port).into()),
            ("protocol", listener.protocol.clone().into()),
            ("load_balancer_arn", listener.load_balancer_arn.clone().into()),
        ],
    )
}

/// How `describe` re-reads load balancers, target groups and listeners (by ARN).
pub(super) const DESCRIBED: &[Described] = &[
    ("load_balancer", "arn", describe_load_balancer),
    ("target_group", "arn", describe_target_group),
    ("listener", "arn", describe_listener),
];

fn describe_load_balancer<'a>(aws: &'a Aws, map: &'a Map) -> LocalBoxFuture<'a, Result<Option<Map>>> {
    async move {
        let (arn, name) = (text(map, "arn").unwrap_or_default(), text(map, "name").unwrap_or_default());
        let (found, states) = tokio::try_join!(
            queries::find_load_balancer(aws, &name),
            queries::load_balancer_states(aws, std::slice::from_ref(&arn)),
        )?;
        Ok(found.filter(|lb| lb.arn == arn).map(|lb| {
            let mut map = load_balancer_handle(&lb);
            map.insert("state".into(), optional(states.get(&lb.arn).cloned()));
            map.insert("type".into(), lb.lb_type.clone().into());
            map
        }))
    }
    .boxed_local()
}

fn describe_target_group<'a>(aws: &'a Aws, map: &'a Map) -> LocalBoxFuture<'a, Result<Option<Map>>> {
    async move {
        let (arn, name) = (text(map, "arn").unwrap_or_default(), text(map, "name").unwrap_or_default());
        let (found, targets) =
            tokio::try_join!(queries::find_target_group(aws, &name), queries::target_health(aws, &arn))?;
        Ok(found.filter(|tg| tg.arn == arn).map(|tg| {
            let mut map = target_group_handle(&tg);
            let h = &tg.health_check;
            let check = [
                ("path", Dynamic::from(h.path.clone())),
                ("interval", i64::from(h.interval).into()),
                ("timeout", i64::from(h.timeout).into()),
                ("healthy", i64::from(h.healthy).into()),
                ("unhealthy", i64::from(h.unhealthy).into()),
                ("matcher", h.matcher.clone().into()),
            ];
            map.insert("health_check".into(), check.into_iter().map(|(k, v)| (k.into(), v)).collect::<Map>().into());
            let targets: Array = targets.iter().map(|t| Dynamic::from(health_map(t))).collect();
            map.insert("targets".into(), targets.into());
            map
        }))
    }
    .boxed_local()
}

fn describe_listener<'a>(aws: &'a Aws, map: &'a Map) -> LocalBoxFuture<'a, Result<Option<Map>>> {
    async move {
        let arn = text(map, "arn").unwrap_or_default();
        let lb = text(map, "load_balancer_arn").unwrap_or_default();
        let found = if lb.is_empty() { vec![] } else { elbv2::listeners(aws, &lb).await? };
        Ok(found.into_iter().find(|l| l.arn == arn).map(|l| {
            let mut map = listener_handle(&l);
            match &l.action {
                ListenerAction::Forward { arn, .. } => {
                    map.insert("action".into(), "forward".into());
                    map.insert("target_group_arn".into(), arn.clone().into());
                }
                other => {
                    map.insert("action".into(), other.to_string().into());
                }
            }
            map.insert("certificate".into(), optional(l.certificate.clone()));
            map.insert("ssl_policy".into(), optional(l.ssl_policy.clone()));
            map
        }))
    }
    .boxed_local()
}
