//! ECS rehearsed: the emulator's services take time and go through the states real AWS shows
//! (tasks starting, targets `initial` then `healthy`, old targets `draining`, rollouts
//! IN_PROGRESS then COMPLETED, the circuit breaker's rollback), and deckhand waits on, reports
//! and shows them. What AWS reports is read through the SDK.

use std::time::{Duration, Instant};

use aws_sdk_ecs::types::{AwsVpcConfiguration, ContainerDefinition, LogConfiguration, LogDriver, NetworkConfiguration};

use crate::support::Deck;

const GUIDE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/fargate-alb.rhai");

/// A web app behind a load balancer: its own subnets with public IPs (the default VPC routes them
/// to its internet gateway), the app's security group (by default admitting the load balancer's),
/// a target group whose health checks and draining the vars set, a log group.
const WEB: &str = r#"stack("rehearse");
let vpc = default_vpc();
let subnets = [
    subnet(vpc, #{ name: "rehearse-a", az: "us-west-2a", cidr: "172.31.96.0/24" }),
    subnet(vpc, #{ name: "rehearse-b", az: "us-west-2b", cidr: "172.31.97.0/24" }),
];
let alb_sg = security_group(vpc, #{ name: "rehearse-alb", ingress: [#{ port: 80, cidr: "0.0.0.0/0" }] });
let app_sg = security_group(vpc, #{ name: vars.app_sg ?? "rehearse-app",
    ingress: [#{ port: vars.admits ?? 8080, from: alb_sg }] });
let alb = load_balancer(#{ name: "rehearse", security_groups: [alb_sg],
    subnets: [default_subnet(vpc, "us-west-2a"), default_subnet(vpc, "us-west-2b")] });
let tg = target_group(vpc, #{ name: "rehearse", port: 8080,
    health_check: #{ path: "/", interval: vars.interval ?? 30, healthy: vars.healthy ?? 5 },
    deregistration_delay: vars.drain ?? 300 });
listener(alb, #{ port: 80, forward: tg });
let logs = log_group("/ecs/rehearse", #{ retention_days: 7 });
let task = task_definition(#{ family: "rehearse", cpu: 256, memory: 512,
    execution_role: task_execution_role("rehearse-exec"),
    containers: [#{ name: "app", image: vars.image ?? "nginx:1.25", port: 8080, logs: vars.logs ?? logs }] });
let svc = service(cluster("rehearse"), #{ name: "rehearse", task: task, desired: vars.desired ?? 2, subnets: subnets,
    security_groups: [app_sg], public_ip: true, target_group: tg, container: "app", port: 8080 });
if vars.wait != "no" { wait_stable(svc); }
"#;

/// Polls `probe` (an SDK read) until it returns something, for at most `limit` of wall time.
fn observe<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(start.elapsed() < limit, "never observed: {what}");
        std::thread::yield_now();
    }
}

/// The service's deployments: (id, status, rollout state, task definition).
fn deployments(deck: &Deck) -> Vec<(String, String, String, String)> {
    let aws = deck.aws();
    let out = aws.block_on(aws.ecs.describe_services().cluster("rehearse").services("rehearse").send()).unwrap();
    out.services()[0]
        .deployments()
        .iter()
        .map(|d| {
            (
                d.id().unwrap_or_default().to_string(),
                d.status().unwrap_or_default().to_string(),
                d.rollout_state().map(|r| r.as_str().to_string()).unwrap_or_default(),
                d.task_definition().unwrap_or_default().rsplit('/').next().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The target group's targets: (ip, state).
fn targets(deck: &Deck) -> Vec<(String, String)> {
    let aws = deck.aws();
    let groups =
        aws.block_on(aws.elbv2.describe_target_groups().names("rehearse").send()).unwrap().target_groups().to_vec();
    let arn = groups[0].target_group_arn().unwrap();
    let health = aws.block_on(aws.elbv2.describe_target_health().target_group_arn(arn).send()).unwrap();
    let mut found: Vec<(String, String)> = health
        .target_health_descriptions()
        .iter()
        .map(|d| {
            let id = d.target().and_then(|t| t.id()).unwrap_or_default().to_string();
            (id, d.target_health().and_then(|h| h.state()).map(|s| s.as_str().to_string()).unwrap_or_default())
        })
        .collect();
    found.sort();
    found
}

fn states(targets: &[(String, String)]) -> Vec<&str> {
    targets.iter().map(|(_, state)| state.as_str()).collect()
}

#[test]
fn a_rollout_goes_in_progress_with_initial_targets_then_healthy_and_old_targets_drain_on_an_image_update() {
    // A new target is `initial` until its first health check passes, one interval after its load
    // balancer is active (a healthy threshold applies only to a target recovering): at the
    // longest interval, 300 s, and this time scale, `initial` lasts 3 s of wall time, long enough
    // on a loaded machine for the run to end and the polls to begin.
    let deck = Deck::with_emulator_env(&[("DECKHAND_TIME_SCALE", "0.01")]);
    let slow = |extra: &[&'static str]| [&["--var", "wait=no", "--var", "interval=300"], extra].concat();
    deck.run(WEB, &slow(&[])).success().stdout_has("+ service rehearse");
    let limit = Duration::from_secs(120);

    // The tasks start, register as `initial` while the rollout is in progress, then pass.
    observe("targets initial while the rollout is IN_PROGRESS", limit, || {
        let now = targets(&deck);
        let rolling = deployments(&deck)[0].2 == "IN_PROGRESS";
        (rolling && now.len() == 2 && states(&now) == ["initial", "initial"]).then_some(())
    });
    let first = observe("targets healthy and the rollout COMPLETED", limit, || {
        let now = targets(&deck);
        let done = deployments(&deck).iter().map(|d| d.2.as_str()).collect::<Vec<_>>() == ["COMPLETED"];
        (done && states(&now) == ["healthy", "healthy"]).then_some(now)
    });
    let subnet_of = |ip: &str| ip.starts_with("172.31.96.") || ip.starts_with("172.31.97.");
    assert!(first.iter().all(|(ip, _)| subnet_of(ip)), "each task's IP is in its subnet: {first:?}");

    // An image update: new tasks come up beside the old ones; the old targets drain, then go.
    deck.run(WEB, &slow(&["--var", "image=nginx:1.27"])).success();
    let draining = observe("the old targets draining while the new rollout is IN_PROGRESS", limit, || {
        let now = targets(&deck);
        let rolling = deployments(&deck).first().is_some_and(|d| d.2 == "IN_PROGRESS" && d.3 == "rehearse:2");
        let old: Vec<&(String, String)> =
            now.iter().filter(|t| first.contains(&(t.0.clone(), "healthy".into()))).collect();
        let drained = now.iter().filter(|(ip, state)| state == "draining" && first.iter().any(|f| &f.0 == ip)).count();
        (rolling && !old.is_empty() && drained > 0).then_some(now)
    });
    assert!(draining.iter().any(|(ip, _)| !first.iter().any(|f| &f.0 == ip)), "new targets beside: {draining:?}");
    let last = observe("only the new targets, healthy, and one COMPLETED deployment", limit, || {
        let now = targets(&deck);
        let done = deployments(&deck);
        (done.len() == 1 && done[0].2 == "COMPLETED" && states(&now) == ["healthy", "healthy"]).then_some(now)
    });
    assert!(last.iter().all(|(ip, _)| !first.iter().any(|f| &f.0 == ip)), "the old tasks are gone: {last:?}");
}

#[test]
fn a_new_desired_count_starts_and_stops_tasks_at_the_same_pace() {
    // `initial` for 300 modelled seconds, 3 s of wall time (see above).
    let deck = Deck::with_emulator_env(&[("DECKHAND_TIME_SCALE", "0.01")]);
    let slow = |extra: &[&'static str]| [&["--var", "interval=300"], extra].concat();
    deck.run(WEB, &slow(&[])).success();
    let limit = Duration::from_secs(120);

    // One more task: it starts, registers `initial` beside the two healthy ones, then passes;
    // the deployment stays the one that completed.
    deck.run(WEB, &slow(&["--var", "wait=no", "--var", "desired=3"])).success();
    observe("a third target, initial, beside two healthy ones", limit, || {
        let now = targets(&deck);
        let mut seen = states(&now);
        seen.sort();
        (seen == ["healthy", "healthy", "initial"]).then_some(())
    });
    observe("three healthy targets", limit, || (states(&targets(&deck)) == ["healthy"; 3]).then_some(()));
    let now = deployments(&deck);
    assert_eq!(now.len(), 1, "a new count is no new deployment: {now:?}");
    assert_eq!(now[0].2, "COMPLETED");

    // Down to one: two targets drain, then their tasks stop.
    deck.run(WEB, &slow(&["--var", "wait=no", "--var", "desired=1"])).success();
    observe("two targets draining, one healthy", limit, || {
        let now = targets(&deck);
        let mut seen = states(&now);
        seen.sort();
        (seen == ["draining", "draining", "healthy"]).then_some(())
    });
    observe("one healthy target", limit, || (states(&targets(&deck)) == ["healthy"]).then_some(()));
    let aws = deck.aws();
    let running = aws
        .block_on(
            aws.ecs
                .list_tasks()
                .cluster("rehearse")
                .service_name("rehearse")
                .desired_status(aws_sdk_ecs::types::DesiredStatus::Running)
                .send(),
        )
        .unwrap();
    assert_eq!(running.task_arns().len(), 1);
}

#[test]
fn status_json_lists_the_running_tasks_with_their_ips_and_the_targets_with_their_health() {
    let deck = Deck::new();
    deck.run(WEB, &[]).success().stdout_has("service rehearse is stable: 2/2 running");
    let out = deck.deckhand(&["status", "--stack", "rehearse", "--output", "json"]).success();
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("status JSON");
    let service = &json["services"][0];

    // The tasks and their IPs, as DescribeTasks reports them.
    let aws = deck.aws();
    let arns = aws.block_on(aws.ecs.list_tasks().cluster("rehearse").service_name("rehearse").send()).unwrap();
    let described = aws
        .block_on(aws.ecs.describe_tasks().cluster("rehearse").set_tasks(Some(arns.task_arns().to_vec())).send())
        .unwrap();
    let mut expected: Vec<(String, String)> = described
        .tasks()
        .iter()
        .map(|t| {
            let ip = t.attachments()[0]
                .details()
                .iter()
                .find(|d| d.name() == Some("privateIPv4Address"))
                .and_then(|d| d.value())
                .unwrap()
                .to_string();
            assert_eq!(t.last_status(), Some("RUNNING"));
            assert!(t.containers().iter().all(|c| c.runtime_id().is_some()), "each container has a runtimeId");
            (t.task_arn().unwrap().rsplit('/').next().unwrap().to_string(), ip)
        })
        .collect();
    expected.sort();
    let mut shown: Vec<(String, String)> = service["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            assert_eq!(t["last_status"], "RUNNING");
            (t["id"].as_str().unwrap().to_string(), t["private_ip"].as_str().unwrap().to_string())
        })
        .collect();
    shown.sort();
    assert_eq!(shown, expected);
    assert_eq!(shown.len(), 2);

    // The targets and their health, as DescribeTargetHealth reports them: the tasks' IPs.
    let mut shown_targets: Vec<(String, String)> = service["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["id"].as_str().unwrap().to_string(), t["state"].as_str().unwrap().to_string()))
        .collect();
    shown_targets.sort();
    assert_eq!(shown_targets, targets(&deck));
    let mut ips: Vec<String> = expected.iter().map(|(_, ip)| ip.clone()).collect();
    ips.sort();
    assert_eq!(shown_targets.iter().map(|t| t.0.clone()).collect::<Vec<_>>(), ips);
    assert_eq!(states(&shown_targets), ["healthy", "healthy"]);
}

#[test]
fn a_rollout_whose_tasks_cannot_start_fails_quoting_the_stopped_reason_and_rolls_back() {
    let deck = Deck::new();
    deck.run(WEB, &[]).success();
    // A log group that does not exist: ECS cannot start the awslogs driver.
    deck.run(WEB, &["--var", "logs=/ecs/never-created"])
        .failure()
        .stderr_has("error: service rehearse did not become stable: deployment ecs-svc/")
        .stderr_has("failed: ECS deployment circuit breaker: tasks failed to start.")
        .stderr_has("; the circuit breaker rolled back to rehearse:1 (deployment ecs-svc/")
        .stderr_has("ResourceInitializationError: failed to validate logger args");
    let rolled_back = observe("the rollback deployment completes", Duration::from_secs(120), || {
        let now = deployments(&deck);
        (now.len() == 1 && now[0].2 == "COMPLETED").then_some(now)
    });
    assert_eq!(rolled_back[0].3, "rehearse:1");
}

#[test]
fn an_image_that_cannot_be_pulled_fails_the_rollout_with_cannot_pull_container_error_and_rolls_back() {
    // Needs network.task_network_failure (the `net` branch): endpoints-only egress serves private
    // ECR of the region only, so a Docker Hub image cannot be pulled.
    let deck = Deck::new();
    deck.deckhand(&["run", GUIDE]).success();
    deck.deckhand(&["run", GUIDE, "--var", "egress=endpoints", "--var", "image=nginx:1.27"])
        .failure()
        .stdout_has("warning: tasks without a public IP")
        .stderr_has("failed: ECS deployment circuit breaker: tasks failed to start.")
        .stderr_has("; the circuit breaker rolled back to myapp:1")
        .stderr_has("CannotPullContainerError");
}

#[test]
fn an_app_security_group_that_does_not_admit_the_load_balancer_fails_its_health_checks_and_rolls_back() {
    // Needs network.admits_load_balancer (the `net` branch). The new deployment's tasks use a
    // security group that admits the load balancer on another port only.
    let deck = Deck::new();
    let fast = ["--var", "interval=10", "--var", "healthy=2", "--var", "drain=10"];
    deck.run(WEB, &fast).success();
    let mut args = fast.to_vec();
    args.extend(["--var", "app_sg=rehearse-closed", "--var", "admits=9090"]);
    let out = deck.run(WEB, &args).failure();
    out.stderr_has("failed: ECS deployment circuit breaker: tasks failed to start.")
        .stderr_has("; the circuit breaker rolled back to rehearse:1")
        .stderr_has("Task failed ELB health checks in (target-group arn:aws:elasticloadbalancing:");
}

#[test]
fn a_rollouts_modelled_duration_matches_the_model() {
    const SCALE: f64 = 0.05;
    let deck = Deck::with_emulator_env(&[("DECKHAND_TIME_SCALE", "0.05")]);
    // A healthy threshold of 5 x 30 s would be 150 s: the model's one check (30 s) is told apart.
    let (interval, drain) = (30.0, 20.0);
    let fast = ["--var", "interval=30", "--var", "healthy=5", "--var", "drain=20"];
    deck.run(WEB, &fast).success();
    let mut args = fast.to_vec();
    args.extend(["--var", "image=nginx:1.27"]);
    deck.run(WEB, &args).success().stdout_has("service rehearse is stable");

    let aws = deck.aws();
    let out = aws.block_on(aws.ecs.describe_services().cluster("rehearse").services("rehearse").send()).unwrap();
    let service = &out.services()[0];
    let deployment = &service.deployments()[0];
    let seconds = |t: &aws_smithy_types::DateTime| t.as_secs_f64();
    let created = seconds(deployment.created_at().unwrap());
    let completed = seconds(deployment.updated_at().unwrap());
    let steady = service
        .events()
        .iter()
        .find(|e| e.message().unwrap_or_default().ends_with("has reached a steady state."))
        .map(|e| seconds(e.created_at().unwrap()))
        .unwrap();
    assert!((steady - completed).abs() < 1e-3, "the steady-state event is the completion: {steady} vs {completed}");
    // The model: tasks start in 60 s, their targets pass one health check (one interval: the
    // healthy threshold applies only to a target recovering), then the old targets drain and
    // their tasks stop (5 s STOPPING + 10 s DEPROVISIONING) before the deployment completes.
    let model = 60.0 + interval + drain + 15.0;
    let modelled = (completed - created) / SCALE;
    assert!((modelled - model).abs() <= 0.2 * model, "modelled {modelled:.0} s, the model says {model:.0} s");
}

#[test]
fn run_task_stops_with_the_scripts_exit_code_and_its_echo_lines_are_logged() {
    let deck = Deck::new();
    let aws = deck.aws();
    let subnet = deck.default_subnet_id();
    let task = aws.block_on(async {
        aws.logs.create_log_group().log_group_name("/ecs/migrate").send().await.unwrap();
        aws.ecs.create_cluster().cluster_name("jobs").send().await.unwrap();
        let logs = LogConfiguration::builder()
            .log_driver(LogDriver::Awslogs)
            .options("awslogs-group", "/ecs/migrate")
            .options("awslogs-region", "us-west-2")
            .options("awslogs-stream-prefix", "jobs")
            .build()
            .unwrap();
        aws.ecs
            .register_task_definition()
            .family("migrate")
            .requires_compatibilities(aws_sdk_ecs::types::Compatibility::Fargate)
            .network_mode(aws_sdk_ecs::types::NetworkMode::Awsvpc)
            .cpu("256")
            .memory("512")
            .container_definitions(
                ContainerDefinition::builder()
                    .name("migrate")
                    .image("nginx:1.25")
                    .set_command(Some(vec!["sh".into(), "-c".into(), "echo migrating; exit 3".into()]))
                    .log_configuration(logs)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let network = NetworkConfiguration::builder()
            .awsvpc_configuration(
                AwsVpcConfiguration::builder()
                    .subnets(&subnet)
                    .assign_public_ip(aws_sdk_ecs::types::AssignPublicIp::Enabled)
                    .build()
                    .unwrap(),
            )
            .build();
        let out = aws
            .ecs
            .run_task()
            .cluster("jobs")
            .task_definition("migrate")
            .launch_type(aws_sdk_ecs::types::LaunchType::Fargate)
            .network_configuration(network)
            .send()
            .await
            .unwrap();
        out.tasks()[0].clone()
    });
    assert_eq!(task.last_status(), Some("PROVISIONING"), "a task takes time to start");
    let arn = task.task_arn().unwrap().to_string();
    let stopped = observe("the task stopped", Duration::from_secs(60), || {
        let out = aws.block_on(aws.ecs.describe_tasks().cluster("jobs").tasks(&arn).send()).unwrap();
        out.tasks().first().filter(|t| t.last_status() == Some("STOPPED")).cloned()
    });
    assert_eq!(stopped.containers()[0].exit_code(), Some(3));
    assert_eq!(stopped.stop_code().map(|c| c.as_str()), Some("EssentialContainerExited"));
    let started = stopped.started_at().unwrap().as_secs_f64();
    let ended = stopped.stopped_at().unwrap().as_secs_f64();
    let scale: f64 = crate::support::TEST_TIME_SCALE.parse().unwrap();
    assert!(((ended - started) / scale - 10.0).abs() < 1.0, "it ran 10 s modelled");

    let id = arn.rsplit('/').next().unwrap();
    let events = aws
        .block_on(
            aws.logs
                .get_log_events()
                .log_group_name("/ecs/migrate")
                .log_stream_name(format!("jobs/migrate/{id}"))
                .send(),
        )
        .unwrap();
    let lines: Vec<&str> = events.events().iter().filter_map(|e| e.message()).collect();
    assert_eq!(lines, ["migrating"]);
}
