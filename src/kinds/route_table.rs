//! The stack's route tables: their subnets disassociated, then deleted.

use futures_util::FutureExt;

use super::stack_kind::count;
use super::{Deleting, Entry, Inventory, Kind, Pending, Showing, Shown, StackKind, done};
use crate::aws::egress;

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

    fn delete<'a>(&'a self, deleting: Deleting<'a>) -> Pending<'a, ()> {
        let Deleting { aws, inventory, entry, .. } = deleting;
        let table = inventory.route_tables.iter().find(|t| t.id == entry.id).expect("listed by the inventory");
        egress::delete_route_table(aws, table).boxed_local()
    }

    fn status<'a>(&'a self, showing: Showing<'a>) -> Pending<'a, Vec<Shown>> {
        let Showing { reads, entries, .. } = showing;
        let rows = entries.into_iter().map(|entry| {
            let t = reads.inventory.route_tables.iter().find(|t| t.id == entry.id);
            let detail =
                t.map(|t| format!("{}, {}", count(t.routes.len(), "route"), count(t.associations.len(), "subnet")));
            Shown::of(entry, None, detail.unwrap_or_default())
        });
        done(rows.collect())
    }
}
