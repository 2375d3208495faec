//! The stack's load balancers, with their state; deleting one waits until it is gone (which
//! releases its network interfaces).

use futures_util::FutureExt;

use super::stack_kind::waiting;
use super::{Deleting, Entry, Inventory, Kind, Pending, Showing, Shown, StackKind};
use crate::aws::{elbv2, queries};

/// The kind.
pub const KIND: Kind = Kind("load_balancer");

/// The stack's load balancers.
pub struct LoadBalancers;

impl StackKind for LoadBalancers {
    fn kind(&self) -> Kind {
        KIND
    }

    /// After its listeners, and after the DNS names that point at it stop doing so.
    fn deleted_after(&self) -> &'static [&'static str] {
        &["listener", "dns_record"]
    }

    fn list(&self, inventory: &Inventory) -> Vec<Entry> {
        let balancers = &inventory.snapshot.elbv2.load_balancers;
        balancers.iter().map(|lb| Entry::new(KIND, Some(&lb.name), &lb.arn)).collect()
    }

    fn delete<'a>(&'a self, deleting: Deleting<'a>) -> Pending<'a, ()> {
        let Deleting { aws, entry, report, .. } = deleting;
        async move {
            let id = entry.id.as_str();
            elbv2::delete_load_balancer(aws, id).await?;
            let gone = async |r: &dyn Fn(&str)| elbv2::wait_load_balancer_deleted(aws, id, r).await;
            waiting(entry, "it is gone", report, gone).await
        }
        .boxed_local()
    }

    fn status<'a>(&'a self, showing: Showing<'a>) -> Pending<'a, Vec<Shown>> {
        let Showing { aws, reads, entries } = showing;
        async move {
            let arns: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
            let states = queries::load_balancer_states(aws, &arns).await?;
            let rows = entries.into_iter().map(|entry| {
                let lb = reads.inventory.snapshot.elbv2.load_balancers.iter().find(|lb| lb.arn == entry.id);
                Shown::of(entry, states.get(&entry.id), lb.map(|lb| lb.dns_name.clone()).unwrap_or_default())
            });
            Ok(rows.collect())
        }
        .boxed_local()
    }
}
