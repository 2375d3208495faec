//! The stack lock: one SSM parameter per stack (`/deckhand/locks/<stack>`), so that of two applies
//! of one stack only one changes AWS at a time; the other waits a bounded time. Released when the
//! apply ends (also on error and Ctrl-C); `deckhand unlock` removes a lock by hand.
//!
//! SSM has no compare-and-swap: PutParameter creates (Overwrite=false, atomic: of two creates one
//! gets ParameterAlreadyExists) or overwrites unconditionally, and DeleteParameter is
//! unconditional. The algorithm, with the periods of `timing.rs`'s table:
//!
//! 1. **Take**: create the parameter with Overwrite=false. Its value names the holder (user@host,
//!    pid, command), a random holder token, the process's identity on its machine (boot id, pid
//!    namespace and the process's start time, so a reused pid is not mistaken for it) and the time
//!    of the last renewal. ParameterAlreadyExists with our own token is ours (the reply of a create
//!    that succeeded was lost and the SDK retried it).
//! 2. **Renew** every [`LOCK_RENEW_EVERY`](crate::timing::LOCK_RENEW_EVERY) while the run holds
//!    it: read the lock; if the token is still ours, overwrite it with the renewal's time. If it is
//!    not ours (taken over, or removed by `deckhand unlock --force`), the run stops cleanly: every
//!    further AWS request of the run is refused, and the script stops at its next operation. If
//!    renewals keep failing for half the stale period, the run stops the same way.
//! 3. **Take over** only a lock that is provably dead or stale: its holder's process ran on this
//!    machine (same boot, same pid namespace) and no longer runs (no such pid, or one started at
//!    another time); or its last renewal is older than
//!    [`LOCK_STALE_AFTER`](crate::timing::LOCK_STALE_AFTER), ten renewal periods. The taker
//!    overwrites it with its own value, waits [`LOCK_TAKEOVER_SETTLE`](crate::timing::LOCK_TAKEOVER_SETTLE),
//!    reads it again, and holds it only if the token read is its own; otherwise another contender
//!    wrote after it and won, and it backs off and waits for that run like for any holder. It says
//!    on stderr whose lock it took over and why.
//! 4. **Release**: read the lock and delete it only if its token is ours.
//!
//! The race window that remains: two contenders read the same stale lock, and one's overwrite
//! reaches SSM more than the settle pause after the other's (a stalled process or connection
//! between its read and its write). The first then re-reads its own token and goes on, and the
//! late writer's re-read finds its own token too: both hold the lock until the first's next
//! renewal reads the other's token and stops its run. Overlap is then at most one renewal period,
//! and needs a write delayed by more than the settle pause. A renewal is a read then a write as
//! well: a takeover landing between the two is overwritten by the renewal, but a takeover needs
//! the lock to be stale or its process dead, which a renewing run's lock is not. Clocks: staleness
//! compares the renewal time a holder wrote with the reader's clock, so hosts' clocks may differ
//! by up to nine renewal periods before a live lock looks stale.
//!
//! A store with a conditional write (a DynamoDB item written with a condition on its version)
//! would close the window; it needs a table per account (created once, by hand or by deckhand,
//! with its own IAM permissions), which the SSM parameter does not.
//!
//! Renewals run on the run's one (current-thread) runtime beside its work: they make progress
//! whenever deckhand awaits AWS or a wait, which is where a run spends its time; the script's own
//! evaluation between two calls takes milliseconds.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_ssm::types::{ParameterType, Tag};
use serde::{Deserialize, Serialize};

use crate::arn::Arn;
use crate::error::{Error, Result, aws_error};
use crate::poll::{Check, Wait};
use crate::runtime::Aws;
use crate::tagged::STACK_TAG;
use crate::timing::{Clock, LOCK_PACE, LOCK_RENEW_EVERY, LOCK_STALE_FLOOR, LOCK_TAKEOVER_SETTLE};

/// Where the lock parameters live: `/deckhand/locks/<stack>`.
pub const PARAMETER_PREFIX: &str = "/deckhand/locks/";
/// A lock not renewed for this long is stale (see the table in `timing`).
pub use crate::timing::LOCK_STALE_AFTER as STALE_AFTER;
/// How long a run waits for another run's lock by default (`--lock-timeout`).
pub use crate::timing::LOCK_TIMEOUT as DEFAULT_TIMEOUT;
/// The tag that marks the parameter as a lock, so tag-based listings can leave it out.
pub const LOCK_TAG: &str = "deckhand:lock";

use crate::lock_calls::{LOCK_CALL, LockCall, set_lost};
pub use crate::lock_calls::{lost, refusal, renewing};

/// The SSM parameter that holds `stack`'s lock.
pub fn parameter_name(stack: &str) -> String {
    format!("{PARAMETER_PREFIX}{stack}")
}

/// True for the ARN or name of a lock parameter (never a stack resource to show or delete).
pub fn is_lock_parameter(arn_or_name: &str) -> bool {
    // A parameter's ARN ends in `parameter` and its name: `...:parameter/deckhand/locks/myapp`.
    let arn = Arn::of_type(arn_or_name, "ssm", "parameter");
    arn.and_then(|arn| arn.resource.strip_prefix("parameter")).unwrap_or(arn_or_name).starts_with(PARAMETER_PREFIX)
}

/// The lock's periods at `clock`'s scale: stale after, renewed every, takeover settle. Each is
/// scaled like the stale period, which has a floor, so that their ratios hold at any scale.
fn periods(clock: &Clock) -> (Duration, Duration, Duration) {
    let stale = clock.scaled(STALE_AFTER).max(LOCK_STALE_FLOOR);
    let ratio = stale.as_secs_f64() / STALE_AFTER.as_secs_f64();
    (stale, LOCK_RENEW_EVERY.mul_f64(ratio), LOCK_TAKEOVER_SETTLE.mul_f64(ratio))
}

/// Who holds a lock, as its parameter's value says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// `user@host`.
    pub holder: String,
    /// The holding process's id on that host.
    #[serde(default)]
    pub pid: u32,
    /// The command line that took the lock.
    #[serde(default)]
    pub command: String,
    /// When the lock was taken (Unix seconds).
    #[serde(rename = "started_unix")]
    pub started: u64,
    /// The holder's random token: the lock is a run's own while its token is there.
    #[serde(default)]
    pub token: String,
    /// The holding process on its machine: `<boot id>/<pid namespace>/<start time>` (Linux;
    /// empty elsewhere, and then the process cannot be checked).
    #[serde(default)]
    pub process: String,
    /// When the holder last renewed the lock (Unix seconds, its clock); 0 when it never said.
    #[serde(rename = "renewed_unix", default)]
    pub renewed: u64,
}

/// The parameter's value as written: the holder, and its start time also as a person reads it
/// (`started`, RFC 3339), for someone looking at the parameter in the console.
#[derive(Serialize)]
struct LockValue<'a> {
    #[serde(flatten)]
    holder: &'a Holder,
    started: String,
}

impl Holder {
    /// This process, taking the lock now for `command`.
    pub fn this_process(command: &str) -> Holder {
        let mut command = command.to_string();
        if command.len() > 300 {
            let mut end = 300;
            while !command.is_char_boundary(end) {
                end -= 1;
            }
            command.truncate(end);
            command.push('…');
        }
        let pid = std::process::id();
        let now = unix_now();
        Holder {
            holder: format!("{}@{}", whoami::username().unwrap_or_else(|_| "unknown".into()), host_name()),
            pid,
            command,
            started: now,
            token: uuid::Uuid::new_v4().simple().to_string(),
            process: process_identity(pid).unwrap_or_default(),
            renewed: now,
        }
    }

    /// The parameter's value: JSON with holder, pid, command, start time, token, process
    /// identity and last renewal.
    pub fn to_json(&self) -> String {
        let value = LockValue { holder: self, started: timestamp(self.started) };
        serde_json::to_string(&value).unwrap_or_default()
    }

    /// Reads a parameter's value; a value deckhand did not write still makes a holder (named
    /// "unknown", started at `modified`, the parameter's last change), so it is reported, not lost.
    pub fn parse(value: &str, modified: Option<u64>) -> Holder {
        let mut holder: Holder = serde_json::from_str(value).unwrap_or_else(|_| Holder {
            holder: "unknown".to_string(),
            pid: 0,
            command: String::new(),
            started: modified.unwrap_or_else(unix_now),
            token: String::new(),
            process: String::new(),
            renewed: 0,
        });
        // A lock without renewals (an older deckhand's) was last written when it was taken.
        if holder.renewed == 0 {
            holder.renewed = holder.started;
        }
        holder
    }

    /// The same holder, renewed at `now`.
    fn renewed_at(&self, now: u64) -> Holder {
        Holder { renewed: now, ..self.clone() }
    }

    /// How long ago the lock was taken, at `now` (Unix seconds).
    pub fn age(&self, now: u64) -> Duration {
        Duration::from_secs(now.saturating_sub(self.started))
    }

    /// `alice@box (pid 42, deckhand run deploy.rhai) since 2026-11-29T07:05:58Z (3m 12s ago)`.
    pub fn describe(&self, now: u64) -> String {
        let mut who = self.holder.clone();
        let mut detail = Vec::new();
        if self.pid != 0 {
            detail.push(format!("pid {}", self.pid));
        }
        if !self.command.is_empty() {
            detail.push(self.command.clone());
        }
        if !detail.is_empty() {
            who.push_str(&format!(" ({})", detail.join(", ")));
        }
        format!("{who} since {} ({} ago)", timestamp(self.started), human(self.age(now)))
    }

    /// Why the lock is stale, if it is: its process ran on this machine and no longer runs
    /// (provably dead), or it was not renewed for [`STALE_AFTER`] (at `clock`'s scale, never below
    /// the floor). `None` while its run may still be going.
    pub fn stale(&self, now: u64, clock: &Clock) -> Option<String> {
        if self.pid != 0 && process_gone(self.pid, &self.process) {
            return Some(format!("its process (pid {}) no longer runs on this host", self.pid));
        }
        let (stale_after, _, _) = periods(clock);
        let unrenewed = Duration::from_secs(now.saturating_sub(self.renewed));
        if unrenewed > stale_after {
            return Some(format!(
                "it was last renewed {} ago, and a run renews its lock every {}",
                human(unrenewed),
                human(LOCK_RENEW_EVERY)
            ));
        }
        None
    }
}

/// How a run takes the stack lock.
#[derive(Debug, Clone)]
pub struct LockOptions {
    /// How long to wait for another run's lock before giving up.
    pub timeout: Duration,
    /// The command line recorded in the lock (e.g. `deckhand run deploy.rhai`).
    pub command: String,
}

impl Default for LockOptions {
    fn default() -> Self {
        LockOptions::for_this_command(DEFAULT_TIMEOUT)
    }
}

impl LockOptions {
    /// Options for this process's command line, waiting at most `timeout`.
    pub fn for_this_command(timeout: Duration) -> LockOptions {
        let args: Vec<String> = std::env::args().skip(1).collect();
        LockOptions { timeout, command: format!("deckhand {}", args.join(" ")) }
    }
}

/// Parses `--lock-timeout`: `0` (do not wait) or a number with s, m or h (e.g. `90s`, `2m`).
pub fn parse_timeout(text: &str) -> Result<Duration> {
    if matches!(text.trim(), "0" | "0s" | "0m") {
        return Ok(Duration::ZERO);
    }
    crate::period::parse_since("--lock-timeout", text)
}

/// A held stack lock, renewed while held; released by [`StackLock::release`] or, failing that,
/// when dropped (an error or Ctrl-C ending the run early).
#[derive(Debug)]
pub struct StackLock {
    aws: Aws,
    stack: String,
    token: String,
    renewals: Option<Renewals>,
    released: bool,
}

/// The renewals of a held lock, running beside the run's work.
#[derive(Debug)]
struct Renewals {
    stop: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl StackLock {
    /// Takes `stack`'s lock, waiting up to `options.timeout` (with a progress line) while another
    /// run holds it; takes over a stale one (saying so on stderr); then renews it while held.
    pub fn acquire(aws: &Aws, stack: &str, options: &LockOptions) -> Result<StackLock> {
        let me = Holder::this_process(&options.command);
        set_lost(None);
        aws.block_on(LOCK_CALL.scope(LockCall::Holding, acquire(aws, stack, &me, options.timeout)))?;
        let stop = Arc::new(tokio::sync::Notify::new());
        let (stale_after, every, _) = periods(aws.clock());
        let renewing =
            renew_while_held(aws.ssm.clone(), (stale_after, every), stack.to_string(), me.clone(), stop.clone());
        let task = aws.spawn(LOCK_CALL.scope(LockCall::Renewal, renewing));
        Ok(StackLock {
            aws: aws.clone(),
            stack: stack.to_string(),
            token: me.token,
            renewals: Some(Renewals { stop, task }),
            released: false,
        })
    }

    /// The stack this lock is for.
    pub fn stack(&self) -> &str {
        &self.stack
    }

    /// Releases the lock.
    pub fn release(mut self) -> Result<()> {
        self.released = true;
        self.stop_renewals();
        let released =
            self.aws.block_on(LOCK_CALL.scope(LockCall::Holding, release(&self.aws.ssm, &self.stack, &self.token)));
        // What comes after the lock (a REPL's next statement) is no longer refused.
        set_lost(None);
        released
    }

    /// Stops the renewals, letting one in flight finish (dropped mid-flight, its write could land
    /// after the release and put the lock back).
    fn stop_renewals(&mut self) {
        if let Some(renewals) = self.renewals.take() {
            renewals.stop.notify_one();
            let _ = self.aws.block_on(renewals.task);
        }
    }
}

impl Drop for StackLock {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        self.released = true;
        self.stop_renewals();
        let released = LOCK_CALL.scope(LockCall::Holding, release(&self.aws.ssm, &self.stack, &self.token));
        let released = self.aws.block_on(released);
        set_lost(None);
        if let Err(err) = released {
            eprintln!(
                "warning: could not release the lock of stack {}: {err}\n  hint: once no deckhand run of it is \
                 going, remove it with `deckhand unlock --stack {}`",
                self.stack, self.stack
            );
        }
    }
}

/// Renews `me`'s lock of `stack` every renewal period until `stop`: each renewal first checks that
/// the lock is still ours. When it is not (or renewals failed for half the stale period), the run
/// is told to stop (see [`refusal`]). The period is a heartbeat beside the run, not a wait on AWS,
/// so it does not go through the polling helper (whose waits the rehearsal line adds up).
async fn renew_while_held(
    ssm: aws_sdk_ssm::Client,
    (stale_after, every): (Duration, Duration),
    stack: String,
    me: Holder,
    stop: Arc<tokio::sync::Notify>,
) {
    let mut renewed = Instant::now();
    loop {
        tokio::select! {
            () = stop.notified() => return,
            () = tokio::time::sleep(every) => {}
        }
        match renew(&ssm, &stack, &me).await {
            Ok(None) => renewed = Instant::now(),
            Ok(Some(why)) => return set_lost(Some(why)),
            Err(err) if renewed.elapsed() > stale_after / 2 => {
                return set_lost(Some(format!(
                    "this run could not renew the lock of stack {stack} for {} ({err}), so another run may take it over",
                    human(renewed.elapsed())
                )));
            }
            Err(err) => tracing::warn!(target: "deckhand::lock", "renewing the lock of stack {stack}: {err}"),
        }
    }
}

/// One renewal: `None` when the lock was ours and is renewed, else why it is no longer ours.
async fn renew(ssm: &aws_sdk_ssm::Client, stack: &str, me: &Holder) -> Result<Option<String>> {
    let now = unix_now();
    match read(ssm, stack).await? {
        Some(holder) if holder.token == me.token => {
            put(ssm, stack, &me.renewed_at(now).to_json(), true).await?;
            Ok(None)
        }
        Some(holder) => Ok(Some(format!(
            "the lock of stack {stack} is no longer this run's: it is held by {} (taken over, or removed with \
             `deckhand unlock --force`); this run stopped before changing anything more",
            holder.describe(now)
        ))),
        None => Ok(Some(format!(
            "the lock of stack {stack} was removed (`deckhand unlock --force`?) while this run held it; this run \
             stopped before changing anything more"
        ))),
    }
}

/// A pass's stack lock: none (plan and check passes, `run`'s apply pass, whose lock `run` holds
/// itself), to be taken before the pass first reads the stack (the REPL's apply statements), or held
/// until the pass ends.
#[derive(Debug, Default)]
pub enum PassLock {
    /// The pass takes no lock.
    #[default]
    None,
    /// Take the lock before the first read of the stack.
    BeforeFirstRead(LockOptions),
    /// Held; released when the pass is dropped (boxed: the lock holds the run's AWS clients).
    Held(Box<StackLock>),
}

impl PassLock {
    /// Takes the lock of `stack` if it is to be taken before the first read.
    pub fn before_read(&mut self, aws: &Aws, stack: &str) -> Result<()> {
        if let PassLock::BeforeFirstRead(options) = self {
            let lock = StackLock::acquire(aws, stack, options)?;
            *self = PassLock::Held(Box::new(lock));
        }
        Ok(())
    }
}

/// What `deckhand unlock` found and did.
#[derive(Debug)]
pub enum Unlocked {
    /// The stack had no lock.
    NotLocked,
    /// The lock was removed; it was this holder's.
    Removed(Holder),
}

/// Removes `stack`'s lock. A lock whose run may still be going (not stale) is only removed with
/// `force`: that run would go on unprotected (until its next renewal finds the lock gone).
pub fn unlock(aws: &Aws, stack: &str, force: bool) -> Result<Unlocked> {
    aws.block_on(async {
        let Some(holder) = read(&aws.ssm, stack).await? else {
            return Ok(Unlocked::NotLocked);
        };
        let now = unix_now();
        if !force && holder.stale(now, aws.clock()).is_none() {
            return Err(Error::conflict(
                format!(
                    "stack {stack} is being applied by {}: that run may still be going, and removing its lock \
                     lets another apply interleave with it",
                    holder.describe(now)
                ),
                Some(&format!(
                    "wait for it to end; if you know it died, run `deckhand unlock --stack {stack} --force`"
                )),
            ));
        }
        delete(&aws.ssm, stack).await?;
        Ok(Unlocked::Removed(holder))
    })
}

/// Who holds `stack`'s lock now, if anyone (read only).
pub fn holder(aws: &Aws, stack: &str) -> Result<Option<Holder>> {
    aws.block_on(read(&aws.ssm, stack))
}

/// Takes the lock, polling (with backoff) while another run holds it; takes over a stale one.
async fn acquire(aws: &Aws, stack: &str, me: &Holder, timeout: Duration) -> Result<()> {
    let value = me.to_json();
    let ssm = &aws.ssm;
    let (_, _, settle) = periods(aws.clock());
    Wait::new(aws.clock(), "stack lock", "the stack lock", LOCK_PACE, timeout)
        .until(async |round| {
            if create(ssm, stack, &value).await? {
                return Ok(Check::Done(()));
            }
            // Held. Between our create and this read the holder may have released it: try again.
            let now = unix_now();
            Ok(match read(ssm, stack).await? {
                // Held by us: the SDK retried a PutParameter whose first attempt succeeded but
                // whose reply was lost (a dropped connection, a timeout), and the retry found our
                // own parameter (ParameterAlreadyExists).
                Some(holder) if holder.token == me.token => Check::Done(()),
                Some(holder) => match holder.stale(now, aws.clock()) {
                    Some(why) => {
                        if take_over(ssm, stack, me, settle).await? {
                            eprintln!("Took over the lock of stack {stack} from {}: {why}.", holder.describe(now));
                            return Ok(Check::Done(()));
                        }
                        // Another run took it over at the same time and won: wait for it.
                        Check::waiting_or(
                            format!("stack {stack}'s stale lock was just taken over by another run"),
                            held_error(stack, &holder, round.timeout, now),
                        )
                    }
                    None => {
                        let line = format!("stack {stack} is being applied by {}", holder.describe(now));
                        Check::waiting_or(line, held_error(stack, &holder, round.timeout, now))
                    }
                },
                None => Check::waiting_or(
                    format!("stack {stack} was released just now"),
                    Error::conflict(
                        format!("could not take the lock of stack {stack} within {}", human(round.timeout)),
                        Some("another run takes and releases it repeatedly; try again"),
                    ),
                ),
            })
        })
        .await
}

/// Overwrites a stale lock with ours, lets `settle` pass, and reads it again: ours only if our
/// token is still there (else a contender wrote after us and won). A pause inside one poll of
/// the lock's wait, not a wait of its own.
async fn take_over(ssm: &aws_sdk_ssm::Client, stack: &str, me: &Holder, settle: Duration) -> Result<bool> {
    put(ssm, stack, &me.renewed_at(unix_now()).to_json(), true).await?;
    tokio::time::sleep(settle).await;
    Ok(read(ssm, stack).await?.is_some_and(|holder| holder.token == me.token))
}

/// Creates the lock parameter; `false` when it exists (someone holds the lock).
async fn create(ssm: &aws_sdk_ssm::Client, stack: &str, value: &str) -> Result<bool> {
    match put(ssm, stack, value, false).await {
        Ok(()) => Ok(true),
        Err(PutError::Exists) => Ok(false),
        Err(PutError::Failed(err)) => Err(err),
    }
}

/// Why a PutParameter failed.
enum PutError {
    /// The parameter exists (a create).
    Exists,
    /// Anything else.
    Failed(Error),
}

impl From<PutError> for Error {
    fn from(err: PutError) -> Error {
        match err {
            PutError::Exists => Error::Internal("PutParameter with Overwrite found the parameter existing".into()),
            PutError::Failed(err) => err,
        }
    }
}

/// Writes the lock parameter: a create (`overwrite` false: tagged, fails if it exists), or an
/// unconditional overwrite (renewals and takeovers; SSM refuses tags with Overwrite, and keeps
/// the parameter's tags). Each write is a new version of the parameter; SSM keeps the 100 newest
/// and deletes the oldest unlabelled one on each write past that (SSM's PutParameter reference,
/// ParameterMaxVersionLimitExceeded).
async fn put(
    ssm: &aws_sdk_ssm::Client,
    stack: &str,
    value: &str,
    overwrite: bool,
) -> std::result::Result<(), PutError> {
    let tag = |key: &str, value: &str| {
        Tag::builder()
            .key(key)
            .value(value)
            .build()
            .map_err(|e| PutError::Failed(Error::Internal(format!("an SSM tag: {e}"))))
    };
    let mut request = ssm
        .put_parameter()
        .name(parameter_name(stack))
        .description(format!("deckhand: stack {stack} is being applied (removed when the apply ends)"))
        .value(value)
        .r#type(ParameterType::String)
        .overwrite(overwrite);
    if !overwrite {
        request = request.tags(tag(STACK_TAG, stack)?).tags(tag(LOCK_TAG, "true")?);
    }
    match request.send().await {
        Ok(_) => Ok(()),
        Err(err) if err.as_service_error().is_some_and(|e| e.is_parameter_already_exists()) => Err(PutError::Exists),
        Err(err) => Err(PutError::Failed(aws_error("PutParameter", err))),
    }
}

/// The lock's holder, or `None` when the stack is not locked.
async fn read(ssm: &aws_sdk_ssm::Client, stack: &str) -> Result<Option<Holder>> {
    match ssm.get_parameter().name(parameter_name(stack)).send().await {
        Ok(out) => {
            let parameter = out.parameter().ok_or_else(|| Error::missing("GetParameter", "Parameter"))?;
            let value = parameter.value().ok_or_else(|| Error::missing("GetParameter", "Parameter.Value"))?;
            let modified = parameter.last_modified_date().and_then(|d| u64::try_from(d.secs()).ok());
            Ok(Some(Holder::parse(value, modified)))
        }
        Err(err) if err.as_service_error().is_some_and(|e| e.is_parameter_not_found()) => Ok(None),
        Err(err) => Err(aws_error("GetParameter", err)),
    }
}

async fn delete(ssm: &aws_sdk_ssm::Client, stack: &str) -> Result<()> {
    match ssm.delete_parameter().name(parameter_name(stack)).send().await {
        Ok(_) => Ok(()),
        Err(err) if err.as_service_error().is_some_and(|e| e.is_parameter_not_found()) => Ok(()),
        Err(err) => Err(aws_error("DeleteParameter", err)),
    }
}

/// Deletes the lock if it is still ours (our token). SSM has no conditional delete, so it is read
/// first: if ours was taken over or removed, the run that holds it now keeps it.
async fn release(ssm: &aws_sdk_ssm::Client, stack: &str, token: &str) -> Result<()> {
    match read(ssm, stack).await? {
        Some(holder) if holder.token == token => delete(ssm, stack).await,
        Some(holder) => {
            eprintln!(
                "warning: the lock of stack {stack} was taken from this run while it held it and is now held by {}",
                holder.describe(unix_now())
            );
            Ok(())
        }
        None => {
            eprintln!("warning: the lock of stack {stack} was removed (deckhand unlock?) while this run held it");
            Ok(())
        }
    }
}

fn held_error(stack: &str, holder: &Holder, waited: Duration, now: u64) -> Error {
    Error::conflict(
        format!("stack {stack} is being applied by {}; gave up after waiting {}", holder.describe(now), human(waited)),
        Some("run again when that run has ended, or wait longer with --lock-timeout (e.g. --lock-timeout 10m)"),
    )
}

/// Now, in Unix seconds.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// This machine's host name, as a lock's holder names it.
fn host_name() -> String {
    whoami::hostname().unwrap_or_else(|_| "unknown-host".to_string())
}

/// The process `pid` on this machine: `<boot id>/<pid namespace>/<start time>`, from Linux's
/// /proc (the start time in clock ticks since boot, field 22 of /proc/<pid>/stat); `None` where
/// there is no /proc or no such process.
fn process_identity(pid: u32) -> Option<String> {
    Some(format!("{}/{}", machine()?, process_start(pid)?))
}

/// Where pids mean the same process: this boot of this kernel, in this pid namespace (containers
/// on one host share the boot id but not the namespace).
fn machine() -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let namespace = std::fs::read_link("/proc/self/ns/pid").ok()?;
    Some(format!("{}/{}", boot.trim(), namespace.display()))
}

/// When process `pid` started (clock ticks since boot), if it runs.
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces and parentheses itself.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the lock's process provably no longer runs: it ran on this machine (`process`, as
/// [`process_identity`] wrote it) and no process with its pid runs, or one that started at
/// another time (the pid was reused). A process elsewhere cannot be checked: never gone.
fn process_gone(pid: u32, process: &str) -> bool {
    let Some((machine_of, started)) = process.rsplit_once('/') else {
        return false;
    };
    if machine().as_deref() != Some(machine_of) {
        return false;
    }
    process_start(pid).is_none_or(|now| now.to_string() != started)
}

/// `2026-11-29T07:05:58Z` (RFC 3339, UTC) for Unix seconds.
pub fn timestamp(unix: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(unix)).to_string()
}

/// A lock's age or wait as a person reads it: to the second under an hour, to the minute beyond
/// (`45s`, `3m 12s`, `2h 5m`, `3days 4h`).
pub fn human(duration: Duration) -> String {
    let secs = duration.as_secs();
    let unit = if secs < 3600 { 1 } else { 60 };
    humantime::format_duration(Duration::from_secs(secs - secs % unit)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_ages_read_well() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(timestamp(1_795_935_958), "2026-11-29T07:05:58Z");
        assert_eq!(timestamp(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(human(Duration::from_secs(45)), "45s");
        assert_eq!(human(Duration::from_secs(192)), "3m 12s");
        assert_eq!(human(Duration::from_secs(7500)), "2h 5m");
        assert_eq!(human(Duration::from_secs(7512)), "2h 5m");
        assert_eq!(human(Duration::from_secs(3 * 86_400 + 4 * 3600)), "3days 4h");
    }

    #[test]
    fn the_value_round_trips_and_foreign_values_still_name_a_holder() {
        let me = Holder::this_process("deckhand run deploy.rhai");
        assert_eq!(Holder::parse(&me.to_json(), None), me);
        assert!(me.holder.contains('@'));
        let foreign = Holder::parse("locked by bob", Some(1000));
        assert_eq!((foreign.holder.as_str(), foreign.started), ("unknown", 1000));
    }

    #[test]
    fn a_lock_is_stale_when_not_renewed_or_its_process_is_provably_gone() {
        let now = unix_now();
        let me = Holder::this_process("deckhand run x.rhai");
        assert!(!me.process.is_empty(), "Linux: the process is known by boot, pid namespace and start time");
        let real = Clock::default();
        assert_eq!(me.stale(now, &real), None, "this process runs, and its lock is fresh");
        // Taken two hours ago but renewed just now: a long apply, not a stale lock.
        let long_run = Holder { started: now - 2 * 3600, renewed: now - 30, ..me.clone() };
        assert_eq!(long_run.stale(now, &real), None);
        let unrenewed = Holder { renewed: now - 11 * 60, ..me.clone() };
        assert!(unrenewed.stale(now, &real).is_some_and(|why| why.contains("last renewed 11m")));
        // A pid that runs, but started at another time: reused, so the holder is gone.
        let (machine, _) = me.process.rsplit_once('/').unwrap();
        let reused = Holder { process: format!("{machine}/1"), ..me.clone() };
        assert!(reused.stale(now, &real).is_some_and(|why| why.contains("no longer runs")));
        let dead = Holder { pid: 0x7fff_fff0, ..me.clone() };
        assert!(dead.stale(now, &real).is_some_and(|why| why.contains("no longer runs")));
        let elsewhere = Holder { pid: 0x7fff_fff0, process: "other-boot/pid:[1]/5".into(), ..me.clone() };
        assert_eq!(elsewhere.stale(now, &real), None, "a process on another machine cannot be checked");
        let unknown = Holder { pid: 0x7fff_fff0, process: String::new(), ..me.clone() };
        assert_eq!(unknown.stale(now, &real), None, "nor one whose identity was not recorded");
        // Scaled, a lock is stale sooner, but never before the floor.
        let scaled = Clock::new(Some(crate::timing::TimeScale::parse("0.001").unwrap()));
        let a_minute = Holder { renewed: now - 60, ..me.clone() };
        assert!(a_minute.stale(now, &scaled).is_some() && a_minute.stale(now, &real).is_none());
        let seconds = Holder { renewed: now - 3, ..me };
        assert_eq!(seconds.stale(now, &scaled), None);
    }

    #[test]
    fn the_lock_s_periods_keep_their_ratio_under_the_floor() {
        let real = periods(&Clock::default());
        assert_eq!(real, (STALE_AFTER, LOCK_RENEW_EVERY, LOCK_TAKEOVER_SETTLE));
        let (stale, every, settle) = periods(&Clock::new(Some(crate::timing::TimeScale::parse("0.001").unwrap())));
        assert_eq!(stale, LOCK_STALE_FLOOR);
        assert_eq!((stale.as_millis() / every.as_millis(), stale.as_millis() / settle.as_millis()), (10, 60));
    }

    #[test]
    fn describe_names_holder_pid_command_start_and_age() {
        let h = Holder {
            holder: "alice@box".into(),
            pid: 42,
            command: "deckhand run d.rhai".into(),
            started: 1000,
            token: "t".into(),
            process: String::new(),
            renewed: 1000,
        };
        assert_eq!(h.describe(1192), "alice@box (pid 42, deckhand run d.rhai) since 1970-01-01T00:16:40Z (3m 12s ago)");
    }

    #[test]
    fn lock_timeouts_parse() {
        assert_eq!(parse_timeout("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_timeout("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_timeout("soon").is_err());
        assert!(is_lock_parameter("arn:aws:ssm:us-west-2:1:parameter/deckhand/locks/myapp"));
        assert!(!is_lock_parameter("arn:aws:ssm:us-west-2:1:parameter/app/config"));
    }
}
