//! Container secrets: parameters and secrets reach the task definition as full-ARN valueFrom, the
//! execution role may read exactly those, a missing one fails the plan before any change, and no
//! value ever appears in deckhand's output.

use std::collections::{BTreeMap, BTreeSet};

use crate::support::{Deck, Fault};

const PARAMETER_VALUE: &str = "pw-PARAMETER-VALUE-4711";
const SECRET_VALUE: &str = "tok-SECRET-VALUE-0815";
const JSON_VALUE: &str = "pw-JSON-VALUE-2323";
const ENV_VALUE: &str = "env-VALUE-99881";
const CUSTOMER_KEY: &str = "arn:aws:kms:us-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

/// Creates the parameter and secrets the scripts read, with values the output must never show.
fn store_secrets(deck: &Deck) -> BTreeMap<&'static str, String> {
    let aws = deck.aws();
    aws.block_on(async {
        aws.ssm
            .put_parameter()
            .name("/vault/db-password")
            .value(PARAMETER_VALUE)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send()
            .await
            .unwrap();
        let api = aws.secretsmanager.create_secret().name("prod/api").secret_string(SECRET_VALUE).send().await.unwrap();
        let db = aws
            .secretsmanager
            .create_secret()
            .name("prod/db")
            .kms_key_id(CUSTOMER_KEY)
            .secret_string(format!(r#"{{"username":"app","password":"{JSON_VALUE}"}}"#))
            .send()
            .await
            .unwrap();
        BTreeMap::from([
            ("parameter", "arn:aws:ssm:us-west-2:123456789012:parameter/vault/db-password".to_string()),
            ("api", api.arn().unwrap().to_string()),
            ("db", db.arn().unwrap().to_string()),
        ])
    })
}

fn script(secrets: &str) -> String {
    format!(
        r#"stack("vault");
let role = task_execution_role("vault-exec");
task_definition(#{{ family: "vault", cpu: 256, memory: 512, execution_role: role,
    containers: [ #{{ name: "app", image: "nginx:1.27", env: #{{ MODE: "{ENV_VALUE}" }},
                      secrets: #{{ {secrets} }} }} ] }});
"#
    )
}

const ALL: &str = r#"DB_PASSWORD: parameter("/vault/db-password"), API_TOKEN: secret("prod/api"),
                                 DB_USER: secret("prod/db", "username")"#;

/// The container's secrets, name -> valueFrom, of the family's latest revision.
fn task_secrets(deck: &Deck) -> BTreeMap<String, String> {
    let aws = deck.aws();
    let out = aws.block_on(aws.ecs.describe_task_definition().task_definition("vault").send()).unwrap();
    let task = out.task_definition().unwrap();
    task.container_definitions()[0]
        .secrets()
        .iter()
        .map(|s| (s.name().to_string(), s.value_from().to_string()))
        .collect()
}

/// The execution role's secrets policy: action -> resources; `None` when it has none.
fn role_policy(deck: &Deck) -> Option<BTreeMap<String, BTreeSet<String>>> {
    let aws = deck.aws();
    let out =
        aws.block_on(aws.iam.get_role_policy().role_name("vault-exec").policy_name("deckhand-secrets-vault").send());
    let out = match out {
        Ok(out) => out,
        Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_entity_exception()) => return None,
        Err(e) => panic!("GetRolePolicy: {e:?}"),
    };
    let raw = out.policy_document();
    let decoded = percent_encoding::percent_decode_str(raw).decode_utf8_lossy().to_string();
    let document: serde_json::Value = serde_json::from_str(&decoded).or_else(|_| serde_json::from_str(raw)).unwrap();
    let mut actions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for statement in document["Statement"].as_array().unwrap() {
        let resources: Vec<String> = match &statement["Resource"] {
            serde_json::Value::Array(list) => list.iter().map(|r| r.as_str().unwrap().to_string()).collect(),
            one => vec![one.as_str().unwrap().to_string()],
        };
        actions.entry(statement["Action"].as_str().unwrap().to_string()).or_default().extend(resources);
    }
    Some(actions)
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn secrets_reach_the_task_definition_and_the_role_reads_exactly_them() {
    let deck = Deck::new();
    let arns = store_secrets(&deck);
    let (run, requests) = deck.recorded(|| deck.run(&script(ALL), &["-vv"]).success());
    for value in [PARAMETER_VALUE, SECRET_VALUE, JSON_VALUE, ENV_VALUE] {
        assert!(!run.stdout.contains(value) && !run.stderr.contains(value), "{value} appears in the output:\n{run:?}");
    }
    // The stack lock reads its own parameter (/deckhand/locks/...); nothing reads a secret's value.
    let value_reads: Vec<_> = requests
        .0
        .iter()
        .filter(|r| {
            r.action == "GetSecretValue" || (r.action.starts_with("GetParameter") && r.body.contains("/vault/"))
        })
        .collect();
    assert!(value_reads.is_empty(), "a value was read: {value_reads:?}");
    assert_eq!(
        task_secrets(&deck),
        BTreeMap::from([
            ("API_TOKEN".to_string(), arns["api"].clone()),
            ("DB_PASSWORD".to_string(), arns["parameter"].clone()),
            ("DB_USER".to_string(), format!("{}:username::", arns["db"])),
        ])
    );
    assert_eq!(
        role_policy(&deck).expect("the execution role has the secrets policy"),
        BTreeMap::from([
            ("ssm:GetParameters".to_string(), set(&[&arns["parameter"]])),
            ("secretsmanager:GetSecretValue".to_string(), set(&[&arns["api"], &arns["db"]])),
            ("kms:Decrypt".to_string(), set(&[CUSTOMER_KEY])),
        ])
    );

    // A re-run changes nothing.
    let (_, requests) = deck.recorded(|| {
        deck.run(&script(ALL), &[]).success().expect_changes(&[
            "= role vault-exec",
            "= role_policy vault-exec/deckhand-secrets-vault",
            "= task_definition vault",
        ])
    });
    assert_eq!(requests.mutating(), Vec::<String>::new());

    // Dropping a secret narrows the policy (no customer key left) and the task definition.
    deck.run(&script(r#"DB_PASSWORD: parameter("/vault/db-password")"#), &[]).success().expect_changes(&[
        "= role vault-exec",
        "~ role_policy vault-exec/deckhand-secrets-vault",
        "~ task_definition vault",
    ]);
    assert_eq!(task_secrets(&deck), BTreeMap::from([("DB_PASSWORD".to_string(), arns["parameter"].clone())]));
    assert_eq!(
        role_policy(&deck).unwrap(),
        BTreeMap::from([("ssm:GetParameters".to_string(), set(&[&arns["parameter"]]))])
    );

    // No secrets left: the policy goes.
    deck.run(&script(""), &[]).success().expect_changes(&[
        "= role vault-exec",
        "~ role_policy vault-exec/deckhand-secrets-vault",
        "~ task_definition vault",
    ]);
    assert_eq!(task_secrets(&deck), BTreeMap::new());
    assert_eq!(role_policy(&deck), None);
}

#[test]
fn a_missing_parameter_fails_the_plan_before_any_change() {
    let deck = Deck::new();
    store_secrets(&deck);
    let source = script(r#"DB_PASSWORD: parameter("/vault/db-password"), OTHER: parameter("/vault/missing")"#);
    let (run, requests) = deck.recorded(|| deck.run(&source, &[]).failure());
    assert!(run.stderr.contains("/vault/missing"), "{run:?}");
    assert!(run.stderr.contains("deploy.rhai:5:"), "the error points at the parameter: {run:?}");
    assert_eq!(requests.mutating(), Vec::<String>::new());
    assert!(!requests.0.iter().any(|r| r.body.contains("/vault/") && r.action != "DescribeParameters"), "{requests:?}");

    let source = script(r#"DB: secret("prod/missing", "password")"#);
    let (run, requests) = deck.recorded(|| deck.run(&source, &[]).failure());
    assert!(run.stderr.contains("no secret prod/missing"), "{run:?}");
    assert_eq!(requests.mutating(), Vec::<String>::new());
}

#[test]
fn a_parameter_behind_an_empty_first_page_is_found() {
    // AWS's DescribeParameters pages are best effort: a page may be empty and still carry a
    // NextToken (the filter is applied after a page of the account's parameters is read).
    let deck =
        Deck::new().with_faults(vec![Fault::reply("DescribeParameters", r#"{"Parameters": [], "NextToken": "0"}"#)]);
    let arns = store_secrets(&deck);
    let (run, requests) = deck.recorded(|| deck.run(&script(r#"DB_PASSWORD: parameter("/vault/db-password")"#), &[]));
    run.success();
    assert_eq!(deck.faults().injected(), ["DescribeParameters -> reply"]);
    // The plan pass read two pages: the empty one (the fault's), then the one with the parameter,
    // asked for with the empty page's token. (Each later pass of the run reads one page.)
    let next_pages =
        requests.0.iter().filter(|r| r.action == "DescribeParameters" && r.body.contains(r#""NextToken":"0""#));
    assert_eq!(next_pages.count(), 1, "the second page was asked for: {requests:?}");
    assert_eq!(task_secrets(&deck), BTreeMap::from([("DB_PASSWORD".to_string(), arns["parameter"].clone())]));
}

#[test]
fn credentials_in_env_are_warned_about_and_not_shown() {
    let deck = Deck::new();
    let source = r#"stack("vault");
task_definition(#{ family: "vault", cpu: 256, memory: 512,
    containers: [ #{ name: "app", image: "nginx:1.27",
                     env: #{ AWS_ACCESS_KEY_ID: "AKIAIOSFODNN7EXAMPLE", DSN: "host=db password=hunter2", MODE: "production" } } ] });
"#;
    let run = deck.plan(source, &["-vv"]).success();
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(
        all.contains("env AWS_ACCESS_KEY_ID of container app (task definition vault) looks like a credential"),
        "{run:?}"
    );
    assert!(all.contains("env DSN of container app"), "{run:?}");
    assert!(!all.contains("env MODE"), "{run:?}");
    assert!(all.contains("use secrets:"), "{run:?}");
    assert!(!all.contains("AKIAIOSFODNN7EXAMPLE") && !all.contains("hunter2"), "a credential is shown:\n{run:?}");

    // A secret without an execution role is refused before anything is sent.
    store_secrets(&deck);
    let source = r#"stack("vault");
task_definition(#{ family: "vault", cpu: 256, memory: 512,
    containers: [ #{ name: "app", image: "nginx:1.27", secrets: #{ DB: parameter("/vault/db-password") } } ] });
"#;
    deck.plan(source, &[]).failure().stderr_has("execution_role");
}

#[test]
fn web_service_passes_env_and_secrets_to_its_container() {
    let deck = Deck::new();
    let arns = store_secrets(&deck);
    let source = r#"import "fargate" as fargate;
stack("web");
fargate::web_service(#{ name: "web", image: "nginx:1.27", env: #{ MODE: "production" },
                        secrets: #{ DB_USER: secret("prod/db", "username") } });
"#;
    let (run, requests) = deck.recorded(|| deck.plan(source, &[]).success());
    assert!(run.changes().iter().any(|c| c.starts_with("+ role_policy web-exec/deckhand-secrets-web")), "{run:?}");
    assert!(run.stdout.contains(&arns["db"]), "the policy names the secret: {run:?}");
    requests.assert_read_only();
}

#[test]
fn a_role_outside_the_stack_is_not_changed_but_named_in_a_warning() {
    let deck = Deck::new();
    let arns = store_secrets(&deck);
    let aws = deck.aws();
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let role =
        aws.block_on(aws.iam.create_role().role_name("shared-exec").assume_role_policy_document(trust).send()).unwrap();
    let source = format!(
        r#"stack("vault");
task_definition(#{{ family: "vault", cpu: 256, memory: 512, execution_role: "{}",
    containers: [ #{{ name: "app", image: "nginx:1.27", secrets: #{{ DB: parameter("/vault/db-password") }} }} ] }});
"#,
        role.role().unwrap().arn()
    );
    let (run, requests) = deck.recorded(|| deck.run(&source, &[]).success());
    assert!(
        run.stdout.contains("warning: execution role shared-exec of task definition vault is not part of this stack"),
        "{run:?}"
    );
    assert!(run.stdout.contains(&arns["parameter"]), "{run:?}");
    assert!(!requests.mutating().iter().any(|r| r.starts_with("iam ")), "{:?}", requests.mutating());
    assert_eq!(task_secrets(&deck), BTreeMap::from([("DB".to_string(), arns["parameter"].clone())]));
}
