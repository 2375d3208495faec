//! The stack's CloudWatch log groups: kept unless `--delete-logs` (they hold the history).

use futures_util::FutureExt;
use futures_util::future::{LocalBoxFuture, ready};

use super::{Entry, Inventory, Kind, Shown, StackKind, StatusReads};
use crate::aws::logs;
use crate::error::Result;
use crate::runtime::Aws;

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

    fn delete<'a>(
        &'a self,
        aws: &'a Aws,
        _inventory: &'a Inventory,
        entry: &'a Entry,
        _report: &'a dyn Fn(&str),
    ) -> LocalBoxFuture<'a, Result<()>> {
        logs::delete_log_group(aws, &entry.id).boxed_local()
    }

    fn kept_because(&self, _inventory: &Inventory, _entry: &Entry, delete_logs: bool) -> Option<String> {
        (!delete_logs).then(|| "--delete-logs deletes it".to_string())
    }

    fn status<'a>(
        &'a self,
        _aws: &'a Aws,
        reads: &'a StatusReads<'a>,
        entries: Vec<&'a Entry>,
    ) -> LocalBoxFuture<'a, Result<Vec<Shown>>> {
        let rows = entries.into_iter().map(|entry| {
            let g = reads.inventory.log_groups.iter().find(|g| g.name == entry.id);
            let detail =
                g.map(|g| g.retention_days.map(|d| format!("kept {d} days")).unwrap_or_else(|| "kept forever".into()));
            let mut row = Shown::of(entry, None, detail.unwrap_or_default());
            row.id = g.map_or(row.id, |g| g.arn.clone());
            row
        });
        ready(Ok(rows.collect())).boxed_local()
    }
}
