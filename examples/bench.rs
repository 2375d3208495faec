//! The benchmark: runs the bundled script against the local emulator with a fixed latency per AWS
//! request, and prints the AWS calls, the wall time and the modelled AWS time (what the run would
//! take on AWS: the rehearsal line deckhand ends a scaled run with) of the first apply, of the
//! no-op re-run and of an image update (`--var image=...` with another tag).
//!
//! ```text
//! cargo run --example bench -- --latency-ms 50                 # the bundled script
//! cargo run --example bench -- --latency-ms 50 --foreign 200   # after 200 foreign LBs + TGs
//! cargo run --example bench -- --latency-ms 50 -v              # -v: each call of the no-op, timed
//! cargo run --example bench -- --latency-ms 50 --runs 9        # the no-op's median of 9 runs
//! cargo run --example bench -- --time-scale 0.05               # modelled time 20x as fast
//! cargo run --example bench -- --domain                        # HTTPS: --var domain, zone example.com
//! cargo run --example bench -- --latency-ms 50 --time-scale 0.001   # the calls alone: waits ~0
//! ```
//!
//! Besides the measured runs, it derives the critical path on AWS of the first apply and of the
//! image update from the emulator model's durations (`src/emulator/*.py`: NAT gateway, load
//! balancer, certificate, task start and stop) and the target group's settings as the script made
//! them (read back through the SDK: health check interval, deregistration delay), the way deckhand
//! overlaps its waits: the service waits for the NAT gateway (and, behind the HTTPS listener, for
//! the certificate), its targets' health checks start once both they run and the load balancer is
//! active; a new target is healthy after one passed check (one interval; the healthy threshold
//! applies only to a target recovering, see `check_health` in `src/emulator/ecs.py`), and an
//! update completes once the old tasks drained and stopped (`settle_if_steady`).
//!
//! The emulator and deckhand run at one time scale (`--time-scale`, default 0.02, as `--local`):
//! the modelled AWS time does not depend on it (nor on the latency), the wall time does.
//!
//! `--foreign N` first creates N load balancers and N target groups of another team (tagged
//! `team=other`, no stack tag): a stack's reads should scale with the stack, not the region, so
//! the call counts must match the run without them.
//!
//! The no-op re-run is run `--runs` times (default 5) and its median reported, with the fastest
//! and slowest: one run's time varies with what else the machine (and the emulator, which shares
//! it) is doing.
//!
//! deckhand runs as a child process (this binary re-executed as the CLI), so each run is timed
//! as a user would see it, startup included.

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use aws_sdk_elasticloadbalancingv2::types::{ProtocolEnum, Tag, TargetTypeEnum};
use deckhand::local::{Emulator, LATENCY_ENV, LOCAL_REGION, TIME_SCALE_ENV, cli_env};
use deckhand::runtime::{Aws, Target};
use deckhand::timing::TimeScale;
use futures_util::future::join_all;

/// Set in the child: run as the deckhand CLI.
const AS_CLI: &str = "DECKHAND_BENCH_AS_CLI";

struct Options {
    latency_ms: u64,
    foreign: usize,
    script: String,
    runs: usize,
    verbose: bool,
    time_scale: String,
    domain: bool,
}

/// The hosted zone and the name `--domain` deploys (the zone is created in the emulator first).
const BENCH_ZONE: &str = "example.com";
const BENCH_DOMAIN: &str = "app.example.com";

/// The image of the image update: another tag of the bundled script's default image.
const UPDATED_IMAGE: &str = "public.ecr.aws/nginx/nginx-unprivileged:stable-alpine";

/// What one `deckhand run` reported.
struct Run {
    calls: usize,
    wall: Duration,
    /// The modelled AWS time, from the rehearsal line.
    aws: Duration,
}

fn main() -> ExitCode {
    if std::env::var_os(AS_CLI).is_some() {
        return deckhand::main();
    }
    let options = match parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!(
                "bench: {message}\nusage: bench [--latency-ms 50] [--foreign N] [--script PATH] [--runs N] [--time-scale S] [--domain] [-v]"
            );
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
    let mut options = Options {
        latency_ms: 50,
        foreign: 0,
        script: "scripts/fargate-alb.rhai".into(),
        runs: 5,
        verbose: false,
        time_scale: TimeScale::LOCAL.factor().to_string(),
        domain: false,
    };
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--latency-ms" => options.latency_ms = value()?.parse().map_err(|e| format!("--latency-ms: {e}"))?,
            "--foreign" => options.foreign = value()?.parse().map_err(|e| format!("--foreign: {e}"))?,
            "--script" => options.script = value()?,
            "--runs" => match value()?.parse() {
                Ok(n) if n > 0 => options.runs = n,
                _ => return Err("--runs takes a whole number above 0".into()),
            },
            "--time-scale" => {
                options.time_scale = value()?;
                TimeScale::parse(&options.time_scale).map_err(|e| e.to_string())?;
            }
            "-v" | "--verbose" => options.verbose = true,
            "--domain" => options.domain = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(options)
}

fn bench(options: &Options) -> Result<(), String> {
    let latency = options.latency_ms.to_string();
    let env = [(LATENCY_ENV, latency.as_str()), (TIME_SCALE_ENV, options.time_scale.as_str())];
    let emulator = Emulator::start_with_env(&env).map_err(|e| e.to_string())?;
    println!(
        "emulator at {} with {} ms per AWS request, time scale {}",
        emulator.endpoint_url(),
        options.latency_ms,
        options.time_scale
    );
    if options.foreign > 0 {
        let started = Instant::now();
        create_foreign(&emulator, options.foreign)?;
        println!(
            "created {n} foreign load balancers and {n} target groups in {:.1} s",
            started.elapsed().as_secs_f64(),
            n = options.foreign
        );
    }
    let domain_vars = [format!("domain={BENCH_DOMAIN}"), format!("zone={BENCH_ZONE}")];
    let mut vars: Vec<&str> = Vec::new();
    if options.domain {
        create_zone(&emulator)?;
        for var in &domain_vars {
            vars.extend(["--var", var.as_str()]);
        }
    }
    // The emulator answers its first requests of each service slowly (moto loads the service's
    // backend then): a plan first, untimed, so the first apply measures deckhand, not that.
    warm_up(&emulator, options, &vars)?;
    let first = run_deckhand(&emulator, options, &vars, false)?;
    let mut noops = Vec::with_capacity(options.runs);
    for i in 0..options.runs {
        // -v shows the calls of the first no-op only.
        noops.push(run_deckhand(&emulator, options, &vars, options.verbose && i == 0)?);
    }
    let noop_calls = noops[0].calls;
    if let Some(run) = noops.iter().find(|run| run.calls != noop_calls) {
        return Err(format!("no-op re-runs made {noop_calls} and {} AWS calls: they should not differ", run.calls));
    }
    let image = format!("image={UPDATED_IMAGE}");
    let update_vars: Vec<&str> = vars.iter().copied().chain(["--var", image.as_str()]).collect();
    let update = run_deckhand(&emulator, options, &update_vars, false)?;
    let settings = target_group_settings(&emulator)?;
    noops.sort_by_key(|run| run.wall);
    let median = &noops[noops.len() / 2];
    println!();
    println!("{:<16} {:>9} {:>10} {:>13}", "run", "AWS calls", "wall time", "on AWS (est.)");
    let row = |name: &str, run: &Run, note: String| {
        println!(
            "{name:<16} {:>9} {:>8.2} s {:>13}{note}",
            run.calls,
            run.wall.as_secs_f64(),
            deckhand::timing::about(run.aws)
        );
    };
    row("first apply", &first, String::new());
    let spread = format!(
        "  (median of {}: {:.2}-{:.2} s)",
        noops.len(),
        noops[0].wall.as_secs_f64(),
        noops[noops.len() - 1].wall.as_secs_f64()
    );
    row("no-op re-run", median, spread);
    row("image update", &update, String::new());
    println!();
    critical_path(&Model::embedded()?, &settings, options.domain);
    Ok(())
}

/// The emulator model's durations (modelled seconds), read from its sources, so the derived
/// critical path follows the model as it changes.
struct Model {
    nat: u64,
    load_balancer: u64,
    certificate: u64,
    task_start: u64,
    task_stop: u64,
}

impl Model {
    fn embedded() -> Result<Model, String> {
        let network = include_str!("../src/emulator/network.py");
        let tasks = include_str!("../src/emulator/tasks.py");
        Ok(Model {
            nat: constant(network, "NAT_PROVISIONING")?,
            load_balancer: constant(network, "LOAD_BALANCER_PROVISIONING")?,
            certificate: constant(network, "CERTIFICATE_VALIDATION")?,
            task_start: constant(tasks, "PROVISIONING_SECONDS")? + constant(tasks, "PENDING_SECONDS")?,
            task_stop: constant(tasks, "STOPPING_SECONDS")? + constant(tasks, "DEPROVISIONING_SECONDS")?,
        })
    }
}

/// `NAME = <seconds>` at the start of a line of an emulator source.
fn constant(source: &str, name: &str) -> Result<u64, String> {
    source
        .lines()
        .find_map(|line| line.strip_prefix(name)?.trim_start().strip_prefix('=')?.trim().parse().ok())
        .ok_or_else(|| format!("no `{name} = <seconds>` in the emulator's model"))
}

/// What the script's target group asks of a rollout.
struct TargetGroupSettings {
    interval: u64,
    deregistration_delay: u64,
}

/// Prints the critical path on AWS of the first apply and of an image update, by the model.
fn critical_path(model: &Model, tg: &TargetGroupSettings, domain: bool) {
    // A newly registered target needs one passed check (ELB: "it must pass one health check to be
    // considered healthy"), the first modelled one interval after the checks start.
    let health = tg.interval;
    // The script blocks at the HTTPS listener until the certificate is issued; the service waits
    // for the NAT gateway; both were created at the start (the certificate's CNAME with it).
    let service_at = if domain { model.nat.max(model.certificate) } else { model.nat };
    let running_at = service_at + model.task_start;
    let healthy_at = running_at.max(model.load_balancer) + health;
    let secs = |s: u64| deckhand::timing::about(Duration::from_secs(s));
    println!(
        "critical path on AWS, by the model (target group: a new target healthy after 1 check, every {} s; draining {} s):",
        tg.interval, tg.deregistration_delay
    );
    println!(
        "  first apply   {:>7}  = max(service at {} s [NAT gateway {} s{}] + task start {} s, load balancer {} s) + health check {} s",
        secs(healthy_at),
        service_at,
        model.nat,
        if domain { format!(", certificate {} s", model.certificate) } else { String::new() },
        model.task_start,
        model.load_balancer,
        health
    );
    let update = model.task_start + health + tg.deregistration_delay + model.task_stop;
    println!(
        "  image update  {:>7}  = task start {} s + health check {} s + draining {} s + task stop {} s",
        secs(update),
        model.task_start,
        health,
        tg.deregistration_delay,
        model.task_stop
    );
}

/// Creates the public hosted zone `--domain` validates its certificate in.
fn create_zone(emulator: &Emulator) -> Result<(), String> {
    let aws = connect(emulator)?;
    aws.block_on(aws.route53.create_hosted_zone().name(BENCH_ZONE).caller_reference("bench").send())
        .map(drop)
        .map_err(|e| format!("CreateHostedZone: {e:?}"))
}

/// The settings of the bundled script's target group (named after the app, `myapp`).
fn target_group_settings(emulator: &Emulator) -> Result<TargetGroupSettings, String> {
    let aws = connect(emulator)?;
    aws.block_on(async {
        let groups = aws.elbv2.describe_target_groups().names("myapp").send().await.map_err(|e| format!("{e:?}"))?;
        let group = groups.target_groups().first().ok_or("no target group myapp")?;
        let arn = group.target_group_arn().unwrap_or_default();
        let attributes = aws
            .elbv2
            .describe_target_group_attributes()
            .target_group_arn(arn)
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        let delay = attributes
            .attributes()
            .iter()
            .find(|a| a.key() == Some("deregistration_delay.timeout_seconds"))
            .and_then(|a| a.value()?.parse().ok())
            .unwrap_or(300);
        let positive = |n: Option<i32>, default: u64| n.and_then(|n| u64::try_from(n).ok()).unwrap_or(default);
        Ok(TargetGroupSettings {
            interval: positive(group.health_check_interval_seconds(), 30),
            deregistration_delay: delay,
        })
    })
}

fn connect(emulator: &Emulator) -> Result<Aws, String> {
    Aws::connect(&Target {
        region: Some(LOCAL_REGION.into()),
        profile: None,
        endpoint_url: Some(emulator.endpoint_url()),
        dummy_credentials: true,
        time_scale: None,
    })
    .map_err(|e| e.to_string())
}

/// Runs `deckhand run SCRIPT EXTRA` against the emulator; returns its AWS calls (from its summary
/// line), its wall time and its modelled AWS time (from its rehearsal line).
fn run_deckhand(emulator: &Emulator, options: &Options, extra: &[&str], verbose: bool) -> Result<Run, String> {
    let exe = std::env::current_exe().map_err(|e| format!("finding this executable: {e}"))?;
    let mut command = Command::new(exe);
    command.arg("run").arg(&options.script).args(extra);
    if verbose {
        command.arg("-v");
    }
    command.env(AS_CLI, "1").envs(cli_env(emulator.endpoint_url())).env(TIME_SCALE_ENV, &options.time_scale);
    if verbose {
        command.stderr(std::process::Stdio::inherit());
    }
    let started = Instant::now();
    let output = command.output().map_err(|e| format!("running deckhand: {e}"))?;
    let wall = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!("deckhand run failed:\n{stdout}{}", String::from_utf8_lossy(&output.stderr)));
    }
    let summary = stdout
        .lines()
        .rev()
        .find(|l| l.contains("AWS call") && !l.starts_with("rehearsed: "))
        .ok_or("no summary line")?;
    let rehearsal = stdout.lines().rev().find(|l| l.starts_with("rehearsed: ")).ok_or("no rehearsal line")?;
    println!("{summary}  [{:.2} s]\n  {rehearsal}", wall.as_secs_f64());
    let calls = summary
        .rsplit('(')
        .next()
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("no call count in {summary:?}"))?;
    let aws = rehearsal
        .strip_prefix("rehearsed: about ")
        .and_then(|rest| rest.split_once(" on AWS"))
        .and_then(|(total, _)| humantime::parse_duration(total).ok())
        .ok_or_else(|| format!("no modelled time in {rehearsal:?}"))?;
    Ok(Run { calls, wall, aws })
}

/// Runs `deckhand run --plan SCRIPT` (read-only) once, so that every service the script uses has
/// answered the emulator's first, slow request.
fn warm_up(emulator: &Emulator, options: &Options, vars: &[&str]) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("finding this executable: {e}"))?;
    let output = Command::new(exe)
        .arg("run")
        .arg(&options.script)
        .arg("--plan")
        .args(vars)
        .env(AS_CLI, "1")
        .envs(cli_env(emulator.endpoint_url()))
        .env(TIME_SCALE_ENV, &options.time_scale)
        .output()
        .map_err(|e| format!("running deckhand: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("deckhand run --plan failed:\n{}", String::from_utf8_lossy(&output.stderr)))
    }
}

/// Creates `n` internet-facing load balancers and `n` target groups that belong to another team.
fn create_foreign(emulator: &Emulator, n: usize) -> Result<(), String> {
    let aws = connect(emulator)?;
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
