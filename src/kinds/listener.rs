//! The stack's listeners, named `<load balancer>:<port>`.

use futures_util::FutureExt;

use super::{Deleting, Entry, Inventory, Kind, Pending, Showing, Shown, StackKind, done};
use crate::aws::elbv2::{self, Elbv2State};

/// The kind.
pub const KIND: Kind = Kind("listener");

/// The stack's listeners.
pub struct Listeners;

/// The name of the listener with this ARN among the stack's ([`elbv2::listener_name`]).
pub fn name_of(elb: &Elbv2State, arn: &str) -> String {
    let listener = elb.listeners.iter().find(|l| l.arn == arn);
    let lb = listener.and_then(|l| elb.load_balancers.iter().find(|lb| lb.arn == l.load_balancer_arn));
    elbv2::listener_name(lb.map_or("-", |lb| lb.name.as_str()), listener.map_or(0, |l| l.port))
}

impl StackKind for Listeners {
    fn kind(&self) -> Kind {
        KIND
    }

    fn deleted_after(&self) -> &'static [&'static str] {
        &["listener_rule"]
    }

    fn list(&self, inventory: &Inventory) -> Vec<Entry> {
        let elb = &inventory.snapshot.elbv2;
        elb.listeners.iter().map(|l| Entry::new(KIND, Some(&name_of(elb, &l.arn)), &l.arn)).collect()
    }

    fn delete<'a>(&'a self, deleting: Deleting<'a>) -> Pending<'a, ()> {
        let Deleting { aws, entry, .. } = deleting;
        elbv2::delete_listener(aws, &entry.id).boxed_local()
    }

    fn status<'a>(&'a self, showing: Showing<'a>) -> Pending<'a, Vec<Shown>> {
        let Showing { reads, entries, .. } = showing;
        let rows = entries.into_iter().map(|entry| {
            let l = reads.inventory.snapshot.elbv2.listeners.iter().find(|l| l.arn == entry.id);
            Shown::of(entry, None, l.map(|l| format!("{} {}", l.protocol, l.action)).unwrap_or_default())
        });
        done(rows.collect())
    }
}
