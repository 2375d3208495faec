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
let test = listener(alb, #{ port: 8081, forward: tg });
let errors = alarm(#{ name: "safe-5xx", metric: "target_5xx", load_balancer: alb, threshold: 5, periods: 2 });
let deploy = switch vars.strategy ?? "rolling" {
    "canary" => #{ strategy: "canary", bake: 1, canary: #{ percent: 10, bake: 3 }, alarms: [errors] },
    "linear" => #{ strategy: "linear", bake: 0, linear: #{ step: 25, bake: 1 }, alarms: [errors] },
    "blue_green" => #{ strategy: "blue_green", bake: 2, test_listener: test, alarms: [errors] },
    _ => #{ strategy: "rolling" },
};
let task = task_definition(#{ family: "safe", cpu: 256, memory: 512,
    execution_role: task_execution_role("safe-exec"),
    containers: [#{ name: "app", image: vars.image ?? "nginx:1.25", port: 8080 }] });
let svc = service(cluster("safe"), #{ name: "web", task: task, desired: 1, subnets: subnets,
    security_groups: [app_sg], public_ip: true, target_group: tg, deploy: deploy });
if vars.wait == "yes" { wait_stable(svc); }
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

    let primary = target_group_arn(&deck, "safe").unwrap();
    let alternate = target_group_arn(&deck, "safe-alt").expect("the alternate target group exists");
    let lb = &service.load_balancers()[0];
    assert_eq!(lb.target_group_arn(), Some(primary.as_str()));
    let advanced = lb.advanced_configuration().expect("the mapping has an advanced configuration");
    assert_eq!(advanced.alternate_target_group_arn(), Some(alternate.as_str()));
    let (rule, weights) = shift_rule(&deck, &listener_arn(&deck, 80)).expect("a rule at priority 50000 on port 80");
    assert_eq!(advanced.production_listener_rule(), Some(rule.as_str()));
    assert_eq!(weights, [(primary.clone(), 100), (alternate.clone(), 0)]);
    assert_eq!(advanced.test_listener_rule(), None);

    let aws = deck.aws();
    let role = aws.block_on(aws.iam.get_role().role_name("safe-web-ecs-infra").send()).unwrap();
    assert_eq!(advanced.role_arn(), role.role().map(|r| r.arn()));
    let raw = role.role().unwrap().assume_role_policy_document().unwrap();
    let trust = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
    assert!(trust.contains("ecs.amazonaws.com"), "{trust}");
    let attached = aws.block_on(aws.iam.list_attached_role_policies().role_name("safe-web-ecs-infra").send()).unwrap();
    let policies: Vec<&str> = attached.attached_policies().iter().filter_map(|p| p.policy_arn()).collect();
    assert_eq!(policies, ["arn:aws:iam::aws:policy/service-role/AmazonECSInfrastructureRolePolicyForLoadBalancers"]);

    let alarm = aws.block_on(aws.cloudwatch.describe_alarms().alarm_names("safe-5xx").send()).unwrap();
    let alarm = &alarm.metric_alarms()[0];
    assert_eq!(alarm.metric_name(), Some("HTTPCode_Target_5XX_Count"));
    let dimensions: Vec<(&str, &str)> =
        alarm.dimensions().iter().map(|d| (d.name().unwrap_or_default(), d.value().unwrap_or_default())).collect();
    assert_eq!(dimensions.len(), 1);
    assert_eq!(dimensions[0].0, "LoadBalancer", "the load balancer as a whole, never one target group");
    assert!(dimensions[0].1.starts_with("app/safe/"), "{dimensions:?}");
    assert_eq!((alarm.threshold(), alarm.evaluation_periods()), (Some(5.0), Some(2)));

    let (_, requests) = deck.recorded(|| deck.run(WEB, &["--var", "strategy=canary"]).success());
    assert_eq!(requests.mutating(), Vec::<String>::new());
}

#[test]
fn a_blue_green_service_gets_a_test_rule_and_a_pause_hook_and_keeps_the_groups_ecs_swapped() {
    let deck = Deck::new();
    deck.run(WEB, &["--var", "strategy=blue_green"]).success();
    let service = service(&deck);
    let config = service.deployment_configuration().unwrap();
    assert_eq!((config.strategy(), config.bake_time_in_minutes()), (Some(&DeploymentStrategy::BlueGreen), Some(2)));
    let hooks = config.lifecycle_hooks();
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert_eq!(hooks[0].target_type().map(|t| t.as_str()), Some("PAUSE"));
    assert_eq!(hooks[0].lifecycle_stages().iter().map(|s| s.as_str()).collect::<Vec<_>>(), ["POST_TEST_TRAFFIC_SHIFT"]);
    let timeout = hooks[0].timeout_configuration().unwrap();
    assert_eq!(timeout.action().map(|a| a.as_str()), Some("ROLLBACK"));

    let primary = target_group_arn(&deck, "safe").unwrap();
    let alternate = target_group_arn(&deck, "safe-alt").unwrap();
    let (test_rule, _) = shift_rule(&deck, &listener_arn(&deck, 8081)).expect("a rule at priority 50000 on port 8081");
    let advanced = service.load_balancers()[0].advanced_configuration().unwrap().clone();
    assert_eq!(advanced.test_listener_rule(), Some(test_rule.as_str()));

    // What ECS does when a deployment completes: the alternate group serves production (the
    // service's mapping and the rules' weights say so), the script's group becomes the alternate.
    let aws = deck.aws();
    let swapped = aws_sdk_ecs::types::LoadBalancer::builder()
        .target_group_arn(&alternate)
        .container_name("app")
        .container_port(8080)
        .advanced_configuration(
            advanced.clone().to_builder().alternate_target_group_arn(&primary).build(),
        )
        .build();
    aws.block_on(aws.ecs.update_service().cluster("safe").service("web").load_balancers(swapped).send()).unwrap();
    for listener in [listener_arn(&deck, 80), listener_arn(&deck, 8081)] {
        let (rule, _) = shift_rule(&deck, &listener).unwrap();
        let tuple = |arn: &str, weight| {
            aws_sdk_elasticloadbalancingv2::types::TargetGroupTuple::builder().target_group_arn(arn).weight(weight).build()
        };
        let forward = aws_sdk_elasticloadbalancingv2::types::Action::builder()
            .r#type(aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum::Forward)
            .forward_config(
                aws_sdk_elasticloadbalancingv2::types::ForwardActionConfig::builder()
                    .target_groups(tuple(&primary, 0))
                    .target_groups(tuple(&alternate, 100))
                    .build(),
            )
            .build();
        aws.block_on(aws.elbv2.modify_rule().rule_arn(rule).actions(forward).send()).unwrap();
    }

    let (_, requests) = deck.recorded(|| deck.run(WEB, &["--var", "strategy=blue_green"]).success());
    assert_eq!(requests.mutating(), Vec::<String>::new(), "ECS's swap is not drift");
    assert_eq!(service(&deck).load_balancers()[0].target_group_arn(), Some(alternate.as_str()));
    let (_, weights) = shift_rule(&deck, &listener_arn(&deck, 80)).unwrap();
    assert!(weights.contains(&(alternate, 100)), "{weights:?}");
}

#[test]
fn rolling_to_canary_to_rolling_converges_and_takes_what_ecs_needed_away() {
    let deck = Deck::new();
    deck.run(WEB, &[]).success();
    assert_eq!(service(&deck).deployment_configuration().unwrap().strategy(), Some(&DeploymentStrategy::Rolling));
    assert_eq!(target_group_arn(&deck, "safe-alt"), None);

    deck.run(WEB, &["--var", "strategy=linear"]).success();
    let config = service(&deck).deployment_configuration().unwrap().clone();
    assert_eq!(config.strategy(), Some(&DeploymentStrategy::Linear));
    let linear = config.linear_configuration().unwrap();
    assert_eq!((linear.step_percent(), linear.step_bake_time_in_minutes()), (Some(25.0), Some(1)));
    assert!(target_group_arn(&deck, "safe-alt").is_some());

    deck.run(WEB, &[]).success();
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
let alb = load_balancer(#{ name: "safe", subnets: subnets });
let other_alb = load_balancer(#{ name: "other", subnets: subnets });
let tg = target_group(vpc, #{ name: "safe", port: 8080 });
let prod = listener(alb, #{ port: 80, forward: tg });
let test = listener(alb, #{ port: 8081, forward: tg });
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
        let (_, requests) = deck.recorded(|| deck.plan(&script, &[]).failure().stderr_has(message).stderr_has("deploy.rhai:12:1"));
        requests.assert_read_only();
    }
    // A strategy that shifts traffic needs a load balancer.
    let script = format!(
        "{base}service(cluster(\"safe\"), #{{ name: \"web\", task: task, subnets: subnets,\n    deploy: #{{ strategy: \"canary\" }} }});\n"
    );
    deck.plan(&script, &[]).failure().stderr_has("without target_group").stderr_has("deploy.rhai:12:1");
}
