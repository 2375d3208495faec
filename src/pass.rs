//! One pass of a script (check, plan or apply): its mode, stack, AWS clients, change log and the
//! read cache shared by the passes of a run. The engine knows the run's reads only as [`Reads`]:
//! the kinds' snapshot (`aws::Snapshot`) implements it, and `aws::Pass` names this pass over it.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt::Debug;
use std::future::Future;
use std::rc::Rc;

use futures_util::future::LocalBoxFuture;

use crate::error::{Error, Result};
use crate::lock::{LockOptions, PassLock};
use crate::plan::{ChangeLog, Mode, Sink};
use crate::runtime::Aws;
use crate::tagged::StackTagged;

/// What a run reads about its stack up front, as the engine sees it: loaded once per run, then
/// copied into each pass, which keeps its copy current as it plans or applies changes.
pub trait Reads: Clone + Default + Debug + 'static {
    /// What the run's script declares, read up front with the rest.
    type Declared: Default + Debug;

    /// Reads the stack's resources, and the declared ones with them.
    fn load<'a>(aws: &'a Aws, stack: &'a str, declared: &'a Self::Declared) -> LocalBoxFuture<'a, Result<Self>>;

    /// The stack's resources as the tagging API lists them, with their keep marks.
    fn tagged(&self) -> &StackTagged;

    /// The same, to note a keep mark put on or taken off.
    fn tagged_mut(&mut self) -> &mut StackTagged;
}

/// Reads cached for a whole run: read once (by the first pass), then each pass works on its own
/// copy, so what a plan pass records as "to be created" never leaks into the apply pass.
#[derive(Debug, Default)]
pub struct State<S: Reads> {
    read: RefCell<Option<S>>,
    declared: S::Declared,
}

impl<S: Reads> State<S> {
    /// A run's state that reads these declared resources up front with the rest.
    pub fn with_declared(declared: S::Declared) -> State<S> {
        State { read: RefCell::default(), declared }
    }

    /// What the run's script declares, as its check pass found it (empty for the REPL).
    pub fn declared(&self) -> &S::Declared {
        &self.declared
    }

    /// The stack's resources as the run first read them (before any pass planned or applied a
    /// change), if a pass has read them.
    pub fn first_read(&self) -> Option<S> {
        self.read.borrow().clone()
    }
}

/// The context every primitive works in during one pass.
#[derive(Debug)]
pub struct Pass<S: Reads> {
    /// Check, plan or apply.
    pub mode: Mode,
    /// What this pass did, printed as it happens.
    pub log: ChangeLog,
    /// Treat warnings (e.g. the egress trap) as errors.
    pub strict: bool,
    aws: Option<Aws>,
    region: Option<String>,
    stack: RefCell<Option<String>>,
    state: Rc<State<S>>,
    snapshot: Rc<SnapshotCell<S>>,
    lock: RefCell<PassLock>,
    deferred: Deferred<S>,
    early: Early<S>,
}

/// A pass's copy of the run's reads, taken when it first needs them.
type SnapshotCell<S> = RefCell<Option<Rc<RefCell<S>>>>;

/// A create a gathering pass found ready to send ahead of the script (see [`Pass::gather`]):
/// given the apply pass, the future that creates the resource and remembers it there, or `None`
/// when its kind cannot create it beside others right now. Its failure is not the run's yet: the
/// statement that declares the resource reports it, with line:col ([`Pass::take_failed_early`]).
pub type EarlyCreate<S> = Box<dyn for<'a> FnOnce(&'a Pass<S>) -> Option<LocalBoxFuture<'a, Result<()>>>>;

/// Creates sent ahead of the script: what a gathering pass collects, and what the apply pass
/// created so (its statements then record them as created, `+`, not as found, `=`).
struct Early<S: Reads> {
    /// `Some` in a gathering pass: the creates it found ready.
    gathered: RefCell<Option<Vec<EarlyCreate<S>>>>,
    /// In a gathering pass, the snapshot of the apply pass it gathers for: what it reads on demand
    /// goes there too (the apply pass may have taken its copy of the run's reads already).
    applying: Option<Rc<SnapshotCell<S>>>,
    /// The kind and name of each resource the apply pass created ahead of its statement.
    created: RefCell<HashSet<(&'static str, String)>>,
    /// The creates that failed ahead of their statements, by kind and name, with their errors.
    failed: RefCell<Vec<((&'static str, String), Error)>>,
}

impl<S: Reads> Default for Early<S> {
    fn default() -> Self {
        Early {
            gathered: RefCell::new(None),
            applying: None,
            created: RefCell::new(HashSet::new()),
            failed: RefCell::new(Vec::new()),
        }
    }
}

impl<S: Reads> Debug for Early<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Early")
            .field("gathering", &self.gathered.borrow().as_ref().map(Vec::len))
            .field("created", &self.created.borrow())
            .field("failed", &self.failed.borrow())
            .finish()
    }
}

/// A wait the pass put off until something needs what it waits for (a NAT gateway a route goes
/// to, a certificate a listener serves), or the pass ends: AWS works on it meanwhile, so the
/// statements in between run while it is pending, as terraform and CloudFormation overlap them.
type DeferredWait<S> = Box<dyn FnOnce(&Pass<S>, &str) -> Result<()>>;

/// The pass's deferred waits, keyed by what they wait for (e.g. `NAT gateway nat-0abc`), in the
/// order they were deferred (the end of the pass waits for them in that order).
struct Deferred<S: Reads>(RefCell<Vec<(String, DeferredWait<S>)>>);

impl<S: Reads> Default for Deferred<S> {
    fn default() -> Self {
        Deferred(RefCell::new(Vec::new()))
    }
}

impl<S: Reads> Debug for Deferred<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.borrow().iter().map(|(key, _)| key)).finish()
    }
}

impl<S: Reads> Pass<S> {
    /// A pass in `mode`; `aws` is `None` only in check mode.
    pub fn new(mode: Mode, aws: Option<Aws>, region: Option<String>, sink: Sink, state: Rc<State<S>>) -> Pass<S> {
        let region = aws.as_ref().map(|a| a.region.clone()).or(region);
        Pass {
            mode,
            log: ChangeLog::new(mode, sink),
            strict: false,
            aws,
            region,
            stack: RefCell::new(None),
            state,
            snapshot: Rc::default(),
            lock: RefCell::new(PassLock::None),
            deferred: Deferred::default(),
            early: Early::default(),
        }
    }

    /// A gathering pass for this apply pass: a silent plan pass over the same run's reads that
    /// collects the creates whose specs it knows in full (see [`Pass::gather`]).
    pub fn gathering(&self) -> Pass<S> {
        let mut pass = Pass::new(Mode::Plan, self.aws.clone(), self.region.clone(), Sink::buffer(), self.state.clone());
        *pass.early.gathered.borrow_mut() = Some(Vec::new());
        pass.early.applying = Some(self.snapshot.clone());
        pass
    }

    /// Whether this is a gathering pass.
    pub fn is_gathering(&self) -> bool {
        self.early.gathered.borrow().is_some()
    }

    /// Collects a create a gathering pass found ready (every input of its spec known).
    pub fn gather(&self, create: EarlyCreate<S>) {
        if let Some(gathered) = self.early.gathered.borrow_mut().as_mut() {
            gathered.push(create);
        }
    }

    /// The creates this gathering pass collected, in the script's order.
    pub fn gathered(&self) -> Vec<EarlyCreate<S>> {
        self.early.gathered.borrow_mut().as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Notes that this apply pass created `kind` `name` ahead of its statement.
    pub fn created_early(&self, kind: &'static str, name: &str) {
        self.early.created.borrow_mut().insert((kind, name.to_string()));
    }

    /// Notes that the create of `kind` `name` sent ahead of its statement failed: the statement
    /// reports `error` (see [`Pass::take_failed_early`]), and no create is sent ahead any more.
    pub fn failed_early(&self, kind: &'static str, name: &str, error: Error) {
        self.early.failed.borrow_mut().push(((kind, name.to_string()), error));
    }

    /// Whether a create sent ahead failed in this apply pass.
    pub fn any_failed_early(&self) -> bool {
        !self.early.failed.borrow().is_empty()
    }

    /// The error of the create of `kind` `name` sent ahead of its statement, if it failed: the
    /// statement's error, reported at its line (the create is not sent twice).
    pub fn take_failed_early(&self, kind: &'static str, name: &str) -> Option<Error> {
        let mut failed = self.early.failed.borrow_mut();
        let at = failed.iter().position(|((k, n), _)| *k == kind && n == name)?;
        Some(failed.remove(at).1)
    }

    /// Whether this apply pass created `kind` `name` ahead of its statement (once: the statement
    /// that records it takes it).
    pub fn take_created_early(&self, kind: &'static str, name: &str) -> bool {
        self.early.created.borrow_mut().remove(&(kind, name.to_string()))
    }

    /// The AWS clients, or `None` in check mode.
    pub fn aws(&self) -> Option<&Aws> {
        self.aws.as_ref()
    }

    /// The region, when known (always, except in check mode without `--region`).
    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    /// What the run's script declares, as its check pass found it (empty for the REPL).
    pub fn declared(&self) -> &S::Declared {
        self.state.declared()
    }

    /// Names the stack that tags every resource declared after this call.
    pub fn set_stack(&self, name: &str) -> Result<()> {
        validate_stack_name(name)?;
        let mut stack = self.stack.borrow_mut();
        match stack.as_deref() {
            Some(current) if current != name => Err(Error::conflict(
                format!("stack is already \"{current}\"; a script deploys one stack"),
                Some("call stack() once, at the top of the script (in the REPL, switch stacks with :stack NAME)"),
            )),
            _ => {
                *stack = Some(name.to_string());
                Ok(())
            }
        }
    }

    /// The stack's name, or an error explaining that `stack()` must come first.
    pub fn stack(&self) -> Result<String> {
        self.stack.borrow().clone().ok_or_else(|| {
            Error::conflict(
                "no stack is set: resources must belong to a stack",
                Some("start the script with stack(\"myapp\") (deckhand tags everything with it)"),
            )
        })
    }

    /// Makes an apply pass take the stack lock (lock.rs) before it first reads the stack, and
    /// hold it until the pass ends (the REPL's statements; `run` holds the lock itself).
    pub fn lock_before_reading(&self, options: LockOptions) {
        if self.mode.applies() {
            *self.lock.borrow_mut() = PassLock::BeforeFirstRead(options);
        }
    }

    /// This pass's view of the stack's resources: read once per run (all services concurrently),
    /// then updated by this pass as it plans or applies changes.
    pub fn snapshot(&self) -> Result<Rc<RefCell<S>>> {
        if let Some(snapshot) = self.snapshot.borrow().as_ref() {
            return Ok(snapshot.clone());
        }
        let stack = self.stack()?;
        if let Some(aws) = &self.aws {
            self.lock.borrow_mut().before_read(aws, &stack)?;
        }
        let mut read = self.state.read.borrow_mut();
        if read.is_none() {
            *read = Some(match &self.aws {
                Some(aws) => aws.block_on(S::load(aws, &stack, &self.state.declared))?,
                None => S::default(),
            });
        }
        let snapshot = Rc::new(RefCell::new(read.clone().expect("read above")));
        *self.snapshot.borrow_mut() = Some(snapshot.clone());
        Ok(snapshot)
    }

    /// Records something read on demand (e.g. an IAM role looked up by name) in this pass's
    /// snapshot and in the run's read cache, so later passes reuse it instead of reading again.
    pub fn remember_read(&self, record: impl Fn(&mut S)) -> Result<()> {
        record(&mut self.snapshot()?.borrow_mut());
        if let Some(read) = self.state.read.borrow_mut().as_mut() {
            record(read);
        }
        if let Some(applying) = self.early.applying.as_ref().and_then(|cell| cell.borrow().clone()) {
            record(&mut applying.borrow_mut());
        }
        Ok(())
    }

    /// Runs an async read to completion; `None` in check mode (no AWS).
    pub fn read<T>(&self, f: impl AsyncFnOnce(&Aws) -> T) -> Option<T> {
        self.aws.as_ref().map(|aws| aws.block_on(f(aws)))
    }

    /// Runs an async mutating operation; refused outside the apply pass, so plan and check
    /// passes cannot change AWS even by mistake.
    pub fn apply<T>(&self, f: impl AsyncFnOnce(&Aws) -> Result<T>) -> Result<T> {
        self.block(self.send(f))
    }

    /// [`Pass::apply`] as a future, for what runs beside other requests (a create sent ahead of
    /// the script, see [`Pass::gather`]); refused outside the apply pass all the same.
    pub async fn send<T>(&self, f: impl AsyncFnOnce(&Aws) -> Result<T>) -> Result<T> {
        match (&self.aws, self.mode) {
            (Some(aws), Mode::Apply) => f(aws).await,
            _ => Err(Error::Internal(format!("a change was attempted in a {:?} pass", self.mode))),
        }
    }

    /// Runs a future of this pass's [`Pass::send`]s to completion on the run's runtime (the
    /// synchronous form kinds' updates use); refused without AWS.
    pub fn block<T>(&self, future: impl Future<Output = Result<T>>) -> Result<T> {
        match &self.aws {
            Some(aws) => aws.block_on(future),
            None => Err(Error::Internal(format!("a change was attempted in a {:?} pass", self.mode))),
        }
    }

    /// Puts off the wait for `key` (e.g. `NAT gateway nat-0abc`) until [`Pass::need`] asks for it
    /// or the pass ends ([`Pass::finish`]); a second wait for the same key replaces the first.
    /// `wait` is told who needs it (`route table myapp-private`, or `the end of the run`) for its
    /// progress line. Only the apply pass defers (a plan pass waits for nothing).
    pub fn defer(&self, key: impl Into<String>, wait: impl FnOnce(&Pass<S>, &str) -> Result<()> + 'static) {
        if !self.mode.applies() {
            return;
        }
        let key = key.into();
        let mut deferred = self.deferred.0.borrow_mut();
        deferred.retain(|(k, _)| *k != key);
        deferred.push((key, Box::new(wait)));
    }

    /// Whether a wait for `key` is put off (its resource is not ready yet as far as this pass knows).
    pub fn pending(&self, key: &str) -> bool {
        self.deferred.0.borrow().iter().any(|(k, _)| k == key)
    }

    /// Waits now for `key`'s deferred wait, if one is pending, because `by` needs it (e.g.
    /// `route table myapp-private`); an error of the wait is the error of what needed it.
    pub fn need(&self, key: &str, by: &str) -> Result<()> {
        let wait = {
            let mut deferred = self.deferred.0.borrow_mut();
            let Some(at) = deferred.iter().position(|(k, _)| k == key) else { return Ok(()) };
            deferred.remove(at).1
        };
        wait(self, by)
    }

    /// Waits for every deferred wait still pending, in the order they were deferred: the end of
    /// an apply pass (and `wait_stable`) leaves nothing half-ready behind. The first failure ends
    /// it; the waits after it are dropped (AWS goes on with them; the next run finds them).
    pub fn finish(&self, by: &str) -> Result<()> {
        loop {
            let next = {
                let mut deferred = self.deferred.0.borrow_mut();
                if deferred.is_empty() {
                    return Ok(());
                }
                deferred.remove(0)
            };
            if let Err(err) = (next.1)(self, by) {
                self.deferred.0.borrow_mut().clear();
                return Err(err);
            }
        }
    }

    /// Reports a warning; with `--strict` it is an error instead.
    pub fn warn(&self, message: &str) -> Result<()> {
        if self.strict {
            return Err(Error::conflict(format!("{message} (an error because of --strict)"), None));
        }
        self.log.warn(message);
        Ok(())
    }
}

fn validate_stack_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "stack",
            format!("{name:?}"),
            "1 to 32 letters, digits and hyphens, not starting with a hyphen",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run's reads with nothing in them (the deferred waits need none).
    #[derive(Debug, Clone, Default)]
    struct NoReads(StackTagged);

    impl Reads for NoReads {
        type Declared = ();

        fn load<'a>(_: &'a Aws, _: &'a str, _: &'a ()) -> LocalBoxFuture<'a, Result<Self>> {
            Box::pin(async { Ok(NoReads::default()) })
        }

        fn tagged(&self) -> &StackTagged {
            &self.0
        }

        fn tagged_mut(&mut self) -> &mut StackTagged {
            &mut self.0
        }
    }

    fn pass(mode: Mode) -> Pass<NoReads> {
        Pass::new(mode, None, Some("us-west-2".into()), Sink::buffer(), Rc::default())
    }

    #[test]
    fn a_deferred_wait_runs_once_when_needed_and_the_rest_at_the_end_in_order() {
        let pass = pass(Mode::Apply);
        let waited = Rc::new(RefCell::new(Vec::new()));
        for key in ["nat", "cert", "lb"] {
            let waited = waited.clone();
            pass.defer(key, move |_, by| {
                waited.borrow_mut().push(format!("{key} for {by}"));
                Ok(())
            });
        }
        assert!(pass.pending("cert"));
        pass.need("cert", "listener web:443").unwrap();
        pass.need("cert", "listener web:8443").unwrap();
        assert!(!pass.pending("cert"));
        pass.finish("the end of the run").unwrap();
        assert_eq!(
            *waited.borrow(),
            ["cert for listener web:443", "nat for the end of the run", "lb for the end of the run"]
        );
        assert!(!pass.pending("nat") && !pass.pending("lb"));
    }

    #[test]
    fn a_failed_wait_ends_the_others_and_a_plan_pass_defers_nothing() {
        let pass = pass(Mode::Apply);
        let ran = Rc::new(RefCell::new(0));
        pass.defer("nat", |_, _| Err(Error::conflict("NAT gateway nat-1 is failed", None)));
        let counted = ran.clone();
        pass.defer("lb", move |_, _| {
            *counted.borrow_mut() += 1;
            Ok(())
        });
        let err = pass.finish("the end of the run").unwrap_err();
        assert_eq!(err.to_string(), "NAT gateway nat-1 is failed");
        assert_eq!(*ran.borrow(), 0, "the waits after a failed one are dropped");
        assert!(!pass.pending("lb"));

        let plan = self::pass(Mode::Plan);
        plan.defer("nat", |_, _| panic!("a plan pass waits for nothing"));
        assert!(!plan.pending("nat"));
        plan.finish("the end of the run").unwrap();
    }
}
