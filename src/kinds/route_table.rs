//! The stack's route tables: their subnets disassociated, then deleted.

use futures_util::FutureExt;
use futures_util::future::{LocalBoxFuture, ready};

use super::stack_kind::count;
use super::{Entry, Inventory, Kind, Shown, StackKind, StatusReads};
use crate::aws::egress;
use crate::error::Result;
use crate::runtime::Aws;

/// The kind.
pub const KIND: Kind = Kind("route_table");

/// The stack's route tables.
pub struct RouteTables;

impl StackKind for RouteTables {
    fn kind(&self) -> Kind {
        KIND
    }

    fn deleted_after(&self) -> &'static [&'static str] {
        &["vpc_endpoint"]
    }

    fn list(&self, inventory: &Inventory) -> Vec<Entry> {
        inventory.route_tables.iter().map(|table| Entry::new(KIND, table.name.as_deref(), &table.id)).collect()
    }

    fn delete<'a>(
        &'a self,
        aws: &'a Aws,
        inventory: &'a Inventory,
        entry: &'a Entry,
        _report: &'a dyn Fn(&str),
    ) -> LocalBoxFuture<'a, Result<()>> {
        let table = inventory.route_tables.iter().find(|t| t.id == entry.id).expect("listed by the inventory");
        egress::delete_route_table(aws, table).boxed_local()
    }

    fn status<'a>(
        &'a self,
        _aws: &'a Aws,
        reads: &'a StatusReads<'a>,
        entries: Vec<&'a Entry>,
    ) -> LocalBoxFuture<'a, Result<Vec<Shown>>> {
        let rows = entries.into_iter().map(|entry| {
            let t = reads.inventory.route_tables.iter().find(|t| t.id == entry.id);
            let detail =
                t.map(|t| format!("{}, {}", count(t.routes.len(), "route"), count(t.associations.len(), "subnet")));
            Shown::of(entry, None, detail.unwrap_or_default())
        });
        ready(Ok(rows.collect())).boxed_local()
    }
}
