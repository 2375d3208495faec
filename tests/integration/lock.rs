//! The stack lock: two concurrent applies of one stack create everything once; a stale lock is
//! taken over by the next run, which says so, and `deckhand unlock` clears one too; a killed run's
//! lock is taken over on the same host; a renewed lock is not stale however long its run waits;
//! two runs taking over one stale lock end with one holder; a held lock makes a run wait, then
//! give up; plans never take it; errors release it.

use std::process::Stdio;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_ec2::types::Filter;

use crate::support::{Deck, Fault, Outcome, Requests};

const GUIDE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/fargate-alb.rhai");
const LOCK: &str = "/deckhand/locks/myapp";

const LOGS: &str = r#"
stack("myapp");
log_group("/ecs/locked", #{ retention_days: 7 });
"#;

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Puts a lock held by a live run elsewhere, taken `age_secs` ago. Its renewal time (the
/// holder's clock) is an hour ahead: the lock stays fresh for the whole test, however long it
/// takes at the test's scale (stale after 5 s without renewal).
fn hold_lock(deck: &Deck, holder: &str, age_secs: u64) {
    put_lock(deck, holder, now() - age_secs, now() + 3600);
}

/// Puts a lock of a run that died elsewhere: taken and last renewed `age_secs` ago.
fn hold_stale_lock(deck: &Deck, holder: &str, age_secs: u64) {
    put_lock(deck, holder, now() - age_secs, now() - age_secs);
}

fn put_lock(deck: &Deck, holder: &str, started: u64, renewed: u64) {
    let value = serde_json::json!({
        "holder": holder, "pid": 4242, "command": "deckhand run deploy.rhai", "started_unix": started,
        "token": "someone-else", "renewed_unix": renewed,
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

/// Asserts that a recorded run took the stack lock before `change` and released it after: a
/// PutParameter of the lock (Overwrite=false), then `change`, then a DeleteParameter of the lock.
/// Callers check that the lock did not exist before the run, so the PutParameter created it.
fn assert_locked_around(requests: &Requests, change: &str) {
    let of_lock = |action: &str| {
        requests.0.iter().position(|r| {
            r.action == action && serde_json::from_str::<serde_json::Value>(&r.body).is_ok_and(|b| b["Name"] == LOCK)
        })
    };
    let actions = requests.actions();
    let taken = of_lock("PutParameter").unwrap_or_else(|| panic!("the lock was never taken: {actions:?}"));
    let released = of_lock("DeleteParameter").unwrap_or_else(|| panic!("the lock was never released: {actions:?}"));
    let changed = actions.iter().position(|a| a == change).unwrap_or_else(|| panic!("no {change} in {actions:?}"));
    assert!(taken < changed && changed < released, "the lock is held around {change}: {actions:?}");
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
    assert_locked_around(&requests, "CreateLogGroup");
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
    // The SDK sent it again (and renewals may have written it since).
    assert!(deck.faults().count("PutParameter") >= 2, "{}", deck.faults().count("PutParameter"));
    assert!(log_group_exists(&deck));
    assert_eq!(lock_value(&deck), None, "and the run released it");
}

#[test]
fn an_error_in_the_apply_pass_releases_the_lock() {
    let deck = Deck::new();
    // The ARN is known only after the create, so the plan passes and the apply fails.
    let script =
        format!("{LOGS}\nlet g = log_group(\"/ecs/other\"); if g.arn.starts_with(\"arn:\") {{ throw \"boom\"; }}");
    assert_eq!(lock_value(&deck), None);
    let (failed, requests) = deck.recorded(|| deck.run(&script, &[]));
    failed.failure().stderr_has("boom");
    assert!(log_group_exists(&deck), "the apply pass ran");
    assert_locked_around(&requests, "CreateLogGroup");
    assert_eq!(lock_value(&deck), None, "the failed run released its lock");
}

#[test]
fn a_stale_lock_is_taken_over_by_the_next_run_and_unlock_clears_one_too() {
    let deck = Deck::new();
    // Not renewed for 2 hours (a run renews its lock every minute): its run died elsewhere.
    hold_stale_lock(&deck, "ci@build-7", 2 * 3600 + 5 * 60);
    deck.deckhand(&["unlock", "--stack", "myapp"])
        .success()
        .stdout_has("Removed the lock of stack myapp, held by ci@build-7 (pid 4242, deckhand run deploy.rhai)")
        .stdout_has("(2h 5m ago)");
    assert_eq!(lock_value(&deck), None);
    deck.deckhand(&["unlock", "--stack", "myapp"]).success().stdout_has("Stack myapp is not locked");

    hold_stale_lock(&deck, "ci@build-7", 2 * 3600 + 5 * 60);
    let run = deck
        .run(LOGS, &[])
        .success()
        .stderr_has("Took over the lock of stack myapp from ci@build-7 (pid 4242, deckhand run deploy.rhai) since ")
        .stderr_has("(2h 5m ago)")
        .stderr_has("last renewed 2h 5m ago");
    assert!(!run.stderr.contains("waiting for the stack lock"), "a stale lock is taken over at once: {run:?}");
    run.expect_changes(&["+ log_group /ecs/locked"]);
    assert!(log_group_exists(&deck));
    assert_eq!(lock_value(&deck), None, "the run released the lock it took over");
}

/// A stack with a service whose tasks never run (their awslogs group does not exist, so each stops
/// before it runs and ECS launches another; no circuit breaker gives up): `wait_stable` waits until
/// its timeout.
const NEVER_STABLE: &str = r#"stack("myapp");
let vpc = default_vpc();
let subnets = [
    subnet(vpc, #{ name: "myapp-a", az: "us-west-2a", cidr: "172.31.96.0/24" }),
    subnet(vpc, #{ name: "myapp-b", az: "us-west-2b", cidr: "172.31.97.0/24" }),
];
let sg = security_group(vpc, #{ name: "myapp-app", ingress: [ #{ port: 8080, cidr: "172.31.0.0/16" } ] });
let task = task_definition(#{ family: "myapp", cpu: 256, memory: 512, execution_role: task_execution_role("myapp-exec"),
    containers: [ #{ name: "app", image: "nginx:1.25", port: 8080, logs: "/ecs/never-created" } ] });
let svc = service(cluster("myapp"), #{ name: "myapp", task: task, desired: 2, subnets: subnets,
    security_groups: [sg], public_ip: true, circuit_breaker: false });
"#;

/// Starts `deckhand run deploy.rhai ARGS` with `source` in the background.
fn spawn_run(deck: &Deck, name: &str, source: &str, args: &[&str]) -> std::process::Child {
    deck.write(name, source);
    deck.command(env!("CARGO_BIN_EXE_deckhand"))
        .args(["run", name])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("deckhand starts")
}

/// Polls (no sleep beyond a short pause) until `done` holds, for at most `seconds`.
fn poll_until(what: &str, seconds: u64, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "{what} within {seconds} s");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_killed_run_s_lock_is_taken_over_on_the_same_host() {
    let deck = Deck::new();
    deck.run(NEVER_STABLE, &[]).success();
    // Scales the service and waits for it (2000 s modelled: 10 s of wall time) under the lock.
    let waiting = NEVER_STABLE.replace("desired: 2", "desired: 3") + "wait_stable(svc, #{ timeout: 2000 });";
    let mut killed = spawn_run(&deck, "wait.rhai", &waiting, &[]);
    let pid = killed.id();
    poll_until("the run takes the lock", 60, || {
        lock_value(&deck).is_some_and(|v| v.contains(&format!("\"pid\":{pid}")))
    });
    killed.kill().expect("kill -9");
    killed.wait().expect("the killed run is reaped");
    assert!(lock_value(&deck).is_some(), "kill -9 left the lock behind");

    // The next run on this host finds the lock's process gone (its pid and start time) and takes
    // it over at once, without `deckhand unlock`. (The killed run may have scaled the service
    // already: the re-run adds a log group, so that it has a change to apply under the lock.)
    let rerun =
        NEVER_STABLE.replace("desired: 2", "desired: 3") + r#"log_group("/ecs/locked", #{ retention_days: 7 });"#;
    let next = deck
        .run(&rerun, &[])
        .success()
        .stdout_has("+ log_group /ecs/locked")
        .stderr_has("Took over the lock of stack myapp from ")
        .stderr_has(&format!("(pid {pid}, deckhand run wait.rhai)"))
        .stderr_has(&format!("its process (pid {pid}) no longer runs on this host"));
    assert!(!next.stderr.contains("waiting for the stack lock"), "{next:?}");
    let aws = deck.aws();
    let services = aws.block_on(aws.ecs.describe_services().cluster("myapp").services("myapp").send()).unwrap();
    assert_eq!(services.services()[0].desired_count(), 3, "the run went on and converged");
    assert_eq!(lock_value(&deck), None, "and released the lock");
}

#[test]
fn a_renewed_lock_is_not_stale_however_long_its_run_waits() {
    // At the test scale a lock is stale after 5 s not renewed (the floor); the first run waits
    // for its service 10 s (2000 s modelled) while the second waits for the lock.
    let deck = Deck::new();
    deck.run(NEVER_STABLE, &[]).success();
    let waiting = NEVER_STABLE.replace("desired: 2", "desired: 3") + "wait_stable(svc, #{ timeout: 2000 });";
    let first = spawn_run(&deck, "wait.rhai", &waiting, &[]);
    let pid = first.id();
    poll_until("the first run takes the lock", 60, || {
        lock_value(&deck).is_some_and(|v| v.contains(&format!("\"pid\":{pid}")))
    });
    let second_script =
        NEVER_STABLE.replace("desired: 2", "desired: 3") + r#"log_group("/ecs/locked", #{ retention_days: 7 });"#;
    let second = spawn_run(&deck, "second.rhai", &second_script, &["--lock-timeout", "2h"]);
    // The holder renews its lock: the renewal time moves on from the start.
    poll_until("a renewal", 30, || {
        let Some(value) = lock_value(&deck) else { return false };
        let value: serde_json::Value = serde_json::from_str(&value).unwrap();
        value["renewed_unix"].as_u64() > value["started_unix"].as_u64().map(|s| s + 6)
    });

    let first = Outcome::of(&["run", "wait.rhai"], first.wait_with_output().unwrap())
        .failure()
        .stderr_has("did not become stable");
    assert!(!first.stderr.contains("no longer this run's"), "the first run kept its lock: {first:?}");
    let second = Outcome::of(&["run", "second.rhai"], second.wait_with_output().unwrap())
        .success()
        .stderr_has("waiting for the stack lock")
        .stderr_has(&format!("(pid {pid}, deckhand run wait.rhai)"));
    assert!(!second.stderr.contains("Took over"), "a renewed lock is not stale: {second:?}");
    second.stdout_has("+ log_group /ecs/locked");
    assert_eq!(lock_value(&deck), None);
}

#[test]
fn a_run_whose_lock_is_removed_stops_at_its_next_renewal() {
    let deck = Deck::new();
    deck.run(NEVER_STABLE, &[]).success();
    let waiting = NEVER_STABLE.replace("desired: 2", "desired: 3") + "wait_stable(svc, #{ timeout: 2000 });";
    let run = spawn_run(&deck, "wait.rhai", &waiting, &[]);
    let pid = run.id();
    poll_until("the run takes the lock", 60, || {
        lock_value(&deck).is_some_and(|v| v.contains(&format!("\"pid\":{pid}")))
    });
    deck.deckhand(&["unlock", "--stack", "myapp", "--force"]).success();
    let started = std::time::Instant::now();
    let run = Outcome::of(&["run", "wait.rhai"], run.wait_with_output().unwrap())
        .failure()
        .stderr_has("the lock of stack myapp was removed")
        .stderr_has("stopped before changing anything more");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "stopped at a renewal, not at the wait's end: {run:?}"
    );
    assert_eq!(lock_value(&deck), None, "and did not put the lock back");
}

#[test]
fn two_runs_taking_over_one_stale_lock_end_with_one_holder() {
    let deck = Deck::new();
    hold_stale_lock(&deck, "ci@build-7", 3600);
    let (a, b) = (
        spawn_run(&deck, "a.rhai", LOGS, &["--lock-timeout", "2h"]),
        spawn_run(&deck, "b.rhai", LOGS, &["--lock-timeout", "2h"]),
    );
    let a = Outcome::of(&["run", "a.rhai"], a.wait_with_output().unwrap()).success();
    let b = Outcome::of(&["run", "b.rhai"], b.wait_with_output().unwrap()).success();
    let took_over = [&a, &b].iter().filter(|o| o.stderr.contains("Took over the lock of stack myapp")).count();
    assert_eq!(took_over, 1, "one took the stale lock over, the other waited for it:\n{a:?}\n{b:?}");
    // Under the lock, the second reads the log group the first created: one create.
    let created = |o: &Outcome| o.changes().iter().filter(|l| l.starts_with("+ log_group /ecs/locked")).count();
    assert_eq!(created(&a) + created(&b), 1, "a:\n{a:?}\nb:\n{b:?}");
    assert!(log_group_exists(&deck));
    assert_eq!(lock_value(&deck), None, "both released it, and the stale one is gone");
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
    let deck = Deck::new();
    let script = NEVER_STABLE;
    // Created first (without the terminal's deadline), so the interrupted run only scales and waits.
    deck.run(script, &[]).success();
    deck.write("deploy.rhai", &(script.replace("desired: 2", "desired: 3") + "wait_stable(svc, #{ timeout: 300 });"));
    let steps = serde_json::json!([["", ["waiting for service myapp"]], ["\u{3}", ["interrupted (Ctrl-C)"]]]);
    assert_eq!(lock_value(&deck), None);
    let (outcome, requests) = deck.recorded(|| deck.terminal(&["run", "deploy.rhai"], &steps));
    let outcome = outcome.failure();
    assert!(outcome.stdout.contains("interrupted (Ctrl-C) while waiting for service myapp"), "{outcome:?}");
    assert_locked_around(&requests, "UpdateService");
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
