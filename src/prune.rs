//! `deckhand run` converges all the way: what the stack owns (its [`Inventory`]) but the script no
//! longer declares is shown at the end of the plan (`- kind name (id) — no longer declared`) and
//! deleted after the apply pass's creates and updates, with destroy's deletion code and waits.
//!
//! Kept, and said why: what carries the `deckhand:keep` mark of `keep: true` (see
//! [`crate::converge::converge_kept`]), log groups unless `--delete-logs`, IAM roles in use in
//! another region, older revisions of declared task definition families, and everything with
//! `--keep-undeclared`. A plan that would delete more than half of the stack is refused without
//! `--confirm` or `--yes`: it is most often the wrong script for that stack name. A plan whose
//! deletions would take with them what is not the stack's (a dropped listener carrying another
//! team's rule) is refused, deleting nothing (see [`crate::destroy::refuse_collateral`]).

use std::collections::BTreeSet;

use crate::aws::Snapshot;
use crate::destroy::StackContents;
use crate::error::{Error, Result};
use crate::kinds::{self, Entry, Inventory, Kind};
use crate::plan::{Change, ChangeKind, ChangeLog};
use crate::runtime::Aws;

/// How a kept line starts for a resource the script dropped.
const NO_LONGER_DECLARED: &str = "no longer declared";

/// What may be deleted, from the command line.
#[derive(Debug, Clone, Copy, Default)]
pub struct PruneOptions {
    /// Delete undeclared log groups too (kept by default: they hold the history).
    pub delete_logs: bool,
    /// Delete nothing; only say what is left.
    pub keep_undeclared: bool,
}

/// The stack's resources the script no longer declares: those to delete and those kept.
#[derive(Debug)]
pub struct Prune {
    stack: String,
    doomed: Vec<Entry>,
    kept: Vec<(Entry, String)>,
    stack_size: usize,
    delete_logs: bool,
}

impl Prune {
    /// Compares the stack's inventory with what the plan pass declared (its change log), and
    /// records the deletions in `log` (printed with the plan) followed by what is kept, and why.
    /// `snapshot` is the run's first read of the stack, reused rather than read again.
    pub fn plan(
        aws: &Aws,
        stack: &str,
        snapshot: Option<Snapshot>,
        log: &ChangeLog,
        options: PruneOptions,
    ) -> Result<Prune> {
        let changes = log.changes();
        let declared = declared(&changes);
        let inventory =
            aws.block_on(Inventory::read_with(aws, stack, snapshot, Some(&declared), options.delete_logs))?;
        let creates = |kind: Kind| changes.iter().any(|c| c.kind == ChangeKind::Create && c.resource == kind.name());
        let (mut doomed, mut kept) = (Vec::new(), Vec::new());
        for entry in inventory.undeclared(&declared) {
            let marked = "keep: true (to delete it, declare it once more with keep: false and run, then drop it)";
            let why = if inventory.is_marked(entry) {
                Some(marked.to_string())
            } else {
                inventory.kept_because(entry, options.delete_logs)
            }
            .or_else(|| kinds::of(entry.kind).kept_by_run(&inventory, entry, &creates))
            .or_else(|| options.keep_undeclared.then(|| "--keep-undeclared".to_string()));
            match why {
                Some(why) => kept.push((entry.clone(), format!("{NO_LONGER_DECLARED}, kept: {why}"))),
                None => doomed.push(entry.clone()),
            }
        }
        for entry in inventory.older_revisions(&declared) {
            let why = "an older revision, kept: a rollback may use it (deregistering would only make it INACTIVE)";
            kept.push((entry.clone(), why.to_string()));
        }
        crate::destroy::refuse_collateral(&inventory, &doomed)?;
        for entry in &doomed {
            log.record(deletion(entry));
        }
        for (entry, why) in &kept {
            log.say(&kept_line(entry, why));
        }
        Ok(Prune {
            stack: stack.to_string(),
            doomed,
            kept,
            stack_size: inventory.entries.len(),
            delete_logs: options.delete_logs,
        })
    }

    /// True when the plan deletes something.
    pub fn deletes(&self) -> bool {
        !self.doomed.is_empty()
    }

    /// How many resources the script no longer declares are kept (older revisions of declared
    /// families not counted).
    pub fn kept_undeclared(&self) -> usize {
        self.kept.iter().filter(|(_, why)| why.starts_with(NO_LONGER_DECLARED)).count()
    }

    /// Refuses a plan that deletes more than half of the stack's resources unless `confirmed`
    /// (`--yes`, or `--confirm` answered on a terminal): that is most often the wrong script (or
    /// `--var`) for this stack name.
    pub fn guard(&self, confirmed: bool) -> Result<()> {
        if confirmed || self.doomed.len() * 2 <= self.stack_size {
            return Ok(());
        }
        Err(Error::conflict(
            format!(
                "refusing to delete {} of the {} resources of stack {} without confirmation: a script that no \
                 longer declares most of a stack is most often the wrong script (or --var) for that stack name",
                self.doomed.len(),
                self.stack_size,
                self.stack
            ),
            Some(
                "check the plan (run --plan); pass --yes (or --confirm on a terminal) if they should go, or --keep-undeclared to delete nothing",
            ),
        ))
    }

    /// Deletes what the plan showed, after the apply pass: reads the inventory again (the apply
    /// pass changed the stack: a route no longer points at the NAT gateway, a listener no longer
    /// forwards to the target group) and deletes, dependents first, those of the planned deletions
    /// that still exist; nothing the plan did not show. Each deletion is tallied in `log` and
    /// reported as it happens; the kept ones are listed after.
    pub fn apply(&self, aws: &Aws, log: &ChangeLog) -> Result<()> {
        if self.deletes() {
            // Still undeclared by the apply pass too (it ran the same script on fresh reads). Read
            // as the plan read it: only what a run may delete, not every role of the account.
            let declared = declared(&log.changes());
            let inventory =
                aws.block_on(Inventory::read_with(aws, &self.stack, None, Some(&declared), self.delete_logs))?;
            let planned: BTreeSet<(Kind, &str)> = self.doomed.iter().map(|d| (d.kind, d.id.as_str())).collect();
            let doomed: Vec<Entry> = inventory
                .undeclared(&declared)
                .into_iter()
                .filter(|e| planned.contains(&(e.kind, e.id.as_str())))
                .cloned()
                .collect();
            let contents = StackContents::of(inventory, doomed.clone(), Vec::new());
            contents.delete(aws, |line| log.say(line))?;
            for entry in &doomed {
                log.tally(deletion(entry));
            }
        }
        for (entry, why) in &self.kept {
            log.say(&kept_line(entry, why));
        }
        Ok(())
    }
}

/// The kinds and names the script declared, from a pass's change log, as the inventory names
/// them: one declaration may declare several ([`kinds::StackKind::declared_names`]: a
/// `dns_record` declares one record set per type and the ownership marker of its name).
fn declared(changes: &[Change]) -> BTreeSet<(String, String)> {
    let mut declared = BTreeSet::new();
    for change in changes.iter().filter(|c| c.kind != ChangeKind::Delete) {
        let names = match kinds::named(change.resource) {
            Some(kind) => kind.declared_names(&change.name),
            None => vec![change.name.clone()],
        };
        declared.extend(names.into_iter().map(|name| (change.resource.to_string(), name)));
    }
    declared
}

/// The change line of deleting `entry`: its id shown unless the name says it.
fn deletion(entry: &Entry) -> Change {
    let id = entry.short_id();
    let shown = if id == entry.name { "" } else { id };
    Change::new(ChangeKind::Delete, entry.kind.name(), &entry.name, shown)
}

/// `= kept kind name (id) — why`.
fn kept_line(entry: &Entry, why: &str) -> String {
    format!("= kept {entry} — {why}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prune(doomed: usize, size: usize) -> Prune {
        let entry = Entry::new(Kind("subnet"), Some("a"), "subnet-1");
        Prune {
            stack: "web".into(),
            doomed: vec![entry; doomed],
            kept: Vec::new(),
            stack_size: size,
            delete_logs: false,
        }
    }

    #[test]
    fn deleting_more_than_half_of_the_stack_needs_confirmation() {
        assert!(prune(2, 4).guard(false).is_ok(), "half is allowed");
        let err = prune(3, 4).guard(false).unwrap_err().to_string();
        assert!(err.starts_with("refusing to delete 3 of the 4 resources of stack web without confirmation"), "{err}");
        assert!(err.contains("--yes"), "{err}");
        assert!(prune(3, 4).guard(true).is_ok());
    }

    #[test]
    fn kept_lines_name_the_resource_and_why() {
        let group = Entry::new(Kind("log_group"), Some("/ecs/old"), "/ecs/old");
        assert_eq!(
            kept_line(&group, "no longer declared, kept: --delete-logs deletes it"),
            "= kept log_group /ecs/old — no longer declared, kept: --delete-logs deletes it"
        );
    }
}
