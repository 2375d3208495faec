//! Deleting a stack's resources (all of them for `deckhand destroy`, what the script no longer
//! declares for `deckhand run`), dependents first, retrying while AWS still releases dependencies.

use std::collections::BTreeSet;

use crate::error::{Error, Result};
use crate::kinds::{self, Entry, Inventory, Kind};
use crate::runtime::Aws;

/// Resources of a stack chosen for deletion (with the inventory that found them: what deleting
/// them needs to know), and those found but kept, with why.
pub struct StackContents {
    doomed: Vec<Entry>,
    kept: Vec<(Entry, String)>,
    inventory: Inventory,
}

impl StackContents {
    /// The whole stack (its [`Inventory`]), to delete: everything but what
    /// [`Inventory::kept_because`] keeps (log groups unless `delete_logs`, roles in use in
    /// another region).
    pub fn find(aws: &Aws, stack: &str, delete_logs: bool) -> Result<StackContents> {
        let inventory = aws.block_on(Inventory::read(aws, stack))?;
        let (mut doomed, mut kept) = (Vec::new(), Vec::new());
        for entry in &inventory.entries {
            match inventory.kept_because(entry, delete_logs) {
                Some(why) => kept.push((entry.clone(), why)),
                None => doomed.push(entry.clone()),
            }
        }
        refuse_collateral(&inventory, &doomed)?;
        Ok(StackContents::of(inventory, doomed, kept))
    }

    /// These entries of `inventory` to delete and these kept, each in the inventory's deletion
    /// order (as its entries come: an ownership marker after the records it marks, a family's
    /// revisions in numeric order).
    pub fn of(inventory: Inventory, doomed: Vec<Entry>, kept: Vec<(Entry, String)>) -> StackContents {
        StackContents { doomed, kept, inventory }
    }

    /// The resources to delete, in deletion order.
    pub fn resources(&self) -> &[Entry] {
        &self.doomed
    }

    /// The resources found but kept, with why (log groups without `--delete-logs`, roles in use
    /// in another region).
    pub fn kept(&self) -> &[(Entry, String)] {
        &self.kept
    }

    /// One line per resource found, in deletion order: `- kind name (id)` for each to delete,
    /// `= kind name (id) (kept; why)` for each kept.
    pub fn listing(&self) -> Vec<String> {
        let mut all: Vec<(&Entry, Option<&str>)> = self
            .doomed
            .iter()
            .map(|d| (d, None))
            .chain(self.kept.iter().map(|(d, why)| (d, Some(why.as_str()))))
            .collect();
        all.sort_by_key(|(d, _)| kinds::deletion_rank(d.kind));
        all.into_iter()
            .map(|(d, kept)| match kept {
                Some(why) => format!("= {d} (kept; {why})"),
                None => format!("- {d}"),
            })
            .collect()
    }

    /// Deletes everything in order, reporting each deletion and the progress of long waits; stops
    /// at the first failure with a report of what was and was not deleted. Kinds deleted together
    /// ([`kinds::StackKind::deleted_together`]: services, whose drains take at least their target
    /// group's deregistration delay) go concurrently; everything else one by one.
    pub fn delete(&self, aws: &Aws, report: impl Fn(&str)) -> Result<usize> {
        // Checked again on the reads the deletions use (a run's pruning reads the stack afresh).
        refuse_collateral(&self.inventory, &self.doomed)?;
        let mut deleted: Vec<&Entry> = Vec::new();
        let mut prepared: BTreeSet<Kind> = BTreeSet::new();
        let mut rest = self.doomed.as_slice();
        while let Some(first) = rest.first() {
            let kind = kinds::of(first.kind);
            let together = match kind.deleted_together() {
                true => rest.iter().take_while(|d| d.kind == first.kind).count(),
                false => 1,
            };
            let (batch, after) = rest.split_at(together);
            let results = aws.block_on(async {
                if prepared.insert(first.kind) {
                    let of_kind = self.doomed.iter().filter(|d| d.kind == first.kind).collect();
                    kind.before_deleting(aws, &self.inventory, of_kind).await?;
                }
                let report: &dyn Fn(&str) = &report;
                let deletions = batch.iter().map(|doomed| async move {
                    let result =
                        kind.delete(kinds::Deleting { aws, inventory: &self.inventory, entry: doomed, report }).await;
                    if result.is_ok() {
                        report(&format!("- {doomed} deleted"));
                    }
                    result
                });
                Ok(futures_util::future::join_all(deletions).await)
            });
            // A failed preparation (a security group's revocations) fails the first of its batch.
            let results = results.unwrap_or_else(|err: Error| vec![Err(err)]);
            let mut left: Vec<&Entry> = Vec::new();
            let mut cause = None;
            for (doomed, result) in batch.iter().zip(results) {
                match result {
                    Ok(()) => deleted.push(doomed),
                    Err(err) => {
                        left.push(doomed);
                        cause.get_or_insert(err);
                    }
                }
            }
            if let Some(err) = cause {
                left.extend(after);
                return Err(failure_report(&err, &deleted, &left));
            }
            rest = after;
        }
        Ok(deleted.len())
    }
}

/// Refuses to delete `doomed` when deleting one of them would delete with it what is not the
/// stack's ([`kinds::StackKind::deletes_with_it`]: a listener carrying another team's rules):
/// deckhand deletes only what it created, so nothing is deleted and the error names what is in the
/// way.
pub fn refuse_collateral(inventory: &Inventory, doomed: &[Entry]) -> Result<()> {
    let blocked: Vec<String> = doomed
        .iter()
        .filter_map(|entry| Some(format!("{entry}: {}", kinds::of(entry.kind).deletes_with_it(inventory, entry)?)))
        .collect();
    if blocked.is_empty() {
        return Ok(());
    }
    Err(Error::conflict(
        format!(
            "refusing to delete what is not stack {}'s with the stack's own (nothing was deleted):\n  {}",
            inventory.stack,
            blocked.join("\n  ")
        ),
        Some(
            "their owners move or delete them first (or tag them deckhand:stack=<stack> if this stack should own \
             them); then run this again",
        ),
    ))
}

/// The error of a destroy that stopped at `left[0]`: the cause, what was deleted, what was not.
fn failure_report(err: &Error, deleted: &[&Entry], left: &[&Entry]) -> Error {
    let list = |items: &[&Entry]| items.iter().map(|d| format!("\n  {d}")).collect::<String>();
    let deleted = match deleted.len() {
        0 => "nothing deleted".to_string(),
        n => format!("deleted ({n}):{}", list(deleted)),
    };
    let failed = left.first().map(ToString::to_string).unwrap_or_default();
    Error::conflict(
        format!("deleting {failed} failed: {err}\n{deleted}\nnot deleted ({}):{}", left.len(), list(left)),
        Some("fix the cause, then run the same destroy again: it continues where it stopped"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doomed(kind: Kind, name: &str, id: &str) -> Entry {
        Entry::new(kind, Some(name), id)
    }

    #[test]
    fn resources_are_deleted_in_the_inventory_order_a_marker_after_its_records() {
        let record = doomed(Kind("dns_record"), "app.example.com A", "z/app.example.com./A");
        let marker = doomed(Kind("dns_record"), "_deckhand.app.example.com TXT", "z/_deckhand.app.example.com./TXT")
            .within(Kind("dns_record"), "app.example.com *".into());
        let revisions =
            [doomed(Kind("task_definition"), "web", "web:9"), doomed(Kind("task_definition"), "web", "web:10")];
        let entries: Vec<Entry> = [record, marker].into_iter().chain(revisions).collect();
        let inventory = Inventory {
            stack: "web".into(),
            entries: entries.clone(),
            snapshot: crate::aws::Snapshot::default(),
            services: Vec::new(),
            revisions: Vec::new(),
            records: Vec::new(),
            certificates: Vec::new(),
            scalable_targets: Vec::new(),
            security_groups: Vec::new(),
            route_tables: Vec::new(),
            roles: Vec::new(),
            log_groups: Vec::new(),
            roles_used_elsewhere: std::collections::HashMap::new(),
        };
        // A destroy that stops after the marker would leave records no later run knows as the stack's.
        assert_eq!(StackContents::of(inventory, entries.clone(), Vec::new()).resources(), entries);
    }

    #[test]
    fn a_failure_midway_names_the_cause_what_was_deleted_and_what_was_not() {
        let all = [
            doomed(Kind("service"), "web", "arn:aws:ecs:us-west-2:123456789012:service/web/web"),
            doomed(Kind("cluster"), "web", "arn:aws:ecs:us-west-2:123456789012:cluster/web"),
            doomed(Kind("subnet"), "web-a", "subnet-1"),
        ];
        let cause = Error::Aws {
            operation: "DeleteCluster".into(),
            code: "ClusterContainsServicesException".into(),
            message: "The Cluster cannot be deleted while Services are active.".into(),
            hint: None,
        };
        let all: Vec<&Entry> = all.iter().collect();
        let text = failure_report(&cause, &all[..1], &all[1..]).to_string();
        assert_eq!(
            text,
            "deleting cluster web (cluster/web) failed: DeleteCluster failed: ClusterContainsServicesException: \
             The Cluster cannot be deleted while Services are active.\n\
             deleted (1):\n  service web (service/web/web)\n\
             not deleted (2):\n  cluster web (cluster/web)\n  subnet web-a (subnet-1)\n  \
             hint: fix the cause, then run the same destroy again: it continues where it stopped"
        );
        let first = failure_report(&cause, &[], &all).to_string();
        assert!(first.contains("\nnothing deleted\nnot deleted (3):\n  service web"), "{first}");
    }
}
