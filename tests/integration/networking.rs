//! Subnets and security groups: converge, plan, drift, all-or-nothing.

use aws_sdk_ec2::types::{Filter, IpPermission, IpRange};

use crate::support::Deck;

const NETWORK: &str = r#"
stack(vars.app ?? "web");
let vpc = default_vpc();
let subnets = [
    subnet(vpc, #{ name: "web-a", az: "us-west-2a", cidr: "172.31.96.0/24" }),
    subnet(vpc, #{ name: "web-b", az: "us-west-2b", cidr: "172.31.97.0/24" }),
];
let alb_sg = security_group(vpc, #{ name: "web-alb", ingress: [ #{ port: 80, cidr: "0.0.0.0/0" } ] });
let app_sg = security_group(vpc, #{ name: "web-app", ingress: [ #{ port: 8080, from: alb_sg } ] });
print(`app sg: ${app_sg.id}`);
"#;

fn stack_subnets(deck: &Deck, stack: &str) -> Vec<aws_sdk_ec2::types::Subnet> {
    let aws = deck.aws();
    let filter = Filter::builder().name("tag:deckhand:stack").values(stack).build();
    aws.block_on(aws.ec2.describe_subnets().filters(filter).send()).unwrap().subnets().to_vec()
}

fn group(deck: &Deck, name: &str) -> aws_sdk_ec2::types::SecurityGroup {
    let aws = deck.aws();
    let filter = Filter::builder().name("group-name").values(name).build();
    aws.block_on(aws.ec2.describe_security_groups().filters(filter).send()).unwrap().security_groups()[0].clone()
}

#[test]
fn apply_creates_then_second_run_changes_nothing() {
    let deck = Deck::new();
    deck.run(NETWORK, &[])
        .success()
        .expect_changes(&[
            "+ subnet web-a (subnet-",
            "+ subnet web-b (subnet-",
            "+ security_group web-alb (sg-",
            "+ security_group web-app (sg-",
        ])
        .stdout_has("4 created, 0 updated, 0 unchanged");

    let (second, requests) = deck.recorded(|| deck.run(NETWORK, &[]));
    second
        .success()
        .expect_changes(&["= subnet web-a", "= subnet web-b", "= security_group web-alb", "= security_group web-app"])
        .stdout_has("0 created, 0 updated, 4 unchanged")
        .stdout_has("no changes");
    requests.assert_read_only();

    // What AWS holds: tagged subnets in two AZs, and the app admitting 8080 from the ALB's group only.
    let subnets = stack_subnets(&deck, "web");
    let mut zones: Vec<_> = subnets.iter().map(|s| s.availability_zone().unwrap().to_string()).collect();
    zones.sort();
    assert_eq!(zones, ["us-west-2a", "us-west-2b"]);
    let alb = group(&deck, "web-alb");
    let app = group(&deck, "web-app");
    let rules = app.ip_permissions();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].from_port(), Some(8080));
    assert!(rules[0].ip_ranges().is_empty());
    assert_eq!(rules[0].user_id_group_pairs()[0].group_id(), alb.group_id());
}

#[test]
fn no_op_run_makes_a_handful_of_reads() {
    let deck = Deck::new();
    deck.run(NETWORK, &[]).success();
    let (second, requests) = deck.recorded(|| deck.run(NETWORK, &[]));
    second.success();
    // The EC2 part of the snapshot: VPCs, AZs, subnets, security groups (the stack's, and those
    // named as the script's in any VPC), internet gateways, NAT gateways, elastic IPs, route tables
    // and endpoints, read once and concurrently with the other services' parts (whose tests bound
    // their own requests).
    let ec2 = requests.0.iter().filter(|r| r.service == "ec2").count();
    assert!(ec2 <= 10, "a no-op run should need at most 10 EC2 requests, sent {:?}", requests.actions());
}

#[test]
fn plan_on_an_empty_account_lists_creates_and_sends_nothing_mutating() {
    let deck = Deck::new();
    let (plan, requests) = deck.recorded(|| deck.plan(NETWORK, &[]));
    plan.success()
        .expect_changes(&[
            "+ subnet web-a ((known after apply), us-west-2a, 172.31.96.0/24)",
            "+ subnet web-b ((known after apply), us-west-2b, 172.31.97.0/24)",
            "+ security_group web-alb ((known after apply))",
            "+ security_group web-app ((known after apply))",
        ])
        .stdout_has("app sg: (known after apply)")
        .stdout_has("Plan: 4 to create, 0 to update, 0 unchanged");
    requests.assert_read_only();
    assert!(stack_subnets(&deck, "web").is_empty());
}

#[test]
fn drifted_rules_are_revoked_and_changed_rules_applied() {
    let deck = Deck::new();
    deck.run(NETWORK, &[]).success();
    let app = group(&deck, "web-app");
    let aws = deck.aws();
    let ssh = IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(22)
        .to_port(22)
        .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
        .build();
    aws.block_on(
        aws.ec2.authorize_security_group_ingress().group_id(app.group_id().unwrap()).ip_permissions(ssh).send(),
    )
    .unwrap();

    let (plan, requests) = deck.recorded(|| deck.plan(NETWORK, &[]));
    plan.success().stdout_has("~ security_group web-app").stdout_has("ingress: - tcp 22 from 0.0.0.0/0");
    requests.assert_read_only();

    deck.run(NETWORK, &[])
        .success()
        .expect_changes(&["= subnet web-a", "= subnet web-b", "= security_group web-alb", "~ security_group web-app"])
        .stdout_has("0 created, 1 updated, 3 unchanged");
    let ports: Vec<_> = group(&deck, "web-app").ip_permissions().iter().map(|p| p.from_port()).collect();
    assert_eq!(ports, [Some(8080)]);

    let changed = NETWORK.replace("port: 80, cidr", "port: 443, cidr");
    deck.run(&changed, &[])
        .success()
        .stdout_has("~ security_group web-alb")
        .stdout_has("ingress: + tcp 443 from 0.0.0.0/0")
        .stdout_has("ingress: - tcp 80 from 0.0.0.0/0");
    let ports: Vec<_> = group(&deck, "web-alb").ip_permissions().iter().map(|p| p.from_port()).collect();
    assert_eq!(ports, [Some(443)]);
}

#[test]
fn a_script_whose_last_line_fails_creates_nothing() {
    let deck = Deck::new();
    let script = format!("{NETWORK}\nnot_a_function(vpc);\n");
    let (outcome, requests) = deck.recorded(|| deck.run(&script, &[]));
    outcome.failure().stderr_has("unknown function").stderr_has("--> deploy.rhai:12:1");
    requests.assert_read_only();
    assert!(stack_subnets(&deck, "web").is_empty());
}

#[test]
fn a_subnet_cannot_move_in_place() {
    let deck = Deck::new();
    deck.run(NETWORK, &[]).success();
    let moved = NETWORK.replace("172.31.97.0/24", "172.31.98.0/24");
    let (outcome, requests) = deck.recorded(|| deck.run(&moved, &[]));
    outcome
        .failure()
        .stderr_has("AWS cannot change a subnet's VPC, AZ or CIDR in place")
        .stderr_has("--> deploy.rhai:6:5");
    requests.assert_read_only();

    let described = NETWORK.replace(r#"name: "web-alb","#, r#"name: "web-alb", description: "public","#);
    let (outcome, requests) = deck.recorded(|| deck.run(&described, &[]));
    outcome
        .failure()
        .stderr_has("AWS cannot change a security group's VPC or description in place")
        .stderr_has(r#"(description: "managed by deckhand" -> "public")"#);
    requests.assert_read_only();
}

#[test]
fn vars_reach_the_script_and_name_the_stack() {
    let deck = Deck::new();
    deck.run(NETWORK, &["--var", "app=shop"]).success();
    assert_eq!(stack_subnets(&deck, "shop").len(), 2);
    assert!(stack_subnets(&deck, "web").is_empty());
}

#[test]
fn check_validates_without_any_request() {
    let deck = Deck::new();
    deck.write("deploy.rhai", NETWORK);
    let (outcome, requests) = deck.recorded(|| deck.deckhand(&["check", "deploy.rhai"]));
    outcome.success().stdout_has("Check passed");
    requests.assert_none();
    let bad = NETWORK.replace("port: 8080", "port: 0");
    deck.write("bad.rhai", &bad);
    deck.deckhand(&["check", "bad.rhai"]).failure().stderr_has("invalid security_group.ingress[0].port 0");
}

#[test]
fn verbose_logs_every_aws_call() {
    let deck = Deck::new();
    deck.write("deploy.rhai", NETWORK);
    deck.deckhand(&["-v", "run", "--plan", "deploy.rhai"])
        .success()
        .stderr_has("ec2 DescribeSubnets ok in")
        .stderr_has("ec2 DescribeSecurityGroups ok in");
}

#[test]
fn local_flag_provisions_and_runs_the_emulator_itself() {
    let deck = Deck::new();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/fargate-alb.rhai");
    let outcome = deck.deckhand(&["run", "--local", script]).success();
    assert!(outcome.stdout.contains("+ subnet myapp-a (subnet-"), "{}", outcome.stdout);
    assert!(outcome.stderr.contains("Local emulator running at http://127.0.0.1:"), "{}", outcome.stderr);
    // It ran against its own emulator, not this test's.
    assert!(stack_subnets(&deck, "myapp").is_empty());
}

#[test]
fn a_same_named_group_outside_the_stack_is_refused_in_the_plan() {
    let deck = Deck::new();
    let aws = deck.aws();
    let vpc = deck.default_vpc_id();
    aws.block_on(aws.ec2.create_security_group().group_name("web-alb").description("hand made").vpc_id(vpc).send())
        .unwrap();
    let (outcome, requests) = deck.recorded(|| deck.run(NETWORK, &[]));
    outcome
        .failure()
        .stderr_has("a security group named web-alb already exists (sg-")
        .stderr_has(" in vpc-")
        .stderr_has("is not part of stack web")
        .stderr_has("--> deploy.rhai:8:14");
    requests.assert_read_only();
    assert!(stack_subnets(&deck, "web").is_empty(), "nothing was created");
}

#[test]
fn two_subnets_of_one_script_may_not_overlap() {
    let deck = Deck::new();
    let script = NETWORK.replace("172.31.97.0/24", "172.31.96.128/25");
    let (outcome, requests) = deck.recorded(|| deck.run(&script, &[]));
    outcome.failure().stderr_has("it overlaps subnet web-a of this script (172.31.96.0/24, us-west-2a)");
    requests.assert_read_only();
}

#[test]
fn confirm_shows_the_plan_and_applies_only_on_yes() {
    let deck = Deck::new();
    deck.write("deploy.rhai", NETWORK);
    let steps = serde_json::json!([
        ["", ["+ subnet web-a", "Plan: 4 to create", "Apply these changes? [y/N] "]],
        ["n\r", ["Nothing applied."]]
    ]);
    let (declined, requests) = deck.recorded(|| deck.terminal(&["run", "--confirm", "deploy.rhai"], &steps));
    assert_eq!(declined.code, 0, "{}\n{}", declined.stderr, declined.stdout);
    requests.assert_read_only();
    assert!(stack_subnets(&deck, "web").is_empty());

    let steps =
        serde_json::json!([["", ["Apply these changes? [y/N] "]], ["y\r", ["4 created, 0 updated, 0 unchanged"]]]);
    let accepted = deck.terminal(&["run", "--confirm", "deploy.rhai"], &steps);
    assert_eq!(accepted.code, 0, "{}\n{}", accepted.stderr, accepted.stdout);
    assert_eq!(stack_subnets(&deck, "web").len(), 2);
}

#[test]
fn the_emulator_command_keeps_a_local_stack_across_commands() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let deck = Deck::new();
    let mut emulator = Command::new(env!("CARGO_BIN_EXE_deckhand"))
        .arg("emulator")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("deckhand emulator starts");
    let mut lines = BufReader::new(emulator.stdout.take().unwrap()).lines();
    let endpoint_line = lines.next().expect("an export line").unwrap();
    let endpoint = endpoint_line.strip_prefix("export AWS_ENDPOINT_URL=").expect("the endpoint first").to_string();
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
    assert_eq!(
        lines.next().unwrap().unwrap(),
        "export AWS_REGION=us-west-2 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test"
    );

    deck.write("deploy.rhai", NETWORK);
    let against = |args: &[&str]| {
        let output = deck
            .command(env!("CARGO_BIN_EXE_deckhand"))
            .env("AWS_ENDPOINT_URL", &endpoint)
            .args(args)
            .output()
            .unwrap();
        crate::support::Outcome::of(args, output)
    };
    against(&["run", "deploy.rhai"]).success().stdout_has("4 created");
    against(&["run", "deploy.rhai"]).success().stdout_has("0 created, 0 updated, 4 unchanged");
    against(&["destroy", "--stack", "web", "--yes"]).success().stdout_has("4 deleted");
    assert!(stack_subnets(&deck, "web").is_empty(), "the test's own emulator was never touched");

    emulator.kill().unwrap();
    emulator.wait().unwrap();
    let port: u16 = endpoint.rsplit(':').next().unwrap().parse().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(std::time::Instant::now() < deadline, "the emulator outlived deckhand");
        std::thread::yield_now();
    }
}
