//! The stack's ACM certificates (their validation records are DNS records declared with them).

use futures_util::FutureExt;

use super::stack_kind::retry_while;
use super::{Deleting, Entry, Inventory, Kind, Pending, Showing, Shown, StackKind, done};
use crate::aws::acm;

/// The kind.
pub const KIND: Kind = Kind("certificate");

/// The stack's certificates.
pub struct Certificates;

impl StackKind for Certificates {
    fn kind(&self) -> Kind {
        KIND
    }

    fn deleted_after(&self) -> &'static [&'static str] {
        &["listener"]
    }

    fn list(&self, inventory: &Inventory) -> Vec<Entry> {
        inventory.certificates.iter().map(|cert| Entry::new(KIND, Some(&cert.domain), &cert.arn)).collect()
    }

    // ACM reports a certificate in use for a moment after its last listener is deleted.
    fn delete<'a>(&'a self, deleting: Deleting<'a>) -> Pending<'a, ()> {
        let Deleting { aws, entry, report, .. } = deleting;
        retry_while(aws.clock(), entry, report, "ResourceInUseException", async || {
            acm::delete_certificate(aws, &entry.id).await
        })
        .boxed_local()
    }

    fn status<'a>(&'a self, showing: Showing<'a>) -> Pending<'a, Vec<Shown>> {
        let Showing { reads, entries, .. } = showing;
        let rows = entries.into_iter().map(|entry| {
            let c = reads.inventory.certificates.iter().find(|c| c.arn == entry.id);
            let detail = c.map(|c| {
                let expiry =
                    c.not_after.as_deref().map(|t| format!("expires {t}")).unwrap_or_else(|| "not issued".into());
                let names = std::iter::once(&c.domain).chain(&c.alternative_names).cloned();
                format!("{}; {expiry}", names.collect::<Vec<_>>().join(", "))
            });
            Shown::of(entry, c.map(|c| &c.status), detail.unwrap_or_default())
        });
        done(rows.collect())
    }
}
