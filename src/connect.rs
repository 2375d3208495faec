//! The command line's AWS connection options, shared by every command that talks to AWS: region,
//! profile, endpoint, or `--local` (the emulator, started at the time scale deckhand uses too).

use clap::Args;

use crate::error::Result;
use crate::local::{Emulator, LOCAL_REGION, TIME_SCALE_ENV};
use crate::runtime::{Aws, Target};
use crate::timing::TimeScale;

/// Where to send AWS requests.
#[derive(Debug, Args, Clone)]
pub(crate) struct AwsArgs {
    /// Run against a local emulator (moto), installed and started by deckhand; no AWS account
    /// needed. Its modelled AWS time (a NAT gateway pending for 90 s, a rollout's minutes) runs 50
    /// times as fast (DECKHAND_TIME_SCALE, default 0.02), deckhand's waits alike, and `run` ends
    /// with what it would take on AWS.
    #[arg(long, conflicts_with_all = ["profile", "endpoint_url"])]
    pub(crate) local: bool,
    /// AWS region (else the standard chain: AWS_REGION, profile).
    #[arg(long)]
    region: Option<String>,
    /// Named profile from ~/.aws/config (else AWS_PROFILE or default).
    #[arg(long)]
    pub(crate) profile: Option<String>,
    /// Send every AWS request to this endpoint (AWS_ENDPOINT_URL is honoured too).
    #[arg(long, value_name = "URL")]
    endpoint_url: Option<String>,
}

impl AwsArgs {
    /// Connects to AWS, starting the local emulator first when asked; keep the emulator alive.
    pub(crate) fn connect(&self) -> Result<(Aws, Option<Emulator>)> {
        let mut target = Target {
            region: self.region.clone(),
            profile: self.profile.clone(),
            endpoint_url: self.endpoint_url.clone(),
            dummy_credentials: false,
            time_scale: None,
        };
        let emulator = if self.local {
            let (emulator, scale) = start_emulator()?;
            target.time_scale = Some(scale);
            target.endpoint_url = Some(emulator.endpoint_url());
            target.region.get_or_insert_with(|| LOCAL_REGION.to_string());
            target.dummy_credentials = true;
            eprintln!(
                "Local emulator running at {} (region {}); it stops when deckhand exits.",
                emulator.endpoint_url(),
                target.region.as_deref().unwrap_or(LOCAL_REGION)
            );
            Some(emulator)
        } else {
            None
        };
        Ok((Aws::connect(&target)?, emulator))
    }
}

/// Starts the local emulator at the time scale deckhand then uses too: `DECKHAND_TIME_SCALE`
/// when set (validated), else [`TimeScale::LOCAL`].
pub(crate) fn start_emulator() -> Result<(Emulator, TimeScale)> {
    let scale = TimeScale::resolve(true, Some(TimeScale::LOCAL))?.unwrap_or(TimeScale::LOCAL);
    let emulator = Emulator::start_with_env(&[(TIME_SCALE_ENV, &scale.factor().to_string())])?;
    Ok((emulator, scale))
}
