//! The stack's ECS clusters, deleted once their services are gone.

use futures_util::FutureExt;
use futures_util::future::{LocalBoxFuture, ready};

use super::{Entry, Inventory, Kind, Shown, StackKind, StatusReads};
use crate::aws::ecs;
use crate::error::Result;
use crate::runtime::Aws;

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

    fn delete<'a>(
        &'a self,
        aws: &'a Aws,
        _inventory: &'a Inventory,
        entry: &'a Entry,
        _report: &'a dyn Fn(&str),
    ) -> LocalBoxFuture<'a, Result<()>> {
        ecs::delete_cluster(aws, &entry.id).boxed_local()
    }

    fn status<'a>(
        &'a self,
        _aws: &'a Aws,
        reads: &'a StatusReads<'a>,
        entries: Vec<&'a Entry>,
    ) -> LocalBoxFuture<'a, Result<Vec<Shown>>> {
        let rows = entries.into_iter().map(|entry| {
            let c = reads.inventory.snapshot.ecs.clusters.iter().find(|c| c.arn == entry.id);
            Shown::of(entry, c.map(|c| &c.status), c.map(|c| c.capacity_providers.join(", ")).unwrap_or_default())
        });
        ready(Ok(rows.collect())).boxed_local()
    }
}
