//! Listeners: types, reads, validation, and how one converges. A listener belongs to the stack
//! its load balancer belongs to.

use std::fmt;

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, Certificate, FixedResponseActionConfig, ForwardActionConfig, ProtocolEnum,
    RedirectActionConfig, RedirectActionStatusCodeEnum, TargetGroupTuple,
};

use futures_util::future::LocalBoxFuture;

use super::{DEFAULT_SSL_POLICY, load_balancer, stack_tags, with_state};
use crate::arn::Arn;
use crate::aws::Pass;
use crate::aws::Snapshot;
use crate::aws::ec2::check_port;
use crate::converge::{Created, Drift, Resource};
use crate::error::{Error, Result, aws_error};
use crate::plan::{FieldDiff, UNKNOWN, is_known};
use crate::runtime::Aws;

/// What a listener does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenerAction {
    /// Forward to one target group.
    Forward {
        /// The target group's ARN, or [`UNKNOWN`].
        arn: String,
        /// Its name, for display.
        name: String,
    },
    /// Redirect to another port and protocol, keeping host, path and query.
    Redirect {
        /// `HTTP` or `HTTPS`.
        protocol: String,
        /// 1-65535.
        port: i32,
        /// 301 or 302.
        status: i32,
    },
    /// Answer every request itself (e.g. a 404 for paths no rule forwards).
    FixedResponse {
        /// An HTTP status code, 2XX, 4XX or 5XX.
        status: i32,
        /// The body's content type, e.g. `text/plain`.
        content_type: String,
        /// The body (at most 1024 characters), if any.
        body: Option<String>,
    },
    /// Forward to two target groups by weight: the production (or test) rule of an ECS blue/green,
    /// canary or linear deployment. ECS moves the weights during each deployment and leaves the
    /// new primary group at 100 (ECS developer guide, "Application Load Balancer resources for
    /// blue/green, linear, and canary deployments"), so two such actions are the same when they
    /// forward to the same two groups, whatever their weights.
    Weighted(Vec<WeightedGroup>),
    /// Anything else found in AWS (other weighted forwards, custom redirects...).
    Other(String),
}

/// One target group of a [`ListenerAction::Weighted`] forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightedGroup {
    /// The target group's ARN, or [`UNKNOWN`].
    pub arn: String,
    /// Its name, for display.
    pub name: String,
    /// Its weight (0-999); the share of requests is its weight over the sum.
    pub weight: i32,
}

impl ListenerAction {
    pub(super) fn same_as(&self, other: &ListenerAction) -> bool {
        match (self, other) {
            (ListenerAction::Forward { arn: a, .. }, ListenerAction::Forward { arn: b, .. }) => is_known(a) && a == b,
            (ListenerAction::Weighted(a), ListenerAction::Weighted(b)) => {
                fn arns(groups: &[WeightedGroup]) -> Vec<&str> {
                    let mut arns: Vec<&str> = groups.iter().map(|g| g.arn.as_str()).collect();
                    arns.sort_unstable();
                    arns
                }
                a.iter().chain(b).all(|g| is_known(&g.arn)) && arns(a) == arns(b)
            }
            (ListenerAction::Other(_), _) | (_, ListenerAction::Other(_)) => false,
            (a, b) => a == b,
        }
    }
}

impl fmt::Display for ListenerAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenerAction::Forward { name, .. } => write!(f, "forward {name}"),
            ListenerAction::Redirect { protocol, port, status } => write!(f, "redirect {protocol}:{port} ({status})"),
            ListenerAction::FixedResponse { status, body: None, .. } => write!(f, "fixed response {status}"),
            ListenerAction::FixedResponse { status, body: Some(body), .. } => {
                write!(f, "fixed response {status} {body:?}")
            }
            ListenerAction::Weighted(groups) => {
                let shares: Vec<String> = groups.iter().map(|g| format!("{} {}", g.name, g.weight)).collect();
                write!(f, "forward weighted {}", shares.join(", "))
            }
            ListenerAction::Other(text) => f.write_str(text),
        }
    }
}

/// A listener as it exists (or will exist) in AWS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Its ARN, or [`UNKNOWN`].
    pub arn: String,
    /// The load balancer it belongs to.
    pub load_balancer_arn: String,
    /// The port it listens on.
    pub port: i32,
    /// `HTTP` or `HTTPS`.
    pub protocol: String,
    /// Its default action.
    pub action: ListenerAction,
    /// The default certificate (HTTPS only).
    pub certificate: Option<String>,
    /// The TLS policy (HTTPS only).
    pub ssl_policy: Option<String>,
    /// The `deckhand:stack` tag of its load balancer (`None` where not known).
    pub stack: Option<String>,
}

/// The load balancer a listener is declared on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadBalancerRef {
    /// Its ARN, or [`UNKNOWN`] when it is only planned.
    pub arn: String,
    /// Its name.
    pub name: String,
    /// Its VPC, when known.
    pub vpc_id: Option<String>,
}

/// What a script asks of a listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    /// The load balancer.
    pub load_balancer: LoadBalancerRef,
    /// 1-65535.
    pub port: i32,
    /// `HTTP` or `HTTPS`.
    pub protocol: String,
    /// The default action.
    pub action: ListenerAction,
    /// The VPC of the forward target group, when known (it must be the load balancer's).
    pub target_group_vpc: Option<String>,
    /// The default certificate ARN (HTTPS only, required there).
    pub certificate: Option<String>,
    /// The TLS policy (HTTPS only; defaults to [`DEFAULT_SSL_POLICY`]).
    pub ssl_policy: Option<String>,
}

/// The listeners of a load balancer (DescribeListeners); forwards name their target group by ARN.
pub async fn listeners(aws: &Aws, load_balancer_arn: &str) -> Result<Vec<Listener>> {
    const OP: &str = "DescribeListeners";
    let mut pages = aws
        .elbv2
        .describe_listeners()
        .load_balancer_arn(load_balancer_arn)
        .page_size(400)
        .into_paginator()
        .items()
        .send();
    let mut found = Vec::new();
    while let Some(listener) = pages.next().await {
        let l = listener.map_err(|e| aws_error(OP, e))?;
        found.push(Listener {
            arn: l.listener_arn().ok_or_else(|| Error::missing(OP, "ListenerArn"))?.to_string(),
            load_balancer_arn: l.load_balancer_arn().unwrap_or(load_balancer_arn).to_string(),
            port: l.port().ok_or_else(|| Error::missing(OP, "Port"))?,
            protocol: l.protocol().map(|p| p.as_str().to_string()).ok_or_else(|| Error::missing(OP, "Protocol"))?,
            action: action_from(l.default_actions()),
            certificate: l.certificates().first().and_then(|c| c.certificate_arn()).map(str::to_string),
            ssl_policy: l.ssl_policy().map(str::to_string),
            stack: None,
        });
    }
    Ok(found)
}

pub(super) fn action_from(actions: &[Action]) -> ListenerAction {
    let [action] = actions else {
        return ListenerAction::Other(format!("{} actions", actions.len()));
    };
    match action.r#type() {
        Some(ActionTypeEnum::Forward) => {
            let tuples = action.forward_config().map(|c| c.target_groups()).unwrap_or_default();
            let arn = action.target_group_arn().or(match tuples {
                [only] => only.target_group_arn(),
                _ => None,
            });
            match (arn, tuples) {
                (Some(arn), _) => ListenerAction::Forward { arn: arn.to_string(), name: arn.to_string() },
                (None, [_, _]) => ListenerAction::Weighted(
                    tuples
                        .iter()
                        .map(|t| WeightedGroup {
                            arn: t.target_group_arn().unwrap_or_default().to_string(),
                            name: t.target_group_arn().unwrap_or_default().to_string(),
                            weight: t.weight().unwrap_or(1),
                        })
                        .collect(),
                ),
                (None, _) => ListenerAction::Other(format!("forward to {} target groups", tuples.len())),
            }
        }
        Some(ActionTypeEnum::Redirect) => {
            let Some(r) = action.redirect_config() else {
                return ListenerAction::Other("redirect".into());
            };
            let status = match r.status_code() {
                Some(RedirectActionStatusCodeEnum::Http301) => 301,
                Some(RedirectActionStatusCodeEnum::Http302) => 302,
                _ => 0,
            };
            let kept = r.host().unwrap_or("#{host}") == "#{host}"
                && r.path().unwrap_or("/#{path}") == "/#{path}"
                && r.query().unwrap_or("#{query}") == "#{query}";
            match (kept, r.protocol(), r.port().and_then(|p| p.parse().ok())) {
                (true, Some(protocol), Some(port)) if protocol != "#{protocol}" => {
                    ListenerAction::Redirect { protocol: protocol.to_string(), port, status }
                }
                _ => ListenerAction::Other(format!(
                    "redirect to {}://{}:{}{}?{} ({status})",
                    r.protocol().unwrap_or("#{protocol}"),
                    r.host().unwrap_or("#{host}"),
                    r.port().unwrap_or("#{port}"),
                    r.path().unwrap_or("/#{path}"),
                    r.query().unwrap_or("#{query}")
                )),
            }
        }
        Some(ActionTypeEnum::FixedResponse) => match action.fixed_response_config() {
            Some(r) => ListenerAction::FixedResponse {
                status: r.status_code().and_then(|s| s.parse().ok()).unwrap_or(0),
                content_type: r.content_type().unwrap_or_default().to_string(),
                body: r.message_body().filter(|b| !b.is_empty()).map(str::to_string),
            },
            None => ListenerAction::Other("fixed-response".into()),
        },
        Some(other) => ListenerAction::Other(other.as_str().to_string()),
        None => ListenerAction::Other("unknown action".into()),
    }
}

/// Checks a listener spec the way AWS would, before any call.
fn validate_listener(pass: &Pass, spec: &ListenerSpec) -> Result<()> {
    check_port("listener.port", spec.port.into())?;
    if spec.protocol != "HTTP" && spec.protocol != "HTTPS" {
        return Err(Error::invalid(
            "listener.protocol",
            format!("{:?}", spec.protocol),
            "\"HTTP\" or \"HTTPS\" (what an Application Load Balancer listens for)",
        ));
    }
    let https = spec.protocol == "HTTPS";
    match (&spec.certificate, https) {
        (None, true) => {
            return Err(Error::MissingKey {
                key: "certificate".into(),
                context: "listener()".into(),
                what: "an HTTPS listener needs the ARN of an ACM certificate for its domain".into(),
            });
        }
        (Some(cert), false) => {
            return Err(Error::invalid(
                "listener.certificate",
                format!("{cert:?}"),
                "no certificate on an HTTP listener; set protocol: \"HTTPS\" to use it",
            ));
        }
        (Some(cert), true) => validate_certificate(pass, cert)?,
        (None, false) => {}
    }
    if let Some(policy) = &spec.ssl_policy {
        if !https {
            return Err(Error::invalid(
                "listener.ssl_policy",
                format!("{policy:?}"),
                "no TLS policy on an HTTP listener; it applies to HTTPS only",
            ));
        }
        if !policy.starts_with("ELBSecurityPolicy-") {
            return Err(Error::invalid(
                "listener.ssl_policy",
                format!("{policy:?}"),
                format!("a predefined ELB security policy, such as \"{DEFAULT_SSL_POLICY}\""),
            ));
        }
    }
    if let ListenerAction::Redirect { protocol, port, status } = &spec.action {
        if protocol != "HTTP" && protocol != "HTTPS" {
            return Err(Error::invalid("listener.redirect.protocol", format!("{protocol:?}"), "\"HTTP\" or \"HTTPS\""));
        }
        check_port("listener.redirect.port", (*port).into())?;
        if *status != 301 && *status != 302 {
            return Err(Error::invalid("listener.redirect.status", status, "301 (moved permanently) or 302 (found)"));
        }
        if *port == spec.port && *protocol == spec.protocol {
            return Err(Error::invalid(
                "listener.redirect",
                format!("{protocol}:{port}"),
                "another port or protocol than the listener's own (this would redirect to itself forever)",
            ));
        }
    }
    if let ListenerAction::FixedResponse { status, content_type, body } = &spec.action {
        validate_fixed_response(*status, content_type, body.as_deref())?;
    }
    if let (Some(lb_vpc), Some(tg_vpc)) = (&spec.load_balancer.vpc_id, &spec.target_group_vpc)
        && is_known(lb_vpc)
        && is_known(tg_vpc)
        && lb_vpc != tg_vpc
    {
        return Err(Error::invalid(
            "listener.forward",
            format!("{} (a target group in {tg_vpc})", spec.action),
            format!("a target group in the load balancer's VPC {lb_vpc}"),
        ));
    }
    Ok(())
}

/// The content types ELB allows in a fixed response (FixedResponseActionConfig, ELB API reference).
const FIXED_RESPONSE_TYPES: &[&str] =
    &["text/plain", "text/css", "text/html", "application/javascript", "application/json"];

/// A fixed response the way ELB checks one: a 2XX, 4XX or 5XX status, one of its content types, a
/// body of at most 1024 characters (FixedResponseActionConfig, ELB API reference).
fn validate_fixed_response(status: i32, content_type: &str, body: Option<&str>) -> Result<()> {
    if !matches!(status, 200..=299 | 400..=599) {
        return Err(Error::invalid("listener.fixed_response.status", status, "an HTTP status code 2XX, 4XX or 5XX"));
    }
    if !FIXED_RESPONSE_TYPES.contains(&content_type) {
        return Err(Error::invalid(
            "listener.fixed_response.content_type",
            format!("{content_type:?}"),
            FIXED_RESPONSE_TYPES.join(", "),
        ));
    }
    if let Some(body) = body
        && body.chars().count() > 1024
    {
        return Err(Error::invalid(
            "listener.fixed_response.body",
            format!("{} characters", body.chars().count()),
            "at most 1024 characters",
        ));
    }
    Ok(())
}

/// Waits for the listener's certificate if this run requested it and ACM has not issued it yet:
/// CreateListener and ModifyListener refuse a certificate that is not ISSUED.
fn certificate_ready(pass: &Pass, spec: &ListenerSpec) -> Result<()> {
    match &spec.certificate {
        Some(arn) => crate::aws::acm::ready(pass, arn, &format!("listener {}", Listener::name(spec))),
        None => Ok(()),
    }
}

/// Whether the listener's certificate may still be waited for: one this run knows is not ISSUED
/// yet (requested or found pending by this run, its wait until ISSUED, [`certificate_ready`],
/// still to come), or any while this pass has not read the stack's certificates (it cannot tell).
/// The snapshot holds the stack's certificates as the run last saw them (the deferred wait
/// remembers the issued one); a certificate the script gives by ARN is not among them and is
/// never waited for.
fn certificate_pending(pass: &Pass, spec: &ListenerSpec) -> bool {
    let Some(arn) = &spec.certificate else { return false };
    let Ok(snapshot) = pass.snapshot() else { return true };
    match &snapshot.borrow().acm.certificates {
        Some(certificates) => certificates.iter().any(|c| c.arn == *arn && c.status != "ISSUED"),
        None => true,
    }
}

fn validate_certificate(pass: &Pass, arn: &str) -> Result<()> {
    // A certificate this run requests is known after apply.
    if !is_known(arn) {
        return Ok(());
    }
    let parsed = Arn::of_type(arn, "acm", "certificate").or_else(|| Arn::of_type(arn, "iam", "server-certificate"));
    let Some(parsed) = parsed.filter(|a| a.resource.contains('/')) else {
        return Err(Error::invalid(
            "listener.certificate",
            format!("{arn:?}"),
            "the ARN of an ACM certificate (arn:aws:acm:<region>:<account>:certificate/<id>) or an IAM server certificate",
        ));
    };
    if let Some(region) = pass.region()
        && parsed.service == "acm"
        && parsed.region != region
    {
        return Err(Error::invalid(
            "listener.certificate",
            format!("{arn:?}"),
            format!("an ACM certificate of region {region} (a load balancer uses certificates of its own region)"),
        ));
    }
    Ok(())
}

/// The TLS policy the spec asks for: its own, or the default on HTTPS.
fn ssl_policy(spec: &ListenerSpec) -> Option<String> {
    (spec.protocol == "HTTPS").then(|| spec.ssl_policy.clone().unwrap_or_else(|| DEFAULT_SSL_POLICY.to_string()))
}

fn sdk_action(action: &ListenerAction) -> Action {
    match action {
        ListenerAction::Forward { arn, .. } => {
            Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(arn).build()
        }
        ListenerAction::Weighted(groups) => weighted_action(groups),
        ListenerAction::Redirect { protocol, port, status } => Action::builder()
            .r#type(ActionTypeEnum::Redirect)
            .redirect_config(
                RedirectActionConfig::builder()
                    .protocol(protocol)
                    .port(port.to_string())
                    .host("#{host}")
                    .path("/#{path}")
                    .query("#{query}")
                    .status_code(if *status == 301 {
                        RedirectActionStatusCodeEnum::Http301
                    } else {
                        RedirectActionStatusCodeEnum::Http302
                    })
                    .build(),
            )
            .build(),
        ListenerAction::FixedResponse { status, content_type, body } => Action::builder()
            .r#type(ActionTypeEnum::FixedResponse)
            .fixed_response_config(
                FixedResponseActionConfig::builder()
                    .status_code(status.to_string())
                    .content_type(content_type)
                    .set_message_body(body.clone())
                    .build(),
            )
            .build(),
        ListenerAction::Other(_) => Action::builder().build(),
    }
}

/// A forward to several target groups by weight (ForwardConfig's target group tuples).
pub(super) fn weighted_action(groups: &[WeightedGroup]) -> Action {
    let tuples =
        groups.iter().map(|g| TargetGroupTuple::builder().target_group_arn(&g.arn).weight(g.weight).build()).collect();
    Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .forward_config(ForwardActionConfig::builder().set_target_groups(Some(tuples)).build())
        .build()
}

/// Makes sure the listeners of the load balancer `spec` names are in the snapshot: a load balancer
/// of this stack found outside the snapshot (by ARN, or by name while the tagging index lagged)
/// has its listeners read once. Refuses a load balancer of another stack.
fn read_listeners(pass: &Pass, spec: &ListenerSpec, stack: &str) -> Result<()> {
    let lb = &spec.load_balancer;
    let (ours, read) =
        with_state(pass, |s| (s.load_balancers.iter().any(|l| l.arn == lb.arn), s.listeners_read.contains(&lb.arn)))?;
    if read {
        return Ok(());
    }
    if !ours {
        let Some(found) = pass.read(async |aws| load_balancer::by_arn(aws, &lb.arn).await) else { return Ok(()) };
        match found? {
            Some(found) if found.stack.as_deref() == Some(stack) => {
                pass.remember_read(|s| s.elbv2.load_balancers.push(found.clone()))?;
            }
            _ => {
                return Err(Error::conflict(
                    format!("load balancer {} ({}) is not part of stack {stack}", lb.name, lb.arn),
                    Some(
                        "deckhand manages listeners only on the load balancers of its stack: pass a load_balancer() handle",
                    ),
                ));
            }
        }
    }
    let Some(found) = pass.read(async |aws| listeners(aws, &lb.arn).await) else { return Ok(()) };
    let found: Vec<Listener> = found?.into_iter().map(|l| Listener { stack: Some(stack.to_string()), ..l }).collect();
    pass.remember_read(|s| {
        s.elbv2.add_listeners(found.clone());
        s.elbv2.listeners_read.insert(lb.arn.clone());
    })
}

/// A listener converges by port on its load balancer: created when missing, its protocol, default
/// action, certificate and TLS policy modified in place.
/// The one name of a listener, as the plan, the inventory and status show it: `<load balancer>:<port>`.
pub fn listener_name(load_balancer: &str, port: i32) -> String {
    format!("{load_balancer}:{port}")
}

impl Resource for Listener {
    type Reads = Snapshot;
    type Spec = ListenerSpec;
    type Update = ();
    const KIND: &'static str = "listener";

    fn name(spec: &ListenerSpec) -> String {
        listener_name(&spec.load_balancer.name, spec.port)
    }

    fn validate(pass: &Pass, spec: &ListenerSpec) -> Result<()> {
        validate_listener(pass, spec)
    }

    fn find(pass: &Pass, spec: &ListenerSpec) -> Result<Option<Listener>> {
        let lb = &spec.load_balancer;
        if !is_known(&lb.arn) {
            return Ok(None);
        }
        read_listeners(pass, spec, &pass.stack()?)?;
        with_state(pass, |s| s.listeners.iter().find(|l| l.load_balancer_arn == lb.arn && l.port == spec.port).cloned())
    }

    fn stack_of(live: &Listener) -> Option<&str> {
        live.stack.as_deref()
    }

    fn planned(spec: &ListenerSpec, stack: &str) -> Listener {
        Listener {
            arn: UNKNOWN.into(),
            load_balancer_arn: spec.load_balancer.arn.clone(),
            port: spec.port,
            protocol: spec.protocol.clone(),
            action: spec.action.clone(),
            certificate: spec.certificate.clone(),
            ssl_policy: ssl_policy(spec),
            stack: Some(stack.to_string()),
        }
    }

    fn create(pass: &Pass, spec: &ListenerSpec, stack: &str) -> Result<Created<Listener>> {
        certificate_ready(pass, spec)?;
        pass.block(create(pass, spec, stack))
    }

    /// Not while its certificate is still to be issued: the apply pass creates it at its statement,
    /// once it has waited for the certificate there.
    fn create_beside(
        pass: &Pass,
        spec: ListenerSpec,
        stack: String,
    ) -> Option<LocalBoxFuture<'_, Result<Created<Listener>>>> {
        if certificate_pending(pass, &spec) {
            return None;
        }
        Some(Box::pin(async move { create(pass, &spec, &stack).await }))
    }

    fn diff(live: &Listener, spec: &ListenerSpec) -> Drift<()> {
        let mut diffs = Vec::new();
        if live.protocol != spec.protocol {
            diffs.push(FieldDiff::changed("protocol", &live.protocol, &spec.protocol));
        }
        if !live.action.same_as(&spec.action) {
            diffs.push(FieldDiff::changed("default_action", &live.action, &spec.action));
        }
        if spec.protocol == "HTTPS" {
            let show = |v: Option<&str>| v.unwrap_or("(none)").to_string();
            if live.certificate.as_deref() != spec.certificate.as_deref() {
                diffs.push(FieldDiff::changed(
                    "certificate",
                    show(live.certificate.as_deref()),
                    show(spec.certificate.as_deref()),
                ));
            }
            let policy = ssl_policy(spec);
            if live.ssl_policy != policy {
                diffs.push(FieldDiff::changed("ssl_policy", show(live.ssl_policy.as_deref()), show(policy.as_deref())));
            }
        }
        Drift::of(diffs)
    }

    fn update(pass: &Pass, live: &Listener, spec: &ListenerSpec, _: &()) -> Result<Listener> {
        let arn = live.arn.as_str();
        let policy = ssl_policy(spec);
        certificate_ready(pass, spec)?;
        pass.apply(async |aws| {
            let mut modify = aws
                .elbv2
                .modify_listener()
                .listener_arn(arn)
                .protocol(ProtocolEnum::from(spec.protocol.as_str()))
                .default_actions(sdk_action(&spec.action));
            if let (Some(cert), Some(policy)) = (&spec.certificate, &policy) {
                modify = modify.certificates(Certificate::builder().certificate_arn(cert).build()).ssl_policy(policy);
            }
            modify.send().await.map_err(|e| aws_error("ModifyListener", e))
        })?;
        Ok(Self::updated(live, spec))
    }

    fn updated(live: &Listener, spec: &ListenerSpec) -> Listener {
        Listener {
            protocol: spec.protocol.clone(),
            action: spec.action.clone(),
            certificate: spec.certificate.clone(),
            ssl_policy: ssl_policy(spec),
            ..live.clone()
        }
    }

    fn remember(snapshot: &mut Snapshot, live: &Listener) {
        let state = &mut snapshot.elbv2;
        state.listeners.retain(|l| !(l.load_balancer_arn == live.load_balancer_arn && l.port == live.port));
        state.listeners.push(live.clone());
    }

    fn summary(live: &Listener) -> String {
        format!("{}, {}", live.protocol, live.action)
    }
}

/// Creates the listener tagged with the stack (its certificate issued: see [`certificate_ready`]).
async fn create(pass: &Pass, spec: &ListenerSpec, stack: &str) -> Result<Created<Listener>> {
    let name = Listener::name(spec);
    if !is_known(&spec.load_balancer.arn) {
        return Err(Error::Internal(format!("listener {name} on a load balancer that was not created")));
    }
    let wanted = Listener::planned(spec, stack);
    let out = pass
        .send(async |aws| {
            let mut create = aws
                .elbv2
                .create_listener()
                .load_balancer_arn(&spec.load_balancer.arn)
                .port(spec.port)
                .protocol(ProtocolEnum::from(spec.protocol.as_str()))
                .default_actions(sdk_action(&spec.action))
                .set_tags(Some(stack_tags(stack, &name)));
            if let (Some(cert), Some(policy)) = (&spec.certificate, &wanted.ssl_policy) {
                create = create.certificates(Certificate::builder().certificate_arn(cert).build()).ssl_policy(policy);
            }
            create.send().await.map_err(|e| aws_error("CreateListener", e))
        })
        .await?;
    let arn = out
        .listeners()
        .first()
        .and_then(|l| l.listener_arn())
        .ok_or_else(|| Error::missing("CreateListener", "ListenerArn"))?
        .to_string();
    // A new listener has no rules but its default one: none to read for the rules declared on it
    // (remembered in the run's reads, so a later gathering pass knows it too).
    pass.remember_read(|s| {
        s.elbv2.rules_read.insert(arn.clone());
    })?;
    Ok(Created::New(Listener { arn, ..wanted }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_compare_by_target_group_arn_and_redirect_target() {
        let forward = |arn: &str| ListenerAction::Forward { arn: arn.into(), name: "web".into() };
        assert!(forward("arn:1").same_as(&forward("arn:1")));
        assert!(!forward("arn:1").same_as(&forward("arn:2")));
        assert!(!forward(UNKNOWN).same_as(&forward(UNKNOWN)));
        let redirect = ListenerAction::Redirect { protocol: "HTTPS".into(), port: 443, status: 301 };
        assert!(redirect.same_as(&redirect.clone()));
        assert_eq!(redirect.to_string(), "redirect HTTPS:443 (301)");
        assert_eq!(
            FieldDiff::changed("default_action", forward("arn:1"), &redirect).to_string(),
            "default_action: forward web -> redirect HTTPS:443 (301)"
        );
    }

    #[test]
    fn fixed_responses_compare_by_status_type_and_body_and_are_checked_as_elb_does() {
        let fixed = |status: i32, body: Option<&str>| ListenerAction::FixedResponse {
            status,
            content_type: "text/plain".into(),
            body: body.map(str::to_string),
        };
        assert!(fixed(404, Some("none")).same_as(&fixed(404, Some("none"))));
        assert!(!fixed(404, Some("none")).same_as(&fixed(404, None)));
        assert!(!fixed(404, None).same_as(&fixed(503, None)));
        assert_eq!(fixed(404, None).to_string(), "fixed response 404");
        assert_eq!(fixed(404, Some("gone")).to_string(), "fixed response 404 \"gone\"");
        assert!(validate_fixed_response(404, "text/plain", None).is_ok());
        assert!(validate_fixed_response(302, "text/plain", None).is_err());
        assert!(validate_fixed_response(200, "text/xml", None).is_err());
        assert!(validate_fixed_response(200, "text/html", Some(&"x".repeat(1025))).is_err());
    }
}
