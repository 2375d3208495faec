//! The typed AWS layer: one module per service, plain structs in and out, no Rhai types.

pub mod acm;
pub mod autoscaling;
pub mod ec2;
pub mod ecs;
pub mod egress;
pub mod elbv2;
pub mod iam;
pub mod inventory;
pub mod logs;
pub mod queries;
pub mod route53;
pub mod secrets;
pub mod settle;
pub mod tagged;
pub mod zones;

use std::future::Future;

use futures_util::{StreamExt, TryStreamExt, stream};

use crate::error::Result;
use crate::plan::Change;
use crate::runtime::Aws;

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
    pub tagged: tagged::StackTagged,
}

impl Snapshot {
    /// Reads the stack's resources from every service at once.
    pub async fn load(aws: &Aws, stack: &str) -> Result<Snapshot> {
        Self::load_with(aws, stack, &Declared::default()).await
    }

    /// Reads the stack's resources from every service at once, and the `declared` roles, log
    /// groups and task-definition families with them.
    pub async fn load_with(aws: &Aws, stack: &str, declared: &Declared) -> Result<Snapshot> {
        let families = &declared.task_definitions;
        // ELBv2 cannot list by tag: its part waits for the stack's ARNs from the tagging API.
        let tagged_and_elbv2 = async {
            let tagged = tagged::StackTagged::read(aws, stack).await?;
            let elbv2 = elbv2::Elbv2State::load(aws, stack, &tagged).await?;
            Ok::<_, crate::error::Error>((tagged, elbv2))
        };
        let (ec2, egress, (tagged, elbv2), mut ecs, iam, logs, task_definitions, scaling) = tokio::try_join!(
            ec2::Ec2State::load(aws, stack),
            egress::EgressState::load(aws, stack),
            tagged_and_elbv2,
            ecs::EcsState::load(aws, stack),
            iam::IamState::load(aws, &declared.roles),
            logs::LogsState::load(aws, &declared.log_groups),
            concurrently(families, async |family| ecs::latest_task_definition(aws, family).await),
            autoscaling::ScalingState::load(aws),
        )?;
        ecs.task_definitions = families.iter().cloned().zip(task_definitions).collect();
        Ok(Snapshot { ec2, egress, elbv2, ecs, iam, logs, scaling, tagged, ..Snapshot::default() })
    }
}

/// The roles, log groups and task-definition families a script declares, by name, as a check
/// pass (no AWS calls) found them, for [`Snapshot::load_with`] to read concurrently with everything else instead of one
/// after another as the script reaches them. IAM cannot list roles by tag (ListRoles returns no
/// tags; the Resource Groups Tagging API's GetResources does not support IAM roles), and a log
/// group needs DescribeLogGroups for its retention and ListTagsForResource for its owner. Reading
/// by name, not by tag, is also what finds a foreign resource with the script's name, to refuse
/// it. ECS lists task-definition families without tags or contents, so the latest revision of
/// each declared family is read by name too (DescribeTaskDefinition), rather than after the
/// services are read. Names the check pass could not know (computed from what only AWS knows) are still read by
/// name when the script reaches them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Declared {
    /// IAM role names.
    pub roles: Vec<String>,
    /// Log group names.
    pub log_groups: Vec<String>,
    /// Task definition families.
    pub task_definitions: Vec<String>,
    /// The services the script scales, as `cluster/service`.
    pub autoscaling: Vec<String>,
    /// True when these are all a whole script declares (a run's check pass), so what is not
    /// among them is no longer declared; false in the REPL, whose statements come one by one.
    pub whole_script: bool,
}

impl Declared {
    /// The roles, log groups and task-definition families among a check pass's changes.
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
            autoscaling: named("autoscaling"),
            whole_script: true,
        }
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
