//! Time: `DECKHAND_TIME_SCALE` is honoured only against an endpoint URL (a stray one never
//! shrinks real AWS's waits), is validated before any request, and a scaled run ends with what it
//! would take on AWS (the rehearsal line).

use std::process::Command;
use std::time::Duration;

use deckhand::local::TIME_SCALE_ENV;

use crate::support::{Deck, Outcome};

/// `deckhand ARGS` with no endpoint, no credentials and no AWS config: it can reach nothing, so
/// whatever it says it says before (or instead of) talking to AWS.
fn deckhand_without_aws(args: &[&str], env: &[(&str, &str)]) -> Outcome {
    let mut command = Command::new(env!("CARGO_BIN_EXE_deckhand"));
    for (key, _) in std::env::vars() {
        if key.starts_with("AWS_") || key == TIME_SCALE_ENV {
            command.env_remove(key);
        }
    }
    command
        .args(args)
        .env("AWS_REGION", "us-west-2")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("NO_COLOR", "1")
        .envs(env.iter().copied());
    Outcome::of(args, command.output().expect("deckhand runs"))
}

#[test]
fn a_stray_time_scale_against_aws_itself_is_ignored_with_a_warning() {
    for value in ["0.01", "fast"] {
        let outcome = deckhand_without_aws(&["status", "--stack", "myapp"], &[(TIME_SCALE_ENV, value)]).failure();
        // It got as far as asking AWS (which it cannot reach without credentials): the variable,
        // even an invalid one, stopped nothing and changed nothing.
        let outcome = outcome
            .stderr_has(&format!("warning: {TIME_SCALE_ENV}={value} is ignored"))
            .stderr_has("no endpoint URL")
            .stderr_has("no AWS credentials");
        assert!(!outcome.stdout.contains("rehearsed:"), "{outcome:?}");
    }
    let quiet = deckhand_without_aws(&["status", "--stack", "myapp"], &[]).failure().stderr_has("no AWS credentials");
    assert!(!quiet.stderr.contains(TIME_SCALE_ENV), "no variable, no warning: {quiet:?}");
}

#[test]
fn an_invalid_time_scale_is_rejected_before_any_request() {
    // Nothing listens on the discard port: a request would fail differently.
    let endpoint =
        [("AWS_ENDPOINT_URL", "http://127.0.0.1:9"), ("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test")];
    for value in ["0", "1.5", "-1", "fast"] {
        let env: Vec<(&str, &str)> = endpoint.iter().copied().chain([(TIME_SCALE_ENV, value)]).collect();
        let outcome = deckhand_without_aws(&["status", "--stack", "myapp"], &env).failure();
        let outcome = outcome.stderr_has(TIME_SCALE_ENV).stderr_has(&format!("{value:?}")).stderr_has("at most 1");
        assert!(!outcome.stderr.contains("127.0.0.1:9"), "no request was attempted: {outcome:?}");
    }
    // --local checks it before it starts (or installs) the emulator.
    deckhand_without_aws(&["status", "--local", "--stack", "myapp"], &[(TIME_SCALE_ENV, "2")])
        .failure()
        .stderr_has(TIME_SCALE_ENV)
        .stderr_has("at most 1");
}

/// The rehearsal line's total, its named waits and its AWS calls: `rehearsed: about 5m 10s on AWS
/// (NAT gateway 1m 30s, rollout 3m 20s, AWS calls 2s: 35 rounds at 60 ms)`.
fn rehearsal(outcome: &Outcome) -> (Duration, Vec<(String, Duration)>, (Duration, usize)) {
    let last = outcome.stdout.lines().last().unwrap_or_default();
    let rest = last.strip_prefix("rehearsed: about ").unwrap_or_else(|| panic!("no rehearsal line last:\n{outcome:?}"));
    let (total, parts) = rest.split_once(" on AWS (").expect("the total, then its parts");
    let duration = |text: &str| humantime::parse_duration(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
    let parts = parts.strip_suffix(" ms)").expect("parts in parentheses, the latency last");
    let (waits, calls) = parts.rsplit_once("AWS calls ").expect("the calls last");
    let (calls, rounds) = calls.split_once(": ").expect("the calls' time, then their rounds");
    let (rounds, latency) = rounds.split_once(" rounds at ").expect("rounds at a latency");
    assert_eq!(latency, "60");
    let waits = waits
        .split(", ")
        .filter(|part| !part.is_empty())
        .map(|part| {
            // The duration is the part's last words that parse as one (`1m 30s`, `2s`).
            let words: Vec<&str> = part.split(' ').collect();
            let at = (0..words.len())
                .find(|&i| humantime::parse_duration(&words[i..].join(" ")).is_ok())
                .unwrap_or_else(|| panic!("no duration in {part:?}"));
            (words[..at].join(" "), duration(&words[at..].join(" ")))
        })
        .collect();
    (duration(total), waits, (duration(calls), rounds.parse().expect("a number of rounds")))
}

#[test]
fn a_scaled_run_ends_with_what_it_would_take_on_aws_naming_its_waits() {
    let deck = Deck::new();
    let script = r#"
stack("priv");
let vpc = default_vpc();
let subnet = subnet(vpc, #{ name: "priv-a", az: "us-west-2a", cidr: "172.31.96.0/24" });
let nat = nat_gateway(default_subnet(vpc, "us-west-2a"), #{ name: "priv-nat" });
route_table(vpc, #{ name: "priv-private", subnets: [subnet], routes: [#{ cidr: "0.0.0.0/0", nat_gateway: nat }] });
"#;
    let first = deck.run(script, &[]).success().stdout_has("+ nat_gateway priv-nat");
    let (total, waits, (calls, rounds)) = rehearsal(&first);
    let names: Vec<&str> = waits.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["NAT gateway"], "the NAT gateway's wait is named, and only waits that waited");
    // The emulator keeps a NAT gateway pending for 90 s modelled; the wait ends at the first poll
    // after that.
    let nat = waits[0].1;
    assert!(nat >= Duration::from_secs(80) && nat <= Duration::from_secs(300), "{nat:?}");
    assert!(rounds > 3, "the run's calls are counted in rounds: {rounds}");
    assert_eq!(calls.as_secs(), (rounds as u64 * 60 + 500) / 1000, "each round at 60 ms");
    assert!(total + Duration::from_secs(1) >= nat + calls, "the total adds the waits and the calls");
    assert!(total < nat + calls + Duration::from_secs(60), "and little else: {total:?}");
    // The NAT gateway exists, available: the wait it rehearsed was a real one.
    let aws = deck.aws();
    let nats = aws.block_on(aws.ec2.describe_nat_gateways().send()).unwrap();
    assert!(nats.nat_gateways().iter().any(|n| n.state().is_some_and(|s| s.as_str() == "available")));

    // The no-op re-run waits for nothing: only its calls.
    let again = deck.run(script, &[]).success().stdout_has("no changes");
    let (_, waits, _) = rehearsal(&again);
    assert_eq!(waits, [], "no wait named");

    // Against the same endpoint without a scale, deckhand runs in real time and says nothing.
    let mut command = deck.command(env!("CARGO_BIN_EXE_deckhand"));
    command.env_remove(TIME_SCALE_ENV).args(["run", "deploy.rhai"]);
    let unscaled = Outcome::of(&["run", "deploy.rhai"], command.output().unwrap()).success().stdout_has("no changes");
    assert!(!unscaled.stdout.contains("rehearsed:"), "{unscaled:?}");
}
