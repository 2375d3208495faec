//! The stack's task definition revisions (named by family; status shows each revision),
//! deregistered once no service runs them.

use futures_util::FutureExt;

use super::{Deleting, Entry, Inventory, Kind, Pending, Showing, Shown, StackKind};
use crate::aws::{ecs, queries};

/// The kind.
pub const KIND: Kind = Kind("task_definition");

/// The stack's task definition revisions.
pub struct TaskDefinitions;

impl StackKind for TaskDefinitions {
    fn kind(&self) -> Kind {
        KIND
    }

    fn deleted_after(&self) -> &'static [&'static str] {
        &["service"]
    }

    fn list(&self, inventory: &Inventory) -> Vec<Entry> {
        let revisions = inventory.revisions.iter();
        revisions.map(|(family, revision)| Entry::new(KIND, Some(family), revision)).collect()
    }

    fn delete<'a>(&'a self, deleting: Deleting<'a>) -> Pending<'a, ()> {
        let Deleting { aws, entry, .. } = deleting;
        ecs::deregister_task_definition(aws, &entry.id).boxed_local()
    }

    fn status<'a>(&'a self, showing: Showing<'a>) -> Pending<'a, Vec<Shown>> {
        let Showing { aws, entries, .. } = showing;
        async move {
            let revisions: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
            let tasks = queries::task_definitions(aws, &revisions).await?;
            let rows = entries.into_iter().map(|entry| {
                // Named by revision: a family has several.
                let t = tasks.get(&entry.id);
                let detail = t.map(|t| format!("cpu {} memory {}", t.spec.cpu, t.spec.memory));
                let mut row = Shown::of(entry, None, detail.unwrap_or_default());
                row.name = entry.id.clone();
                row.id = t.map_or(row.id, |t| t.arn.clone());
                row
            });
            Ok(rows.collect())
        }
        .boxed_local()
    }
}
