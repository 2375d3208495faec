//! `deckhand repl`: persistent scope, multi-line input, commands, plan mode, tables, errors that
//! do not end the session, and (in a pseudo-terminal) prompt, completion and Ctrl-D.

use aws_sdk_ec2::types::Filter;

use crate::support::Deck;

const SUBNET: &str = r#"subnet(vpc, #{ name: "r-a", az: "us-west-2a", cidr: "172.31.96.0/24" })"#;

fn stack_subnets(deck: &Deck, stack: &str) -> Vec<aws_sdk_ec2::types::Subnet> {
    let aws = deck.aws();
    let filter = Filter::builder().name("tag:deckhand:stack").values(stack).build();
    aws.block_on(aws.ec2.describe_subnets().filters(filter).send()).unwrap().subnets().to_vec()
}

/// True when some line of `text` starts with `first` (after trimming) and ends with `last`.
fn has_row(text: &str, first: &str, last: &str) -> bool {
    text.lines().any(|l| l.starts_with(first) && l.trim_end().ends_with(last))
}

#[test]
fn variables_and_functions_persist_and_open_statements_continue() {
    let deck = Deck::new();
    let input = "fn double(x) {\n  x * 2\n}\nlet a = 21;\ndouble(a)\nlet greeting = \"hello\" +\n  \" world\";\ngreeting\nlet list = [1,\n  2];\nlist.len()\n";
    // Piped: no prompts, no banner, only the values; every input succeeded, so exit 0.
    deck.repl(&[], input).success().stdout_has("42\n\"hello world\"\n2\n");
}

#[test]
fn help_and_vars_commands() {
    let deck = Deck::new();
    let outcome = deck.repl(&[], ":help\n:help subnet\nlet answer = 42;\nlet name = \"web\";\n:vars\n").success();
    let out = &outcome.stdout;
    assert!(out.contains(":help NAME") && out.contains(":plan on|off") && out.contains(":load FILE"), "{out}");
    assert!(out.contains("subnet(vpc: Map, spec: Map) -> Map\n"), "{out}");
    assert!(out.contains("Ensures a subnet exists") && out.contains("Example:"), "{out}");
    assert!(has_row(out, "answer ", " 42"), "answer is listed by :vars:\n{out}");
    assert!(has_row(out, "name ", " \"web\""), "name is listed by :vars:\n{out}");
}

#[test]
fn errors_show_a_caret_and_the_session_goes_on() {
    let deck = Deck::new();
    let input = format!(
        ":stack r\nlet vpc = default_vpc();\n{}\n\"still here\"\nlet x = ;\n1 + 1\n:help subnett\n",
        SUBNET.replace("cidr:", "cidrr:")
    );
    let outcome = deck.repl(&[], &input);
    let outcome = outcome
        .failure()
        .stderr_has("error: unknown key `cidrr` in subnet()")
        .stderr_has(&format!("1 | {}\n  | ^", SUBNET.replace("cidr:", "cidrr:")))
        .stderr_has("error: syntax error")
        .stderr_has("1 | let x = ;\n  |         ^")
        .stderr_has("did you mean `subnet`?")
        // The exit status of a piped session is 1 when any input failed (`deckhand repl --help`).
        .stderr_has("error: 3 of 7 inputs failed")
        .stdout_has("stack: r\n");
    assert!(outcome.stdout.ends_with("\"still here\"\n2\n"), "the session went on:\n{}", outcome.stdout);
}

#[test]
fn plan_mode_sends_nothing_mutating_and_apply_mode_creates() {
    let deck = Deck::new();
    let plan = format!(":plan on\nstack(\"r\");\nlet vpc = default_vpc();\n{SUBNET}\n");
    let (outcome, requests) = deck.recorded(|| deck.repl(&[], &plan));
    outcome.success().stdout_has("+ subnet r-a ((known after apply), us-west-2a, 172.31.96.0/24)");
    requests.assert_read_only();
    assert!(stack_subnets(&deck, "r").is_empty());

    // `--plan` starts in plan mode just the same.
    let (outcome, requests) = deck.recorded(|| deck.repl(&["--plan"], &plan[":plan on\n".len()..]));
    outcome.success().stdout_has("+ subnet r-a ((known after apply)");
    requests.assert_read_only();

    // Plan, then apply, in one session: the only mutating request is the apply line's create.
    let both = format!("{plan}:plan off\n{SUBNET}\n{SUBNET}\n");
    let (outcome, requests) = deck.recorded(|| deck.repl(&[], &both));
    let changes = outcome.success().changes();
    assert_eq!(changes.len(), 3, "{changes:#?}");
    assert!(changes[0].starts_with("+ subnet r-a ((known after apply)"), "{changes:#?}");
    assert!(changes[1].starts_with("+ subnet r-a (subnet-"), "{changes:#?}");
    assert!(changes[2].starts_with("= subnet r-a (subnet-"), "{changes:#?}");
    assert_eq!(requests.mutating(), ["ec2 CreateSubnet"], "only the apply-mode line may change AWS");
    let subnets = stack_subnets(&deck, "r");
    assert_eq!(subnets.len(), 1);
    assert_eq!(subnets[0].cidr_block(), Some("172.31.96.0/24"));
}

#[test]
fn handles_print_as_tables() {
    let deck = Deck::new();
    let input = ":stack r\ndefault_vpc()\n[default_subnet(default_vpc(), \"us-west-2a\"), default_subnet(default_vpc(), \"us-west-2b\")]\n";
    let outcome = deck.repl(&[], input).success();
    let out = &outcome.stdout;
    // One handle: an aligned key/value table, kind first.
    assert!(has_row(out, "kind     ", " vpc"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("id       vpc-")), "{out}");
    assert!(has_row(out, "cidr     ", "172.31.0.0/16"), "{out}");
    assert!(has_row(out, "default  ", "true"), "{out}");
    // Several handles: a header, then one row per handle.
    let header = out.lines().find(|l| l.starts_with("kind ") && l.contains(" az ")).expect("a table header");
    assert!(header.contains(" cidr ") && header.contains(" vpc_id"), "{header}");
    let rows: Vec<&str> = out.lines().filter(|l| l.starts_with("subnet ")).collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert!(rows[0].contains("us-west-2a") && rows[1].contains("us-west-2b"), "{out}");
}

#[test]
fn load_runs_a_file_into_the_session() {
    let deck = Deck::new();
    deck.write("helpers.rhai", "fn web_rule(port) { #{ port: port, cidr: \"0.0.0.0/0\" } }\nlet loaded = 7;\n");
    deck.repl(&[], ":load helpers.rhai\nloaded * 6\nweb_rule(80).port\n").success().stdout_has("42\n80\n");
    deck.repl(&[], ":load missing.rhai\n").failure().stderr_has("reading missing.rhai");
}

#[test]
fn in_a_terminal_it_prompts_completes_keeps_history_and_exits_on_ctrl_d() {
    let deck = Deck::new();
    let steps = serde_json::json!([
        ["", ["deckhand repl", "> "]],
        ["let answer = 6 * 7;\r", ["7;", "> "]],
        ["answer\r", ["42", "> "]],
        ["secur\t", ["security_group"]],
        ["\u{3}", ["> "]],
        ["answ\t", ["answer"]],
        ["\u{3}", ["> "]],
        ["let m = #{ kind: \"x\", alpha: 1 };\r", ["};", "> "]],
        ["m.al\t", ["alpha"]],
        ["\u{3}", ["> "]],
        ["\u{4}", []],
    ]);
    let session = deck.terminal(&["repl"], &steps);
    let transcript = session.stdout.clone();
    assert!(session.code == 0, "the REPL session failed: {}\n--- transcript:\n{transcript}", session.stderr);
    assert!(transcript.contains("deckhand repl — region us-west-2"), "{transcript}");
    for completed in ["> security_group", "> answer", "> m.alpha"] {
        assert!(transcript.contains(completed), "Tab completes {completed:?}:\n{transcript}");
    }

    // The history is kept for the next session.
    let history = std::fs::read_to_string(deck.dir().join("state/deckhand/history")).expect("a history file");
    assert!(history.contains("let answer = 6 * 7;"), "{history}");
}

#[test]
fn in_a_terminal_ctrl_c_interrupts_a_running_statement_not_the_session() {
    // This service's task never runs (its awslogs group does not exist: each stops before it runs
    // and ECS launches another; no circuit breaker gives up), so wait_stable would wait its full
    // timeout.
    let deck = Deck::new();
    let service = concat!(
        r#"let svc = service(cluster("int"), #{ name: "s", desired: 1, public_ip: true, circuit_breaker: false, "#,
        r#"subnets: [default_subnet(default_vpc(), "us-west-2a")], task: task_definition(#{ family: "s", "#,
        r#"cpu: 256, memory: 512, containers: [#{ name: "app", image: "nginx", port: 80, logs: "/ecs/never-created" }] }) });"#,
        "\r"
    );
    let steps = serde_json::json!([
        ["", ["> "]],
        ["stack(\"int\");\r", ["> "]],
        [service, ["+ service s", "> "]],
        ["wait_stable(svc, #{ timeout: 300 });\r", ["0/1 running"]],
        ["\u{3}", ["interrupted (Ctrl-C) while waiting for service s", "> "]],
        ["6 * 7\r", ["42", "> "]],
        ["\u{4}", []],
    ]);
    let session = deck.terminal(&["repl"], &steps);
    assert_eq!(session.code, 0, "the session survived the interrupt: {}\n{}", session.stderr, session.stdout);
}
