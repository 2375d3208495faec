//! The change record: what each primitive found and did, printed as it happens and summarised.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::Write;

use anstyle::{AnsiColor, Style};

/// Placeholder for a value that exists only after the resource is created.
pub const UNKNOWN: &str = "(known after apply)";

/// True when `value` is a real value, not [`UNKNOWN`].
pub fn is_known(value: &str) -> bool {
    value != UNKNOWN
}

/// Whether a pass may change AWS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Validate only: no AWS calls at all; every resource counts as missing.
    Check,
    /// Read-only pass: Describe/List/Get calls only.
    Plan,
    /// The pass that creates and updates.
    Apply,
}

impl Mode {
    /// True when this pass may send mutating requests.
    pub fn applies(self) -> bool {
        self == Mode::Apply
    }
}

/// What happens (or happened) to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// The resource is missing and gets created.
    Create,
    /// The resource exists and drifted; it gets updated in place.
    Update,
    /// The resource exists as the script wants it.
    Unchanged,
    /// The resource belongs to the stack but the script no longer declares it (a resource, or a
    /// sub-resource such as a listener rule); it gets deleted.
    Delete,
}

impl ChangeKind {
    fn sign(self) -> char {
        match self {
            ChangeKind::Create => '+',
            ChangeKind::Update => '~',
            ChangeKind::Unchanged => '=',
            ChangeKind::Delete => '-',
        }
    }

    fn style(self) -> Style {
        match self {
            ChangeKind::Create => AnsiColor::Green.on_default(),
            ChangeKind::Update => AnsiColor::Yellow.on_default(),
            ChangeKind::Unchanged => Style::new().dimmed(),
            ChangeKind::Delete => AnsiColor::Red.on_default(),
        }
    }
}

/// One field that differs between AWS and the script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDiff {
    /// The field, e.g. `ingress`.
    pub field: String,
    /// The value in AWS (empty when the field is being added).
    pub before: String,
    /// The value the script asks for (empty when the field is being removed).
    pub after: String,
}

impl FieldDiff {
    /// A field whose value changes from `before` to `after`.
    pub fn changed(field: &str, before: impl fmt::Display, after: impl fmt::Display) -> Self {
        FieldDiff { field: field.to_string(), before: before.to_string(), after: after.to_string() }
    }

    /// An item added to a list field (e.g. a security group rule).
    pub fn added(field: &str, item: impl fmt::Display) -> Self {
        FieldDiff { field: field.to_string(), before: String::new(), after: item.to_string() }
    }

    /// An item removed from a list field.
    pub fn removed(field: &str, item: impl fmt::Display) -> Self {
        FieldDiff { field: field.to_string(), before: item.to_string(), after: String::new() }
    }
}

impl fmt::Display for FieldDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.before.is_empty(), self.after.is_empty()) {
            (true, _) => write!(f, "{}: + {}", self.field, self.after),
            (false, true) => write!(f, "{}: - {}", self.field, self.before),
            (false, false) => write!(f, "{}: {} -> {}", self.field, self.before, self.after),
        }
    }
}

/// The record of one resource's convergence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Create, update or unchanged.
    pub kind: ChangeKind,
    /// The resource type as scripts name it, e.g. `subnet`.
    pub resource: &'static str,
    /// The resource's name.
    pub name: String,
    /// Short identifying facts, e.g. `subnet-0abc, us-west-2a, 172.31.96.0/24`.
    pub summary: String,
    /// The fields that differ (updates only).
    pub diffs: Vec<FieldDiff>,
}

impl Change {
    /// A change of `kind` to the resource `resource` named `name`.
    pub fn new(kind: ChangeKind, resource: &'static str, name: &str, summary: impl Into<String>) -> Self {
        Change { kind, resource, name: name.to_string(), summary: summary.into(), diffs: Vec::new() }
    }

    /// The same change with these field differences.
    pub fn with_diffs(mut self, diffs: Vec<FieldDiff>) -> Self {
        self.diffs = diffs;
        self
    }

    /// The change's lines; the first in its kind's colour when `styled`.
    fn render(&self, styled: bool) -> String {
        let style = if styled { self.kind.style() } else { Style::new() };
        let mut text = format!("{style}{} {} {}", self.kind.sign(), self.resource, self.name);
        if !self.summary.is_empty() {
            text.push_str(&format!(" ({})", self.summary));
        }
        if self.kind == ChangeKind::Delete {
            text.push_str(" — no longer declared");
        }
        text.push_str(&format!("{style:#}"));
        for diff in &self.diffs {
            text.push_str(&format!("\n    {diff}"));
        }
        text
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(false))
    }
}

/// Where a pass writes its lines: straight to stdout, or held back until the run decides.
#[derive(Debug)]
pub enum Sink {
    /// Print each line as it happens, coloured where stdout takes colour (anstream decides:
    /// a terminal, and neither `NO_COLOR` nor `CLICOLOR=0`).
    Stdout,
    /// Keep lines (plain) for later.
    Buffer(RefCell<Vec<String>>),
}

impl Sink {
    /// Stdout.
    pub fn stdout() -> Self {
        Sink::Stdout
    }

    /// A buffer for a pass whose output may be discarded.
    pub fn buffer() -> Self {
        Sink::Buffer(RefCell::new(Vec::new()))
    }

    /// Writes one (possibly styled) line: styles stripped where colour is off and in buffers.
    fn write_line(&self, line: &str) {
        match self {
            Sink::Stdout => {
                let mut out = anstream::stdout().lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
            Sink::Buffer(lines) => lines.borrow_mut().push(anstream::adapter::strip_str(line).to_string()),
        }
    }

    /// The lines held back so far (empty for stdout).
    pub fn take(&self) -> Vec<String> {
        match self {
            Sink::Stdout => Vec::new(),
            Sink::Buffer(lines) => std::mem::take(&mut lines.borrow_mut()),
        }
    }
}

/// The change log of one pass.
#[derive(Debug)]
pub struct ChangeLog {
    mode: Mode,
    changes: RefCell<Vec<Change>>,
    sink: Sink,
    notes: Cell<usize>,
}

impl ChangeLog {
    /// An empty log for a pass in `mode`, writing to `sink`.
    pub fn new(mode: Mode, sink: Sink) -> Self {
        ChangeLog { mode, changes: RefCell::new(Vec::new()), sink, notes: Cell::new(0) }
    }

    /// The pass's mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Records and prints a change.
    pub fn record(&self, change: Change) {
        self.sink.write_line(&change.render(true));
        self.tally(change);
    }

    /// Records a change without printing it (deletions report their own progress as they go).
    pub fn tally(&self, change: Change) {
        self.changes.borrow_mut().push(change);
    }

    /// Prints a line from the script (`print`) or a note from deckhand.
    pub fn say(&self, line: &str) {
        self.sink.write_line(line);
    }

    /// Prints a warning once per pass and counts it.
    pub fn warn(&self, message: &str) {
        self.notes.set(self.notes.get() + 1);
        let yellow = AnsiColor::Yellow.on_default();
        self.sink.write_line(&format!("{yellow}warning{yellow:#}: {message}"));
    }

    /// All changes recorded so far.
    pub fn changes(&self) -> Vec<Change> {
        self.changes.borrow().clone()
    }

    /// True when some change is a create or an update.
    pub fn has_changes(&self) -> bool {
        self.changes.borrow().iter().any(|c| c.kind != ChangeKind::Unchanged)
    }

    /// Lines held back by a buffered sink.
    pub fn take_output(&self) -> Vec<String> {
        self.sink.take()
    }

    /// Counts of created/updated/unchanged resources.
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for change in self.changes.borrow().iter() {
            match change.kind {
                ChangeKind::Create => counts.create += 1,
                ChangeKind::Update => counts.update += 1,
                ChangeKind::Unchanged => counts.unchanged += 1,
                ChangeKind::Delete => counts.delete += 1,
            }
        }
        counts
    }

    /// The closing line of this pass, e.g. `3 created, 0 updated, 1 unchanged (14 AWS calls)`.
    pub fn summary(&self, aws_calls: usize) -> String {
        self.summary_as(self.mode, aws_calls)
    }

    /// The closing line as a pass of `mode` would print it (a plan with no changes closes a run
    /// the way an apply would).
    pub fn summary_as(&self, mode: Mode, aws_calls: usize) -> String {
        let c = self.counts();
        let calls = if aws_calls == 1 { "1 AWS call".to_string() } else { format!("{aws_calls} AWS calls") };
        let deleted = |what: &str| if c.delete == 0 { String::new() } else { format!(", {} {what}", c.delete) };
        match mode {
            Mode::Apply => format!(
                "{} created, {} updated{}, {} unchanged ({calls})",
                c.create,
                c.update,
                deleted("deleted"),
                c.unchanged
            ),
            Mode::Plan => format!(
                "Plan: {} to create, {} to update{}, {} unchanged ({calls}, nothing changed)",
                c.create,
                c.update,
                deleted("to delete"),
                c.unchanged
            ),
            Mode::Check => format!("Check passed: {} resources declared (no AWS calls)", c.create),
        }
    }
}

/// How many resources of each kind a pass saw.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Resources created (or to create).
    pub create: usize,
    /// Resources updated (or to update).
    pub update: usize,
    /// Resources unchanged.
    pub unchanged: usize,
    /// Resources deleted (or to delete) because the script no longer declares them.
    pub delete: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_changes_with_diffs() {
        let change = Change::new(ChangeKind::Update, "security_group", "web", "sg-1").with_diffs(vec![
            FieldDiff::added("ingress", "tcp 80 from 0.0.0.0/0"),
            FieldDiff::removed("ingress", "tcp 22 from 0.0.0.0/0"),
        ]);
        assert_eq!(
            change.to_string(),
            "~ security_group web (sg-1)\n    ingress: + tcp 80 from 0.0.0.0/0\n    ingress: - tcp 22 from 0.0.0.0/0"
        );
    }

    #[test]
    fn summary_counts_each_kind() {
        let log = ChangeLog::new(Mode::Apply, Sink::buffer());
        log.record(Change::new(ChangeKind::Create, "subnet", "a", ""));
        log.record(Change::new(ChangeKind::Create, "subnet", "b", ""));
        log.record(Change::new(ChangeKind::Unchanged, "vpc", "default", ""));
        assert!(log.has_changes());
        assert_eq!(log.summary(7), "2 created, 0 updated, 1 unchanged (7 AWS calls)");
        assert_eq!(log.take_output().len(), 3);
        log.tally(Change::new(ChangeKind::Delete, "listener", "web:443", "listener/app/web/1/2"));
        assert_eq!(log.summary(7), "2 created, 0 updated, 1 deleted, 1 unchanged (7 AWS calls)");
        assert!(log.take_output().is_empty(), "tallied, not printed");
    }

    #[test]
    fn a_deletion_says_why() {
        let change = Change::new(ChangeKind::Delete, "nat_gateway", "web-nat", "nat-1");
        assert_eq!(change.to_string(), "- nat_gateway web-nat (nat-1) — no longer declared");
        let log = ChangeLog::new(Mode::Plan, Sink::buffer());
        log.record(change);
        assert!(log.has_changes());
        assert_eq!(
            log.summary(3),
            "Plan: 0 to create, 0 to update, 1 to delete, 0 unchanged (3 AWS calls, nothing changed)"
        );
    }

    #[test]
    fn buffered_lines_are_plain_and_stdout_lines_carry_the_kind_colour() {
        let change = Change::new(ChangeKind::Create, "subnet", "a", "us-west-2a");
        assert_eq!(change.render(true), "\x1b[32m+ subnet a (us-west-2a)\x1b[0m");
        let log = ChangeLog::new(Mode::Plan, Sink::buffer());
        log.record(change);
        log.warn("careful");
        assert_eq!(log.take_output(), ["+ subnet a (us-west-2a)", "warning: careful"]);
    }
}
