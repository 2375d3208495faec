//! The typed AWS layer: one module per service, plain structs in and out, no Rhai types.

pub mod ec2;
pub mod ecs;

use crate::error::Result;
use crate::runtime::Aws;

/// Everything a run reads up front about its stack, loaded once, all services concurrently.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// VPCs, subnets, security groups.
    pub ec2: ec2::Ec2State,
    /// ECS clusters, services and task definition families.
    pub ecs: ecs::EcsState,
}

impl Snapshot {
    /// Reads the stack's resources from every service at once.
    pub async fn load(aws: &Aws, stack: &str) -> Result<Snapshot> {
        let (ec2, ecs) = tokio::try_join!(ec2::Ec2State::load(aws, stack), ecs::EcsState::load(aws, stack))?;
        Ok(Snapshot { ec2, ecs })
    }
}

/// The `Name` tag key.
pub const NAME_TAG: &str = "Name";
