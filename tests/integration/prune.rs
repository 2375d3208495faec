//! `deckhand run` converges all the way: what the stack owns but the script no longer declares is
//! listed in the plan and deleted after the creates and updates; what is kept says why; failing
//! scripts, the REPL and `--keep-undeclared` delete nothing; deleting most of a stack needs `--yes`.

use aws_sdk_ec2::types::Filter;

use crate::support::Deck;

const GUIDE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/fargate-alb.rhai");

const TRIM: &str = r#"
stack("trim");
let vpc = default_vpc();
subnet(vpc, #{ name: "trim-a", az: "us-west-2a", cidr: "172.31.96.0/24" });
subnet(vpc, #{ name: "trim-b", az: "us-west-2b", cidr: "172.31.97.0/24" });
security_group(vpc, #{ name: "trim-app", ingress: [#{ port: 8080, cidr: "10.0.0.0/8" }] });
log_group("/ecs/trim", #{ retention_days: 7 });
"#;

const SUBNET_B: &str = r#"subnet(vpc, #{ name: "trim-b", az: "us-west-2b", cidr: "172.31.97.0/24" });"#;
const LOG_GROUP: &str = r#"log_group("/ecs/trim", #{ retention_days: 7 });"#;

fn subnet_id(deck: &Deck, name: &str) -> Option<String> {
    let aws = deck.aws();
    let filter = Filter::builder().name("tag:Name").values(name).build();
    let out = aws.block_on(aws.ec2.describe_subnets().filters(filter).send()).unwrap();
    out.subnets().first().map(|s| s.subnet_id().unwrap().to_string())
}

fn log_group_exists(deck: &Deck, name: &str) -> bool {
    let aws = deck.aws();
    let out = aws.block_on(aws.logs.describe_log_groups().log_group_name_prefix(name).send()).unwrap();
    out.log_groups().iter().any(|g| g.log_group_name() == Some(name))
}

fn security_group_exists(deck: &Deck, name: &str) -> bool {
    let aws = deck.aws();
    let filter = Filter::builder().name("group-name").values(name).build();
    let out = aws.block_on(aws.ec2.describe_security_groups().filters(filter).send()).unwrap();
    !out.security_groups().is_empty()
}

#[test]
fn what_the_script_no_longer_declares_is_deleted_unless_kept_and_never_by_a_failing_script_or_the_repl() {
    let deck = Deck::new();
    deck.run(TRIM, &[]).success().stdout_has("4 created, 0 updated, 0 unchanged");
    let b = subnet_id(&deck, "trim-b").expect("trim-b exists");
    let without_b = TRIM.replace(SUBNET_B, "");

    // The REPL's passes are per statement: it never deletes what a statement does not declare.
    let input = "stack(\"trim\");\nlet vpc = default_vpc();\n\
                 subnet(vpc, #{ name: \"trim-a\", az: \"us-west-2a\", cidr: \"172.31.96.0/24\" });\n";
    let (repl, requests) = deck.recorded(|| deck.repl(&[], input));
    let repl = repl.success();
    assert!(!repl.stdout.contains("no longer declared"), "{}", repl.stdout);
    assert!(requests.actions().iter().any(|a| a == "DescribeSubnets"), "the REPL read the stack");
    assert_eq!(requests.mutating(), Vec::<String>::new(), "only the stack lock's own writes");

    // A script that fails anywhere deletes nothing: the plan pass must complete first.
    let failing = format!("{without_b}\nthrow \"boom\";\n");
    let (failed, requests) = deck.recorded(|| deck.run(&failing, &[]));
    failed.failure().stderr_has("boom");
    requests.assert_read_only();
    assert_eq!(subnet_id(&deck, "trim-b").as_deref(), Some(b.as_str()));

    // --keep-undeclared deletes nothing and says what it left.
    let (kept, requests) = deck.recorded(|| deck.run(&without_b, &["--keep-undeclared"]));
    kept.success()
        .stdout_has(&format!("= kept subnet trim-b ({b}) — no longer declared, kept: --keep-undeclared"))
        .stdout_has("1 resource no longer declared was left in place");
    requests.assert_read_only();
    assert!(subnet_id(&deck, "trim-b").is_some());

    // The plan lists the deletion and counts it; the run deletes exactly it.
    let (plan, requests) = deck.recorded(|| deck.plan(&without_b, &[]));
    plan.success()
        .expect_changes(&["= subnet trim-a", "= security_group trim-app", "= log_group /ecs/trim", "- subnet trim-b"])
        .stdout_has(&format!("- subnet trim-b ({b}) — no longer declared"))
        .stdout_has("Plan: 0 to create, 0 to update, 1 to delete, 3 unchanged");
    requests.assert_read_only();
    let (run, requests) = deck.recorded(|| deck.run(&without_b, &[]));
    run.success()
        .stdout_has(&format!("- subnet trim-b ({b}) deleted"))
        .stdout_has("0 created, 0 updated, 1 deleted, 3 unchanged");
    assert_eq!(requests.mutating(), ["ec2 DeleteSubnet"]);
    assert!(requests.0.iter().any(|r| r.action == "DeleteSubnet" && r.body.contains(&b)), "the planned subnet");
    assert_eq!(subnet_id(&deck, "trim-b"), None);
    assert!(subnet_id(&deck, "trim-a").is_some(), "the declared subnet stays");

    // A log group is kept unless --delete-logs.
    let without_logs = without_b.replace(LOG_GROUP, "");
    let (kept, requests) = deck.recorded(|| deck.run(&without_logs, &[]));
    kept.success().stdout_has("0 created, 0 updated, 2 unchanged");
    requests.assert_read_only();
    assert!(log_group_exists(&deck, "/ecs/trim"));
    let (deleted, requests) = deck.recorded(|| deck.run(&without_logs, &["--delete-logs"]));
    deleted.success().stdout_has("- log_group /ecs/trim deleted").stdout_has("1 deleted");
    assert_eq!(requests.mutating(), ["logs DeleteLogGroup"]);
    assert!(!log_group_exists(&deck, "/ecs/trim"));

    // Deleting more than half of the stack is refused without --yes, saying why.
    let nothing = "stack(\"trim\");\nlet vpc = default_vpc();\n";
    let (refused, requests) = deck.recorded(|| deck.run(nothing, &[]));
    let refused = refused.failure().stderr_has("refusing to delete 2 of the 2 resources of stack trim");
    assert!(refused.stderr.contains("most often the wrong script"), "{}", refused.stderr);
    requests.assert_read_only();
    assert!(subnet_id(&deck, "trim-a").is_some() && security_group_exists(&deck, "trim-app"));
    deck.run(nothing, &["--yes"]).success().stdout_has("0 created, 0 updated, 2 deleted, 0 unchanged");
    assert_eq!(subnet_id(&deck, "trim-a"), None);
    assert!(!security_group_exists(&deck, "trim-app"));
}

/// The guide's load balancing, HTTPS when a certificate is given (as in load_balancing.rs).
const SHOP: &str = r#"
stack("shop");
let vpc = default_vpc();
let alb_sg = security_group(vpc, #{ name: "shop-alb", ingress: [ #{ port: 80, cidr: "0.0.0.0/0" } ] });
let alb = load_balancer(#{ name: "shop", security_groups: [alb_sg],
    subnets: [default_subnet(vpc, "us-west-2a"), default_subnet(vpc, "us-west-2b")] });
let tg = target_group(vpc, #{ name: "shop", port: 8080 });
if vars.cert != () {
    listener(alb, #{ port: 443, certificate: vars.cert, forward: tg });
    listener(alb, #{ port: 80, redirect: #{ port: 443, protocol: "HTTPS", status: 301 } });
} else {
    listener(alb, #{ port: 80, forward: tg });
}
"#;

#[test]
fn dropping_the_https_branch_deletes_the_443_listener_and_forwards_80_again() {
    let deck = Deck::new();
    let certificate = deck.request_certificate();
    deck.run(SHOP, &["--var", &format!("cert={certificate}")]).success().stdout_has("5 created");

    let plan = deck.plan(SHOP, &[]).success();
    let changes = plan.changes();
    assert!(changes.iter().any(|c| c.starts_with("~ listener shop:80")), "{changes:?}");
    assert!(
        changes.last().is_some_and(
            |c| c.starts_with("- listener shop:443 (listener/app/shop/") && c.ends_with("— no longer declared")
        ),
        "{changes:?}"
    );
    plan.stdout_has("Plan: 0 to create, 1 to update, 1 to delete, 3 unchanged");

    let (run, requests) = deck.recorded(|| deck.run(SHOP, &[]));
    run.success().stdout_has("- listener shop:443 (listener/app/shop/").stdout_has("1 deleted");
    let mutating = requests.mutating();
    assert_eq!(mutating, ["elasticloadbalancing ModifyListener", "elasticloadbalancing DeleteListener"]);

    let aws = deck.aws();
    let lb = aws.block_on(aws.elbv2.describe_load_balancers().names("shop").send()).unwrap().load_balancers()[0]
        .load_balancer_arn()
        .unwrap()
        .to_string();
    let listeners = aws.block_on(aws.elbv2.describe_listeners().load_balancer_arn(lb).send()).unwrap();
    let listeners = listeners.listeners();
    assert_eq!(listeners.len(), 1, "{listeners:?}");
    assert_eq!(listeners[0].port(), Some(80));
    let action = &listeners[0].default_actions()[0];
    assert!(action.redirect_config().is_none() && action.target_group_arn().is_some(), "{action:?}");
}

#[test]
fn switching_egress_from_nat_to_endpoints_deletes_the_nat_gateway_and_releases_its_address() {
    let deck = Deck::new();
    deck.deckhand(&["run", GUIDE]).success();
    let aws = deck.aws();
    let stack_filter = || Filter::builder().name("tag:deckhand:stack").values("myapp").build();
    let addresses = aws.block_on(aws.ec2.describe_addresses().filters(stack_filter()).send()).unwrap();
    let allocation = addresses.addresses()[0].allocation_id().unwrap().to_string();

    let plan = deck.deckhand(&["run", "--plan", GUIDE, "--var", "egress=endpoints"]).success();
    let changes = plan.changes();
    let deletions: Vec<&String> = changes.iter().filter(|c| c.starts_with("- ")).collect();
    assert_eq!(deletions.len(), 2, "{changes:?}");
    assert!(deletions[0].starts_with("- nat_gateway myapp-nat (nat-"), "{deletions:?}");
    assert_eq!(*deletions[1], format!("- elastic_ip myapp-nat ({allocation}) — no longer declared"));
    let nat = deletions[0].split(['(', ')']).nth(1).unwrap().to_string();

    let (run, requests) = deck.recorded(|| deck.deckhand(&["run", GUIDE, "--var", "egress=endpoints"]));
    run.success().stdout_has("2 deleted");
    let actions = requests.actions();
    let at =
        |action: &str| actions.iter().position(|a| a == action).unwrap_or_else(|| panic!("no {action}: {actions:?}"));
    // The route to the NAT gateway goes first (an update), then the NAT gateway, then its address.
    assert!(at("DeleteRoute") < at("DeleteNatGateway") && at("DeleteNatGateway") < at("ReleaseAddress"), "{actions:?}");
    assert!(requests.0.iter().any(|r| r.action == "ReleaseAddress" && r.body.contains(&allocation)));

    let addresses = aws.block_on(aws.ec2.describe_addresses().filters(stack_filter()).send()).unwrap();
    assert!(addresses.addresses().is_empty(), "the elastic IP is released");
    let nats = aws.block_on(aws.ec2.describe_nat_gateways().nat_gateway_ids(&nat).send()).unwrap();
    let state = nats.nat_gateways()[0].state().map(|s| s.as_str().to_string());
    assert!(matches!(state.as_deref(), Some("deleted" | "deleting")), "{state:?}");
}

const TWO_SERVICES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/two-services.rhai");

#[test]
fn a_service_dropped_from_a_two_service_script_is_drained_and_deleted_with_its_target_group() {
    let deck = Deck::new();
    let both = std::fs::read_to_string(TWO_SERVICES).unwrap();
    deck.run(&both, &[]).success();
    // The API's declaration and its print go; the web service stays as it was.
    let start = both.find("let api = ").unwrap();
    let end = start + both[start..].find("});").unwrap() + "});".len();
    let web_only = format!("{}{}", &both[..start], &both[end..]).replace("print(`api: ${api.url}`);", "");

    let (plan, requests) = deck.recorded(|| deck.plan(&web_only, &[]));
    let plan = plan.success().stdout_has("to delete");
    requests.assert_read_only();
    let changes = plan.changes();
    let deletions: Vec<&String> = changes.iter().filter(|c| c.starts_with("- ")).collect();
    let position = |prefix: &str| {
        deletions.iter().position(|d| d.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix}: {deletions:?}"))
    };
    // Dependents first: the service and the rule that forwards to it, then its target group,
    // then its security group; the environment's network, cluster and load balancer stay.
    assert!(position("- service shop-api") < position("- target_group shop-api"), "{deletions:?}");
    assert!(position("- listener_rule shop:80#10") < position("- target_group shop-api"), "{deletions:?}");
    assert!(position("- target_group shop-api") < position("- security_group shop-api-app"), "{deletions:?}");
    assert!(
        deletions.iter().all(|d| d.contains("shop-api") || d.starts_with("- listener_rule shop:80#10")),
        "{deletions:?}"
    );
    assert!(changes.iter().any(|c| c.starts_with("= service shop-web")), "{changes:?}");
    // The role its task definition named goes last; the log group stays (--delete-logs).
    assert!(position("- task_definition shop-api") < position("- role shop-api-exec"), "{deletions:?}");
    assert!(plan.stdout.contains("= kept log_group /ecs/shop-api — no longer declared"), "{}", plan.stdout);

    let (run, requests) = deck.recorded(|| deck.run(&web_only, &[]));
    run.success().stdout_has("- service shop-api").stdout_has("deleted");
    let actions = requests.actions();
    let at =
        |action: &str| actions.iter().position(|a| a == action).unwrap_or_else(|| panic!("no {action}: {actions:?}"));
    // The service is deleted and waited for (drained) before its target group goes.
    assert!(at("DeleteService") < at("DeleteTargetGroup"), "{actions:?}");
    let waited = actions[at("DeleteService")..at("DeleteTargetGroup")].iter().any(|a| a == "DescribeServices");
    assert!(waited, "waits for the service to drain: {actions:?}");

    let aws = deck.aws();
    let mut active = Vec::new();
    for cluster in aws.block_on(aws.ecs.list_clusters().send()).unwrap().cluster_arns() {
        let arns = aws.block_on(aws.ecs.list_services().cluster(cluster).send()).unwrap().service_arns().to_vec();
        if arns.is_empty() {
            continue;
        }
        let out = aws.block_on(aws.ecs.describe_services().cluster(cluster).set_services(Some(arns)).send()).unwrap();
        let names = out.services().iter().filter(|s| s.status() == Some("ACTIVE")).filter_map(|s| s.service_name());
        active.extend(names.map(str::to_string));
    }
    assert_eq!(active, ["shop-web"], "the API service is gone, the web service keeps serving");
    let groups = aws.block_on(aws.elbv2.describe_target_groups().send()).unwrap();
    let names: Vec<&str> = groups.target_groups().iter().filter_map(|g| g.target_group_name()).collect();
    assert_eq!(names, ["shop-web"], "only the web target group is left");
    let gone = aws.block_on(aws.iam.get_role().role_name("shop-api-exec").send());
    assert!(gone.is_err_and(|e| e.as_service_error().is_some_and(|e| e.is_no_such_entity_exception())));
    assert!(aws.block_on(aws.iam.get_role().role_name("shop-web-exec").send()).is_ok(), "the web service's role stays");
    // The web service's listener still forwards to it, and the next run changes nothing.
    deck.run(&web_only, &[]).success().stdout_has("no changes");
}

fn ec2_tag(deck: &Deck, id: &str, key: &str) -> Option<String> {
    let aws = deck.aws();
    let filter = Filter::builder().name("resource-id").values(id).build();
    let out = aws.block_on(aws.ec2.describe_tags().filters(filter).send()).unwrap();
    out.tags().iter().find(|t| t.key() == Some(key)).and_then(|t| t.value()).map(str::to_string)
}

fn log_group_tag(deck: &Deck, name: &str, key: &str) -> Option<String> {
    let aws = deck.aws();
    let groups = aws.block_on(aws.logs.describe_log_groups().log_group_name_prefix(name).send()).unwrap();
    let arn = groups.log_groups()[0].log_group_arn().unwrap().to_string();
    let tags = aws.block_on(aws.logs.list_tags_for_resource().resource_arn(arn).send()).unwrap();
    tags.tags().and_then(|t| t.get(key)).cloned()
}

#[test]
fn resources_marked_keep_stay_when_the_script_drops_them_until_unmarked() {
    let deck = Deck::new();
    deck.run(TRIM, &[]).success().stdout_has("4 created");
    let b = subnet_id(&deck, "trim-b").unwrap();

    // Marking is an update of the resource; a new resource is created marked.
    let kept_b = SUBNET_B.replace(" });", ", keep: true });");
    let kept_logs = LOG_GROUP.replace(" });", ", keep: true });");
    let extra = r#"security_group(vpc, #{ name: "trim-extra", keep: true });"#;
    let marked = format!("{}\n{extra}\n", TRIM.replace(SUBNET_B, &kept_b).replace(LOG_GROUP, &kept_logs));
    let (plan, requests) = deck.recorded(|| deck.plan(&marked, &[]));
    plan.success()
        .stdout_has("~ subnet trim-b")
        .stdout_has("keep: false -> true")
        .stdout_has("1 to create, 2 to update");
    requests.assert_read_only();
    let (run, requests) = deck.recorded(|| deck.run(&marked, &[]));
    run.success().stdout_has("1 created, 2 updated, 2 unchanged");
    let mut mutating = requests.mutating();
    mutating.sort();
    assert_eq!(mutating, ["ec2 CreateSecurityGroup", "ec2 CreateTags", "ec2 CreateTags", "logs TagResource"]);
    assert_eq!(ec2_tag(&deck, &b, "deckhand:keep").as_deref(), Some("true"));
    assert_eq!(log_group_tag(&deck, "/ecs/trim", "deckhand:keep").as_deref(), Some("true"));
    let (again, requests) = deck.recorded(|| deck.run(&marked, &[]));
    again.success().stdout_has("no changes");
    requests.assert_read_only();

    // Dropped from the script, they are kept and the plan says why (--delete-logs too).
    let dropped = TRIM.replace(SUBNET_B, "").replace(LOG_GROUP, "");
    let (run, requests) = deck.recorded(|| deck.run(&dropped, &["--delete-logs"]));
    run.success()
        .stdout_has(&format!("= kept subnet trim-b ({b}) — no longer declared, kept: keep: true"))
        .stdout_has("= kept log_group /ecs/trim — no longer declared, kept: keep: true")
        .stdout_has("= kept security_group trim-extra (sg-");
    requests.assert_read_only();
    assert!(subnet_id(&deck, "trim-b").is_some() && log_group_exists(&deck, "/ecs/trim"));

    // Declared again without keep, the mark comes off; then dropping deletes.
    let (run, requests) = deck.recorded(|| deck.run(TRIM, &[]));
    run.success().stdout_has("keep: true -> false");
    let mut mutating = requests.mutating();
    mutating.sort();
    assert_eq!(mutating, ["ec2 DeleteTags", "logs UntagResource"], "trim-extra, still marked, stays");
    assert_eq!(ec2_tag(&deck, &b, "deckhand:keep"), None);
    deck.run(&TRIM.replace(SUBNET_B, ""), &[]).success().stdout_has(&format!("- subnet trim-b ({b}) deleted"));
    assert_eq!(subnet_id(&deck, "trim-b"), None);

    // keep takes true or false, checked before any request.
    let subnet_a = r#"subnet(vpc, #{ name: "trim-a", az: "us-west-2a", cidr: "172.31.96.0/24" });"#;
    let bad = TRIM.replace(subnet_a, &subnet_a.replace(" });", ", keep: \"yes\" });"));
    deck.write("deploy.rhai", &bad);
    let (checked, requests) = deck.recorded(|| deck.deckhand(&["check", "deploy.rhai"]));
    checked.failure().stderr_has("subnet.keep").stderr_has("true or false").stderr_has("--> deploy.rhai:4:");
    requests.assert_none();
    let (run, requests) = deck.recorded(|| deck.run(&bad, &[]));
    run.failure().stderr_has("subnet.keep");
    requests.assert_read_only();
}
