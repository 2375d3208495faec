//! What a kind declares about the stack's own resources of that kind, beside how one converges
//! ([`crate::converge::Resource`]): how the stack's own are found among the stack's reads, how
//! one is deleted, where the kind stands in the deletion order (relative to named kinds), its
//! status line, and what keeps one. The registry ([`super::KINDS`]) lists every kind once;
//! inventory, prune, destroy and status walk it and name no kind themselves.

use std::collections::HashMap;

use futures_util::FutureExt;
use futures_util::future::{LocalBoxFuture, ready};

use super::inventory::{Entry, Inventory};
use crate::aws::queries::{ServiceReport, TargetHealth};
use crate::error::Result;
use crate::poll::{Check, Wait};
use crate::runtime::Aws;
use crate::timing::{Clock, DEPENDENCY_PACE, DEPENDENCY_TIMEOUT};

/// A resource kind as scripts and the change log name it, e.g. `subnet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Kind(pub &'static str);

impl Kind {
    /// The resource type as scripts (and the change log) name it.
    pub fn name(self) -> &'static str {
        self.0
    }
}

/// One row of `deckhand status` for a resource, as its kind shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    /// Its name (a task definition shows its revision).
    pub name: String,
    /// Its id or ARN.
    pub id: String,
    /// AWS's lifecycle state, where it has one.
    pub state: Option<String>,
    /// A few words about it (AZ and CIDR, DNS name, counts).
    pub detail: String,
}

impl Shown {
    /// The entry as listed, with this state and detail.
    pub fn of(entry: &Entry, state: Option<&String>, detail: String) -> Shown {
        Shown { name: entry.name.clone(), id: entry.id.clone(), state: state.cloned(), detail }
    }
}

/// What status has read before the kinds show their rows: the stack's services as ECS reports
/// them (with their cluster's name) and the targets of its target groups (by target group ARN,
/// with the group's name). The per-service details of status use the same reads.
#[derive(Debug)]
pub struct StatusReads<'a> {
    /// The stack's inventory.
    pub inventory: &'a Inventory,
    /// The stack's services as ECS reports them now, with their cluster's name.
    pub reports: &'a [(String, ServiceReport)],
    /// The targets of each of the stack's target groups, by target group ARN, with its name.
    pub health: &'a HashMap<&'a str, (&'a str, &'a Vec<TargetHealth>)>,
}

/// What a kind's asynchronous steps return.
pub type Pending<'a, T> = LocalBoxFuture<'a, Result<T>>;

/// An answer known at once, as a [`Pending`] one.
pub fn done<'a, T: 'a>(value: T) -> Pending<'a, T> {
    ready(Ok(value)).boxed_local()
}

/// What deleting one resource works with.
pub struct Deleting<'a> {
    /// The AWS clients.
    pub aws: &'a Aws,
    /// The stack's inventory that listed it (what deleting it needs to know).
    pub inventory: &'a Inventory,
    /// The resource.
    pub entry: &'a Entry,
    /// Reports progress (long waits, retries).
    pub report: &'a dyn Fn(&str),
}

/// What showing a kind's resources in `deckhand status` works with.
pub struct Showing<'a> {
    /// The AWS clients, for what status reads beyond the inventory (lifecycle states).
    pub aws: &'a Aws,
    /// What status read before the kinds show their rows.
    pub reads: &'a StatusReads<'a>,
    /// The stack's resources of this kind, as listed.
    pub entries: Vec<&'a Entry>,
}

/// One resource kind's stack-wide declaration. Implemented by a unit type per kind and listed
/// once in [`super::KINDS`].
pub trait StackKind: Sync {
    /// The kind, as scripts and the change log name it.
    fn kind(&self) -> Kind;

    /// Kinds whose resources must be gone before one of this kind is deleted (its dependents):
    /// the deletion order is computed from these (see [`super::deletion_order`]).
    fn deleted_after(&self) -> &'static [&'static str] {
        &[]
    }

    /// The stack's resources of this kind among what the inventory read. Every entry is checked
    /// against the stack tag here, also where the read already filtered by it: the inventory
    /// decides what destroy and run delete, so it never trusts a filter alone.
    fn list(&self, inventory: &Inventory) -> Vec<Entry>;

    /// Deletes one resource of this kind, reporting long waits.
    fn delete<'a>(&'a self, deleting: Deleting<'a>) -> Pending<'a, ()>;

    /// Runs once before the first of `doomed` (all of this kind to delete) is deleted.
    fn before_deleting<'a>(
        &'a self,
        _aws: &'a Aws,
        _inventory: &'a Inventory,
        _doomed: Vec<&'a Entry>,
    ) -> Pending<'a, ()> {
        done(())
    }

    /// True when the resources of this kind are deleted together, concurrently (services drain
    /// at the same time); else one by one.
    fn deleted_together(&self) -> bool {
        false
    }

    /// Why a resource stays even when it would be deleted (log groups without `delete_logs`,
    /// roles in use in another region); `None` when nothing keeps it.
    fn kept_because(&self, _inventory: &Inventory, _entry: &Entry, _delete_logs: bool) -> Option<String> {
        None
    }

    /// What deleting this resource would delete with it that is not the stack's (AWS deletes a
    /// listener's rules with it, whoever made them); `None` when nothing. A destroy or run that
    /// would delete it is refused before anything is deleted (destroy's and prune's first check).
    fn deletes_with_it(&self, _inventory: &Inventory, _entry: &Entry) -> Option<String> {
        None
    }

    /// Why a run keeps a resource it no longer declares, given which kinds the run creates
    /// (`creates`): an unattached elastic IP that a NAT gateway this run creates reuses.
    fn kept_by_run(&self, _inventory: &Inventory, _entry: &Entry, _creates: &dyn Fn(Kind) -> bool) -> Option<String> {
        None
    }

    /// The names (as the inventory names entries) that a change log line naming `name` of this
    /// kind declares: the name itself, unless one declaration makes several resources.
    fn declared_names(&self, name: &str) -> Vec<String> {
        vec![name.to_string()]
    }

    /// The status rows of the stack's resources of this kind (as listed; without detail unless
    /// the kind says more).
    fn status<'a>(&'a self, showing: Showing<'a>) -> Pending<'a, Vec<Shown>> {
        done(showing.entries.into_iter().map(|e| Shown::of(e, None, String::new())).collect())
    }
}

/// `n thing` or `n things`.
pub fn count(n: usize, thing: &str) -> String {
    if n == 1 { format!("1 {thing}") } else { format!("{n} {thing}s") }
}

/// Says that deleting `doomed` now waits until `until`, then runs `wait` (the polling helper's
/// progress lines indented under that line).
pub async fn waiting<T>(
    doomed: &Entry,
    until: &str,
    report: &dyn Fn(&str),
    wait: impl AsyncFnOnce(&dyn Fn(&str)) -> Result<T>,
) -> Result<T> {
    report(&format!("  {doomed}: waiting until {until}"));
    let indented = |line: &str| report(&format!("    {line}"));
    wait(&indented).await
}

/// Retries `delete` while AWS answers `code` (e.g. `DependencyViolation`: network interfaces of
/// stopped tasks or a deleted load balancer are still being released), with backoff (2 s growing
/// to 30 s), for up to 15 minutes ([`DEPENDENCY_TIMEOUT`]), then fails with AWS's last answer.
/// The SDK's own retry cannot serve here: it retries transient and throttling errors for
/// seconds, while these are successful answers saying a dependency still exists, which AWS
/// takes minutes to release.
pub async fn retry_while(
    clock: &Clock,
    doomed: &Entry,
    report: &dyn Fn(&str),
    code: &str,
    delete: impl AsyncFn() -> Result<()>,
) -> Result<()> {
    let indented = |line: &str| report(&format!("  {line}"));
    Wait::new(clock, "dependencies released", format!("{doomed} to be free"), DEPENDENCY_PACE, DEPENDENCY_TIMEOUT)
        .report_to(&indented)
        .until(async |_| match delete().await {
            Ok(()) => Ok(Check::Done(())),
            Err(err) if err.aws_code() == Some(code) => Ok(Check::waiting_or(format!("still in use ({code})"), err)),
            Err(err) => Err(err),
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    fn aws_error(code: &str) -> Error {
        Error::Aws { operation: "DeleteSubnet".into(), code: code.into(), message: "in use".into(), hint: None }
    }

    #[test]
    fn deletes_are_retried_while_aws_says_in_use_and_other_errors_end_at_once() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let doomed = Entry { kind: Kind("subnet"), name: "myapp-a".into(), id: "subnet-1".into(), part_of: Vec::new() };
        let reports = std::cell::RefCell::new(Vec::new());
        let report = |line: &str| reports.borrow_mut().push(line.to_string());
        let attempts = std::cell::Cell::new(0);
        let in_use_once = async || {
            attempts.set(attempts.get() + 1);
            if attempts.get() == 1 { Err(aws_error("DependencyViolation")) } else { Ok(()) }
        };
        let clock = Clock::new(Some(crate::timing::TimeScale::parse("0.001").unwrap()));
        runtime.block_on(retry_while(&clock, &doomed, &report, "DependencyViolation", in_use_once)).unwrap();
        assert_eq!(attempts.get(), 2);
        assert_eq!(
            reports.take(),
            ["  waiting for subnet myapp-a (subnet-1) to be free: still in use (DependencyViolation) (0 s)"]
        );

        attempts.set(0);
        let denied = async || {
            attempts.set(attempts.get() + 1);
            Err(aws_error("UnauthorizedOperation"))
        };
        let err = runtime.block_on(retry_while(&clock, &doomed, &report, "DependencyViolation", denied)).unwrap_err();
        assert_eq!((attempts.get(), err.aws_code()), (1, Some("UnauthorizedOperation")));
        assert!(reports.take().is_empty());
    }
}
