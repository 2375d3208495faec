//! Route 53: public hosted zones (looked up, never created), their record sets, and how a
//! `dns_record` converges.
//!
//! Route 53 records cannot be tagged. A record set is known to be a stack's by an ownership
//! marker beside it, the way external-dns's TXT registry does it: a TXT record set at
//! `_deckhand.<name>` (for `*.<rest>`: `_deckhand._wildcard.<rest>`) holding one string
//! `"deckhand:stack=<stack> type=<TYPE>"` per record type the stack owns at that name. deckhand
//! creates and updates only record sets its marker names for the stack, refuses any other, and
//! `destroy` deletes exactly the types the marker lists, then the marker.

use std::collections::{HashMap, HashSet};

use futures_util::future::LocalBoxFuture;

use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};

use crate::aws::Pass;
use crate::aws::Snapshot;
use crate::converge::{Created, Drift, Resource};
use crate::error::{Error, Result, aws_error, sent};
use crate::plan::{FieldDiff, UNKNOWN, is_known};
use crate::runtime::Aws;

/// A public hosted zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostedZone {
    /// Its id without the `/hostedzone/` prefix, or [`UNKNOWN`] in check mode.
    pub id: String,
    /// Its domain, lower case, without the trailing dot, e.g. `example.com`.
    pub name: String,
}

/// An alias target: another AWS resource's DNS name and the hosted zone that name lives in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    /// The target's DNS name (normalised: lower case, no trailing dot).
    pub dns_name: String,
    /// The target's canonical hosted zone id (e.g. an ALB's).
    pub hosted_zone_id: String,
}

/// One record set of a zone (normalised names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSet {
    /// Its name, lower case, without the trailing dot (`*` for a wildcard).
    pub name: String,
    /// `A`, `AAAA`, `CNAME`, `TXT`, ...
    pub rtype: String,
    /// Its TTL (none for aliases).
    pub ttl: Option<i64>,
    /// Its values (empty for aliases).
    pub values: Vec<String>,
    /// Its alias target.
    pub alias: Option<Alias>,
}

impl RecordSet {
    /// The record's data as shown in plans and status.
    pub fn data(&self) -> String {
        match &self.alias {
            Some(alias) => format!("alias {}", alias.dns_name),
            None => format!("{} (ttl {})", self.values.join(" "), self.ttl.unwrap_or_default()),
        }
    }

    fn same_data(&self, other: &RecordSet) -> bool {
        self.alias == other.alias && self.ttl == other.ttl && sorted(&self.values) == sorted(&other.values)
    }
}

fn sorted(values: &[String]) -> Vec<String> {
    let mut values = values.to_vec();
    values.sort();
    values
}

/// The Route 53 part of a run's snapshot, read on demand: zones by name, record sets by zone id.
#[derive(Debug, Default, Clone)]
pub struct Route53State {
    /// Public hosted zones by name.
    pub zones: HashMap<String, HostedZone>,
    /// Every record set of a zone, by zone id.
    pub records: HashMap<String, Vec<RecordSet>>,
    /// The names (zone id, name) whose ownership marker a `dns_record` create sent ahead of the
    /// script is writing now: a second create at one of them waits for its statement, as each
    /// writes the whole marker, with the entries it knows of (its read, not the other's write).
    pub writing: HashSet<(String, String)>,
}

/// A DNS name as Route 53 compares it: lower case, no trailing dot, `\052` read as `*`.
pub fn normalise(name: &str) -> String {
    name.trim_end_matches('.').replace("\\052", "*").to_ascii_lowercase()
}

/// Checks a DNS name: labels of letters, digits and hyphens (1-63 characters, no hyphen at either
/// end; `_` allowed for service labels), at least two labels, at most 253 characters; a `*` only
/// as the whole leftmost label when `wildcard` allows it.
pub fn validate_name(key: &str, name: &str, wildcard: bool) -> Result<()> {
    let allowed = if wildcard {
        "a domain name like \"app.example.com\" (a `*` only as the whole first label, e.g. \"*.example.com\")"
    } else {
        "a domain name like \"app.example.com\""
    };
    let bad = || Error::invalid(key, format!("{name:?}"), allowed);
    let labels: Vec<&str> = name.split('.').collect();
    if name.is_empty() || name.len() > 253 || labels.len() < 2 {
        return Err(bad());
    }
    for (i, label) in labels.iter().enumerate() {
        if *label == "*" && i == 0 && wildcard && labels.len() > 2 {
            continue;
        }
        let ok = !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(bad());
        }
    }
    Ok(())
}

/// Checks that `name` lies inside `zone` (is the zone's apex or below it).
pub fn check_in_zone(key: &str, name: &str, zone: &str) -> Result<()> {
    if name == zone || name.ends_with(&format!(".{zone}")) {
        Ok(())
    } else {
        Err(Error::invalid(
            key,
            format!("{name:?}"),
            format!("a name inside the hosted zone {zone} (e.g. \"app.{zone}\")"),
        ))
    }
}

// Zones

/// The public hosted zone named `name`; `None` when the account has none (ListHostedZonesByName).
pub async fn find_zone(aws: &Aws, name: &str) -> Result<Option<HostedZone>> {
    let out = aws
        .route53
        .list_hosted_zones_by_name()
        .dns_name(name)
        .send()
        .await
        .map_err(|e| aws_error("ListHostedZonesByName", e))?;
    let public: Vec<HostedZone> = out
        .hosted_zones()
        .iter()
        .filter(|z| normalise(z.name()) == name && !z.config().is_some_and(|c| c.private_zone()))
        .map(|z| HostedZone { id: zone_id(z.id()), name: name.to_string() })
        .collect();
    match public.as_slice() {
        [] => Ok(None),
        [zone] => Ok(Some(zone.clone())),
        _ => Err(Error::conflict(
            format!("the account has {} public hosted zones named {name}", public.len()),
            Some("delete the unused one (deckhand cannot tell which one the domain's registrar points at)"),
        )),
    }
}

/// Every hosted zone of the account, public and private (ListHostedZones).
pub async fn list_zones(aws: &Aws) -> Result<Vec<(HostedZone, bool)>> {
    let mut pages = aws.route53.list_hosted_zones().into_paginator().items().send();
    let mut zones = Vec::new();
    while let Some(zone) = pages.next().await {
        let zone = zone.map_err(|e| aws_error("ListHostedZones", e))?;
        let private = zone.config().is_some_and(|c| c.private_zone());
        zones.push((HostedZone { id: zone_id(zone.id()), name: normalise(zone.name()) }, private));
    }
    Ok(zones)
}

fn zone_id(id: &str) -> String {
    id.trim_start_matches("/hostedzone/").to_string()
}

/// The public hosted zone `name`, from the run's cache or read once; in check mode a zone with an
/// unknown id. A missing zone is an error that lists the account's zones: deckhand never creates
/// zones (a zone only serves once the domain's registrar delegates to it).
pub fn lookup_zone(pass: &Pass, name: &str) -> Result<HostedZone> {
    let name = normalise(name);
    validate_name("hosted_zone.name", &name, false)?;
    if pass.aws().is_none() {
        return Ok(HostedZone { id: UNKNOWN.into(), name });
    }
    if let Some(zone) = pass.snapshot()?.borrow().route53.zones.get(&name) {
        return Ok(zone.clone());
    }
    let found = pass.read(async |aws| find_zone(aws, &name).await).expect("AWS checked above")?;
    let Some(zone) = found else {
        let zones = pass.read(async |aws| list_zones(aws).await).expect("AWS checked above")?;
        let public: Vec<&str> = zones.iter().filter(|(_, private)| !private).map(|(z, _)| z.name.as_str()).collect();
        let have = if public.is_empty() { "none".to_string() } else { public.join(", ") };
        return Err(Error::conflict(
            format!("no public Route 53 hosted zone named {name} in this account (its public zones: {have})"),
            Some("create the zone in Route 53 and delegate the domain to it; deckhand never creates hosted zones"),
        ));
    };
    pass.remember_read(|s| {
        s.route53.zones.insert(zone.name.clone(), zone.clone());
    })?;
    Ok(zone)
}

// Records

/// Every record set of a zone (ListResourceRecordSets, 300 a page). A page's continuation is three
/// fields (NextRecordName, NextRecordType, NextRecordIdentifier) and the SDK has no paginator for
/// this operation, so the pages are followed here.
pub async fn list_records(aws: &Aws, zone_id: &str) -> Result<Vec<RecordSet>> {
    let mut sets = Vec::new();
    let mut next: Option<(String, RrType, Option<String>)> = None;
    loop {
        let mut request = aws.route53.list_resource_record_sets().hosted_zone_id(zone_id);
        if let Some((name, rtype, identifier)) = next.take() {
            request = request.start_record_name(name).start_record_type(rtype).set_start_record_identifier(identifier);
        }
        let out = request.send().await.map_err(|e| aws_error("ListResourceRecordSets", e))?;
        sets.extend(out.resource_record_sets().iter().map(record_set));
        if !out.is_truncated() {
            return Ok(sets);
        }
        let name = out.next_record_name().ok_or_else(|| Error::missing("ListResourceRecordSets", "NextRecordName"))?;
        let rtype = out.next_record_type().ok_or_else(|| Error::missing("ListResourceRecordSets", "NextRecordType"))?;
        next = Some((name.to_string(), rtype.clone(), out.next_record_identifier().map(str::to_string)));
    }
}

fn record_set(set: &ResourceRecordSet) -> RecordSet {
    RecordSet {
        name: normalise(set.name()),
        rtype: set.r#type().as_str().to_string(),
        ttl: set.ttl(),
        values: set.resource_records().iter().map(|r| r.value().to_string()).collect(),
        alias: set
            .alias_target()
            .map(|a| Alias { dns_name: normalise(a.dns_name()), hosted_zone_id: a.hosted_zone_id().to_string() }),
    }
}

fn sdk_record_set(set: &RecordSet) -> Result<ResourceRecordSet> {
    let mut builder = ResourceRecordSet::builder().name(&set.name).r#type(RrType::from(set.rtype.as_str()));
    if let Some(alias) = &set.alias {
        builder = builder.alias_target(
            AliasTarget::builder()
                .dns_name(&alias.dns_name)
                .hosted_zone_id(&alias.hosted_zone_id)
                .evaluate_target_health(true)
                .build()
                .map_err(|e| Error::Internal(format!("alias target: {e}")))?,
        );
    } else {
        builder = builder.set_ttl(set.ttl);
        for value in &set.values {
            builder = builder.resource_records(
                ResourceRecord::builder().value(value).build().map_err(|e| Error::Internal(format!("record: {e}")))?,
            );
        }
    }
    builder.build().map_err(|e| Error::Internal(format!("record set: {e}")))
}

/// Sends one atomic change batch to a zone (ChangeResourceRecordSets). Route 53 applies it to its
/// authoritative servers within about a minute (the change is PENDING, then INSYNC); nothing here
/// needs to wait for that.
pub async fn change_records(aws: &Aws, zone_id: &str, changes: &[(ChangeAction, RecordSet)]) -> Result<()> {
    let mut batch = ChangeBatch::builder().comment("deckhand");
    for (action, set) in changes {
        batch = batch.changes(
            Change::builder()
                .action(action.clone())
                .resource_record_set(sdk_record_set(set)?)
                .build()
                .map_err(|e| Error::Internal(format!("change: {e}")))?,
        );
    }
    let batch = batch.build().map_err(|e| Error::Internal(format!("change batch: {e}")))?;
    sent(
        "ChangeResourceRecordSets",
        aws.route53.change_resource_record_sets().hosted_zone_id(zone_id).change_batch(batch).send(),
    )
    .await
}

/// The zone's record sets, from the run's cache or read once (none for a zone not known yet).
pub fn zone_records(pass: &Pass, zone: &HostedZone) -> Result<Vec<RecordSet>> {
    if let Some(sets) = cached_records(pass, zone)? {
        return Ok(sets);
    }
    let Some(sets) = pass.read(async |aws| list_records(aws, &zone.id).await) else { return Ok(Vec::new()) };
    remember_zone(pass, zone, sets?)
}

/// [`zone_records`] for a change under way in the apply pass, which may run beside other creates
/// (see [`Resource::create_beside`]): read, when not cached yet, with [`Pass::send`].
pub async fn zone_records_beside(pass: &Pass, zone: &HostedZone) -> Result<Vec<RecordSet>> {
    if let Some(sets) = cached_records(pass, zone)? {
        return Ok(sets);
    }
    let sets = pass.send(async |aws| list_records(aws, &zone.id).await).await?;
    remember_zone(pass, zone, sets)
}

/// The zone's record sets as the run's cache holds them; none for a zone not known yet.
fn cached_records(pass: &Pass, zone: &HostedZone) -> Result<Option<Vec<RecordSet>>> {
    if !is_known(&zone.id) {
        return Ok(Some(Vec::new()));
    }
    Ok(pass.snapshot()?.borrow().route53.records.get(&zone.id).cloned())
}

fn remember_zone(pass: &Pass, zone: &HostedZone, sets: Vec<RecordSet>) -> Result<Vec<RecordSet>> {
    pass.remember_read(|s| {
        s.route53.records.insert(zone.id.clone(), sets.clone());
    })?;
    Ok(sets)
}

/// Records record sets written by this run in the pass's snapshot (and the run's read cache).
pub fn remember_records(pass: &Pass, zone_id: &str, written: &[RecordSet]) -> Result<()> {
    pass.remember_read(|s| put_records(s, zone_id, written))
}

fn forget_records(snapshot: &mut Snapshot, zone_id: &str, deleted: &[RecordSet]) {
    if let Some(sets) = snapshot.route53.records.get_mut(zone_id) {
        sets.retain(|s| !deleted.iter().any(|d| d.name == s.name && d.rtype == s.rtype));
    }
}

/// The stack's record sets at the spec's name that a CNAME conflicts with: of other types than
/// the spec's, named as the stack's by the name's marker, when either side is a CNAME.
fn displaced_by(spec: &DnsRecordSpec, all: &[RecordSet], marker: &[String], stack: &str) -> Vec<RecordSet> {
    let types = spec.types();
    let cname = types.iter().any(|t| t == "CNAME");
    all.iter()
        .filter(|set| set.name == spec.name && !types.contains(&set.rtype))
        .filter(|set| cname || set.rtype == "CNAME")
        .filter(|set| marker.contains(&marker_value(stack, &set.rtype)))
        .cloned()
        .collect()
}

fn put_records(snapshot: &mut Snapshot, zone_id: &str, written: &[RecordSet]) {
    let sets = snapshot.route53.records.entry(zone_id.to_string()).or_default();
    for set in written {
        sets.retain(|s| !(s.name == set.name && s.rtype == set.rtype));
        sets.push(set.clone());
    }
}

// Ownership markers

/// Where the ownership marker of the record sets at `name` lives.
pub fn marker_name(name: &str) -> String {
    match name.strip_prefix("*.") {
        Some(rest) => format!("_deckhand._wildcard.{rest}"),
        None => format!("_deckhand.{name}"),
    }
}

/// The marker string saying that `stack` owns the record set of `rtype`.
pub fn marker_value(stack: &str, rtype: &str) -> String {
    format!("\"deckhand:stack={stack} type={rtype}\"")
}

/// The (stack, type) pairs a marker record set's values name.
pub fn marker_entries(values: &[String]) -> Vec<(String, String)> {
    values
        .iter()
        .filter_map(|v| {
            let text = v.trim_matches('"');
            let (stack, rtype) = text.strip_prefix("deckhand:stack=")?.split_once(" type=")?;
            Some((stack.to_string(), rtype.to_string()))
        })
        .collect()
}

/// The TTL of ownership markers.
const MARKER_TTL: i64 = 300;

// The dns_record kind

/// What a `dns_record` points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordData {
    /// A and AAAA alias records to a load balancer.
    Alias(Alias),
    /// One plain record set.
    Plain {
        /// Its type, e.g. `CNAME`.
        rtype: String,
        /// Its values, as Route 53 takes them (TXT values quoted).
        values: Vec<String>,
        /// Its TTL in seconds.
        ttl: i64,
    },
}

/// What a script asks of a DNS name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecordSpec {
    /// The zone it goes into.
    pub zone: HostedZone,
    /// The name (normalised).
    pub name: String,
    /// What it points at.
    pub data: RecordData,
}

impl DnsRecordSpec {
    /// The record sets this spec asks for.
    pub fn wanted(&self) -> Vec<RecordSet> {
        match &self.data {
            RecordData::Alias(alias) => ["A", "AAAA"]
                .iter()
                .map(|t| RecordSet {
                    name: self.name.clone(),
                    rtype: (*t).to_string(),
                    ttl: None,
                    values: Vec::new(),
                    alias: Some(alias.clone()),
                })
                .collect(),
            RecordData::Plain { rtype, values, ttl } => vec![RecordSet {
                name: self.name.clone(),
                rtype: rtype.clone(),
                ttl: Some(*ttl),
                values: values.clone(),
                alias: None,
            }],
        }
    }

    fn types(&self) -> Vec<String> {
        self.wanted().into_iter().map(|s| s.rtype).collect()
    }
}

/// The record types `dns_record` writes as plain records.
pub const PLAIN_TYPES: &[&str] = &["A", "AAAA", "CNAME", "TXT", "MX", "CAA", "SRV"];

/// A DNS name's record sets of the types a spec asks for, with their owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    /// The zone's id.
    pub zone_id: String,
    /// The zone's name.
    pub zone: String,
    /// The name.
    pub name: String,
    /// The record sets found (or planned), of the spec's types.
    pub sets: Vec<RecordSet>,
    /// The stack whose marker names every one of the spec's types at this name.
    pub stack: Option<String>,
    /// The marker's current values (kept when the marker is rewritten).
    pub marker: Vec<String>,
}

/// A `dns_record` converges by name and type: created (with its ownership marker) when no record
/// set of its types exists, UPSERTed when its data differ, refused when the marker does not name
/// the stack for each of its types.
impl Resource for DnsRecord {
    type Reads = Snapshot;
    type Spec = DnsRecordSpec;
    type Update = ();
    const KIND: &'static str = "dns_record";

    fn name(spec: &DnsRecordSpec) -> String {
        format!("{} {}", spec.name, spec.types().join("+"))
    }

    fn noun() -> String {
        "DNS record".into()
    }

    fn locator(live: &DnsRecord) -> String {
        format!("zone {}", live.zone)
    }

    fn validate(_pass: &Pass, spec: &DnsRecordSpec) -> Result<()> {
        validate_name("dns_record.name", &spec.name, true)?;
        check_in_zone("dns_record.name", &spec.name, &spec.zone.name)?;
        // The apex holds the zone's SOA and NS records, and a CNAME may share its name with no
        // other record (RFC 1034 3.6.2): Route 53 refuses a CNAME there.
        if spec.name == spec.zone.name && spec.types().iter().any(|t| t == "CNAME") {
            return Err(Error::invalid(
                "dns_record.type",
                "\"CNAME\"",
                format!(
                    "another type at the zone apex {}: a CNAME cannot share a name with the zone's SOA and NS records (point the apex at a load balancer with `alias`)",
                    spec.zone.name
                ),
            ));
        }
        Ok(())
    }

    fn find(pass: &Pass, spec: &DnsRecordSpec) -> Result<Option<DnsRecord>> {
        let all = zone_records(pass, &spec.zone)?;
        let types = spec.types();
        let sets: Vec<RecordSet> =
            all.iter().filter(|s| s.name == spec.name && types.contains(&s.rtype)).cloned().collect();
        let marker_at = marker_name(&spec.name);
        let marker: Vec<String> =
            all.iter().find(|s| s.name == marker_at && s.rtype == "TXT").map(|s| s.values.clone()).unwrap_or_default();
        let entries = marker_entries(&marker);
        let owner_of = |t: &String| entries.iter().find(|(_, rtype)| rtype == t).map(|(stack, _)| stack.clone());
        if sets.is_empty() && types.iter().all(|t| owner_of(t).is_none()) {
            return Ok(None);
        }
        // The stack owns what its marker names; a type with neither a record set nor a marker
        // entry is free; anything else is another stack's, or no stack's (made by hand).
        let us = pass.stack()?;
        let mut stack = Some(us.clone());
        for t in &types {
            match owner_of(t) {
                Some(other) if other != us => {
                    stack = Some(other);
                    break;
                }
                Some(_) => {}
                None if sets.iter().any(|s| &s.rtype == t) => {
                    stack = None;
                    break;
                }
                None => {}
            }
        }
        Ok(Some(DnsRecord {
            zone_id: spec.zone.id.clone(),
            zone: spec.zone.name.clone(),
            name: spec.name.clone(),
            sets,
            stack,
            marker,
        }))
    }

    fn stack_of(live: &DnsRecord) -> Option<&str> {
        live.stack.as_deref()
    }

    fn planned(spec: &DnsRecordSpec, stack: &str) -> DnsRecord {
        DnsRecord {
            zone_id: spec.zone.id.clone(),
            zone: spec.zone.name.clone(),
            name: spec.name.clone(),
            sets: spec.wanted(),
            stack: Some(stack.to_string()),
            marker: spec.types().iter().map(|t| marker_value(stack, t)).collect(),
        }
    }

    fn create(pass: &Pass, spec: &DnsRecordSpec, stack: &str) -> Result<Created<DnsRecord>> {
        pass.block(create(pass, spec, stack))
    }

    /// Beside other creates unless another create sent ahead is writing the marker at its name.
    fn create_beside(
        pass: &Pass,
        spec: DnsRecordSpec,
        stack: String,
    ) -> Option<LocalBoxFuture<'_, Result<Created<DnsRecord>>>> {
        let name = (spec.zone.id.clone(), spec.name.clone());
        if !pass.snapshot().ok()?.borrow_mut().route53.writing.insert(name.clone()) {
            return None;
        }
        Some(Box::pin(async move {
            let created = create(pass, &spec, &stack).await;
            if let Ok(snapshot) = pass.snapshot() {
                snapshot.borrow_mut().route53.writing.remove(&name);
            }
            created
        }))
    }

    fn diff(live: &DnsRecord, spec: &DnsRecordSpec) -> Drift<()> {
        let diffs = spec
            .wanted()
            .iter()
            .filter_map(|want| match live.sets.iter().find(|s| s.rtype == want.rtype) {
                Some(have) if have.same_data(want) => None,
                Some(have) => Some(FieldDiff::changed(&want.rtype, have.data(), want.data())),
                None => Some(FieldDiff::changed(&want.rtype, "(none)", want.data())),
            })
            .collect();
        Drift::of(diffs)
    }

    fn update(pass: &Pass, live: &DnsRecord, spec: &DnsRecordSpec, _: &()) -> Result<DnsRecord> {
        let stack = pass.stack()?;
        let mut changes: Vec<(ChangeAction, RecordSet)> = spec
            .wanted()
            .into_iter()
            .filter(|want| !live.sets.iter().any(|have| have.rtype == want.rtype && have.same_data(want)))
            .map(|s| (ChangeAction::Upsert, s))
            .collect();
        let marker = marker_set(&spec.name, &live.marker, &stack, &spec.types());
        if marker.values != live.marker {
            changes.push((ChangeAction::Upsert, marker));
        }
        pass.apply(async |aws| change_records(aws, &spec.zone.id, &changes).await)?;
        let written: Vec<RecordSet> = changes.into_iter().map(|(_, s)| s).collect();
        remember_records(pass, &spec.zone.id, &written)?;
        Ok(Self::updated(live, spec))
    }

    fn updated(live: &DnsRecord, spec: &DnsRecordSpec) -> DnsRecord {
        DnsRecord { sets: spec.wanted(), ..live.clone() }
    }

    fn remember(snapshot: &mut Snapshot, live: &DnsRecord) {
        if is_known(&live.zone_id) {
            put_records(snapshot, &live.zone_id, &live.sets);
        }
    }

    fn summary(live: &DnsRecord) -> String {
        let data: Vec<String> = live.sets.iter().map(|s| format!("{} {}", s.rtype, s.data())).collect();
        format!("{} in zone {}", dedup_alias(data).join(", "), live.zone)
    }
}

/// Creates the record sets of a `dns_record` and names them the stack's in the marker at their
/// name, in one change batch. Creates in one zone may go out together: Route 53 answers a batch
/// sent while the zone's previous one is still being processed with `PriorRequestNotComplete`,
/// which the SDK's standard retry strategy retries with backoff as a throttling error
/// (aws-runtime's `THROTTLING_ERRORS`), as Route 53's error reference recommends.
async fn create(pass: &Pass, spec: &DnsRecordSpec, stack: &str) -> Result<Created<DnsRecord>> {
    let planned = DnsRecord::planned(spec, stack);
    // CREATE, not UPSERT: if a record set appeared since the read, Route 53 rejects the whole
    // batch instead of deckhand overwriting something it does not own.
    let mut changes: Vec<(ChangeAction, RecordSet)> =
        planned.sets.iter().map(|s| (ChangeAction::Create, s.clone())).collect();
    let marker_at = marker_name(&spec.name);
    let all = zone_records_beside(pass, &spec.zone).await?;
    let mut existing =
        all.iter().find(|s| s.name == marker_at && s.rtype == "TXT").map(|s| s.values.clone()).unwrap_or_default();
    // A CNAME cannot share its name with a record set of any other type (RFC 1034 3.6.2):
    // Route 53 rejects such a CREATE (InvalidChangeBatch, "conflicts with other records with
    // the same DNS name"). So when the stack changes a name's type to or from CNAME, its own
    // sets of the old types go in the same batch, which Route 53 applies as one transaction.
    let displaced = displaced_by(spec, &all, &existing, stack);
    existing.retain(|value| !displaced.iter().any(|set| value == &marker_value(stack, &set.rtype)));
    changes.extend(displaced.iter().map(|set| (ChangeAction::Delete, set.clone())));
    changes.push((ChangeAction::Upsert, marker_set(&spec.name, &existing, stack, &spec.types())));
    pass.send(async |aws| change_records(aws, &spec.zone.id, &changes).await).await?;
    pass.remember_read(|s| forget_records(s, &spec.zone.id, &displaced))?;
    let written: Vec<RecordSet> =
        changes.into_iter().filter(|(action, _)| *action != ChangeAction::Delete).map(|(_, s)| s).collect();
    remember_records(pass, &spec.zone.id, &written)?;
    Ok(Created::New(planned))
}

/// `A alias x, AAAA alias x` reads as `A+AAAA alias x`.
fn dedup_alias(data: Vec<String>) -> Vec<String> {
    match data.as_slice() {
        [a, b] if a.strip_prefix("A ") == b.strip_prefix("AAAA ") => {
            vec![format!("A+AAAA {}", a.trim_start_matches("A "))]
        }
        _ => data,
    }
}

/// The marker record set at `name` with `existing` values plus `stack`'s entries for `types`.
fn marker_set(name: &str, existing: &[String], stack: &str, types: &[String]) -> RecordSet {
    let mut values = existing.to_vec();
    for rtype in types {
        let value = marker_value(stack, rtype);
        if !values.contains(&value) {
            values.push(value);
        }
    }
    RecordSet { name: marker_name(name), rtype: "TXT".into(), ttl: Some(MARKER_TTL), values, alias: None }
}

// Stack listing (status, destroy)

/// A record set the stack owns, with its zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedRecord {
    /// The zone's id.
    pub zone_id: String,
    /// The zone's name.
    pub zone: String,
    /// The record set (a marker itself is listed last for its name).
    pub set: RecordSet,
}

/// Every public zone of the account with its record sets (ListHostedZones, then
/// ListResourceRecordSets per zone, [`crate::aws::LOOKUPS_AT_ONCE`] zones at a time).
pub async fn public_zone_records(aws: &Aws) -> Result<Vec<(HostedZone, Vec<RecordSet>)>> {
    let zones: Vec<HostedZone> = list_zones(aws).await?.into_iter().filter(|(_, p)| !p).map(|(z, _)| z).collect();
    let all = crate::aws::concurrently(&zones, |zone| list_records(aws, &zone.id)).await?;
    Ok(zones.into_iter().zip(all).collect())
}

/// The stack's record sets among `zones`: those its markers name, each followed by its marker
/// (a marker naming other stacks too is rewritten without this stack when deleted).
pub fn owned_records(stack: &str, zones: &[(HostedZone, Vec<RecordSet>)]) -> Vec<OwnedRecord> {
    let mut owned = Vec::new();
    for (zone, sets) in zones {
        for marker in sets.iter().filter(|s| s.rtype == "TXT" && s.name.starts_with("_deckhand.")) {
            let entries = marker_entries(&marker.values);
            let types: Vec<&String> = entries.iter().filter(|(s, _)| s == stack).map(|(_, t)| t).collect();
            if types.is_empty() {
                continue;
            }
            let name = match marker.name.strip_prefix("_deckhand._wildcard.") {
                Some(rest) => format!("*.{rest}"),
                None => marker.name.trim_start_matches("_deckhand.").to_string(),
            };
            for set in sets.iter().filter(|s| s.name == name && types.contains(&&s.rtype)) {
                owned.push(OwnedRecord { zone_id: zone.id.clone(), zone: zone.name.clone(), set: set.clone() });
            }
            owned.push(OwnedRecord { zone_id: zone.id.clone(), zone: zone.name.clone(), set: marker.clone() });
        }
    }
    owned
}

/// Deletes a record set the stack owns; a marker shared with other stacks keeps their entries.
pub async fn delete_record(aws: &Aws, stack: &str, owned: &OwnedRecord) -> Result<()> {
    let is_marker = owned.set.rtype == "TXT" && owned.set.name.starts_with("_deckhand.");
    let others: Vec<String> = if is_marker {
        owned
            .set
            .values
            .iter()
            .filter(|v| marker_entries(std::slice::from_ref(v)).first().is_some_and(|(s, _)| s != stack))
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    let change = if others.is_empty() {
        (ChangeAction::Delete, owned.set.clone())
    } else {
        (ChangeAction::Upsert, RecordSet { values: others, ..owned.set.clone() })
    };
    match change_records(aws, &owned.zone_id, &[change]).await {
        // Already gone (a second destroy after a partial one).
        Err(e) if e.aws_code() == Some("InvalidChangeBatch") && e.to_string().contains("not found") => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_like_route53_and_acm_do() {
        assert!(validate_name("d", "app.example.com", false).is_ok());
        assert!(validate_name("d", "*.example.com", true).is_ok());
        assert!(validate_name("d", "*.example.com", false).is_err());
        assert!(validate_name("d", "*.com", true).is_err());
        assert!(validate_name("d", "a.*.example.com", true).is_err());
        assert!(validate_name("d", "", false).is_err());
        assert!(validate_name("d", "localhost", false).is_err());
        assert!(validate_name("d", "bad..example.com", false).is_err());
        assert!(validate_name("d", "-bad.example.com", false).is_err());
        assert!(validate_name("d", "sp ace.example.com", false).is_err());
        assert!(check_in_zone("d", "app.example.com", "example.com").is_ok());
        assert!(check_in_zone("d", "example.com", "example.com").is_ok());
        assert!(check_in_zone("d", "app.badexample.com", "example.com").is_err());
    }

    #[test]
    fn markers_name_stack_and_type() {
        assert_eq!(marker_name("app.example.com"), "_deckhand.app.example.com");
        assert_eq!(marker_name("*.example.com"), "_deckhand._wildcard.example.com");
        let values = vec![marker_value("web", "A"), marker_value("web", "AAAA"), "\"other\"".into()];
        assert_eq!(marker_entries(&values), vec![("web".into(), "A".into()), ("web".into(), "AAAA".into())]);
        assert_eq!(normalise("App.Example.com."), "app.example.com");
        assert_eq!(normalise("\\052.example.com."), "*.example.com");
    }
}
