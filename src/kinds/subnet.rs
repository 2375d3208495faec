//! The stack's subnets: deleted last of the network, retried while AWS still releases the
//! network interfaces in them.

use futures_util::FutureExt;

use super::stack_kind::retry_while;
use super::{Deleting, Entry, Inventory, Kind, Pending, Showing, Shown, StackKind, done};
use crate::aws::ec2;

/// The kind.
pub const KIND: Kind = Kind("subnet");

/// The stack's subnets.
pub struct Subnets;

impl StackKind for Subnets {
    fn kind(&self) -> Kind {
        KIND
    }

    fn deleted_after(&self) -> &'static [&'static str] {
        &["service", "load_balancer", "nat_gateway", "vpc_endpoint", "route_table"]
    }

    fn list(&self, inventory: &Inventory) -> Vec<Entry> {
        let subnets = inventory.snapshot.ec2.subnets.iter().filter(|s| inventory.owns(&s.stack));
        subnets.map(|subnet| Entry::new(KIND, subnet.name.as_deref(), &subnet.id)).collect()
    }

    fn delete<'a>(&'a self, deleting: Deleting<'a>) -> Pending<'a, ()> {
        let Deleting { aws, entry, report, .. } = deleting;
        retry_while(aws.clock(), entry, report, "DependencyViolation", async || {
            ec2::delete_subnet(aws, &entry.id).await
        })
        .boxed_local()
    }

    fn status<'a>(&'a self, showing: Showing<'a>) -> Pending<'a, Vec<Shown>> {
        let Showing { reads, entries, .. } = showing;
        let rows = entries.into_iter().map(|entry| {
            let s = reads.inventory.snapshot.ec2.subnets.iter().find(|s| s.id == entry.id);
            Shown::of(entry, None, s.map(|s| format!("{} {}", s.az, s.cidr)).unwrap_or_default())
        });
        done(rows.collect())
    }
}
