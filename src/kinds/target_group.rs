//! The stack's target groups, with how many of their targets are healthy.

use futures_util::FutureExt;

use super::stack_kind::retry_while;
use super::{Deleting, Entry, Inventory, Kind, Pending, Showing, Shown, StackKind, done};
use crate::aws::elbv2;

/// The kind.
pub const KIND: Kind = Kind("target_group");

/// The stack's target groups.
pub struct TargetGroups;

impl StackKind for TargetGroups {
    fn kind(&self) -> Kind {
        KIND
    }

    fn deleted_after(&self) -> &'static [&'static str] {
        &["listener_rule", "listener", "load_balancer", "service"]
    }

    fn list(&self, inventory: &Inventory) -> Vec<Entry> {
        let groups = &inventory.snapshot.elbv2.target_groups;
        groups.iter().map(|tg| Entry::new(KIND, Some(&tg.name), &tg.arn)).collect()
    }

    // A target group stays in use for a moment after its load balancer is gone.
    fn delete<'a>(&'a self, deleting: Deleting<'a>) -> Pending<'a, ()> {
        let Deleting { aws, entry, report, .. } = deleting;
        retry_while(aws.clock(), entry, report, "ResourceInUse", async || {
            elbv2::delete_target_group(aws, &entry.id).await
        })
        .boxed_local()
    }

    fn status<'a>(&'a self, showing: Showing<'a>) -> Pending<'a, Vec<Shown>> {
        let Showing { reads, entries, .. } = showing;
        let rows = entries.into_iter().map(|entry| {
            let tg = reads.inventory.snapshot.elbv2.target_groups.iter().find(|tg| tg.arn == entry.id);
            let targets = reads.health.get(entry.id.as_str()).map(|(_, t)| t.as_slice()).unwrap_or_default();
            let healthy = targets.iter().filter(|t| t.state == "healthy").count();
            let detail = tg.map(|tg| {
                format!("{} {} ({}), {healthy}/{} targets healthy", tg.protocol, tg.port, tg.target_type, targets.len())
            });
            Shown::of(entry, None, detail.unwrap_or_default())
        });
        done(rows.collect())
    }
}
