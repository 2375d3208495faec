//! The stack's ECS services (in its clusters or any other): scaled to 0, deleted and waited
//! for until INACTIVE, all together (each drain takes at least its target group's
//! deregistration delay).

use futures_util::FutureExt;
use futures_util::future::{LocalBoxFuture, ready};

use super::stack_kind::waiting;
use super::{Entry, Inventory, Kind, Shown, StackKind, StatusReads};
use crate::aws::ecs;
use crate::error::Result;
use crate::runtime::Aws;

/// The kind.
pub const KIND: Kind = Kind("service");

/// The stack's services.
pub struct Services;

impl StackKind for Services {
    fn kind(&self) -> Kind {
        KIND
    }

    fn deleted_after(&self) -> &'static [&'static str] {
        &["autoscaling"]
    }

    fn list(&self, inventory: &Inventory) -> Vec<Entry> {
        inventory.services.iter().map(|service| Entry::new(KIND, Some(&service.name), &service.arn)).collect()
    }

    fn deleted_together(&self) -> bool {
        true
    }

    fn delete<'a>(
        &'a self,
        aws: &'a Aws,
        inventory: &'a Inventory,
        entry: &'a Entry,
        report: &'a dyn Fn(&str),
    ) -> LocalBoxFuture<'a, Result<()>> {
        async move {
            let id = entry.id.as_str();
            let service = inventory.services.iter().find(|s| s.arn == id).expect("listed by the inventory");
            // A DRAINING service was deleted by an earlier run: only wait for it.
            if service.status == "ACTIVE" {
                ecs::delete_service(aws, &service.cluster_arn, id).await?;
            }
            let inactive = ecs::wait_service_inactive(aws, &service.cluster_arn, id);
            waiting(entry, "it is INACTIVE (its tasks stopped)", report, inactive).await
        }
        .boxed_local()
    }

    fn status<'a>(
        &'a self,
        _aws: &'a Aws,
        reads: &'a StatusReads<'a>,
        entries: Vec<&'a Entry>,
    ) -> LocalBoxFuture<'a, Result<Vec<Shown>>> {
        let rows = entries.into_iter().map(|entry| {
            let report = reads.reports.iter().map(|(_, r)| r).find(|r| r.arn == entry.id);
            let detail = report.map(|r| format!("{} running / {} desired", r.running, r.desired));
            Shown::of(entry, report.map(|r| &r.status), detail.unwrap_or_default())
        });
        ready(Ok(rows.collect())).boxed_local()
    }
}
