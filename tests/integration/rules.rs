//! Listener rules: several services on one environment's load balancer (scripts/two-services.rhai),
//! rules converged by priority, dropped rules deleted, bad rules refused before any request, and
//! rules someone else put on the stack's listener left alone (by their own tags).

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, PathPatternConditionConfig, Rule, RuleCondition, Tag,
};

use crate::support::{Deck, Fault};

const TWO_SERVICES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/two-services.rhai");

/// An ALB whose listener forwards to `web` by default and `/api/*` to `api`; `RULES` is replaced
/// by the script's rules.
const SHOP: &str = r#"
stack("shop");
let vpc = default_vpc();
let alb_sg = security_group(vpc, #{ name: "shop-alb", ingress: [ #{ port: 80, cidr: "0.0.0.0/0" } ] });
let alb = load_balancer(#{ name: "shop", security_groups: [alb_sg],
    subnets: [default_subnet(vpc, "us-west-2a"), default_subnet(vpc, "us-west-2b")] });
let web = target_group(vpc, #{ name: "shop-web", port: 8080 });
let api = target_group(vpc, #{ name: "shop-api", port: 8080 });
let http = listener(alb, #{ port: 80, forward: web });
RULES
"#;

fn shop(rules: &str) -> String {
    SHOP.replace("RULES", rules)
}

fn arn_of_lb(deck: &Deck, name: &str) -> String {
    let aws = deck.aws();
    let out = aws.block_on(aws.elbv2.describe_load_balancers().names(name).send()).unwrap();
    out.load_balancers()[0].load_balancer_arn().unwrap().to_string()
}

fn tg_arn(deck: &Deck, name: &str) -> String {
    let aws = deck.aws();
    let out = aws.block_on(aws.elbv2.describe_target_groups().names(name).send()).unwrap();
    out.target_groups()[0].target_group_arn().unwrap().to_string()
}

/// The listener on `port` of load balancer `lb`: its ARN and default forward target group.
fn listener(deck: &Deck, lb: &str, port: i32) -> (String, String) {
    let aws = deck.aws();
    let out = aws.block_on(aws.elbv2.describe_listeners().load_balancer_arn(arn_of_lb(deck, lb)).send()).unwrap();
    let l = out.listeners().iter().find(|l| l.port() == Some(port)).expect("the listener exists");
    let forward = l.default_actions()[0].target_group_arn().unwrap_or_default().to_string();
    (l.listener_arn().unwrap().to_string(), forward)
}

/// The listener's rules other than the default one, by priority.
fn rules(deck: &Deck, listener_arn: &str) -> Vec<Rule> {
    let aws = deck.aws();
    let out = aws.block_on(aws.elbv2.describe_rules().listener_arn(listener_arn).send()).unwrap();
    let mut rules: Vec<Rule> = out.rules().iter().filter(|r| r.is_default() != Some(true)).cloned().collect();
    rules.sort_by_key(|r| r.priority().unwrap().parse::<i32>().unwrap());
    rules
}

fn paths(rule: &Rule) -> Vec<String> {
    rule.conditions()
        .iter()
        .filter(|c| c.field() == Some("path-pattern"))
        .flat_map(|c| c.path_pattern_config().map(|p| p.values().to_vec()).unwrap_or_else(|| c.values().to_vec()))
        .collect()
}

fn forward(rule: &Rule) -> String {
    rule.actions()[0].target_group_arn().unwrap().to_string()
}

#[test]
fn two_services_share_one_load_balancer_through_a_rule() {
    let deck = Deck::new();
    deck.deckhand(&["run", TWO_SERVICES])
        .success()
        .stdout_has("+ listener_rule shop:80#10 (paths /api/*, forward shop-api)")
        .stdout_has("+ listener_rule shop:80#50000 (paths /*, forward shop-web)")
        .stdout_has("api: http://shop-1.");

    // One listener, answering 404 by default: `/api/*` goes by one rule to the API, every other
    // path by the last rule to the web service.
    let (http, default) = listener(&deck, "shop", 80);
    assert_eq!(default, "", "the default action forwards nowhere");
    let found = rules(&deck, &http);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0].priority(), Some("10"));
    assert_eq!(paths(&found[0]), ["/api/*"]);
    assert_eq!(forward(&found[0]), tg_arn(&deck, "shop-api"));
    assert_eq!(found[1].priority(), Some("50000"));
    assert_eq!(paths(&found[1]), ["/*"]);
    assert_eq!(forward(&found[1]), tg_arn(&deck, "shop-web"));
    // Each service's group admits the ALB's group on its port, and no second ALB exists.
    let aws = deck.aws();
    let lbs = aws.block_on(aws.elbv2.describe_load_balancers().send()).unwrap();
    assert_eq!(lbs.load_balancers().len(), 1);
    let alb_sg = lbs.load_balancers()[0].security_groups()[0].to_string();
    for app in ["shop-web-app", "shop-api-app"] {
        let out = aws
            .block_on(
                aws.ec2
                    .describe_security_groups()
                    .filters(aws_sdk_ec2::types::Filter::builder().name("group-name").values(app).build())
                    .send(),
            )
            .unwrap();
        let group = &out.security_groups()[0];
        let from: Vec<_> =
            group.ip_permissions()[0].user_id_group_pairs().iter().filter_map(|p| p.group_id()).collect();
        assert_eq!(from, [alb_sg.as_str()], "{app}");
        assert_eq!(group.ip_permissions()[0].from_port(), Some(8080), "{app}");
    }

    // A re-run changes nothing.
    let (second, requests) = deck.recorded(|| deck.deckhand(&["run", TWO_SERVICES]));
    second.success().stdout_has("= listener_rule shop:80#10").stdout_has("0 created, 0 updated, 22 unchanged");
    requests.assert_read_only();

    // Changing the API's path modifies that rule and nothing else.
    let (third, requests) = deck.recorded(|| deck.deckhand(&["run", TWO_SERVICES, "--var", "api_path=/v2/*"]));
    third.success().stdout_has("~ listener_rule shop:80#10").stdout_has("paths: /api/* -> /v2/*");
    assert_eq!(requests.mutating(), ["elasticloadbalancing ModifyRule"]);
    let found = rules(&deck, &http);
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].rule_arn(), rules(&deck, &http)[0].rule_arn());
    assert_eq!(paths(&found[0]), ["/v2/*"]);
    assert_eq!(forward(&found[0]), tg_arn(&deck, "shop-api"));
}

#[test]
fn a_rule_the_script_drops_is_deleted_and_status_and_destroy_see_rules() {
    let deck = Deck::new();
    let two = r#"listener_rule(http, #{ priority: 10, paths: ["/api/*"], forward: api });
listener_rule(http, #{ priority: 20, hosts: ["admin.example.com"], paths: ["/admin", "/admin/*"], forward: web });"#;
    deck.run(&shop(two), &[])
        .success()
        .stdout_has("+ listener_rule shop:80#10")
        .stdout_has("+ listener_rule shop:80#20");
    let (http, _) = listener(&deck, "shop", 80);
    let found = rules(&deck, &http);
    assert_eq!(found.len(), 2);
    assert_eq!(paths(&found[1]), ["/admin", "/admin/*"]);
    let hosts: Vec<_> = found[1]
        .conditions()
        .iter()
        .filter(|c| c.field() == Some("host-header"))
        .flat_map(|c| c.host_header_config().unwrap().values().to_vec())
        .collect();
    assert_eq!(hosts, ["admin.example.com"]);
    deck.deckhand(&["status", "--stack", "shop"]).success().stdout_has("shop:80#10").stdout_has("shop:80#20");

    // Rule 20 dropped: the plan shows it going, sending nothing; the run deletes it, only it.
    let one = r#"listener_rule(http, #{ priority: 10, paths: ["/api/*"], forward: api });"#;
    let (plan, requests) = deck.recorded(|| deck.plan(&shop(one), &[]));
    plan.success()
        .stdout_has("- listener_rule shop:80#20 (listener-rule/app/shop/")
        .stdout_has("— no longer declared")
        .stdout_has("1 to delete");
    requests.assert_read_only();
    let (run, requests) = deck.recorded(|| deck.run(&shop(one), &[]));
    run.success().stdout_has("- listener_rule shop:80#20").stdout_has("1 deleted");
    assert_eq!(requests.mutating(), ["elasticloadbalancing DeleteRule"]);
    let found = rules(&deck, &http);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].priority(), Some("10"));
    // And now the run is a no-op.
    let (again, requests) = deck.recorded(|| deck.run(&shop(one), &[]));
    again.success().stdout_has("= listener_rule shop:80#10");
    requests.assert_read_only();

    // destroy removes the rule before the listener and the target groups.
    let (destroy, requests) = deck.recorded(|| deck.deckhand(&["destroy", "--stack", "shop", "--yes"]));
    destroy.success();
    let actions: Vec<String> = requests.0.iter().filter(|r| r.is_mutating()).map(|r| r.action.clone()).collect();
    let at = |action: &str| actions.iter().position(|a| a == action).unwrap_or_else(|| panic!("{action}: {actions:?}"));
    assert!(at("DeleteRule") < at("DeleteListener"), "{actions:?}");
    assert!(at("DeleteRule") < at("DeleteTargetGroup"), "{actions:?}");
}

#[test]
fn bad_rules_fail_with_their_position_before_any_request() {
    let deck = Deck::new();
    let cases = [
        ("listener_rule(http, #{ priority: 10, paths: [\"/a\"], forward: api });\nlisteners_rule_dup", "priority"),
        (
            "listener_rule(http, #{ priority: 10, paths: [\"/1\", \"/2\", \"/3\"], hosts: [\"a.com\", \"b.com\", \"c.com\"], forward: api });",
            "at most 5 condition values",
        ),
        ("listener_rule(http, #{ priority: 0, paths: [\"/a\"], forward: api });", "1 to 50000"),
        ("listener_rule(http, #{ priority: 10, paths: [], forward: api });", "at least one value"),
        ("listener_rule(http, #{ priority: 10, forward: api });", "at least one condition"),
    ];
    for (rules, message) in cases {
        let rules = rules
            .replace("listeners_rule_dup", "listener_rule(http, #{ priority: 10, paths: [\"/b\"], forward: web });");
        let line = SHOP.lines().count() + rules.lines().count() - 1;
        let (outcome, requests) = deck.recorded(|| deck.run(&shop(&rules), &[]));
        outcome.failure().stderr_has(message).stderr_has(&format!("--> deploy.rhai:{line}:1"));
        assert_eq!(requests.mutating(), Vec::<String>::new(), "{rules}");
    }
}

/// Puts a rule on the listener as another team would, with the SDK: `/team/*` at `priority`
/// forwarding to `tg`, tagged with `stack` when given.
fn foreign_rule(deck: &Deck, listener_arn: &str, priority: i32, tg: &str, stack: Option<&str>) -> String {
    let aws = deck.aws();
    let path = RuleCondition::builder()
        .field("path-pattern")
        .path_pattern_config(PathPatternConditionConfig::builder().values("/team/*").build())
        .build();
    let forward = Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(tg).build();
    let tags = stack.map(|s| vec![Tag::builder().key("deckhand:stack").value(s).build()]);
    let create =
        aws.elbv2.create_rule().listener_arn(listener_arn).priority(priority).conditions(path).actions(forward);
    let out = aws.block_on(create.set_tags(tags).send()).unwrap();
    out.rules()[0].rule_arn().unwrap().to_string()
}

/// The priorities of the listener's rules.
fn priorities(deck: &Deck, listener_arn: &str) -> Vec<String> {
    rules(deck, listener_arn).iter().map(|r| r.priority().unwrap().to_string()).collect()
}

#[test]
fn rules_someone_else_put_on_the_stack_s_listener_survive_runs_and_destroy() {
    let deck = Deck::new();
    let two = r#"listener_rule(http, #{ priority: 10, paths: ["/api/*"], forward: api });
listener_rule(http, #{ priority: 20, paths: ["/admin/*"], forward: web });"#;
    deck.run(&shop(two), &[]).success();
    let (http, web) = listener(&deck, "shop", 80);
    // Another team's rules on the shared ALB: one untagged, one of another stack.
    let untagged = foreign_rule(&deck, &http, 5, &web, None);
    let other = foreign_rule(&deck, &http, 30, &web, Some("other"));
    assert_eq!(priorities(&deck, &http), ["5", "10", "20", "30"]);

    // A run that drops rule 20 deletes it and only it; theirs are neither planned nor touched.
    let one = r#"listener_rule(http, #{ priority: 10, paths: ["/api/*"], forward: api });"#;
    let (run, requests) = deck.recorded(|| deck.run(&shop(one), &[]));
    let run = run.success().stdout_has("- listener_rule shop:80#20").stdout_has("1 deleted");
    assert!(!run.stdout.contains("shop:80#5") && !run.stdout.contains("shop:80#30"), "{}", run.stdout);
    assert_eq!(requests.mutating(), ["elasticloadbalancing DeleteRule"]);
    assert_eq!(priorities(&deck, &http), ["5", "10", "30"]);
    // A second run changes nothing, and status lists only the stack's rule.
    let (again, requests) = deck.recorded(|| deck.run(&shop(one), &[]));
    again.success().stdout_has("= listener_rule shop:80#10");
    requests.assert_read_only();
    let status = deck.deckhand(&["status", "--stack", "shop"]).success().stdout_has("shop:80#10");
    assert!(!status.stdout.contains("shop:80#5") && !status.stdout.contains("shop:80#30"), "{}", status.stdout);

    // A script declaring a priority their rule holds is refused, not handed their rule.
    for (priority, owner) in [(5, "it has no deckhand:stack tag"), (30, "it belongs to stack other")] {
        let taken = format!("listener_rule(http, #{{ priority: {priority}, paths: [\"/mine/*\"], forward: api }});");
        let (outcome, requests) = deck.recorded(|| deck.run(&shop(&taken), &[]));
        outcome
            .failure()
            .stderr_has(&format!("a listener rule named shop:80#{priority} already exists (listener-rule/app/shop/"))
            .stderr_has(&format!("is not part of stack shop: {owner}"))
            .stderr_has("give this rule a priority no other rule of the listener has");
        requests.assert_read_only();
    }
    let theirs = rules(&deck, &http);
    assert_eq!(paths(&theirs[0]), ["/team/*"]);
    assert_eq!(theirs[0].rule_arn(), Some(untagged.as_str()));

    // Destroy would delete the listener, and ELBv2 its rules with it: refused before anything goes.
    for args in [&["destroy", "--stack", "shop", "--plan"][..], &["destroy", "--stack", "shop", "--yes"]] {
        let (outcome, requests) = deck.recorded(|| deck.deckhand(args));
        outcome
            .failure()
            .stderr_has("refusing to delete what is not stack shop's with the stack's own (nothing was deleted)")
            .stderr_has("listener shop:80 (listener/app/shop/")
            .stderr_has("it carries 2 rules not of stack shop: priority 5 (no deckhand:stack tag, listener-rule/")
            .stderr_has("priority 30 (stack other's, listener-rule/");
        requests.assert_read_only();
    }
    // So does a run whose script drops the listener.
    let no_listener = SHOP.replace("let http = listener(alb, #{ port: 80, forward: web });", "").replace("RULES", "");
    let (outcome, requests) = deck.recorded(|| deck.run(&no_listener, &[]));
    outcome
        .failure()
        .stderr_has("refusing to delete what is not stack shop's")
        .stderr_has("listener shop:80 (listener/app/shop/");
    requests.assert_read_only();
    assert_eq!(priorities(&deck, &http), ["5", "10", "30"]);

    // Once their owners moved them, destroy goes through.
    let aws = deck.aws();
    for arn in [&untagged, &other] {
        aws.block_on(aws.elbv2.delete_rule().rule_arn(arn).send()).unwrap();
    }
    deck.deckhand(&["destroy", "--stack", "shop", "--yes"]).success();
    let left = aws.block_on(aws.elbv2.describe_load_balancers().send()).unwrap();
    assert!(left.load_balancers().is_empty(), "{left:?}");
}

#[test]
fn a_rule_gone_between_describe_rules_and_describe_tags_costs_its_batch_a_second_look() {
    // ELBv2's DescribeTags fails a whole request with RuleNotFound when one of its rules was
    // deleted after DescribeRules listed it: the batch is asked again rule by rule.
    let deck = Deck::new().with_faults(Vec::new());
    let two = r#"listener_rule(http, #{ priority: 10, paths: ["/api/*"], forward: api });
listener_rule(http, #{ priority: 20, paths: ["/admin/*"], forward: web });"#;
    deck.run(&shop(two), &[]).success();
    deck.faults().inject(Fault::xml("DescribeTags", "RuleNotFound", "One or more rules not found"));
    deck.run(&shop(two), &[])
        .success()
        .stdout_has("= listener_rule shop:80#10")
        .stdout_has("= listener_rule shop:80#20")
        .stdout_has("0 created, 0 updated");
    assert_eq!(deck.faults().injected(), ["DescribeTags -> RuleNotFound"]);
    assert_eq!(deck.faults().count("DescribeTags"), 3, "the batch of two, then each rule");
}
