//! `deckhand rollback`: a deployment in progress is stopped with StopServiceDeployment(ROLLBACK);
//! otherwise the service redeploys the task definition of its last deployment that completed
//! before the current one (not revision N-1). What the service runs afterwards is read through the
//! SDK; what was sent, from the emulator's recorder.

use std::time::{Duration, Instant};

use aws_sdk_ecs::types::{ServiceDeploymentStatus, StopServiceDeploymentStopType as StopType};

use crate::support::Deck;

/// A web service behind a load balancer (its rollouts wait for health checks) and, with
/// `--var second=true`, a worker beside it in the same cluster.
const APP: &str = r#"stack("rb");
let vpc = default_vpc();
let subnets = [
    subnet(vpc, #{ name: "rb-a", az: "us-west-2a", cidr: "172.31.96.0/24" }),
    subnet(vpc, #{ name: "rb-b", az: "us-west-2b", cidr: "172.31.97.0/24" }),
];
let alb_sg = security_group(vpc, #{ name: "rb-alb", ingress: [#{ port: 80, cidr: "0.0.0.0/0" }] });
let app_sg = security_group(vpc, #{ name: "rb-app", ingress: [#{ port: 8080, from: alb_sg }] });
let alb = load_balancer(#{ name: "rb", security_groups: [alb_sg],
    subnets: [default_subnet(vpc, "us-west-2a"), default_subnet(vpc, "us-west-2b")] });
let tg = target_group(vpc, #{ name: "rb", port: 8080, health_check: #{ path: "/", interval: 150, healthy: 5 },
    deregistration_delay: 10 });
listener(alb, #{ port: 80, forward: tg });
let logs = log_group("/ecs/rb", #{ retention_days: 7 });
let role = task_execution_role("rb-exec");
let task = task_definition(#{ family: "rb", cpu: 256, memory: 512, execution_role: role,
    containers: [#{ name: "app", image: vars.image ?? "nginx:1.25", port: 8080, logs: vars.logs ?? logs }] });
let cluster = cluster("rb");
let web = service(cluster, #{ name: "web", task: task, desired: 2, subnets: subnets,
    security_groups: [app_sg], public_ip: true, target_group: tg, container: "app", port: 8080 });
if vars.second == true {
    let worker = task_definition(#{ family: "rb-worker", cpu: 256, memory: 512, execution_role: role,
        containers: [#{ name: "worker", image: "busybox:1.36", logs: logs }] });
    service(cluster, #{ name: "worker", task: worker, desired: 1, subnets: subnets,
        security_groups: [app_sg], public_ip: true });
}
if vars.wait != "no" { wait_stable(web); }
"#;

/// The task definition (`family:revision`) service `name` of stack rb runs, as DescribeServices says.
fn running(deck: &Deck, name: &str) -> String {
    let aws = deck.aws();
    let out = aws.block_on(aws.ecs.describe_services().cluster("rb").services(name).send()).unwrap();
    out.services()[0].task_definition().unwrap_or_default().rsplit('/').next().unwrap_or_default().to_string()
}

/// Service web's deployments as ECS records them, newest first: (ARN, status, task definition
/// as `family:revision`).
fn service_deployments(deck: &Deck, statuses: &[ServiceDeploymentStatus]) -> Vec<(String, String, String)> {
    let aws = deck.aws();
    let listed = aws
        .block_on(
            aws.ecs
                .list_service_deployments()
                .cluster("rb")
                .service("web")
                .set_status((!statuses.is_empty()).then(|| statuses.to_vec()))
                .send(),
        )
        .unwrap();
    let mut found: Vec<_> = listed.service_deployments().to_vec();
    found.sort_by(|a, b| b.created_at().unwrap().as_secs_f64().total_cmp(&a.created_at().unwrap().as_secs_f64()));
    found
        .iter()
        .map(|d| {
            let revision = d.target_service_revision_arn().unwrap();
            let described =
                aws.block_on(aws.ecs.describe_service_revisions().service_revision_arns(revision).send()).unwrap();
            let task =
                described.service_revisions()[0].task_definition().unwrap().rsplit('/').next().unwrap().to_string();
            (d.service_deployment_arn().unwrap().to_string(), d.status().unwrap().as_str().to_string(), task)
        })
        .collect()
}

#[test]
fn rollback_redeploys_the_last_completed_deployments_task_definition_not_the_revision_before() {
    let deck = Deck::new();
    deck.run(APP, &[]).success();
    // Revision 2 never runs: its log group does not exist, the circuit breaker rolls it back.
    deck.run(APP, &["--var", "logs=/ecs/never-created"]).failure().stderr_has("circuit breaker");
    observe("the circuit breaker's rollback to rb:1 completes", || {
        let aws = deck.aws();
        let out = aws.block_on(aws.ecs.describe_services().cluster("rb").services("web").send()).unwrap();
        let deployments = out.services()[0].deployments();
        deployments.len() == 1 && deployments[0].rollout_state().is_some_and(|s| s.as_str() == "COMPLETED")
    });
    deck.run(APP, &["--var", "image=nginx:1.27"]).success();
    assert_eq!(running(&deck, "web"), "rb:3");

    let (out, requests) = deck.recorded(|| deck.deckhand(&["rollback", "--stack", "rb"]));
    out.success()
        .stdout_has("Redeploying rb:1 (UpdateService)")
        .stdout_has("service web is stable")
        .stdout_has("Rolled back: service web runs rb:1 (app=nginx:1.25) again, in place of rb:3 (app=nginx:1.27).")
        .stdout_has("the next `deckhand run` deploys the image it names again, as its plan shows (`~ service web`");
    // rb:1, the last deployment that completed (SUCCESSFUL) before rb:3's, not rb:2.
    assert_eq!(running(&deck, "web"), "rb:1");
    assert_eq!(requests.mutating(), ["ecs UpdateService"]);
    let locked = requests.0.iter().any(|r| r.action == "PutParameter" && r.body.contains("/deckhand/locks/rb"));
    assert!(locked, "it holds the stack lock: {:?}", requests.actions());
    let update = requests.0.iter().find(|r| r.action == "UpdateService").unwrap();
    assert!(update.body.contains("task-definition/rb:1\""), "UpdateService asks for rb:1: {}", update.body);
    let newest = &service_deployments(&deck, &[])[0];
    assert_eq!((newest.1.as_str(), newest.2.as_str()), ("SUCCESSFUL", "rb:1"), "the redeployment completed");

    // The unchanged script deploys its own image again: its plan shows the service's change.
    deck.plan(APP, &["--var", "image=nginx:1.27"])
        .success()
        .stdout_has("~ service web")
        .stdout_has("task_definition: rb:1 -> rb:3");

    // Twice, it goes back to where it was: the newest completed deployment (rb:1's, the rollback's
    // own) runs what runs now, the one before it ran rb:3.
    deck.deckhand(&["rollback", "--stack", "rb"]).success().stdout_has("Rolled back: service web runs rb:3");
    assert_eq!(running(&deck, "web"), "rb:3");
}

#[test]
fn rollback_stops_a_rolling_deployment_in_progress_and_the_service_ends_on_the_old_revision_but_refuses_a_first_one() {
    // The rehearsal's time scale: the new revision's tasks take 60 s to start and their targets
    // 150 s to pass their first health check (one interval; 7.5 s at this scale), so the
    // deployment is still in progress when rollback runs.
    let deck = Deck::with_emulator_env(&[("DECKHAND_TIME_SCALE", "0.05")]);
    // The service's first deployment has nothing before it: refused, nothing sent.
    deck.run(APP, &["--var", "wait=no"]).success();
    let (out, requests) = deck.recorded(|| deck.deckhand(&["rollback", "--stack", "rb"]));
    out.failure().stderr_has("is its first: there is nothing before it to roll back to");
    assert_eq!(requests.mutating(), Vec::<String>::new());
    observe("rb:1's deployment completes", || {
        service_deployments(&deck, &[]).first().is_some_and(|d| d.1 == "SUCCESSFUL")
    });
    deck.run(APP, &["--var", "image=nginx:1.27", "--var", "wait=no"]).success();
    let in_progress = [ServiceDeploymentStatus::Pending, ServiceDeploymentStatus::InProgress];
    let deploying = service_deployments(&deck, &in_progress);
    assert_eq!(deploying.len(), 1, "rb:2's deployment is in progress: {deploying:?}");
    assert_eq!(deploying[0].2, "rb:2");

    let (out, requests) = deck.recorded(|| deck.deckhand(&["rollback", "--stack", "rb", "--service", "web"]));
    out.success()
        .stdout_has("Service web is deploying rb:2 (deployment ")
        .stdout_has("stopping it with a rollback (StopServiceDeployment ROLLBACK)")
        .stdout_has("Rolled back: service web runs rb:1 (app=nginx:1.25) again; deployment ")
        .stdout_has(" of rb:2 (app=nginx:1.27) was stopped and rolled back by ECS.");
    assert_eq!(requests.mutating(), ["ecs StopServiceDeployment"]);
    let stop = &requests.0.iter().find(|r| r.action == "StopServiceDeployment").unwrap().body;
    assert!(stop.contains(&deploying[0].0) && stop.contains("\"ROLLBACK\""), "StopServiceDeployment(ROLLBACK): {stop}");

    // ECS rolled the deployment back, and the service runs the old revision.
    let aws = deck.aws();
    let described =
        aws.block_on(aws.ecs.describe_service_deployments().service_deployment_arns(&deploying[0].0).send()).unwrap();
    assert_eq!(described.service_deployments()[0].status(), Some(&ServiceDeploymentStatus::RollbackSuccessful));
    assert_eq!(running(&deck, "web"), "rb:1");
    let out = aws.block_on(aws.ecs.describe_services().cluster("rb").services("web").send()).unwrap();
    let service = &out.services()[0];
    assert_eq!((service.running_count(), service.deployments().len()), (2, 1), "only rb:1's tasks run");
}

#[test]
fn rollback_of_a_deployment_already_rolling_back_only_watches_it() {
    let deck = Deck::with_emulator_env(&[("DECKHAND_TIME_SCALE", "0.05")]);
    deck.run(APP, &[]).success();
    deck.run(APP, &["--var", "image=nginx:1.27", "--var", "wait=no"]).success();
    let in_progress = [ServiceDeploymentStatus::Pending, ServiceDeploymentStatus::InProgress];
    let deploying = service_deployments(&deck, &in_progress);
    assert_eq!(deploying.len(), 1, "rb:2's deployment is in progress: {deploying:?}");
    // Someone else (the console, a script's check) stopped it first.
    let aws = deck.aws();
    let stop = aws.ecs.stop_service_deployment().service_deployment_arn(&deploying[0].0).stop_type(StopType::Rollback);
    aws.block_on(stop.send()).unwrap();

    let (out, requests) = deck.recorded(|| deck.deckhand(&["rollback", "--stack", "rb"]));
    out.success().stdout_has("is already rolling back (ROLLBACK_").stdout_has("Rolled back: service web runs rb:1");
    assert_eq!(requests.mutating(), Vec::<String>::new(), "nothing stopped twice");
    let described =
        aws.block_on(aws.ecs.describe_service_deployments().service_deployment_arns(&deploying[0].0).send()).unwrap();
    assert_eq!(described.service_deployments()[0].status(), Some(&ServiceDeploymentStatus::RollbackSuccessful));
    assert_eq!(running(&deck, "web"), "rb:1");
}

#[test]
fn rollback_of_a_stack_with_several_services_names_them_and_changes_nothing() {
    let deck = Deck::new();
    deck.run(APP, &["--var", "second=true"]).success();
    let (out, requests) = deck.recorded(|| deck.deckhand(&["rollback", "--stack", "rb"]));
    out.failure()
        .stderr_has("error: stack rb has 2 services (web, worker): which one to roll back?")
        .stderr_has("hint: name it: deckhand rollback --stack rb --service web");
    assert_eq!(requests.mutating(), Vec::<String>::new());

    deck.deckhand(&["rollback", "--stack", "rb", "--service", "api"])
        .failure()
        .stderr_has("invalid --service \"api\": a service of stack rb: web, worker");
    // One deployment only: nothing completed before it.
    let (out, requests) = deck.recorded(|| deck.deckhand(&["rollback", "--stack", "rb", "--service", "worker"]));
    out.failure().stderr_has("service worker has no deployment that completed before the current one (rb-worker:1)");
    assert_eq!(requests.mutating(), Vec::<String>::new());
    assert_eq!(running(&deck, "worker"), "rb-worker:1");
}

/// Polls `probe` (SDK reads) until it holds, for at most two minutes of wall time.
fn observe(what: &str, mut probe: impl FnMut() -> bool) {
    let start = Instant::now();
    while !probe() {
        assert!(start.elapsed() < Duration::from_secs(120), "never observed: {what}");
        std::thread::yield_now();
    }
}
