//! The stack lock: two concurrent applies of one stack create everything once; a stale lock is
//! reported with its holder and age and `deckhand unlock` clears it; a held lock makes a run wait,
//! then give up; plans never take it; errors release it.

use std::process::Stdio;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_ec2::types::Filter;

use crate::support::{Deck, Fault, Outcome};

const GUIDE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/fargate-alb.rhai");
const LOCK: &str = "/deckhand/locks/myapp";

const LOGS: &str = r#"
stack("myapp");
log_group("/ecs/locked", #{ retention_days: 7 });
"#;

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Puts a lock held by someone else, taken `age_secs` ago.
fn hold_lock(deck: &Deck, holder: &str, age_secs: u64) {
    let value = serde_json::json!({
        "holder": holder, "pid": 4242, "command": "deckhand run deploy.rhai", "started_unix": now() - age_secs,
    });
    let aws = deck.aws();
    aws.block_on(aws.ssm.put_parameter().name(LOCK).value(value.to_string()).r#type("String".into()).send())
        .expect("PutParameter");
}

/// The lock parameter's value, if it exists.
fn lock_value(deck: &Deck) -> Option<String> {
    let aws = deck.aws();
    match aws.block_on(aws.ssm.get_parameter().name(LOCK).send()) {
        Ok(out) => out.parameter().and_then(|p| p.value()).map(str::to_string),
        Err(err) if err.as_service_error().is_some_and(|e| e.is_parameter_not_found()) => None,
        Err(err) => panic!("GetParameter: {err:?}"),
    }
}

fn log_group_exists(deck: &Deck) -> bool {
    let aws = deck.aws();
    let out = aws.block_on(aws.logs.describe_log_groups().log_group_name_prefix("/ecs/locked").send()).unwrap();
    !out.log_groups().is_empty()
}

fn count_tagged<T>(items: &[T], tags: impl Fn(&T) -> Vec<(String, String)>) -> usize {
    items.iter().filter(|item| tags(item).iter().any(|(k, v)| k == "deckhand:stack" && v == "myapp")).count()
}

#[test]
fn two_concurrent_applies_of_one_stack_create_everything_once() {
    let deck = Deck::new();
    // The lock timeout is modelled time like every wait (1 m by default: 0.3 s at the test's
    // scale), while the other run's apply is mostly local work, which no scale shortens: wait
    // long enough (2 h: 36 s of wall time) for it.
    let spawn = || {
        deck.command(env!("CARGO_BIN_EXE_deckhand"))
            .args(["run", GUIDE, "--lock-timeout", "2h"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("deckhand starts")
    };
    let (first, second) = (spawn(), spawn());
    let first = Outcome::of(&["run", GUIDE], first.wait_with_output().unwrap()).success();
    let second = Outcome::of(&["run", GUIDE], second.wait_with_output().unwrap()).success();

    // Exactly one of them created the NAT gateway; the other, under the lock, read it afresh.
    let created = |o: &Outcome| o.changes().iter().filter(|l| l.starts_with("+ nat_gateway myapp-nat")).count();
    assert_eq!(created(&first) + created(&second), 1, "first:\n{first:?}\nsecond:\n{second:?}");

    let aws = deck.aws();
    let nats = aws.block_on(aws.ec2.describe_nat_gateways().send()).unwrap();
    let live: Vec<_> =
        nats.nat_gateways().iter().filter(|n| n.state().is_some_and(|s| s.as_str() != "deleted")).cloned().collect();
    let tags = |t: &[aws_sdk_ec2::types::Tag]| {
        t.iter().map(|t| (t.key().unwrap_or("").to_string(), t.value().unwrap_or("").to_string())).collect()
    };
    assert_eq!(count_tagged(&live, |n| tags(n.tags())), 1, "one NAT gateway: {live:#?}");
    let eips = aws.block_on(aws.ec2.describe_addresses().send()).unwrap();
    assert_eq!(count_tagged(eips.addresses(), |a| tags(a.tags())), 1, "one elastic IP: {eips:#?}");
    let stack_filter = Filter::builder().name("tag:deckhand:stack").values("myapp").build();
    let tables = aws.block_on(aws.ec2.describe_route_tables().filters(stack_filter).send()).unwrap();
    assert_eq!(tables.route_tables().len(), 1, "one route table: {tables:#?}");
    assert_eq!(lock_value(&deck), None, "both runs released the lock");

    // A third run is a no-op: read-only, without taking the lock.
    let (third, requests) = deck.recorded(|| deck.deckhand(&["run", GUIDE]));
    third.success().stdout_has("no changes");
    requests.assert_read_only();
}

#[test]
fn an_apply_takes_and_releases_the_lock_and_a_plan_never_takes_it() {
    let deck = Deck::new();
    let (plan, requests) = deck.recorded(|| deck.plan(LOGS, &[]));
    plan.success().expect_changes(&["+ log_group /ecs/locked"]);
    requests.assert_read_only();
    assert!(!requests.actions().iter().any(|a| a == "PutParameter"), "--plan took the lock: {:?}", requests.actions());

    let (apply, requests) = deck.recorded(|| deck.run(LOGS, &[]));
    apply.success().expect_changes(&["+ log_group /ecs/locked"]);
    let actions = requests.actions();
    let at = |name: &str| actions.iter().position(|a| a == name).unwrap_or_else(|| panic!("no {name} in {actions:?}"));
    assert!(at("PutParameter") < at("CreateLogGroup"), "the lock comes before the change: {actions:?}");
    assert!(at("CreateLogGroup") < at("DeleteParameter"), "and is released after it: {actions:?}");
    let put = requests.0.iter().find(|r| r.action == "PutParameter").unwrap();
    let body: serde_json::Value = serde_json::from_str(&put.body).expect("a JSON body");
    assert_eq!(body["Name"], LOCK);
    assert_eq!(body["Overwrite"], false);
    assert!(body["Tags"].as_array().unwrap().iter().any(|t| t["Key"] == "deckhand:stack" && t["Value"] == "myapp"));
    let value: serde_json::Value = serde_json::from_str(body["Value"].as_str().unwrap()).unwrap();
    assert!(value["holder"].as_str().unwrap().contains('@'), "holder is user@host: {value}");
    assert!(value["pid"].as_u64().is_some() && value["command"].as_str().unwrap().starts_with("deckhand run"));
    assert_eq!(lock_value(&deck), None);

    // status and check take no lock either, and the lock parameter is no stack resource.
    let (status, requests) = deck.recorded(|| deck.deckhand(&["status", "--stack", "myapp"]));
    let status = status.success();
    assert!(!status.stdout.contains("/deckhand/locks"), "{}", status.stdout);
    requests.assert_read_only();
}

#[test]
fn a_lost_reply_to_taking_the_lock_keeps_the_lock() {
    // The first PutParameter succeeds, its reply is lost, and the SDK's retry finds the parameter
    // (ParameterAlreadyExists): the value it holds is this run's, so the run goes on.
    let deck = Deck::new().with_faults(vec![Fault::lost_reply("PutParameter")]);
    deck.run(LOGS, &[]).success().expect_changes(&["+ log_group /ecs/locked"]);
    assert_eq!(deck.faults().injected(), ["PutParameter -> lost reply"]);
    assert_eq!(deck.faults().count("PutParameter"), 2, "the SDK sent it again");
    assert!(log_group_exists(&deck));
    assert_eq!(lock_value(&deck), None, "and the run released it");
}

#[test]
fn an_error_in_the_apply_pass_releases_the_lock() {
    let deck = Deck::new();
    // The ARN is known only after the create, so the plan passes and the apply fails.
    let script =
        format!("{LOGS}\nlet g = log_group(\"/ecs/other\"); if g.arn.starts_with(\"arn:\") {{ throw \"boom\"; }}");
    deck.run(&script, &[]).failure().stderr_has("boom");
    assert!(log_group_exists(&deck), "the apply pass ran");
    assert_eq!(lock_value(&deck), None, "the failed run released its lock");
}

#[test]
fn a_stale_lock_is_reported_with_holder_and_age_and_unlock_clears_it() {
    let deck = Deck::new();
    hold_lock(&deck, "ci@build-7", 2 * 3600 + 5 * 60);

    let failed = deck.run(LOGS, &[]).failure();
    let failed = failed
        .stderr_has("stack myapp is locked by ci@build-7 (pid 4242, deckhand run deploy.rhai) since ")
        .stderr_has("(2h 5m ago)")
        .stderr_has("stale")
        .stderr_has("deckhand unlock --stack myapp");
    assert!(!failed.stderr.contains("waiting for the stack lock"), "a stale lock is reported at once");
    assert!(!log_group_exists(&deck), "nothing was applied");
    assert!(lock_value(&deck).is_some_and(|v| v.contains("ci@build-7")), "the foreign lock stays");

    deck.deckhand(&["unlock", "--stack", "myapp"])
        .success()
        .stdout_has("Removed the lock of stack myapp, held by ci@build-7 (pid 4242, deckhand run deploy.rhai)")
        .stdout_has("(2h 5m ago)");
    assert_eq!(lock_value(&deck), None);
    deck.deckhand(&["unlock", "--stack", "myapp"]).success().stdout_has("Stack myapp is not locked");

    deck.run(LOGS, &[]).success().expect_changes(&["+ log_group /ecs/locked"]);
    assert!(log_group_exists(&deck));
}

#[test]
fn a_held_lock_makes_runs_wait_then_give_up_and_unlock_needs_force() {
    let deck = Deck::new();
    hold_lock(&deck, "alice@other-host", 30);

    deck.run(LOGS, &["--lock-timeout", "2s"])
        .failure()
        .stderr_has("waiting for the stack lock")
        .stderr_has("stack myapp is being applied by alice@other-host (pid 4242, deckhand run deploy.rhai) since ")
        .stderr_has("gave up after waiting 2s")
        .stderr_has("--lock-timeout");
    assert!(!log_group_exists(&deck));

    // A REPL statement that declares resources takes the lock too; a query does not.
    deck.repl(&["--lock-timeout", "1s"], "stack(\"myapp\");\nclusters()\n").success();
    deck.repl(&["--lock-timeout", "1s"], "stack(\"myapp\");\nlog_group(\"/ecs/locked\")\n")
        .failure()
        .stderr_has("stack myapp is being applied by alice@other-host");
    assert!(!log_group_exists(&deck));

    deck.deckhand(&["unlock", "--stack", "myapp"]).failure().stderr_has("may still be going").stderr_has("--force");
    assert!(lock_value(&deck).is_some());
    deck.deckhand(&["unlock", "--stack", "myapp", "--force"]).success().stdout_has("held by alice@other-host");
    assert_eq!(lock_value(&deck), None);

    deck.repl(&[], "stack(\"myapp\");\nlog_group(\"/ecs/locked\")\n").success();
    assert!(log_group_exists(&deck));
    assert_eq!(lock_value(&deck), None, "the REPL statement released its lock");
}

#[test]
fn ctrl_c_during_the_apply_stops_it_and_releases_the_lock() {
    // No task ever runs, so wait_stable waits until Ctrl-C.
    let deck = Deck::with_emulator_env(&[("MOTO_ECS_SERVICE_RUNNING", "0")]);
    let script = r#"stack("myapp");
let vpc = default_vpc();
let subnets = [
    subnet(vpc, #{ name: "myapp-a", az: "us-west-2a", cidr: "172.31.96.0/24" }),
    subnet(vpc, #{ name: "myapp-b", az: "us-west-2b", cidr: "172.31.97.0/24" }),
];
let sg = security_group(vpc, #{ name: "myapp-app", ingress: [ #{ port: 8080, cidr: "172.31.0.0/16" } ] });
let task = task_definition(#{ family: "myapp", cpu: 256, memory: 512, execution_role: task_execution_role("myapp-exec"),
    containers: [ #{ name: "app", image: "nginx:1.25", port: 8080 } ] });
let svc = service(cluster("myapp"), #{ name: "myapp", task: task, desired: 2, subnets: subnets,
    security_groups: [sg], public_ip: true });
"#;
    // Created first (without the terminal's deadline), so the interrupted run only scales and waits.
    deck.run(script, &[]).success();
    deck.write("deploy.rhai", &(script.replace("desired: 2", "desired: 3") + "wait_stable(svc, #{ timeout: 300 });"));
    let steps = serde_json::json!([["", ["waiting for service myapp"]], ["\u{3}", ["interrupted (Ctrl-C)"]]]);
    let outcome = deck.terminal(&["run", "deploy.rhai"], &steps).failure();
    assert!(outcome.stdout.contains("interrupted (Ctrl-C) while waiting for service myapp"), "{outcome:?}");
    assert_eq!(lock_value(&deck), None, "the interrupted run released its lock");
}

#[test]
fn destroy_holds_the_lock_and_its_plan_does_not() {
    let deck = Deck::new();
    deck.run(LOGS, &[]).success();
    hold_lock(&deck, "bob@ci-runner", 10);
    let (plan, requests) = deck.recorded(|| deck.deckhand(&["destroy", "--stack", "myapp", "--plan", "--delete-logs"]));
    plan.success().stdout_has("/ecs/locked");
    requests.assert_read_only();
    deck.deckhand(&["destroy", "--stack", "myapp", "--yes", "--delete-logs", "--lock-timeout", "0"])
        .failure()
        .stderr_has("stack myapp is being applied by bob@ci-runner");
    assert!(log_group_exists(&deck), "nothing was deleted");
    deck.deckhand(&["unlock", "--stack", "myapp", "--force"]).success();
    deck.deckhand(&["destroy", "--stack", "myapp", "--yes", "--delete-logs"]).success();
    assert!(!log_group_exists(&deck));
    assert_eq!(lock_value(&deck), None);
}
