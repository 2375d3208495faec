//! One stack inventory: everything a stack owns, found by its `deckhand:stack` tag (no local
//! state), with kind, name, id and deletion order. `status` shows it, `destroy` deletes it, and
//! `run` removes what of it the script no longer declares; all three read it here, so they agree.

use std::collections::{BTreeSet, HashMap};

use crate::aws::acm::{self, Certificate, StackDomains};
use crate::aws::autoscaling::ScalableTarget;
use crate::aws::ec2::SecurityGroup;
use crate::aws::ecs::{self, EcsState, Service, TaskDefinition};
use crate::aws::egress::RouteTable;
use crate::aws::iam::{self, RoleSummary};
use crate::aws::logs::{self, LogGroup};
use crate::aws::route53::{self, OwnedRecord};
use crate::aws::{Snapshot, concurrently};
use crate::error::Result;
use crate::runtime::Aws;

/// Resource kinds in the order they are deleted (dependents first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Route 53 record sets the stack owns (and their ownership markers), first: the name stops
    /// pointing at what is about to go away.
    DnsRecord,
    /// Scalable targets of services and their scaling policies (before the services, so the
    /// scaler does not act on a service being deleted).
    Autoscaling,
    /// ECS services (scaled to 0, deleted, waited for until INACTIVE).
    Service,
    /// Task definition revisions (deregistered).
    TaskDefinition,
    /// ECS clusters, once their services are gone.
    Cluster,
    /// Listener rules (before their listener and the target groups they forward to).
    ListenerRule,
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
    /// The resource type as scripts (and the change log) name it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::DnsRecord => "dns_record",
            Kind::Autoscaling => "autoscaling",
            Kind::Service => "service",
            Kind::TaskDefinition => "task_definition",
            Kind::Cluster => "cluster",
            Kind::ListenerRule => "listener_rule",
            Kind::Listener => "listener",
            Kind::LoadBalancer => "load_balancer",
            Kind::TargetGroup => "target_group",
            Kind::Certificate => "certificate",
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

/// One resource of the stack.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Entry {
    /// What it is.
    pub kind: Kind,
    /// Its name as the script declares it (Name tag, the name AWS knows it by, `lb:port` for a
    /// listener, the family for a task definition revision).
    pub name: String,
    /// What identifies it to AWS: an id, an ARN, `family:revision`, or the name itself.
    pub id: String,
    /// The declaration that declares it too (kind and name), when it is part of another: an
    /// elastic IP is declared with its NAT gateway, a certificate's validation record with the
    /// certificate, an ownership marker with the records of its name.
    pub part_of: Option<(Kind, String)>,
}

impl Entry {
    /// The id as shown: the resource part of an ARN (`service/myapp/myapp`), else the id.
    pub fn short_id(&self) -> &str {
        super::arn::short_id(&self.id)
    }
}

impl std::fmt::Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind.name(), self.name)?;
        let id = self.short_id();
        if id != self.name {
            write!(f, " ({id})")?;
        }
        Ok(())
    }
}

/// Everything a stack owns, read in one go, with the reads it came from (for status details and
/// for deleting: a route table's associations, a security group's rules, a service's cluster).
#[derive(Debug, Clone)]
pub struct Inventory {
    /// The stack's name.
    pub stack: String,
    /// Every resource, in deletion order (dependents first; revisions of a family in numeric order).
    pub entries: Vec<Entry>,
    /// The snapshot read with it (region-wide parts such as route tables are not all the stack's;
    /// the fields below and `entries` are).
    pub snapshot: Snapshot,
    /// The stack's ACTIVE or DRAINING services, in its clusters and in any other.
    pub services: Vec<Service>,
    /// The stack's Route 53 record sets (with their ownership markers and its certificates'
    /// validation records).
    pub records: Vec<OwnedRecord>,
    /// The stack's ACM certificates.
    pub certificates: Vec<Certificate>,
    /// The scalable targets of the stack's services.
    pub scalable_targets: Vec<ScalableTarget>,
    /// The stack's security groups.
    pub security_groups: Vec<SecurityGroup>,
    /// The stack's route tables.
    pub route_tables: Vec<RouteTable>,
    /// The stack's IAM roles.
    pub roles: Vec<RoleSummary>,
    /// The stack's log groups.
    pub log_groups: Vec<LogGroup>,
    /// Roles recently used in another region, with why that keeps them (by role name).
    pub roles_used_elsewhere: HashMap<String, String>,
}

impl Inventory {
    /// Reads the stack's resources from every service (describe calls with the tag filter where
    /// AWS has one, tag lookups where it has none), concurrently where one read does not need
    /// another.
    pub async fn read(aws: &Aws, stack: &str) -> Result<Inventory> {
        Self::read_with(aws, stack, None, None, true).await
    }

    /// [`Inventory::read`], reusing `snapshot` (a run's reads of the stack, as its plan pass
    /// found them) instead of reading it again when given. With `declared` (what a run's script
    /// declares, kind and name), it reads only what a run may delete, so a no-op run costs little
    /// more than its plan: task definitions only of the services the script dropped (not every
    /// family in the account: a declared family keeps its revisions), and the roles and log
    /// groups those name.
    pub async fn read_with(
        aws: &Aws,
        stack: &str,
        snapshot: Option<Snapshot>,
        declared: Option<&BTreeSet<(String, String)>>,
        with_logs: bool,
    ) -> Result<Inventory> {
        let snapshot = async {
            match snapshot {
                Some(snapshot) => Ok(snapshot),
                None => Snapshot::load(aws, stack).await,
            }
        };
        let tagged_revisions = async {
            match declared {
                Some(_) => Ok(Vec::new()),
                None => latest_revisions_of(aws, stack).await,
            }
        };
        // IAM and CloudWatch Logs cannot list by tag: finding a stack's roles and log groups reads
        // every role's and group's tags. A run (`declared`) does not pay that on every no-op: it
        // finds them through the task definitions of the services it dropped (below), and reads
        // every log group only when asked to delete them.
        let roles = async {
            match declared {
                Some(_) => Ok(Vec::new()),
                None => iam::stack_roles(aws, stack).await,
            }
        };
        let log_groups = async {
            match (declared, with_logs) {
                (Some(_), false) => Ok(Vec::new()),
                _ => logs::stack_log_groups(aws, stack).await,
            }
        };
        let (snapshot, roles, log_groups, tagged_revisions) =
            tokio::try_join!(snapshot, roles, log_groups, tagged_revisions)?;
        let is_declared = |kind: Kind, name: &str| declared.is_some_and(|d| declares(d, kind, name));
        // Route 53 cannot list records by tag: finding the stack's reads every public zone's record
        // sets. A run pays that only when its stack has a certificate (tagging API) or its script
        // names records or certificates; destroy and status always do.
        let uses_route53 = declared.is_none_or(|d| {
            !snapshot.tagged.arns("acm", "certificate").is_empty()
                || d.iter().any(|(kind, _)| kind == Kind::DnsRecord.name() || kind == Kind::Certificate.name())
        });
        let domains =
            async { if uses_route53 { acm::stack_domains(aws, stack).await } else { Ok(StackDomains::default()) } };
        let asked: Vec<&RoleSummary> = roles.iter().filter(|r| !is_declared(Kind::Role, &r.name)).collect();
        let (services, last_used, domains) = tokio::try_join!(
            stack_services(aws, stack, &snapshot.ecs),
            concurrently(&asked, |role| iam::role_last_used(aws, &role.name)),
            domains,
        )?;
        let dropped: Vec<Service> = services.iter().filter(|s| !is_declared(Kind::Service, &s.name)).cloned().collect();
        let (revisions, named) = stack_task_definitions(aws, stack, tagged_revisions, &dropped).await?;
        // A run lists no roles (IAM cannot list by tag): the roles it may delete are those its
        // dropped services' task definitions name, when they are the stack's and no longer declared.
        // One GetRole each tells the owner and the last use.
        let (dropped_roles, dropped_last_used): (Vec<RoleSummary>, Vec<_>) = match declared {
            None => (Vec::new(), Vec::new()),
            Some(_) => {
                let names: BTreeSet<&str> = named
                    .roles
                    .iter()
                    .filter_map(|arn| crate::aws::arn::Arn::of_type(arn, "iam", "role").map(|arn| arn.last_segment()))
                    .filter(|name| !is_declared(Kind::Role, name))
                    .collect();
                let found = concurrently(&names, |name| iam::get_role(aws, name)).await?;
                found
                    .into_iter()
                    .flatten()
                    .filter(|role| iam::stack_of(role).as_deref() == Some(stack))
                    .map(|role| (RoleSummary::of(&role), iam::last_used(&role)))
                    .unzip()
            }
        };
        // Likewise the log groups they name (kept unless --delete-logs, which reads them all).
        let dropped_groups = match (declared, with_logs) {
            (Some(_), false) => {
                let names: Vec<&String> =
                    named.log_groups.iter().filter(|name| !is_declared(Kind::LogGroup, name)).collect();
                let found = concurrently(&names, |name| logs::fetch_log_group(aws, name)).await?;
                found.into_iter().flatten().filter(|g| g.stack.as_deref() == Some(stack)).collect()
            }
            _ => Vec::new(),
        };
        let log_groups: Vec<LogGroup> = log_groups.into_iter().chain(dropped_groups).collect();

        // Every entry is checked against the stack tag here, also where the read already filtered
        // by it: the inventory decides what destroy and run delete, so it never trusts a filter
        // alone with another stack's resources.
        let ours = |tag: &Option<String>| tag.as_deref() == Some(stack);
        let mut entries = Vec::new();
        let mut add = |kind, name: Option<&str>, id: &str, part_of: Option<(Kind, String)>| {
            entries.push(Entry { kind, name: name.unwrap_or("-").to_string(), id: id.to_string(), part_of });
        };
        for record in &domains.records {
            let set = &record.set;
            let validates = domains.certificates.iter().find(|c| {
                set.rtype == "CNAME"
                    && c.validation.iter().any(|v| route53::normalise(&v.name) == route53::normalise(&set.name))
            });
            let part_of = match (validates, set.name.strip_prefix("_deckhand.")) {
                (Some(cert), _) => Some((Kind::Certificate, cert.domain.clone())),
                (None, Some(named)) => {
                    let named = named.strip_prefix("_wildcard.").map_or(named.to_string(), |rest| format!("*.{rest}"));
                    Some((Kind::DnsRecord, format!("{} *", route53::normalise(&named))))
                }
                (None, None) => None,
            };
            add(Kind::DnsRecord, Some(&record_label(record)), &record_id(record), part_of);
        }
        let scalable_targets: Vec<ScalableTarget> =
            services.iter().filter_map(|s| snapshot.scaling.of(&s.cluster, &s.name).cloned()).collect();
        for target in &scalable_targets {
            add(Kind::Autoscaling, Some(target.resource_id.trim_start_matches("service/")), &target.resource_id, None);
        }
        for service in &services {
            add(Kind::Service, Some(&service.name), &service.arn, None);
        }
        for (family, revision) in &revisions {
            add(Kind::TaskDefinition, Some(family), revision, None);
        }
        for cluster in snapshot.ecs.clusters.iter().filter(|c| ours(&c.stack) && c.status != "INACTIVE") {
            add(Kind::Cluster, Some(&cluster.name), &cluster.arn, None);
        }
        let elb = &snapshot.elbv2;
        let listener_name = |arn: &str| {
            let listener = elb.listeners.iter().find(|l| l.arn == arn);
            let lb = listener.and_then(|l| elb.load_balancers.iter().find(|lb| lb.arn == l.load_balancer_arn));
            format!("{}:{}", lb.map_or("-", |lb| lb.name.as_str()), listener.map_or(0, |l| l.port))
        };
        for rule in &elb.rules {
            add(
                Kind::ListenerRule,
                Some(&format!("{}#{}", listener_name(&rule.listener_arn), rule.priority)),
                &rule.arn,
                None,
            );
        }
        for listener in &elb.listeners {
            add(Kind::Listener, Some(&listener_name(&listener.arn)), &listener.arn, None);
        }
        for lb in &elb.load_balancers {
            add(Kind::LoadBalancer, Some(&lb.name), &lb.arn, None);
        }
        for tg in &elb.target_groups {
            add(Kind::TargetGroup, Some(&tg.name), &tg.arn, None);
        }
        for cert in &domains.certificates {
            add(Kind::Certificate, Some(&cert.domain), &cert.arn, None);
        }
        for nat in snapshot.egress.nat_gateways.iter().filter(|n| ours(&n.stack)) {
            add(Kind::NatGateway, Some(&nat.name), &nat.id, None);
        }
        for eip in &snapshot.egress.addresses {
            // Declared with the NAT gateway that uses it, else with the one it is named after (an
            // address allocated for a NAT gateway whose creation failed).
            let nat =
                snapshot.egress.nat_gateways.iter().find(|n| ours(&n.stack) && n.allocation_id == eip.allocation_id);
            let part_of = Some((Kind::NatGateway, nat.map_or(&eip.name, |n| &n.name).clone()));
            add(Kind::ElasticIp, Some(&eip.name), &eip.allocation_id, part_of);
        }
        for endpoint in snapshot.egress.endpoints.iter().filter(|e| ours(&e.stack)) {
            add(Kind::VpcEndpoint, endpoint.name.as_deref(), &endpoint.id, None);
        }
        let route_tables: Vec<RouteTable> =
            snapshot.egress.route_tables.iter().filter(|t| ours(&t.stack)).cloned().collect();
        for table in &route_tables {
            add(Kind::RouteTable, table.name.as_deref(), &table.id, None);
        }
        let security_groups: Vec<SecurityGroup> =
            snapshot.ec2.security_groups.iter().filter(|g| ours(&g.stack)).cloned().collect();
        for group in &security_groups {
            add(Kind::SecurityGroup, Some(&group.name), &group.id, None);
        }
        for subnet in snapshot.ec2.subnets.iter().filter(|s| ours(&s.stack)) {
            add(Kind::Subnet, subnet.name.as_deref(), &subnet.id, None);
        }
        for group in &log_groups {
            add(Kind::LogGroup, Some(&group.name), &group.name, None);
        }
        for role in roles.iter().chain(&dropped_roles) {
            add(Kind::Role, Some(&role.name), &role.name, None);
        }
        // Stable: revisions of one family stay in numeric order. Parts after the rest of their
        // kind: an ownership marker goes after the records it marks.
        entries.sort_by(|a, b| (a.kind, a.part_of.is_some(), &a.name).cmp(&(b.kind, b.part_of.is_some(), &b.name)));

        let now = aws_smithy_types::DateTime::from(std::time::SystemTime::now());
        let roles_used_elsewhere = asked
            .iter()
            .copied()
            .zip(last_used)
            .chain(dropped_roles.iter().zip(dropped_last_used))
            .filter_map(|(role, last_used)| Some((role.name.clone(), used_elsewhere(last_used, &aws.region, now)?)))
            .collect();
        let roles = roles.into_iter().chain(dropped_roles).collect();
        Ok(Inventory {
            stack: stack.to_string(),
            entries,
            snapshot,
            services,
            records: domains.records,
            certificates: domains.certificates,
            scalable_targets,
            security_groups,
            route_tables,
            roles,
            log_groups,
            roles_used_elsewhere,
        })
    }

    /// True when the entry carries the keep mark of `keep: true`, or is part of one that does
    /// (a NAT gateway's elastic IP).
    pub fn is_marked(&self, entry: &Entry) -> bool {
        let marked = |e: &Entry| self.snapshot.tagged.is_marked(&e.id);
        marked(entry)
            || entry.part_of.as_ref().is_some_and(|(kind, name)| {
                self.entries.iter().any(|e| e.kind == *kind && e.name == *name && marked(e))
            })
    }

    /// Why an entry stays even when it would be deleted (log groups without `delete_logs`, roles
    /// in use in another region); `None` when nothing keeps it.
    pub fn kept_because(&self, entry: &Entry, delete_logs: bool) -> Option<String> {
        match entry.kind {
            Kind::LogGroup if !delete_logs => Some("--delete-logs deletes it".to_string()),
            Kind::Role => self.roles_used_elsewhere.get(&entry.name).cloned(),
            _ => None,
        }
    }

    /// The entries a script that declared `declared` (kind and name, as the change log records
    /// them) no longer declares, in deletion order. A declared task definition family keeps all
    /// its revisions (see [`Inventory::older_revisions`]).
    pub fn undeclared<'a>(&'a self, declared: &BTreeSet<(String, String)>) -> Vec<&'a Entry> {
        self.entries
            .iter()
            .filter(|e| {
                !declares(declared, e.kind, &e.name)
                    && !e.part_of.as_ref().is_some_and(|(kind, name)| declares(declared, *kind, name))
            })
            .collect()
    }

    /// The revisions of declared task definition families other than their latest, which ECS
    /// keeps (deregistering only makes a revision INACTIVE) and a rollback may use.
    pub fn older_revisions<'a>(&'a self, declared: &BTreeSet<(String, String)>) -> Vec<&'a Entry> {
        let revisions: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| e.kind == Kind::TaskDefinition && declares(declared, e.kind, &e.name))
            .collect();
        // Revisions are in numeric order within a family: the last of each is its latest.
        revisions
            .iter()
            .enumerate()
            .filter(|(i, e)| revisions.get(i + 1).is_some_and(|next| next.name == e.name))
            .map(|(_, e)| *e)
            .collect()
    }
}

/// Whether a script that declared `declared` (kind and name, as the change log records them)
/// declares the `kind` named `name`.
fn declares(declared: &BTreeSet<(String, String)>, kind: Kind, name: &str) -> bool {
    declared.contains(&(kind.name().to_string(), name.to_string()))
}

/// A record set as listed: `name TYPE`, the name as Route 53 compares it.
fn record_label(record: &OwnedRecord) -> String {
    format!("{} {}", route53::normalise(&record.set.name), record.set.rtype)
}

/// What identifies a record set among the stack's: zone, name and type.
pub fn record_id(record: &OwnedRecord) -> String {
    format!("{}/{}/{}", record.zone_id, record.set.name, record.set.rtype)
}

/// The stack's ACTIVE services, in its own clusters (read with the snapshot) and in any other
/// ACTIVE cluster (a script may put a service into a cluster it does not own): one ListServices
/// per page and one DescribeServices per 10 services, per other cluster. A run's snapshot found
/// them by tag already, in any cluster (`stack_services`): no request then.
async fn stack_services(aws: &Aws, stack: &str, ecs: &EcsState) -> Result<Vec<Service>> {
    if let Some(found) = &ecs.stack_services {
        return Ok(found
            .iter()
            .filter(|s| s.stack.as_deref() == Some(stack) && s.status != "INACTIVE")
            .cloned()
            .collect());
    }
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
/// registered by hand into the stack's family is left alone. With them, what the described
/// revisions name.
async fn stack_task_definitions(
    aws: &Aws,
    stack: &str,
    tagged: Vec<String>,
    services: &[Service],
) -> Result<(Vec<(String, String)>, NamedByTasks)> {
    let family_of = |revision: &str| revision.rsplit_once(':').map(|(f, _)| f.to_string());
    let service_revisions = services.iter().filter_map(|s| s.task_definition.rsplit_once("task-definition/"));
    let families: BTreeSet<String> =
        tagged.iter().filter_map(|r| family_of(r)).chain(service_revisions.filter_map(|(_, r)| family_of(r))).collect();
    let listed = concurrently(&families, |family| ecs::active_revisions(aws, family)).await?;
    let unknown: Vec<String> = listed.into_iter().flatten().filter(|r| !tagged.contains(r)).collect();
    let described = concurrently(&unknown, |revision| ecs::describe_task_definition(aws, revision)).await?;
    let described: Vec<TaskDefinition> =
        described.into_iter().flatten().map(|(_, t)| t).filter(|t| t.stack.as_deref() == Some(stack)).collect();
    let named = NamedByTasks {
        roles: described
            .iter()
            .flat_map(|t| [&t.spec.execution_role, &t.spec.task_role])
            .flatten()
            .filter(|arn| arn.starts_with("arn:"))
            .cloned()
            .collect(),
        log_groups: described
            .iter()
            .flat_map(|t| &t.spec.containers)
            .filter_map(|c| c.logs.as_ref().map(|l| l.group.clone()))
            .collect(),
    };
    let ours = described.iter().map(TaskDefinition::label);
    let mut revisions: Vec<(String, String)> =
        tagged.iter().cloned().chain(ours).filter_map(|r| Some((family_of(&r)?, r))).collect();
    let number = |revision: &str| revision.rsplit_once(':').and_then(|(_, n)| n.parse::<u32>().ok()).unwrap_or(0);
    revisions.sort_by(|a, b| (&a.0, number(&a.1)).cmp(&(&b.0, number(&b.1))));
    revisions.dedup();
    Ok((revisions, named))
}

/// What task definition revisions name: their roles (ARNs) and their containers' log groups.
#[derive(Debug, Default)]
struct NamedByTasks {
    roles: BTreeSet<String>,
    log_groups: BTreeSet<String>,
}

/// IAM roles are global while stacks are regional: a role last used in another region within
/// [`RECENT_USE_DAYS`] may serve a stack of the same name there, so it is kept, saying why.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: Kind, name: &str, id: &str) -> Entry {
        Entry { kind, name: name.into(), id: id.into(), part_of: None }
    }

    fn part_of(entry: Entry, kind: Kind, name: &str) -> Entry {
        Entry { part_of: Some((kind, name.into())), ..entry }
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

    #[test]
    fn arns_show_their_resource_part_and_names_show_once() {
        let service = entry(Kind::Service, "web", "arn:aws:ecs:us-west-2:123456789012:service/web/web");
        assert_eq!(service.to_string(), "service web (service/web/web)");
        let group = entry(Kind::LogGroup, "/ecs/web", "/ecs/web");
        assert_eq!(group.to_string(), "log_group /ecs/web");
        let revision = entry(Kind::TaskDefinition, "web", "web:3");
        assert_eq!(revision.to_string(), "task_definition web (web:3)");
        assert_eq!(entry(Kind::Subnet, "web-a", "subnet-1").to_string(), "subnet web-a (subnet-1)");
    }

    #[test]
    fn kinds_delete_dependents_first() {
        assert!(Kind::DnsRecord < Kind::Autoscaling && Kind::Autoscaling < Kind::Service);
        assert!(Kind::Service < Kind::TaskDefinition && Kind::TaskDefinition < Kind::Cluster);
        assert!(Kind::ListenerRule < Kind::Listener && Kind::TargetGroup < Kind::Certificate);
        assert!(Kind::Listener < Kind::LoadBalancer && Kind::LoadBalancer < Kind::TargetGroup);
        assert!(Kind::TargetGroup < Kind::NatGateway && Kind::NatGateway < Kind::ElasticIp);
        assert!(Kind::SecurityGroup < Kind::Subnet);
        assert!(Kind::Subnet < Kind::LogGroup && Kind::LogGroup < Kind::Role);
    }

    fn inventory(entries: Vec<Entry>) -> Inventory {
        Inventory {
            stack: "web".into(),
            entries,
            snapshot: Snapshot::default(),
            records: Vec::new(),
            certificates: Vec::new(),
            scalable_targets: Vec::new(),
            services: Vec::new(),
            security_groups: Vec::new(),
            route_tables: Vec::new(),
            roles: Vec::new(),
            log_groups: Vec::new(),
            roles_used_elsewhere: HashMap::new(),
        }
    }

    #[test]
    fn a_marked_nat_gateway_keeps_its_elastic_ip_too() {
        let mut inv = inventory(vec![
            entry(Kind::NatGateway, "web-nat", "nat-1"),
            part_of(entry(Kind::ElasticIp, "web-eip", "eipalloc-1"), Kind::NatGateway, "web-nat"),
            entry(Kind::NatGateway, "old-nat", "nat-2"),
            part_of(entry(Kind::ElasticIp, "old-eip", "eipalloc-2"), Kind::NatGateway, "old-nat"),
        ]);
        inv.snapshot.tagged = crate::aws::tagged::StackTagged::marked(["nat-1"]);
        let marked: Vec<bool> = inv.entries.iter().map(|e| inv.is_marked(e)).collect();
        assert_eq!(marked, [true, true, false, false]);
    }

    #[test]
    fn what_the_script_no_longer_declares_is_undeclared_and_an_elastic_ip_goes_with_its_nat_gateway() {
        let inv = inventory(vec![
            entry(Kind::Listener, "web:443", "arn:l443"),
            entry(Kind::Listener, "web:80", "arn:l80"),
            entry(Kind::TaskDefinition, "web", "web:1"),
            entry(Kind::TaskDefinition, "web", "web:2"),
            entry(Kind::NatGateway, "web-nat", "nat-1"),
            part_of(entry(Kind::ElasticIp, "web-eip", "eipalloc-1"), Kind::NatGateway, "web-nat"),
            part_of(entry(Kind::ElasticIp, "web-eip2", "eipalloc-2"), Kind::NatGateway, "web-nat2"),
            part_of(
                entry(Kind::DnsRecord, "_x.app.example.com CNAME", "z/_x/CNAME"),
                Kind::Certificate,
                "app.example.com",
            ),
            entry(Kind::DnsRecord, "app.example.com A", "z/app/A"),
            entry(Kind::DnsRecord, "old.example.com A", "z/old/A"),
            part_of(
                entry(Kind::DnsRecord, "_deckhand.app.example.com TXT", "z/m/TXT"),
                Kind::DnsRecord,
                "app.example.com *",
            ),
            part_of(
                entry(Kind::DnsRecord, "_deckhand.old.example.com TXT", "z/m2/TXT"),
                Kind::DnsRecord,
                "old.example.com *",
            ),
        ]);
        let declared: BTreeSet<(String, String)> = [
            ("listener", "web:80"),
            ("task_definition", "web"),
            ("nat_gateway", "web-nat"),
            ("certificate", "app.example.com"),
            ("dns_record", "app.example.com A"),
            ("dns_record", "app.example.com *"),
        ]
        .iter()
        .map(|(k, n)| (k.to_string(), n.to_string()))
        .collect();
        let gone: Vec<&str> = inv.undeclared(&declared).iter().map(|e| e.id.as_str()).collect();
        assert_eq!(gone, ["arn:l443", "eipalloc-2", "z/old/A", "z/m2/TXT"]);
        let older: Vec<&str> = inv.older_revisions(&declared).iter().map(|e| e.id.as_str()).collect();
        assert_eq!(older, ["web:1"]);
    }
}
