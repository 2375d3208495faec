//! The stack's ECS clusters, deleted once their services are gone.

use futures_util::FutureExt;

use super::{Deleting, Entry, Inventory, Kind, Pending, Showing, Shown, StackKind, done};
use crate::aws::ecs;

/// The kind.
pub const KIND: Kind = Kind("cluster");

/// The stack's clusters.
pub struct Clusters;

impl StackKind for Clusters {
    fn kind(&self) -> Kind {
        KIND
    }

    fn deleted_after(&self) -> &'static [&'static str] {
        &["service"]
    }

    fn list(&self, inventory: &Inventory) -> Vec<Entry> {
        let clusters =
            inventory.snapshot.ecs.clusters.iter().filter(|c| inventory.owns(&c.stack) && c.status != "INACTIVE");
        clusters.map(|cluster| Entry::new(KIND, Some(&cluster.name), &cluster.arn)).collect()
    }

    fn delete<'a>(&'a self, deleting: Deleting<'a>) -> Pending<'a, ()> {
        let Deleting { aws, entry, .. } = deleting;
        ecs::delete_cluster(aws, &entry.id).boxed_local()
    }

    fn status<'a>(&'a self, showing: Showing<'a>) -> Pending<'a, Vec<Shown>> {
        let Showing { reads, entries, .. } = showing;
        let rows = entries.into_iter().map(|entry| {
            let c = reads.inventory.snapshot.ecs.clusters.iter().find(|c| c.arn == entry.id);
            Shown::of(entry, c.map(|c| &c.status), c.map(|c| c.capacity_providers.join(", ")).unwrap_or_default())
        });
        done(rows.collect())
    }
}
