//! The stack's Route 53 record sets, with their ownership markers (`_deckhand.<name>` TXT) and
//! its certificates' validation records. A record set is named `name TYPE` (the name as Route 53
//! compares it); a `dns_record` declaration of `name A+AAAA` declares `name A`, `name AAAA` and
//! the marker of its name (`name *`). Deleted first: a name stops pointing at what is about to go.

use futures_util::FutureExt;

use super::{Deleting, Entry, Inventory, Kind, Pending, Showing, Shown, StackKind, certificate, done};
use crate::aws::route53::{self, OwnedRecord};

/// The kind.
pub const KIND: Kind = Kind("dns_record");

/// The stack's record sets.
pub struct DnsRecords;

/// A record set as listed: `name TYPE`, the name as Route 53 compares it.
fn record_label(record: &OwnedRecord) -> String {
    format!("{} {}", route53::normalise(&record.set.name), record.set.rtype)
}

/// What identifies a record set among the stack's: zone, name and type.
fn record_id(record: &OwnedRecord) -> String {
    format!("{}/{}/{}", record.zone_id, record.set.name, record.set.rtype)
}

/// The name that declares the ownership marker of record sets named `name`: `name *`.
fn marker_declaration(name: &str) -> String {
    format!("{} *", route53::normalise(name))
}

impl StackKind for DnsRecords {
    fn kind(&self) -> Kind {
        KIND
    }

    fn list(&self, inventory: &Inventory) -> Vec<Entry> {
        let entries = inventory.records.iter().map(|record| {
            let set = &record.set;
            // A validation CNAME is declared with every certificate of the stack that needs it, so
            // it stays while any of them stays (a replaced certificate and its successor share it).
            let validates: Vec<&String> = inventory
                .certificates
                .iter()
                .filter(|c| {
                    set.rtype == "CNAME"
                        && c.validation.iter().any(|v| route53::normalise(&v.name) == route53::normalise(&set.name))
                })
                .map(|c| &c.domain)
                .collect();
            let entry = Entry::new(KIND, Some(&record_label(record)), &record_id(record));
            match (validates.is_empty(), set.name.strip_prefix("_deckhand.")) {
                (false, _) => {
                    validates.into_iter().fold(entry, |entry, domain| entry.within(certificate::KIND, domain.clone()))
                }
                (true, Some(named)) => {
                    let named = named.strip_prefix("_wildcard.").map_or(named.to_string(), |rest| format!("*.{rest}"));
                    entry.within(KIND, marker_declaration(&named))
                }
                (true, None) => entry,
            }
        });
        entries.collect()
    }

    fn delete<'a>(&'a self, deleting: Deleting<'a>) -> Pending<'a, ()> {
        let Deleting { aws, inventory, entry, .. } = deleting;
        let record = inventory.records.iter().find(|r| record_id(r) == entry.id).expect("listed by the inventory");
        route53::delete_record(aws, &inventory.stack, record).boxed_local()
    }

    /// `app.example.com A+AAAA` declares `app.example.com A`, `app.example.com AAAA` and the
    /// ownership marker of `app.example.com` (`app.example.com *`), as [`Self::list`] names them.
    fn declared_names(&self, name: &str) -> Vec<String> {
        let mut names = vec![name.to_string()];
        if let Some((name, types)) = name.rsplit_once(' ') {
            let normal = route53::normalise(name);
            names.extend(types.split('+').map(|rtype| format!("{normal} {rtype}")));
            names.push(marker_declaration(name));
        }
        names
    }

    fn status<'a>(&'a self, showing: Showing<'a>) -> Pending<'a, Vec<Shown>> {
        let Showing { reads, entries, .. } = showing;
        // Ownership markers are how deckhand knows a record is the stack's, not resources.
        let records = entries.into_iter().filter(|e| !e.name.starts_with("_deckhand."));
        let rows = records.map(|entry| {
            let r = reads.inventory.records.iter().find(|r| record_id(r) == entry.id);
            Shown::of(entry, None, r.map(|r| format!("{} (zone {})", r.set.data(), r.zone)).unwrap_or_default())
        });
        done(rows.collect())
    }
}
