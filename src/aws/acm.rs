//! ACM certificates validated by DNS: validation, reads, how a `certificate` converges (request,
//! validation CNAMEs written into the zone, wait until ISSUED), deletion.

use aws_sdk_acm::types::{Filters, KeyAlgorithm, Tag, ValidationMethod};
use aws_sdk_route53::types::ChangeAction;
use futures_util::future::LocalBoxFuture;

use crate::aws::Pass;
use crate::aws::Snapshot;
use crate::aws::route53::{self, HostedZone, RecordSet};
use crate::converge::{Created, Drift, Resource};
use crate::error::{Error, Result, aws_error};
use crate::plan::{FieldDiff, UNKNOWN, is_known};
use crate::poll::{Check, Wait};
use crate::runtime::Aws;
use crate::tagged::Keepable;
use crate::tagged::STACK_TAG;
use crate::timing::{CERTIFICATE_PACE, CERTIFICATE_TIMEOUT, VALIDATION_RECORDS_PACE, VALIDATION_RECORDS_TIMEOUT};

/// How many names a certificate may hold: ACM's default quota ("domain names per certificate").
pub const MAX_NAMES: usize = 10;

/// A DNS validation record ACM asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationRecord {
    /// The CNAME's name (normalised).
    pub name: String,
    /// Its value, e.g. `_x.acm-validations.aws.`.
    pub value: String,
}

/// An ACM certificate as it exists (or will exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// Its ARN, or [`UNKNOWN`].
    pub arn: String,
    /// The primary domain name.
    pub domain: String,
    /// The other names, sorted.
    pub alternative_names: Vec<String>,
    /// `PENDING_VALIDATION`, `ISSUED`, `FAILED`, ...
    pub status: String,
    /// Expiry, RFC 3339, when issued.
    pub not_after: Option<String>,
    /// ACM's reason when validation failed.
    pub failure_reason: Option<String>,
    /// The validation CNAMEs ACM reports.
    pub validation: Vec<ValidationRecord>,
    /// Those not (yet, or not with the right value) in the zone.
    pub missing: Vec<ValidationRecord>,
    /// Its `deckhand:stack` tag.
    pub stack: Option<String>,
}

/// What a script asks of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateSpec {
    /// The primary domain name (normalised).
    pub domain: String,
    /// The other names (normalised).
    pub alternative_names: Vec<String>,
    /// The zone that validates every name.
    pub zone: HostedZone,
}

impl CertificateSpec {
    fn names(&self) -> Vec<String> {
        let mut names = self.alternative_names.clone();
        names.retain(|n| n != &self.domain);
        names.sort();
        names.dedup();
        names
    }
}

/// The ACM part of a run's snapshot: the stack's certificates, read on first use.
#[derive(Debug, Default, Clone)]
pub struct AcmState {
    /// The stack's certificates (`None`: not read yet).
    pub certificates: Option<Vec<Certificate>>,
}

/// Checks a certificate's names before any call: well-formed, wildcards as ACM allows them (the
/// whole leftmost label), inside the zone, no repeats, at most [`MAX_NAMES`].
pub fn validate(spec: &CertificateSpec) -> Result<()> {
    route53::validate_name("certificate.domain", &spec.domain, true)?;
    if spec.domain.len() > 64 {
        return Err(Error::invalid(
            "certificate.domain",
            format!("{:?}", spec.domain),
            "at most 64 characters (ACM puts it in the certificate's subject); put a longer name in alternative_names",
        ));
    }
    route53::check_in_zone("certificate.domain", &spec.domain, &spec.zone.name)?;
    for name in &spec.alternative_names {
        route53::validate_name("certificate.alternative_names", name, true)?;
        route53::check_in_zone("certificate.alternative_names", name, &spec.zone.name)?;
    }
    // Route 53 takes `_` in a name (validate_name allows it, for records such as `_dmarc`), ACM
    // does not: RequestCertificate's DomainName and SubjectAlternativeNames follow the pattern
    // `(\*\.)?(((?!-)[A-Za-z0-9-]{0,62}[A-Za-z0-9])\.)+((?!-)[A-Za-z0-9-]{1,62}[A-Za-z0-9])`
    // (ACM API reference) and are refused only when the certificate is requested.
    let named = std::iter::once(("certificate.domain", &spec.domain))
        .chain(spec.alternative_names.iter().map(|n| ("certificate.alternative_names", n)));
    for (key, name) in named {
        if name.contains('_') {
            return Err(Error::invalid(
                key,
                format!("{name:?}"),
                "a name without `_`: ACM issues certificates only for host names (letters, digits, `-`)",
            ));
        }
    }
    let count = spec.names().len() + 1;
    if count > MAX_NAMES {
        return Err(Error::invalid(
            "certificate.alternative_names",
            format!("{count} names"),
            format!("at most {MAX_NAMES} names per certificate (ACM's default quota) including the domain"),
        ));
    }
    Ok(())
}

/// Reads one certificate (DescribeCertificate); `None` when it is gone.
pub async fn describe(aws: &Aws, arn: &str) -> Result<Option<Certificate>> {
    let out = match aws.acm.describe_certificate().certificate_arn(arn).send().await {
        Ok(out) => out,
        Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => return Ok(None),
        Err(e) => return Err(aws_error("DescribeCertificate", e)),
    };
    let c = out.certificate().ok_or_else(|| Error::missing("DescribeCertificate", "Certificate"))?;
    let domain =
        route53::normalise(c.domain_name().ok_or_else(|| Error::missing("DescribeCertificate", "DomainName"))?);
    let mut alternative_names: Vec<String> =
        c.subject_alternative_names().iter().map(|n| route53::normalise(n)).filter(|n| n != &domain).collect();
    alternative_names.sort();
    alternative_names.dedup();
    let mut validation: Vec<ValidationRecord> = c
        .domain_validation_options()
        .iter()
        .filter_map(|o| o.resource_record())
        .map(|r| ValidationRecord { name: route53::normalise(r.name()), value: r.value().to_string() })
        .collect();
    validation.sort_by(|a, b| a.name.cmp(&b.name));
    validation.dedup();
    Ok(Some(Certificate {
        arn: arn.to_string(),
        domain,
        alternative_names,
        status: c.status().map(|s| s.as_str().to_string()).unwrap_or_else(|| "UNKNOWN".into()),
        not_after: c.not_after().and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok()),
        failure_reason: c.failure_reason().map(|r| r.as_str().to_string()),
        validation,
        missing: Vec::new(),
        stack: None,
    }))
}

/// Every certificate of the region with its names (ListCertificates, every status and key type).
pub async fn account_certificates(aws: &Aws) -> Result<Vec<(String, Vec<String>)>> {
    // Without Includes.keyTypes, ListCertificates lists only RSA_1024 and RSA_2048 certificates
    // (ACM API reference): an EC or RSA_4096 certificate for the same name would be invisible.
    let every_key_type = Filters::builder()
        .set_key_types(Some(KeyAlgorithm::values().iter().map(|k| KeyAlgorithm::from(*k)).collect()))
        .build();
    let mut pages = aws.acm.list_certificates().includes(every_key_type).into_paginator().items().send();
    let mut certs = Vec::new();
    while let Some(summary) = pages.next().await {
        let summary = summary.map_err(|e| aws_error("ListCertificates", e))?;
        let arn = summary.certificate_arn().ok_or_else(|| Error::missing("ListCertificates", "CertificateArn"))?;
        let names = summary
            .domain_name()
            .into_iter()
            .chain(summary.subject_alternative_name_summaries().iter().map(String::as_str))
            .map(route53::normalise)
            .collect();
        certs.push((arn.to_string(), names));
    }
    Ok(certs)
}

/// The stack's certificates. ACM cannot list by tag: every certificate is listed
/// ([`account_certificates`]) and its tags read (ListTagsForCertificate), then the stack's ones
/// described.
pub async fn stack_certificates(aws: &Aws, stack: &str) -> Result<Vec<Certificate>> {
    let all = account_certificates(aws).await?;
    stack_certificates_among(aws, stack, &all).await
}

async fn stack_certificates_among(aws: &Aws, stack: &str, all: &[(String, Vec<String>)]) -> Result<Vec<Certificate>> {
    let stacks = crate::aws::concurrently(all, |(arn, _)| certificate_stack(aws, arn)).await?;
    let ours: Vec<&String> =
        all.iter().zip(stacks).filter(|(_, s)| s.as_deref() == Some(stack)).map(|((a, _), _)| a).collect();
    let described = crate::aws::concurrently(ours, |arn| describe(aws, arn)).await?;
    Ok(described.into_iter().flatten().map(|c| Certificate { stack: Some(stack.to_string()), ..c }).collect())
}

/// A stack's certificates and DNS records, for `status` and `destroy`.
#[derive(Debug, Clone, Default)]
pub struct StackDomains {
    /// Its certificates.
    pub certificates: Vec<Certificate>,
    /// Its record sets (marker-owned, with their markers) and its certificates' validation
    /// CNAMEs that no certificate outside the stack shares (ACM asks for the same CNAME for the
    /// same name in one account, so another certificate for that name still needs it to renew).
    pub records: Vec<route53::OwnedRecord>,
}

/// Reads a stack's certificates and DNS records (see [`StackDomains`]).
pub async fn stack_domains(aws: &Aws, stack: &str) -> Result<StackDomains> {
    let (all, zones) = tokio::try_join!(account_certificates(aws), route53::public_zone_records(aws))?;
    let certificates = stack_certificates_among(aws, stack, &all).await?;
    let mut records = route53::owned_records(stack, &zones);
    let base = |name: &str| name.trim_start_matches("*.").to_string();
    let shared: Vec<String> = all
        .iter()
        .filter(|(arn, _)| !certificates.iter().any(|c| &c.arn == arn))
        .flat_map(|(_, names)| names.iter().map(|n| base(n)))
        .collect();
    for cert in &certificates {
        let names: Vec<String> =
            std::iter::once(&cert.domain).chain(&cert.alternative_names).map(|n| base(n)).collect();
        if names.iter().any(|n| shared.contains(n)) {
            continue;
        }
        for v in &cert.validation {
            for (zone, sets) in &zones {
                let found = sets.iter().find(|s| {
                    s.name == v.name
                        && s.rtype == "CNAME"
                        && s.values.iter().any(|x| route53::normalise(x) == route53::normalise(&v.value))
                });
                if let Some(set) = found
                    && !records.iter().any(|r| r.zone_id == zone.id && r.set.name == set.name && r.set.rtype == "CNAME")
                {
                    records.push(route53::OwnedRecord {
                        zone_id: zone.id.clone(),
                        zone: zone.name.clone(),
                        set: set.clone(),
                    });
                }
            }
        }
    }
    Ok(StackDomains { certificates, records })
}

async fn certificate_stack(aws: &Aws, arn: &str) -> Result<Option<String>> {
    match aws.acm.list_tags_for_certificate().certificate_arn(arn).send().await {
        Ok(out) => Ok(out.tags().iter().find(|t| t.key() == STACK_TAG).and_then(|t| t.value()).map(str::to_string)),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => Ok(None),
        Err(e) => Err(aws_error("ListTagsForCertificate", e)),
    }
}

/// Deletes a certificate. ACM refuses (ResourceInUseException) while a load balancer still uses
/// it, which lasts a moment after its listener is deleted; `destroy` retries that.
pub async fn delete_certificate(aws: &Aws, arn: &str) -> Result<()> {
    match aws.acm.delete_certificate().certificate_arn(arn).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => Ok(()),
        Err(e) => Err(aws_error("DeleteCertificate", e)),
    }
}

/// Statuses a certificate never leaves: such a one is not reused, a new one is requested.
fn is_dead(status: &str) -> bool {
    matches!(status, "FAILED" | "VALIDATION_TIMED_OUT" | "REVOKED" | "EXPIRED" | "INACTIVE")
}

fn stack_certs(pass: &Pass) -> Result<Vec<Certificate>> {
    if let Some(certs) = &pass.snapshot()?.borrow().acm.certificates {
        return Ok(certs.clone());
    }
    let stack = pass.stack()?;
    let Some(certs) = pass.read(async |aws| stack_certificates(aws, &stack).await) else { return Ok(Vec::new()) };
    let certs = certs?;
    pass.remember_read(|s| s.acm.certificates = Some(certs.clone()))?;
    Ok(certs)
}

/// The validation records not in the zone with their value.
fn missing_records(pass: &Pass, zone: &HostedZone, validation: &[ValidationRecord]) -> Result<Vec<ValidationRecord>> {
    Ok(missing_among(&route53::zone_records(pass, zone)?, validation))
}

/// The validation records not among the zone's record sets `sets` with their value.
fn missing_among(sets: &[RecordSet], validation: &[ValidationRecord]) -> Vec<ValidationRecord> {
    validation
        .iter()
        .filter(|v| {
            !sets.iter().any(|s| {
                s.name == v.name
                    && s.rtype == "CNAME"
                    && s.values.iter().any(|x| route53::normalise(x) == route53::normalise(&v.value))
            })
        })
        .cloned()
        .collect()
}

/// Writes the missing validation CNAMEs into the zone `sets` are the record sets of (UPSERT, one
/// batch). A CNAME at that name with another value is not deckhand's to overwrite: refused.
async fn write_validation(
    pass: &Pass,
    zone: &HostedZone,
    sets: &[RecordSet],
    missing: &[ValidationRecord],
) -> Result<()> {
    if missing.is_empty() {
        return Ok(());
    }
    if let Some(other) = missing.iter().find_map(|v| sets.iter().find(|s| s.name == v.name && s.rtype == "CNAME")) {
        return Err(Error::conflict(
            format!(
                "the validation record {} exists in zone {} with another value ({})",
                other.name,
                zone.name,
                other.data()
            ),
            Some("it was not written by deckhand for this certificate; delete it or fix it to the value ACM reports"),
        ));
    }
    let written: Vec<RecordSet> = missing
        .iter()
        .map(|v| RecordSet {
            name: v.name.clone(),
            rtype: "CNAME".into(),
            ttl: Some(300),
            values: vec![v.value.clone()],
            alias: None,
        })
        .collect();
    let changes: Vec<(ChangeAction, RecordSet)> = written.iter().map(|s| (ChangeAction::Upsert, s.clone())).collect();
    pass.send(async |aws| route53::change_records(aws, &zone.id, &changes).await).await?;
    route53::remember_records(pass, &zone.id, &written)
}

/// Waits until ACM reports the validation records of a just-requested certificate
/// (RequestCertificate returns before ACM has generated them; DescribeCertificate lists them
/// seconds later). A wait of its own, beside the other creates of its wave when the create goes
/// ahead of the script: what it waits for is part of the create (the CNAMEs to write), the
/// clock records concurrent waits once, and nothing in it blocks the run's runtime.
async fn wait_for_records(pass: &Pass, arn: &str) -> Result<Certificate> {
    let say = |line: &str| pass.log.say(&format!("  {line}"));
    pass.send(async |aws| {
        let what = format!("ACM to report the DNS validation records of {arn}");
        Wait::new(aws.clock(), "validation records", what, VALIDATION_RECORDS_PACE, VALIDATION_RECORDS_TIMEOUT)
            .report_to(&say)
            .hint("run the script again: it continues with this certificate")
            .until(async |_| {
                let cert = describe(aws, arn).await?.ok_or_else(|| {
                    Error::conflict(format!("certificate {arn} vanished right after it was requested"), None)
                })?;
                Ok(if cert.validation.is_empty() { Check::waiting("none yet") } else { Check::Done(cert) })
            })
            .await
    })
    .await
}

/// The key of a certificate's deferred wait (see [`Pass::defer`]).
fn pending_key(arn: &str) -> String {
    format!("certificate {arn}")
}

/// Defers the wait until `cert` is ISSUED to what needs it ([`ready`]): ACM validates it while the
/// statements after it run (about a minute once its CNAMEs are served).
fn defer_issued(pass: &Pass, cert: &Certificate) {
    let cert = cert.clone();
    pass.defer(pending_key(&cert.arn), move |pass, by| {
        let issued = wait_issued(pass, cert, by)?;
        Certificate::remember(&mut pass.snapshot()?.borrow_mut(), &issued);
        Ok(())
    });
}

/// Waits until certificate `arn` is issued if this run requested it (or found it) pending,
/// because `by` needs it: an HTTPS listener cannot serve a certificate that is not ISSUED
/// (ELBv2 refuses it, `UnsupportedCertificate`). A certificate the run does not manage (an ARN
/// given by the script) is not waited for.
pub fn ready(pass: &Pass, arn: &str, by: &str) -> Result<()> {
    pass.need(&pending_key(arn), by)
}

/// Waits until the certificate is ISSUED (ACM validates once the CNAMEs resolve publicly), with
/// progress; fails with ACM's reason. The certificate as given is the first poll.
fn wait_issued(pass: &Pass, cert: Certificate, by: &str) -> Result<Certificate> {
    let (arn, domain, missing) = (cert.arn.clone(), cert.domain.clone(), cert.missing.clone());
    let mut given = Some(cert);
    let say = |line: &str| pass.log.say(&format!("  {line}"));
    pass.apply(async |aws| {
        let what = format!("certificate {domain} ({arn}) to be issued for {by}");
        Wait::new(aws.clock(), "certificate", what, CERTIFICATE_PACE, CERTIFICATE_TIMEOUT)
            .report_to(&say)
            .hint("ACM validates once the CNAMEs resolve publicly: check the domain's delegation, then run again")
            .until(async |_| {
                let cert = match given.take() {
                    Some(cert) => cert,
                    None => describe(aws, &arn).await?.ok_or_else(|| {
                        Error::conflict(format!("certificate {arn} was deleted while waiting for it"), None)
                    })?,
                };
                match cert.status.as_str() {
                    "ISSUED" => Ok(Check::Done(Certificate { missing: missing.clone(), ..cert })),
                    status if is_dead(status) => {
                        let reason = cert.failure_reason.clone().unwrap_or_else(|| "ACM gave no reason".into());
                        Err(Error::conflict(
                            format!("certificate {} for {} is {status}: {reason}", cert.arn, cert.domain),
                            Some(
                                "check that the zone is the one the domain's registrar delegates to, and CAA records allow amazon.com; then run again (a new certificate is requested)",
                            ),
                        ))
                    }
                    status => Ok(Check::waiting(status)),
                }
            })
            .await
    })
}

/// A fresh request token for one certificate request. ACM dedupes on it for an hour, so the SDK's
/// retries of this request get the one certificate. It is never derived from the names: within the
/// hour, a request for the same names after a FAILED or deleted certificate would get that dead
/// certificate back (terraform-provider-aws's `resourceCertificateCreate`, acm/certificate.go, likewise
/// sends a new `sdkid.PrefixedUniqueId("tf")` per create).
fn idempotency_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A certificate converges by its names: the stack's certificate with exactly these names is
/// reused (its validation CNAMEs rewritten when missing, waited for until ISSUED); other names
/// request a new one and leave the old one to `destroy`.
impl Resource for Certificate {
    type Reads = Snapshot;
    type Spec = CertificateSpec;
    type Update = ();
    const KIND: &'static str = "certificate";

    fn keepable(live: &Certificate) -> Option<Keepable> {
        Some(Keepable::Acm(live.arn.clone()))
    }

    fn name(spec: &CertificateSpec) -> String {
        spec.domain.clone()
    }

    fn locator(live: &Certificate) -> String {
        live.arn.clone()
    }

    fn validate(_pass: &Pass, spec: &CertificateSpec) -> Result<()> {
        validate(spec)
    }

    fn find(pass: &Pass, spec: &CertificateSpec) -> Result<Option<Certificate>> {
        let names = spec.names();
        let mut matching: Vec<Certificate> = stack_certs(pass)?
            .into_iter()
            .filter(|c| c.domain == spec.domain && c.alternative_names == names && !is_dead(&c.status))
            .collect();
        // The issued one first, then the newest request.
        matching.sort_by_key(|c| c.status != "ISSUED");
        let Some(mut cert) = matching.into_iter().next() else { return Ok(None) };
        cert.missing = missing_records(pass, &spec.zone, &cert.validation)?;
        Ok(Some(cert))
    }

    fn stack_of(live: &Certificate) -> Option<&str> {
        live.stack.as_deref()
    }

    fn planned(spec: &CertificateSpec, stack: &str) -> Certificate {
        Certificate {
            arn: UNKNOWN.into(),
            domain: spec.domain.clone(),
            alternative_names: spec.names(),
            status: "ISSUED".into(),
            not_after: None,
            failure_reason: None,
            validation: Vec::new(),
            missing: Vec::new(),
            stack: Some(stack.to_string()),
        }
    }

    fn create(pass: &Pass, spec: &CertificateSpec, stack: &str) -> Result<Created<Certificate>> {
        pass.block(create(pass, spec, stack))
    }

    fn create_beside(
        pass: &Pass,
        spec: CertificateSpec,
        stack: String,
    ) -> Option<LocalBoxFuture<'_, Result<Created<Certificate>>>> {
        Some(Box::pin(async move { create(pass, &spec, &stack).await }))
    }

    fn diff(live: &Certificate, _spec: &CertificateSpec) -> Drift<()> {
        let mut diffs: Vec<FieldDiff> = live
            .missing
            .iter()
            .map(|v| FieldDiff::changed(&format!("validation CNAME {}", v.name), "(none)", &v.value))
            .collect();
        if live.status != "ISSUED" {
            diffs.push(FieldDiff::changed("status", &live.status, "ISSUED"));
        }
        Drift::of(diffs)
    }

    fn update(pass: &Pass, live: &Certificate, spec: &CertificateSpec, _: &()) -> Result<Certificate> {
        let cert = pass.block(async {
            let mut cert = live.clone();
            let sets = route53::zone_records_beside(pass, &spec.zone).await?;
            if cert.validation.is_empty() {
                cert = Certificate { stack: live.stack.clone(), ..wait_for_records(pass, &live.arn).await? };
                cert.missing = missing_among(&sets, &cert.validation);
            }
            write_validation(pass, &spec.zone, &sets, &cert.missing).await?;
            cert.missing.clear();
            Ok(cert)
        })?;
        if cert.status != "ISSUED" {
            defer_issued(pass, &cert);
        }
        Ok(cert)
    }

    fn updated(live: &Certificate, _spec: &CertificateSpec) -> Certificate {
        Certificate { status: "ISSUED".into(), missing: Vec::new(), ..live.clone() }
    }

    fn remember(snapshot: &mut Snapshot, live: &Certificate) {
        if !is_known(&live.arn) {
            return;
        }
        let certs = snapshot.acm.certificates.get_or_insert_with(Vec::new);
        certs.retain(|c| c.arn != live.arn);
        certs.push(live.clone());
    }

    fn summary(live: &Certificate) -> String {
        let names = if live.alternative_names.is_empty() {
            String::new()
        } else {
            format!(" (+ {})", live.alternative_names.join(", "))
        };
        let expiry = live.not_after.as_deref().map(|t| format!(", expires {t}")).unwrap_or_default();
        format!("{}{names}, {}{expiry}", live.arn, live.status)
    }
}

/// Requests the certificate (DNS validation, tagged with the stack), waits for ACM to report its
/// validation records, writes the missing ones into the zone, and puts off the wait until it is
/// ISSUED to what needs it ([`ready`]): ACM validates it meanwhile.
async fn create(pass: &Pass, spec: &CertificateSpec, stack: &str) -> Result<Created<Certificate>> {
    let names = spec.names();
    let token = idempotency_token();
    let arn = pass
        .send(async |aws| {
            let tag = |k: &str, v: &str| {
                Tag::builder().key(k).value(v).build().map_err(|e| Error::Internal(format!("tag: {e}")))
            };
            let out = aws
                .acm
                .request_certificate()
                .domain_name(&spec.domain)
                .set_subject_alternative_names((!names.is_empty()).then(|| names.clone()))
                .validation_method(ValidationMethod::Dns)
                .idempotency_token(&token)
                .tags(tag(STACK_TAG, stack)?)
                .tags(tag("Name", &spec.domain)?)
                .send()
                .await
                .map_err(|e| aws_error("RequestCertificate", e))?;
            out.certificate_arn()
                .map(str::to_string)
                .ok_or_else(|| Error::missing("RequestCertificate", "CertificateArn"))
        })
        .await?;
    pass.log
        .say(&format!("  requested certificate {} ({arn}); validating by DNS in zone {}", spec.domain, spec.zone.name));
    let validating = async {
        // The zone's record sets (unless the run read them already) are read while ACM prepares
        // the validation records: neither needs the other.
        let (mut cert, sets) =
            tokio::try_join!(wait_for_records(pass, &arn), route53::zone_records_beside(pass, &spec.zone))?;
        cert.stack = Some(stack.to_string());
        cert.missing = missing_among(&sets, &cert.validation);
        write_validation(pass, &spec.zone, &sets, &cert.missing).await?;
        cert.missing.clear();
        Ok(cert)
    };
    match validating.await {
        Ok(cert) => {
            defer_issued(pass, &cert);
            Ok(Created::New(cert))
        }
        Err(err) => {
            // The certificate exists: what converges it next in this session (the statement run
            // again in the REPL) finds it and goes on with it, rather than requesting another one;
            // a later run finds it by its stack tag.
            let requested =
                Certificate { arn, status: "PENDING_VALIDATION".into(), ..Certificate::planned(spec, stack) };
            pass.remember_read(|s| Certificate::remember(s, &requested))?;
            Err(err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(domain: &str, alternative_names: &[&str]) -> CertificateSpec {
        CertificateSpec {
            domain: domain.into(),
            alternative_names: alternative_names.iter().map(|s| (*s).to_string()).collect(),
            zone: HostedZone { id: "Z1".into(), name: "example.com".into() },
        }
    }

    #[test]
    fn names_must_sit_in_the_zone_and_fit_the_quota() {
        assert!(validate(&spec("app.example.com", &["*.example.com", "example.com"])).is_ok());
        let err = validate(&spec("app.example.org", &[])).unwrap_err().to_string();
        assert!(err.contains("inside the hosted zone example.com"), "{err}");
        let err = validate(&spec("", &[])).unwrap_err().to_string();
        assert!(err.starts_with("invalid certificate.domain \"\""), "{err}");
        let many: Vec<String> = (0..10).map(|i| format!("n{i}.example.com")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let err = validate(&spec("app.example.com", &many)).unwrap_err().to_string();
        assert!(err.contains("at most 10 names"), "{err}");
    }

    #[test]
    fn tokens_are_fresh_and_fit_acm() {
        let a = idempotency_token();
        assert_ne!(a, idempotency_token(), "each request gets its own");
        // RequestCertificate's IdempotencyToken: 1 to 32 word characters.
        assert!(!a.is_empty() && a.len() <= 32 && a.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{a}");
    }
}
