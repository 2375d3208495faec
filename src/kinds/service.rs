//! The stack's ECS services (in its clusters or any other): scaled to 0, deleted and waited
//! for until INACTIVE, all together (each drain takes at least its target group's
//! deregistration delay).

use futures_util::FutureExt;

use super::stack_kind::waiting;
use super::{Deleting, Entry, Inventory, Kind, Pending, Showing, Shown, StackKind, done};
use crate::aws::ecs;

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

    fn delete<'a>(&'a self, deleting: Deleting<'a>) -> Pending<'a, ()> {
        let Deleting { aws, inventory, entry, report } = deleting;
        async move {
            let id = entry.id.as_str();
            let service = inventory.services.iter().find(|s| s.arn == id).expect("listed by the inventory");
            // A DRAINING service was deleted by an earlier run: only wait for it.
            if service.status == "ACTIVE" {
                ecs::delete_service(aws, &service.cluster_arn, id).await?;
            }
            let inactive = async |r: &dyn Fn(&str)| ecs::wait_service_inactive(aws, &service.cluster_arn, id, r).await;
            waiting(entry, "it is INACTIVE (its tasks stopped)", report, inactive).await
        }
        .boxed_local()
    }

    fn status<'a>(&'a self, showing: Showing<'a>) -> Pending<'a, Vec<Shown>> {
        let Showing { reads, entries, .. } = showing;
        let rows = entries.into_iter().map(|entry| {
            let report = reads.reports.iter().map(|(_, r)| r).find(|r| r.arn == entry.id);
            let detail = report.map(|r| format!("{} running / {} desired", r.running, r.desired));
            Shown::of(entry, report.map(|r| &r.status), detail.unwrap_or_default())
        });
        done(rows.collect())
    }
}
