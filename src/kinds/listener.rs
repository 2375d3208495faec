//! The stack's listeners, named `<load balancer>:<port>`. ELBv2 deletes a listener's rules with
//! it ("When you delete a listener, all its rules are deleted", ALB User Guide, "Delete a listener
//! rule"; and a load balancer's listeners with it, DeleteListener API reference), so a listener
//! that carries a rule that is not the stack's (another team's on a shared load balancer) is not
//! deleted: destroy and run refuse, naming the rule, before deleting anything, as deckhand refuses
//! a repository that holds images or a role in an instance profile. Keeping the listener instead
//! would keep its load balancer, target groups and security groups in use, and the destroy would
//! fail late, halfway through.

use futures_util::FutureExt;

use super::{Deleting, Entry, Inventory, Kind, Pending, Showing, Shown, StackKind, done};
use crate::aws::elbv2::{self, Elbv2State};
use crate::tagged::STACK_TAG;

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

    /// The rules on it that are not the stack's: DeleteListener would delete them too.
    fn deletes_with_it(&self, inventory: &Inventory, entry: &Entry) -> Option<String> {
        let elb = &inventory.snapshot.elbv2;
        let foreign: Vec<String> = elb
            .rules
            .iter()
            .filter(|r| r.listener_arn == entry.id && !inventory.owns(&r.stack))
            .map(|r| {
                let owner = r.stack.as_ref().map_or_else(|| format!("no {STACK_TAG} tag"), |s| format!("stack {s}'s"));
                format!("priority {} ({owner}, {})", r.priority, crate::arn::short_id(&r.arn))
            })
            .collect();
        match foreign.len() {
            0 => None,
            n => Some(format!(
                "ELBv2 deletes a listener's rules with it, and it carries {} not of stack {}: {}",
                if n == 1 { "a rule".to_string() } else { format!("{n} rules") },
                inventory.stack,
                foreign.join("; ")
            )),
        }
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
