//! Script functions for domains: `hosted_zone`, `certificate`, `dns_record`.

use std::rc::Rc;

use rhai::{Dynamic, Engine, EvalAltResult, Map};

use crate::aws::Pass;
use crate::aws::acm::{Certificate, CertificateSpec};
use crate::aws::route53::{self, Alias, DnsRecord, DnsRecordSpec, HostedZone, PLAIN_TYPES, RecordData};
use crate::bindings::keep_of;
use crate::bindings::{Fields, as_array, as_string, function, handle, handle_field, show, string_array};
use crate::converge::converge;
use crate::converge::converge_kept;
use crate::error::{Error, Result};

type Rhai<T> = std::result::Result<T, Box<EvalAltResult>>;

pub(super) fn register(engine: &mut Engine, pass: &Rc<Pass>) {
    let p = pass.clone();
    function(
        "hosted_zone",
        &["name: &str", "Map"],
        "Looks up a public Route 53 hosted zone by name (never creates one; a missing zone is an error\n\
         that lists the account's zones).\n\
         Returns #{ kind: \"hosted_zone\", id, name }.\nExample: `let zone = hosted_zone(\"example.com\");`",
    )
    .register_into_engine(engine, move |name: &str| -> Rhai<Map> { Ok(zone_handle(&route53::lookup_zone(&p, name)?)) });

    let p = pass.clone();
    function(
        "certificate",
        &["spec: Map", "Map"],
        "Ensures an ACM certificate validated by DNS: #{ domain, alternative_names, zone }.\n\
         `keep: true` marks it (tag deckhand:keep): a run whose script no longer declares it keeps it.\n\
         `zone` (a hosted_zone() handle or the zone's name) must hold every name; `*` only as a whole first label;\n\
         at most 10 names. deckhand writes the validation CNAMEs into the zone; ACM issues the certificate about a\n\
         minute later (up to 30 minutes), while the script goes on: an HTTPS listener serving it waits until it is\n\
         ISSUED (else the end of the run does). Declare it early so that the wait overlaps the rest. The stack's certificate with exactly these names is reused; other names\n\
         request a new one (the old one stays until `deckhand destroy`).\n\
         Returns #{ kind: \"certificate\", arn, domain, alternative_names, status, not_after }.\n\
         Example: `let cert = certificate(#{ domain: \"app.example.com\", zone: \"example.com\" });`",
    )
    .register_into_engine(engine, move |spec: Map| -> Rhai<Map> {
        let (keep, spec) = keep_of("certificate", spec)?;
        let f = Fields::new("certificate", spec, &["domain", "alternative_names", "zone"])?;
        let domain =
            route53::normalise(&f.req_str("domain", "the certificate's domain name, e.g. \"app.example.com\"")?);
        route53::validate_name("certificate.domain", &domain, true)?;
        let alternative_names = match f.raw("alternative_names") {
            Some(names) => as_array(&f.name("alternative_names"), names)?
                .iter()
                .map(|n| as_string(&f.name("alternative_names"), n).map(|n| route53::normalise(&n)))
                .collect::<Result<Vec<_>>>()?,
            None => Vec::new(),
        };
        let zone = f.raw("zone").ok_or_else(|| Error::MissingKey {
            key: "zone".into(),
            context: "certificate()".into(),
            what: "the hosted zone that validates the names: a hosted_zone() handle or its name".into(),
        })?;
        // Names are checked against the zone's name before the zone is looked up.
        let zone = zone_of(&p, "certificate.zone", zone, Some(&domain))?;
        let spec = CertificateSpec { domain, alternative_names, zone };
        Ok(certificate_handle(&converge_kept::<Certificate>(&p, &spec, keep)?))
    });

    let p = pass.clone();
    function(
        "dns_record",
        &["zone: Dynamic", "spec: Map", "Map"],
        "Ensures DNS records in a hosted zone (a hosted_zone() handle or its name):\n\
         #{ name, alias } with `alias` a load_balancer() handle makes A and AAAA alias records to it;\n\
         #{ name, type, values, ttl } makes one plain record set (type A, AAAA, CNAME, TXT, MX, CAA or SRV; ttl default 300).\n\
         Records are UPSERTed only when different. Route 53 records cannot be tagged: deckhand marks the ones it\n\
         owns with a TXT record `_deckhand.<name>` = \"deckhand:stack=<stack> type=<TYPE>\" and refuses to overwrite\n\
         a record that marker does not give to the stack.\n\
         Returns #{ kind: \"dns_record\", name, zone, types }.\n\
         Example: `dns_record(zone, #{ name: \"app.example.com\", alias: alb });`",
    )
    .register_into_engine(engine, move |zone: Dynamic, spec: Map| -> Rhai<Map> {
        let f = Fields::new("dns_record", spec, &["name", "alias", "type", "values", "ttl"])?;
        let name = route53::normalise(&f.req_str("name", "the record's name, e.g. \"app.example.com\"")?);
        route53::validate_name("dns_record.name", &name, true)?;
        let zone = zone_of(&p, "dns_record.zone", &zone, Some(&name))?;
        let data = record_data(&f)?;
        let spec = DnsRecordSpec { zone, name, data };
        Ok(record_handle(&converge::<DnsRecord>(&p, &spec)?))
    });
}

/// The zone a script names: a `hosted_zone` handle, or a name looked up. `inside`, when given, is
/// checked to lie in the zone first, so a misplaced name fails before any call.
fn zone_of(pass: &Pass, key: &str, value: &Dynamic, inside: Option<&str>) -> Result<HostedZone> {
    let (name, id) = match value.read_lock::<Map>() {
        Some(map) => {
            if map.get("kind").map(ToString::to_string).as_deref() != Some("hosted_zone") {
                return Err(Error::invalid(
                    key,
                    show(value),
                    "a hosted_zone() handle or a zone name like \"example.com\"",
                ));
            }
            let field = |f: &str| map.get(f).map(ToString::to_string).unwrap_or_default();
            (route53::normalise(&field("name")), Some(field("id")))
        }
        None => (route53::normalise(&as_string(key, value)?), None),
    };
    route53::validate_name(key, &name, false)?;
    if let Some(inside) = inside {
        let named = if key.starts_with("certificate") { "certificate.domain" } else { "dns_record.name" };
        route53::check_in_zone(named, inside, &name)?;
    }
    match id {
        Some(id) => Ok(HostedZone { id, name }),
        None => route53::lookup_zone(pass, &name),
    }
}

fn record_data(f: &Fields) -> Result<RecordData> {
    let plain = ["type", "values", "ttl"].iter().any(|k| f.raw(k).is_some());
    match (f.raw("alias"), plain) {
        (Some(_), true) => Err(Error::invalid(
            "dns_record.alias",
            "given together with type/values/ttl",
            "either `alias` (a load balancer) or `type` and `values`, not both",
        )),
        (Some(target), false) => {
            let kind = handle_field(target, "kind").map(|k| k.to_string());
            let dns_name = handle_field(target, "dns_name").map(|d| d.to_string());
            let zone_id = handle_field(target, "canonical_hosted_zone_id").map(|d| d.to_string());
            match (kind.as_deref(), dns_name, zone_id) {
                (Some("load_balancer"), Some(dns_name), Some(hosted_zone_id)) => Ok(RecordData::Alias(Alias {
                    dns_name: if crate::plan::is_known(&dns_name) { route53::normalise(&dns_name) } else { dns_name },
                    hosted_zone_id,
                })),
                _ => Err(Error::invalid(f.name("alias"), show(target), "a load_balancer() handle")),
            }
        }
        (None, _) => {
            let rtype = f
                .req_str("type", "`alias: <load balancer>`, or `type` and `values` for a plain record")?
                .to_ascii_uppercase();
            if !PLAIN_TYPES.contains(&rtype.as_str()) {
                return Err(Error::invalid(
                    f.name("type"),
                    format!("{rtype:?}"),
                    format!("one of {}", PLAIN_TYPES.join(", ")),
                ));
            }
            let values = match f.raw("values") {
                Some(v) => as_array(&f.name("values"), v)?
                    .iter()
                    .map(|x| as_string(&f.name("values"), x))
                    .collect::<Result<Vec<_>>>()?,
                None => Vec::new(),
            };
            if values.is_empty() {
                return Err(Error::MissingKey {
                    key: "values".into(),
                    context: "dns_record()".into(),
                    what: "the record's values, e.g. [\"192.0.2.1\"]".into(),
                });
            }
            // Route 53 takes TXT values quoted.
            let values = if rtype == "TXT" {
                values.into_iter().map(|v| if v.starts_with('"') { v } else { format!("{v:?}") }).collect()
            } else {
                values
            };
            let ttl = f.int("ttl")?.unwrap_or(300);
            if !(0..=2_147_483_647).contains(&ttl) {
                return Err(Error::invalid(f.name("ttl"), ttl, "0 to 2147483647 seconds"));
            }
            Ok(RecordData::Plain { rtype, values, ttl })
        }
    }
}

fn zone_handle(zone: &HostedZone) -> Map {
    handle("hosted_zone", [("id", zone.id.clone().into()), ("name", zone.name.clone().into())])
}

pub(super) fn certificate_handle(cert: &Certificate) -> Map {
    handle(
        "certificate",
        [
            ("arn", cert.arn.clone().into()),
            ("domain", cert.domain.clone().into()),
            ("alternative_names", string_array(&cert.alternative_names)),
            ("status", cert.status.clone().into()),
            ("not_after", cert.not_after.clone().map(Dynamic::from).unwrap_or(Dynamic::UNIT)),
        ],
    )
}

fn record_handle(record: &DnsRecord) -> Map {
    let types: Vec<String> = record.sets.iter().map(|s| s.rtype.clone()).collect();
    handle(
        "dns_record",
        [("name", record.name.clone().into()), ("zone", record.zone.clone().into()), ("types", string_array(&types))],
    )
}
