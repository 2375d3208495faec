//! Day-2 options: Graviton (arm64), ephemeral storage and a mixed FARGATE / FARGATE_SPOT strategy
//! converge, show drift and re-run as no-ops; arm64 with Spot is refused before any change.

use aws_sdk_ecs::types::{CapacityProviderStrategyItem, CpuArchitecture, OsFamily};

use crate::support::Deck;

/// A task definition and a service whose cost options the tests replace: `ARCH_AND_STORAGE` in
/// the task definition, `CAPACITY` in the service.
const COST: &str = r#"stack("cost");
let vpc = default_vpc();
let subnets = [subnet(vpc, #{ name: "cost-a", az: "us-west-2a", cidr: "172.31.96.0/24" })];
let cluster = cluster("cost");
let task = task_definition(#{ family: "cost", cpu: 256, memory: 512, ARCH_AND_STORAGE
    containers: [#{ name: "app", image: "nginx:1.25" }] });
let svc = service(cluster, #{ name: "cost", task: task, desired: 1, subnets: subnets, public_ip: true,
    CAPACITY });
"#;

const MIXED: &str =
    r#"capacity: [#{ provider: "FARGATE", base: 1, weight: 1 }, #{ provider: "FARGATE_SPOT", weight: 3 }]"#;

fn cost(task: &str, capacity: &str) -> String {
    COST.replace("ARCH_AND_STORAGE", task).replace("CAPACITY", capacity)
}

fn describe_task(deck: &Deck) -> aws_sdk_ecs::types::TaskDefinition {
    let aws = deck.aws();
    let out = aws.block_on(aws.ecs.describe_task_definition().task_definition("cost").send()).unwrap();
    out.task_definition().unwrap().clone()
}

fn strategy(deck: &Deck) -> Vec<(String, i32, i32)> {
    let aws = deck.aws();
    let out = aws.block_on(aws.ecs.describe_services().cluster("cost").services("cost").send()).unwrap();
    let mut items: Vec<(String, i32, i32)> = out.services()[0]
        .capacity_provider_strategy()
        .iter()
        .map(|i| (i.capacity_provider().to_string(), i.weight(), i.base()))
        .collect();
    items.sort();
    items
}

#[test]
fn arm64_and_ephemeral_storage_converge_show_drift_and_rerun_as_no_ops() {
    let deck = Deck::new();
    deck.run(&cost("", ""), &[]).success();
    let first = describe_task(&deck);
    assert!(first.runtime_platform().is_none(), "x86_64 is what ECS assumes without a runtimePlatform");
    assert!(first.ephemeral_storage().is_none());

    let graviton = cost(r#"arch: "arm64", ephemeral_storage: 50,"#, "");
    let (plan, requests) = deck.recorded(|| deck.plan(&graviton, &[]));
    plan.success()
        .stdout_has("~ task_definition cost")
        .stdout_has("arch: x86_64 -> arm64")
        .stdout_has("ephemeral_storage: 20 GiB -> 50 GiB");
    requests.assert_read_only();

    deck.run(&graviton, &[]).success().stdout_has("~ task_definition cost (cost:1 -> cost:2)");
    let task = describe_task(&deck);
    assert_eq!(task.revision(), 2);
    let platform = task.runtime_platform().expect("runtimePlatform");
    assert_eq!(platform.cpu_architecture(), Some(&CpuArchitecture::Arm64));
    assert_eq!(platform.operating_system_family(), Some(&OsFamily::Linux));
    assert_eq!(task.ephemeral_storage().map(|e| e.size_in_gib()), Some(50));

    let (again, requests) = deck.recorded(|| deck.run(&graviton, &[]));
    again.success().stdout_has("= task_definition cost (cost:2)").stdout_has("= service cost");
    requests.assert_read_only();
}

#[test]
fn a_mixed_spot_strategy_converges_shows_drift_and_reruns_as_a_no_op() {
    let deck = Deck::new();
    deck.run(&cost("", MIXED), &[]).success();
    let wanted = vec![("FARGATE".to_string(), 1, 1), ("FARGATE_SPOT".to_string(), 3, 0)];
    assert_eq!(strategy(&deck), wanted);

    let (again, requests) = deck.recorded(|| deck.run(&cost("", MIXED), &[]));
    again.success().stdout_has("= service cost");
    requests.assert_read_only();

    // Someone moves the service back to FARGATE alone: the plan shows it, the run restores it.
    let aws = deck.aws();
    let fargate = CapacityProviderStrategyItem::builder().capacity_provider("FARGATE").weight(1).build().unwrap();
    aws.block_on(aws.ecs.update_service().cluster("cost").service("cost").capacity_provider_strategy(fargate).send())
        .unwrap();
    assert_eq!(strategy(&deck), [("FARGATE".to_string(), 1, 0)]);
    deck.plan(&cost("", MIXED), &[])
        .success()
        .stdout_has("capacity_provider: FARGATE weight 1 -> FARGATE weight 1 base 1, FARGATE_SPOT weight 3");
    let (restored, requests) = deck.recorded(|| deck.run(&cost("", MIXED), &[]));
    restored.success().stdout_has("~ service cost");
    assert_eq!(requests.mutating(), ["ecs UpdateService"]);
    assert_eq!(strategy(&deck), wanted);
}

#[test]
fn arm64_with_spot_and_conflicting_capacity_options_fail_before_any_change() {
    let deck = Deck::new();
    let cases = [
        (cost(r#"arch: "arm64","#, MIXED), "Fargate Spot does not run Linux ARM64 tasks", "deploy.rhai:7:"),
        (
            cost(r#"arch: "arm64","#, r#"capacity_provider: "FARGATE_SPOT""#),
            "Fargate Spot does not run Linux ARM64 tasks",
            "deploy.rhai:7:",
        ),
        (
            cost("", &format!(r#"capacity_provider: "FARGATE", {MIXED}"#)),
            "either capacity_provider (one provider) or capacity (a strategy), not both",
            "deploy.rhai:7:",
        ),
        (
            cost("", r#"capacity: [#{ provider: "FARGATE", base: 1 }, #{ provider: "FARGATE_SPOT", base: 2 }]"#),
            "a base on one capacity provider only",
            "deploy.rhai:7:",
        ),
        (cost("ephemeral_storage: 20,", ""), "GiB from 21 to 200", "deploy.rhai:5:"),
        (cost(r#"arch: "sparc","#, ""), r#""x86_64" or "arm64""#, "deploy.rhai:5:"),
    ];
    for (script, message, at) in cases {
        let (outcome, requests) = deck.recorded(|| deck.run(&script, &[]));
        outcome.failure().stderr_has(message).stderr_has(at);
        requests.assert_read_only();
    }
    // A cluster without FARGATE_SPOT takes no Spot share.
    let spotless =
        cost("", MIXED).replace(r#"cluster("cost")"#, r#"cluster("cost", #{ capacity_providers: ["FARGATE"] })"#);
    let (outcome, requests) = deck.recorded(|| deck.run(&spotless, &[]));
    outcome.failure().stderr_has(r#""FARGATE_SPOT""#).stderr_has("a capacity provider of cluster cost: FARGATE");
    requests.assert_read_only();
}

#[test]
fn the_bundled_script_refuses_arm64_with_spot() {
    let deck = Deck::new();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/fargate-alb.rhai");
    let (outcome, requests) =
        deck.recorded(|| deck.deckhand(&["run", script, "--var", "arch=arm64", "--var", "spot=true"]));
    outcome.failure().stderr_has("Fargate Spot does not run Linux ARM64 tasks").stderr_has("fargate-alb.rhai:");
    requests.assert_none();
}

// ---------------------------------------------------------------------------------------------
// One-off tasks

/// A migration before the service: run it, check its exit code, deploy. `vars.code` is the
/// migration's exit code, `vars.image` the app's image.
const MIGRATE: &str = r#"stack("jobs");
let vpc = default_vpc();
let subnets = [subnet(vpc, #{ name: "jobs-a", az: "us-west-2a", cidr: "172.31.98.0/24" })];
let cluster = cluster("jobs");
let logs = log_group("/ecs/jobs");
let task = task_definition(#{ family: "jobs", cpu: 256, memory: 512, execution_role: task_execution_role("jobs-exec"),
    containers: [#{ name: "app", image: vars.image ?? "nginx:1.25", logs: logs }] });
let m = run_task(task, #{ cluster: cluster, subnets: subnets, public_ip: true,
    command: `echo migrating; exit ${vars.code ?? 0}`, env: #{ STEP: "migrate" } });
print(`migration exit ${m.exit_code}: ${m.logs}`);
"#;

/// The exit codes of the stopped one-off tasks of cluster `jobs`, through the SDK.
fn stopped_exit_codes(deck: &Deck) -> Vec<i32> {
    let aws = deck.aws();
    aws.block_on(async {
        let listed = aws
            .ecs
            .list_tasks()
            .cluster("jobs")
            .desired_status(aws_sdk_ecs::types::DesiredStatus::Stopped)
            .send()
            .await
            .unwrap();
        if listed.task_arns().is_empty() {
            return Vec::new();
        }
        let tasks =
            aws.ecs.describe_tasks().cluster("jobs").set_tasks(Some(listed.task_arns().to_vec())).send().await.unwrap();
        let mut codes: Vec<i32> =
            tasks.tasks().iter().filter_map(|t| t.containers().first().and_then(|c| c.exit_code())).collect();
        codes.sort();
        codes
    })
}

#[test]
fn run_task_runs_in_the_apply_pass_only_and_returns_the_exit_code() {
    let deck = Deck::new();
    // The plan shows the run on a line of its own, returns no exit code and sends no RunTask.
    let (plan, requests) = deck.recorded(|| deck.plan(MIGRATE, &[]));
    plan.success().stdout_has("! run_task jobs (runs when applied)").stdout_has("migration exit : []");
    requests.assert_read_only();
    assert!(!requests.actions().contains(&"RunTask".to_string()));

    let (first, requests) = deck.recorded(|| deck.run(MIGRATE, &[]));
    first
        .success()
        .stdout_has("run_task jobs: task ")
        .stdout_has("stopped, exit code 0 (Essential container in task exited)")
        .stdout_has(r#"migration exit 0: ["migrating"]"#);
    assert_eq!(requests.actions_of("ecs").iter().filter(|a| *a == "RunTask").count(), 1, "one RunTask, when applied");
    let run = requests.0.iter().find(|r| r.action == "RunTask").unwrap();
    let body: serde_json::Value = serde_json::from_str(&run.body).unwrap();
    let container = &body["overrides"]["containerOverrides"][0];
    assert_eq!(container["command"], serde_json::json!(["sh", "-c", "echo migrating; exit 0"]));
    assert_eq!(container["environment"], serde_json::json!([{ "name": "STEP", "value": "migrate" }]));
    assert_eq!(stopped_exit_codes(&deck), [0]);

    // Nothing to change: no apply pass, so no task.
    let (again, requests) = deck.recorded(|| deck.run(MIGRATE, &["--var", "code=3"]));
    again.success().stdout_has("no changes");
    assert!(!requests.actions().contains(&"RunTask".to_string()));
    assert_eq!(stopped_exit_codes(&deck), [0]);

    // A new image applies a change, so the migration runs first; its exit code reaches the script.
    deck.run(MIGRATE, &["--var", "code=3", "--var", "image=nginx:1.27"])
        .success()
        .stdout_has("stopped, exit code 3")
        .stdout_has(r#"migration exit 3: ["migrating"]"#);
    assert_eq!(stopped_exit_codes(&deck), [0, 3]);
}

/// The stack `jobs` with a service `web` whose task logs to `/ecs/jobs`.
const JOBS_SERVICE: &str = r#"stack("jobs");
let vpc = default_vpc();
let subnets = [subnet(vpc, #{ name: "jobs-a", az: "us-west-2a", cidr: "172.31.98.0/24" })];
let cluster = cluster("jobs");
let task = task_definition(#{ family: "jobs", cpu: 256, memory: 512, execution_role: task_execution_role("jobs-exec"),
    containers: [#{ name: "app", image: "nginx:1.25", logs: log_group("/ecs/jobs") }] });
service(cluster, #{ name: "web", task: task, desired: 1, subnets: subnets, public_ip: true });
"#;

/// The subnet the service `web` of stack `jobs` runs in.
fn jobs_subnet(deck: &Deck) -> String {
    let aws = deck.aws();
    let out = aws.block_on(aws.ecs.describe_services().cluster("jobs").services("web").send()).unwrap();
    let network = out.services()[0].network_configuration().unwrap().awsvpc_configuration().unwrap();
    network.subnets()[0].clone()
}

#[test]
fn task_run_prints_the_containers_logs_and_exits_with_its_exit_code() {
    let deck = Deck::new();
    deck.run(JOBS_SERVICE, &[]).success();
    let args = ["task", "run", "--stack", "jobs", "--service", "web", "--env", "STEP=migrate", "--"];
    let command = ["sh", "-c", "echo migrating; exit 3"];
    let all: Vec<&str> = args.iter().chain(&command).copied().collect();
    let (outcome, requests) = deck.recorded(|| deck.deckhand(&all));
    assert_eq!(outcome.code, 3, "{outcome:?}");
    assert_eq!(outcome.stdout.lines().collect::<Vec<_>>(), ["migrating"], "{outcome:?}");
    let outcome = outcome.stderr_has("started task ").stderr_has("container app exited with 3");
    assert_eq!(requests.mutating(), ["ecs RunTask"], "{outcome:?}");
    let run = requests.0.iter().find(|r| r.action == "RunTask").unwrap();
    let body: serde_json::Value = serde_json::from_str(&run.body).unwrap();
    assert!(body["taskDefinition"].as_str().unwrap().ends_with("task-definition/jobs:1"));
    assert_eq!(body["networkConfiguration"]["awsvpcConfiguration"]["subnets"], serde_json::json!([jobs_subnet(&deck)]));
    let container = &body["overrides"]["containerOverrides"][0];
    assert_eq!((container["name"].as_str(), &container["command"]), (Some("app"), &serde_json::json!(command)));
    assert_eq!(container["environment"], serde_json::json!([{ "name": "STEP", "value": "migrate" }]));
    assert_eq!(stopped_exit_codes(&deck), [3]);

    deck.deckhand(&["task", "run", "--stack", "jobs", "--service", "nope", "--", "true"])
        .failure()
        .stderr_has(r#"invalid --service "nope": a service of stack jobs: web"#);
}

#[test]
fn ctrl_c_during_task_run_stops_the_task() {
    // Modelled at full length, the one-off task runs for 10 s: long enough to press Ctrl-C.
    let deck = Deck::with_emulator_env(&[("DECKHAND_TIME_SCALE", "1")]);
    deck.run(JOBS_SERVICE, &[]).success();
    let steps = serde_json::json!([["", ["started task"]], ["\u{3}", ["stopped task"]]]);
    let args = ["task", "run", "--stack", "jobs", "--service", "web", "--", "sh", "-c", "echo working; exit 0"];
    let (outcome, requests) = deck.recorded(|| deck.terminal(&args, &steps));
    assert!(outcome.stdout.contains("interrupted (Ctrl-C): stopped task"), "{outcome:?}");
    assert_eq!(requests.mutating(), ["ecs RunTask", "ecs StopTask"]);
    let aws = deck.aws();
    let stopped = aws.block_on(async {
        let arn = requests.0.iter().find(|r| r.action == "StopTask").map(|r| {
            let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            body["task"].as_str().unwrap().to_string()
        });
        aws.ecs.describe_tasks().cluster("jobs").tasks(arn.unwrap()).send().await.unwrap()
    });
    let task = &stopped.tasks()[0];
    assert_eq!(task.desired_status(), Some("STOPPED"));
    assert_eq!(task.stopped_reason(), Some("stopped by deckhand task run (Ctrl-C)"));
}

// ---------------------------------------------------------------------------------------------
// ECS Exec

/// The stack `jobs` with ECS Exec on for service `web`, whose task has the stack's task role.
const EXEC_SERVICE: &str = r#"stack("jobs");
let vpc = default_vpc();
let subnets = [subnet(vpc, #{ name: "jobs-a", az: "us-west-2a", cidr: "172.31.98.0/24" })];
let cluster = cluster("jobs");
let app_role = role(#{ name: "jobs-task", trust: "ecs-tasks.amazonaws.com" });
let task = task_definition(#{ family: "jobs", cpu: 256, memory: 512, execution_role: task_execution_role("jobs-exec"),
    task_role: app_role, containers: [#{ name: "app", image: "nginx:1.25", logs: log_group("/ecs/jobs") }] });
let svc = service(cluster, #{ name: "web", task: task, desired: 1, subnets: subnets, public_ip: true, exec: true });
wait_stable(svc);
"#;

/// Runs `deckhand ARGS` with `path` as PATH.
fn deckhand_with_path(deck: &Deck, path: &std::path::Path, args: &[&str]) -> crate::support::Outcome {
    let output = deck.command(env!("CARGO_BIN_EXE_deckhand")).env("PATH", path).args(args).output().unwrap();
    crate::support::Outcome::of(args, output)
}

#[test]
fn exec_hands_the_session_to_the_session_manager_plugin_with_the_aws_clis_arguments() {
    let deck = Deck::new();
    deck.run(EXEC_SERVICE, &[]).success();
    let aws = deck.aws();
    let service = aws.block_on(aws.ecs.describe_services().cluster("jobs").services("web").send()).unwrap();
    assert!(service.services()[0].enable_execute_command());
    let policy =
        aws.block_on(aws.iam.get_role_policy().role_name("jobs-task").policy_name("deckhand-exec").send()).unwrap();
    // The document comes back URL-encoded; the action names read the same either way.
    assert!(policy.policy_document().contains("OpenDataChannel"), "{}", policy.policy_document());
    deck.run(EXEC_SERVICE, &[]).success().stdout_has("= service web");
    deck.deckhand(&["status", "--stack", "jobs"]).success().stdout_has("desired, task jobs:1, exec on");
    let json = deck.deckhand(&["status", "--stack", "jobs", "--output", "json"]).success();
    let json: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(json["services"][0]["exec"], true);

    // A fake plugin first on PATH records its arguments, one a line.
    let bin = deck.dir().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let recorded = deck.dir().join("plugin-args");
    let plugin = bin.join("session-manager-plugin");
    std::fs::write(
        &plugin,
        format!("#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > {}\n", recorded.display()),
    )
    .unwrap();
    std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = std::env::join_paths([bin.clone(), "/usr/bin".into(), "/bin".into()]).unwrap();
    let (outcome, requests) = deck.recorded(|| {
        deckhand_with_path(
            &deck,
            std::path::Path::new(&path),
            &["exec", "--stack", "jobs", "--service", "web", "--", "ls", "/app"],
        )
    });
    outcome.success();
    let exec = requests.0.iter().find(|r| r.action == "ExecuteCommand").expect("ExecuteCommand was sent");
    let body: serde_json::Value = serde_json::from_str(&exec.body).unwrap();
    assert_eq!((body["command"].as_str(), body["interactive"].as_bool()), (Some("ls /app"), Some(true)));

    let args: Vec<String> = std::fs::read_to_string(&recorded).unwrap().lines().map(str::to_string).collect();
    assert_eq!(args.len(), 6, "{args:?}");
    let session: serde_json::Value = serde_json::from_str(&args[0]).unwrap();
    assert!(session["sessionId"].as_str().unwrap().starts_with("ecs-execute-command-"), "{session}");
    assert!(session["streamUrl"].as_str().unwrap().starts_with("wss://ssmmessages.us-west-2.amazonaws.com/"));
    assert!(session["tokenValue"].is_string());
    assert_eq!(args[1..4], ["us-west-2", "StartSession", ""]);
    let tasks = aws.block_on(aws.ecs.list_tasks().cluster("jobs").service_name("web").send()).unwrap();
    let described = aws.block_on(aws.ecs.describe_tasks().cluster("jobs").tasks(&tasks.task_arns()[0]).send()).unwrap();
    let task = &described.tasks()[0];
    let id = task.task_arn().unwrap().rsplit('/').next().unwrap();
    let runtime_id = task.containers()[0].runtime_id().unwrap();
    assert_eq!(args[4], serde_json::json!({ "Target": format!("ecs:jobs_{id}_{runtime_id}") }).to_string());
    assert!(args[5].starts_with("http://"), "the emulator's endpoint: {args:?}");
}

#[test]
fn exec_without_the_plugin_says_how_to_install_it_and_needs_a_task_role() {
    let deck = Deck::new();
    let empty = deck.dir().join("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let (outcome, requests) =
        deck.recorded(|| deckhand_with_path(&deck, &empty, &["exec", "--stack", "jobs", "--service", "web"]));
    outcome
        .failure()
        .stderr_has("deckhand exec needs AWS's session-manager-plugin on PATH")
        .stderr_has("session-manager-working-with-install-plugin.html");
    requests.assert_none();

    let without_role = EXEC_SERVICE.replace("task_role: app_role, ", "");
    let (outcome, requests) = deck.recorded(|| deck.run(&without_role, &[]));
    outcome.failure().stderr_has("a task definition with a task_role").stderr_has("deploy.rhai:8:");
    assert_eq!(requests.mutating(), Vec::<String>::new());
}

#[test]
fn the_bundled_script_with_exec_adds_the_ssmmessages_endpoint_and_a_task_role() {
    let deck = Deck::new();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/fargate-alb.rhai");
    let with = |exec: &str| deck.deckhand(&["run", "--plan", script, "--var", "egress=endpoints", "--var", exec]);
    let plan = with("exec=true").success();
    let plan = plan.stdout_has("+ vpc_endpoint myapp-ssmmessages").stdout_has("+ role myapp-task");
    assert!(!plan.stdout.contains("no ssmmessages endpoint"), "{plan:?}");
    let plain = with("exec=false").success();
    assert!(!plain.stdout.contains("ssmmessages"), "{plain:?}");
}

#[test]
fn exec_into_a_task_started_before_exec_was_on_says_so() {
    let deck = Deck::new();
    let off = EXEC_SERVICE.replace("exec: true", "exec: false");
    deck.run(&off, &[]).success();
    // Turning exec on changes the service in place; its running task stays as it started.
    deck.plan(EXEC_SERVICE, &[]).success().stdout_has("exec: false -> true");
    deck.run(EXEC_SERVICE, &[]).success();
    let bin = deck.dir().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let plugin = bin.join("session-manager-plugin");
    std::fs::write(&plugin, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (outcome, requests) =
        deck.recorded(|| deckhand_with_path(&deck, &bin, &["exec", "--stack", "jobs", "--service", "web"]));
    outcome.failure().stderr_has("started before ECS Exec was turned on for service web");
    assert!(!requests.actions().contains(&"ExecuteCommand".to_string()));
}
