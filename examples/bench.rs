//! The benchmark: runs the bundled script against the local emulator with a fixed latency per AWS
//! request, and prints the AWS calls and wall time of the first apply and of the no-op re-run.
//!
//! ```text
//! cargo run --example bench -- --latency-ms 50                 # the bundled script
//! cargo run --example bench -- --latency-ms 50 --foreign 200   # after 200 foreign LBs + TGs
//! cargo run --example bench -- --latency-ms 50 -v              # -v: each call of the no-op, timed
//! ```
//!
//! `--foreign N` first creates N load balancers and N target groups of another team (tagged
//! `team=other`, no stack tag): a stack's reads should scale with the stack, not the region, so
//! the call counts must match the run without them.
//!
//! deckhand runs as a child process (this binary re-executed as the CLI), so each run is timed
//! as a user would see it, startup included.

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use aws_sdk_elasticloadbalancingv2::types::{ProtocolEnum, Tag, TargetTypeEnum};
use deckhand::local::{Emulator, LATENCY_ENV, LOCAL_REGION, cli_env};
use deckhand::runtime::{Aws, Target};
use futures_util::future::join_all;

/// Set in the child: run as the deckhand CLI.
const AS_CLI: &str = "DECKHAND_BENCH_AS_CLI";

struct Options {
    latency_ms: u64,
    foreign: usize,
    script: String,
    verbose: bool,
}

fn main() -> ExitCode {
    if std::env::var_os(AS_CLI).is_some() {
        return deckhand::main();
    }
    let options = match parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("bench: {message}\nusage: bench [--latency-ms 50] [--foreign N] [--script PATH] [-v]");
            return ExitCode::FAILURE;
        }
    };
    match bench(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("bench: {message}");
            ExitCode::FAILURE
        }
    }
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options { latency_ms: 50, foreign: 0, script: "scripts/fargate-alb.rhai".into(), verbose: false };
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--latency-ms" => options.latency_ms = value()?.parse().map_err(|e| format!("--latency-ms: {e}"))?,
            "--foreign" => options.foreign = value()?.parse().map_err(|e| format!("--foreign: {e}"))?,
            "--script" => options.script = value()?,
            "-v" | "--verbose" => options.verbose = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(options)
}

fn bench(options: &Options) -> Result<(), String> {
    let latency = options.latency_ms.to_string();
    let emulator = Emulator::start_with_env(&[(LATENCY_ENV, &latency)]).map_err(|e| e.to_string())?;
    println!("emulator at {} with {} ms per AWS request", emulator.endpoint_url(), options.latency_ms);
    if options.foreign > 0 {
        let started = Instant::now();
        create_foreign(&emulator, options.foreign)?;
        println!(
            "created {n} foreign load balancers and {n} target groups in {:.1} s",
            started.elapsed().as_secs_f64(),
            n = options.foreign
        );
    }
    let first = run_deckhand(&emulator, options, false)?;
    let noop = run_deckhand(&emulator, options, options.verbose)?;
    println!();
    println!("{:<16} {:>9} {:>10}", "run", "AWS calls", "wall time");
    for (what, (calls, took)) in [("first apply", first), ("no-op re-run", noop)] {
        println!("{what:<16} {calls:>9} {:>8.2} s", took.as_secs_f64());
    }
    Ok(())
}

/// Runs `deckhand run SCRIPT` against the emulator; returns its AWS calls (from its summary line)
/// and its wall time.
fn run_deckhand(emulator: &Emulator, options: &Options, verbose: bool) -> Result<(usize, Duration), String> {
    let exe = std::env::current_exe().map_err(|e| format!("finding this executable: {e}"))?;
    let mut command = Command::new(exe);
    command.arg("run").arg(&options.script);
    if verbose {
        command.arg("-v");
    }
    command.env(AS_CLI, "1").envs(cli_env(emulator.endpoint_url()));
    if verbose {
        command.stderr(std::process::Stdio::inherit());
    }
    let started = Instant::now();
    let output = command.output().map_err(|e| format!("running deckhand: {e}"))?;
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!("deckhand run failed:\n{stdout}{}", String::from_utf8_lossy(&output.stderr)));
    }
    let summary = stdout.lines().rev().find(|l| l.contains("AWS call")).ok_or("no summary line")?;
    println!("{summary}  [{:.2} s]", took.as_secs_f64());
    let calls = summary
        .rsplit('(')
        .next()
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("no call count in {summary:?}"))?;
    Ok((calls, took))
}

/// Creates `n` internet-facing load balancers and `n` target groups that belong to another team.
fn create_foreign(emulator: &Emulator, n: usize) -> Result<(), String> {
    let aws = Aws::connect(&Target {
        region: Some(LOCAL_REGION.into()),
        profile: None,
        endpoint_url: Some(emulator.endpoint_url()),
        dummy_credentials: true,
    })
    .map_err(|e| e.to_string())?;
    aws.block_on(async {
        let vpc = aws
            .ec2
            .describe_vpcs()
            .send()
            .await
            .map_err(|e| format!("DescribeVpcs: {e:?}"))?
            .vpcs()
            .iter()
            .find(|v| v.is_default() == Some(true))
            .and_then(|v| v.vpc_id().map(str::to_string))
            .ok_or("no default VPC")?;
        let subnets: Vec<String> = aws
            .ec2
            .describe_subnets()
            .send()
            .await
            .map_err(|e| format!("DescribeSubnets: {e:?}"))?
            .subnets()
            .iter()
            .filter(|s| s.vpc_id() == Some(vpc.as_str()))
            .filter_map(|s| s.subnet_id().map(str::to_string))
            .take(2)
            .collect();
        let tag = Tag::builder().key("team").value("other").build();
        // In batches: many at once, as a busy account's other teams would have made them.
        for batch in (0..n).collect::<Vec<_>>().chunks(25) {
            let creates = batch.iter().map(|i| {
                let (aws, vpc, subnets, tag) = (&aws, &vpc, &subnets, &tag);
                async move {
                    aws.elbv2
                        .create_load_balancer()
                        .name(format!("other-lb-{i}"))
                        .set_subnets(Some(subnets.clone()))
                        .tags(tag.clone())
                        .send()
                        .await
                        .map_err(|e| format!("CreateLoadBalancer: {e:?}"))?;
                    aws.elbv2
                        .create_target_group()
                        .name(format!("other-tg-{i}"))
                        .protocol(ProtocolEnum::Http)
                        .port(80)
                        .vpc_id(vpc)
                        .target_type(TargetTypeEnum::Ip)
                        .tags(tag.clone())
                        .send()
                        .await
                        .map_err(|e| format!("CreateTargetGroup: {e:?}"))?;
                    Ok::<(), String>(())
                }
            });
            for result in join_all(creates).await {
                result?;
            }
        }
        Ok(())
    })
}
