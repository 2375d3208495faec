//! The stack's IAM roles: deleted after their policies and last, kept while a stack of the same
//! name may use them in another region (IAM is global).

use futures_util::FutureExt;
use futures_util::future::{LocalBoxFuture, ready};

use super::{Entry, Inventory, Kind, Shown, StackKind, StatusReads};
use crate::aws::iam;
use crate::error::Result;
use crate::runtime::Aws;

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

    fn delete<'a>(
        &'a self,
        aws: &'a Aws,
        _inventory: &'a Inventory,
        entry: &'a Entry,
        _report: &'a dyn Fn(&str),
    ) -> LocalBoxFuture<'a, Result<()>> {
        iam::delete_role(aws, &entry.id).boxed_local()
    }

    fn kept_because(&self, inventory: &Inventory, entry: &Entry, _delete_logs: bool) -> Option<String> {
        inventory.roles_used_elsewhere.get(&entry.name).cloned()
    }

    fn status<'a>(
        &'a self,
        _aws: &'a Aws,
        reads: &'a StatusReads<'a>,
        entries: Vec<&'a Entry>,
    ) -> LocalBoxFuture<'a, Result<Vec<Shown>>> {
        let rows = entries.into_iter().map(|entry| {
            let role = reads.inventory.roles.iter().find(|r| r.name == entry.id);
            let mut row = Shown::of(entry, None, role.map(|r| r.description.clone()).unwrap_or_default());
            row.id = role.map_or(row.id, |role| role.arn.clone());
            row
        });
        ready(Ok(rows.collect())).boxed_local()
    }
}
