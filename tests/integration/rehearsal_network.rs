//! A local AWS that takes time, networking half: NAT gateways are pending before they are
//! available, load balancers provision before they are active, certificates wait for their
//! validation CNAME in a public zone. deckhand waits where AWS makes it wait, `status` shows the
//! in-between states, and the modelled durations, read from the emulator's own timeline (its
//! clock, not the machine's), are AWS's typical ones.

use std::time::{Duration, Instant};

use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType, VpcRegion};
use serde_json::Value;

use crate::support::Deck;

/// One modelled state change the emulator recorded (GET /moto-api/deckhand/timeline).
#[derive(Debug, Clone)]
pub(crate) struct Modelled {
    pub(crate) kind: String,
    pub(crate) id: String,
    pub(crate) state: String,
    /// Modelled seconds since the emulator started.
    pub(crate) at: f64,
}

/// The emulator's timeline: the modelled time now and its recorded changes.
pub(crate) fn timeline(deck: &Deck) -> (f64, Vec<Modelled>) {
    let body = deck.emulator.get("/moto-api/deckhand/timeline").expect("the emulator's timeline");
    let json: Value = serde_json::from_str(&body).expect("JSON timeline");
    let changes = json["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| Modelled {
            kind: e["kind"].as_str().unwrap().to_string(),
            id: e["id"].as_str().unwrap().to_string(),
            state: e["state"].as_str().unwrap().to_string(),
            at: e["at"].as_f64().unwrap(),
        })
        .collect();
    (json["now"].as_f64().expect("now"), changes)
}

/// When (modelled seconds) `id` of `kind` entered `state`, if it has.
pub(crate) fn entered(changes: &[Modelled], kind: &str, id: &str, state: &str) -> Option<f64> {
    changes.iter().find(|c| c.kind == kind && c.id == id && c.state == state).map(|c| c.at)
}

/// Asserts a modelled duration is `expected` seconds within 20 %.
#[track_caller]
fn assert_about(what: &str, seconds: f64, expected: f64) {
    assert!(
        (seconds - expected).abs() <= expected * 0.2,
        "{what} took {seconds:.1} s modelled; AWS typically takes about {expected} s"
    );
}

/// Polls `check` (every 50 ms, 60 s at most) until it gives a value.
fn poll<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

const PRIVATE_EGRESS: &str = r#"
stack("priv");
let vpc = default_vpc();
let subnets = [subnet(vpc, #{ name: "priv-a", az: "us-west-2a", cidr: "172.31.96.0/24" })];
let nat = nat_gateway(default_subnet(vpc, "us-west-2a"), #{ name: "priv-nat" });
route_table(vpc, #{ name: "priv-private", subnets: subnets, routes: [#{ cidr: "0.0.0.0/0", nat_gateway: nat }] });
"#;

#[test]
fn a_nat_gateway_is_pending_for_about_90_s_and_deckhand_routes_through_it_once_available() {
    // At 0.05 the NAT gateway is pending for 4.5 s of wall time: far longer than the few
    // milliseconds between CreateNatGateway and deckhand's first look.
    let deck = Deck::with_emulator_env(&[("DECKHAND_TIME_SCALE", "0.05")]);
    let (outcome, requests) = deck.recorded(|| deck.run(PRIVATE_EGRESS, &[]));
    outcome.success().stdout_has("waiting for NAT gateway");

    let aws = deck.aws();
    let nats = aws.block_on(aws.ec2.describe_nat_gateways().send()).unwrap();
    let nat = &nats.nat_gateways()[0];
    let id = nat.nat_gateway_id().unwrap();
    assert_eq!(nat.state().map(|s| s.as_str()), Some("available"));

    let (_, changes) = timeline(&deck);
    let pending = entered(&changes, "nat_gateway", id, "pending").expect("created pending");
    let available = entered(&changes, "nat_gateway", id, "available").expect("became available");
    assert_about("NAT gateway pending -> available", available - pending, 90.0);
    let table = aws.block_on(aws.ec2.describe_route_tables().filters(name_filter("priv-private")).send()).unwrap();
    let table_id = table.route_tables()[0].route_table_id().unwrap();
    let routed = entered(&changes, "route", &format!("{table_id} 0.0.0.0/0"), &format!("to {id}"))
        .expect("a default route to the NAT gateway");
    assert!(routed >= available, "deckhand routed through the NAT gateway while it was pending: {changes:#?}");

    // deckhand looked at the NAT gateway between creating it and routing through it.
    let ec2 = requests.actions_of("ec2");
    let created = ec2.iter().position(|a| a == "CreateNatGateway").expect("CreateNatGateway");
    let route = ec2.iter().position(|a| a == "CreateRoute").expect("CreateRoute");
    assert!(ec2[created..route].iter().any(|a| a == "DescribeNatGateways"), "{ec2:?}");
}

fn name_filter(name: &str) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder().name("tag:Name").values(name).build()
}

#[test]
fn a_nat_gateway_being_deleted_holds_its_address_until_it_is_deleted() {
    // At 0.05 a NAT gateway is deleting for 3 s of wall time.
    let deck = Deck::with_emulator_env(&[("DECKHAND_TIME_SCALE", "0.05")]);
    deck.run(PRIVATE_EGRESS, &[]).success();
    let aws = deck.aws();
    let nat_state = |id: &str| {
        let out = aws.block_on(aws.ec2.describe_nat_gateways().nat_gateway_ids(id).send()).unwrap();
        out.nat_gateways()[0].clone()
    };
    let ours = aws.block_on(aws.ec2.describe_nat_gateways().send()).unwrap().nat_gateways()[0]
        .nat_gateway_id()
        .unwrap()
        .to_string();

    // Another NAT gateway, deleted by hand: its address cannot be released while it is deleting.
    let subnet = nat_state(&ours).subnet_id().unwrap().to_string();
    let other_address = aws.block_on(aws.ec2.allocate_address().send()).unwrap().allocation_id().unwrap().to_string();
    let other = aws
        .block_on(aws.ec2.create_nat_gateway().subnet_id(subnet).allocation_id(&other_address).send())
        .unwrap()
        .nat_gateway()
        .unwrap()
        .nat_gateway_id()
        .unwrap()
        .to_string();
    aws.block_on(aws.ec2.delete_nat_gateway().nat_gateway_id(&other).send()).unwrap();
    let refused = aws.block_on(aws.ec2.release_address().allocation_id(&other_address).send());
    let code = refused.expect_err("AWS keeps the address while its NAT gateway is deleting").into_service_error();
    assert_eq!(code.meta().code(), Some("AuthFailure"), "{code:?}");
    assert_eq!(nat_state(&other).state().map(|s| s.as_str()), Some("deleting"), "still deleting when refused");

    // deckhand's destroy deletes its NAT gateway, waits until it is deleted, then releases its address.
    deck.deckhand(&["destroy", "--stack", "priv", "--yes"]).success();
    let nat = nat_state(&ours);
    assert_eq!(nat.state().map(|s| s.as_str()), Some("deleted"));
    assert!(nat.delete_time().is_some(), "AWS reports when it was deleted: {nat:?}");
    let (_, changes) = timeline(&deck);
    let deleting = entered(&changes, "nat_gateway", &ours, "deleting").expect("deleting");
    let deleted = entered(&changes, "nat_gateway", &ours, "deleted").expect("deleted");
    assert_about("NAT gateway deleting -> deleted", deleted - deleting, 60.0);
    let addresses = aws.block_on(aws.ec2.describe_addresses().send()).unwrap();
    let left: Vec<&str> = addresses.addresses().iter().filter_map(|a| a.allocation_id()).collect();
    assert_eq!(left, [other_address.as_str()], "the stack's address is released, the other one kept");
    aws.block_on(aws.ec2.release_address().allocation_id(&other_address).send())
        .expect("released once its NAT gateway is deleted");
}

const LOAD_BALANCER: &str = r#"
stack("shop");
let vpc = default_vpc();
let alb_sg = security_group(vpc, #{ name: "shop-alb", ingress: [ #{ port: 80, cidr: "0.0.0.0/0" } ] });
let alb = load_balancer(#{ name: "shop", security_groups: [alb_sg],
    subnets: [default_subnet(vpc, "us-west-2a"), default_subnet(vpc, "us-west-2b")] });
"#;

/// The load balancer's state as `deckhand status --output json` shows it.
fn status_state(deck: &Deck) -> String {
    let out = deck.deckhand(&["status", "--stack", "shop", "--output", "json"]).success();
    let json: Value = serde_json::from_str(&out.stdout).expect("status JSON");
    let resources = json["resources"].as_array().expect("resources");
    let lb = resources.iter().find(|r| r["type"] == "load_balancer").expect("the load balancer in status");
    lb["state"].as_str().unwrap_or_default().to_string()
}

#[test]
fn a_load_balancer_provisions_for_about_150_s_and_status_shows_it() {
    // At 0.1 the load balancer provisions for 15 s of wall time: a status fits in it.
    let deck = Deck::with_emulator_env(&[("DECKHAND_TIME_SCALE", "0.1")]);
    // Created the way a run that was stopped meanwhile leaves it: the stack's, still provisioning.
    let aws = deck.aws();
    let subnets = aws.block_on(aws.ec2.describe_subnets().send()).unwrap();
    let defaults: Vec<String> = subnets
        .subnets()
        .iter()
        .filter(|s| s.default_for_az() == Some(true))
        .filter_map(|s| s.subnet_id().map(str::to_string))
        .take(2)
        .collect();
    let tag = aws_sdk_elasticloadbalancingv2::types::Tag::builder().key("deckhand:stack").value("shop").build();
    aws.block_on(aws.elbv2.create_load_balancer().name("shop").set_subnets(Some(defaults)).tags(tag).send()).unwrap();
    let state = || {
        let out = aws.block_on(aws.elbv2.describe_load_balancers().names("shop").send()).unwrap();
        let lb = out.load_balancers()[0].clone();
        (lb.load_balancer_arn().unwrap().to_string(), lb.state().and_then(|s| s.code()).unwrap().as_str().to_string())
    };
    let (arn, now) = state();
    assert_eq!(now, "provisioning", "a new load balancer is provisioning");
    let shown = status_state(&deck);
    let (status_done, changes) = timeline(&deck);
    let provisioning = entered(&changes, "load_balancer", &arn, "provisioning").expect("created provisioning");
    assert!(status_done < provisioning + 150.0, "status ran after the load balancer was due to be active");
    assert_eq!(shown, "provisioning", "status shows the live state");

    poll("the load balancer to become active", || (state().1 == "active").then_some(()));
    assert_eq!(status_state(&deck), "active");
    let (_, changes) = timeline(&deck);
    let active = entered(&changes, "load_balancer", &arn, "active").expect("became active");
    assert_about("load balancer provisioning -> active", active - provisioning, 150.0);
}

#[test]
fn a_run_that_creates_a_load_balancer_ends_once_it_is_active() {
    let deck = Deck::with_emulator_env(&[("DECKHAND_TIME_SCALE", "0.05")]);
    let script = LOAD_BALANCER.replace("name: \"shop\"", "name: \"shop-new\"");
    deck.run(&script, &[])
        .success()
        .expect_changes(&["+ security_group shop-alb", "+ load_balancer shop-new"])
        .stdout_has("waiting for load balancer shop-new to become active for the end of the run");

    let aws = deck.aws();
    let out = aws.block_on(aws.elbv2.describe_load_balancers().names("shop-new").send()).unwrap();
    let lb = &out.load_balancers()[0];
    assert_eq!(lb.state().and_then(|s| s.code()).map(|c| c.as_str()), Some("active"));
    let (_, changes) = timeline(&deck);
    let arn = lb.load_balancer_arn().unwrap();
    let provisioning = entered(&changes, "load_balancer", arn, "provisioning").expect("created provisioning");
    let active = entered(&changes, "load_balancer", arn, "active").expect("became active");
    assert_about("load balancer provisioning -> active", active - provisioning, 150.0);
}

/// Creates a hosted zone (private ones in the default VPC) and returns its id.
fn create_zone(deck: &Deck, name: &str, private: bool) -> String {
    let aws = deck.aws();
    let mut request = aws.route53.create_hosted_zone().name(name).caller_reference(format!("test-{name}-{private}"));
    if private {
        let vpc =
            aws_sdk_route53::types::Vpc::builder().vpc_id(deck.default_vpc_id()).vpc_region(VpcRegion::UsWest2).build();
        let config = aws_sdk_route53::types::HostedZoneConfig::builder().private_zone(true).build();
        request = request.vpc(vpc).hosted_zone_config(config);
    }
    let out = aws.block_on(request.send()).expect("CreateHostedZone");
    out.hosted_zone().unwrap().id().trim_start_matches("/hostedzone/").to_string()
}

/// Writes a CNAME into a zone.
fn write_cname(deck: &Deck, zone_id: &str, name: &str, value: &str) {
    let aws = deck.aws();
    let set = ResourceRecordSet::builder()
        .name(name)
        .r#type(RrType::Cname)
        .ttl(300)
        .resource_records(ResourceRecord::builder().value(value).build().unwrap())
        .build()
        .unwrap();
    let change = Change::builder().action(ChangeAction::Upsert).resource_record_set(set).build().unwrap();
    let batch = ChangeBatch::builder().changes(change).build().unwrap();
    aws.block_on(aws.route53.change_resource_record_sets().hosted_zone_id(zone_id).change_batch(batch).send())
        .expect("ChangeResourceRecordSets");
}

fn certificate(deck: &Deck, arn: &str) -> aws_sdk_acm::types::CertificateDetail {
    let aws = deck.aws();
    let out = aws.block_on(aws.acm.describe_certificate().certificate_arn(arn).send()).expect("DescribeCertificate");
    out.certificate().expect("a certificate").clone()
}

fn status_of(deck: &Deck, arn: &str) -> String {
    certificate(deck, arn).status().map(|s| s.as_str().to_string()).unwrap_or_default()
}

/// Requests a DNS-validated certificate for `domain` as the stack `certs`'s (by its tag), as
/// another tool or an interrupted run would have; returns its ARN.
fn request_certificate(deck: &Deck, domain: &str) -> String {
    let aws = deck.aws();
    let tag = aws_sdk_acm::types::Tag::builder().key("deckhand:stack").value("certs").build().unwrap();
    let request = aws
        .acm
        .request_certificate()
        .domain_name(domain)
        .validation_method(aws_sdk_acm::types::ValidationMethod::Dns)
        .tags(tag);
    aws.block_on(request.send()).expect("RequestCertificate").certificate_arn().unwrap().to_string()
}

#[test]
fn a_certificate_is_issued_only_a_minute_after_its_cname_is_in_a_public_zone() {
    let deck = Deck::new();
    let public = create_zone(&deck, "example.com", false);
    let private = create_zone(&deck, "example.com", true);
    let arn = request_certificate(&deck, "app.example.com");
    let pending = certificate(&deck, &arn);
    assert_eq!(pending.status().map(|s| s.as_str()), Some("PENDING_VALIDATION"));
    assert!(pending.issued_at().is_none() && pending.not_after().is_none(), "not issued yet: {pending:?}");
    let option = &pending.domain_validation_options()[0];
    assert_eq!(option.validation_status().map(|s| s.as_str()), Some("PENDING_VALIDATION"));
    let record = option.resource_record().expect("the validation CNAME ACM asks for").clone();

    // In a private zone the record is not served publicly: ACM never sees it.
    write_cname(&deck, &private, record.name(), record.value());
    let (requested_at, _) = timeline(&deck);
    poll("five modelled minutes", || (timeline(&deck).0 > requested_at + 300.0).then_some(()));
    assert_eq!(status_of(&deck, &arn), "PENDING_VALIDATION", "never issued without its public record");
    deck.deckhand(&["status", "--stack", "certs"]).success().stdout_has("PENDING_VALIDATION").stdout_has("not issued");

    // In the public zone: issued about a minute later.
    write_cname(&deck, &public, record.name(), record.value());
    poll("the certificate to be issued", || (status_of(&deck, &arn) == "ISSUED").then_some(()));
    let issued = certificate(&deck, &arn);
    assert_eq!(issued.domain_validation_options()[0].validation_status().map(|s| s.as_str()), Some("SUCCESS"));
    assert!(issued.issued_at().is_some() && issued.not_after().is_some(), "{issued:?}");
    let (_, changes) = timeline(&deck);
    let served = entered(&changes, "certificate", &arn, "validation records served").expect("records served");
    let issued_at = entered(&changes, "certificate", &arn, "ISSUED").expect("issued");
    assert_about("certificate validation", issued_at - served, 60.0);
    assert!(served > requested_at + 300.0, "the private zone's record did not count: {changes:#?}");
}

#[test]
fn deckhand_writes_the_validation_cname_then_waits_until_the_certificate_is_issued() {
    let deck = Deck::new();
    create_zone(&deck, "example.com", false);
    let script = r#"
        stack("certs");
        let zone = hosted_zone("example.com");
        certificate(#{ domain: "app.example.com", zone: zone });
    "#;
    let (outcome, requests) = deck.recorded(|| deck.run(script, &[]));
    outcome.success().expect_changes(&["+ certificate app.example.com"]);

    let aws = deck.aws();
    let list = aws.block_on(aws.acm.list_certificates().send()).unwrap();
    let arn = list.certificate_summary_list()[0].certificate_arn().unwrap().to_string();
    assert_eq!(status_of(&deck, &arn), "ISSUED");
    let (_, changes) = timeline(&deck);
    let requested = entered(&changes, "certificate", &arn, "PENDING_VALIDATION").expect("requested");
    let served = entered(&changes, "certificate", &arn, "validation records served").expect("served");
    let issued = entered(&changes, "certificate", &arn, "ISSUED").expect("issued");
    assert!(requested <= served && served < issued, "{changes:#?}");
    assert_about("certificate validation", issued - served, 60.0);

    // deckhand read the certificate again after writing the record, until it was issued.
    let actions = requests.actions();
    let written = actions.iter().position(|a| a.starts_with("POST ") && a.contains("/rrset")).expect("the CNAME");
    assert!(actions[written..].iter().any(|a| a == "DescribeCertificate"), "{actions:?}");
}

#[test]
fn a_certificate_whose_record_never_appears_times_out_after_72_hours() {
    // At 0.00001, 72 modelled hours pass in 2.6 s.
    let deck = Deck::with_emulator_env(&[("DECKHAND_TIME_SCALE", "0.00001")]);
    let arn = request_certificate(&deck, "never.example.com");
    poll("the validation to time out", || (status_of(&deck, &arn) == "VALIDATION_TIMED_OUT").then_some(()));
    let (_, changes) = timeline(&deck);
    let requested = entered(&changes, "certificate", &arn, "PENDING_VALIDATION").expect("requested");
    let timed_out = entered(&changes, "certificate", &arn, "VALIDATION_TIMED_OUT").expect("timed out");
    assert_about("certificate validation timeout", timed_out - requested, 72.0 * 3600.0);
    deck.deckhand(&["status", "--stack", "certs"]).success().stdout_has("VALIDATION_TIMED_OUT");
}

#[test]
fn status_shows_a_pending_nat_gateway_as_pending() {
    // A NAT gateway of the stack that another run (or the console) just created: at 0.05 it is
    // pending for 4.5 s of wall time.
    let deck = Deck::with_emulator_env(&[("DECKHAND_TIME_SCALE", "0.05")]);
    let id = pending_nat_gateway(&deck, &deck.default_subnet_id());

    let state = || {
        let out = deck.deckhand(&["status", "--stack", "priv", "--output", "json"]).success();
        let json: Value = serde_json::from_str(&out.stdout).expect("status JSON");
        let row = json["resources"].as_array().unwrap().iter().find(|r| r["id"] == id.as_str()).cloned();
        row.unwrap_or_else(|| panic!("the NAT gateway in status: {json}"))["state"].as_str().unwrap().to_string()
    };
    let shown = state();
    let (status_done, changes) = timeline(&deck);
    let pending = entered(&changes, "nat_gateway", &id, "pending").expect("created pending");
    assert!(status_done < pending + 90.0, "status ran after the NAT gateway was due to be available");
    assert_eq!(shown, "pending");
    poll("the NAT gateway to become available", || (state() == "available").then_some(()));
}

/// Creates NAT gateway `priv-nat` of stack `priv` in `subnet` as another run (or the console)
/// would, and returns its id: pending for 90 s modelled.
fn pending_nat_gateway(deck: &Deck, subnet: &str) -> String {
    let aws = deck.aws();
    let address = aws.block_on(aws.ec2.allocate_address().send()).unwrap().allocation_id().unwrap().to_string();
    let tags = aws_sdk_ec2::types::TagSpecification::builder()
        .resource_type(aws_sdk_ec2::types::ResourceType::Natgateway)
        .tags(aws_sdk_ec2::types::Tag::builder().key("Name").value("priv-nat").build())
        .tags(aws_sdk_ec2::types::Tag::builder().key("deckhand:stack").value("priv").build())
        .build();
    let nat = aws
        .block_on(aws.ec2.create_nat_gateway().subnet_id(subnet).allocation_id(address).tag_specifications(tags).send())
        .unwrap();
    nat.nat_gateway().unwrap().nat_gateway_id().unwrap().to_string()
}

#[test]
fn a_route_table_sent_ahead_of_the_script_does_not_route_through_a_nat_gateway_left_pending() {
    // An earlier run stopped right after CreateNatGateway: its NAT gateway is pending (4.5 s of
    // wall time at 0.05) and its route table was never created. Every input of the route table is
    // known, so its create could go ahead of the script; but only the NAT
    // gateway's statement defers the wait for it, so the table is created at its own statement,
    // and its route once the NAT gateway is available.
    let deck = Deck::with_emulator_env(&[("DECKHAND_TIME_SCALE", "0.05")]);
    let aws = deck.aws();
    let zone = aws_sdk_ec2::types::Filter::builder().name("availability-zone").values("us-west-2a").build();
    let default = aws_sdk_ec2::types::Filter::builder().name("default-for-az").values("true").build();
    let subnets = aws.block_on(aws.ec2.describe_subnets().filters(zone).filters(default).send()).unwrap();
    let id = pending_nat_gateway(&deck, subnets.subnets()[0].subnet_id().unwrap());

    // A subnet that exists already, so nothing the table names is still to be created.
    let script = r#"
stack("priv");
let vpc = default_vpc();
let nat = nat_gateway(default_subnet(vpc, "us-west-2a"), #{ name: "priv-nat" });
route_table(vpc, #{ name: "priv-private", subnets: [default_subnet(vpc, "us-west-2b")],
                    routes: [#{ cidr: "0.0.0.0/0", nat_gateway: nat }] });
"#;
    deck.run(script, &[])
        .success()
        .stdout_has("= nat_gateway priv-nat")
        .stdout_has("+ route_table priv-private (rtb-")
        .stdout_has("waiting for NAT gateway");
    let (_, changes) = timeline(&deck);
    let available = entered(&changes, "nat_gateway", &id, "available").expect("became available");
    let table = aws.block_on(aws.ec2.describe_route_tables().filters(name_filter("priv-private")).send()).unwrap();
    let table_id = table.route_tables()[0].route_table_id().unwrap();
    let routed = entered(&changes, "route", &format!("{table_id} 0.0.0.0/0"), &format!("to {id}"))
        .expect("a default route to the NAT gateway");
    assert!(routed >= available, "deckhand routed through the NAT gateway while it was pending: {changes:#?}");

    let (second, requests) = deck.recorded(|| deck.run(script, &[]));
    second.success().stdout_has("= route_table priv-private");
    requests.assert_read_only();
}
