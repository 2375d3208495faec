//! Target-tracking autoscaling: the bundled script's `--var max=N`, the stdlib option, policies
//! that follow the script, a desired count the scaler chose left alone, status and destroy.

use aws_sdk_applicationautoscaling::types::{MetricType, ScalingPolicy, ServiceNamespace};

use crate::support::Deck;

const GUIDE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/fargate-alb.rhai");

/// The ECS scalable targets as (resource id, min, max).
fn scalable_targets(deck: &Deck) -> Vec<(String, i32, i32)> {
    let aws = deck.aws();
    let out = aws
        .block_on(aws.autoscaling.describe_scalable_targets().service_namespace(ServiceNamespace::Ecs).send())
        .unwrap();
    out.scalable_targets().iter().map(|t| (t.resource_id().to_string(), t.min_capacity(), t.max_capacity())).collect()
}

/// The ECS scaling policies, sorted by name.
fn policies(deck: &Deck) -> Vec<ScalingPolicy> {
    let aws = deck.aws();
    let out = aws
        .block_on(aws.autoscaling.describe_scaling_policies().service_namespace(ServiceNamespace::Ecs).send())
        .unwrap();
    let mut policies = out.scaling_policies().to_vec();
    policies.sort_by(|a, b| a.policy_name().cmp(b.policy_name()));
    policies
}

/// (name, metric, target value, resource label, scale-in cooldown) of a target-tracking policy.
fn tracking(p: &ScalingPolicy) -> (String, MetricType, f64, Option<String>, Option<i32>) {
    let t = p.target_tracking_scaling_policy_configuration().expect("a target-tracking policy");
    let metric = t.predefined_metric_specification().expect("a predefined metric");
    (
        p.policy_name().to_string(),
        metric.predefined_metric_type().clone(),
        t.target_value(),
        metric.resource_label().map(str::to_string),
        t.scale_in_cooldown(),
    )
}

fn desired_count(deck: &Deck, cluster: &str, service: &str) -> i32 {
    let aws = deck.aws();
    let out = aws.block_on(aws.ecs.describe_services().cluster(cluster).services(service).send()).unwrap();
    out.services()[0].desired_count()
}

#[test]
fn the_bundled_script_with_max_scales_on_cpu_and_leaves_the_scalers_count_alone() {
    let deck = Deck::new();
    deck.deckhand(&["run", GUIDE, "--var", "max=6"])
        .success()
        .stdout_has("+ autoscaling myapp/myapp (2-6 tasks, deckhand-cpu 60% CPU)");
    assert_eq!(scalable_targets(&deck), [("service/myapp/myapp".to_string(), 2, 6)]);
    let policies = policies(&deck);
    assert_eq!(policies.len(), 1);
    assert_eq!(
        tracking(&policies[0]),
        ("deckhand-cpu".into(), MetricType::EcsServiceAverageCpuUtilization, 60.0, None, None)
    );
    assert_eq!(desired_count(&deck, "myapp", "myapp"), 2, "created with the script's desired");

    // The scaler (here: a hand-made UpdateService) moves the count; a re-run leaves it there and
    // sends nothing.
    let aws = deck.aws();
    aws.block_on(aws.ecs.update_service().cluster("myapp").service("myapp").desired_count(5).send()).unwrap();
    let (again, requests) = deck.recorded(|| deck.deckhand(&["run", GUIDE, "--var", "max=6"]));
    again
        .success()
        .stdout_has("5 desired (managed by autoscaling)")
        .stdout_has("= autoscaling myapp/myapp (2-6 tasks, deckhand-cpu 60% CPU)")
        .stdout_has("no changes");
    requests.assert_read_only();
    assert_eq!(desired_count(&deck, "myapp", "myapp"), 5);

    deck.deckhand(&["status", "--stack", "myapp"])
        .success()
        .stdout_has("autoscaling: 2-6 tasks (now 5 desired)")
        .stdout_has("policy deckhand-cpu 60% CPU");

    // Without autoscaling in the script, the run deletes the scalable target with its policy and
    // the script's count applies again, in the same run.
    let (plain, requests) = deck.recorded(|| deck.deckhand(&["run", GUIDE]));
    plain
        .success()
        .stdout_has("~ service myapp")
        .stdout_has("desired: 5 -> 2")
        .stdout_has("- autoscaling myapp/myapp (service/myapp/myapp) deleted");
    let mutating = requests.mutating();
    assert!(mutating.contains(&"ecs UpdateService".to_string()), "{mutating:?}");
    assert!(mutating.contains(&"application-autoscaling DeregisterScalableTarget".to_string()), "{mutating:?}");
    assert_eq!(scalable_targets(&deck), []);
    assert!(self::policies(&deck).is_empty());
    assert_eq!(desired_count(&deck, "myapp", "myapp"), 2);
    deck.deckhand(&["run", GUIDE]).success().stdout_has("no changes");

    // Scaled again, destroy deletes the target first.
    deck.deckhand(&["run", GUIDE, "--var", "max=6"]).success();
    deck.deckhand(&["destroy", "--stack", "myapp", "--yes"]).success().stdout_has("- autoscaling myapp/myapp");
    assert_eq!(scalable_targets(&deck), []);
    assert!(self::policies(&deck).is_empty());
}

const WEB: &str = r#"import "fargate" as fargate;
stack("web");
let web = fargate::web_service(#{ name: "web", image: "nginx", desired: 2,
    autoscaling: #{ max: 4, cpu: 50, requests_per_target: 100, scale_in_cooldown: 120 } });
print(`scales ${web.autoscaling.min}-${web.autoscaling.max}`);
"#;

#[test]
fn policies_follow_the_script_and_a_dropped_metric_loses_its_policy() {
    let deck = Deck::new();
    let (plan, requests) = deck.recorded(|| deck.plan(WEB, &[]));
    plan.success().stdout_has(
        "+ autoscaling web/web (2-4 tasks, deckhand-cpu 50% CPU, cooldown in 120s out default; \
         deckhand-requests 100 requests/target on (known after apply), cooldown in 120s out default)",
    );
    requests.assert_read_only();
    deck.run(WEB, &[]).success().stdout_has("scales 2-4");
    assert_eq!(scalable_targets(&deck), [("service/web/web".to_string(), 2, 4)]);
    let aws = deck.aws();
    let (lb, tg) = aws.block_on(async {
        let lb = aws.elbv2.describe_load_balancers().names("web").send().await.unwrap();
        let tg = aws.elbv2.describe_target_groups().names("web").send().await.unwrap();
        (
            lb.load_balancers()[0].load_balancer_arn().unwrap().to_string(),
            tg.target_groups()[0].target_group_arn().unwrap().to_string(),
        )
    });
    let label = format!("{}/{}", lb.split_once(":loadbalancer/").unwrap().1, tg.rsplit_once(':').unwrap().1);
    assert!(label.starts_with("app/web/") && label.contains("/targetgroup/web/"), "{label}");
    let found: Vec<_> = policies(&deck).iter().map(tracking).collect();
    assert_eq!(
        found,
        [
            ("deckhand-cpu".into(), MetricType::EcsServiceAverageCpuUtilization, 50.0, None, Some(120)),
            ("deckhand-requests".into(), MetricType::AlbRequestCountPerTarget, 100.0, Some(label), Some(120)),
        ]
    );

    let (again, requests) = deck.recorded(|| deck.run(WEB, &[]));
    again.success().stdout_has("= autoscaling web/web");
    requests.assert_read_only();

    let cpu_only = WEB.replace("requests_per_target: 100, ", "").replace("cpu: 50", "cpu: 70");
    let (changed, requests) = deck.recorded(|| deck.run(&cpu_only, &[]));
    changed
        .success()
        .stdout_has("~ autoscaling web/web")
        .stdout_has("policy deckhand-cpu: deckhand-cpu 50% CPU, cooldown in 120s out default -> deckhand-cpu 70% CPU")
        .stdout_has("policies: - deckhand-requests 100 requests/target on app/web/");
    let mutating = requests.mutating();
    assert!(mutating.iter().any(|m| m.ends_with("DeleteScalingPolicy")), "{mutating:?}");
    assert!(mutating.iter().any(|m| m.ends_with("PutScalingPolicy")), "{mutating:?}");
    assert!(!mutating.iter().any(|m| m.ends_with("RegisterScalableTarget")), "{mutating:?}");
    let found: Vec<_> = policies(&deck).iter().map(tracking).collect();
    assert_eq!(found, [("deckhand-cpu".into(), MetricType::EcsServiceAverageCpuUtilization, 70.0, None, Some(120))]);
    assert_eq!(scalable_targets(&deck), [("service/web/web".to_string(), 2, 4)]);
}

#[test]
fn bad_autoscaling_input_fails_before_any_request() {
    let deck = Deck::new();
    let service = r#"#{ kind: "service", name: "web", cluster: "web", arn: "arn:aws:ecs:us-west-2:123456789012:service/web/web" }"#;
    for (options, message) in [
        ("#{ min: 5, max: 2, cpu: 60 }", "invalid autoscaling.min 5: at most max (2)"),
        ("#{ min: 1, max: 4, cpu: 0 }", "invalid autoscaling.cpu 0: a utilisation percentage from 1 to 100"),
        ("#{ min: 1, max: 4, memory: 120 }", "invalid autoscaling.memory 120: a utilisation percentage from 1 to 100"),
        (
            "#{ min: 1, max: 4, requests_per_target: 100 }",
            "invalid autoscaling.requests_per_target 100: requests per target only together with load_balancer and target_group",
        ),
        (
            "#{ min: 1, max: 4, cpu: 60, scale_in_cooldown: -1 }",
            "invalid autoscaling.scale_in_cooldown -1: 0 to 86400 seconds",
        ),
        ("#{ min: 1, max: 4, cpus: 60 }", "cpus"),
        ("#{ max: 4, cpu: 60 }", "min"),
    ] {
        let script = format!("stack(\"web\");\nautoscaling({service}, {options});\n");
        let (outcome, requests) = deck.recorded(|| deck.run(&script, &[]));
        let outcome = outcome.failure();
        assert!(outcome.stderr.contains(message), "{options}: expected {message:?} in\n{}", outcome.stderr);
        assert!(outcome.stderr.contains("--> deploy.rhai:2:1"), "{options}: {}", outcome.stderr);
        requests.assert_none();
    }
    deck.deckhand(&["docs", "autoscaling"]).success().stdout_has("requests_per_target").stdout_has("Example:");
}
