//! Creates that do not depend on each other are sent together (#22): before the apply pass runs
//! the script, waves of creates whose specs name nothing still to be created go out at once, so
//! a first apply takes as many rounds as its dependency chain is deep, not as many as it has
//! creates. Concurrency is proven by the fault proxy's meeting: the first request of each named
//! operation is held until all of them arrived, which requests sent one after another cannot do.

use crate::support::{Deck, Fault};

/// Independent resources (none names another), then one that names two of them.
const INDEPENDENT: &str = r#"
stack("together");
let vpc = default_vpc();
let logs = log_group("/ecs/together", #{ retention_days: 7 });
cluster("together");
let exec = task_execution_role("together-exec");
let alb_sg = security_group(vpc, #{ name: "together-alb", ingress: [#{ port: 80, cidr: "0.0.0.0/0" }] });
target_group(vpc, #{ name: "together", port: 8080 });
// Names the group above: goes out in the next wave, with the group's real id.
security_group(vpc, #{ name: "together-app", ingress: [#{ port: 8080, from: alb_sg }] });
"#;

#[test]
fn independent_creates_are_sent_together_and_recorded_in_the_script_s_order() {
    let deck = Deck::new().with_faults(Vec::new());
    let together = ["CreateLogGroup", "CreateCluster", "CreateRole", "CreateSecurityGroup", "CreateTargetGroup"];
    deck.faults().meet(&together);
    deck.run(INDEPENDENT, &[]).success().expect_changes(&[
        "+ log_group /ecs/together",
        "+ cluster together",
        "+ role together-exec",
        "+ security_group together-alb",
        "+ target_group together",
        "+ security_group together-app",
    ]);
    let (met, arrived) = deck.faults().met();
    assert!(met, "the independent creates were not in flight together; these arrived together: {arrived:?}");

    // They exist, and the group that names the other names its real id.
    let aws = deck.aws();
    let groups = aws
        .block_on(
            aws.ec2.describe_security_groups().filters(filter("group-name", &["together-alb", "together-app"])).send(),
        )
        .unwrap();
    let id_of = |name: &str| {
        groups.security_groups().iter().find(|g| g.group_name() == Some(name)).and_then(|g| g.group_id()).unwrap()
    };
    let from: Vec<&str> = groups
        .security_groups()
        .iter()
        .find(|g| g.group_name() == Some("together-app"))
        .unwrap()
        .ip_permissions()
        .iter()
        .flat_map(|p| p.user_id_group_pairs())
        .filter_map(|pair| pair.group_id())
        .collect();
    assert_eq!(from, [id_of("together-alb")]);
    let clusters = aws.block_on(aws.ecs.describe_clusters().clusters("together").send()).unwrap();
    assert_eq!(clusters.clusters()[0].status(), Some("ACTIVE"));
    assert!(aws.block_on(aws.iam.get_role().role_name("together-exec").send()).is_ok());
    let logs = aws.block_on(aws.logs.describe_log_groups().log_group_name_prefix("/ecs/together").send()).unwrap();
    assert_eq!(logs.log_groups()[0].retention_in_days(), Some(7));

    // A second run finds all of it: nothing to change, nothing mutating sent.
    let (outcome, requests) = deck.recorded(|| deck.run(INDEPENDENT, &[]));
    outcome.success().stdout_has("no changes");
    assert_eq!(requests.mutating(), Vec::<String>::new());
}

/// A cluster whose create fails, sent ahead beside creates that succeed, and a group that names
/// another (a later wave).
const FAILING: &str = r#"
stack("halfway");
let vpc = default_vpc();
log_group("/ecs/halfway", #{ retention_days: 7 });
let alb_sg = security_group(vpc, #{ name: "halfway-alb", ingress: [#{ port: 80, cidr: "0.0.0.0/0" }] });
cluster("halfway");
security_group(vpc, #{ name: "halfway-app", ingress: [#{ port: 8080, from: alb_sg }] });
"#;

#[test]
fn a_create_that_fails_ahead_is_its_statement_s_error_and_stops_the_later_waves() {
    let deck = Deck::new().with_faults(vec![Fault::ecs("CreateCluster", "ClientException", "Cluster quota reached")]);
    deck.run(FAILING, &[])
        .failure()
        .stdout_has("+ security_group halfway-alb")
        .stderr_has("ClientException: Cluster quota reached")
        .stderr_has("deploy.rhai:6:");
    assert_eq!(deck.faults().count("CreateCluster"), 1, "a failed create is not sent twice");

    // What went out beside it was created; the wave after it was not sent; the lock was released.
    let aws = deck.aws();
    let groups = |name: &str| {
        let found = aws.block_on(aws.ec2.describe_security_groups().filters(filter("group-name", &[name])).send());
        found.unwrap().security_groups().len()
    };
    assert_eq!((groups("halfway-alb"), groups("halfway-app")), (1, 0));
    let logs = aws.block_on(aws.logs.describe_log_groups().log_group_name_prefix("/ecs/halfway").send()).unwrap();
    assert_eq!(logs.log_groups().len(), 1);
    let lock = aws.block_on(aws.ssm.get_parameter().name(deckhand::lock::parameter_name("halfway")).send());
    assert!(lock.is_err(), "the stack lock was left behind: {lock:?}");

    // A re-run converges from there.
    deck.run(FAILING, &[]).success().expect_changes(&[
        "= log_group /ecs/halfway",
        "= security_group halfway-alb",
        "+ cluster halfway",
        "+ security_group halfway-app",
    ]);
}

fn filter(name: &str, values: &[&str]) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder()
        .name(name)
        .set_values(Some(values.iter().map(|v| v.to_string()).collect()))
        .build()
}
