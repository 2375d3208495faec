//! The convergence engine: a resource kind declares its spec, its live state, how to find it, how
//! to diff, create and update it ([`Resource`]); [`converge`] is the one loop that does the rest
//! for every kind — plan vs apply, the `+ ~ =` record, the stack-tag ownership check, the "AWS
//! cannot change X in place" refusal, and keeping the pass's snapshot current.
//!
//! This is terraform-plugin-framework's resource interface (or a Kubernetes controller's
//! reconcile) in miniature: a kind never writes the loop again.

use std::fmt::Debug;

use futures_util::future::LocalBoxFuture;

use crate::error::{Error, Result};
use crate::pass::{Pass, Reads};
use crate::plan::{Change, ChangeKind, FieldDiff, UNKNOWN};
use crate::tagged::{self, Keepable, STACK_TAG};

/// What a create returned: the new resource, or one with the same identity that appeared
/// meanwhile (a concurrent run, a lost reply), which the engine then checks and converges.
#[derive(Debug)]
pub enum Created<L> {
    /// Created by this call.
    New(L),
    /// Found instead of created; its ownership is checked before it is used.
    Existing(L),
}

/// How the live resource differs from the spec.
#[derive(Debug)]
pub struct Drift<U> {
    /// Fields an in-place update changes, as shown in the plan.
    pub diffs: Vec<FieldDiff>,
    /// Fields that differ but cannot change in place ([`Resource::FIXED`] names them for people).
    pub fixed: Vec<FieldDiff>,
    /// What the update must send, worked out with the diff (`()` when the spec says it all).
    pub update: U,
}

impl<U: Default> Drift<U> {
    /// No difference.
    pub fn none() -> Self {
        Drift { diffs: Vec::new(), fixed: Vec::new(), update: U::default() }
    }

    /// These in-place differences, with the default update.
    pub fn of(diffs: Vec<FieldDiff>) -> Self {
        Drift { diffs, fixed: Vec::new(), update: U::default() }
    }
}

impl<U> Drift<U> {
    /// The same drift with these fields that cannot change in place.
    pub fn with_fixed(mut self, fixed: Vec<FieldDiff>) -> Self {
        self.fixed = fixed;
        self
    }

    /// True when nothing differs.
    pub fn is_empty(&self) -> bool {
        self.diffs.is_empty() && self.fixed.is_empty()
    }
}

/// One kind of AWS resource, declared: the resource as it exists in AWS (or, planned, as it
/// will) is the implementing type; its spec, its SDK calls and its diff rules are declared here.
///
/// Every method that sends a mutating request goes through [`Pass::apply`], so a plan pass cannot
/// send one even by mistake; [`converge`] only calls `create` and `update` in the apply pass.
pub trait Resource: Clone + Sized + 'static {
    /// The run's reads this kind finds itself in and remembers itself into.
    type Reads: Reads;
    /// What a script asks for.
    type Spec: Clone + Debug + 'static;
    /// What an in-place update must send, worked out by [`Resource::diff`].
    type Update: Default;

    /// The kind as scripts and the plan name it, e.g. `log_group`.
    const KIND: &'static str;
    /// What AWS cannot change in place, for people, e.g. `["VPC", "AZ", "CIDR"]`.
    const FIXED: &'static [&'static str] = &[];

    /// The resource's name in the plan.
    fn name(spec: &Self::Spec) -> String;

    /// The kind in a sentence, e.g. `log group`.
    fn noun() -> String {
        Self::KIND.replace('_', " ")
    }

    /// Where people find an existing resource (an id or ARN) in messages; empty when the name says it.
    fn locator(_live: &Self) -> String {
        String::new()
    }

    /// Checks the spec before anything is read or sent (what AWS would reject).
    fn validate(_pass: &Pass<Self::Reads>, _spec: &Self::Spec) -> Result<()> {
        Ok(())
    }

    /// The resource this spec names, from the pass's snapshot (read on demand where AWS cannot
    /// list by tag); `None` when it does not exist.
    fn find(pass: &Pass<Self::Reads>, spec: &Self::Spec) -> Result<Option<Self>>;

    /// The live resource's `deckhand:stack` tag.
    fn stack_of(live: &Self) -> Option<&str>;

    /// What to do about a resource in the way that is not the stack's ([`NEVER_ADOPTS`] unless
    /// the kind says more, e.g. a listener rule's priority).
    fn foreign_hint() -> &'static str {
        NEVER_ADOPTS
    }

    /// What the resource will look like once created; ids are [`crate::plan::UNKNOWN`].
    fn planned(spec: &Self::Spec, stack: &str) -> Self;

    /// Creates it, tagged with the stack (apply pass only).
    fn create(pass: &Pass<Self::Reads>, spec: &Self::Spec, stack: &str) -> Result<Created<Self>>;

    /// The create as a future that can run beside other creates (see [`Pass::gather`]): only
    /// [`Pass::send`]s, nothing that blocks. `None` (the default) when the kind cannot, or not
    /// now (e.g. its create would first wait for a certificate still pending).
    fn create_beside(
        _pass: &Pass<Self::Reads>,
        _spec: Self::Spec,
        _stack: String,
    ) -> Option<LocalBoxFuture<'_, Result<Created<Self>>>> {
        None
    }

    /// How `live` differs from `spec`.
    fn diff(live: &Self, spec: &Self::Spec) -> Drift<Self::Update>;

    /// Changes `live` in place to match `spec` (apply pass only) and returns it as it now is.
    fn update(pass: &Pass<Self::Reads>, live: &Self, spec: &Self::Spec, update: &Self::Update) -> Result<Self>;

    /// What `live` will look like after the update, without sending it (plan pass).
    fn updated(live: &Self, spec: &Self::Spec) -> Self;

    /// Records the resource in the pass's snapshot so later primitives of the pass see it.
    fn remember(snapshot: &mut Self::Reads, live: &Self);

    /// Short identifying facts for the plan line, e.g. `subnet-0abc, us-west-2a, 172.31.96.0/24`.
    fn summary(live: &Self) -> String;

    /// What carries the keep mark of `keep: true` (see [`converge_kept`]); `None` for kinds
    /// that cannot be kept.
    fn keepable(_live: &Self) -> Option<Keepable> {
        None
    }

    /// The plan line's facts for an update; kinds whose update makes a new version (a task
    /// definition's revision) show both, e.g. `web:1 -> web:2`.
    fn update_summary(_before: &Self, after: &Self) -> String {
        Self::summary(after)
    }
}

/// Converges one resource of kind `R` to `spec`: validates it, finds it, creates it when
/// missing, refuses one that is not the stack's, updates it in place when it drifted (or refuses
/// what AWS cannot change in place), and records `+`, `~` or `=`.
pub fn converge<R: Resource>(pass: &Pass<R::Reads>, spec: &R::Spec) -> Result<R> {
    converge_kept::<R>(pass, spec, false)
}

/// [`converge`], with `keep: true` from the script: the resource carries the `deckhand:keep`
/// mark, so a later run whose script no longer declares it keeps it (and says why) instead of
/// deleting it. The mark is part of the resource's state: putting it on or taking it off is an
/// update (`keep: false -> true`); a kind without [`Resource::keepable`] ignores `keep`.
pub fn converge_kept<R: Resource>(pass: &Pass<R::Reads>, spec: &R::Spec, keep: bool) -> Result<R> {
    R::validate(pass, spec)?;
    let stack = pass.stack()?;
    let name = R::name(spec);
    // Its create, sent ahead of the script, failed: that is this statement's error, whether or
    // not AWS made the resource before the failure (the create is not sent twice, nor finished
    // here: a re-run finds what was made by its tag and converges it).
    if let Some(error) = pass.take_failed_early(R::KIND, &name) {
        return Err(error);
    }
    let live = match R::find(pass, spec)? {
        Some(live) if pass.take_created_early(R::KIND, &name) => {
            if keep {
                mark::<R>(pass, &live, true)?;
            }
            return Ok(record::<R>(pass, ChangeKind::Create, &name, live, None, Vec::new()));
        }
        Some(live) => live,
        None if !pass.mode.applies() => {
            if pass.is_gathering() && knows_every_input(spec) {
                pass.gather(create_early::<R>(spec.clone(), stack.clone(), name.clone()));
            }
            let planned = R::planned(spec, &stack);
            return Ok(record::<R>(pass, ChangeKind::Create, &name, planned, None, Vec::new()));
        }
        None => match R::create(pass, spec, &stack)? {
            Created::New(live) => {
                if keep {
                    mark::<R>(pass, &live, true)?;
                }
                return Ok(record::<R>(pass, ChangeKind::Create, &name, live, None, Vec::new()));
            }
            Created::Existing(live) => live,
        },
    };
    refuse_foreign(&R::noun(), &name, &R::locator(&live), R::stack_of(&live), &stack, R::foreign_hint())?;
    let mut drift = R::diff(&live, spec);
    if !drift.fixed.is_empty() {
        return Err(cannot_change::<R>(&name, &drift.fixed));
    }
    let marked = match R::keepable(&live) {
        Some(target) => pass.snapshot()?.borrow().tagged().is_marked(target.key()),
        None => keep,
    };
    if drift.diffs.is_empty() && marked == keep {
        return Ok(record::<R>(pass, ChangeKind::Unchanged, &name, live, None, Vec::new()));
    }
    let after = match (drift.diffs.is_empty(), pass.mode.applies()) {
        (true, _) => live.clone(),
        (false, true) => R::update(pass, &live, spec, &drift.update)?,
        (false, false) => R::updated(&live, spec),
    };
    if marked != keep {
        if pass.mode.applies() {
            mark::<R>(pass, &after, keep)?;
        }
        drift.diffs.push(FieldDiff::changed("keep", marked, keep));
    }
    Ok(record::<R>(pass, ChangeKind::Update, &name, after, Some(&live), drift.diffs))
}

/// Whether a spec holds no value of a resource still to be created ([`UNKNOWN`], what the plan
/// shows as `(known after apply)`): such a create can go ahead of the statements before it.
/// Every spec shows every input it sends in its `Debug` form, so that is where this looks.
fn knows_every_input<T: Debug>(spec: &T) -> bool {
    !format!("{spec:?}").contains(UNKNOWN)
}

/// A create sent ahead of the script (see [`Pass::gather`]): the kind's [`Resource::create_beside`]
/// on the apply pass; what it created (or found) is remembered in the pass's snapshot and the
/// run's reads, so the next gathering pass and the statement itself find it. A failure is kept
/// for the statement, which reports it at its line instead of sending the create again.
fn create_early<R: Resource>(spec: R::Spec, stack: String, name: String) -> crate::pass::EarlyCreate<R::Reads> {
    Box::new(move |pass| {
        // The spec was validated by the gathering pass's statement that collected it.
        let sending = R::create_beside(pass, spec, stack)?;
        Some(Box::pin(async move {
            let created = match sending.await {
                Ok(created) => created,
                Err(error) => {
                    pass.failed_early(R::KIND, &name, error);
                    return Ok(());
                }
            };
            let live = match &created {
                Created::New(live) | Created::Existing(live) => live,
            };
            pass.remember_read(|reads| R::remember(reads, live))?;
            if let Created::New(_) = created {
                pass.created_early(R::KIND, &name);
            }
            Ok(())
        }))
    })
}

/// Puts the keep mark on a resource of this run (or takes it off), and notes it in the snapshot.
fn mark<R: Resource>(pass: &Pass<R::Reads>, live: &R, keep: bool) -> Result<()> {
    let Some(target) = R::keepable(live) else { return Ok(()) };
    pass.apply(async |aws| tagged::set_keep(aws, &target, keep).await)?;
    pass.snapshot()?.borrow_mut().tagged_mut().set_marked(&target, keep);
    Ok(())
}

fn record<R: Resource>(
    pass: &Pass<R::Reads>,
    kind: ChangeKind,
    name: &str,
    live: R,
    before: Option<&R>,
    diffs: Vec<FieldDiff>,
) -> R {
    if let Ok(snapshot) = pass.snapshot() {
        R::remember(&mut snapshot.borrow_mut(), &live);
    }
    let summary = before.map_or_else(|| R::summary(&live), |before| R::update_summary(before, &live));
    pass.log.record(Change::new(kind, R::KIND, name, summary).with_diffs(diffs));
    live
}

/// The hint of a refused resource that is not the stack's, unless its kind says more.
pub const NEVER_ADOPTS: &str = "deckhand never adopts resources it did not create; choose another name (or tag it deckhand:stack=<stack> if this stack should own it)";

/// Refuses a resource that exists under the script's name but is not this stack's: deckhand never
/// adopts what it did not create.
pub fn check_owner(noun: &str, name: &str, locator: &str, owner: Option<&str>, stack: &str) -> Result<()> {
    refuse_foreign(noun, name, locator, owner, stack, NEVER_ADOPTS)
}

/// [`check_owner`], with the kind's hint.
fn refuse_foreign(noun: &str, name: &str, locator: &str, owner: Option<&str>, stack: &str, hint: &str) -> Result<()> {
    if owner == Some(stack) {
        return Ok(());
    }
    let owner = match owner {
        Some(other) => format!("it belongs to stack {other}"),
        None => format!("it has no {STACK_TAG} tag"),
    };
    let article = article(noun);
    let locator = if locator.is_empty() { String::new() } else { format!(" ({locator})") };
    Err(Error::conflict(
        format!("{article} {noun} named {name} already exists{locator} and is not part of stack {stack}: {owner}"),
        Some(hint),
    ))
}

fn cannot_change<R: Resource>(name: &str, fixed: &[FieldDiff]) -> Error {
    let what = if R::FIXED.is_empty() {
        fixed.iter().map(|d| d.field.as_str()).collect::<Vec<_>>().join(", ")
    } else {
        or_list(R::FIXED)
    };
    let changes: Vec<String> = fixed.iter().map(|d| format!("{}: {} -> {}", d.field, d.before, d.after)).collect();
    Error::conflict(
        format!(
            "{} {name} differs where AWS cannot change {} {}'s {what} in place ({})",
            R::KIND,
            article(&R::noun()),
            R::noun(),
            changes.join("; ")
        ),
        Some("give the new one another name, then `deckhand destroy` or delete the old one"),
    )
}

/// "a" or "an" before `noun`.
fn article(noun: &str) -> &'static str {
    if noun.starts_with(['a', 'e', 'i', 'o', 'u', 'A', 'E', 'I', 'O', 'U']) { "an" } else { "a" }
}

fn or_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_fields_read_as_a_list() {
        assert_eq!(or_list(&["VPC", "AZ", "CIDR"]), "VPC, AZ or CIDR");
        assert_eq!(or_list(&["port"]), "port");
    }

    #[test]
    fn foreign_resources_are_refused_with_their_owner() {
        assert!(check_owner("cluster", "web", "", Some("app"), "app").is_ok());
        let err = check_owner("cluster", "web", "", Some("other"), "app").unwrap_err().to_string();
        assert!(
            err.starts_with(
                "a cluster named web already exists and is not part of stack app: it belongs to stack other"
            ),
            "{err}"
        );
        let err = check_owner("IAM role", "web", "arn:r", None, "app").unwrap_err().to_string();
        assert!(err.starts_with("an IAM role named web already exists (arn:r) and is not part"), "{err}");
        assert!(err.contains("it has no deckhand:stack tag"), "{err}");
    }
}
