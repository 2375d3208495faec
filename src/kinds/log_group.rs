//! The stack's CloudWatch log groups: kept unless `--delete-logs` (they hold the history).

use futures_util::FutureExt;

use super::{Deleting, Entry, Inventory, Kind, Pending, Showing, Shown, StackKind, done};
use crate::aws::logs;

/// The kind.
pub const KIND: Kind = Kind("log_group");

/// The stack's log groups.
pub struct LogGroups;

impl StackKind for LogGroups {
    fn kind(&self) -> Kind {
        KIND
    }

    fn deleted_after(&self) -> &'static [&'static str] {
        &["service"]
    }

    fn list(&self, inventory: &Inventory) -> Vec<Entry> {
        inventory.log_groups.iter().map(|group| Entry::new(KIND, Some(&group.name), &group.name)).collect()
    }

    fn delete<'a>(&'a self, deleting: Deleting<'a>) -> Pending<'a, ()> {
        let Deleting { aws, entry, .. } = deleting;
        logs::delete_log_group(aws, &entry.id).boxed_local()
    }

    fn kept_because(&self, _inventory: &Inventory, _entry: &Entry, delete_logs: bool) -> Option<String> {
        (!delete_logs).then(|| "--delete-logs deletes it".to_string())
    }

    fn status<'a>(&'a self, showing: Showing<'a>) -> Pending<'a, Vec<Shown>> {
        let Showing { reads, entries, .. } = showing;
        let rows = entries.into_iter().map(|entry| {
            let g = reads.inventory.log_groups.iter().find(|g| g.name == entry.id);
            let detail =
                g.map(|g| g.retention_days.map(|d| format!("kept {d} days")).unwrap_or_else(|| "kept forever".into()));
            let mut row = Shown::of(entry, None, detail.unwrap_or_default());
            row.id = g.map_or(row.id, |g| g.arn.clone());
            row
        });
        done(rows.collect())
    }
}
