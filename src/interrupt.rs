//! Ctrl-C while the REPL runs a statement: stop that statement (at its next script operation or
//! wait poll), not the whole session. Outside the REPL, Ctrl-C keeps its default meaning.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The handler's two flags.
struct Flags {
    /// Set by Ctrl-C; cleared when a [`Guard`] is installed or dropped.
    requested: Arc<AtomicBool>,
    /// True while no guard is alive: SIGINT then does what it does by default (ends the process).
    unguarded: Arc<AtomicBool>,
}

static FLAGS: OnceLock<Flags> = OnceLock::new();

/// Registers SIGINT's actions once (signal-hook keeps them for the process's life): while no
/// guard is alive the signal's default action runs, as if no handler were installed.
fn flags() -> &'static Flags {
    FLAGS.get_or_init(|| {
        let flags = Flags { requested: Arc::new(AtomicBool::new(false)), unguarded: Arc::new(AtomicBool::new(true)) };
        let sigint = signal_hook::consts::SIGINT;
        let registered = signal_hook::flag::register_conditional_default(sigint, Arc::clone(&flags.unguarded))
            .and_then(|_| signal_hook::flag::register(sigint, Arc::clone(&flags.requested)));
        if let Err(err) = registered {
            tracing::warn!("Ctrl-C will end the session, not just the statement: {err}");
        }
        flags
    })
}

/// True after Ctrl-C while a [`Guard`] is installed.
pub fn requested() -> bool {
    FLAGS.get().is_some_and(|flags| !flags.unguarded.load(Ordering::SeqCst) && flags.requested.load(Ordering::SeqCst))
}

/// While alive, Ctrl-C sets [`requested`] instead of ending the process.
pub struct Guard(());

impl Guard {
    /// Installs the handler (and clears any earlier request).
    pub fn install() -> Guard {
        let flags = flags();
        flags.requested.store(false, Ordering::SeqCst);
        flags.unguarded.store(false, Ordering::SeqCst);
        Guard(())
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let flags = flags();
        flags.unguarded.store(true, Ordering::SeqCst);
        flags.requested.store(false, Ordering::SeqCst);
    }
}

/// Sleeps for `duration`, waking early on Ctrl-C; returns whether Ctrl-C was pressed.
pub async fn sleep(duration: Duration) -> bool {
    let slice = Duration::from_millis(100);
    let mut left = duration;
    while !left.is_zero() {
        if requested() {
            return true;
        }
        let step = left.min(slice);
        tokio::time::sleep(step).await;
        left -= step;
    }
    requested()
}
