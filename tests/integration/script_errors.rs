//! Bad scripts fail before any change, with file:line:col, a caret and a precise message.

use deckhand::local::RecordedRequest;

use crate::support::Deck;

/// (what, line 3 of the script, expected message, expected column)
const BAD: &[(&str, &str, &str, usize)] = &[
    (
        "typo in a key",
        r#"subnet(vpc, #{ name: "a", az: "us-west-2a", cidrr: "172.31.96.0/24" });"#,
        "unknown key `cidrr` in subnet(); allowed keys: name, az, cidr, public_ip (did you mean `cidr`?)",
        1,
    ),
    (
        "malformed CIDR",
        r#"subnet(vpc, #{ name: "a", az: "us-west-2a", cidr: "172.31.300.0/24" });"#,
        r#"invalid subnet.cidr "172.31.300.0/24": an IPv4 CIDR block like "10.0.1.0/24""#,
        1,
    ),
    (
        "CIDR outside the VPC",
        r#"subnet(vpc, #{ name: "a", az: "us-west-2a", cidr: "10.9.0.0/24" });"#,
        r#"invalid subnet.cidr "10.9.0.0/24": a block inside VPC vpc-"#,
        1,
    ),
    (
        "CIDR overlapping a default subnet",
        r#"subnet(vpc, #{ name: "a", az: "us-west-2a", cidr: "172.31.0.0/24" });"#,
        "a block that overlaps no other subnet; it overlaps subnet-",
        1,
    ),
    (
        "subnet too small",
        r#"subnet(vpc, #{ name: "a", az: "us-west-2a", cidr: "172.31.96.0/29" });"#,
        "a block from /16 to /28",
        1,
    ),
    (
        "AZ of another region",
        r#"subnet(vpc, #{ name: "a", az: "us-east-1a", cidr: "172.31.96.0/24" });"#,
        r#"invalid subnet.az "us-east-1a": an availability zone of us-west-2: us-west-2a"#,
        1,
    ),
    (
        "port 0",
        r#"security_group(vpc, #{ name: "g", ingress: [#{ port: 0, cidr: "0.0.0.0/0" }] });"#,
        "invalid security_group.ingress[0].port 0: a port from 1 to 65535",
        1,
    ),
    (
        "port range reversed",
        r#"security_group(vpc, #{ name: "g", ingress: [#{ port: "90-80", cidr: "0.0.0.0/0" }] });"#,
        r#"invalid security_group.ingress[0].port "90-80""#,
        1,
    ),
    (
        "both cidr and from",
        r#"security_group(vpc, #{ name: "g", ingress: [#{ port: 80, cidr: "0.0.0.0/0", from: "sg-123" }] });"#,
        "either `cidr` or `from`, not both",
        1,
    ),
    (
        "neither cidr nor from",
        r#"security_group(vpc, #{ name: "g", ingress: [#{ port: 80 }] });"#,
        "missing key `cidr` in security_group.ingress[0]",
        1,
    ),
    (
        "unknown protocol",
        r#"security_group(vpc, #{ name: "g", ingress: [#{ port: 80, protocol: "tcpp", cidr: "0.0.0.0/0" }] });"#,
        r#"invalid security_group.ingress[0].protocol "tcpp": tcp, udp, icmp or all"#,
        1,
    ),
    (
        "wrong type",
        r#"subnet(vpc, #{ name: 42, az: "us-west-2a", cidr: "172.31.96.0/24" });"#,
        "invalid subnet.name 42: a string, not an integer",
        1,
    ),
    ("missing key", r#"subnet(vpc, #{ name: "a", cidr: "172.31.96.0/24" });"#, "missing key `az` in subnet()", 1),
    (
        "not a handle",
        r#"security_group(vpc, #{ name: "g", ingress: [#{ port: 80, from: vpc }] });"#,
        r#"invalid security_group.ingress[0].from a vpc handle: a security_group handle or a "sg-..." id"#,
        1,
    ),
    ("unknown function", r#"let x = 1; subnett(vpc, #{});"#, "unknown function or wrong arguments: subnett", 12),
    ("syntax error", r#"let x = ;"#, "syntax error", 9),
    (
        "undefined variable",
        r#"subnet(vppc, #{});"#,
        "undefined variable `vppc`: nothing above this line declares it",
        8,
    ),
];

#[test]
fn bad_scripts_fail_with_position_and_message_and_change_nothing() {
    let deck = Deck::new();
    for (what, line, message, column) in BAD {
        let script = format!("stack(\"bad\");\nlet vpc = default_vpc();\n{line}\n");
        let (outcome, requests) = deck.recorded(|| deck.run(&script, &[]));
        let outcome = outcome.failure();
        assert!(outcome.stderr.contains(message), "{what}: expected {message:?} in:\n{}", outcome.stderr);
        let at = format!("--> deploy.rhai:3:{column}");
        assert!(outcome.stderr.contains(&at), "{what}: expected {at:?} in:\n{}", outcome.stderr);
        assert!(
            outcome.stderr.contains(&format!("3 | {line}")),
            "{what}: the source line is shown:\n{}",
            outcome.stderr
        );
        assert_eq!(requests.mutating(), Vec::<String>::new(), "{what}: nothing mutating may be sent");
    }
}

#[test]
fn resources_need_a_stack() {
    let deck = Deck::new();
    deck.run("let vpc = default_vpc();\n", &[])
        .failure()
        .stderr_has("no stack is set")
        .stderr_has("= hint: start the script with stack(");
}

#[test]
fn endless_loops_and_runaway_recursion_are_stopped() {
    let deck = Deck::new();
    deck.run("stack(\"s\");\nloop { }\n", &[]).failure().stderr_has("operation limit").stderr_has("--> deploy.rhai:2:");
    deck.run("stack(\"s\");\nfn down(n) { down(n + 1) }\ndown(0);\n", &[]).failure().stderr_has("nested too deeply");
}

#[test]
fn imports_cannot_leave_the_script_folder() {
    let deck = Deck::new();
    deck.write("helpers.rhai", "fn web_rule(port) { #{ port: port, cidr: \"0.0.0.0/0\" } }\n");
    let ok = "import \"helpers\" as h;\nstack(\"s\");\nlet vpc = default_vpc();\nsecurity_group(vpc, #{ name: \"g\", ingress: [h::web_rule(80)] });\n";
    deck.plan(ok, &[]).success().expect_changes(&["+ security_group g"]);
    deck.run("import \"../secrets\" as s;\n", &[])
        .failure()
        .stderr_has("imports must name a module in the script's folder");
}

#[test]
fn missing_credentials_are_named_with_a_way_out() {
    let deck = Deck::new();
    deck.write("deploy.rhai", "stack(\"s\");\nlet vpc = default_vpc();\n");
    let output = deck
        .command(env!("CARGO_BIN_EXE_deckhand"))
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .args(["run", "deploy.rhai"])
        .output()
        .unwrap();
    crate::support::Outcome::of(&["run", "deploy.rhai"], output)
        .failure()
        .stderr_has("failed: NoCredentials: no AWS credentials were found")
        .stderr_has("--> deploy.rhai:2:11")
        .stderr_has(
            "= hint: log in (`aws sso login`, `aws configure`), pass --profile, or try deckhand without AWS: --local",
        );
}

/// A target group ARN of the right shape that names no target group.
const MISSING_TARGET_GROUP: &str =
    "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/nope/0123456789abcdef";

#[test]
fn scripts_catch_aws_errors_with_their_code_and_operation() {
    let deck = Deck::new();
    let script = format!(
        r#"stack("catch");
let caught = ();
try {{
    target_health("{MISSING_TARGET_GROUP}");
    print("not thrown");
}} catch (e) {{
    caught = e;
}}
print(`caught ${{caught.code}} from ${{caught.operation}}: ${{caught.message}}`);
"#
    );
    let (outcome, requests) = deck.recorded(|| deck.run(&script, &[]));
    let outcome = outcome.success().stdout_has(
        "caught TargetGroupNotFound from DescribeTargetHealth: DescribeTargetHealth failed: TargetGroupNotFound:",
    );
    assert!(!outcome.stdout.contains("not thrown"), "{}", outcome.stdout);
    let sent: Vec<&RecordedRequest> = requests.0.iter().filter(|r| r.action == "DescribeTargetHealth").collect();
    assert_eq!(sent.len(), 1, "the error came from AWS: {:?}", requests.actions());
    assert!(sent[0].body.contains("targetgroup%2Fnope") || sent[0].body.contains("targetgroup/nope"), "{sent:?}");

    // The same error uncaught prints as every deckhand error does: message, position, caret.
    let uncaught = format!("stack(\"catch\");\ntarget_health(\"{MISSING_TARGET_GROUP}\");\n");
    deck.run(&uncaught, &[])
        .failure()
        .stderr_has("error: DescribeTargetHealth failed: TargetGroupNotFound:")
        .stderr_has("--> deploy.rhai:2:1")
        .stderr_has("2 | target_health(");
}

#[test]
fn scripts_catch_validation_errors_as_invalid_before_any_request() {
    let deck = Deck::new();
    let script = r#"stack("catch");
let vpc = default_vpc();
let codes = [];
try { subnet(vpc, #{ name: "a", az: "us-west-2a", cidr: "172.31.300.0/24" }); } catch (e) {
    if e.code != "invalid" { throw `expected invalid, got ${e.code}`; }
    if e.operation != () { throw `validation has no AWS operation, got ${e.operation}`; }
    print(`caught: ${e.message}`);
    codes.push(e.code);
}
try { subnet(vpc, #{ name: "a", az: "us-west-2a", cidrr: "172.31.96.0/24" }); } catch (e) { codes.push(e.code); }
try { subnet(vpc, #{ name: "a", cidr: "172.31.96.0/24" }); } catch (e) { codes.push(e.code); }
print(`codes: ${codes}`);
"#;
    let (outcome, requests) = deck.recorded(|| deck.run(script, &[]));
    outcome
        .success()
        .stdout_has(r#"caught: invalid subnet.cidr "172.31.300.0/24": an IPv4 CIDR block like "10.0.1.0/24""#)
        .stdout_has(r#"codes: ["invalid", "unknown_key", "missing_key"]"#);
    assert_eq!(requests.mutating(), Vec::<String>::new());
    let subnets = requests.0.iter().filter(|r| r.action == "CreateSubnet").count();
    assert_eq!(subnets, 0, "no subnet was created");
}
