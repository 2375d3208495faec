//! The command line: argument parsing (clap) and the commands `run`, `check`, `destroy`, `repl`,
//! `docs`, `status`, `logs`, `unlock`, `task run` and `exec` (`rollback` lives in `rollback.rs`).

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;

use clap::{Args, Parser, Subcommand};

use crate::aws::Declared;
use crate::aws::{Pass, State};
use crate::destroy::StackContents;
use crate::error::{Error, Result};
use crate::local::LOCAL_REGION;
use crate::lock::{LockOptions, StackLock, Unlocked};
use crate::plan::{Mode, Sink};
use crate::prune::{Prune, PruneOptions};
use crate::runtime::Aws;
use crate::script::{Script, Vars, styled_error};
use crate::timing::TIME_SCALE_ENV;

/// Deploy and operate Amazon ECS services from small Rhai scripts.
#[derive(Debug, Parser)]
#[command(
    name = "deckhand",
    version,
    about,
    long_about = None,
    after_help = "Examples:
  deckhand run --local scripts/fargate-alb.rhai       try the bundled guide, no AWS account needed
  deckhand run --plan deploy.rhai --var image=app:2   what would change (read-only)
  deckhand run deploy.rhai --var image=app:2          plan, then apply
  deckhand destroy --stack myapp                      delete everything of a stack
  deckhand rollback --stack myapp                     back to what ran before the last deploy
  deckhand docs subnet                                one script function in full
  deckhand task run --stack myapp --service myapp -- ./migrate   a one-off task; exits with its code
  deckhand exec --stack myapp --service myapp         a shell in a running task (ECS Exec)"
)]
pub struct Cli {
    /// Log every AWS call (service, operation, duration); -vv adds SDK detail.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a deploy script: plan everything first (read-only), then apply the changes.
    ///
    /// The whole script runs once in plan mode, sending only Describe/List/Get requests. Only
    /// when that pass gets through without error does deckhand run it again to create and update;
    /// a plan with no changes skips the apply pass. Every resource is reported as `+` (create),
    /// `~` (update, with the fields that differ) or `=` (unchanged); what the stack owns but the
    /// script no longer declares as `-` (deleted after the creates and updates, dependents first)
    /// or `= kept` with why (log groups without `--delete-logs`, everything with
    /// `--keep-undeclared`). A plan deleting more than half of the stack needs `--yes`.
    ///
    /// The apply pass holds the stack lock (see `deckhand unlock --help`): while another run
    /// applies the same stack, this one waits (--lock-timeout), then reads the stack afresh, so two
    /// runs never create the same resources twice. Plan passes and --plan take no lock.
    Run(RunArgs),
    /// Parse and validate a script without any AWS request.
    ///
    /// Every primitive runs as if the account were empty, so typos in map keys, wrong types,
    /// invalid CIDRs, ports and the like are caught. Checks that need the account (does the CIDR
    /// fit the VPC, is the AZ in the region) happen in `run --plan`.
    Check(CheckArgs),
    /// Delete every resource of a stack, found by its `deckhand:stack` tag, dependents first.
    ///
    /// Services (scaled to 0 and drained), task definitions, clusters, listeners, load balancers,
    /// target groups, NAT gateways, elastic IPs, VPC endpoints, route tables, security groups,
    /// subnets and IAM roles; log groups only with `--delete-logs` (else listed as kept). Nothing
    /// without the stack's tag is touched, even when names match. The list is shown first and
    /// confirmed on a terminal (`--yes` skips that; without a terminal `--yes` is required). If AWS
    /// fails midway, the report says what was and was not deleted; running it again continues.
    /// Deleting holds the stack lock, like `run`'s apply pass.
    Destroy(DestroyArgs),
    /// Explore an account interactively: type Rhai statements, see each result at once.
    ///
    /// Each input runs at once in its own pass with fresh reads (apply mode; plan mode with --plan
    /// or `:plan on`); variables and functions stay defined for later inputs. `:help` lists the
    /// commands. With stdin not a terminal, statements are read line by line without prompts and
    /// the exit status is 1 when any input failed (0 otherwise), so the REPL works in pipelines.
    ///
    /// Stack lock: in apply mode, each statement that declares resources takes the stack lock
    /// before it reads the stack and releases it when the statement ends (not held for the
    /// session, so a long session never blocks other runs); queries and plan mode take none.
    Repl(ReplArgs),
    /// List every function scripts can call, grouped by area, or show one in full.
    Docs(DocsArgs),
    /// Show every resource of a stack with its state, and each service's task counts, rollouts,
    /// target health and newest events.
    ///
    /// Resources are found by their `deckhand:stack` tag; only read requests are sent. With
    /// `--output json` the same as JSON with stable field names: `stack`, `resources[]` (`type`,
    /// `name`, `id`, `state`, `detail`) and `services[]` (`name`, `cluster`, `arn`, `status`,
    /// `running`, `pending`, `desired`, `exec`, `task_definition`, `deployments[]`, `targets[]`,
    /// `events[]`).
    Status(StatusArgs),
    /// Print a stack's service logs from CloudWatch Logs, or follow them with --follow.
    ///
    /// Reads the awslogs group and stream prefix of each service's task definition. Every line is
    /// prefixed with its log stream (`prefix/container/task-id`).
    Logs(LogsArgs),
    /// Run the local emulator until Ctrl-C, and print the environment that points deckhand at it.
    ///
    /// `--local` starts a fresh emulator for one command, so its resources vanish with it. To keep
    /// a local stack across commands (run, status, logs, destroy, repl), start this in one
    /// terminal and paste the printed `export` lines into another. Modelled AWS time runs at
    /// DECKHAND_TIME_SCALE (default 0.02, 50 times as fast), exported for deckhand too.
    Emulator,
    /// Remove a stack's lock that a run left behind (killed, crashed, machine lost), saying whose it was.
    ///
    /// Applying a stack (`run` after its plan, `destroy`, REPL statements in apply mode) holds the
    /// stack's lock: the SSM parameter `/deckhand/locks/STACK`, whose value names the holder
    /// (user@host), process id, command and start time. A second run of the same stack waits for
    /// it (`--lock-timeout`, default 1m), then stops with "stack NAME is being applied by ... since
    /// ...". A run renews its lock every minute while it holds it and releases it when it ends,
    /// also on errors and Ctrl-C; one killed outright (kill -9, a cancelled CI job, a lost machine)
    /// leaves it behind. Such a lock is stale when it was not renewed for 10 minutes, or at once
    /// when its process no longer runs on this host; the next run takes a stale lock over by itself
    /// and says so. `unlock` removes a stale lock at once; a lock whose run may still be going only
    /// with --force (that run stops at its next renewal).
    Unlock(UnlockArgs),
    /// Open a shell (or run a command) in a running task of a stack's service with ECS Exec.
    ///
    /// The service needs `exec: true` (tasks started after that can be entered). deckhand calls
    /// ExecuteCommand and hands the session to AWS's session-manager-plugin, which must be on PATH.
    /// Example: deckhand exec --stack myapp --service myapp -- ls /app
    Exec(crate::exec::ExecArgs),
    /// Roll a stack's service back: stop its deployment in progress (ECS rolls it back), or else
    /// redeploy the task definition of its last deployment that completed before the current one.
    ///
    /// The script still names its own image: the next `deckhand run` of an unchanged script deploys
    /// it again (its plan shows it). A rollback buys time to fix the script.
    Rollback(crate::rollback::RollbackArgs),
    /// One-off tasks: `deckhand task run --stack NAME --service SVC -- COMMAND...`.
    #[command(subcommand)]
    Task(crate::task_run::TaskCommand),
}

#[derive(Debug, Args)]
struct UnlockArgs {
    /// The stack whose lock to remove.
    #[arg(long)]
    stack: String,
    /// Remove the lock even when its run may still be going (not stale yet).
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    aws: crate::connect::AwsArgs,
}

/// How long to wait for another run's stack lock.
#[derive(Debug, Args)]
struct LockArgs {
    /// While another run applies the same stack, wait this long for it to finish (e.g. 30s, 2m,
    /// 0 for no wait), then stop.
    #[arg(long, value_name = "DURATION", default_value = "1m")]
    lock_timeout: String,
}

impl LockArgs {
    fn options(&self) -> Result<LockOptions> {
        Ok(LockOptions::for_this_command(crate::lock::parse_timeout(&self.lock_timeout)?))
    }
}

#[derive(Debug, Args)]
struct StatusArgs {
    /// The stack to show (the name given to `stack()` in the script).
    #[arg(long)]
    stack: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
    #[command(flatten)]
    aws: crate::connect::AwsArgs,
}

/// How `status` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OutputFormat {
    /// A readable table.
    Text,
    /// JSON for automation.
    Json,
}

#[derive(Debug, Args)]
struct LogsArgs {
    /// The stack whose services' logs to print.
    #[arg(long)]
    stack: String,
    /// Only this service of the stack.
    #[arg(long)]
    service: Option<String>,
    /// How far back to start: a number and s, m, h or d (e.g. 30s, 10m, 2h, 1d).
    #[arg(long, default_value = "10m")]
    since: String,
    /// Keep printing new events until Ctrl-C.
    #[arg(long, short = 'f')]
    follow: bool,
    #[command(flatten)]
    aws: crate::connect::AwsArgs,
}

#[derive(Debug, Args)]
struct DestroyArgs {
    /// The stack to delete (the name given to `stack()` in the script).
    #[arg(long)]
    stack: String,
    /// Only list what would be deleted.
    #[arg(long)]
    plan: bool,
    /// Delete the stack's CloudWatch log groups too (kept by default: they hold the history).
    #[arg(long)]
    delete_logs: bool,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    yes: bool,
    #[command(flatten)]
    lock: LockArgs,
    #[command(flatten)]
    aws: crate::connect::AwsArgs,
}

#[derive(Debug, Args)]
struct ReplArgs {
    /// Start in plan mode: primitives show what they would change and send no mutating request.
    #[arg(long)]
    plan: bool,
    #[command(flatten)]
    session: SessionArgs,
}

#[derive(Debug, Args)]
struct DocsArgs {
    /// Show this function in full (signature, documentation, example).
    name: Option<String>,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The deploy script (.rhai).
    script: PathBuf,
    /// Only show what would change; send no mutating request.
    #[arg(long)]
    plan: bool,
    /// Show the plan and ask before applying it.
    #[arg(long, conflicts_with = "plan")]
    confirm: bool,
    /// Treat warnings (such as tasks without a route to pull images) as errors.
    #[arg(long)]
    strict: bool,
    /// Delete nothing the script no longer declares (it is listed as kept); apply only creates
    /// and updates.
    #[arg(long)]
    keep_undeclared: bool,
    /// Delete log groups the script no longer declares too (kept by default: they hold the history).
    #[arg(long)]
    delete_logs: bool,
    /// Apply without asking even when the plan deletes more than half of the stack.
    #[arg(long, short = 'y', conflicts_with = "plan")]
    yes: bool,
    #[command(flatten)]
    session: SessionArgs,
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// The deploy script (.rhai).
    script: PathBuf,
    /// Region to validate availability zones against (else AWS_REGION).
    #[arg(long, env = "AWS_REGION")]
    region: Option<String>,
    #[command(flatten)]
    vars: VarArgs,
}

/// What a script that may apply takes (`run`, `repl`): its variables, the stack lock's wait, the AWS target.
#[derive(Debug, Args)]
struct SessionArgs {
    #[command(flatten)]
    vars: VarArgs,
    #[command(flatten)]
    lock: LockArgs,
    #[command(flatten)]
    aws: crate::connect::AwsArgs,
}

#[derive(Debug, Args)]
struct VarArgs {
    /// Set a script variable, read as `vars.KEY` (repeatable). Integers and true/false are typed.
    #[arg(long = "var", value_name = "KEY=VALUE")]
    vars: Vec<String>,
}

/// Parses the command line, runs the command, prints any error, and returns the exit code.
pub fn main() -> ExitCode {
    crate::runtime::process_start();
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    // `task run` exits with its container's exit code.
    let outcome = match cli.command {
        Command::Task(crate::task_run::TaskCommand::Run(args)) => {
            args.aws.connect().and_then(|(aws, _emulator)| crate::task_run::run(&aws, &args))
        }
        // `exec` exits with the Session Manager plugin's exit code.
        Command::Exec(args) => {
            crate::exec::find_plugin().and_then(|_| args.aws.connect()).and_then(|(aws, _emulator)| {
                let profile =
                    args.aws.profile.clone().or_else(|| std::env::var("AWS_PROFILE").ok()).unwrap_or_default();
                crate::exec::exec(&aws, &args, &profile)
            })
        }
        command => execute(command).map(|()| ExitCode::SUCCESS),
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            let text = err.to_string();
            let text = if text.starts_with("error:") { text } else { format!("error: {text}") };
            anstream::eprintln!("{}", styled_error(&text));
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(verbose: u8) {
    let filter = match verbose {
        0 => "error,deckhand=warn",
        1 => "warn,deckhand=debug",
        _ => "info,deckhand=trace,aws_smithy_runtime=debug,aws_config=debug",
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(anstream::stderr)
        .with_ansi(true)
        .with_target(false)
        .without_time()
        .try_init();
}

fn execute(command: Command) -> Result<()> {
    match command {
        Command::Run(args) => run(args),
        Command::Check(args) => check(args),
        Command::Destroy(args) => destroy(args),
        Command::Repl(args) => repl(args),
        Command::Docs(args) => docs(args),
        Command::Status(args) => status(args),
        Command::Logs(args) => logs(args),
        Command::Emulator => emulator(),
        Command::Unlock(args) => unlock(args),
        Command::Rollback(args) => crate::rollback::rollback(&args),
        Command::Task(_) | Command::Exec(_) => unreachable!("main runs `task run` and `exec` for their exit codes"),
    }
}

fn status(args: StatusArgs) -> Result<()> {
    let (aws, _emulator) = args.aws.connect()?;
    let status = aws.block_on(crate::status::StackStatus::read(&aws, &args.stack))?;
    match args.output {
        OutputFormat::Json => {
            let text = serde_json::to_string_pretty(&status.to_json())
                .map_err(|e| Error::conflict(format!("internal error writing JSON: {e}"), None))?;
            print_stdout(&text)
        }
        OutputFormat::Text => {
            print_stdout(&format!("{}\n({} AWS calls, nothing changed)", status.render(), aws.calls()))
        }
    }
}

/// Writes `text` and a newline to stdout. A reader that went away (`deckhand docs | head -1`)
/// ends the output quietly, as ripgrep does, instead of a panic.
fn print_stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        written => written.map_err(|e| Error::io("writing to stdout", e)),
    }
}

fn logs(args: LogsArgs) -> Result<()> {
    let since = crate::period::parse_since("--since", &args.since)?;
    let (aws, _emulator) = args.aws.connect()?;
    let sources = aws.block_on(crate::tail::log_sources(&aws, &args.stack, args.service.as_deref()))?;
    if sources.is_empty() {
        println!("Stack {} has no ECS services: no logs to show.", args.stack);
        return Ok(());
    }
    let options = crate::tail::TailOptions { since, follow: args.follow };
    let printed = crate::tail::tail(&aws, &options, &sources, |line| println!("{line}"))?;
    if printed == 0 {
        eprintln!("No log events in the last {}.", args.since);
    }
    Ok(())
}

fn repl(args: ReplArgs) -> Result<()> {
    let session = &args.session;
    let options =
        crate::repl::Options { plan: args.plan, vars: Vars::parse(&session.vars.vars)?, lock: session.lock.options()? };
    let (aws, _emulator) = session.aws.connect()?;
    crate::repl::run(aws, &options)
}

fn docs(args: DocsArgs) -> Result<()> {
    match args.name {
        Some(name) => print_stdout(&crate::docs::describe(&name)?),
        None => print_stdout(&crate::docs::index()),
    }
}

fn run(args: RunArgs) -> Result<()> {
    let script = Script::load(&args.script)?;
    let vars = Vars::parse(&args.session.vars.vars)?;
    let lock_options = args.session.lock.options()?;
    // Loading the AWS config (credential chain, HTTP client) takes a while: it runs beside the
    // parse and the check pass. The local emulator is only started for a script that parses.
    let connecting = (!args.session.aws.local).then(|| {
        let target = args.session.aws.clone();
        std::thread::spawn(move || target.connect())
    });
    script.parse()?;
    // The names the script declares (a check pass, no AWS) let each pass read the stack's roles,
    // log groups, clusters, services, ... up front, in one wave with the rest.
    let declared = declared(&script, &vars);
    let (aws, _emulator) = match connecting {
        Some(thread) => thread.join().map_err(|_| Error::Internal("loading the AWS config panicked".into()))??,
        None => args.session.aws.connect()?,
    };

    let plan_sink = if args.plan { Sink::stdout() } else { Sink::buffer() };
    let plan_state = Rc::new(State::with_declared(declared.clone()));
    let mut plan = Pass::new(Mode::Plan, Some(aws.clone()), None, plan_sink, plan_state.clone());
    plan.strict = args.strict;
    let plan = Rc::new(plan);
    script.run(&plan, &vars)?;
    // The whole script got through the plan pass: now, and only now, what the stack owns but the
    // script no longer declares is known (a failing script deletes nothing).
    let options = PruneOptions { delete_logs: args.delete_logs, keep_undeclared: args.keep_undeclared };
    let prune = match plan.stack() {
        Ok(stack) => Some(Prune::plan(&aws, &stack, plan_state.first_read(), &plan.log, options)?),
        Err(_) => None, // no stack() call: nothing declared, nothing owned
    };
    if args.plan {
        println!("{}", plan.log.summary(aws.calls()));
        say_rehearsal(&aws);
        return Ok(());
    }
    if !plan.log.has_changes() {
        for line in plan.log.take_output() {
            println!("{line}");
        }
        println!("{} — no changes", plan.log.summary_as(Mode::Apply, aws.calls()));
        say_what_was_left(prune.as_ref());
        say_rehearsal(&aws);
        return Ok(());
    }
    let guarded = prune.as_ref().map(|p| p.guard(args.yes || args.confirm)).transpose();
    if args.confirm || guarded.is_err() {
        for line in plan.log.take_output() {
            println!("{line}");
        }
        println!("{}", plan.log.summary(aws.calls()));
        guarded?;
        if !confirm("Apply these changes?")? {
            println!("Nothing applied.");
            return Ok(());
        }
    }
    // One apply of a stack at a time. While it applies, Ctrl-C stops the script at its next
    // operation (or wait poll) instead of killing deckhand, so the lock is released on the way out.
    let _interrupt = crate::interrupt::Guard::install();
    let lock = StackLock::acquire(&aws, &plan.stack()?, &lock_options)?;
    // The apply pass reads the stack afresh, under the lock: the plan's reads may predate another
    // run's apply (the one we waited for, or one that ended between our plan and our lock).
    let declared = declared.with_policies_of(plan_state.first_read().as_ref());
    let mut apply =
        Pass::new(Mode::Apply, Some(aws.clone()), None, Sink::stdout(), Rc::new(State::with_declared(declared)));
    apply.strict = args.strict;
    let apply = Rc::new(apply);
    // Deletions run under the same lock, after the creates and updates.
    let outcome =
        script.apply(&apply, &vars).and_then(|()| prune.as_ref().map_or(Ok(()), |p| p.apply(&aws, &apply.log)));
    drop(lock);
    outcome?;
    println!("{}", apply.log.summary(aws.calls()));
    say_what_was_left(prune.as_ref());
    say_rehearsal(&aws);
    Ok(())
}

/// With a time scale in effect (an emulator), the run's last line: what it would take on AWS.
fn say_rehearsal(aws: &Aws) {
    if let Some(rehearsal) = aws.rehearsal() {
        println!("{}", rehearsal.line());
    }
}

/// After a run: how many resources the script no longer declares were left in place (each was
/// listed as `= kept`, with why).
fn say_what_was_left(prune: Option<&Prune>) {
    match prune.map_or(0, Prune::kept_undeclared) {
        0 => {}
        1 => println!("1 resource no longer declared was left in place (see \"= kept\" above)"),
        n => println!("{n} resources no longer declared were left in place (see \"= kept\" above)"),
    }
}

/// The roles and log groups the script declares, from a check pass (no AWS calls, output dropped),
/// so the plan pass reads them up front and at once. Best effort: a script that fails here
/// declares what it reached, and the plan pass reports its errors.
fn declared(script: &Script, vars: &Vars) -> Declared {
    let pass = Rc::new(Pass::new(Mode::Check, None, None, Sink::buffer(), Rc::new(State::default())));
    let _ = script.run(&pass, vars);
    let declared = Declared::from_changes(&pass.log.changes());
    match pass.snapshot() {
        Ok(snapshot) => declared.with_lookups_of(&snapshot.borrow()),
        Err(_) => declared, // no stack(): nothing was declared
    }
}

fn destroy(args: DestroyArgs) -> Result<()> {
    let (aws, _emulator) = args.aws.connect()?;
    let contents = StackContents::find(&aws, &args.stack, args.delete_logs)?;
    for line in contents.listing() {
        println!("{line}");
    }
    let count = contents.resources().len();
    let kept = match contents.kept().len() {
        0 => String::new(),
        n => format!(", {n} kept"),
    };
    if count == 0 {
        let what = match contents.kept().len() {
            0 => "no resources".to_string(),
            n => format!("no resources to delete ({n} kept)"),
        };
        println!("Stack {} has {what}: nothing to destroy ({} AWS calls).", args.stack, aws.calls());
        return Ok(());
    }
    if args.plan {
        println!("Plan: {count} to delete{kept} ({} AWS calls, nothing changed)", aws.calls());
        return Ok(());
    }
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err(Error::conflict(
                format!("refusing to delete {count} resources without confirmation: stdin is not a terminal"),
                Some("pass --yes to destroy without asking"),
            ));
        }
        if !confirm(&format!("Delete these {count} resources of stack {}?", args.stack))? {
            println!("Nothing deleted.");
            return Ok(());
        }
    }
    let lock = StackLock::acquire(&aws, &args.stack, &args.lock.options()?)?;
    let deleted = contents.delete(&aws, |line| println!("{line}"))?;
    drop(lock);
    println!("{deleted} deleted{kept} ({} AWS calls)", aws.calls());
    Ok(())
}

fn unlock(args: UnlockArgs) -> Result<()> {
    let (aws, _emulator) = args.aws.connect()?;
    match crate::lock::unlock(&aws, &args.stack, args.force)? {
        Unlocked::NotLocked => println!("Stack {} is not locked: nothing to remove.", args.stack),
        Unlocked::Removed(holder) => {
            let whose = holder.describe(crate::lock::unix_now());
            println!("Removed the lock of stack {}, held by {whose}.", args.stack);
        }
    }
    Ok(())
}

fn emulator() -> Result<()> {
    let (emulator, scale) = crate::connect::start_emulator()?;
    println!("export AWS_ENDPOINT_URL={}", emulator.endpoint_url());
    println!("export AWS_REGION={LOCAL_REGION} AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test");
    // deckhand reads the same scale as the emulator (it honours it only with an endpoint URL).
    println!("export {TIME_SCALE_ENV}={}", scale.factor());
    eprintln!("Local emulator running; Ctrl-C stops it (and forgets everything in it).");
    std::io::stdout().flush().map_err(|e| Error::io("writing to stdout", e))?;
    // The emulator dies with this process (see local.rs), so there is nothing to do but wait.
    loop {
        std::thread::park();
    }
}

fn confirm(question: &str) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::conflict(
            "--confirm needs a terminal to ask on",
            Some("drop --confirm to apply without asking"),
        ));
    }
    print!("{question} [y/N] ");
    std::io::stdout().flush().map_err(|e| Error::io("writing the prompt", e))?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).map_err(|e| Error::io("reading the answer", e))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

fn check(args: CheckArgs) -> Result<()> {
    let script = Script::load(&args.script)?;
    let vars = Vars::parse(&args.vars.vars)?;
    let pass = Rc::new(Pass::new(Mode::Check, None, args.region.clone(), Sink::buffer(), Rc::new(State::default())));
    script.run(&pass, &vars)?;
    // Change lines would all be "+" (check knows no account); warnings are worth showing.
    for warning in pass.log.take_output().iter().filter(|line| line.starts_with("warning:")) {
        println!("{warning}");
    }
    println!("{}: {}", script.name, pass.log.summary(0));
    Ok(())
}
