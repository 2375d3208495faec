//! The typed AWS layer: one module per service, plain structs in and out, no Rhai types.

pub mod acm;
pub mod autoscaling;
pub mod ec2;
pub mod ecs;
pub mod egress;
pub mod elbv2;
pub mod iam;
pub mod logs;
pub mod queries;
pub mod route53;
pub mod secrets;
pub mod zones;

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use futures_util::future::LocalBoxFuture;
use futures_util::{FutureExt, StreamExt, TryStreamExt, stream};

use crate::error::Result;
use crate::plan::Change;
use crate::runtime::Aws;

/// A pass of a script over the kinds' snapshot: what every primitive works in.
pub type Pass = crate::pass::Pass<Snapshot>;

/// The reads a run's passes share, over the kinds' snapshot.
pub type State = crate::pass::State<Snapshot>;

impl crate::pass::Reads for Snapshot {
    type Declared = Declared;

    fn load<'a>(aws: &'a Aws, stack: &'a str, declared: &'a Declared) -> LocalBoxFuture<'a, Result<Snapshot>> {
        Snapshot::load_with(aws, stack, declared).boxed_local()
    }

    fn tagged(&self) -> &crate::tagged::StackTagged {
        &self.tagged
    }

    fn tagged_mut(&mut self) -> &mut crate::tagged::StackTagged {
        &mut self.tagged
    }
}

/// Everything a run reads up front about its stack, loaded once, all services concurrently.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    /// VPCs, subnets, security groups.
    pub ec2: ec2::Ec2State,
    /// NAT gateways, route tables, VPC endpoints.
    pub egress: egress::EgressState,
    /// The stack's load balancers, target groups and listeners.
    pub elbv2: elbv2::Elbv2State,
    /// IAM roles (the declared ones read up front, others by name on first use) and managed policies.
    pub iam: iam::IamState,
    /// Log groups (the declared ones read up front, others by name on first use).
    pub logs: logs::LogsState,
    /// ECS clusters, services and task definition families.
    pub ecs: ecs::EcsState,
    /// The stack's ACM certificates (read on first use).
    pub acm: acm::AcmState,
    /// Route 53 zones and their record sets (read on first use).
    pub route53: route53::Route53State,
    /// The ECS services' scalable targets and scaling policies (Application Auto Scaling).
    pub scaling: autoscaling::ScalingState,
    /// The stack's resources as the tagging API lists them, with their keep marks.
    pub tagged: crate::tagged::StackTagged,
    /// What kinds that keep no part of their own here (ECR repositories, alarms) read by name.
    pub named: Named,
}

/// Resources read by name on first use, by kind and name, for kinds whose types live outside
/// this layer (`kinds/`, which depends on it): what each read found (`None`: nothing by that
/// name), or what the run created since. Later passes of the run find them here instead of
/// reading them again.
#[derive(Clone, Default)]
pub struct Named(HashMap<(&'static str, String), Option<Arc<dyn Any + Send + Sync>>>);

impl Named {
    /// What was read (or created) as `kind` `name`: `None` when it was not read yet,
    /// `Some(None)` when nothing by that name exists.
    pub fn get<T: Clone + 'static>(&self, kind: &'static str, name: &str) -> Option<Option<T>> {
        match self.0.get(&(kind, name.to_string()))? {
            None => Some(None),
            Some(found) => found.downcast_ref::<T>().cloned().map(Some),
        }
    }

    /// Notes what `kind` `name` is now (`None`: nothing by that name).
    pub fn put<T: Send + Sync + 'static>(&mut self, kind: &'static str, name: &str, found: Option<T>) {
        let found = found.map(|found| Arc::new(found) as Arc<dyn Any + Send + Sync>);
        self.0.insert((kind, name.to_string()), found);
    }
}

/// The resource `kind` `name` as the run's reads hold it ([`Named`]), else read with `read` (by
/// name) and kept there for the run's later passes; `None` when there is none (or no AWS).
pub fn find_named<T: Clone + Send + Sync + 'static>(
    pass: &Pass,
    kind: &'static str,
    name: &str,
    read: impl AsyncFnOnce(&Aws) -> Result<Option<T>>,
) -> Result<Option<T>> {
    let known = pass.snapshot()?.borrow().named.get::<T>(kind, name);
    if let Some(found) = known {
        return Ok(found);
    }
    let Some(found) = pass.read(read) else { return Ok(None) };
    let found = found?;
    pass.remember_read(|s| s.named.put(kind, name, found.clone()))?;
    Ok(found)
}

impl std::fmt::Debug for Named {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter().map(|((kind, name), found)| (kind, name, found.is_some()))).finish()
    }
}

impl Snapshot {
    /// Reads the stack's resources from every service at once, every ECS cluster of the region
    /// and the services of the stack's clusters included (`status`, `destroy`).
    pub async fn load(aws: &Aws, stack: &str) -> Result<Snapshot> {
        Self::read(aws, stack, None).await
    }

    /// Reads the stack's resources from every service at once, and the `declared` roles, log
    /// groups, task-definition families, clusters and services with them: what a run's passes
    /// look up. ECS is read by the declared names only (no listing), so its reads are one wave.
    pub async fn load_with(aws: &Aws, stack: &str, declared: &Declared) -> Result<Snapshot> {
        Self::read(aws, stack, Some(declared)).await
    }

    async fn read(aws: &Aws, stack: &str, declared: Option<&Declared>) -> Result<Snapshot> {
        let everything = Declared::default();
        let names = declared.unwrap_or(&everything);
        let families = &names.task_definitions;
        let (ec2, egress, (tagged, elbv2, mut ecs), iam, logs, task_definitions, scaling) = tokio::try_join!(
            ec2::Ec2State::load(aws, stack, &names.security_groups),
            egress::EgressState::load(aws, stack),
            async {
                match declared {
                    Some(declared) => Self::tagged_and_declared(aws, stack, declared).await,
                    None => {
                        // ELBv2 cannot list by tag: its part waits for the stack's ARNs from the tagging API.
                        let tagged_and_elbv2 = async {
                            let tagged = crate::tagged::StackTagged::read(aws, stack).await?;
                            let elbv2 = elbv2::Elbv2State::load(aws, stack, &tagged).await?;
                            Ok::<_, crate::error::Error>((tagged, elbv2))
                        };
                        let ((tagged, elbv2), ecs) =
                            tokio::try_join!(tagged_and_elbv2, ecs::EcsState::load(aws, stack))?;
                        Ok((tagged, elbv2, ecs))
                    }
                }
            },
            iam::IamState::load(aws, &names.roles, &names.role_policies, &names.managed_policies),
            logs::LogsState::load(aws, &names.log_groups),
            concurrently(families, async |family| ecs::latest_task_definition(aws, family).await),
            autoscaling::ScalingState::load(aws),
        )?;
        ecs.task_definitions = families.iter().cloned().zip(task_definitions).collect();
        Ok(Snapshot { ec2, egress, elbv2, ecs, iam, logs, scaling, tagged, ..Snapshot::default() })
    }

    /// A run's reads of what the Resource Groups Tagging API finds: one GetResources for the whole
    /// stack (its load balancers, target groups, clusters, services, certificates, keep marks),
    /// alongside the describes by name of what the script declares; then what of the stack the
    /// script does not declare (none on a re-run of the same script), listeners, attributes and rules.
    async fn tagged_and_declared(
        aws: &Aws,
        stack: &str,
        declared: &Declared,
    ) -> Result<(crate::tagged::StackTagged, elbv2::Elbv2State, ecs::EcsState)> {
        let (tagged, named, ecs) = tokio::try_join!(
            crate::tagged::StackTagged::read(aws, stack),
            elbv2::Elbv2State::named(aws, &declared.load_balancers, &declared.target_groups),
            ecs::EcsState::load_declared(aws, &declared.clusters, &declared.services),
        )?;
        let (elbv2, ecs) = tokio::try_join!(
            elbv2::Elbv2State::complete(aws, stack, &tagged, named),
            ecs.add_stack(aws, stack, &tagged),
        )?;
        Ok((tagged, elbv2, ecs))
    }
}

/// The roles, log groups, task-definition families, clusters and services a script declares, by
/// name, as a check pass (no AWS calls) found them, for [`Snapshot::load_with`] to read
/// concurrently with everything else instead of one after another as the script reaches them.
/// IAM cannot list roles by tag (ListRoles returns no tags; the Resource Groups Tagging API's
/// GetResources does not support IAM roles), and a log group needs DescribeLogGroups for its
/// retention and ListTagsForResource for its owner. Reading by name, not by tag, is also what
/// finds a foreign resource with the script's name, to refuse it. ECS lists task-definition
/// families without tags or contents, so the latest revision of each declared family is read by
/// name too (DescribeTaskDefinition), rather than after the services are read; and clusters and
/// services are described by name (with their tags) rather than listed, then described: one wave
/// instead of four (ListClusters, DescribeClusters, ListServices, DescribeServices). Names the
/// check pass could not know (computed from what only AWS knows) are still read by name when the
/// script reaches them. Load balancers and target groups are found by tag, but those declared are
/// described by name alongside that lookup rather than after it, so their listeners, attributes and
/// rules come a wave earlier.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Declared {
    /// IAM role names.
    pub roles: Vec<String>,
    /// Log group names.
    pub log_groups: Vec<String>,
    /// Task definition families.
    pub task_definitions: Vec<String>,
    /// ECS cluster names.
    pub clusters: Vec<String>,
    /// ECS services as (cluster name, service name).
    pub services: Vec<(String, String)>,
    /// Load balancer names.
    pub load_balancers: Vec<String>,
    /// Target group names.
    pub target_groups: Vec<String>,
    /// Managed policies (ARNs) the plan pass found to exist or not: the apply pass does not ask
    /// again (GetPolicy, one round), as policies do not come and go between a plan and its apply.
    pub managed_policies: Vec<(String, bool)>,
    /// Security group names (read in every VPC by name: a group of another stack, or nobody's,
    /// with the script's name is refused, as a load balancer's is).
    pub security_groups: Vec<String>,
    /// Inline policies (role, policy name) the script's resources look up, such as a task
    /// definition's secrets policy on its execution role.
    pub role_policies: Vec<(String, String)>,
    /// The services the script scales, as `cluster/service`.
    pub autoscaling: Vec<String>,
    /// The VPCs the script declares with `new_vpc` (a lookup of the stack's own VPC needs it).
    pub vpcs: Vec<String>,
    /// True when these are all a whole script declares (a run's check pass), so what is not
    /// among them is no longer declared; false in the REPL, whose statements come one by one.
    pub whole_script: bool,
}

impl Declared {
    /// The roles, log groups, task-definition families, clusters, load balancers and target groups
    /// among a check pass's changes; services (which need their cluster) and inline policies from
    /// its snapshot, see [`Declared::with_lookups_of`].
    pub fn from_changes(changes: &[Change]) -> Declared {
        let named = |kind: &str| {
            let mut names: Vec<String> =
                changes.iter().filter(|c| c.resource == kind).map(|c| c.name.clone()).collect();
            names.sort();
            names.dedup();
            names
        };
        Declared {
            roles: named("role"),
            log_groups: named("log_group"),
            task_definitions: named("task_definition"),
            clusters: named("cluster"),
            services: Vec::new(),
            load_balancers: named("load_balancer"),
            target_groups: named("target_group"),
            security_groups: named("security_group"),
            managed_policies: Vec::new(),
            role_policies: Vec::new(),
            autoscaling: named("autoscaling"),
            vpcs: named("vpc"),
            whole_script: true,
        }
    }

    /// The same, with the managed policies a plan pass (its run's reads, `read`) found to exist or not.
    pub fn with_policies_of(mut self, read: Option<&Snapshot>) -> Declared {
        let mut policies: Vec<(String, bool)> = read
            .map(|s| s.iam.policies.iter().map(|(arn, exists)| (arn.clone(), *exists)).collect())
            .unwrap_or_default();
        policies.sort();
        self.managed_policies = policies;
        self
    }

    /// The same, with what a check pass recorded in its snapshot: the services (by cluster) and
    /// the inline policies its resources asked for.
    pub fn with_lookups_of(mut self, snapshot: &Snapshot) -> Declared {
        let mut services: Vec<(String, String)> =
            snapshot.ecs.services_named.keys().filter(|(cluster, _)| !cluster.is_empty()).cloned().collect();
        services.sort();
        self.services = services;
        let mut policies: Vec<(String, String)> = snapshot.iam.role_policies.keys().cloned().collect();
        policies.sort();
        self.role_policies = policies;
        self
    }
}

/// The `Name` tag key.
pub const NAME_TAG: &str = "Name";

/// How many lookups run at once where AWS cannot list by tag (IAM roles, log groups, task
/// definitions, services of other clusters): enough to hide latency, few enough to stay well
/// under those APIs' request rate limits.
pub const LOOKUPS_AT_ONCE: usize = 8;

/// Runs `f` over `items`, [`LOOKUPS_AT_ONCE`] at a time, keeping their order.
pub async fn concurrently<I, T, F, Fut>(items: I, f: F) -> Result<Vec<T>>
where
    I: IntoIterator,
    F: FnMut(I::Item) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    stream::iter(items).map(f).buffered(LOOKUPS_AT_ONCE).try_collect().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_tells_not_read_from_read_and_missing() {
        let mut named = Named::default();
        assert_eq!(named.get::<String>("alarm", "web-5xx"), None, "not read yet");
        named.put::<String>("alarm", "web-5xx", None);
        assert_eq!(named.get::<String>("alarm", "web-5xx"), Some(None), "read: there is none");
        named.put("alarm", "web-5xx", Some("arn:alarm".to_string()));
        assert_eq!(named.get::<String>("alarm", "web-5xx"), Some(Some("arn:alarm".to_string())));
        assert_eq!(named.get::<String>("ecr_repository", "web-5xx"), None, "kinds do not share names");
        assert_eq!(named.get::<u32>("alarm", "web-5xx"), None, "another type is not what was read");
    }
}
