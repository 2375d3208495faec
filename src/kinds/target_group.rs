//! The stack's target groups, with how many of their targets are healthy.

use futures_util::FutureExt;
use futures_util::future::{LocalBoxFuture, ready};

use super::stack_kind::retry_while;
use super::{Entry, Inventory, Kind, Shown, StackKind, StatusReads};
use crate::aws::elbv2;
use crate::error::Result;
use crate::runtime::Aws;

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
    fn delete<'a>(
        &'a self,
        aws: &'a Aws,
        _inventory: &'a Inventory,
        entry: &'a Entry,
        report: &'a dyn Fn(&str),
    ) -> LocalBoxFuture<'a, Result<()>> {
        retry_while(entry, report, "ResourceInUse", async || elbv2::delete_target_group(aws, &entry.id).await)
            .boxed_local()
    }

    fn status<'a>(
        &'a self,
        _aws: &'a Aws,
        reads: &'a StatusReads<'a>,
        entries: Vec<&'a Entry>,
    ) -> LocalBoxFuture<'a, Result<Vec<Shown>>> {
        let rows = entries.into_iter().map(|entry| {
            let tg = reads.inventory.snapshot.elbv2.target_groups.iter().find(|tg| tg.arn == entry.id);
            let targets = reads.health.get(entry.id.as_str()).map(|(_, t)| t.as_slice()).unwrap_or_default();
            let healthy = targets.iter().filter(|t| t.state == "healthy").count();
            let detail = tg.map(|tg| {
                format!("{} {} ({}), {healthy}/{} targets healthy", tg.protocol, tg.port, tg.target_type, targets.len())
            });
            Shown::of(entry, None, detail.unwrap_or_default())
        });
        ready(Ok(rows.collect())).boxed_local()
    }
}
