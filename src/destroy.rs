//! `deckhand destroy`: finds everything tagged with a stack (no local state) and deletes it in
//! reverse dependency order, retrying while AWS still releases dependencies.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};

use crate::aws::Snapshot;
use crate::aws::acm;
use crate::aws::concurrently;
use crate::aws::ec2::{self, SecurityGroup};
use crate::aws::ecs::{self, EcsState, Service};
use crate::aws::egress::{self, RouteTable};
use crate::aws::elbv2;
use crate::aws::iam::{self};
use crate::aws::logs::{self};
use crate::aws::route53::{self, OwnedRecord};
use crate::error::{Error, Result};
use crate::runtime::Aws;

/// How often a long wait reports that it is still waiting.
const PROGRESS_EVERY: Duration = Duration::from_secs(30);

/// Resource kinds in the order they are deleted (dependents first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Route 53 record sets the stack owns (and their ownership markers), first: the name stops
    /// pointing at what is about to go away.
    DnsRecord,
    /// ECS services (scaled to 0, deleted, waited for until INACTIVE).
    Service,
    /// Task definition revisions (deregistered).
    TaskDefinition,
    /// ECS clusters, once their services are gone.
    Cluster,
    /// Listeners (before their load balancer and target groups).
    Listener,
    /// Load balancers (waited for until gone, which releases their network interfaces).
    LoadBalancer,
    /// Target groups, once no listener forwards to them.
    TargetGroup,
    /// ACM certificates, once no listener uses them.
    Certificate,
    /// NAT gateways (before their elastic IPs and subnets).
    NatGateway,
    /// Elastic IPs of NAT gateways.
    ElasticIp,
    /// VPC endpoints (before route tables and subnets).
    VpcEndpoint,
    /// Route tables (after disassociating subnets).
    RouteTable,
    /// Security groups (after revoking cross references).
    SecurityGroup,
    /// Subnets, last of the network.
    Subnet,
    /// CloudWatch log groups (only with `--delete-logs`; kept otherwise).
    LogGroup,
    /// IAM roles (after detaching and deleting their policies).
    Role,
}

impl Kind {
    /// The resource type as scripts name it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::DnsRecord => "dns_record",
            Kind::Certificate => "certificate",
            Kind::Service => "service",
            Kind::TaskDefinition => "task_definition",
            Kind::Cluster => "cluster",
            Kind::Listener => "listener",
            Kind::LoadBalancer => "load_balancer",
            Kind::TargetGroup => "target_group",
            Kind::NatGateway => "nat_gateway",
            Kind::ElasticIp => "elastic_ip",
            Kind::VpcEndpoint => "vpc_endpoint",
            Kind::RouteTable => "route_table",
            Kind::SecurityGroup => "security_group",
            Kind::Subnet => "subnet",
            Kind::LogGroup => "log_group",
            Kind::Role => "role",
        }
    }
}

/// One resource of the stack, to be deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doomed {
    /// What it is.
    pub kind: Kind,
    /// Its name (Name tag, or the name AWS knows it by).
    pub name: String,
    /// What identifies it to AWS: an id, an ARN, `family:revision`, or the name itself.
    pub id: String,
}

impl Doomed {
    /// The id as shown: the resource part of an ARN (`service/myapp/myapp`), else the id.
    fn short_id(&self) -> &str {
        if self.id.starts_with("arn:") { self.id.splitn(6, ':').nth(5).unwrap_or(&self.id) } else { &self.id }
    }
}

impl std::fmt::Display for Doomed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind.name(), self.name)?;
        let id = self.short_id();
        if id != self.name {
            write!(f, " ({id})")?;
        }
        Ok(())
    }
}

/// Everything of a stack, found by its tag, as one read.
pub struct StackContents {
    doomed: Vec<Doomed>,
    kept: Vec<(Doomed, String)>,
    groups: Vec<SecurityGroup>,
    route_tables: Vec<RouteTable>,
    services: Vec<Service>,
    records: Vec<OwnedRecord>,
    stack: String,
}

impl StackContents {
    /// Reads the stack's resources from every service (describe calls with the tag filter where
    /// AWS has one, tag lookups where it has none). Log groups are deleted only with
    /// `delete_logs`; otherwise they are listed as kept.
    pub fn find(aws: &Aws, stack: &str, delete_logs: bool) -> Result<StackContents> {
        let (snapshot, roles, log_groups, tagged_revisions, domains) = aws.block_on(async {
            tokio::try_join!(
                Snapshot::load(aws, stack),
                iam::stack_roles(aws, stack),
                logs::stack_log_groups(aws, stack),
                latest_revisions_of(aws, stack),
                acm::stack_domains(aws, stack),
            )
        })?;
        let services = aws.block_on(stack_services(aws, stack, &snapshot.ecs))?;
        let last_used = aws.block_on(concurrently(&roles, |role| iam::role_last_used(aws, &role.name)))?;
        let revisions = aws.block_on(stack_task_definitions(aws, stack, tagged_revisions, &services))?;

        let ours = |tag: &Option<String>| tag.as_deref() == Some(stack);
        let mut doomed = Vec::new();
        let named = |kind, name: Option<&str>, id: &str| Doomed {
            kind,
            name: name.unwrap_or("-").to_string(),
            id: id.to_string(),
        };
        for record in &domains.records {
            doomed.push(named(Kind::DnsRecord, Some(&record_label(record)), &record_id(record)));
        }
        for cert in &domains.certificates {
            doomed.push(named(Kind::Certificate, Some(&cert.domain), &cert.arn));
        }
        for service in &services {
            doomed.push(named(Kind::Service, Some(&service.name), &service.arn));
        }
        for (family, revision) in &revisions {
            doomed.push(named(Kind::TaskDefinition, Some(family), revision));
        }
        for cluster in snapshot.ecs.clusters.iter().filter(|c| ours(&c.stack) && c.status != "INACTIVE") {
            doomed.push(named(Kind::Cluster, Some(&cluster.name), &cluster.arn));
        }
        let elb = &snapshot.elbv2;
        for listener in &elb.listeners {
            let lb = elb.load_balancers.iter().find(|lb| lb.arn == listener.load_balancer_arn);
            let name = format!("{}:{}", lb.map_or("-", |lb| lb.name.as_str()), listener.port);
            doomed.push(named(Kind::Listener, Some(&name), &listener.arn));
        }
        for lb in &elb.load_balancers {
            doomed.push(named(Kind::LoadBalancer, Some(&lb.name), &lb.arn));
        }
        for tg in &elb.target_groups {
            doomed.push(named(Kind::TargetGroup, Some(&tg.name), &tg.arn));
        }
        for nat in &snapshot.egress.nat_gateways {
            doomed.push(named(Kind::NatGateway, Some(&nat.name), &nat.id));
        }
        for eip in &snapshot.egress.addresses {
            doomed.push(named(Kind::ElasticIp, Some(&eip.name), &eip.allocation_id));
        }
        for endpoint in snapshot.egress.endpoints.iter().filter(|e| ours(&e.stack)) {
            doomed.push(named(Kind::VpcEndpoint, endpoint.name.as_deref(), &endpoint.id));
        }
        let route_tables: Vec<RouteTable> =
            snapshot.egress.route_tables.into_iter().filter(|t| ours(&t.stack)).collect();
        for table in &route_tables {
            doomed.push(named(Kind::RouteTable, table.name.as_deref(), &table.id));
        }
        let groups: Vec<SecurityGroup> = snapshot.ec2.security_groups.into_iter().filter(|g| ours(&g.stack)).collect();
        for group in &groups {
            doomed.push(named(Kind::SecurityGroup, Some(&group.name), &group.id));
        }
        for subnet in snapshot.ec2.subnets.iter().filter(|s| ours(&s.stack)) {
            doomed.push(named(Kind::Subnet, subnet.name.as_deref(), &subnet.id));
        }
        let mut kept = Vec::new();
        for group in &log_groups {
            let entry = named(Kind::LogGroup, Some(&group.name), &group.name);
            if delete_logs { doomed.push(entry) } else { kept.push((entry, "--delete-logs deletes it".to_string())) }
        }
        let now = aws_smithy_types::DateTime::from(std::time::SystemTime::now());
        for (role, last_used) in roles.iter().zip(last_used) {
            let entry = named(Kind::Role, Some(&role.name), &role.name);
            match used_elsewhere(last_used, &aws.region, now) {
                Some(reason) => kept.push((entry, reason)),
                None => doomed.push(entry),
            }
        }
        // Stable: revisions of one family stay in numeric order.
        doomed.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
        kept.sort_by(|(a, _), (b, _)| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
        Ok(StackContents {
            doomed,
            kept,
            groups,
            route_tables,
            services,
            records: domains.records,
            stack: stack.to_string(),
        })
    }

    /// The resources to delete, in deletion order.
    pub fn resources(&self) -> &[Doomed] {
        &self.doomed
    }

    /// The resources found but kept, with why (log groups without `--delete-logs`, roles in use
    /// in another region).
    pub fn kept(&self) -> &[(Doomed, String)] {
        &self.kept
    }

    /// One line per resource found, in deletion order: `- kind name (id)` for each to delete,
    /// `= kind name (id) (kept; why)` for each kept.
    pub fn listing(&self) -> Vec<String> {
        let mut all: Vec<(&Doomed, Option<&str>)> = self
            .doomed
            .iter()
            .map(|d| (d, None))
            .chain(self.kept.iter().map(|(d, why)| (d, Some(why.as_str()))))
            .collect();
        all.sort_by_key(|(d, _)| d.kind);
        all.into_iter()
            .map(|(d, kept)| match kept {
                Some(why) => format!("= {d} (kept; {why})"),
                None => format!("- {d}"),
            })
            .collect()
    }

    /// Deletes everything in order, reporting each deletion and the progress of long waits; stops
    /// at the first failure with a report of what was and was not deleted. Services are deleted
    /// together and drain concurrently (each drain takes at least its target group's
    /// deregistration delay); everything else goes one by one.
    pub fn delete(&self, aws: &Aws, report: impl Fn(&str)) -> Result<usize> {
        let mut deleted: Vec<&Doomed> = Vec::new();
        let mut revoked = false;
        let mut rest = self.doomed.as_slice();
        while let Some(first) = rest.first() {
            let together = match first.kind {
                Kind::Service => rest.iter().take_while(|d| d.kind == Kind::Service).count(),
                _ => 1,
            };
            let (batch, after) = rest.split_at(together);
            let results = aws.block_on(async {
                if first.kind == Kind::SecurityGroup && !revoked {
                    ec2::revoke_group_references(aws, &self.groups).await?;
                    revoked = true;
                }
                let report = &report;
                let deletions = batch.iter().map(|doomed| async move {
                    let result = self.delete_one(aws, doomed, report).await;
                    if result.is_ok() {
                        report(&format!("- {doomed} deleted"));
                    }
                    result
                });
                Ok(futures_util::future::join_all(deletions).await)
            });
            // A failed revocation fails the (one) security group of its batch.
            let results = results.unwrap_or_else(|err: Error| vec![Err(err)]);
            let mut left: Vec<&Doomed> = Vec::new();
            let mut cause = None;
            for (doomed, result) in batch.iter().zip(results) {
                match result {
                    Ok(()) => deleted.push(doomed),
                    Err(err) => {
                        left.push(doomed);
                        cause.get_or_insert(err);
                    }
                }
            }
            if let Some(err) = cause {
                left.extend(after);
                return Err(failure_report(&err, &deleted, &left));
            }
            rest = after;
        }
        Ok(deleted.len())
    }

    async fn delete_one(&self, aws: &Aws, doomed: &Doomed, report: &impl Fn(&str)) -> Result<()> {
        let id = doomed.id.as_str();
        match doomed.kind {
            Kind::DnsRecord => {
                let record = self.records.iter().find(|r| record_id(r) == id).expect("listed above");
                route53::delete_record(aws, &self.stack, record).await
            }
            // ACM reports a certificate in use for a moment after its last listener is deleted.
            Kind::Certificate => {
                retry_while(doomed, report, "ResourceInUseException", async || acm::delete_certificate(aws, id).await)
                    .await
            }
            Kind::Service => {
                let service = self.services.iter().find(|s| s.arn == id).expect("listed above");
                // A DRAINING service was deleted by an earlier run: only wait for it.
                if service.status == "ACTIVE" {
                    ecs::delete_service(aws, &service.cluster_arn, id).await?;
                }
                let inactive = ecs::wait_service_inactive(aws, &service.cluster_arn, id);
                waiting(doomed, "it is INACTIVE (its tasks stopped)", report, inactive).await
            }
            Kind::TaskDefinition => ecs::deregister_task_definition(aws, id).await,
            Kind::Cluster => ecs::delete_cluster(aws, id).await,
            Kind::Listener => elbv2::delete_listener(aws, id).await,
            Kind::LoadBalancer => {
                elbv2::delete_load_balancer(aws, id).await?;
                waiting(doomed, "it is gone", report, elbv2::wait_load_balancer_deleted(aws, id)).await
            }
            // A target group stays in use for a moment after its load balancer is gone.
            Kind::TargetGroup => {
                retry_while(doomed, report, "ResourceInUse", async || elbv2::delete_target_group(aws, id).await).await
            }
            Kind::NatGateway => waiting(doomed, "it is deleted", report, egress::delete_nat_gateway(aws, id)).await,
            Kind::ElasticIp => egress::release_address(aws, id).await,
            Kind::VpcEndpoint => egress::delete_endpoint(aws, id).await,
            Kind::RouteTable => {
                let table = self.route_tables.iter().find(|t| t.id == id).expect("listed above");
                egress::delete_route_table(aws, table).await
            }
            Kind::SecurityGroup => {
                retry_while(doomed, report, "DependencyViolation", async || ec2::delete_security_group(aws, id).await)
                    .await
            }
            Kind::Subnet => {
                retry_while(doomed, report, "DependencyViolation", async || ec2::delete_subnet(aws, id).await).await
            }
            Kind::LogGroup => logs::delete_log_group(aws, id).await,
            Kind::Role => iam::delete_role(aws, id).await,
        }
    }
}

/// A record set as destroy lists it: `name TYPE (zone example.com)`.
fn record_label(record: &OwnedRecord) -> String {
    format!("{} {}", record.set.name, record.set.rtype)
}

/// What identifies a record set among the stack's: zone, name and type.
fn record_id(record: &OwnedRecord) -> String {
    format!("{}/{}/{}", record.zone_id, record.set.name, record.set.rtype)
}

/// The error of a destroy that stopped at `left[0]`: the cause, what was deleted, what was not.
fn failure_report(err: &Error, deleted: &[&Doomed], left: &[&Doomed]) -> Error {
    let list = |items: &[&Doomed]| items.iter().map(|d| format!("\n  {d}")).collect::<String>();
    let deleted = match deleted.len() {
        0 => "nothing deleted".to_string(),
        n => format!("deleted ({n}):{}", list(deleted)),
    };
    let failed = left.first().map(ToString::to_string).unwrap_or_default();
    Error::conflict(
        format!("deleting {failed} failed: {err}\n{deleted}\nnot deleted ({}):{}", left.len(), list(left)),
        Some("fix the cause, then run the same destroy again: it continues where it stopped"),
    )
}

/// The stack's ACTIVE services, in its own clusters (read with the snapshot) and in any other
/// ACTIVE cluster (a script may put a service into a cluster it does not own): one ListServices
/// per page and one DescribeServices per 10 services, per other cluster.
async fn stack_services(aws: &Aws, stack: &str, ecs: &EcsState) -> Result<Vec<Service>> {
    let others = ecs.clusters.iter().filter(|c| c.status == "ACTIVE" && !ecs.services.contains_key(&c.name));
    let elsewhere = concurrently(others, |cluster| ecs::services_in_cluster(aws, &cluster.arn)).await?;
    let mut services: Vec<Service> = ecs
        .services
        .values()
        .flatten()
        .cloned()
        .chain(elsewhere.into_iter().flatten())
        .filter(|s| s.stack.as_deref() == Some(stack) && s.status != "INACTIVE")
        .collect();
    services.sort_by(|a, b| (&a.name, &a.arn).cmp(&(&b.name, &b.arn)));
    Ok(services)
}

/// The latest ACTIVE revision (`family:revision`) of every family whose latest revision carries
/// the stack tag. ECS cannot list task definitions by tag: this lists the families with an ACTIVE
/// revision (ListTaskDefinitionFamilies, 100 a page) and describes the latest revision of each
/// with its tags: for F families, ceil(F/100) + F requests, [`crate::aws::LOOKUPS_AT_ONCE`] at a time.
async fn latest_revisions_of(aws: &Aws, stack: &str) -> Result<Vec<String>> {
    let families = ecs::active_families(aws).await?;
    let latest = concurrently(&families, |family| ecs::latest_task_definition(aws, family)).await?;
    Ok(latest.into_iter().flatten().filter(|t| t.stack.as_deref() == Some(stack)).map(|t| t.label()).collect())
}

/// The stack's ACTIVE task definition revisions as (family, `family:revision`), each family's in
/// numeric order. The families are those of `tagged` (latest revisions known to be the stack's)
/// and of the stack's services; every other ACTIVE revision of them is described for its tag (one
/// ListTaskDefinitions per family, one DescribeTaskDefinition per revision), so a revision
/// registered by hand into the stack's family is left alone.
async fn stack_task_definitions(
    aws: &Aws,
    stack: &str,
    tagged: Vec<String>,
    services: &[Service],
) -> Result<Vec<(String, String)>> {
    let family_of = |revision: &str| revision.rsplit_once(':').map(|(f, _)| f.to_string());
    let service_revisions = services.iter().filter_map(|s| s.task_definition.rsplit_once("task-definition/"));
    let families: BTreeSet<String> =
        tagged.iter().filter_map(|r| family_of(r)).chain(service_revisions.filter_map(|(_, r)| family_of(r))).collect();
    let listed = concurrently(&families, |family| ecs::active_revisions(aws, family)).await?;
    let unknown: Vec<String> = listed.into_iter().flatten().filter(|r| !tagged.contains(r)).collect();
    let described = concurrently(&unknown, |revision| ecs::describe_task_definition(aws, revision)).await?;
    let ours =
        described.into_iter().flatten().filter(|(_, t)| t.stack.as_deref() == Some(stack)).map(|(_, t)| t.label());
    let mut revisions: Vec<(String, String)> =
        tagged.iter().cloned().chain(ours).filter_map(|r| Some((family_of(&r)?, r))).collect();
    let number = |revision: &str| revision.rsplit_once(':').and_then(|(_, n)| n.parse::<u32>().ok()).unwrap_or(0);
    revisions.sort_by(|a, b| (&a.0, number(&a.1)).cmp(&(&b.0, number(&b.1))));
    revisions.dedup();
    Ok(revisions)
}

/// Awaits `wait` (an SDK waiter), reporting that it waits and then, every [`PROGRESS_EVERY`], that
/// it still does.
async fn waiting<T>(
    doomed: &Doomed,
    until: &str,
    report: &impl Fn(&str),
    wait: impl Future<Output = Result<T>>,
) -> Result<T> {
    report(&format!("  {doomed}: waiting until {until}"));
    let started = Instant::now();
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + PROGRESS_EVERY, PROGRESS_EVERY);
    let mut wait = std::pin::pin!(wait);
    loop {
        tokio::select! {
            result = &mut wait => return result,
            _ = ticks.tick() => {
                report(&format!("  {doomed}: still waiting until {until} ({} s)", started.elapsed().as_secs()));
            }
        }
    }
}

/// IAM roles are global while stacks are regional: a role last used in another region within
/// [`RECENT_USE_DAYS`] may serve a stack of the same name there, so destroy keeps it and says why.
fn used_elsewhere(
    last_used: Option<(String, aws_smithy_types::DateTime)>,
    region: &str,
    now: aws_smithy_types::DateTime,
) -> Option<String> {
    let (used_in, at) = last_used?;
    let recent = now.secs() - at.secs() <= RECENT_USE_DAYS * 86_400;
    (used_in != region && recent).then(|| {
        let day = at.fmt(aws_smithy_types::date_time::Format::DateTime).unwrap_or_default();
        format!(
            "last used in {used_in} on {}: IAM roles are global, a stack of this name there may need it; \
             delete it by hand if not",
            day.get(..10).unwrap_or(&day)
        )
    })
}

/// How recent a use in another region keeps a role (see [`used_elsewhere`]).
const RECENT_USE_DAYS: i64 = 90;

/// Retries `delete` while AWS answers `code` (e.g. `DependencyViolation`: network interfaces of
/// stopped tasks or a deleted load balancer are still being released), with backoff (2 s
/// doubling to 30 s), for up to 15 minutes. The SDK's own retry cannot serve here: it retries
/// transient and throttling errors for seconds, while these are successful answers saying a
/// dependency still exists, which AWS takes minutes to release.
async fn retry_while(
    doomed: &Doomed,
    report: &impl Fn(&str),
    code: &str,
    delete: impl AsyncFn() -> Result<()>,
) -> Result<()> {
    let backoff = ExponentialBuilder::new()
        .with_min_delay(Duration::from_secs(2))
        .with_max_delay(Duration::from_secs(30))
        .with_total_delay(Some(Duration::from_secs(900)))
        .without_max_times();
    (|| delete())
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(|err: &crate::Error| err.aws_code() == Some(code))
        .notify(|_, delay| report(&format!("  {doomed} is still in use; retrying in {} s", delay.as_secs())))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws_error(code: &str) -> Error {
        Error::Aws { operation: "DeleteSubnet".into(), code: code.into(), message: "in use".into(), hint: None }
    }

    #[test]
    fn deletes_are_retried_while_aws_says_in_use_and_other_errors_end_at_once() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let doomed = doomed(Kind::Subnet, "myapp-a", "subnet-1");
        let reports = std::cell::RefCell::new(Vec::new());
        let report = |line: &str| reports.borrow_mut().push(line.to_string());
        let attempts = std::cell::Cell::new(0);
        let in_use_once = async || {
            attempts.set(attempts.get() + 1);
            if attempts.get() == 1 { Err(aws_error("DependencyViolation")) } else { Ok(()) }
        };
        runtime.block_on(retry_while(&doomed, &report, "DependencyViolation", in_use_once)).unwrap();
        assert_eq!(attempts.get(), 2);
        assert_eq!(reports.take(), ["  subnet myapp-a (subnet-1) is still in use; retrying in 2 s"]);

        attempts.set(0);
        let denied = async || {
            attempts.set(attempts.get() + 1);
            Err(aws_error("UnauthorizedOperation"))
        };
        let err = runtime.block_on(retry_while(&doomed, &report, "DependencyViolation", denied)).unwrap_err();
        assert_eq!((attempts.get(), err.aws_code()), (1, Some("UnauthorizedOperation")));
        assert!(reports.take().is_empty());
    }

    #[test]
    fn a_role_recently_used_in_another_region_is_kept() {
        use aws_smithy_types::DateTime;
        let now = DateTime::from_secs(1_800_000_000);
        let days_ago = |d: i64| DateTime::from_secs(1_800_000_000 - d * 86_400);
        let why = used_elsewhere(Some(("us-east-1".into(), days_ago(3))), "us-west-2", now).expect("kept");
        assert!(why.starts_with("last used in us-east-1 on 2027-01-12: IAM roles are global"), "{why}");
        assert_eq!(used_elsewhere(Some(("us-west-2".into(), days_ago(3))), "us-west-2", now), None, "used here");
        assert_eq!(used_elsewhere(Some(("us-east-1".into(), days_ago(200))), "us-west-2", now), None, "long ago");
        assert_eq!(used_elsewhere(None, "us-west-2", now), None, "never used");
    }

    fn doomed(kind: Kind, name: &str, id: &str) -> Doomed {
        Doomed { kind, name: name.into(), id: id.into() }
    }

    #[test]
    fn arns_show_their_resource_part_and_names_show_once() {
        let service = doomed(Kind::Service, "web", "arn:aws:ecs:us-west-2:123456789012:service/web/web");
        assert_eq!(service.to_string(), "service web (service/web/web)");
        let group = doomed(Kind::LogGroup, "/ecs/web", "/ecs/web");
        assert_eq!(group.to_string(), "log_group /ecs/web");
        let revision = doomed(Kind::TaskDefinition, "web", "web:3");
        assert_eq!(revision.to_string(), "task_definition web (web:3)");
        assert_eq!(doomed(Kind::Subnet, "web-a", "subnet-1").to_string(), "subnet web-a (subnet-1)");
    }

    #[test]
    fn a_failure_midway_names_the_cause_what_was_deleted_and_what_was_not() {
        let all = [
            doomed(Kind::Service, "web", "arn:aws:ecs:us-west-2:123456789012:service/web/web"),
            doomed(Kind::Cluster, "web", "arn:aws:ecs:us-west-2:123456789012:cluster/web"),
            doomed(Kind::Subnet, "web-a", "subnet-1"),
        ];
        let cause = Error::Aws {
            operation: "DeleteCluster".into(),
            code: "ClusterContainsServicesException".into(),
            message: "The Cluster cannot be deleted while Services are active.".into(),
            hint: None,
        };
        let all: Vec<&Doomed> = all.iter().collect();
        let text = failure_report(&cause, &all[..1], &all[1..]).to_string();
        assert_eq!(
            text,
            "deleting cluster web (cluster/web) failed: DeleteCluster failed: ClusterContainsServicesException: \
             The Cluster cannot be deleted while Services are active.\n\
             deleted (1):\n  service web (service/web/web)\n\
             not deleted (2):\n  cluster web (cluster/web)\n  subnet web-a (subnet-1)\n  \
             hint: fix the cause, then run the same destroy again: it continues where it stopped"
        );
        let first = failure_report(&cause, &[], &all).to_string();
        assert!(first.contains("\nnothing deleted\nnot deleted (3):\n  service web"), "{first}");
    }

    #[test]
    fn kinds_delete_dependents_first() {
        assert!(Kind::Service < Kind::TaskDefinition && Kind::TaskDefinition < Kind::Cluster);
        assert!(Kind::Listener < Kind::LoadBalancer && Kind::LoadBalancer < Kind::TargetGroup);
        assert!(Kind::TargetGroup < Kind::NatGateway && Kind::SecurityGroup < Kind::Subnet);
        assert!(Kind::Subnet < Kind::LogGroup && Kind::LogGroup < Kind::Role);
    }
}
