//! The availability zones a script can spread over: the region's zones that have a default subnet
//! in the default VPC. Zone letters map to different physical zones per account, and some zones
//! (e.g. in us-west-1 and ap-northeast-1) are closed to new accounts or lack Fargate, so scripts
//! ask for zones instead of writing `${region}a`.

use crate::aws::Pass;
use crate::aws::ec2::find_default_vpc;
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
