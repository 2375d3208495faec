//! The one polling helper: every wait of deckhand (the stack lock, a rollout, a NAT gateway, a
//! certificate, a deletion, a dependency still in use, the local emulator starting) is a [`Wait`]
//! that calls a check until it says [`Check::Done`]. It owns what every wait needs: backoff
//! (backon's exponential backoff, at real-AWS paces scaled by the run's time scale, never below
//! the poll floor), a timeout in modelled time, Ctrl-C, one kind of progress (a spinner on a
//! terminal, a line per change and every 30 s otherwise), and the record of the time spent
//! waiting that the rehearsal line adds up.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};

use crate::error::{Error, Result};
use crate::timing::{Clock, PROGRESS_EVERY, Pace};

/// What one poll found.
#[derive(Debug)]
pub enum Check<T> {
    /// The wait is over, with this result.
    Done(T),
    /// Not yet.
    Waiting(Pending),
}

impl<T> Check<T> {
    /// Not yet; `line` says where things stand (e.g. `1/2 running, rollout IN_PROGRESS`).
    pub fn waiting(line: impl Into<String>) -> Check<T> {
        Check::Waiting(Pending { line: line.into(), timed_out: None })
    }

    /// Not yet; if the wait runs out of time now, it fails with `timed_out` (an error that says
    /// more than the generic timeout, e.g. the service's newest events).
    pub fn waiting_or(line: impl Into<String>, timed_out: Error) -> Check<T> {
        Check::Waiting(Pending { line: line.into(), timed_out: Some(timed_out) })
    }
}

/// A poll that found the wait not over yet.
#[derive(Debug)]
pub struct Pending {
    line: String,
    timed_out: Option<Error>,
}

/// Where a wait stands when its check runs; the check may lengthen `timeout` (e.g. a rollout
/// behind slow target groups).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    /// Modelled time since the wait started, when this poll started.
    pub elapsed: Duration,
    /// How long the wait may take, in modelled time.
    pub timeout: Duration,
}

/// One wait: what it waits for, how it paces its polls, how long it may take.
pub struct Wait<'a> {
    clock: &'a Clock,
    name: &'static str,
    what: String,
    pace: Pace,
    timeout: Duration,
    report: Option<&'a dyn Fn(&str)>,
    hint: Option<String>,
    quiet: bool,
}

impl<'a> Wait<'a> {
    /// A wait for `what` (e.g. `NAT gateway nat-0abc to become available`), recorded under `name`
    /// for the rehearsal line (e.g. `NAT gateway`), polled at `pace`, for at most `timeout` (all
    /// at real-AWS values: the clock scales them).
    pub fn new(clock: &'a Clock, name: &'static str, what: impl Into<String>, pace: Pace, timeout: Duration) -> Self {
        Wait { clock, name, what: what.into(), pace, timeout, report: None, hint: None, quiet: false }
    }

    /// Progress lines (without a terminal) go to `report` instead of stderr.
    pub fn report_to(mut self, report: &'a dyn Fn(&str)) -> Self {
        self.report = Some(report);
        self
    }

    /// The hint of the timeout error.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// No progress at all (a wait too short to show, e.g. the local emulator starting).
    pub fn quiet(mut self) -> Self {
        self.quiet = true;
        self
    }

    /// Polls `check` until it is done or fails, pausing between polls with backoff. Past the
    /// timeout it fails with the pending poll's error, or [`Error::Timeout`]; on Ctrl-C (while an
    /// interrupt guard is installed) with "interrupted (Ctrl-C) while waiting for ...".
    pub async fn until<T>(self, mut check: impl AsyncFnMut(&mut Round) -> Result<Check<T>>) -> Result<T> {
        let record = self.clock.start_wait(self.name);
        let started = Instant::now();
        let mut pauses = schedule(self.pace);
        let mut progress = Progress::new(&self.what, self.report, self.quiet);
        let mut round = Round { elapsed: Duration::ZERO, timeout: self.timeout };
        let outcome = loop {
            round.elapsed = self.clock.modelled_since(started);
            let pending = match check(&mut round).await {
                Ok(Check::Done(value)) => break Ok(value),
                Ok(Check::Waiting(pending)) => pending,
                Err(err) => break Err(err),
            };
            if round.elapsed >= round.timeout {
                break Err(pending.timed_out.unwrap_or_else(|| Error::Timeout {
                    what: format!("{} ({})", self.what, pending.line),
                    waited: crate::timing::about(round.timeout),
                    hint: self.hint.clone(),
                }));
            }
            record.pausing();
            progress.show(&pending.line, round.elapsed);
            let pause = pauses.next().unwrap_or(self.pace.max).min(round.timeout - round.elapsed);
            if self.clock.sleep(pause).await {
                break Err(Error::conflict(
                    format!("interrupted (Ctrl-C) while waiting for {}: {}", self.what, pending.line),
                    None,
                ));
            }
        };
        progress.finish();
        drop(record);
        outcome
    }
}

/// The pauses of a wait at `pace`, at real-AWS values: backon's exponential backoff from
/// `pace.first`, half as long again each poll, up to `pace.max` (no jitter: one run polls once).
pub fn schedule(pace: Pace) -> impl Iterator<Item = Duration> {
    ExponentialBuilder::new()
        .with_min_delay(pace.first)
        .with_max_delay(pace.max)
        .with_factor(1.5)
        .without_max_times()
        .build()
}

/// A wait's progress: a spinner on a terminal, else a line when the news changes and at least
/// every [`PROGRESS_EVERY`] (modelled).
struct Progress<'a> {
    what: &'a str,
    report: Option<&'a dyn Fn(&str)>,
    quiet: bool,
    bar: Option<indicatif::ProgressBar>,
    last: Option<(String, Duration)>,
}

impl<'a> Progress<'a> {
    fn new(what: &'a str, report: Option<&'a dyn Fn(&str)>, quiet: bool) -> Self {
        Progress { what, report, quiet, bar: None, last: None }
    }

    fn show(&mut self, line: &str, elapsed: Duration) {
        if self.quiet {
            return;
        }
        let text = format!("{line} ({} s)", elapsed.as_secs());
        // Unit tests see lines, whatever runs them.
        if !cfg!(test) && std::io::stderr().is_terminal() {
            let bar = self.bar.get_or_insert_with(|| {
                let bar = indicatif::ProgressBar::new_spinner();
                bar.set_style(
                    indicatif::ProgressStyle::with_template("{spinner} waiting for {prefix}: {msg}")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
                );
                bar.set_prefix(self.what.to_string());
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            });
            bar.set_message(text);
            return;
        }
        let news = self.last.as_ref().is_none_or(|(last, at)| last != line || elapsed >= *at + PROGRESS_EVERY);
        if news {
            let text = format!("waiting for {}: {text}", self.what);
            match self.report {
                Some(report) => report(&text),
                None => eprintln!("{text}"),
            }
            self.last = Some((line.to_string(), elapsed));
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::timing::{POLL_FLOOR, TimeScale};

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap()
    }

    #[test]
    fn pauses_back_off_by_half_up_to_the_pace_s_maximum_and_scale_down_to_the_floor() {
        let pauses: Vec<Duration> = schedule(Pace::new(5000, 15_000)).take(5).collect();
        let ms = |ms: u64| Duration::from_millis(ms);
        assert_eq!(pauses, [ms(5000), ms(7500), ms(11_250), ms(15_000), ms(15_000)]);
        let scale = TimeScale::parse("0.01").unwrap();
        let scaled: Vec<Duration> = pauses.iter().map(|p| scale.pause(*p)).collect();
        assert_eq!(scaled, [POLL_FLOOR, ms(75), Duration::from_micros(112_500), ms(150), ms(150)]);
    }

    #[test]
    fn a_wait_polls_until_done_says_what_it_waits_for_once_per_change_and_is_recorded() {
        let clock = Clock::new(Some(TimeScale::parse("0.01").unwrap()));
        let polls = RefCell::new(0);
        let lines = RefCell::new(Vec::new());
        let report = |line: &str| lines.borrow_mut().push(line.to_string());
        let started = Instant::now();
        let done = runtime().block_on(
            Wait::new(&clock, "NAT gateway", "NAT gateway nat-1", Pace::new(5000, 15_000), Duration::from_secs(600))
                .report_to(&report)
                .until(async |_| {
                    *polls.borrow_mut() += 1;
                    Ok(if *polls.borrow() < 4 { Check::waiting("pending") } else { Check::Done("available") })
                }),
        );
        assert_eq!(done.unwrap(), "available");
        assert!(started.elapsed() >= POLL_FLOOR * 3, "three pauses, each at least the floor");
        assert_eq!(lines.borrow().len(), 1, "one line while the news stays the same: {:?}", lines.borrow());
        assert!(lines.borrow()[0].starts_with("waiting for NAT gateway nat-1: pending (0 s)"), "{:?}", lines.borrow());
        let (waited, each) = clock.waited();
        assert_eq!(each.iter().map(|(name, _)| *name).collect::<Vec<_>>(), ["NAT gateway"]);
        // Pauses of 5 s, 7.5 s and 11.25 s (50 ms, 75 ms, 112.5 ms at 0.01), modelled.
        assert!(waited >= Duration::from_secs(23), "{waited:?}");
        assert!(!clock.waiting());
    }

    #[test]
    fn a_wait_times_out_in_modelled_time_with_the_pending_error_or_a_timeout() {
        let clock = Clock::new(Some(TimeScale::parse("0.001").unwrap()));
        let runtime = runtime();
        let polls = RefCell::new(0);
        // 2 minutes at 0.001 are 120 ms: polls at about 0, 50 (the floor), 100 ms, then the timeout.
        let err = runtime
            .block_on(
                Wait::new(&clock, "stack lock", "the stack lock", Pace::new(500, 10_000), Duration::from_secs(120))
                    .quiet()
                    .until(async |round| {
                        *polls.borrow_mut() += 1;
                        Ok(Check::<()>::waiting_or(
                            "held by alice",
                            Error::conflict(format!("gave up after {} s", round.timeout.as_secs()), None),
                        ))
                    }),
            )
            .unwrap_err();
        assert_eq!(err.to_string(), "gave up after 120 s");
        assert!((2..=4).contains(&*polls.borrow()), "{} polls", polls.borrow());

        let err = runtime
            .block_on(
                Wait::new(&clock, "rollout", "service web to become stable", Pace::new(1000, 10_000), Duration::ZERO)
                    .quiet()
                    .hint("run again")
                    .until(async |_| Ok(Check::<()>::waiting("1/2 running"))),
            )
            .unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }));
        assert!(err.to_string().starts_with("service web to become stable (1/2 running) did not finish within 0s"));
    }

    #[test]
    fn a_check_may_lengthen_its_timeout_and_errors_end_the_wait_at_once() {
        let clock = Clock::new(Some(TimeScale::parse("0.001").unwrap()));
        let runtime = runtime();
        let polls = RefCell::new(0);
        let result = runtime.block_on(
            Wait::new(&clock, "rollout", "service web", Pace::new(1000, 1000), Duration::ZERO).quiet().until(
                async |round| {
                    *polls.borrow_mut() += 1;
                    round.timeout = Duration::from_secs(3600);
                    Ok(if *polls.borrow() < 3 { Check::waiting("rolling") } else { Check::Done(()) })
                },
            ),
        );
        assert!(result.is_ok());
        let err = runtime
            .block_on(
                Wait::new(&clock, "rollout", "service web", Pace::new(1000, 1000), Duration::from_secs(60))
                    .quiet()
                    .until(async |_| Err::<Check<()>, _>(Error::conflict("deployment failed", None))),
            )
            .unwrap_err();
        assert_eq!(err.to_string(), "deployment failed");
    }
}
