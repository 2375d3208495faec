//! The stack's IAM roles: deleted after their policies and last, kept while a stack of the same
//! name may use them in another region (IAM is global).

use futures_util::FutureExt;

use super::{Deleting, Entry, Inventory, Kind, Pending, Showing, Shown, StackKind, done};
use crate::aws::iam;

/// The kind.
pub const KIND: Kind = Kind("role");

/// The stack's IAM roles.
pub struct Roles;

impl StackKind for Roles {
    fn kind(&self) -> Kind {
        KIND
    }

    fn deleted_after(&self) -> &'static [&'static str] {
        &["service", "task_definition"]
    }

    fn list(&self, inventory: &Inventory) -> Vec<Entry> {
        inventory.roles.iter().map(|role| Entry::new(KIND, Some(&role.name), &role.name)).collect()
    }

    fn delete<'a>(&'a self, deleting: Deleting<'a>) -> Pending<'a, ()> {
        let Deleting { aws, entry, .. } = deleting;
        iam::delete_role(aws, &entry.id).boxed_local()
    }

    fn kept_because(&self, inventory: &Inventory, entry: &Entry, _delete_logs: bool) -> Option<String> {
        inventory.roles_used_elsewhere.get(&entry.name).cloned()
    }

    fn status<'a>(&'a self, showing: Showing<'a>) -> Pending<'a, Vec<Shown>> {
        let Showing { reads, entries, .. } = showing;
        let rows = entries.into_iter().map(|entry| {
            let role = reads.inventory.roles.iter().find(|r| r.name == entry.id);
            let mut row = Shown::of(entry, None, role.map(|r| r.description.clone()).unwrap_or_default());
            row.id = role.map_or(row.id, |role| role.arn.clone());
            row
        });
        done(rows.collect())
    }
}
