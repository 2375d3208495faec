//! Safe deploys (issue 25): a service's `deploy` strategy (blue/green, canary, linear) with the
//! alternate target group, listener rules and infrastructure role deckhand creates for ECS, alarms
//! that roll a deployment back, and ECS's own moves (swapped target groups, rule weights) taken as
//! the script's, not as drift. What AWS holds is read through the SDK.

use aws_sdk_ecs::types::DeploymentStrategy;

use crate::support::Deck;

/// A web service behind a load balancer whose `deploy` map the vars choose.
const WEB: &str = r#"stack("safe");
let vpc = default_vpc();
let subnets = [default_subnet(vpc, "us-west-2a"), default_subnet(vpc, "us-west-2b")];
let alb_sg = security_group(vpc, #{ name: "safe-alb", ingress: [#{ port: 80, cidr: "0.0.0.0/0" }, #{ port: 8081, cidr: "0.0.0.0/0" }] });
let app_sg = security_group(vpc, #{ name: "safe-app", ingress: [#{ port: 8080, from: alb_sg }] });
let alb = load_balancer(#{ name: "safe", security_groups: [alb_sg], subnets: subnets });
let tg = target_group(vpc, #{ name: "safe", port: 8080, health_check: #{ path: "/" }, deregistration_delay: 5 });
listener(alb, #{ port: 80, forward: tg });
// Test traffic: deckhand's rule on it forwards to the service's groups (blue/green only).
let test = listener(alb, #{ port: 8081, redirect: #{ port: 80, protocol: "HTTP" } });
let errors = alarm(#{ name: "safe-5xx", metric: "target_5xx", load_balancer: alb, threshold: 5, periods: 2 });
alarm(#{ name: "safe-unhealthy", metric: "unhealthy_hosts", load_balancer: alb, threshold: 1 });
let deploy = switch vars.strategy ?? "rolling" {
    "canary" => #{ strategy: "canary", bake: 1, canary: #{ percent: 10, bake: vars.canary_bake ?? 3 }, alarms: [errors] },
    "linear" => #{ strategy: "linear", bake: 0, linear: #{ step: 25, bake: 1 }, alarms: [errors] },
    "blue_green" => #{ strategy: "blue_green", bake: 2, test_listener: test, alarms: [errors] },
    _ => #{ strategy: "rolling" },
};
let task = task_definition(#{ family: "safe", cpu: 256, memory: 512,
    execution_role: task_execution_role("safe-exec"),
    containers: [#{ name: "app", image: vars.image ?? "nginx:1.25", port: 8080 }] });
let svc = service(cluster("safe"), #{ name: "web", task: task, desired: 1, subnets: subnets,
    security_groups: [app_sg], public_ip: true, target_group: tg, deploy: deploy });
if vars.wait == "yes" {
    if vars.check == () {
        wait_stable(svc);
    } else {
        let fails = vars.check == "fail";
        wait_stable(svc, #{ check: || { if fails { throw "the smoke test failed"; } } });
    }
}
"#;

/// The service as ECS reports it.
fn service(deck: &Deck) -> aws_sdk_ecs::types::Service {
    let aws = deck.aws();
    let out = aws.block_on(aws.ecs.describe_services().cluster("safe").services("web").send()).unwrap();
    out.services()[0].clone()
}

/// The ARN of the target group named `name`, if it exists.
fn target_group_arn(deck: &Deck, name: &str) -> Option<String> {
    let aws = deck.aws();
    let out = aws.block_on(aws.elbv2.describe_target_groups().names(name).send()).ok()?;
    out.target_groups().first().and_then(|t| t.target_group_arn()).map(str::to_string)
}

/// The listener of load balancer `safe` on `port`.
fn listener_arn(deck: &Deck, port: i32) -> String {
    let aws = deck.aws();
    let lbs = aws.block_on(aws.elbv2.describe_load_balancers().names("safe").send()).unwrap();
    let lb = lbs.load_balancers()[0].load_balancer_arn().unwrap().to_string();
    let listeners = aws.block_on(aws.elbv2.describe_listeners().load_balancer_arn(lb).send()).unwrap();
    listeners.listeners().iter().find(|l| l.port() == Some(port)).unwrap().listener_arn().unwrap().to_string()
}

/// The rule at priority 50000 of a listener: (its ARN, (target group ARN, weight) pairs).
fn shift_rule(deck: &Deck, listener: &str) -> Option<(String, Vec<(String, i32)>)> {
    let aws = deck.aws();
    let rules = aws.block_on(aws.elbv2.describe_rules().listener_arn(listener).send()).unwrap();
    let rule = rules.rules().iter().find(|r| r.priority() == Some("50000"))?;
    let groups = rule.actions()[0]
        .forward_config()
        .map(|c| {
            c.target_groups()
                .iter()
                .map(|t| (t.target_group_arn().unwrap_or_default().to_string(), t.weight().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    Some((rule.rule_arn().unwrap().to_string(), groups))
}

#[test]
fn a_canary_service_gets_its_strategy_alarm_alternate_group_rule_and_role_and_a_rerun_changes_nothing() {
    let deck = Deck::new();
    deck.run(WEB, &["--var", "strategy=canary"]).success();

    let service = service(&deck);
    let config = service.deployment_configuration().unwrap();
    assert_eq!(config.strategy(), Some(&DeploymentStrategy::Canary));
    assert_eq!(config.bake_time_in_minutes(), Some(1));
    let canary = config.canary_configuration().unwrap();
    assert_eq!((canary.canary_percent(), canary.canary_bake_time_in_minutes()), (Some(10.0), Some(3)));
    let alarms = config.alarms().unwrap();
    assert_eq!((alarms.alarm_names(), alarms.enable(), alarms.rollback()), (&["safe-5xx".to_string()][..], true, true));

    // The service's two groups: the script's and its copy (either may be primary: ECS swaps them).
    let primary = target_group_arn(&deck, "safe").unwrap();
    let alternate = target_group_arn(&deck, "safe-alt").expect("the alternate target group exists");
    let lb = &service.load_balancers()[0];
    let advanced = lb.advanced_configuration().expect("the mapping has an advanced configuration");
    let mut pair =
        [lb.target_group_arn().unwrap().to_string(), advanced.alternate_target_group_arn().unwrap().to_string()];
    pair.sort();
    let mut wanted = [primary.clone(), alternate.clone()];
    wanted.sort();
    assert_eq!(pair, wanted);
    let (rule, weights) = shift_rule(&deck, &listener_arn(&deck, 80)).expect("a rule at priority 50000 on port 80");
    assert_eq!(advanced.production_listener_rule(), Some(rule.as_str()));
    let mut groups: Vec<String> = weights.into_iter().map(|(arn, _)| arn).collect();
    groups.sort();
    assert_eq!(groups, wanted, "the rule forwards to both groups");
    assert_eq!(advanced.test_listener_rule(), None);

    let aws = deck.aws();
    let role = aws.block_on(aws.iam.get_role().role_name("safe-web-ecs-infra").send()).unwrap();
    assert_eq!(advanced.role_arn(), role.role().map(|r| r.arn()));
    let raw = role.role().unwrap().assume_role_policy_document().unwrap();
    let trust = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
    assert!(trust.contains("ecs.amazonaws.com"), "{trust}");
    let attached = aws.block_on(aws.iam.list_attached_role_policies().role_name("safe-web-ecs-infra").send()).unwrap();
    let policies: Vec<&str> = attached.attached_policies().iter().filter_map(|p| p.policy_arn()).collect();
    assert_eq!(policies, ["arn:aws:iam::aws:policy/AmazonECSInfrastructureRolePolicyForLoadBalancers"]);

    let alarm = aws.block_on(aws.cloudwatch.describe_alarms().alarm_names("safe-5xx").send()).unwrap();
    let alarm = &alarm.metric_alarms()[0];
    assert_eq!(alarm.metric_name(), Some("HTTPCode_Target_5XX_Count"));
    let dimensions: Vec<(&str, &str)> =
        alarm.dimensions().iter().map(|d| (d.name().unwrap_or_default(), d.value().unwrap_or_default())).collect();
    assert_eq!(dimensions.len(), 1);
    assert_eq!(dimensions[0].0, "LoadBalancer", "the load balancer as a whole, never one target group");
    assert!(dimensions[0].1.starts_with("app/safe/"), "{dimensions:?}");
    assert_eq!((alarm.threshold(), alarm.evaluation_periods()), (Some(5.0), Some(2)));
    // Unhealthy hosts are published per target group only: a query over all of the load balancer's.
    let unhealthy = aws.block_on(aws.cloudwatch.describe_alarms().alarm_names("safe-unhealthy").send()).unwrap();
    let query = unhealthy.metric_alarms()[0].metrics()[0].expression().unwrap().to_string();
    assert!(
        query.starts_with(
            "SELECT MAX(UnHealthyHostCount) FROM SCHEMA(\"AWS/ApplicationELB\", LoadBalancer, TargetGroup)"
        )
    );
    assert!(query.contains(&format!("WHERE LoadBalancer = '{}'", dimensions[0].1)), "{query}");

    // ECS moves the rule's weights and swaps the groups meanwhile: none of it is drift.
    let (_, requests) = deck.recorded(|| deck.run(WEB, &["--var", "strategy=canary"]).success());
    assert_eq!(requests.mutating(), Vec::<String>::new());

    // What deckhand made for ECS is the stack's: destroy takes it all.
    deck.deckhand(&["destroy", "--stack", "safe", "--yes"]).success();
    assert_eq!(target_group_arn(&deck, "safe-alt"), None);
    assert!(aws.block_on(aws.iam.get_role().role_name("safe-web-ecs-infra").send()).is_err(), "the role is gone");
    let left = aws.block_on(aws.cloudwatch.describe_alarms().alarm_names("safe-5xx").send()).unwrap();
    assert!(left.metric_alarms().is_empty(), "the alarm is gone");
}

/// The newest service deployment: (status, its task definition's `family:revision`).
fn newest_deployment(deck: &Deck) -> (String, String) {
    let aws = deck.aws();
    let listed = aws.block_on(aws.ecs.list_service_deployments().cluster("safe").service("web").send()).unwrap();
    let newest = listed
        .service_deployments()
        .iter()
        .max_by_key(|d| d.created_at().map(|t| (t.secs(), t.subsec_nanos())))
        .unwrap()
        .clone();
    let revision = newest.target_service_revision_arn().unwrap().to_string();
    let revisions = aws.block_on(aws.ecs.describe_service_revisions().service_revision_arns(revision).send()).unwrap();
    let task =
        revisions.service_revisions()[0].task_definition().unwrap_or_default().rsplit('/').next().unwrap().to_string();
    (newest.status().map(|s| s.as_str().to_string()).unwrap_or_default(), task)
}

#[test]
fn each_strategy_completes_an_image_update_and_a_rerun_after_ecs_swapped_the_groups_sends_nothing() {
    for strategy in ["blue_green", "canary", "linear"] {
        let deck = Deck::new();
        let var = format!("strategy={strategy}");
        deck.run(WEB, &["--var", &var, "--var", "wait=yes"]).success();
        let first_live = service(&deck).load_balancers()[0].target_group_arn().unwrap().to_string();
        let update = deck.run(WEB, &["--var", &var, "--var", "wait=yes", "--var", "image=nginx:1.27"]).success();
        let service = service(&deck);
        assert!(service.task_definition().unwrap().ends_with("safe:2"), "{strategy}: {:?}", service.task_definition());
        assert_eq!(newest_deployment(&deck), ("SUCCESSFUL".to_string(), "safe:2".to_string()), "{strategy}");
        let live = service.load_balancers()[0].target_group_arn().unwrap().to_string();
        assert_ne!(live, first_live, "{strategy}: ECS swapped the primary and alternate groups");
        let stage = match strategy {
            "canary" => "canary 10%",
            "linear" => "linear 25%",
            _ => "production traffic shifted",
        };
        assert!(
            update.stdout.contains(stage) || update.stderr.contains(stage),
            "{strategy}: no {stage:?} in {update:?}"
        );

        let again = ["--var", &var, "--var", "wait=yes", "--var", "image=nginx:1.27"];
        let (_, requests) = deck.recorded(|| deck.run(WEB, &again).success());
        assert_eq!(requests.mutating(), Vec::<String>::new(), "{strategy}: ECS's swap is not drift");
    }
}

/// The ECS requests (action, body) among `requests`.
fn ecs_requests(requests: &crate::support::Requests, action: &str) -> Vec<String> {
    requests.0.iter().filter(|r| r.service == "ecs" && r.action == action).map(|r| r.body.clone()).collect()
}

#[test]
fn a_failing_check_during_a_canary_bake_stops_the_deployment_with_rollback_and_fails_the_run() {
    let deck = Deck::new();
    deck.run(WEB, &["--var", "strategy=canary", "--var", "wait=yes", "--var", "check=pass"]).success();
    let (outcome, requests) = deck.recorded(|| {
        deck.run(
            WEB,
            &["--var", "strategy=canary", "--var", "wait=yes", "--var", "check=fail", "--var", "image=nginx:1.27"],
        )
        .failure()
    });
    assert!(outcome.stderr.contains("rolled back") && outcome.stderr.contains("the smoke test failed"), "{outcome:?}");
    let stops = ecs_requests(&requests, "StopServiceDeployment");
    assert_eq!(stops.len(), 1, "{stops:?}");
    assert!(stops[0].contains("ROLLBACK"), "{}", stops[0]);
    assert!(newest_deployment(&deck).0.starts_with("ROLLBACK"), "{:?}", newest_deployment(&deck));
}

#[test]
fn a_check_at_the_blue_green_pause_continues_when_it_passes_and_rolls_back_when_it_fails() {
    let deck = Deck::new();
    let (_, requests) = deck.recorded(|| {
        deck.run(WEB, &["--var", "strategy=blue_green", "--var", "wait=yes", "--var", "check=pass"]).success()
    });
    let answers = ecs_requests(&requests, "ContinueServiceDeployment");
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert!(answers[0].contains("CONTINUE"), "{}", answers[0]);

    let (outcome, requests) = deck.recorded(|| {
        deck.run(
            WEB,
            &["--var", "strategy=blue_green", "--var", "wait=yes", "--var", "check=fail", "--var", "image=nginx:1.27"],
        )
        .failure()
    });
    assert!(outcome.stderr.contains("rolled back"), "{outcome:?}");
    let answers = ecs_requests(&requests, "ContinueServiceDeployment");
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert!(answers[0].contains("ROLLBACK"), "{}", answers[0]);
    assert!(ecs_requests(&requests, "StopServiceDeployment").is_empty());
    assert!(newest_deployment(&deck).0.starts_with("ROLLBACK"), "{:?}", newest_deployment(&deck));
}

/// Polls `probe` (SDK reads) until it returns something, for at most two minutes of wall time.
fn observe<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = std::time::Instant::now();
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(120), "never observed: {what}");
        std::thread::yield_now();
    }
}

/// The lifecycle stage of the newest deployment.
fn newest_stage(deck: &Deck) -> Option<String> {
    let aws = deck.aws();
    let listed = aws.block_on(aws.ecs.list_service_deployments().cluster("safe").service("web").send()).ok()?;
    let newest =
        listed.service_deployments().iter().max_by_key(|d| d.created_at().map(|t| (t.secs(), t.subsec_nanos())))?;
    let arn = newest.service_deployment_arn()?.to_string();
    let described = aws.block_on(aws.ecs.describe_service_deployments().service_deployment_arns(arn).send()).ok()?;
    described.service_deployments().first()?.lifecycle_stage().map(|s| s.as_str().to_string())
}

#[test]
fn an_alarm_in_alarm_during_the_canary_bake_rolls_back_and_the_run_fails_saying_so() {
    let deck = Deck::with_emulator_env(&[("DECKHAND_TIME_SCALE", "0.05")]);
    let canary = ["--var", "strategy=canary", "--var", "wait=yes", "--var", "canary_bake=5"];
    deck.run(WEB, &canary).success();
    deck.write("deploy.rhai", WEB);
    let args = [&["run", "deploy.rhai"][..], &canary, &["--var", "image=nginx:1.27"]].concat();
    let child = deck
        .command(env!("CARGO_BIN_EXE_deckhand"))
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    observe("the new deployment's canary bake", || {
        (newest_stage(&deck).as_deref() == Some("PRODUCTION_TRAFFIC_SHIFT") && newest_deployment(&deck).1 == "safe:2")
            .then_some(())
    });
    let aws = deck.aws();
    aws.block_on(
        aws.cloudwatch
            .set_alarm_state()
            .alarm_name("safe-5xx")
            .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
            .state_reason("5xx answers")
            .send(),
    )
    .unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the run fails");
    assert!(stderr.contains("rolled back") && stderr.contains("safe-5xx"), "{stderr}");
    assert!(newest_deployment(&deck).0.starts_with("ROLLBACK"), "{:?}", newest_deployment(&deck));
}

#[test]
fn deckhand_rollback_after_a_deployment_redeploys_the_previous_revision_and_during_a_canary_stops_it() {
    let deck = Deck::with_emulator_env(&[("DECKHAND_TIME_SCALE", "0.05")]);
    let canary = ["--var", "strategy=canary", "--var", "canary_bake=5"];
    deck.run(WEB, &[&canary[..], &["--var", "wait=yes"]].concat()).success();
    deck.run(WEB, &[&canary[..], &["--var", "wait=yes", "--var", "image=nginx:1.27"]].concat()).success();
    assert!(service(&deck).task_definition().unwrap().ends_with("safe:2"));

    deck.deckhand(&["rollback", "--stack", "safe"])
        .success()
        .stdout_has("Redeploying safe:1 (UpdateService)")
        .stdout_has("the next `deckhand run` deploys the image it names again");
    assert!(service(&deck).task_definition().unwrap().ends_with("safe:1"), "{:?}", service(&deck).task_definition());
    // The plan of the unchanged script puts the script's image back.
    deck.plan(WEB, &[&canary[..], &["--var", "image=nginx:1.27"]].concat()).success().stdout_has("safe:1 -> safe:2");

    deck.run(WEB, &[&canary[..], &["--var", "image=nginx:1.28"]].concat()).success();
    observe("the canary in progress", || (newest_deployment(&deck).0 == "IN_PROGRESS").then_some(()));
    deck.deckhand(&["rollback", "--stack", "safe", "--service", "web"])
        .success()
        .stdout_has("stopping it with a rollback (StopServiceDeployment ROLLBACK)");
    assert!(newest_deployment(&deck).0.starts_with("ROLLBACK"), "{:?}", newest_deployment(&deck));
}

#[test]
fn rolling_to_canary_to_rolling_converges_and_takes_what_ecs_needed_away() {
    let deck = Deck::new();
    deck.run(WEB, &[]).success();
    assert_eq!(service(&deck).deployment_configuration().unwrap().strategy(), Some(&DeploymentStrategy::Rolling));
    assert_eq!(target_group_arn(&deck, "safe-alt"), None);

    deck.run(WEB, &["--var", "strategy=canary", "--var", "wait=yes"]).success();
    let config = service(&deck).deployment_configuration().unwrap().clone();
    assert_eq!(config.strategy(), Some(&DeploymentStrategy::Canary));
    assert_eq!(config.canary_configuration().unwrap().canary_percent(), Some(10.0));
    assert!(service(&deck).load_balancers()[0].advanced_configuration().is_some());
    assert!(target_group_arn(&deck, "safe-alt").is_some());

    deck.run(WEB, &["--var", "wait=yes"]).success();
    let service = service(&deck);
    assert_eq!(service.deployment_configuration().unwrap().strategy(), Some(&DeploymentStrategy::Rolling));
    assert_eq!(service.load_balancers()[0].advanced_configuration(), None);
    assert_eq!(service.load_balancers()[0].target_group_arn(), target_group_arn(&deck, "safe").as_deref());
    assert_eq!(target_group_arn(&deck, "safe-alt"), None, "the alternate group is gone");
    assert_eq!(shift_rule(&deck, &listener_arn(&deck, 80)), None, "the weighted rule is gone");
    let aws = deck.aws();
    assert!(aws.block_on(aws.iam.get_role().role_name("safe-web-ecs-infra").send()).is_err(), "the role is gone");

    let (_, requests) = deck.recorded(|| deck.run(WEB, &[]).success());
    assert_eq!(requests.mutating(), Vec::<String>::new());
}

#[test]
fn deploy_prerequisites_are_checked_in_the_plan_with_the_scripts_line() {
    let deck = Deck::new();
    let base = r#"stack("safe");
let vpc = default_vpc();
let subnets = [default_subnet(vpc, "us-west-2a"), default_subnet(vpc, "us-west-2b")];
let alb_sg = security_group(vpc, #{ name: "safe-alb", ingress: [#{ port: 80, cidr: "0.0.0.0/0" }] });
let alb = load_balancer(#{ name: "safe", security_groups: [alb_sg], subnets: subnets });
let other_alb = load_balancer(#{ name: "other", security_groups: [alb_sg], subnets: subnets });
let tg = target_group(vpc, #{ name: "safe", port: 8080 });
let prod = listener(alb, #{ port: 80, forward: tg });
let test = listener(alb, #{ port: 8081, redirect: #{ port: 80, protocol: "HTTP" } });
let other = listener(other_alb, #{ port: 8081, redirect: #{ port: 443 } });
let task = task_definition(#{ family: "safe", cpu: 256, memory: 512,
    containers: [#{ name: "app", image: "nginx", port: 8080 }] });
"#;
    // The load balancers and listeners exist: the plan knows which listener is on which.
    deck.run(base, &[]).success();
    let bad = [
        (r#"#{ strategy: "canary", canary: #{ percent: 0 } }"#, "invalid service.deploy.canary.percent"),
        (r#"#{ strategy: "linear", linear: #{ step: 2 } }"#, "a percentage from 3 to 100"),
        (r#"#{ strategy: "blue_green", bake: 1441 }"#, "invalid service.deploy.bake 1441"),
        (r#"#{ strategy: "canary", linear: #{ step: 10 } }"#, "only with strategy \"linear\""),
        (r#"#{ strategy: "rolling", test_listener: test }"#, "only with strategy"),
        (r#"#{ strategy: "blue" }"#, "\"rolling\", \"blue_green\", \"canary\" or \"linear\""),
        (r#"#{ strategy: "canary", bakee: 3 }"#, "unknown key `bakee`"),
        (
            r#"#{ strategy: "blue_green", test_listener: other }"#,
            "a listener on the load balancer of the service's production listener",
        ),
        (r#"#{ strategy: "blue_green", test_listener: prod }"#, "a listener on another port"),
    ];
    for (deploy, message) in bad {
        let script = format!(
            "{base}service(cluster(\"safe\"), #{{ name: \"web\", task: task, subnets: subnets, target_group: tg,\n    deploy: {deploy} }});\n"
        );
        let (_, requests) =
            deck.recorded(|| deck.plan(&script, &[]).failure().stderr_has(message).stderr_has("deploy.rhai:13:1"));
        requests.assert_read_only();
    }
    // A strategy that shifts traffic needs a load balancer.
    let script = format!(
        "{base}service(cluster(\"safe\"), #{{ name: \"web\", task: task, subnets: subnets,\n    deploy: #{{ strategy: \"canary\" }} }});\n"
    );
    deck.plan(&script, &[]).failure().stderr_has("without target_group").stderr_has("deploy.rhai:13:1");
}

const GUIDE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/fargate-alb.rhai");

#[test]
fn the_bundled_script_and_the_stdlib_take_a_strategy_with_an_alarm_on_the_load_balancers_5xx() {
    let deck = Deck::new();
    let (plan, requests) = deck.recorded(|| deck.deckhand(&["run", "--plan", GUIDE, "--var", "strategy=canary"]));
    plan.success()
        .stdout_has("+ alarm myapp-target-5xx")
        .stdout_has("+ target_group myapp-alt")
        .stdout_has("+ role myapp-myapp-ecs-infra")
        .stdout_has("+ listener_rule myapp:80#50000");
    requests.assert_read_only();
    deck.deckhand(&["run", "--plan", GUIDE, "--var", "strategy=sideways"])
        .failure()
        .stderr_has("--var strategy must be \"rolling\", \"canary\", \"linear\" or \"blue_green\"");

    deck.write(
        "web.rhai",
        r#"import "fargate" as fargate;
stack("web");
fargate::web_service(#{ name: "web", image: "nginx", deploy: #{ strategy: "linear", linear: #{ step: 20 } } });
"#,
    );
    deck.deckhand(&["run", "--plan", "web.rhai"])
        .success()
        .stdout_has("+ target_group web-alt")
        .stdout_has("+ listener_rule web:80#50000");
}

#[test]
fn http_check_passes_on_the_expected_answer_and_throws_naming_what_came_back() {
    let deck = Deck::new();
    let url = format!("{}/moto-api/deckhand/timeline", deck.aws().endpoint_url.clone().unwrap());
    let script = |options: &str| {
        format!("stack(\"safe\");\nlet got = http_check(\"{url}\", {options});\nprint(`status ${{got.status}}`);\n")
    };
    deck.run(&script("#{ status: 200 }"), &[]).success().stdout_has("status 200");
    deck.run(&script("#{ status: 201 }"), &[])
        .failure()
        .stderr_has("status 200, expected 201")
        .stderr_has("deploy.rhai:2:11");
    deck.run(&script("#{ contains: \"no such text\" }"), &[])
        .failure()
        .stderr_has("the body does not contain \"no such text\"");
    deck.run(&script("#{ statuss: 200 }"), &[]).failure().stderr_has("unknown key `statuss`");
}

#[test]
fn status_names_the_stage_of_a_canary_in_progress() {
    let deck = Deck::with_emulator_env(&[("DECKHAND_TIME_SCALE", "0.05")]);
    deck.run(WEB, &["--var", "strategy=canary", "--var", "wait=yes"]).success();
    let settled = deck.deckhand(&["status", "--stack", "safe"]).success();
    assert!(!settled.stdout.contains("in progress:"), "{}", settled.stdout);

    // The update's canary bakes 20 minutes, a minute of wall time at this scale; nothing waits.
    deck.run(WEB, &["--var", "strategy=canary", "--var", "canary_bake=20", "--var", "image=nginx:1.27"]).success();
    observe("the new deployment's canary bake", || {
        (newest_stage(&deck).as_deref() == Some("PRODUCTION_TRAFFIC_SHIFT") && newest_deployment(&deck).1 == "safe:2")
            .then_some(())
    });
    let (out, requests) = deck.recorded(|| deck.deckhand(&["status", "--stack", "safe"]));
    requests.assert_read_only();
    out.success().stdout_has("  in progress: canary 10%, service deployment ");
    let json = deck.deckhand(&["status", "--stack", "safe", "--output", "json"]).success();
    let status: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let deployment = &status["services"][0]["service_deployment"];
    assert_eq!(deployment["stage"], "canary 10%", "{deployment}");
    assert_eq!(deployment["lifecycle_stage"], "PRODUCTION_TRAFFIC_SHIFT");
    assert_eq!(deployment["status"], "IN_PROGRESS");
    assert_eq!(deployment["in_progress"], true);
}
