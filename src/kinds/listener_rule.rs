//! The stack's listener rules, named `<load balancer>:<port>#<priority>` ([`elbv2::rule_name`]):
//! those tagged with the stack, not every rule on its listeners (another team's rule on a shared
//! load balancer is not the stack's to prune or destroy).

use futures_util::FutureExt;

use super::{Deleting, Entry, Inventory, Kind, Pending, Showing, Shown, StackKind, done, listener};
use crate::aws::elbv2;

/// The kind.
pub const KIND: Kind = Kind("listener_rule");

/// The stack's listener rules.
pub struct ListenerRules;

impl StackKind for ListenerRules {
    fn kind(&self) -> Kind {
        KIND
    }

    fn list(&self, inventory: &Inventory) -> Vec<Entry> {
        let elb = &inventory.snapshot.elbv2;
        let rules = elb.rules.iter().filter(|rule| inventory.owns(&rule.stack)).map(|rule| {
            let name = elbv2::rule_name(&listener::name_of(elb, &rule.listener_arn), rule.priority);
            Entry::new(KIND, Some(&name), &rule.arn)
        });
        rules.collect()
    }

    fn delete<'a>(&'a self, deleting: Deleting<'a>) -> Pending<'a, ()> {
        let Deleting { aws, entry, .. } = deleting;
        elbv2::delete_rule(aws, &entry.id).boxed_local()
    }

    fn status<'a>(&'a self, showing: Showing<'a>) -> Pending<'a, Vec<Shown>> {
        let Showing { reads, entries, .. } = showing;
        let rows = entries.into_iter().map(|entry| {
            let r = reads.inventory.snapshot.elbv2.rules.iter().find(|r| r.arn == entry.id);
            Shown::of(entry, None, r.map(|r| r.summary()).unwrap_or_default())
        });
        done(rows.collect())
    }
}
