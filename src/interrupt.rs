//! Ctrl-C while the REPL runs a statement: stop that statement (at its next script operation or
//! wait poll), not the whole session. Outside the REPL, Ctrl-C keeps its default meaning.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

static REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_signal: libc::c_int) {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// True after Ctrl-C while a [`Guard`] is installed.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// While alive, Ctrl-C sets [`requested`] instead of ending the process.
pub struct Guard {
    previous: libc::sighandler_t,
}

impl Guard {
    /// Installs the handler (and clears any earlier request).
    pub fn install() -> Guard {
        REQUESTED.store(false, Ordering::SeqCst);
        let handler = on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        let previous = unsafe { libc::signal(libc::SIGINT, handler) };
        Guard { previous }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // SAFETY: restores the handler that was in place before `install`.
        unsafe { libc::signal(libc::SIGINT, self.previous) };
        REQUESTED.store(false, Ordering::SeqCst);
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
