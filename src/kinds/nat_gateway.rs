//! The stack's NAT gateways, with their state; deleting one waits until it is deleted (which
//! frees its elastic IP).

use futures_util::FutureExt;

use super::stack_kind::waiting;
use super::{Deleting, Entry, Inventory, Kind, Pending, Showing, Shown, StackKind};
use crate::aws::{egress, queries};

/// The kind.
pub const KIND: Kind = Kind("nat_gateway");

/// The stack's NAT gateways.
pub struct NatGateways;

impl StackKind for NatGateways {
    fn kind(&self) -> Kind {
        KIND
    }

    fn list(&self, inventory: &Inventory) -> Vec<Entry> {
        let nats = inventory.snapshot.egress.nat_gateways.iter().filter(|n| inventory.owns(&n.stack));
        nats.map(|nat| Entry::new(KIND, Some(&nat.name), &nat.id)).collect()
    }

    fn delete<'a>(&'a self, deleting: Deleting<'a>) -> Pending<'a, ()> {
        let Deleting { aws, entry, report, .. } = deleting;
        let deleted = async |r: &dyn Fn(&str)| egress::delete_nat_gateway(aws, &entry.id, r).await;
        waiting(entry, "it is deleted", report, deleted).boxed_local()
    }

    fn status<'a>(&'a self, showing: Showing<'a>) -> Pending<'a, Vec<Shown>> {
        let Showing { aws, reads, entries } = showing;
        async move {
            let ids: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
            let states = queries::nat_gateway_states(aws, &ids).await?;
            let rows = entries.into_iter().map(|entry| {
                let n = reads.inventory.snapshot.egress.nat_gateways.iter().find(|n| n.id == entry.id);
                Shown::of(
                    entry,
                    states.get(&entry.id),
                    n.map(|n| format!("public IP {}", n.public_ip)).unwrap_or_default(),
                )
            });
            Ok(rows.collect())
        }
        .boxed_local()
    }
}
