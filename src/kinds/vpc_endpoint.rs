//! The stack's VPC endpoints, with their state.

use futures_util::FutureExt;

use super::{Deleting, Entry, Inventory, Kind, Pending, Showing, Shown, StackKind};
use crate::aws::{egress, queries};

/// The kind.
pub const KIND: Kind = Kind("vpc_endpoint");

/// The stack's VPC endpoints.
pub struct VpcEndpoints;

impl StackKind for VpcEndpoints {
    fn kind(&self) -> Kind {
        KIND
    }

    fn list(&self, inventory: &Inventory) -> Vec<Entry> {
        let endpoints = inventory.snapshot.egress.endpoints.iter().filter(|e| inventory.owns(&e.stack));
        endpoints.map(|endpoint| Entry::new(KIND, endpoint.name.as_deref(), &endpoint.id)).collect()
    }

    fn delete<'a>(&'a self, deleting: Deleting<'a>) -> Pending<'a, ()> {
        let Deleting { aws, entry, .. } = deleting;
        egress::delete_endpoint(aws, &entry.id).boxed_local()
    }

    fn status<'a>(&'a self, showing: Showing<'a>) -> Pending<'a, Vec<Shown>> {
        let Showing { aws, reads, entries } = showing;
        async move {
            let ids: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
            let states = queries::endpoint_states(aws, &ids).await?;
            let rows = entries.into_iter().map(|entry| {
                let e = reads.inventory.snapshot.egress.endpoints.iter().find(|e| e.id == entry.id);
                Shown::of(entry, states.get(&entry.id), e.map(|e| e.is.service.clone()).unwrap_or_default())
            });
            Ok(rows.collect())
        }
        .boxed_local()
    }
}
