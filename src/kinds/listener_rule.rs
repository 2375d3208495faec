//! The stack's listener rules, named `<load balancer>:<port>#<priority>` ([`elbv2::rule_name`]).

use futures_util::FutureExt;
use futures_util::future::{LocalBoxFuture, ready};

use super::{Entry, Inventory, Kind, Shown, StackKind, StatusReads, listener};
use crate::aws::elbv2;
use crate::error::Result;
use crate::runtime::Aws;

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
        let rules = elb.rules.iter().map(|rule| {
            let name = elbv2::rule_name(&listener::name_of(elb, &rule.listener_arn), rule.priority);
            Entry::new(KIND, Some(&name), &rule.arn)
        });
        rules.collect()
    }

    fn delete<'a>(
        &'a self,
        aws: &'a Aws,
        _inventory: &'a Inventory,
        entry: &'a Entry,
        _report: &'a dyn Fn(&str),
    ) -> LocalBoxFuture<'a, Result<()>> {
        elbv2::delete_rule(aws, &entry.id).boxed_local()
    }

    fn status<'a>(
        &'a self,
        _aws: &'a Aws,
        reads: &'a StatusReads<'a>,
        entries: Vec<&'a Entry>,
    ) -> LocalBoxFuture<'a, Result<Vec<Shown>>> {
        let rows = entries.into_iter().map(|entry| {
            let r = reads.inventory.snapshot.elbv2.rules.iter().find(|r| r.arn == entry.id);
            Shown::of(entry, None, r.map(|r| r.summary()).unwrap_or_default())
        });
        ready(Ok(rows.collect())).boxed_local()
    }
}
