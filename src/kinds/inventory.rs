//! One stack inventory: everything a stack owns, found by its `deckhand:stack` tag (no local
//! state), with kind, name, id and deletion order. `status` shows it, `destroy` deletes it, and
//! `run` removes what of it the script no longer declares; all three read it here, so they agree.
//! The reads are shared; each kind lists its own entries from them ([`super::StackKind::list`]).

use std::collections::{BTreeSet, HashMap};

use super::stack_kind::Kind;
use super::{KINDS, certificate, dns_record, log_group, role, service, task_definition};
use crate::aws::acm::{self, Certificate, StackDomains};
use crate::aws::autoscaling::ScalableTarget;
use crate::aws::ec2::SecurityGroup;
use crate::aws::ecs::{self, EcsState, Service, TaskDefinition};
use crate::aws::egress::RouteTable;
use crate::aws::iam::{self, RoleSummary};
use crate::aws::logs::{self, LogGroup};
use crate::aws::route53::OwnedRecord;
use crate::aws::{Snapshot, concurrently};
use crate::error::Result;
use crate::runtime::Aws;

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
    /// The declarations that declare it too (kind and name), when it is part of others: an
    /// elastic IP is declared with its NAT gateway, a certificate's validation record with every
    /// certificate that needs it (ACM asks for one CNAME per name per account, so a certificate
    /// being replaced and its successor share it), an ownership marker with the records of its name.
    pub part_of: Vec<(Kind, String)>,
}

impl Entry {
    /// A resource of `kind` named `name` (`-` when it has none) with this id.
    pub fn new(kind: Kind, name: Option<&str>, id: &str) -> Entry {
        Entry { kind, name: name.unwrap_or("-").to_string(), id: id.to_string(), part_of: Vec::new() }
    }

    /// The same entry, declared also with the `kind` named `name` (see [`Entry::part_of`]).
    pub fn within(mut self, kind: Kind, name: String) -> Entry {
        self.part_of.push((kind, name));
        self
    }

    /// The id as shown: the resource part of an ARN (`service/myapp/myapp`), else the id.
    pub fn short_id(&self) -> &str {
        crate::arn::short_id(&self.id)
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
    /// The stack's ACTIVE task definition revisions as (family, `family:revision`), each
    /// family's in numeric order.
    pub revisions: Vec<(String, String)>,
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
                || d.iter().any(|(kind, _)| kind == dns_record::KIND.name() || kind == certificate::KIND.name())
        });
        let domains =
            async { if uses_route53 { acm::stack_domains(aws, stack).await } else { Ok(StackDomains::default()) } };
        let asked: Vec<&RoleSummary> = roles.iter().filter(|r| !is_declared(role::KIND, &r.name)).collect();
        let (services, last_used, domains) = tokio::try_join!(
            stack_services(aws, stack, &snapshot.ecs),
            concurrently(&asked, |role| iam::role_last_used(aws, &role.name)),
            domains,
        )?;
        let dropped: Vec<Service> = services.iter().filter(|s| !is_declared(service::KIND, &s.name)).cloned().collect();
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
                    .filter_map(|arn| crate::arn::Arn::of_type(arn, "iam", "role").map(|arn| arn.last_segment()))
                    .filter(|name| !is_declared(role::KIND, name))
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
                    named.log_groups.iter().filter(|name| !is_declared(log_group::KIND, name)).collect();
                let found = concurrently(&names, |name| logs::fetch_log_group(aws, name)).await?;
                found.into_iter().flatten().filter(|g| g.stack.as_deref() == Some(stack)).collect()
            }
            _ => Vec::new(),
        };
        let log_groups: Vec<LogGroup> = log_groups.into_iter().chain(dropped_groups).collect();

        let scalable_targets: Vec<ScalableTarget> =
            services.iter().filter_map(|s| snapshot.scaling.of(&s.cluster, &s.name).cloned()).collect();
        let ours = |tag: &Option<String>| tag.as_deref() == Some(stack);
        let route_tables: Vec<RouteTable> =
            snapshot.egress.route_tables.iter().filter(|t| ours(&t.stack)).cloned().collect();
        let security_groups: Vec<SecurityGroup> =
            snapshot.ec2.security_groups.iter().filter(|g| ours(&g.stack)).cloned().collect();

        let now = aws_smithy_types::DateTime::from(std::time::SystemTime::now());
        let roles_used_elsewhere = asked
            .iter()
            .copied()
            .zip(last_used)
            .chain(dropped_roles.iter().zip(dropped_last_used))
            .filter_map(|(role, last_used)| Some((role.name.clone(), used_elsewhere(last_used, &aws.region, now)?)))
            .collect();
        let roles = roles.into_iter().chain(dropped_roles).collect();
        let mut inventory = Inventory {
            stack: stack.to_string(),
            entries: Vec::new(),
            snapshot,
            services,
            revisions,
            records: domains.records,
            certificates: domains.certificates,
            scalable_targets,
            security_groups,
            route_tables,
            roles,
            log_groups,
            roles_used_elsewhere,
        };
        let mut entries: Vec<Entry> = KINDS.iter().flat_map(|kind| kind.list(&inventory)).collect();
        // Stable: revisions of one family stay in numeric order. Parts after the rest of their
        // kind: an ownership marker goes after the records it marks.
        entries.sort_by_key(|e| (super::deletion_rank(e.kind), !e.part_of.is_empty(), e.name.clone()));
        inventory.entries = entries;
        Ok(inventory)
    }

    /// True when `tag` (a resource's `deckhand:stack` tag) names this stack.
    pub fn owns(&self, tag: &Option<String>) -> bool {
        tag.as_deref() == Some(self.stack.as_str())
    }

    /// True when the entry carries the keep mark of `keep: true`, or is part of one that does
    /// (a NAT gateway's elastic IP).
    pub fn is_marked(&self, entry: &Entry) -> bool {
        let marked = |e: &Entry| self.snapshot.tagged.is_marked(&e.id);
        marked(entry)
            || entry
                .part_of
                .iter()
                .any(|(kind, name)| self.entries.iter().any(|e| e.kind == *kind && e.name == *name && marked(e)))
    }

    /// Why an entry stays even when it would be deleted (log groups without `delete_logs`, roles
    /// in use in another region); `None` when nothing keeps it.
    pub fn kept_because(&self, entry: &Entry, delete_logs: bool) -> Option<String> {
        super::of(entry.kind).kept_because(self, entry, delete_logs)
    }

    /// The entries a script that declared `declared` (kind and name, as the change log records
    /// them) no longer declares, in deletion order. A declared task definition family keeps all
    /// its revisions (see [`Inventory::older_revisions`]).
    pub fn undeclared<'a>(&'a self, declared: &BTreeSet<(String, String)>) -> Vec<&'a Entry> {
        self.entries
            .iter()
            .filter(|e| {
                !declares(declared, e.kind, &e.name)
                    && !e.part_of.iter().any(|(kind, name)| declares(declared, *kind, name))
            })
            .collect()
    }

    /// The revisions of declared task definition families other than their latest, which ECS
    /// keeps (deregistering only makes a revision INACTIVE) and a rollback may use.
    pub fn older_revisions<'a>(&'a self, declared: &BTreeSet<(String, String)>) -> Vec<&'a Entry> {
        let revisions: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| e.kind == task_definition::KIND && declares(declared, e.kind, &e.name))
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
        Entry { kind, name: name.into(), id: id.into(), part_of: Vec::new() }
    }

    fn part_of(entry: Entry, kind: Kind, name: &str) -> Entry {
        entry.within(kind, name.into())
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
        let service = entry(service::KIND, "web", "arn:aws:ecs:us-west-2:123456789012:service/web/web");
        assert_eq!(service.to_string(), "service web (service/web/web)");
        let group = entry(log_group::KIND, "/ecs/web", "/ecs/web");
        assert_eq!(group.to_string(), "log_group /ecs/web");
        let revision = entry(Kind("task_definition"), "web", "web:3");
        assert_eq!(revision.to_string(), "task_definition web (web:3)");
        assert_eq!(entry(Kind("subnet"), "web-a", "subnet-1").to_string(), "subnet web-a (subnet-1)");
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
            revisions: Vec::new(),
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
            entry(Kind("nat_gateway"), "web-nat", "nat-1"),
            part_of(entry(Kind("elastic_ip"), "web-eip", "eipalloc-1"), Kind("nat_gateway"), "web-nat"),
            entry(Kind("nat_gateway"), "old-nat", "nat-2"),
            part_of(entry(Kind("elastic_ip"), "old-eip", "eipalloc-2"), Kind("nat_gateway"), "old-nat"),
        ]);
        inv.snapshot.tagged = crate::tagged::StackTagged::marked(["nat-1"]);
        let marked: Vec<bool> = inv.entries.iter().map(|e| inv.is_marked(e)).collect();
        assert_eq!(marked, [true, true, false, false]);
    }

    #[test]
    fn what_the_script_no_longer_declares_is_undeclared_and_an_elastic_ip_goes_with_its_nat_gateway() {
        let inv = inventory(vec![
            entry(Kind("listener"), "web:443", "arn:l443"),
            entry(Kind("listener"), "web:80", "arn:l80"),
            entry(Kind("task_definition"), "web", "web:1"),
            entry(Kind("task_definition"), "web", "web:2"),
            entry(Kind("nat_gateway"), "web-nat", "nat-1"),
            part_of(entry(Kind("elastic_ip"), "web-eip", "eipalloc-1"), Kind("nat_gateway"), "web-nat"),
            part_of(entry(Kind("elastic_ip"), "web-eip2", "eipalloc-2"), Kind("nat_gateway"), "web-nat2"),
            part_of(
                entry(Kind("dns_record"), "_x.app.example.com CNAME", "z/_x/CNAME"),
                Kind("certificate"),
                "app.example.com",
            ),
            entry(Kind("dns_record"), "app.example.com A", "z/app/A"),
            entry(Kind("dns_record"), "old.example.com A", "z/old/A"),
            part_of(
                entry(Kind("dns_record"), "_deckhand.app.example.com TXT", "z/m/TXT"),
                Kind("dns_record"),
                "app.example.com *",
            ),
            part_of(
                entry(Kind("dns_record"), "_deckhand.old.example.com TXT", "z/m2/TXT"),
                Kind("dns_record"),
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
