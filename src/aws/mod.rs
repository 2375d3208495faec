//! The typed AWS layer: one module per service, plain structs in and out, no Rhai types.

pub mod ec2;
pub mod ecs;
pub mod egress;
pub mod elbv2;
pub mod iam;
pub mod logs;
pub mod queries;
pub mod zones;

use std::future::Future;

use futures_util::{StreamExt, TryStreamExt, stream};

use crate::error::Result;
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
    /// IAM roles and managed policies, looked up by name on first use.
    pub iam: iam::IamState,
    /// Log groups, looked up by name on first use.
    pub logs: logs::LogsState,
    /// ECS clusters, services and task definition families.
    pub ecs: ecs::EcsState,
}

impl Snapshot {
    /// Reads the stack's resources from every service at once.
    pub async fn load(aws: &Aws, stack: &str) -> Result<Snapshot> {
        let (ec2, egress, elbv2, ecs) = tokio::try_join!(
            ec2::Ec2State::load(aws, stack),
            egress::EgressState::load(aws, stack),
            elbv2::Elbv2State::load(aws, stack),
            ecs::EcsState::load(aws, stack),
        )?;
        // IAM and CloudWatch Logs cannot list by tag cheaply: they fill in per name on first use.
        Ok(Snapshot { ec2, egress, elbv2, ecs, ..Snapshot::default() })
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
