//! The stack lock: one SSM parameter per stack (`/deckhand/locks/<stack>`), created with
//! Overwrite=false, so that of two applies of one stack only one changes AWS at a time; the other
//! waits a bounded time. Released when the apply ends (also on error and Ctrl-C);
//! `deckhand unlock` removes a lock left behind by a run that died.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_ssm::types::{ParameterType, Tag};
use serde::{Deserialize, Serialize};

use crate::aws::arn::Arn;
use crate::error::{Error, Result, aws_error};
use crate::poll::{Check, Wait};
use crate::runtime::Aws;
use crate::tagged::STACK_TAG;
use crate::timing::{Clock, LOCK_PACE};

/// Where the lock parameters live: `/deckhand/locks/<stack>`.
pub const PARAMETER_PREFIX: &str = "/deckhand/locks/";
/// A lock older than this is stale (see the table in `timing`).
pub use crate::timing::LOCK_STALE_AFTER as STALE_AFTER;
/// How long a run waits for another run's lock by default (`--lock-timeout`).
pub use crate::timing::LOCK_TIMEOUT as DEFAULT_TIMEOUT;
/// The tag that marks the parameter as a lock, so tag-based listings can leave it out.
pub const LOCK_TAG: &str = "deckhand:lock";

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
        Holder {
            holder: format!("{}@{}", whoami::username().unwrap_or_else(|_| "unknown".into()), host_name()),
            pid: std::process::id(),
            command,
            started: unix_now(),
        }
    }

    /// The parameter's value: JSON with holder, pid, command and start time.
    pub fn to_json(&self) -> String {
        let value = LockValue { holder: self, started: timestamp(self.started) };
        serde_json::to_string(&value).unwrap_or_default()
    }

    /// Reads a parameter's value; a value deckhand did not write still makes a holder (named
    /// "unknown", started at `modified`, the parameter's last change), so it is reported, not lost.
    pub fn parse(value: &str, modified: Option<u64>) -> Holder {
        serde_json::from_str(value).unwrap_or_else(|_| Holder {
            holder: "unknown".to_string(),
            pid: 0,
            command: String::new(),
            started: modified.unwrap_or_else(unix_now),
        })
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

    /// Why the lock is stale, if it is: older than [`STALE_AFTER`] (at `clock`'s scale), or taken
    /// on this host by a process that no longer runs. `None` while its run may still be going.
    pub fn stale(&self, now: u64, clock: &Clock) -> Option<String> {
        if self.age(now) > clock.scaled(STALE_AFTER).max(crate::timing::LOCK_STALE_FLOOR) {
            return Some(format!("it is older than {}, longer than any apply takes", human(STALE_AFTER)));
        }
        let same_host = self.holder.rsplit_once('@').is_some_and(|(_, host)| host == host_name());
        if same_host && self.pid != 0 && !process_runs(self.pid) {
            return Some(format!("its process (pid {}) no longer runs on this host", self.pid));
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

/// A held stack lock; released by [`StackLock::release`] or, failing that, when dropped (an
/// error or Ctrl-C ending the run early).
#[derive(Debug)]
pub struct StackLock {
    aws: Aws,
    stack: String,
    value: String,
    released: bool,
}

impl StackLock {
    /// Takes `stack`'s lock, waiting up to `options.timeout` (with a progress line) while another
    /// run holds it. A stale lock fails at once with its holder, age and the `deckhand unlock` hint.
    pub fn acquire(aws: &Aws, stack: &str, options: &LockOptions) -> Result<StackLock> {
        let me = Holder::this_process(&options.command);
        let value = me.to_json();
        aws.block_on(acquire(aws, stack, &value, options.timeout))?;
        Ok(StackLock { aws: aws.clone(), stack: stack.to_string(), value, released: false })
    }

    /// The stack this lock is for.
    pub fn stack(&self) -> &str {
        &self.stack
    }

    /// Releases the lock.
    pub fn release(mut self) -> Result<()> {
        self.released = true;
        self.aws.block_on(release(&self.aws, &self.stack, &self.value))
    }
}

impl Drop for StackLock {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        self.released = true;
        if let Err(err) = self.aws.block_on(release(&self.aws, &self.stack, &self.value)) {
            eprintln!(
                "warning: could not release the lock of stack {}: {err}\n  hint: once no deckhand run of it is \
                 going, remove it with `deckhand unlock --stack {}`",
                self.stack, self.stack
            );
        }
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
    /// Held; released when the pass is dropped.
    Held(StackLock),
}

impl PassLock {
    /// Takes the lock of `stack` if it is to be taken before the first read.
    pub fn before_read(&mut self, aws: &Aws, stack: &str) -> Result<()> {
        if let PassLock::BeforeFirstRead(options) = self {
            let lock = StackLock::acquire(aws, stack, options)?;
            *self = PassLock::Held(lock);
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
/// `force`: that run would go on unprotected.
pub fn unlock(aws: &Aws, stack: &str, force: bool) -> Result<Unlocked> {
    aws.block_on(async {
        let Some((holder, _)) = read(aws, stack).await? else {
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
        delete(aws, stack).await?;
        Ok(Unlocked::Removed(holder))
    })
}

/// Who holds `stack`'s lock now, if anyone (read only).
pub fn holder(aws: &Aws, stack: &str) -> Result<Option<Holder>> {
    Ok(aws.block_on(read(aws, stack))?.map(|(holder, _)| holder))
}

/// Takes the lock, polling (with backoff) while another run holds it; a stale lock fails at once.
async fn acquire(aws: &Aws, stack: &str, value: &str, timeout: Duration) -> Result<()> {
    Wait::new(aws.clock(), "stack lock", "the stack lock", LOCK_PACE, timeout)
        .until(async |round| {
            if create(aws, stack, value).await? {
                return Ok(Check::Done(()));
            }
            // Held. Between our create and this read the holder may have released it: try again.
            let now = unix_now();
            Ok(match read(aws, stack).await? {
                // Held by us: the SDK retried a PutParameter whose first attempt succeeded but
                // whose reply was lost (a dropped connection, a timeout), and the retry found our
                // own parameter (ParameterAlreadyExists). The value names this process (user@host,
                // pid, start time).
                Some((_, stored)) if stored == value => Check::Done(()),
                Some((holder, _)) => {
                    if let Some(why) = holder.stale(now, aws.clock()) {
                        return Err(stale_error(stack, &holder, &why, now));
                    }
                    let line = format!("stack {stack} is being applied by {}", holder.describe(now));
                    Check::waiting_or(line, held_error(stack, &holder, round.timeout, now))
                }
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

/// Creates the lock parameter; `false` when it exists (someone holds the lock).
async fn create(aws: &Aws, stack: &str, value: &str) -> Result<bool> {
    let tag = |key: &str, value: &str| {
        Tag::builder().key(key).value(value).build().map_err(|e| Error::Internal(format!("an SSM tag: {e}")))
    };
    let result = aws
        .ssm
        .put_parameter()
        .name(parameter_name(stack))
        .description(format!("deckhand: stack {stack} is being applied (removed when the apply ends)"))
        .value(value)
        .r#type(ParameterType::String)
        .overwrite(false)
        .tags(tag(STACK_TAG, stack)?)
        .tags(tag(LOCK_TAG, "true")?)
        .send()
        .await;
    match result {
        Ok(_) => Ok(true),
        Err(err) if err.as_service_error().is_some_and(|e| e.is_parameter_already_exists()) => Ok(false),
        Err(err) => Err(aws_error("PutParameter", err)),
    }
}

/// The lock's holder and raw value, or `None` when the stack is not locked.
async fn read(aws: &Aws, stack: &str) -> Result<Option<(Holder, String)>> {
    match aws.ssm.get_parameter().name(parameter_name(stack)).send().await {
        Ok(out) => {
            let parameter = out.parameter().ok_or_else(|| Error::missing("GetParameter", "Parameter"))?;
            let value = parameter.value().ok_or_else(|| Error::missing("GetParameter", "Parameter.Value"))?;
            let modified = parameter.last_modified_date().and_then(|d| u64::try_from(d.secs()).ok());
            Ok(Some((Holder::parse(value, modified), value.to_string())))
        }
        Err(err) if err.as_service_error().is_some_and(|e| e.is_parameter_not_found()) => Ok(None),
        Err(err) => Err(aws_error("GetParameter", err)),
    }
}

async fn delete(aws: &Aws, stack: &str) -> Result<()> {
    match aws.ssm.delete_parameter().name(parameter_name(stack)).send().await {
        Ok(_) => Ok(()),
        Err(err) if err.as_service_error().is_some_and(|e| e.is_parameter_not_found()) => Ok(()),
        Err(err) => Err(aws_error("DeleteParameter", err)),
    }
}

/// Deletes the lock if it is still ours. SSM has no conditional delete, so it is read first: if
/// `deckhand unlock` removed ours and another run took the stack since, that run keeps its lock.
async fn release(aws: &Aws, stack: &str, value: &str) -> Result<()> {
    match read(aws, stack).await? {
        Some((_, current)) if current == value => delete(aws, stack).await,
        Some((holder, _)) => {
            eprintln!(
                "warning: the lock of stack {stack} was removed while this run held it and is now held by {}",
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

fn stale_error(stack: &str, holder: &Holder, why: &str, now: u64) -> Error {
    Error::conflict(
        format!(
            "stack {stack} is locked by {}, but the lock looks stale: {why}; its run probably died before releasing it",
            holder.describe(now)
        ),
        Some(&format!("if no deckhand run of this stack is going, remove the lock: `deckhand unlock --stack {stack}`")),
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

/// Whether a process with `pid` runs on this host (it may belong to another user).
fn process_runs(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    if unsafe { libc::kill(pid, 0) } == 0 {
        return true;
    }
    std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
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
    fn a_lock_is_stale_when_old_or_its_process_is_gone() {
        let now = unix_now();
        let me = Holder::this_process("deckhand run x.rhai");
        let real = Clock::default();
        assert_eq!(me.stale(now, &real), None, "this process runs, and its lock is fresh");
        let old = Holder { started: now - 2 * 3600, ..me.clone() };
        assert!(old.stale(now, &real).is_some_and(|why| why.contains("older than 1h")));
        let dead = Holder { pid: 0x7fff_fff0, ..me.clone() };
        assert!(dead.stale(now, &real).is_some_and(|why| why.contains("no longer runs")));
        let elsewhere = Holder { holder: "ci@another-host-xyz".into(), pid: 0x7fff_fff0, ..me.clone() };
        assert_eq!(elsewhere.stale(now, &real), None, "a process on another host cannot be checked");
        // Scaled, a lock is stale sooner, but never before the floor (a scaled run's local work is not scaled).
        let scaled = Clock::new(Some(crate::timing::TimeScale::parse("0.01").unwrap()));
        let ten_minutes = Holder { started: now - 600, ..me.clone() };
        assert!(ten_minutes.stale(now, &scaled).is_some() && ten_minutes.stale(now, &real).is_none());
        let a_minute = Holder { started: now - 60, ..me };
        assert_eq!(a_minute.stale(now, &scaled), None);
    }

    #[test]
    fn describe_names_holder_pid_command_start_and_age() {
        let h = Holder { holder: "alice@box".into(), pid: 42, command: "deckhand run d.rhai".into(), started: 1000 };
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
