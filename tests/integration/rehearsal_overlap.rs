//! Waits that overlap, rehearsed: a NAT gateway, a certificate and a load balancer are waited
//! for only where something needs them (a route to the NAT gateway, a service behind it, an
//! HTTPS listener, the end of the run), so the statements in between are sent while AWS is still
//! working. Proven from the emulator's request recorder (what was sent, in order) and its
//! timeline (when, in modelled time, each state change happened).

use crate::rehearsal_network::{entered, timeline};
use crate::support::Deck;

const GUIDE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/fargate-alb.rhai");

/// Runs the bundled script against the deck's emulator.
fn guide(deck: &Deck, extra: &[&str]) -> crate::support::Outcome {
    let mut args = vec!["run", GUIDE];
    args.extend_from_slice(extra);
    deck.deckhand(&args)
}

/// The index of the first request `action` (after `from`), in a recorded run.
#[track_caller]
fn first(actions: &[String], action: &str, from: usize) -> usize {
    from + actions[from..].iter().position(|a| a == action).unwrap_or_else(|| panic!("no {action} in {actions:?}"))
}

#[test]
fn the_load_balancer_cluster_and_task_definition_are_created_while_the_nat_gateway_is_pending() {
    let deck = Deck::with_emulator_env(&[("DECKHAND_TIME_SCALE", "0.05")]);
    let (outcome, requests) = deck.recorded(|| guide(&deck, &[]));
    outcome.success().stdout_has("waiting for NAT gateway");

    let actions = requests.actions();
    let nat = first(&actions, "CreateNatGateway", 0);
    // The first look at the NAT gateway after its create is the wait for it, by what needs it.
    let waited = first(&actions, "DescribeNatGateways", nat);
    // What does not need it is sent before that wait: while the NAT gateway is pending, or even
    // before its create, in a wave of creates sent ahead of the script.
    for independent in ["CreateLoadBalancer", "CreateTargetGroup", "CreateCluster", "RegisterTaskDefinition"] {
        let sent = first(&actions, independent, 0);
        // Before the wait for the NAT gateway: after its create, or sent ahead of the script
        // (creates that need nothing still to be created go first, together).
        assert!(sent < waited, "{independent} was not sent while the NAT gateway was pending: {actions:?}");
    }
    // The route and the service only once the NAT gateway was available.
    let route = first(&actions, "CreateRoute", nat);
    let service = first(&actions, "CreateService", 0);
    assert!(waited < route && route < service, "{actions:?}");

    let aws = deck.aws();
    let nats = aws.block_on(aws.ec2.describe_nat_gateways().send()).unwrap();
    let nat_id = nats.nat_gateways()[0].nat_gateway_id().unwrap().to_string();
    let lbs = aws.block_on(aws.elbv2.describe_load_balancers().names("myapp").send()).unwrap();
    let lb_arn = lbs.load_balancers()[0].load_balancer_arn().unwrap().to_string();
    let (_, changes) = timeline(&deck);
    let available = entered(&changes, "nat_gateway", &nat_id, "available").expect("the NAT gateway became available");
    let provisioning = entered(&changes, "load_balancer", &lb_arn, "provisioning").expect("the load balancer");
    assert!(provisioning < available, "the load balancer waited for the NAT gateway: {changes:#?}");
    let routed = changes
        .iter()
        .find(|c| c.kind == "route" && c.state == format!("to {nat_id}"))
        .map(|c| c.at)
        .expect("a route to the NAT gateway");
    assert!(routed >= available, "deckhand routed through the NAT gateway while it was pending: {changes:#?}");
}

const TLS: &str = r#"
stack("tls");
let zone = hosted_zone("example.com");
let cert = certificate(#{ domain: "app.example.com", zone: zone });
let vpc = default_vpc();
let alb_sg = security_group(vpc, #{ name: "tls-alb", ingress: [#{ port: 443, cidr: "0.0.0.0/0" }] });
let alb = load_balancer(#{ name: "tls", security_groups: [alb_sg],
    subnets: [default_subnet(vpc, "us-west-2a"), default_subnet(vpc, "us-west-2b")] });
let tg = target_group(vpc, #{ name: "tls", port: 8080 });
listener(alb, #{ port: 443, protocol: "HTTPS", certificate: cert, forward: tg });
cluster("tls");
"#;

#[test]
fn an_https_listener_waits_for_its_certificate_while_the_statements_before_it_go_ahead() {
    let deck = Deck::with_emulator_env(&[("DECKHAND_TIME_SCALE", "0.05")]);
    let aws = deck.aws();
    aws.block_on(aws.route53.create_hosted_zone().name("example.com").caller_reference("tls").send()).unwrap();
    let (outcome, requests) = deck.recorded(|| deck.run(TLS, &[]));
    outcome.success().stdout_has("to be issued for listener tls:443");

    let list = aws.block_on(aws.acm.list_certificates().send()).unwrap();
    let cert = list.certificate_summary_list()[0].certificate_arn().unwrap().to_string();
    let lbs = aws.block_on(aws.elbv2.describe_load_balancers().names("tls").send()).unwrap();
    let lb_arn = lbs.load_balancers()[0].load_balancer_arn().unwrap().to_string();
    let listeners = aws.block_on(aws.elbv2.describe_listeners().load_balancer_arn(&lb_arn).send()).unwrap();
    let https = listeners.listeners().iter().find(|l| l.port() == Some(443)).expect("the HTTPS listener");
    assert_eq!(https.certificates()[0].certificate_arn(), Some(cert.as_str()));

    // The load balancer and target group were created before it was issued (with the request,
    // or after it: creates that need nothing still to be created go out together).
    let (_, changes) = timeline(&deck);
    let issued = entered(&changes, "certificate", &cert, "ISSUED").expect("issued");
    let provisioning = entered(&changes, "load_balancer", &lb_arn, "provisioning").expect("the load balancer");
    assert!(provisioning < issued, "{changes:#?}");
    let actions = requests.actions();
    let target_group = first(&actions, "CreateTargetGroup", 0);
    let listener = first(&actions, "CreateListener", 0);
    let polled = first(&actions, "DescribeCertificate", target_group);
    assert!(target_group < polled && polled < listener, "{actions:?}");

    // ELBv2 refuses a certificate that is not issued, as AWS does: deckhand had to wait.
    let pending = deck.aws().block_on(
        aws.acm
            .request_certificate()
            .domain_name("other.example.com")
            .validation_method(aws_sdk_acm::types::ValidationMethod::Dns)
            .send(),
    );
    let pending = pending.unwrap().certificate_arn().unwrap().to_string();
    let modify = aws.block_on(
        aws.elbv2
            .modify_listener()
            .listener_arn(https.listener_arn().unwrap())
            .certificates(
                aws_sdk_elasticloadbalancingv2::types::Certificate::builder().certificate_arn(&pending).build(),
            )
            .send(),
    );
    let err = modify.expect_err("ModifyListener with a pending certificate");
    assert_eq!(aws_sdk_elasticloadbalancingv2::error::ProvideErrorMetadata::code(&err), Some("UnsupportedCertificate"));
}

#[test]
fn an_https_listener_is_not_sent_ahead_while_its_certificate_is_pending() {
    // The stack's load balancer and target group exist, and its certificate is requested but not
    // validated (as a run stopped before its end leaves it): everything the HTTPS listener names
    // is known before the script runs, yet it must not go out with the creates sent ahead of the
    // script (ELBv2 refuses a certificate that is not ISSUED): the run writes the validation
    // CNAME, waits for the certificate at the listener's statement, then creates the listener.
    let deck = Deck::with_emulator_env(&[("DECKHAND_TIME_SCALE", "0.05")]);
    let aws = deck.aws();
    aws.block_on(aws.route53.create_hosted_zone().name("example.com").caller_reference("tls").send()).unwrap();
    let without_listener: String =
        TLS.lines().filter(|l| !l.starts_with("let cert") && !l.starts_with("listener")).collect::<Vec<_>>().join("\n");
    deck.run(&without_listener, &[]).success();
    let tag = aws_sdk_acm::types::Tag::builder().key("deckhand:stack").value("tls").build().unwrap();
    let requested = aws.block_on(
        aws.acm
            .request_certificate()
            .domain_name("app.example.com")
            .validation_method(aws_sdk_acm::types::ValidationMethod::Dns)
            .tags(tag)
            .send(),
    );
    let cert = requested.unwrap().certificate_arn().unwrap().to_string();

    let (outcome, requests) = deck.recorded(|| deck.run(TLS, &[]));
    outcome.success().stdout_has("to be issued for listener tls:443").stdout_has("+ listener tls:443");
    let actions = requests.actions();
    let listener_creates = actions.iter().filter(|a| *a == "CreateListener").count();
    assert_eq!(listener_creates, 1, "CreateListener sent before the certificate was issued: {actions:?}");
    let written = actions.iter().position(|a| a.starts_with("POST ") && a.contains("/rrset")).expect("the CNAME");
    let polled = first(&actions, "DescribeCertificate", written);
    assert!(polled < first(&actions, "CreateListener", 0), "{actions:?}");
    let lbs = aws.block_on(aws.elbv2.describe_load_balancers().names("tls").send()).unwrap();
    let lb_arn = lbs.load_balancers()[0].load_balancer_arn().unwrap();
    let listeners = aws.block_on(aws.elbv2.describe_listeners().load_balancer_arn(lb_arn).send()).unwrap();
    let https = listeners.listeners().iter().find(|l| l.port() == Some(443)).expect("the HTTPS listener");
    assert_eq!(https.certificates()[0].certificate_arn(), Some(cert.as_str()));
}

const BROKEN_EGRESS: &str = r#"
stack("brk");
let vpc = default_vpc();
let subnets = [subnet(vpc, #{ name: "brk-a", az: "us-west-2a", cidr: "172.31.96.0/24" })];
let nat = nat_gateway(default_subnet(vpc, "us-west-2a"), #{ name: "brk-nat" });
route_table(vpc, #{ name: "brk-private", subnets: subnets, routes: [#{ cidr: "0.0.0.0/0", nat_gateway: nat }] });
let logs = log_group("/ecs/brk", #{ retention_days: 7 });
let task = task_definition(#{ family: "brk", cpu: 256, memory: 512, execution_role: task_execution_role("brk-exec"),
    containers: [#{ name: "app", image: "nginx:1.25", logs: logs }] });
let svc = service(cluster("brk"), #{ name: "brk", task: task, desired: 1, subnets: subnets });
wait_stable(svc);
"#;

/// The default VPC's internet gateway, detached (`attach: false`) or attached again.
fn internet_gateway(deck: &Deck, attach: bool) {
    let aws = deck.aws();
    let vpc = deck.default_vpc_id();
    let filter = aws_sdk_ec2::types::Filter::builder().name("attachment.vpc-id").values(&vpc).build();
    let igw = if attach {
        let all = aws.block_on(aws.ec2.describe_internet_gateways().send()).unwrap();
        all.internet_gateways()
            .iter()
            .find(|g| g.attachments().is_empty())
            .unwrap()
            .internet_gateway_id()
            .unwrap()
            .to_string()
    } else {
        let found = aws.block_on(aws.ec2.describe_internet_gateways().filters(filter).send()).unwrap();
        found.internet_gateways()[0].internet_gateway_id().unwrap().to_string()
    };
    if attach {
        aws.block_on(aws.ec2.attach_internet_gateway().internet_gateway_id(&igw).vpc_id(&vpc).send()).unwrap();
    } else {
        aws.block_on(aws.ec2.detach_internet_gateway().internet_gateway_id(&igw).vpc_id(&vpc).send()).unwrap();
    }
}

/// The script's route table, as EC2 describes it.
fn private_route_table(deck: &Deck) -> aws_sdk_ec2::types::RouteTable {
    let aws = deck.aws();
    let name = aws_sdk_ec2::types::Filter::builder().name("tag:Name").values("brk-private").build();
    let tables = aws.block_on(aws.ec2.describe_route_tables().filters(name).send()).unwrap();
    tables.route_tables()[0].clone()
}

#[test]
fn a_nat_gateway_that_fails_stops_the_run_cleanly_and_a_rerun_converges() {
    let deck = Deck::with_emulator_env(&[("DECKHAND_TIME_SCALE", "0.05")]);
    // Without an internet gateway, a public NAT gateway fails after its pending time.
    internet_gateway(&deck, false);
    deck.run(BROKEN_EGRESS, &[]).failure().stderr_has("did not become available: it is failed");

    let aws = deck.aws();
    // The independent branch went ahead: the cluster and the task definition exist; the
    // service, which needed the egress, was never created, nor the route to the failed gateway.
    let clusters = aws.block_on(aws.ecs.describe_clusters().clusters("brk").send()).unwrap();
    assert_eq!(clusters.clusters()[0].status(), Some("ACTIVE"));
    let families = aws.block_on(aws.ecs.list_task_definitions().family_prefix("brk").send()).unwrap();
    assert_eq!(families.task_definition_arns().len(), 1);
    let services = aws.block_on(aws.ecs.describe_services().cluster("brk").services("brk").send()).unwrap();
    assert!(services.services().iter().all(|s| s.status() != Some("ACTIVE")), "{services:?}");
    let table = private_route_table(&deck);
    assert!(table.routes().iter().all(|r| r.nat_gateway_id().is_none()), "{:?}", table.routes());
    // The lock was released on the way out.
    let lock = aws.block_on(aws.ssm.get_parameter().name("/deckhand/locks/brk").send());
    assert!(lock.is_err_and(|e| e.as_service_error().is_some_and(|e| e.is_parameter_not_found())));

    // With the internet gateway back, a re-run makes a new NAT gateway, routes through it and
    // creates the service.
    internet_gateway(&deck, true);
    deck.run(BROKEN_EGRESS, &[]).success().stdout_has("service brk is stable");
    let nats = aws.block_on(aws.ec2.describe_nat_gateways().send()).unwrap();
    let available: Vec<&str> = nats
        .nat_gateways()
        .iter()
        .filter(|n| n.state().map(|s| s.as_str()) == Some("available"))
        .filter_map(|n| n.nat_gateway_id())
        .collect();
    assert_eq!(available.len(), 1, "{nats:?}");
    let table = private_route_table(&deck);
    assert!(table.routes().iter().any(|r| r.nat_gateway_id() == Some(available[0])), "{:?}", table.routes());
    let services = aws.block_on(aws.ecs.describe_services().cluster("brk").services("brk").send()).unwrap();
    assert_eq!(services.services()[0].status(), Some("ACTIVE"));
    deck.run(BROKEN_EGRESS, &[]).success().stdout_has("0 created, 0 updated");
}
