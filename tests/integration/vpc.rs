//! A dedicated VPC: `new_vpc` (owned, DNS on), `internet_gateway` (attached), public subnets
//! routed to it, `zones(n, vpc)` by zone ID, the owned-vs-lookup rule, and deletion in the order
//! AWS requires (the gateway detached only once nothing maps public addresses in the VPC).

use aws_sdk_ec2::types::{AttributeBooleanValue, Filter, VpcAttributeName};

use crate::support::{Deck, Fault};

const GUIDE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/fargate-alb.rhai");

fn stack_filter(stack: &str) -> Filter {
    Filter::builder().name("tag:deckhand:stack").values(stack).build()
}

fn named(name: &str) -> Filter {
    Filter::builder().name("tag:Name").values(name).build()
}

/// The stack's VPCs, as (id, CIDR).
fn vpcs(deck: &Deck, stack: &str) -> Vec<(String, String)> {
    let aws = deck.aws();
    let out = aws.block_on(aws.ec2.describe_vpcs().filters(stack_filter(stack)).send()).unwrap();
    out.vpcs().iter().map(|v| (v.vpc_id().unwrap().to_string(), v.cidr_block().unwrap().to_string())).collect()
}

/// The stack's internet gateways, as (id, the VPCs it is attached to).
fn gateways(deck: &Deck, stack: &str) -> Vec<(String, Vec<String>)> {
    let aws = deck.aws();
    let out = aws.block_on(aws.ec2.describe_internet_gateways().filters(stack_filter(stack)).send()).unwrap();
    let attached = |g: &aws_sdk_ec2::types::InternetGateway| {
        g.attachments().iter().filter_map(|a| a.vpc_id()).map(str::to_string).collect()
    };
    out.internet_gateways().iter().map(|g| (g.internet_gateway_id().unwrap().to_string(), attached(g))).collect()
}

/// The VPC's DNS support and DNS hostnames attributes.
fn dns(deck: &Deck, vpc: &str) -> (bool, bool) {
    let aws = deck.aws();
    let read = |attribute: VpcAttributeName| {
        let out = aws.block_on(aws.ec2.describe_vpc_attribute().vpc_id(vpc).attribute(attribute.clone()).send());
        let out = out.unwrap();
        let value = match attribute {
            VpcAttributeName::EnableDnsSupport => out.enable_dns_support(),
            _ => out.enable_dns_hostnames(),
        };
        value.and_then(AttributeBooleanValue::value).unwrap()
    };
    (read(VpcAttributeName::EnableDnsSupport), read(VpcAttributeName::EnableDnsHostnames))
}

/// The route table named `name`: its default route's target and its subnets.
fn table(deck: &Deck, name: &str) -> (String, Vec<String>) {
    let aws = deck.aws();
    let out = aws.block_on(aws.ec2.describe_route_tables().filters(named(name)).send()).unwrap();
    assert_eq!(out.route_tables().len(), 1, "one route table {name}");
    let table = &out.route_tables()[0];
    let route =
        table.routes().iter().find(|r| r.destination_cidr_block() == Some("0.0.0.0/0")).expect("a default route");
    let target = route.nat_gateway_id().or(route.gateway_id()).unwrap().to_string();
    let mut subnets: Vec<String> =
        table.associations().iter().filter_map(|a| a.subnet_id()).map(str::to_string).collect();
    subnets.sort();
    (target, subnets)
}

/// The subnets named `names`, sorted by name: (id, VPC, public IP on launch).
fn subnets(deck: &Deck, names: &[&str]) -> Vec<(String, String, bool)> {
    let aws = deck.aws();
    let filter =
        Filter::builder().name("tag:Name").set_values(Some(names.iter().map(|n| n.to_string()).collect())).build();
    let out = aws.block_on(aws.ec2.describe_subnets().filters(filter).send()).unwrap();
    let mut found: Vec<_> = out
        .subnets()
        .iter()
        .map(|s| {
            let name = s.tags().iter().find(|t| t.key() == Some("Name")).and_then(|t| t.value()).unwrap().to_string();
            (
                name,
                s.subnet_id().unwrap().to_string(),
                s.vpc_id().unwrap().to_string(),
                s.map_public_ip_on_launch().unwrap(),
            )
        })
        .collect();
    found.sort();
    assert_eq!(found.len(), names.len(), "subnets {names:?}");
    found.into_iter().map(|(_, id, vpc, public)| (id, vpc, public)).collect()
}

#[test]
fn the_guide_deploys_into_a_new_vpc_reruns_as_a_no_op_and_destroy_leaves_nothing_of_it() {
    let deck = Deck::new();
    let args = ["run", GUIDE, "--var", "vpc_cidr=10.20.0.0/16"];

    let (plan, requests) = deck.recorded(|| deck.deckhand(&["run", "--plan", GUIDE, "--var", "vpc_cidr=10.20.0.0/16"]));
    plan.success()
        .stdout_has("+ vpc myapp ((known after apply), 10.20.0.0/16)")
        .stdout_has("+ internet_gateway myapp ((known after apply), attached to (known after apply))")
        .stdout_has("+ subnet myapp-public-a ((known after apply), us-west-2a, 10.20.0.0/24)")
        .stdout_has("+ subnet myapp-b ((known after apply), us-west-2b, 10.20.11.0/24)");
    requests.assert_read_only();

    deck.deckhand(&args).success();
    let [(vpc, cidr)] = &vpcs(&deck, "myapp")[..] else { panic!("one VPC of the stack") };
    assert_eq!(cidr, "10.20.0.0/16");
    assert_eq!(dns(&deck, vpc), (true, true), "DNS support and DNS hostnames on");
    let [(igw, attached)] = &gateways(&deck, "myapp")[..] else { panic!("one internet gateway of the stack") };
    assert_eq!(attached, std::slice::from_ref(vpc), "the gateway is attached to the new VPC");

    let public = subnets(&deck, &["myapp-public-a", "myapp-public-b"]);
    let private = subnets(&deck, &["myapp-a", "myapp-b"]);
    for (_, subnet_vpc, public_ip) in &public {
        assert_eq!((subnet_vpc, *public_ip), (vpc, true), "public subnets in the VPC, public IPs on launch");
    }
    for (_, subnet_vpc, public_ip) in &private {
        assert_eq!((subnet_vpc, *public_ip), (vpc, false), "private subnets in the VPC, no public IPs");
    }
    let ids = |subnets: &[(String, String, bool)]| {
        let mut ids: Vec<String> = subnets.iter().map(|s| s.0.clone()).collect();
        ids.sort();
        ids
    };
    assert_eq!(table(&deck, "myapp-public"), (igw.clone(), ids(&public)), "public subnets route to the gateway");
    let (nat, routed) = table(&deck, "myapp-private");
    assert!(nat.starts_with("nat-"), "private subnets route to the NAT gateway, not {nat}");
    assert_eq!(routed, ids(&private));
    let aws = deck.aws();
    let nats = aws.block_on(aws.ec2.describe_nat_gateways().nat_gateway_ids(&nat).send()).unwrap();
    assert_eq!(nats.nat_gateways()[0].subnet_id(), Some(public[0].0.as_str()), "the NAT gateway is in a public subnet");
    let balancers = aws.block_on(aws.elbv2.describe_load_balancers().names("myapp").send()).unwrap();
    assert_eq!(balancers.load_balancers()[0].vpc_id(), Some(vpc.as_str()), "the ALB is in the new VPC");

    deck.deckhand(&["status", "--stack", "myapp"])
        .success()
        .stdout_has(&format!("attached to {vpc}"))
        .stdout_has("10.20.0.0/16");

    let (again, requests) = deck.recorded(|| deck.deckhand(&args));
    again.success().stdout_has("= vpc myapp").stdout_has("= internet_gateway myapp");
    assert_eq!(requests.mutating(), Vec::<String>::new(), "a re-run changes nothing");

    let (destroyed, requests) = deck.recorded(|| deck.deckhand(&["destroy", "--stack", "myapp", "--yes"]));
    destroyed.success().stdout_has("- internet_gateway myapp").stdout_has("- vpc myapp");
    let mutating = requests.mutating();
    let at =
        |action: &str| mutating.iter().position(|m| m.ends_with(action)).unwrap_or_else(|| panic!("{action} sent"));
    for before in ["DeleteLoadBalancer", "DeleteNatGateway", "DeleteService"] {
        assert!(at(before) < at("DetachInternetGateway"), "{before} before the gateway is detached: {mutating:?}");
    }
    assert!(at("DetachInternetGateway") < at("DeleteInternetGateway"));
    let ec2: Vec<&String> = mutating.iter().filter(|m| m.starts_with("ec2 ")).collect();
    assert_eq!(ec2.last().map(|m| m.as_str()), Some("ec2 DeleteVpc"), "the VPC goes last of the network: {mutating:?}");
    assert_eq!(vpcs(&deck, "myapp"), Vec::new(), "no VPC of the stack is left");
    assert_eq!(gateways(&deck, "myapp"), Vec::new(), "no internet gateway of the stack is left");
    let left = aws.block_on(aws.ec2.describe_subnets().filters(stack_filter("myapp")).send()).unwrap();
    assert_eq!(left.subnets().len(), 0, "no subnet of the stack is left");
    let left = aws.block_on(aws.ec2.describe_route_tables().filters(stack_filter("myapp")).send()).unwrap();
    assert_eq!(left.route_tables().len(), 0, "no route table of the stack is left");
    let left = aws.block_on(aws.ec2.describe_vpcs().vpc_ids(vpc).send());
    assert!(left.is_err() || left.unwrap().vpcs().is_empty(), "the VPC itself is gone");
}

const OWNED: &str = r#"
stack("net");
let vpc = new_vpc(#{ name: "net", cidr: "10.30.0.0/16" });
let igw = internet_gateway(vpc, #{ name: "net" });
print(`looked up: ${vpc(#{ name: "net" }).id}`);
"#;

#[test]
fn a_vpc_lookup_never_creates_and_never_takes_over_the_stacks_own() {
    let deck = Deck::new();
    let (missing, requests) = deck.recorded(|| deck.run("stack(\"net\");\nvpc(#{ name: \"net\" });\n", &[]));
    missing.failure().stderr_has("no VPC matches \"net\"").stderr_has("--> deploy.rhai:2:1");
    assert_eq!(requests.mutating(), Vec::<String>::new(), "a lookup creates nothing");
    assert_eq!(vpcs(&deck, "net"), Vec::new());

    // Declared with new_vpc, the stack's VPC can be looked up as well: the same VPC.
    let first = deck.run(OWNED, &[]).success().expect_changes(&["+ vpc net (vpc-", "+ internet_gateway net (igw-"]);
    let [(id, _)] = &vpcs(&deck, "net")[..] else { panic!("one VPC of the stack") };
    assert!(first.stdout.contains(&format!("looked up: {id}")), "{}", first.stdout);

    // new_vpc dropped, the lookup kept: the run would delete the VPC the lookup hands out.
    let lookup_only =
        "stack(\"net\");\nlet vpc = vpc(#{ name: \"net\" });\ninternet_gateway(vpc, #{ name: \"net\" });\n";
    let (refused, requests) = deck.recorded(|| deck.run(lookup_only, &[]));
    refused
        .failure()
        .stderr_has(&format!("VPC net ({id}) belongs to stack net (new_vpc created it)"))
        .stderr_has("no longer declares it with new_vpc")
        .stderr_has("--> deploy.rhai:2:11")
        .stderr_has("new_vpc(#{ name: \"net\", cidr: \"10.30.0.0/16\" })");
    assert_eq!(requests.mutating(), Vec::<String>::new(), "nothing changes");
    assert_eq!(vpcs(&deck, "net").len(), 1, "the VPC is still there");
}

#[test]
fn a_plan_of_a_new_vpc_sends_nothing_mutating_and_dns_drift_is_put_back() {
    let deck = Deck::new();
    let (plan, requests) = deck.recorded(|| deck.plan(OWNED, &[]));
    plan.success().expect_changes(&[
        "+ vpc net ((known after apply), 10.30.0.0/16)",
        "+ internet_gateway net ((known after apply), attached to (known after apply))",
    ]);
    requests.assert_read_only();

    deck.run(OWNED, &[]).success();
    let [(id, _)] = &vpcs(&deck, "net")[..] else { panic!("one VPC of the stack") };
    let aws = deck.aws();
    let off = AttributeBooleanValue::builder().value(false).build();
    aws.block_on(aws.ec2.modify_vpc_attribute().vpc_id(id).enable_dns_hostnames(off).send()).unwrap();
    deck.run(OWNED, &[]).success().stdout_has("~ vpc net").stdout_has("dns_hostnames: false -> true");
    assert_eq!(dns(&deck, id), (true, true));

    // A changed block cannot be applied in place: refused, nothing sent.
    let moved = OWNED.replace("10.30.0.0/16", "10.40.0.0/16");
    let (refused, requests) = deck.recorded(|| deck.run(&moved, &[]));
    refused.failure().stderr_has("AWS cannot change a VPC's CIDR in place");
    assert_eq!(requests.mutating(), Vec::<String>::new());
}

const AHEAD: &str = r#"
stack("net");
let vpc = new_vpc(#{ name: "net", cidr: "10.30.0.0/16" });
let igw = internet_gateway(vpc, #{ name: "net" });
subnet(vpc, #{ name: "net-a", az: "us-west-2a", cidr: "10.30.0.0/24", public_ip: true });
"#;

#[test]
fn a_vpc_created_ahead_of_its_statement_is_found_there_with_nothing_read_and_read_once_a_run() {
    let deck = Deck::new();
    let (created, requests) = deck.recorded(|| deck.run(AHEAD, &[]));
    created.success().expect_changes(&["+ vpc net", "+ internet_gateway net", "+ subnet net-a"]);
    let [(vpc, _)] = &vpcs(&deck, "net")[..] else { panic!("one VPC of the stack") };
    assert_eq!(dns(&deck, vpc), (true, true), "DNS support and DNS hostnames on");
    let ec2 = requests.actions_of("ec2");
    let count = |action: &str| ec2.iter().filter(|a| *a == action).count();
    // Created before the script's statements run (with what needs only it, next), so the apply
    // pass finds it in the run's reads: its DNS attributes come from the create, not a read.
    assert_eq!(count("DescribeVpcAttribute"), 0, "nothing read of the new VPC: {ec2:?}");
    assert_eq!(count("ModifyVpcAttribute"), 1, "only DNS hostnames is turned on: {ec2:?}");
    let [(igw, attached)] = &gateways(&deck, "net")[..] else { panic!("one internet gateway of the stack") };
    assert_eq!(attached, std::slice::from_ref(vpc), "{igw} is attached to the VPC");
    let [(_, subnet_vpc, public_ip)] = &subnets(&deck, &["net-a"])[..] else { panic!("one subnet net-a") };
    assert_eq!((subnet_vpc, *public_ip), (vpc, true), "the subnet is in the VPC, public IPs on launch");

    // A re-run with something to create reads the VPC's DNS attributes once in its plan pass and
    // once under the lock (the apply reads the stack afresh), where the first pass that gathers
    // creates reads them for the later ones and the apply pass itself.
    let more = format!("{AHEAD}subnet(vpc, #{{ name: \"net-b\", az: \"us-west-2b\", cidr: \"10.30.1.0/24\" }});\n");
    let (added, requests) = deck.recorded(|| deck.run(&more, &[]));
    added.success().expect_changes(&["= vpc net", "= internet_gateway net", "= subnet net-a", "+ subnet net-b"]);
    let reads = requests.actions_of("ec2").into_iter().filter(|a| a == "DescribeVpcAttribute").count();
    assert_eq!(reads, 4, "DNS support and DNS hostnames read once in the plan, once under the lock");
    assert_eq!(subnets(&deck, &["net-b"])[0].1, *vpc, "the new subnet is in the VPC");
}

#[test]
fn a_vpc_or_gateway_whose_create_ahead_failed_after_aws_made_it_is_converged_by_the_rerun_not_made_twice() {
    // AWS refuses no second VPC or internet gateway of one name: a create sent ahead of the
    // script that fails after AWS made its resource is its statement's error (not sent again),
    // and the re-run converges what was made.
    let denied = "You are not authorized to perform this operation.";
    let deck = Deck::new().with_faults(vec![Fault::ec2("AttachInternetGateway", "UnauthorizedOperation", denied)]);
    deck.run(OWNED, &[]).failure().stderr_has("UnauthorizedOperation");
    assert_eq!(deck.faults().count("AttachInternetGateway"), 1, "the attach refused ahead is not sent again");
    let run = deck.run(OWNED, &[]).success();
    let [(vpc, _)] = &vpcs(&deck, "net")[..] else { panic!("one VPC of the stack") };
    let [(_, attached)] = &gateways(&deck, "net")[..] else { panic!("one internet gateway of the stack") };
    assert_eq!(attached, std::slice::from_ref(vpc), "attached by the re-run");
    run.expect_changes(&["= vpc net", "~ internet_gateway net"]);

    deck.faults().inject(Fault::ec2("ModifyVpcAttribute", "UnauthorizedOperation", denied));
    let other = OWNED.replace("\"net\"", "\"dns\"").replace("10.30.0.0/16", "10.31.0.0/16");
    deck.run(&other, &[]).failure().stderr_has("UnauthorizedOperation");
    let run = deck.run(&other, &[]).success();
    let [(vpc, _)] = &vpcs(&deck, "dns")[..] else { panic!("one VPC of the stack") };
    assert_eq!(dns(&deck, vpc), (true, true), "DNS hostnames turned on by the re-run");
    let [(_, attached)] = &gateways(&deck, "dns")[..] else { panic!("one internet gateway of the stack") };
    assert_eq!(attached, std::slice::from_ref(vpc));
    run.stdout_has("~ vpc dns").stdout_has("dns_hostnames: false -> true");
}

#[test]
fn zones_of_a_new_vpc_are_where_fargate_runs_told_by_zone_id() {
    // us-west-1's zone names map to zone IDs per account; Fargate runs in usw1-az1 and usw1-az3
    // only. This account's us-west-1a is usw1-az2.
    let zones = r#"<DescribeAvailabilityZonesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
<requestId>zones</requestId><availabilityZoneInfo>
<item><zoneName>us-west-1a</zoneName><zoneId>usw1-az2</zoneId><zoneState>available</zoneState><regionName>us-west-1</regionName><zoneType>availability-zone</zoneType></item>
<item><zoneName>us-west-1b</zoneName><zoneId>usw1-az3</zoneId><zoneState>available</zoneState><regionName>us-west-1</regionName><zoneType>availability-zone</zoneType></item>
<item><zoneName>us-west-1c</zoneName><zoneId>usw1-az1</zoneId><zoneState>available</zoneState><regionName>us-west-1</regionName><zoneType>availability-zone</zoneType></item>
</availabilityZoneInfo></DescribeAvailabilityZonesResponse>"#;
    let deck = Deck::new().with_faults(vec![Fault::reply("DescribeAvailabilityZones", zones)]);
    let script = "stack(\"z\");\nlet vpc = new_vpc(#{ name: \"z\", cidr: \"10.9.0.0/16\" });\nprint(zones(2, vpc));\n";
    deck.write("zones.rhai", script);
    deck.deckhand(&["run", "--plan", "--region", "us-west-1", "zones.rhai"])
        .success()
        .stdout_has(r#"["us-west-1b", "us-west-1c"]"#);

    deck.faults().inject(Fault::reply("DescribeAvailabilityZones", zones));
    deck.write("three.rhai", &script.replace("zones(2, vpc)", "zones(3, vpc)"));
    deck.deckhand(&["run", "--plan", "--region", "us-west-1", "three.rhai"])
        .failure()
        .stderr_has("zones(3, vpc): us-west-1 has only 2 zone(s) where Fargate runs: us-west-1b, us-west-1c")
        .stderr_has("Fargate does not run in us-west-1a (usw1-az2)");

    // In us-west-2 Fargate runs in every zone: the first by name.
    deck.plan(script, &[]).success().stdout_has(r#"["us-west-2a", "us-west-2b"]"#);
}

#[test]
fn the_detach_is_retried_while_aws_still_reports_mapped_public_addresses() {
    let deck = Deck::new().with_faults(vec![Fault::ec2(
        "DetachInternetGateway",
        "DependencyViolation",
        "Network {VpcId} has some mapped public address(es). Please unmap those public address(es) before detaching the gateway.",
    )]);
    deck.run(OWNED, &[]).success();
    deck.deckhand(&["destroy", "--stack", "net", "--yes"])
        .success()
        .stdout_has("waiting for internet_gateway net (igw-")
        .stdout_has("still in use (DependencyViolation)");
    assert_eq!(deck.faults().count("DetachInternetGateway"), 2, "detached at the second attempt");
    assert_eq!(gateways(&deck, "net"), Vec::new());
    assert_eq!(vpcs(&deck, "net"), Vec::new());
}

#[test]
fn the_emulator_refuses_the_detach_while_a_nat_gateway_maps_an_address_and_a_vpc_with_a_gateway() {
    // What destroy's order rests on, as AWS does it (DetachInternetGateway, DeleteVpc in the EC2
    // API reference); moto detaches and deletes regardless.
    let deck = Deck::new();
    let script = r#"
stack("held");
let vpc = new_vpc(#{ name: "held", cidr: "10.50.0.0/16" });
let igw = internet_gateway(vpc, #{ name: "held" });
let public_a = subnet(vpc, #{ name: "held-public", az: zones(1, vpc)[0], cidr: "10.50.0.0/24", public_ip: true });
route_table(vpc, #{ name: "held-public", subnets: [public_a], routes: [#{ cidr: "0.0.0.0/0", internet_gateway: igw }] });
nat_gateway(public_a, #{ name: "held" });
"#;
    deck.run(script, &[]).success();
    let [(vpc, _)] = &vpcs(&deck, "held")[..] else { panic!("one VPC") };
    let [(igw, _)] = &gateways(&deck, "held")[..] else { panic!("one gateway") };
    let aws = deck.aws();
    let detach = aws.block_on(aws.ec2.detach_internet_gateway().internet_gateway_id(igw).vpc_id(vpc).send());
    let err = detach.expect_err("refused while the NAT gateway's elastic IP is mapped");
    assert!(format!("{err:?}").contains("has some mapped public address(es)"), "{err:?}");
    let delete = aws.block_on(aws.ec2.delete_vpc().vpc_id(vpc).send());
    assert!(format!("{:?}", delete.expect_err("refused")).contains("DependencyViolation"));
    deck.deckhand(&["destroy", "--stack", "held", "--yes"]).success();
    assert_eq!(vpcs(&deck, "held"), Vec::new());
}

#[test]
fn dropping_new_vpc_from_the_script_deletes_the_gateway_then_the_vpc() {
    let deck = Deck::new();
    deck.run(OWNED, &[]).success();
    let [(id, _)] = &vpcs(&deck, "net")[..] else { panic!("one VPC of the stack") };
    let described = deck.run(&format!("{OWNED}print(`igw in ${{describe(igw).vpc_id}}`);\n"), &[]).success();
    assert!(described.stdout.contains(&format!("igw in {id}")), "{}", described.stdout);

    let (dropped, requests) = deck.recorded(|| deck.run("stack(\"net\");\n", &["--yes"]));
    dropped.success().stdout_has("- internet_gateway net").stdout_has("- vpc net");
    assert_eq!(
        requests.mutating(),
        ["ec2 DetachInternetGateway", "ec2 DeleteInternetGateway", "ec2 DeleteVpc"],
        "the gateway detached and deleted, then the VPC"
    );
    assert_eq!(gateways(&deck, "net"), Vec::new());
    assert_eq!(vpcs(&deck, "net"), Vec::new());
}

#[test]
fn a_vpc_of_that_name_outside_the_stack_is_refused_not_adopted() {
    let deck = Deck::new();
    let aws = deck.aws();
    let name = aws_sdk_ec2::types::Tag::builder().key("Name").value("net").build();
    let tags = aws_sdk_ec2::types::TagSpecification::builder()
        .resource_type(aws_sdk_ec2::types::ResourceType::Vpc)
        .tags(name)
        .build();
    aws.block_on(aws.ec2.create_vpc().cidr_block("10.30.0.0/16").tag_specifications(tags).send()).unwrap();
    let (refused, requests) = deck.recorded(|| deck.run(OWNED, &[]));
    refused
        .failure()
        .stderr_has("a VPC named net already exists (vpc-")
        .stderr_has("it has no deckhand:stack tag")
        .stderr_has("--> deploy.rhai:3:11");
    assert_eq!(requests.mutating(), Vec::<String>::new(), "nothing is created beside it");
    assert_eq!(vpcs(&deck, "net"), Vec::new());
}

#[test]
fn a_kept_vpc_may_be_looked_up_once_new_vpc_no_longer_declares_it() {
    let deck = Deck::new();
    let kept = "stack(\"net\");\nnew_vpc(#{ name: \"net\", cidr: \"10.30.0.0/16\", keep: true });\n";
    deck.run(kept, &[]).success().expect_changes(&["+ vpc net (vpc-"]);
    let [(id, _)] = &vpcs(&deck, "net")[..] else { panic!("one VPC of the stack") };
    deck.run("stack(\"net\");\nprint(`found ${vpc(#{ name: \"net\" }).id}`);\n", &[])
        .success()
        .stdout_has(&format!("found {id}"))
        .stdout_has("= kept vpc net (");
    assert_eq!(vpcs(&deck, "net").len(), 1, "kept");
}

#[test]
fn tasks_with_public_ips_keep_the_gateway_attached_until_their_service_is_deleted() {
    // A task's public IP is a mapped public address of its VPC (DetachInternetGateway refuses),
    // so destroy deletes the service first; moto detaches regardless.
    let deck = Deck::new();
    let script = r#"
stack("pub");
let vpc = new_vpc(#{ name: "pub", cidr: "10.60.0.0/16" });
let igw = internet_gateway(vpc, #{ name: "pub" });
let subnets = [subnet(vpc, #{ name: "pub-a", az: zones(1, vpc)[0], cidr: "10.60.0.0/24", public_ip: true })];
route_table(vpc, #{ name: "pub", subnets: subnets, routes: [#{ cidr: "0.0.0.0/0", internet_gateway: igw }] });
let cluster = cluster("pub");
let task = task_definition(#{ family: "pub", cpu: 256, memory: 512, containers: [#{ name: "app", image: "nginx:1.25" }] });
let svc = service(cluster, #{ name: "pub", task: task, desired: 1, subnets: subnets, public_ip: true });
wait_stable(svc);
"#;
    deck.run(script, &[]).success();
    let [(vpc, _)] = &vpcs(&deck, "pub")[..] else { panic!("one VPC") };
    let [(igw, _)] = &gateways(&deck, "pub")[..] else { panic!("one gateway") };
    let aws = deck.aws();
    let detach = aws.block_on(aws.ec2.detach_internet_gateway().internet_gateway_id(igw).vpc_id(vpc).send());
    let err = detach.expect_err("refused while a task has a public IP");
    assert!(format!("{err:?}").contains("has some mapped public address(es)"), "{err:?}");

    let (destroyed, requests) = deck.recorded(|| deck.deckhand(&["destroy", "--stack", "pub", "--yes"]));
    destroyed.success();
    let mutating = requests.mutating();
    let at =
        |action: &str| mutating.iter().position(|m| m.ends_with(action)).unwrap_or_else(|| panic!("{action} sent"));
    assert!(at("DeleteService") < at("DetachInternetGateway"), "{mutating:?}");
    assert_eq!(gateways(&deck, "pub"), Vec::new());
    assert_eq!(vpcs(&deck, "pub"), Vec::new());
}

#[test]
fn new_vpc_and_internet_gateway_are_validated_before_any_request() {
    let deck = Deck::new();
    let cases = [
        (
            "new_vpc(#{ name: \"x\", cidr: \"10.0.0.0/8\" });",
            "invalid new_vpc.cidr \"10.0.0.0/8\": a block from /16 to /28",
        ),
        ("new_vpc(#{ name: \"x\", cidr: \"10.1.2.0/16\" });", "did you mean 10.1.0.0/16?"),
        ("new_vpc(#{ name: \"x\", cidr: \"10.1.0.0/16\", dns: true });", "dns"),
        ("internet_gateway(default_vpc(), #{ name: \"x\" });", "the default VPC has its internet gateway already"),
    ];
    for (line, error) in cases {
        let (outcome, requests) = deck.recorded(|| deck.run(&format!("stack(\"v\");\n{line}\n"), &[]));
        outcome.failure().stderr_has(error).stderr_has("--> deploy.rhai:2:");
        assert_eq!(requests.mutating(), Vec::<String>::new(), "{line}");
    }
}
