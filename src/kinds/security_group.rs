//! The stack's security groups: their references to each other revoked first, then deleted,
//! retried while AWS still releases the network interfaces that use them.

use futures_util::FutureExt;

use super::stack_kind::{count, retry_while};
use super::{Deleting, Entry, Inventory, Kind, Pending, Showing, Shown, StackKind, done};
use crate::aws::ec2::{self, SecurityGroup};
use crate::runtime::Aws;

/// The kind.
pub const KIND: Kind = Kind("security_group");

/// The stack's security groups.
pub struct SecurityGroups;

impl StackKind for SecurityGroups {
    fn kind(&self) -> Kind {
        KIND
    }

    fn deleted_after(&self) -> &'static [&'static str] {
        &["service", "load_balancer", "vpc_endpoint"]
    }

    fn list(&self, inventory: &Inventory) -> Vec<Entry> {
        inventory.security_groups.iter().map(|group| Entry::new(KIND, Some(&group.name), &group.id)).collect()
    }

    /// A group that another group's rule names cannot be deleted: the doomed groups' rules that
    /// name each other go first.
    fn before_deleting<'a>(
        &'a self,
        aws: &'a Aws,
        inventory: &'a Inventory,
        doomed: Vec<&'a Entry>,
    ) -> Pending<'a, ()> {
        let groups: Vec<SecurityGroup> =
            inventory.security_groups.iter().filter(|g| doomed.iter().any(|d| d.id == g.id)).cloned().collect();
        async move { ec2::revoke_group_references(aws, &groups).await }.boxed_local()
    }

    fn delete<'a>(&'a self, deleting: Deleting<'a>) -> Pending<'a, ()> {
        let Deleting { aws, entry, report, .. } = deleting;
        retry_while(aws.clock(), entry, report, "DependencyViolation", async || {
            ec2::delete_security_group(aws, &entry.id).await
        })
        .boxed_local()
    }

    fn status<'a>(&'a self, showing: Showing<'a>) -> Pending<'a, Vec<Shown>> {
        let Showing { reads, entries, .. } = showing;
        let rows = entries.into_iter().map(|entry| {
            let g = reads.inventory.security_groups.iter().find(|g| g.id == entry.id);
            Shown::of(entry, None, g.map(|g| count(g.ingress.len(), "ingress rule")).unwrap_or_default())
        });
        done(rows.collect())
    }
}
