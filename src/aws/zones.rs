//! The availability zones a script can spread over: the region's zones that have a default subnet
//! in the default VPC. Zone letters map to different physical zones per account, and some zones
//! (e.g. in us-west-1 and ap-northeast-1) are closed to new accounts or lack Fargate, so scripts
//! ask for zones instead of writing `${region}a`. For a VPC of the stack (no default subnets),
//! `zones(n, vpc)` gives the zones where Fargate runs, from the ECS docs' table by zone ID.

use crate::aws::Pass;
use crate::aws::ec2::{Vpc, Zone, find_default_vpc};
use crate::error::{Error, Result};

/// The first `count` zones (by name) that have a default subnet in the default VPC. In check mode
/// (no AWS), the region's first `count` zone names by letter, as placeholders.
pub fn default_zones(pass: &Pass, count: usize) -> Result<Vec<String>> {
    let region = pass.region().unwrap_or("(unknown region)").to_string();
    if count == 0 {
        return Err(Error::invalid("zones.count", "0", "a number of zones from 1"));
    }
    let vpc = find_default_vpc(pass)?;
    let snapshot = pass.snapshot()?;
    let state = &snapshot.borrow().ec2;
    if !state.loaded {
        return Ok((b'a'..=b'z').take(count).map(|letter| format!("{region}{}", letter as char)).collect());
    }
    let mut zones: Vec<String> = state
        .subnets
        .iter()
        .filter(|s| s.default_for_az && s.vpc_id == vpc.id && state.zones.contains(&s.az))
        .map(|s| s.az.clone())
        .collect();
    zones.sort();
    zones.dedup();
    if zones.len() < count {
        let found = if zones.is_empty() { "none".to_string() } else { zones.join(", ") };
        let missing: Vec<&String> = state.zones.iter().filter(|z| !zones.contains(z)).collect();
        let hint = match missing.first() {
            Some(zone) => format!(
                "the region's other zones ({}) have no default subnet; create one with \
                 `aws ec2 create-default-subnet --availability-zone {zone}`",
                missing.iter().map(|z| z.as_str()).collect::<Vec<_>>().join(", ")
            ),
            None => format!("{region} has no more zones; ask for fewer"),
        };
        return Err(Error::conflict(
            format!(
                "zones({count}): {region} has only {} zone(s) with a default subnet in the default VPC ({}): {found}",
                zones.len(),
                vpc.id
            ),
            Some(&hint),
        ));
    }
    zones.truncate(count);
    Ok(zones)
}

/// Where Fargate runs in regions where it does not run in every availability zone, by zone ID
/// (zone names map to different zones per account; IDs do not). From the ECS Developer Guide,
/// "Supported Regions for Amazon ECS on AWS Fargate", Linux containers ("The supported
/// Availability Zone IDs are noted when applicable"), as published on 2026-12-06. Every other
/// region the table lists runs Fargate in all its zones; a region newer than this table is taken
/// to do so too.
pub const FARGATE_ZONE_IDS: &[(&str, &[&str])] = &[
    ("us-west-1", &["usw1-az1", "usw1-az3"]),
    ("ap-northeast-1", &["apne1-az1", "apne1-az2", "apne1-az4"]),
    ("cn-north-1", &["cnn1-az1", "cnn1-az2"]),
];

/// Whether Fargate runs in the zone with this ID of `region` (see [`FARGATE_ZONE_IDS`]).
pub fn runs_fargate(region: &str, zone_id: &str) -> bool {
    FARGATE_ZONE_IDS.iter().find(|(r, _)| *r == region).is_none_or(|(_, ids)| ids.contains(&zone_id))
}

/// The first `count` zones (by name) of `vpc`'s region where Fargate runs, told by zone ID; in the
/// default VPC, only those with a default subnet too (as [`default_zones`]). In check mode (no
/// AWS), the region's first `count` zone names by letter, as placeholders.
pub fn fargate_zones(pass: &Pass, count: usize, vpc: &Vpc) -> Result<Vec<String>> {
    let region = pass.region().unwrap_or("(unknown region)").to_string();
    if count == 0 {
        return Err(Error::invalid("zones.count", "0", "a number of zones from 1"));
    }
    let snapshot = pass.snapshot()?;
    let state = &snapshot.borrow().ec2;
    if !state.loaded {
        return Ok((b'a'..=b'z').take(count).map(|letter| format!("{region}{}", letter as char)).collect());
    }
    let with_default_subnet =
        |zone: &str| state.subnets.iter().any(|s| s.default_for_az && s.vpc_id == vpc.id && s.az == zone);
    let (mut zones, lacking): (Vec<&Zone>, Vec<&Zone>) =
        state.zone_ids.iter().partition(|zone| runs_fargate(&region, &zone.id));
    if vpc.is_default {
        zones.retain(|zone| with_default_subnet(&zone.name));
    }
    zones.sort_by(|a, b| a.name.cmp(&b.name));
    if zones.len() < count {
        let found = zones.iter().map(|z| z.name.as_str()).collect::<Vec<_>>();
        let found = if found.is_empty() { "none".to_string() } else { found.join(", ") };
        let lacking = lacking.iter().map(|z| format!("{} ({})", z.name, z.id)).collect::<Vec<_>>();
        let hint = if lacking.is_empty() {
            format!("{region} has no more zones for it; ask for fewer")
        } else {
            format!(
                "Fargate does not run in {} (the ECS docs list its zone IDs per region); ask for fewer",
                lacking.join(", ")
            )
        };
        return Err(Error::conflict(
            format!("zones({count}, vpc): {region} has only {} zone(s) where Fargate runs: {found}", zones.len()),
            Some(&hint),
        ));
    }
    Ok(zones.into_iter().take(count).map(|z| z.name.clone()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fargate_zones_are_told_by_zone_id_not_by_name() {
        // us-west-1's zone names map to IDs per account: here 1a is usw1-az2, where Fargate does not run.
        assert!(!runs_fargate("us-west-1", "usw1-az2"));
        assert!(runs_fargate("us-west-1", "usw1-az3"));
        assert!(runs_fargate("ap-northeast-1", "apne1-az4"));
        assert!(!runs_fargate("ap-northeast-1", "apne1-az3"));
        assert!(runs_fargate("us-west-2", "usw2-az4"), "no restriction listed: every zone");
        assert!(runs_fargate("xx-new-1", "xxn1-az1"), "a region newer than the table: every zone");
    }
}
