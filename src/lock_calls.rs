//! What the runtime asks of the stack lock before each AWS request (kept below both, so neither
//! reaches into the other): whether the call is one of the lock's own (a renewal counts as none of
//! the run's calls), and whether this run lost its lock, in which case it sends nothing more.

use std::sync::{Mutex, PoisonError};

/// Why this process's lock is no longer its own, once a renewal found so; the run then stops.
static LOST: Mutex<Option<String>> = Mutex::new(None);

tokio::task_local! {
    /// Set while the lock's own calls run: they are let through after the lock is lost (to
    /// release it), and renewals are not counted as the run's rounds of calls.
    pub(crate) static LOCK_CALL: LockCall;
}

/// Which of the lock's own calls is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockCall {
    /// Taking or releasing the lock (part of the run's calls).
    Holding,
    /// A renewal, beside the run's work.
    Renewal,
}

/// Why the run must stop, if the lock it held was found to be someone else's (or gone), and the
/// call about to be sent is not the lock's own. Checked before every AWS request and at every
/// script operation.
pub fn refusal() -> Option<String> {
    if LOCK_CALL.try_with(|_| ()).is_ok() {
        return None;
    }
    lost()
}

/// Why this run's lock is no longer its own, if a renewal found so.
pub fn lost() -> Option<String> {
    LOST.lock().unwrap_or_else(PoisonError::into_inner).clone()
}

/// Whether the call being sent is a renewal of the lock (beside the run's work, not one of its rounds).
pub fn renewing() -> bool {
    LOCK_CALL.try_with(|call| *call == LockCall::Renewal).unwrap_or(false)
}

/// Records why this run's lock is no longer its own (`None`: it is, again).
pub(crate) fn set_lost(why: Option<String>) {
    *LOST.lock().unwrap_or_else(PoisonError::into_inner) = why;
}
