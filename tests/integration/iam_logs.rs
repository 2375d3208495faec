//! IAM roles and CloudWatch Logs log groups: converge, plan, drift, validation, foreign resources.

use crate::support::{Deck, Fault, Requests};

const SCRIPT: &str = r#"
stack("web");
let exec = task_execution_role("web-exec");
let logs = log_group("/ecs/web", #{ retention_days: 30 });
print(`role: ${exec.kind} ${exec.name} ${exec.arn}`);
print(`logs: ${logs.kind} ${logs.name} ${logs.arn} ${logs.retention_days}`);
"#;

const EXEC_POLICY: &str = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy";
const S3_READ: &str = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess";

fn trust_policy(deck: &Deck, role: &str) -> serde_json::Value {
    let aws = deck.aws();
    let out = aws.block_on(aws.iam.get_role().role_name(role).send()).unwrap();
    let raw = out.role().unwrap().assume_role_policy_document().unwrap().to_string();
    serde_json::from_str(&percent_encoding::percent_decode_str(&raw).decode_utf8_lossy()).unwrap()
}

fn attached(deck: &Deck, role: &str) -> Vec<String> {
    let aws = deck.aws();
    let out = aws.block_on(aws.iam.list_attached_role_policies().role_name(role).send()).unwrap();
    let mut arns: Vec<String> =
        out.attached_policies().iter().filter_map(|p| p.policy_arn()).map(String::from).collect();
    arns.sort();
    arns
}

fn retention(deck: &Deck, name: &str) -> Option<i32> {
    let aws = deck.aws();
    let out = aws.block_on(aws.logs.describe_log_groups().log_group_name_prefix(name).send()).unwrap();
    out.log_groups()
        .iter()
        .find(|g| g.log_group_name() == Some(name))
        .expect("the log group exists")
        .retention_in_days()
}

#[test]
fn apply_creates_then_second_run_changes_nothing() {
    let deck = Deck::new();
    deck.run(SCRIPT, &[])
        .success()
        .expect_changes(&[
            "+ role web-exec (arn:aws:iam::123456789012:role/web-exec, trusts ecs-tasks.amazonaws.com)",
            "+ log_group /ecs/web (arn:aws:logs:us-west-2:123456789012:log-group:/ecs/web, 30 days)",
        ])
        .stdout_has("role: role web-exec arn:aws:iam::123456789012:role/web-exec")
        .stdout_has("logs: log_group /ecs/web arn:aws:logs:us-west-2:123456789012:log-group:/ecs/web 30")
        .stdout_has("2 created, 0 updated, 0 unchanged");

    let (second, requests) = deck.recorded(|| deck.run(SCRIPT, &[]));
    second
        .success()
        .expect_changes(&["= role web-exec", "= log_group /ecs/web"])
        .stdout_has("0 created, 0 updated, 2 unchanged");
    requests.assert_read_only();
    // Per role one concurrent GetRole + ListAttachedRolePolicies; per log group DescribeLogGroups
    // then ListTagsForResource. The plan pass fills the cache and the apply pass is skipped.
    let mut iam = requests.actions_of("iam");
    iam.sort();
    assert_eq!(iam, ["GetRole", "ListAttachedRolePolicies"]);
    assert_eq!(requests.actions_of("logs"), ["DescribeLogGroups", "ListTagsForResource"]);

    // What AWS holds: the standard ECS trust policy, the execution policy, the stack tags.
    let trust = trust_policy(&deck, "web-exec");
    assert_eq!(trust["Statement"][0]["Principal"]["Service"], "ecs-tasks.amazonaws.com");
    assert_eq!(trust["Statement"][0]["Action"], "sts:AssumeRole");
    assert_eq!(trust["Statement"][0]["Effect"], "Allow");
    assert_eq!(attached(&deck, "web-exec"), [EXEC_POLICY]);
    let aws = deck.aws();
    let role = aws.block_on(aws.iam.get_role().role_name("web-exec").send()).unwrap();
    let tags: Vec<(String, String)> =
        role.role().unwrap().tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect();
    assert!(tags.contains(&("deckhand:stack".into(), "web".into())), "{tags:?}");
    assert!(tags.contains(&("Name".into(), "web-exec".into())), "{tags:?}");

    assert_eq!(retention(&deck, "/ecs/web"), Some(30));
    let arn = "arn:aws:logs:us-west-2:123456789012:log-group:/ecs/web";
    let tags = aws.block_on(aws.logs.list_tags_for_resource().resource_arn(arn).send()).unwrap();
    assert_eq!(tags.tags().unwrap().get("deckhand:stack").map(String::as_str), Some("web"));
}

#[test]
fn plan_on_an_empty_account_lists_creates_and_sends_nothing_mutating() {
    let deck = Deck::new();
    let (plan, requests) = deck.recorded(|| deck.plan(SCRIPT, &[]));
    plan.success()
        .expect_changes(&[
            "+ role web-exec ((known after apply), trusts ecs-tasks.amazonaws.com)",
            "+ log_group /ecs/web ((known after apply), 30 days)",
        ])
        .stdout_has("role: role web-exec (known after apply)")
        .stdout_has("Plan: 2 to create, 0 to update, 0 unchanged");
    requests.assert_read_only();
    // The policy to attach is checked to exist, so a typo fails the plan, not the apply.
    assert!(requests.actions_of("iam").contains(&"GetPolicy".to_string()));
    let aws = deck.aws();
    assert!(aws.block_on(aws.iam.get_role().role_name("web-exec").send()).is_err());
    let groups = aws.block_on(aws.logs.describe_log_groups().send()).unwrap();
    assert!(groups.log_groups().is_empty());
}

#[test]
fn check_declares_both_without_any_request() {
    let deck = Deck::new();
    deck.write("deploy.rhai", SCRIPT);
    let (outcome, requests) = deck.recorded(|| deck.deckhand(&["check", "deploy.rhai"]));
    outcome.success().stdout_has("Check passed: 2 resources declared");
    requests.assert_none();
}

#[test]
fn retention_follows_the_script_and_is_restored_after_manual_changes() {
    let deck = Deck::new();
    deck.run(SCRIPT, &[]).success();

    let longer = SCRIPT.replace("retention_days: 30", "retention_days: 90");
    let (plan, requests) = deck.recorded(|| deck.plan(&longer, &[]));
    plan.success()
        .expect_changes(&["= role web-exec", "~ log_group /ecs/web"])
        .stdout_has("retention_days: 30 days -> 90 days");
    requests.assert_read_only();
    deck.run(&longer, &[])
        .success()
        .expect_changes(&["= role web-exec", "~ log_group /ecs/web"])
        .stdout_has("0 created, 1 updated, 1 unchanged");
    assert_eq!(retention(&deck, "/ecs/web"), Some(90));

    let forever = SCRIPT.replace(r#""/ecs/web", #{ retention_days: 30 }"#, r#""/ecs/web""#);
    deck.run(&forever, &[])
        .success()
        .expect_changes(&["= role web-exec", "~ log_group /ecs/web"])
        .stdout_has("retention_days: 90 days -> never expire");
    assert_eq!(retention(&deck, "/ecs/web"), None);

    let aws = deck.aws();
    aws.block_on(aws.logs.put_retention_policy().log_group_name("/ecs/web").retention_in_days(7).send()).unwrap();
    let (plan, requests) = deck.recorded(|| deck.plan(SCRIPT, &[]));
    plan.success().stdout_has("~ log_group /ecs/web").stdout_has("retention_days: 7 days -> 30 days");
    requests.assert_read_only();
    deck.run(SCRIPT, &[]).success().expect_changes(&["= role web-exec", "~ log_group /ecs/web"]);
    assert_eq!(retention(&deck, "/ecs/web"), Some(30));
    deck.run(SCRIPT, &[]).success().expect_changes(&["= role web-exec", "= log_group /ecs/web"]);
}

#[test]
fn a_policy_attached_by_hand_is_detached_and_reported() {
    let deck = Deck::new();
    deck.run(SCRIPT, &[]).success();
    let aws = deck.aws();
    aws.block_on(aws.iam.attach_role_policy().role_name("web-exec").policy_arn(S3_READ).send()).unwrap();

    let (plan, requests) = deck.recorded(|| deck.plan(SCRIPT, &[]));
    plan.success().stdout_has(&format!("managed_policies: - {S3_READ}"));
    requests.assert_read_only();
    deck.run(SCRIPT, &[])
        .success()
        .expect_changes(&["~ role web-exec", "= log_group /ecs/web"])
        .stdout_has(&format!("managed_policies: - {S3_READ}"));
    assert_eq!(attached(&deck, "web-exec"), [EXEC_POLICY]);
}

#[test]
fn a_trust_policy_changed_by_hand_is_restored() {
    let deck = Deck::new();
    deck.run(SCRIPT, &[]).success();
    let aws = deck.aws();
    let ec2_trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    aws.block_on(aws.iam.update_assume_role_policy().role_name("web-exec").policy_document(ec2_trust).send()).unwrap();

    let (outcome, requests) = deck.recorded(|| deck.run(SCRIPT, &[]));
    outcome
        .success()
        .expect_changes(&["~ role web-exec", "= log_group /ecs/web"])
        .stdout_has("trust: ec2.amazonaws.com -> ecs-tasks.amazonaws.com");
    // One read of the role per pass (the apply pass reads again under the stack lock: another run
    // may have applied since the plan), then the fix.
    let mut iam = requests.actions_of("iam");
    iam.sort();
    assert_eq!(
        iam,
        ["GetRole", "GetRole", "ListAttachedRolePolicies", "ListAttachedRolePolicies", "UpdateAssumeRolePolicy"]
    );
    assert_eq!(trust_policy(&deck, "web-exec")["Statement"][0]["Principal"]["Service"], "ecs-tasks.amazonaws.com");
    deck.run(SCRIPT, &[]).success().expect_changes(&["= role web-exec", "= log_group /ecs/web"]);
}

#[test]
fn a_role_with_a_policy_document_converges_and_follows_script_changes() {
    let deck = Deck::new();
    let script = r#"
stack("web");
role(#{
    name: "web-task",
    description: "the app's own permissions",
    trust: #{ Statement: [#{
        Effect: "Allow",
        Principal: #{ Service: ["ecs-tasks.amazonaws.com"] },
        Action: ["sts:AssumeRole"],
        Condition: #{ StringEquals: #{ "aws:SourceAccount": 123456789012 } },
    }] },
    managed_policies: ["AmazonS3ReadOnlyAccess"],
});
"#;
    let (plan, requests) = deck.recorded(|| deck.plan(script, &[]));
    plan.success()
        .expect_changes(&["+ role web-task ((known after apply), trusts ecs-tasks.amazonaws.com (with conditions))"]);
    requests.assert_read_only();
    deck.run(script, &[]).success().expect_changes(&[
        "+ role web-task (arn:aws:iam::123456789012:role/web-task, trusts ecs-tasks.amazonaws.com (with conditions))",
    ]);
    assert_eq!(attached(&deck, "web-task"), [S3_READ]);
    let trust = trust_policy(&deck, "web-task");
    assert_eq!(trust["Version"], "2012-10-17");
    assert_eq!(trust["Statement"][0]["Condition"]["StringEquals"]["aws:SourceAccount"], 123456789012_i64);

    // One-element lists and numbers written as such compare equal to what IAM stores.
    let (second, requests) = deck.recorded(|| deck.run(script, &[]));
    second.success().expect_changes(&["= role web-task"]);
    requests.assert_read_only();

    let changed = script
        .replace(r#"["AmazonS3ReadOnlyAccess"]"#, r#"["AmazonS3ReadOnlyAccess", "AmazonECSTaskExecutionRolePolicy"]"#)
        .replace("the app's own permissions", "app permissions");
    deck.run(&changed, &[])
        .success()
        .expect_changes(&["~ role web-task"])
        .stdout_has(&format!("managed_policies: + {EXEC_POLICY}"))
        .stdout_has(r#"description: "the app's own permissions" -> "app permissions""#);
    assert_eq!(attached(&deck, "web-task"), [S3_READ, EXEC_POLICY]);
    let aws = deck.aws();
    let role = aws.block_on(aws.iam.get_role().role_name("web-task").send()).unwrap();
    assert_eq!(role.role().unwrap().description(), Some("app permissions"));
    deck.run(&changed, &[]).success().expect_changes(&["= role web-task"]);
}

#[test]
fn an_unknown_managed_policy_fails_the_plan() {
    let deck = Deck::new();
    let script = "stack(\"web\");\nrole(#{ name: \"r\", trust: \"ecs-tasks.amazonaws.com\", managed_policies: [\"AmazonS3ReadOnlyAccesss\"] });\n";
    let (outcome, requests) = deck.recorded(|| deck.run(script, &[]));
    outcome
        .failure()
        .stderr_has(r#"invalid role.managed_policies[0] "AmazonS3ReadOnlyAccesss": an existing managed policy; arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccesss does not exist"#)
        .stderr_has("--> deploy.rhai:2:1");
    assert_eq!(requests.mutating(), Vec::<String>::new());
}

/// (what, line 2 of the script, expected message)
const BAD: &[(&str, &str, &str)] = &[
    (
        "retention not allowed",
        r#"log_group("/ecs/web", #{ retention_days: 42 });"#,
        "invalid log_group.retention_days 42: one of 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653 (days), or () to never expire",
    ),
    (
        "retention of the wrong type",
        r#"log_group("/ecs/web", #{ retention_days: "30" });"#,
        r#"invalid log_group.retention_days "30": an integer, not a string"#,
    ),
    (
        "options not a map",
        r#"log_group("/ecs/web", 30);"#,
        "invalid log_group.options 30: a map like #{ retention_days: 30 }",
    ),
    (
        "unknown log group key",
        r#"log_group("/ecs/web", #{ retention: 30 });"#,
        "unknown key `retention` in log_group(); allowed keys: retention_days",
    ),
    (
        "bad log group name",
        r#"log_group("/ecs/my app");"#,
        r#"invalid log_group.name "/ecs/my app": 1 to 512 characters of A-Z a-z 0-9 . - _ / #"#,
    ),
    (
        "bad role name",
        r#"role(#{ name: "web exec!", trust: "ecs-tasks.amazonaws.com" });"#,
        r#"invalid role.name "web exec!": 1 to 64 characters of A-Z a-z 0-9 + = , . @ _ -"#,
    ),
    (
        "role name too long",
        r#"task_execution_role("a-very-long-role-name-that-goes-on-and-on-and-on-past-the-iam-limit");"#,
        r#"invalid task_execution_role.name "a-very-long-role-name-that-goes-on-and-on-and-on-past-the-iam-limit": 1 to 64 characters"#,
    ),
    (
        "unknown role key",
        r#"role(#{ name: "r", trust: "ecs-tasks.amazonaws.com", managed_polcies: [] });"#,
        "unknown key `managed_polcies` in role(); allowed keys: name, trust, managed_policies, description, path (did you mean `managed_policies`?)",
    ),
    ("missing trust", r#"role(#{ name: "r" });"#, "missing key `trust` in role(): who may assume the role"),
    (
        "trust of the wrong type",
        r#"role(#{ name: "r", trust: 42 });"#,
        r#"invalid role.trust 42: a service principal like "ecs-tasks.amazonaws.com", an array of them, or a trust policy map"#,
    ),
    (
        "trust not a service principal",
        r#"role(#{ name: "r", trust: "ecs-tasks" });"#,
        r#"invalid role.trust "ecs-tasks": a service principal like "ecs-tasks.amazonaws.com""#,
    ),
    (
        "trust document with a resource",
        r#"role(#{ name: "r", trust: #{ Statement: [#{ Effect: "Allow", Principal: "*", Action: "sts:AssumeRole", Resource: "*" }] } });"#,
        r#"invalid role.trust.Statement[0].Resource "*": no Resource"#,
    ),
    (
        "trust document with a bad effect",
        r#"role(#{ name: "r", trust: #{ Statement: [#{ Effect: "allow", Principal: "*", Action: "sts:AssumeRole" }] } });"#,
        r#"invalid role.trust.Statement[0].Effect "allow": "Allow" or "Deny""#,
    ),
    (
        "policies not an array",
        r#"role(#{ name: "r", trust: "ecs-tasks.amazonaws.com", managed_policies: "AmazonS3ReadOnlyAccess" });"#,
        r#"invalid role.managed_policies "AmazonS3ReadOnlyAccess": an array [ ... ], not a string"#,
    ),
    (
        "malformed policy ARN",
        r#"role(#{ name: "r", trust: "ecs-tasks.amazonaws.com", managed_policies: ["arn:aws:iam::12345:policy/x"] });"#,
        r#"invalid role.managed_policies[0] "arn:aws:iam::12345:policy/x": a policy ARN"#,
    ),
    (
        "bad path",
        r#"role(#{ name: "r", trust: "ecs-tasks.amazonaws.com", path: "ecs" });"#,
        r#"invalid role.path "ecs": a path that starts and ends with /"#,
    ),
];

#[test]
fn bad_input_fails_with_position_and_message_and_changes_nothing() {
    let deck = Deck::new();
    for (what, line, message) in BAD {
        let script = format!("stack(\"web\");\n{line}\n");
        let (outcome, requests) = deck.recorded(|| deck.run(&script, &[]));
        let outcome = outcome.failure();
        assert!(outcome.stderr.contains(message), "{what}: expected {message:?} in:\n{}", outcome.stderr);
        assert!(outcome.stderr.contains("--> deploy.rhai:2:1"), "{what}: position missing:\n{}", outcome.stderr);
        assert_eq!(requests.mutating(), Vec::<String>::new(), "{what}: nothing mutating may be sent");
    }
}

#[test]
fn a_role_not_created_by_the_stack_is_never_adopted() {
    let deck = Deck::new();
    let aws = deck.aws();
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    aws.block_on(aws.iam.create_role().role_name("web-exec").assume_role_policy_document(trust).send()).unwrap();

    let (outcome, requests) = deck.recorded(|| deck.run(SCRIPT, &[]));
    outcome
        .failure()
        .stderr_has("an IAM role named web-exec already exists (arn:aws:iam::123456789012:role/web-exec) and is not part of stack web: it has no deckhand:stack tag")
        .stderr_has("--> deploy.rhai:3:12")
        .stderr_has("hint: deckhand never adopts resources it did not create");
    assert_eq!(requests.mutating(), Vec::<String>::new());
    assert!(attached(&deck, "web-exec").is_empty());
}

#[test]
fn a_log_group_not_created_by_the_stack_is_never_adopted() {
    let deck = Deck::new();
    let aws = deck.aws();
    aws.block_on(aws.logs.create_log_group().log_group_name("/ecs/web").tags("team", "other").send()).unwrap();

    let script = "stack(\"web\");\nlog_group(\"/ecs/web\", #{ retention_days: 30 });\n";
    let (outcome, requests) = deck.recorded(|| deck.run(script, &[]));
    outcome
        .failure()
        .stderr_has(
            "a log group named /ecs/web already exists and is not part of stack web: it has no deckhand:stack tag",
        )
        .stderr_has("--> deploy.rhai:2:1");
    assert_eq!(requests.mutating(), Vec::<String>::new());
    assert_eq!(retention(&deck, "/ecs/web"), None);

    // Another stack's group is refused the same way.
    deck.run("stack(\"api\");\nlog_group(\"/ecs/api\");\n", &[]).success();
    deck.run("stack(\"web\");\nlog_group(\"/ecs/api\");\n", &[])
        .failure()
        .stderr_has("a log group named /ecs/api already exists and is not part of stack web: it belongs to stack api");
}

#[test]
fn a_role_path_change_is_refused_before_anything_changes() {
    let deck = Deck::new();
    let script = |path: &str| {
        format!(
            "stack(\"web\");\nrole(#{{ name: \"web-task\", trust: \"ecs-tasks.amazonaws.com\", path: \"{path}\", managed_policies: [\"AmazonS3ReadOnlyAccess\"] }});\n"
        )
    };
    deck.run(&script("/ecs/"), &[]).success().expect_changes(&["+ role web-task"]);

    // The path is fixed at creation; the description drifted too, yet nothing is sent.
    let aws = deck.aws();
    aws.block_on(aws.iam.update_role_description().role_name("web-task").description("by hand").send()).unwrap();
    let (outcome, requests) = deck.recorded(|| deck.run(&script("/"), &[]));
    outcome
        .failure()
        .stderr_has("role web-task differs where AWS cannot change an IAM role's path in place (path: /ecs/ -> /)")
        .stderr_has("--> deploy.rhai:2:1");
    assert_eq!(requests.mutating(), Vec::<String>::new());
    let role = aws.block_on(aws.iam.get_role().role_name("web-task").send()).unwrap();
    assert_eq!(role.role().unwrap().path(), "/ecs/");
    assert_eq!(role.role().unwrap().description(), Some("by hand"));
    assert_eq!(attached(&deck, "web-task"), [S3_READ]);
}

/// The roles GetRole was asked about, in the order the emulator received the requests.
fn roles_read(requests: &Requests) -> Vec<String> {
    let name = |body: &str| body.split('&').find_map(|p| p.strip_prefix("RoleName=")).unwrap_or("").to_string();
    requests.0.iter().filter(|r| r.action == "GetRole").map(|r| name(&r.body)).collect()
}

#[test]
fn declared_roles_and_log_groups_are_read_up_front_with_the_stack() {
    let deck = Deck::new();
    // `find_role` reads when the script reaches it; the role and log group the script declares
    // are read with the snapshot, at its first primitive, before that.
    let script = r#"
stack("web");
log_group("/ecs/web", #{ retention_days: 30 });
let marker = find_role("web-marker");
task_execution_role("web-exec");
"#;
    deck.run(script, &[]).success().expect_changes(&["+ log_group /ecs/web", "+ role web-exec"]);
    let (plan, requests) = deck.recorded(|| deck.plan(script, &[]));
    plan.success().expect_changes(&["= log_group /ecs/web", "= role web-exec"]);
    assert_eq!(roles_read(&requests), ["web-exec", "web-marker"]);
    let mut iam = requests.actions_of("iam");
    iam.sort();
    assert_eq!(iam, ["GetRole", "GetRole", "ListAttachedRolePolicies", "ListAttachedRolePolicies"]);
    assert_eq!(requests.actions_of("logs"), ["DescribeLogGroups", "ListTagsForResource"]);
}

#[test]
fn a_role_name_only_aws_knows_is_read_when_the_script_reaches_it() {
    let deck = Deck::new();
    let aws = deck.aws();
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    aws.block_on(aws.iam.create_role().role_name("web-marker").assume_role_policy_document(trust).send()).unwrap();
    // The check pass that finds the declared names knows no account: it sees "web-a".
    let script = r#"
stack("web");
let name = if find_role("web-marker") == () { "web-a" } else { "web-b" };
task_execution_role(name);
"#;
    let (outcome, requests) = deck.recorded(|| deck.run(script, &[]));
    outcome.success().expect_changes(&["+ role web-b"]);
    // find_role reads at once (each pass); "web-a" is read up front with the snapshot, at the
    // first primitive; "web-b" when the pass reaches it. The apply run reads the stack afresh under
    // the stack lock: its first gathering pass repeats the plan's reads in the same order and sends
    // the create of web-b ahead; the second gathering pass (which finds nothing more to send) and
    // the apply pass itself read only what find_role asks, the rest being the run's reads.
    let plan = ["web-marker", "web-a", "web-b"];
    assert_eq!(roles_read(&requests), [&plan[..], &plan, &["web-marker", "web-marker"]].concat());
    assert_eq!(attached(&deck, "web-b"), [EXEC_POLICY]);
    assert!(aws.block_on(aws.iam.get_role().role_name("web-a").send()).is_err());
    deck.run(script, &[]).success().expect_changes(&["= role web-b"]);
}

const SQS_READ: &str = "arn:aws:iam::aws:policy/AmazonSQSReadOnlyAccess";

/// IAM's answer to a change of a role while it applies another change of it.
fn concurrent_modification(operation: &'static str) -> Fault {
    Fault::xml(
        operation,
        "ConcurrentModification",
        "Cannot perform the operation because multiple requests to change this object were submitted simultaneously.",
    )
}

#[test]
fn a_roles_policy_changes_go_together_and_a_concurrent_modification_is_sent_again() {
    // A role's managed policies are attached (and detached) together; IAM may refuse one of them
    // while it applies another (terraform-provider-aws retries AttachRolePolicy and
    // DetachRolePolicy on ConcurrentModification), and so is it sent again, not failed.
    let deck = Deck::new().with_faults(vec![concurrent_modification("AttachRolePolicy")]);
    let role = |policies: &str| {
        format!(
            "stack(\"web\");\nrole(#{{ name: \"web-task\", trust: \"ecs-tasks.amazonaws.com\", managed_policies: [{policies}] }});\n"
        )
    };
    let both = role(r#""AmazonS3ReadOnlyAccess", "AmazonSQSReadOnlyAccess""#);
    deck.run(&both, &[]).success().expect_changes(&["+ role web-task"]);
    assert_eq!(deck.faults().injected(), ["AttachRolePolicy -> ConcurrentModification"]);
    assert_eq!(deck.faults().count("AttachRolePolicy"), 3, "the refused attach was sent again");
    assert_eq!(attached(&deck, "web-task"), [S3_READ, SQS_READ]);

    deck.faults().inject(concurrent_modification("DetachRolePolicy"));
    deck.run(&role(r#""AmazonECSTaskExecutionRolePolicy""#), &[]).success().expect_changes(&["~ role web-task"]);
    assert_eq!(deck.faults().count("DetachRolePolicy"), 3, "the refused detach was sent again");
    assert_eq!(attached(&deck, "web-task"), [EXEC_POLICY]);
    let (again, requests) = deck.recorded(|| deck.run(&role(r#""AmazonECSTaskExecutionRolePolicy""#), &[]));
    again.success().expect_changes(&["= role web-task"]);
    requests.assert_read_only();
}
