//! The local emulator behaves like AWS where deckhand depends on it: services run what they are
//! asked to, CreateService keeps the capacity provider strategy, FilterLogEvents searches only the
//! streams with the given prefix; and output to a reader that went away ends quietly.

use std::process::Stdio;

use crate::support::Deck;

const BUNDLED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/fargate-alb.rhai");

#[test]
fn a_service_runs_as_many_tasks_as_desired_on_the_strategy_it_was_created_with() {
    let deck = Deck::new();
    deck.deckhand(&["run", BUNDLED, "--var", "desired=3"])
        .success()
        .stdout_has("service myapp is stable: 3/3 running, 0 pending, rollout COMPLETED")
        .stdout_has("http://");
    deck.deckhand(&["status", "--stack", "myapp"])
        .success()
        .stdout_has("Service myapp (cluster myapp): ACTIVE, 3 running / 0 pending / 3 desired");

    let aws = deck.aws();
    let out = aws.block_on(aws.ecs.describe_services().cluster("myapp").services("myapp").send()).unwrap();
    let service = &out.services()[0];
    assert_eq!((service.running_count(), service.pending_count()), (3, 0));
    let strategy: Vec<(&str, i32)> =
        service.capacity_provider_strategy().iter().map(|s| (s.capacity_provider(), s.weight())).collect();
    assert_eq!(strategy, [("FARGATE", 1)], "{service:?}");
    assert_eq!(service.launch_type(), None, "a service on a capacity provider has no launch type");
    let deployment = service.deployment_configuration().expect("AWS reports the deployment configuration");
    assert_eq!((deployment.minimum_healthy_percent(), deployment.maximum_percent()), (Some(100), Some(200)));

    // What AWS reports back is what the script asks for: the second run changes nothing.
    let again = deck.deckhand(&["run", BUNDLED, "--var", "desired=3"]).success();
    assert!(again.changes().iter().all(|c| c.starts_with("= ")), "{:?}", again.changes());

    // Scaling is reported at once too.
    deck.deckhand(&["run", BUNDLED, "--var", "desired=1"])
        .success()
        .stdout_has("~ service myapp")
        .stdout_has("service myapp is stable: 1/1 running");
}

#[test]
fn filter_log_events_searches_only_the_streams_with_the_prefix() {
    let deck = Deck::new();
    let aws = deck.aws();
    let group = "/ecs/prefixes";
    aws.block_on(async {
        aws.logs.create_log_group().log_group_name(group).send().await.unwrap();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        for stream in ["web/app/1", "web/app/2", "web/sidecar/1", "worker/app/1"] {
            aws.logs.create_log_stream().log_group_name(group).log_stream_name(stream).send().await.unwrap();
            let event = aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(now)
                .message(format!("from {stream}"))
                .build()
                .unwrap();
            aws.logs
                .put_log_events()
                .log_group_name(group)
                .log_stream_name(stream)
                .log_events(event)
                .send()
                .await
                .unwrap();
        }
    });
    let streams_with = |prefix: &str| -> Vec<String> {
        let out = aws
            .block_on(aws.logs.filter_log_events().log_group_name(group).log_stream_name_prefix(prefix).send())
            .expect("FilterLogEvents");
        let mut streams: Vec<String> =
            out.events().iter().map(|e| e.log_stream_name().unwrap_or_default().to_string()).collect();
        streams.sort();
        streams
    };
    assert_eq!(streams_with("web/app/"), ["web/app/1", "web/app/2"]);
    assert_eq!(streams_with("web/"), ["web/app/1", "web/app/2", "web/sidecar/1"]);
    assert_eq!(streams_with("nothing/"), Vec::<String>::new(), "no stream matches: no events, not all of them");

    let both = aws.block_on(
        aws.logs
            .filter_log_events()
            .log_group_name(group)
            .log_stream_name_prefix("web/")
            .log_stream_names("web/app/1")
            .send(),
    );
    let err = both.expect_err("AWS refuses logStreamNames with logStreamNamePrefix");
    assert_eq!(err.as_service_error().and_then(|e| e.meta().code()), Some("InvalidParameterException"), "{err:?}");
}

/// Runs `deckhand ARGS` with its stdout closed before it writes anything, as `| head -0` would.
fn with_closed_stdout(deck: &Deck, args: &[&str]) -> (i32, String) {
    let mut child = deck
        .command(env!("CARGO_BIN_EXE_deckhand"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("deckhand starts");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("deckhand runs");
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn output_to_a_closed_pipe_ends_quietly() {
    let deck = Deck::new();
    for args in [&["docs"][..], &["docs", "subnet"], &["status", "--stack", "nothing", "--output", "json"]] {
        let (code, stderr) = with_closed_stdout(&deck, args);
        assert_eq!((code, stderr.as_str()), (0, ""), "deckhand {args:?}");
    }
}
