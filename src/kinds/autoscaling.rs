//! The scalable targets of the stack's services and their scaling policies, named
//! `<cluster>/<service>` ([`autoscaling::target_name`]); deleted before their services, so the
//! scaler does not act on a service being deleted.

use futures_util::FutureExt;

use super::{Deleting, Entry, Inventory, Kind, Pending, Showing, Shown, StackKind, done};
use crate::aws::autoscaling;

/// The kind.
pub const KIND: Kind = Kind("autoscaling");

/// The scalable targets of the stack's services.
pub struct ScalableTargets;

impl StackKind for ScalableTargets {
    fn kind(&self) -> Kind {
        KIND
    }

    fn list(&self, inventory: &Inventory) -> Vec<Entry> {
        let targets = inventory.services.iter().filter_map(|service| {
            let target = inventory
                .scalable_targets
                .iter()
                .find(|t| t.resource_id == autoscaling::resource_id(&service.cluster, &service.name))?;
            let name = autoscaling::target_name(&service.cluster, &service.name);
            Some(Entry::new(KIND, Some(&name), &target.resource_id))
        });
        targets.collect()
    }

    fn delete<'a>(&'a self, deleting: Deleting<'a>) -> Pending<'a, ()> {
        let Deleting { aws, inventory, entry, .. } = deleting;
        let target =
            inventory.scalable_targets.iter().find(|t| t.resource_id == entry.id).expect("listed by the inventory");
        autoscaling::delete_scalable_target(aws, target).boxed_local()
    }

    fn status<'a>(&'a self, showing: Showing<'a>) -> Pending<'a, Vec<Shown>> {
        let Showing { reads, entries, .. } = showing;
        let inventory = reads.inventory;
        let rows = entries.into_iter().map(|entry| {
            let t = inventory.scalable_targets.iter().find(|t| t.resource_id == entry.id);
            let service = inventory
                .services
                .iter()
                .find(|s| t.is_some_and(|t| t.resource_id == autoscaling::resource_id(&s.cluster, &s.name)));
            let desired = service.and_then(|s| reads.reports.iter().map(|(_, r)| r).find(|r| r.arn == s.arn));
            let detail = t.map(|t| {
                let policies = match t.policies.len() {
                    1 => "1 policy".to_string(),
                    n => format!("{n} policies"),
                };
                let now = desired.map(|r| format!(", now {} desired", r.desired)).unwrap_or_default();
                format!("{}-{} tasks{now}, {policies}", t.min, t.max)
            });
            Shown::of(entry, None, detail.unwrap_or_default())
        });
        done(rows.collect())
    }
}
