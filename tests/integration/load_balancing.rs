//! Load balancers, target groups and listeners: converge, plan, drift, validation, HTTPS, conflicts.

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, Listener, LoadBalancerSchemeEnum, ProtocolEnum, Tag,
};

use crate::support::Deck;

/// The guide's load balancing, HTTP only: an ALB in two AZs forwarding port 80 to the app.
const SHOP: &str = r#"
stack("shop");
let vpc = default_vpc();
let alb_sg = security_group(vpc, #{ name: "shop-alb", ingress: [ #{ port: 80, cidr: "0.0.0.0/0" } ] });
let alb = load_balancer(#{ name: "shop", security_groups: [alb_sg],
    subnets: [default_subnet(vpc, "us-west-2a"), default_subnet(vpc, "us-west-2b")] });
let tg = target_group(vpc, #{ name: "shop", port: 8080, health_check: #{ path: "/health", matcher: "200-299" } });
listener(alb, #{ port: 80, forward: tg });
print(`alb: ${alb.dns_name} ${alb.arn}`);
print(`tg: ${tg.kind} ${tg.port} ${tg.protocol} ${tg.target_type}`);
"#;

fn load_balancer(deck: &Deck, name: &str) -> aws_sdk_elasticloadbalancingv2::types::LoadBalancer {
    let aws = deck.aws();
    let out = aws.block_on(aws.elbv2.describe_load_balancers().names(name).send()).unwrap();
    out.load_balancers()[0].clone()
}

fn target_group(deck: &Deck, name: &str) -> aws_sdk_elasticloadbalancingv2::types::TargetGroup {
    let aws = deck.aws();
    let out = aws.block_on(aws.elbv2.describe_target_groups().names(name).send()).unwrap();
    out.target_groups()[0].clone()
}

fn listeners(deck: &Deck, lb_name: &str) -> Vec<Listener> {
    let arn = load_balancer(deck, lb_name).load_balancer_arn().unwrap().to_string();
    let aws = deck.aws();
    let mut found =
        aws.block_on(aws.elbv2.describe_listeners().load_balancer_arn(arn).send()).unwrap().listeners().to_vec();
    found.sort_by_key(|l| l.port());
    found
}

fn tags(deck: &Deck, arn: &str) -> Vec<(String, String)> {
    let aws = deck.aws();
    let out = aws.block_on(aws.elbv2.describe_tags().resource_arns(arn).send()).unwrap();
    let mut tags: Vec<(String, String)> = out.tag_descriptions()[0]
        .tags()
        .iter()
        .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string()))
        .collect();
    tags.sort();
    tags
}

fn only_action(listener: &Listener) -> &Action {
    assert_eq!(listener.default_actions().len(), 1, "{listener:?}");
    &listener.default_actions()[0]
}

#[test]
fn apply_creates_then_second_run_changes_nothing() {
    let deck = Deck::new();
    deck.run(SHOP, &[])
        .success()
        .expect_changes(&[
            "+ security_group shop-alb (sg-",
            "+ load_balancer shop (shop-1.us-west-2.elb.amazonaws.com, internet-facing)",
            "+ target_group shop (HTTP:8080, ip; healthy in 30 s: checks every 30 s, 5 to recover; drains 300 s)",
            "+ listener shop:80 (HTTP, forward shop)",
        ])
        .stdout_has("tg: target_group 8080 HTTP ip")
        .stdout_has("4 created, 0 updated, 0 unchanged");

    let (second, requests) = deck.recorded(|| deck.run(SHOP, &[]));
    second
        .success()
        .expect_changes(&[
            "= security_group shop-alb",
            "= load_balancer shop",
            "= target_group shop",
            "= listener shop:80 (HTTP, forward shop)",
        ])
        .stdout_has("0 created, 0 updated, 4 unchanged");
    requests.assert_read_only();
    // The ELBv2 part of the snapshot: the stack's load balancers and target groups by tag
    // (GetResources), described by ARN, then their listeners (and the listeners' rules) and target
    // group attributes -- one request each here, and no DescribeTags.
    let actions = |service: &str| {
        let mut actions = requests.actions_of(service);
        actions.sort();
        actions
    };
    assert_eq!(
        actions("elasticloadbalancing"),
        [
            "DescribeListeners",
            "DescribeLoadBalancers",
            "DescribeRules",
            "DescribeTargetGroupAttributes",
            "DescribeTargetGroups"
        ]
    );
    assert_eq!(actions("tagging"), ["GetResources"]);

    // What AWS holds.
    let lb = load_balancer(&deck, "shop");
    assert_eq!(lb.scheme(), Some(&LoadBalancerSchemeEnum::InternetFacing));
    let mut zones: Vec<_> = lb.availability_zones().iter().map(|z| z.zone_name().unwrap().to_string()).collect();
    zones.sort();
    assert_eq!(zones, ["us-west-2a", "us-west-2b"]);
    assert_eq!(lb.security_groups().len(), 1);
    let stack_tags =
        |name: &str| vec![("Name".to_string(), name.to_string()), ("deckhand:stack".into(), "shop".into())];
    assert_eq!(tags(&deck, lb.load_balancer_arn().unwrap()), stack_tags("shop"));
    let tg = target_group(&deck, "shop");
    assert_eq!((tg.port(), tg.health_check_path()), (Some(8080), Some("/health")));
    assert_eq!(tg.target_type().map(|t| t.as_str()), Some("ip"));
    assert_eq!(tg.matcher().and_then(|m| m.http_code()), Some("200-299"));
    assert_eq!(tags(&deck, tg.target_group_arn().unwrap()), stack_tags("shop"));
    let found = listeners(&deck, "shop");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].port(), Some(80));
    assert_eq!(only_action(&found[0]).target_group_arn(), tg.target_group_arn());
    assert_eq!(tags(&deck, found[0].listener_arn().unwrap()), stack_tags("shop:80"));
}

#[test]
fn plan_on_an_empty_account_lists_creates_and_sends_nothing_mutating() {
    let deck = Deck::new();
    let (plan, requests) = deck.recorded(|| deck.plan(SHOP, &[]));
    plan.success()
        .expect_changes(&[
            "+ security_group shop-alb ((known after apply))",
            "+ load_balancer shop ((known after apply), internet-facing)",
            "+ target_group shop (HTTP:8080, ip; healthy in 30 s: checks every 30 s, 5 to recover; drains 300 s)",
            "+ listener shop:80 (HTTP, forward shop)",
        ])
        .stdout_has("alb: (known after apply) (known after apply)")
        .stdout_has("Plan: 4 to create, 0 to update, 0 unchanged");
    requests.assert_read_only();
    let aws = deck.aws();
    let out = aws.block_on(aws.elbv2.describe_load_balancers().send()).unwrap();
    assert!(out.load_balancers().is_empty());
}

#[test]
fn check_declares_everything_without_any_request() {
    let deck = Deck::new();
    deck.write("deploy.rhai", SHOP);
    let (outcome, requests) = deck.recorded(|| deck.deckhand(&["check", "deploy.rhai"]));
    outcome.success().stdout_has("Check passed: 4 resources declared");
    requests.assert_none();
}

#[test]
fn a_hand_changed_health_check_is_restored() {
    let deck = Deck::new();
    deck.run(SHOP, &[]).success();
    let arn = target_group(&deck, "shop").target_group_arn().unwrap().to_string();
    let aws = deck.aws();
    aws.block_on(aws.elbv2.modify_target_group().target_group_arn(&arn).health_check_path("/by-hand").send()).unwrap();

    let (plan, requests) = deck.recorded(|| deck.plan(SHOP, &[]));
    plan.success()
        .stdout_has("~ target_group shop (HTTP:8080, ip; healthy in 30 s: checks every 30 s, 5 to recover; drains 300 s)\n    health_check.path: /by-hand -> /health\n")
        .stdout_has("Plan: 0 to create, 1 to update, 3 unchanged");
    requests.assert_read_only();
    assert_eq!(target_group(&deck, "shop").health_check_path(), Some("/by-hand"));

    let (run, requests) = deck.recorded(|| deck.run(SHOP, &[]));
    run.success()
        .expect_changes(&[
            "= security_group shop-alb",
            "= load_balancer shop",
            "~ target_group shop",
            "= listener shop:80",
        ])
        .stdout_has("0 created, 1 updated, 3 unchanged");
    assert_eq!(requests.mutating(), ["elasticloadbalancing ModifyTargetGroup"]);
    assert_eq!(target_group(&deck, "shop").health_check_path(), Some("/health"));

    // Thresholds and the deregistration delay converge the same way.
    let tuned = SHOP.replace(
        "health_check: #{ path: \"/health\", matcher: \"200-299\" }",
        "health_check: #{ path: \"/health\", matcher: \"200-299\", interval: 10, timeout: 3, healthy: 3 }, deregistration_delay: 30",
    );
    deck.run(&tuned, &[])
        .success()
        .stdout_has("health_check.interval: 30 -> 10")
        .stdout_has("health_check.timeout: 5 -> 3")
        .stdout_has("health_check.healthy: 5 -> 3")
        .stdout_has("deregistration_delay: 300 -> 30");
    let tg = target_group(&deck, "shop");
    assert_eq!(
        (tg.health_check_interval_seconds(), tg.health_check_timeout_seconds(), tg.healthy_threshold_count()),
        (Some(10), Some(3), Some(3))
    );
    let attributes = aws.block_on(aws.elbv2.describe_target_group_attributes().target_group_arn(&arn).send()).unwrap();
    let delay = attributes.attributes().iter().find(|a| a.key() == Some("deregistration_delay.timeout_seconds"));
    assert_eq!(delay.and_then(|a| a.value()), Some("30"));
    let (again, requests) = deck.recorded(|| deck.run(&tuned, &[]));
    again.success().stdout_has("0 created, 0 updated, 4 unchanged");
    requests.assert_read_only();
}

#[test]
fn a_listener_switched_from_forward_to_redirect_or_a_fixed_response_is_modified_in_place() {
    let deck = Deck::new();
    deck.run(SHOP, &[]).success();
    let before = listeners(&deck, "shop")[0].listener_arn().unwrap().to_string();
    let redirect = SHOP.replace(
        "listener(alb, #{ port: 80, forward: tg });",
        "listener(alb, #{ port: 80, redirect: #{ port: 443, protocol: \"HTTPS\", status: 301 } });",
    );

    let (plan, requests) = deck.recorded(|| deck.plan(&redirect, &[]));
    // The plan line shows the listener as it will be (as the apply pass does), then what changes.
    plan.success().stdout_has(
        "~ listener shop:80 (HTTP, redirect HTTPS:443 (301))\n    default_action: forward shop -> redirect HTTPS:443 (301)\n",
    );
    requests.assert_read_only();

    let (run, requests) = deck.recorded(|| deck.run(&redirect, &[]));
    run.success()
        .expect_changes(&[
            "= security_group shop-alb",
            "= load_balancer shop",
            "= target_group shop",
            "~ listener shop:80",
        ])
        .stdout_has("default_action: forward shop -> redirect HTTPS:443 (301)");
    assert_eq!(requests.mutating(), ["elasticloadbalancing ModifyListener"]);
    let after = listeners(&deck, "shop");
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].listener_arn(), Some(before.as_str()), "modified in place, not replaced");
    let action = only_action(&after[0]);
    assert_eq!(action.r#type(), Some(&ActionTypeEnum::Redirect));
    let config = action.redirect_config().unwrap();
    assert_eq!((config.protocol(), config.port()), (Some("HTTPS"), Some("443")));
    assert_eq!(config.status_code().map(|s| s.as_str()), Some("HTTP_301"));

    let (again, requests) = deck.recorded(|| deck.run(&redirect, &[]));
    again.success().stdout_has("= listener shop:80 (HTTP, redirect HTTPS:443 (301))");
    requests.assert_read_only();

    // A fixed response (an environment's listener answers 404 until rules forward) is one more
    // default action, modified in place too; its body is part of it.
    let fixed = |body: &str| {
        SHOP.replace(
            "listener(alb, #{ port: 80, forward: tg });",
            &format!("listener(alb, #{{ port: 80, fixed_response: #{{ status: 404, body: \"{body}\" }} }});"),
        )
    };
    let (run, requests) = deck.recorded(|| deck.run(&fixed("nothing here"), &[]));
    run.success().stdout_has("default_action: redirect HTTPS:443 (301) -> fixed response 404 \"nothing here\"");
    assert_eq!(requests.mutating(), ["elasticloadbalancing ModifyListener"]);
    let after = listeners(&deck, "shop");
    assert_eq!(after[0].listener_arn(), Some(before.as_str()));
    let config = only_action(&after[0]).fixed_response_config().expect("a fixed response");
    assert_eq!(
        (config.status_code(), config.content_type(), config.message_body()),
        (Some("404"), Some("text/plain"), Some("nothing here"))
    );
    let (again, requests) = deck.recorded(|| deck.run(&fixed("nothing here"), &[]));
    again.success().stdout_has("= listener shop:80 (HTTP, fixed response 404 \"nothing here\")");
    requests.assert_read_only();
    let (other, requests) = deck.recorded(|| deck.run(&fixed("gone"), &[]));
    other.success().stdout_has("default_action: fixed response 404 \"nothing here\" -> fixed response 404 \"gone\"");
    assert_eq!(requests.mutating(), ["elasticloadbalancing ModifyListener"]);
}

#[test]
fn subnets_and_security_groups_converge_in_place() {
    let deck = Deck::new();
    deck.run(SHOP, &[]).success();
    let arn = load_balancer(&deck, "shop").load_balancer_arn().unwrap().to_string();
    let moved = SHOP
        .replace("default_subnet(vpc, \"us-west-2b\")", "default_subnet(vpc, \"us-west-2c\")")
        .replace("security_groups: [alb_sg]", "security_groups: [alb_sg, extra_sg]")
        .replace(
            "let alb = load_balancer",
            "let extra_sg = security_group(vpc, #{ name: \"shop-extra\" });\nlet alb = load_balancer",
        );
    let (run, requests) = deck.recorded(|| deck.run(&moved, &[]));
    run.success()
        .stdout_has("~ load_balancer shop")
        .stdout_has("    subnets: + subnet-")
        .stdout_has("    security_groups: + sg-")
        .stdout_has("1 created, 1 updated, 3 unchanged");
    let mut mutating = requests.mutating();
    mutating.retain(|m| m.starts_with("elasticloadbalancing"));
    assert_eq!(mutating, ["elasticloadbalancing SetSecurityGroups", "elasticloadbalancing SetSubnets"]);
    let lb = load_balancer(&deck, "shop");
    assert_eq!(lb.load_balancer_arn(), Some(arn.as_str()));
    let mut zones: Vec<_> = lb.availability_zones().iter().map(|z| z.zone_name().unwrap().to_string()).collect();
    zones.sort();
    assert_eq!(zones, ["us-west-2a", "us-west-2c"]);
    assert_eq!(lb.security_groups().len(), 2);
    let (again, requests) = deck.recorded(|| deck.run(&moved, &[]));
    again.success().stdout_has("0 created, 0 updated, 5 unchanged");
    requests.assert_read_only();
}

#[test]
fn https_forwards_and_http_redirects_with_a_certificate() {
    let deck = Deck::new();
    let certificate = deck.request_certificate();
    assert!(certificate.starts_with("arn:aws:acm:us-west-2:"), "{certificate}");
    let https = SHOP.replace(
        "listener(alb, #{ port: 80, forward: tg });",
        "listener(alb, #{ port: 443, certificate: vars.cert, forward: tg });\n\
         listener(alb, #{ port: 80, redirect: #{ port: 443, protocol: \"HTTPS\", status: 301 } });",
    );
    let var = format!("cert={certificate}");
    deck.run(&https, &["--var", &var]).success().expect_changes(&[
        "+ security_group shop-alb",
        "+ load_balancer shop",
        "+ target_group shop",
        "+ listener shop:443 (HTTPS, forward shop)",
        "+ listener shop:80 (HTTP, redirect HTTPS:443 (301))",
    ]);

    let found = listeners(&deck, "shop");
    assert_eq!(found.len(), 2);
    let (http, tls) = (&found[0], &found[1]);
    assert_eq!((tls.port(), tls.protocol().map(|p| p.as_str())), (Some(443), Some("HTTPS")));
    assert_eq!(tls.certificates()[0].certificate_arn(), Some(certificate.as_str()));
    assert_eq!(tls.ssl_policy(), Some("ELBSecurityPolicy-TLS13-1-2-2021-06"));
    assert_eq!(only_action(tls).target_group_arn(), target_group(&deck, "shop").target_group_arn());
    assert_eq!((http.port(), http.protocol().map(|p| p.as_str())), (Some(80), Some("HTTP")));
    let redirect = only_action(http).redirect_config().expect("a redirect");
    assert_eq!((redirect.protocol(), redirect.port()), (Some("HTTPS"), Some("443")));
    assert_eq!(redirect.status_code().map(|s| s.as_str()), Some("HTTP_301"));

    let (again, requests) = deck.recorded(|| deck.run(&https, &["--var", &var]));
    again.success().stdout_has("= listener shop:443").stdout_has("= listener shop:80").stdout_has("5 unchanged");
    requests.assert_read_only();

    // A newer TLS policy converges in place.
    let stricter = https.replace(
        "certificate: vars.cert,",
        "certificate: vars.cert, ssl_policy: \"ELBSecurityPolicy-TLS13-1-3-2021-06\",",
    );
    deck.run(&stricter, &["--var", &var])
        .success()
        .stdout_has("~ listener shop:443")
        .stdout_has("ssl_policy: ELBSecurityPolicy-TLS13-1-2-2021-06 -> ELBSecurityPolicy-TLS13-1-3-2021-06");
    assert_eq!(listeners(&deck, "shop")[1].ssl_policy(), Some("ELBSecurityPolicy-TLS13-1-3-2021-06"));
}

#[test]
fn a_load_balancer_of_the_same_name_outside_the_stack_is_never_adopted() {
    let deck = Deck::new();
    let aws = deck.aws();
    let subnets: Vec<String> = aws
        .block_on(aws.ec2.describe_subnets().send())
        .unwrap()
        .subnets()
        .iter()
        .filter(|s| s.default_for_az() == Some(true))
        .take(2)
        .map(|s| s.subnet_id().unwrap().to_string())
        .collect();
    let created =
        aws.block_on(aws.elbv2.create_load_balancer().name("shop").set_subnets(Some(subnets)).send()).unwrap();
    let arn = created.load_balancers()[0].load_balancer_arn().unwrap().to_string();

    let (outcome, requests) = deck.recorded(|| deck.run(SHOP, &[]));
    outcome
        .failure()
        .stderr_has(&format!("a load balancer named shop already exists ({arn}) and is not part of stack shop"))
        .stderr_has("it has no deckhand:stack tag")
        .stderr_has("--> deploy.rhai:5:11")
        .stderr_has("deckhand never adopts resources it did not create");
    requests.assert_read_only();
    assert!(tags(&deck, &arn).is_empty(), "the foreign load balancer is left alone");

    // The same holds for a target group that another stack owns.
    aws.block_on(aws.elbv2.delete_load_balancer().load_balancer_arn(&arn).send()).unwrap();
    let vpc = load_balancer_vpc(&deck);
    let tg = aws
        .block_on(
            aws.elbv2
                .create_target_group()
                .name("shop")
                .protocol(ProtocolEnum::Http)
                .port(80)
                .vpc_id(vpc)
                .tags(Tag::builder().key("deckhand:stack").value("other").build())
                .send(),
        )
        .unwrap();
    let tg_arn = tg.target_groups()[0].target_group_arn().unwrap().to_string();
    let (outcome, requests) = deck.recorded(|| deck.run(SHOP, &[]));
    outcome
        .failure()
        .stderr_has(&format!("a target group named shop already exists ({tg_arn}) and is not part of stack shop"))
        .stderr_has("it belongs to stack other")
        .stderr_has("--> deploy.rhai:7:10");
    requests.assert_read_only();
    assert_eq!(target_group(&deck, "shop").port(), Some(80), "the foreign target group is left alone");
}

fn load_balancer_vpc(deck: &Deck) -> String {
    let aws = deck.aws();
    let filter = aws_sdk_ec2::types::Filter::builder().name("isDefault").values("true").build();
    let out = aws.block_on(aws.ec2.describe_vpcs().filters(filter).send()).unwrap();
    out.vpcs()[0].vpc_id().unwrap().to_string()
}

#[test]
fn port_and_scheme_changes_need_replacement_and_change_nothing() {
    let deck = Deck::new();
    deck.run(SHOP, &[]).success();
    let moved = SHOP.replace("port: 8080", "port: 9090");
    let (outcome, requests) = deck.recorded(|| deck.run(&moved, &[]));
    outcome
        .failure()
        .stderr_has(
            "target_group shop differs where AWS cannot change a target group's port, protocol, target type or VPC in place (port: 8080 -> 9090)",
        )
        .stderr_has("give the new one another name")
        .stderr_has("--> deploy.rhai:7:10");
    requests.assert_read_only();

    let internal = SHOP.replace("security_groups: [alb_sg],", "security_groups: [alb_sg], scheme: \"internal\",");
    let (outcome, requests) = deck.recorded(|| deck.run(&internal, &[]));
    outcome
        .failure()
        .stderr_has(
            "load_balancer shop differs where AWS cannot change a load balancer's type, scheme or VPC in place (scheme: internet-facing -> internal)",
        )
        .stderr_has("give the new one another name")
        .stderr_has("--> deploy.rhai:5:11");
    requests.assert_read_only();
}

/// Lines 1-7 of every bad script; the bad line is line 8.
const PRELUDE: &str = r#"stack("bad");
let vpc = default_vpc();
let a = default_subnet(vpc, "us-west-2a");
let b = default_subnet(vpc, "us-west-2b");
let sg = security_group(vpc, #{ name: "bad-alb" });
let tg = target_group(vpc, #{ name: "bad", port: 8080 });
let alb = load_balancer(#{ name: "bad", subnets: [a, b], security_groups: [sg] });
"#;

/// (what, line 8 of the script, expected message, expected column)
const BAD: &[(&str, &str, &str, usize)] = &[
    (
        "one subnet",
        r#"load_balancer(#{ name: "one", subnets: [a], security_groups: [sg] });"#,
        "invalid load_balancer.subnets [subnet-",
        1,
    ),
    (
        "two subnets in one AZ",
        r#"load_balancer(#{ name: "twin", subnets: [a, subnet(vpc, #{ name: "a2", az: "us-west-2a", cidr: "172.31.96.0/24" })], security_groups: [sg] });"#,
        "and (known after apply) are both in us-west-2a): subnets in at least two availability zones, one subnet per zone",
        1,
    ),
    (
        "two subnet ids in one AZ",
        r#"load_balancer(#{ name: "twin", subnets: [a.id, b.id, a.id], security_groups: [sg] });"#,
        "are both in us-west-2a): subnets in at least two availability zones",
        1,
    ),
    (
        "33-character name",
        r#"load_balancer(#{ name: "load-balancer-with-a-33-char-name", subnets: [a, b], security_groups: [sg] });"#,
        r#"invalid load_balancer.name "load-balancer-with-a-33-char-name": 1 to 32 letters, digits and hyphens, not starting or ending with a hyphen (it has 33 characters)"#,
        1,
    ),
    (
        "reserved name",
        r#"load_balancer(#{ name: "internal-app", subnets: [a, b], security_groups: [sg] });"#,
        r#"invalid load_balancer.name "internal-app": a name that does not start with "internal-""#,
        1,
    ),
    (
        "no security group",
        r#"load_balancer(#{ name: "open", subnets: [a, b], security_groups: [] });"#,
        "invalid load_balancer.security_groups []: one to five security groups",
        1,
    ),
    (
        "bad scheme",
        r#"load_balancer(#{ name: "x", subnets: [a, b], security_groups: [sg], scheme: "public" });"#,
        r#"invalid load_balancer.scheme "public": "internet-facing" or "internal""#,
        1,
    ),
    (
        "unknown key in load_balancer",
        r#"load_balancer(#{ name: "x", subnet: [a, b], security_groups: [sg] });"#,
        "unknown key `subnet` in load_balancer(); allowed keys: name, subnets, security_groups, scheme (did you mean `subnets`?)",
        1,
    ),
    (
        "unknown key in health_check",
        r#"target_group(vpc, #{ name: "t", port: 80, health_check: #{ paht: "/" } });"#,
        "unknown key `paht` in target_group.health_check(); allowed keys: path, interval, timeout, healthy, unhealthy, matcher (did you mean `path`?)",
        1,
    ),
    (
        "health check interval too short",
        r#"target_group(vpc, #{ name: "t", port: 80, health_check: #{ interval: 3 } });"#,
        "invalid target_group.health_check.interval 3: 5 to 300 seconds",
        1,
    ),
    (
        "health check timeout not below the interval",
        r#"target_group(vpc, #{ name: "t", port: 80, health_check: #{ interval: 10, timeout: 10 } });"#,
        "invalid target_group.health_check.timeout 10: less than the interval (10 seconds)",
        1,
    ),
    (
        "healthy threshold too high",
        r#"target_group(vpc, #{ name: "t", port: 80, health_check: #{ healthy: 11 } });"#,
        "invalid target_group.health_check.healthy 11: 2 to 10 consecutive checks",
        1,
    ),
    (
        "bad matcher",
        r#"target_group(vpc, #{ name: "t", port: 80, health_check: #{ matcher: "200-600" } });"#,
        r#"invalid target_group.health_check.matcher "200-600": HTTP codes from 200 to 499"#,
        1,
    ),
    (
        "relative health check path",
        r#"target_group(vpc, #{ name: "t", port: 80, health_check: #{ path: "health" } });"#,
        r#"invalid target_group.health_check.path "health": a path starting with "/""#,
        1,
    ),
    (
        "lambda target type",
        r#"target_group(vpc, #{ name: "t", port: 80, target_type: "lambda" });"#,
        r#"invalid target_group.target_type "lambda": "ip" (Fargate and other awsvpc tasks) or "instance""#,
        1,
    ),
    (
        "deregistration delay too long",
        r#"target_group(vpc, #{ name: "t", port: 80, deregistration_delay: 4000 });"#,
        "invalid target_group.deregistration_delay 4000: 0 to 3600 seconds",
        1,
    ),
    (
        "forward and redirect together",
        r#"listener(alb, #{ port: 80, forward: tg, redirect: #{ port: 443 } });"#,
        "exactly one default action: `forward` (a target group), `redirect` or `fixed_response`",
        1,
    ),
    (
        "neither forward nor redirect",
        r#"listener(alb, #{ port: 80 });"#,
        "missing key `forward` in listener(): give `forward: <target group>`, `redirect: #{ port, protocol, status }` or `fixed_response: #{ status, body }`",
        1,
    ),
    (
        "fixed response with a 3XX status",
        r#"listener(alb, #{ port: 80, fixed_response: #{ status: 302 } });"#,
        "invalid listener.fixed_response.status 302: an HTTP status code 2XX, 4XX or 5XX",
        1,
    ),
    (
        "HTTPS without certificate",
        r#"listener(alb, #{ port: 443, protocol: "HTTPS", forward: tg });"#,
        "missing key `certificate` in listener(): an HTTPS listener needs the ARN of an ACM certificate",
        1,
    ),
    (
        "certificate on HTTP",
        r#"listener(alb, #{ port: 80, protocol: "HTTP", certificate: "arn:aws:acm:us-west-2:123456789012:certificate/abc", forward: tg });"#,
        "invalid listener.certificate \"arn:aws:acm:us-west-2:123456789012:certificate/abc\": no certificate on an HTTP listener",
        1,
    ),
    (
        "certificate of another region",
        r#"listener(alb, #{ port: 443, certificate: "arn:aws:acm:us-east-1:123456789012:certificate/abc", forward: tg });"#,
        "an ACM certificate of region us-west-2",
        1,
    ),
    (
        "redirect status 303",
        r#"listener(alb, #{ port: 80, redirect: #{ port: 443, protocol: "HTTPS", status: 303 } });"#,
        "invalid listener.redirect.status 303: 301 (moved permanently) or 302 (found)",
        1,
    ),
    (
        "redirect to itself",
        r#"listener(alb, #{ port: 80, redirect: #{ port: 80, protocol: "HTTP" } });"#,
        "invalid listener.redirect HTTP:80: another port or protocol than the listener's own",
        1,
    ),
    (
        "forward to a non-target-group",
        r#"listener(alb, #{ port: 80, forward: sg });"#,
        "invalid listener.forward a security_group handle: a target_group handle",
        1,
    ),
    (
        "listener port 0",
        r#"listener(alb, #{ port: 0, forward: tg });"#,
        "invalid listener.port 0: a port from 1 to 65535",
        1,
    ),
];

#[test]
fn bad_load_balancing_fails_with_position_and_message_and_changes_nothing() {
    let deck = Deck::new();
    for (what, line, message, column) in BAD {
        let script = format!("{PRELUDE}{line}\n");
        let (outcome, requests) = deck.recorded(|| deck.run(&script, &[]));
        let outcome = outcome.failure();
        assert!(outcome.stderr.contains(message), "{what}: expected {message:?} in:\n{}", outcome.stderr);
        let at = format!("--> deploy.rhai:8:{column}");
        assert!(outcome.stderr.contains(&at), "{what}: expected {at:?} in:\n{}", outcome.stderr);
        assert_eq!(requests.mutating(), Vec::<String>::new(), "{what}: nothing mutating may be sent");
    }
}

/// The default subnets of two AZs (what a load balancer made by hand needs).
fn two_default_subnets(deck: &Deck) -> Vec<String> {
    let aws = deck.aws();
    let out = aws.block_on(aws.ec2.describe_subnets().send()).unwrap();
    let mut subnets: Vec<(String, String)> = out
        .subnets()
        .iter()
        .filter(|s| s.default_for_az() == Some(true))
        .map(|s| (s.availability_zone().unwrap().to_string(), s.subnet_id().unwrap().to_string()))
        .collect();
    subnets.sort();
    subnets.into_iter().take(2).map(|(_, id)| id).collect()
}

/// Creates `count` load balancers and `count` target groups outside stack shop: half untagged,
/// half of another stack.
fn create_foreign_load_balancing(deck: &Deck, count: usize) {
    use futures_util::{StreamExt, TryStreamExt, stream};
    let aws = deck.aws();
    let subnets = two_default_subnets(deck);
    let vpc = load_balancer_vpc(deck);
    let other = Tag::builder().key("deckhand:stack").value("other").build();
    let tags = |i: usize| if i.is_multiple_of(2) { None } else { Some(vec![other.clone()]) };
    let creates = (0..count).map(|i| {
        let (aws, subnets, vpc, tags) = (&aws, subnets.clone(), vpc.clone(), tags(i));
        async move {
            aws.elbv2
                .create_load_balancer()
                .name(format!("foreign-{i}"))
                .set_subnets(Some(subnets))
                .set_tags(tags.clone())
                .send()
                .await
                .map(drop)
                .map_err(|e| format!("{e:?}"))?;
            aws.elbv2
                .create_target_group()
                .name(format!("foreign-{i}"))
                .protocol(ProtocolEnum::Http)
                .port(80)
                .vpc_id(vpc)
                .set_tags(tags)
                .send()
                .await
                .map(drop)
                .map_err(|e| format!("{e:?}"))
        }
    });
    aws.block_on(stream::iter(creates).buffer_unordered(8).try_collect::<Vec<()>>()).expect("foreign resources");
    let out = aws.block_on(aws.elbv2.describe_target_groups().send()).unwrap();
    assert!(out.target_groups().len() > count, "the foreign target groups exist");
}

#[test]
fn a_no_op_costs_the_same_however_many_load_balancers_the_region_holds() {
    let deck = Deck::new();
    deck.run(SHOP, &[]).success();
    let (first, alone) = deck.recorded(|| deck.run(SHOP, &[]));
    first.success().stdout_has("0 created, 0 updated, 4 unchanged");

    create_foreign_load_balancing(&deck, 100);
    let (second, crowded) = deck.recorded(|| deck.run(SHOP, &[]));
    second.success().stdout_has("0 created, 0 updated, 4 unchanged");
    crowded.assert_read_only();
    let sorted = |requests: &crate::support::Requests| {
        let mut actions = requests.actions();
        actions.sort();
        actions
    };
    assert_eq!(sorted(&crowded), sorted(&alone), "200 foreign load balancers and target groups cost no request");
    assert!(!crowded.actions().contains(&"DescribeTags".to_string()), "{:?}", crowded.actions());
}

#[test]
fn a_listener_on_a_load_balancer_of_another_stack_is_refused() {
    let deck = Deck::new();
    deck.run(SHOP, &[]).success();
    let arn = load_balancer(&deck, "shop").load_balancer_arn().unwrap().to_string();
    let script = r#"stack("other");
listener(vars.lb, #{ port: 8081, redirect: #{ port: 443, protocol: "HTTPS" } });
"#;
    let var = format!("lb={arn}");
    let (outcome, requests) = deck.recorded(|| deck.run(script, &["--var", &var]));
    outcome
        .failure()
        .stderr_has(&format!("load balancer shop ({arn}) is not part of stack other"))
        .stderr_has("--> deploy.rhai:2:1");
    requests.assert_read_only();
    assert_eq!(listeners(&deck, "shop").len(), 1, "no listener was added");
}

#[test]
fn a_target_group_created_between_confirm_and_apply_is_refused_not_adopted() {
    // `--confirm` pauses between the plan and the apply. A target group of the script's name and
    // settings created meanwhile without the stack tag would be adopted by CreateTargetGroup (AWS
    // returns the existing one): the apply pass reads the stack afresh and checks its owner.
    let deck = Deck::new();
    deck.write("deploy.rhai", SHOP);
    let gate = deck.dir().join("planned");
    let steps = serde_json::json!([
        ["", ["+ target_group shop", "Apply these changes? [y/N] "]],
        ["y\r", ["a target group named shop already exists"], gate.to_str().unwrap()]
    ]);
    let vpc = load_balancer_vpc(&deck);
    let ((outcome, requests), tg_arn) = std::thread::scope(|scope| {
        let session = scope.spawn(|| deck.recorded(|| deck.terminal(&["run", "--confirm", "deploy.rhai"], &steps)));
        let tg_arn = deck.at_gate(&gate, || {
            let aws = deck.aws();
            let created = aws
                .block_on(
                    aws.elbv2
                        .create_target_group()
                        .name("shop")
                        .protocol(ProtocolEnum::Http)
                        .port(8080)
                        .vpc_id(&vpc)
                        .target_type(aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum::Ip)
                        .health_check_path("/health")
                        .matcher(aws_sdk_elasticloadbalancingv2::types::Matcher::builder().http_code("200-299").build())
                        .send(),
                )
                .unwrap();
            created.target_groups()[0].target_group_arn().unwrap().to_string()
        });
        (session.join().unwrap(), tg_arn)
    });
    assert_ne!(outcome.code, 0, "the apply is refused:\n{}", outcome.stdout);
    assert!(
        outcome.stdout.contains(&format!(
            "a target group named shop already exists ({tg_arn}) and is not part of stack shop: it has no deckhand:stack tag"
        )),
        "{}",
        outcome.stdout
    );
    // The apply pass: what deckhand sent once it held the stack lock (the recorder also saw the
    // test's own CreateTargetGroup, before it).
    let actions = requests.actions();
    let locked = actions.iter().position(|a| a == "PutParameter").expect("the apply took the stack lock");
    let actions = &actions[locked..];
    assert!(actions.iter().any(|a| a == "CreateLoadBalancer"), "the apply ran (recorder saw {actions:?})");
    for adopting in ["CreateTargetGroup", "ModifyTargetGroup", "ModifyTargetGroupAttributes", "CreateListener"] {
        assert!(!actions.iter().any(|a| a == adopting), "{adopting} sent: {actions:?}");
    }
    assert!(tags(&deck, &tg_arn).is_empty(), "the foreign target group is left untagged");
}
