//! The elastic IPs of the stack's NAT gateways: declared with their NAT gateway, released after it.

use futures_util::FutureExt;

use super::{Deleting, Entry, Inventory, Kind, Pending, Showing, Shown, StackKind, done, nat_gateway};
use crate::aws::egress;

/// The kind.
pub const KIND: Kind = Kind("elastic_ip");

/// The elastic IPs of the stack's NAT gateways.
pub struct ElasticIps;

impl StackKind for ElasticIps {
    fn kind(&self) -> Kind {
        KIND
    }

    fn deleted_after(&self) -> &'static [&'static str] {
        &["nat_gateway"]
    }

    fn list(&self, inventory: &Inventory) -> Vec<Entry> {
        let egress = &inventory.snapshot.egress;
        let entries = egress.addresses.iter().map(|eip| {
            // Declared with the NAT gateway that uses it, else with the one it is named after (an
            // address allocated for a NAT gateway whose creation failed).
            let nat =
                egress.nat_gateways.iter().find(|n| inventory.owns(&n.stack) && n.allocation_id == eip.allocation_id);
            Entry::new(KIND, Some(&eip.name), &eip.allocation_id)
                .within(nat_gateway::KIND, nat.map_or(&eip.name, |n| &n.name).clone())
        });
        entries.collect()
    }

    fn delete<'a>(&'a self, deleting: Deleting<'a>) -> Pending<'a, ()> {
        let Deleting { aws, entry, .. } = deleting;
        egress::release_address(aws, &entry.id).boxed_local()
    }

    /// A NAT gateway created by this run takes an unattached elastic IP of the stack (one an
    /// earlier run allocated and then failed to use) before it allocates another.
    fn kept_by_run(&self, inventory: &Inventory, entry: &Entry, creates: &dyn Fn(Kind) -> bool) -> Option<String> {
        let unattached =
            inventory.snapshot.egress.addresses.iter().any(|a| a.allocation_id == entry.id && !a.associated);
        (creates(nat_gateway::KIND) && unattached)
            .then(|| "unattached, and a NAT gateway this run creates reuses it".to_string())
    }

    fn status<'a>(&'a self, showing: Showing<'a>) -> Pending<'a, Vec<Shown>> {
        let Showing { reads, entries, .. } = showing;
        let rows = entries.into_iter().map(|entry| {
            let a = reads.inventory.snapshot.egress.addresses.iter().find(|a| a.allocation_id == entry.id);
            let detail = a.map(|a| {
                let used = if a.associated { "in use" } else { "not associated" };
                format!("{}, {used}", a.public_ip)
            });
            Shown::of(entry, None, detail.unwrap_or_default())
        });
        done(rows.collect())
    }
}
