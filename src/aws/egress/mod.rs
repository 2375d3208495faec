//! How private subnets reach the internet and AWS APIs: NAT gateways (with their elastic IPs),
//! route tables and VPC endpoints, each converging in its own file, and the check that Fargate
//! tasks without public IPs can pull images.

mod nat_gateway;
mod route_table;
mod vpc_endpoint;

use std::collections::BTreeSet;

use crate::aws::Pass;
use crate::aws::Snapshot;
use crate::aws::ec2::{Subnet, stack_filter};
use crate::error::Result;
use crate::runtime::Aws;

pub(crate) use nat_gateway::nat_gateways;
pub use nat_gateway::{ElasticIp, NatGateway, NatGatewaySpec, delete_nat_gateway, release_address};
use nat_gateway::{addresses, live_nat_filter};
pub(crate) use route_table::route_tables;
pub use route_table::{
    Association, Route, RouteTable, RouteTableSpec, RouteTarget, delete_route_table, egress_ready, subnet_key,
};
pub(crate) use vpc_endpoint::endpoints;
pub use vpc_endpoint::{Endpoint, EndpointSettings, EndpointSpec, delete_endpoint, service_name};

/// The egress part of a run's snapshot.
#[derive(Debug, Default, Clone)]
pub struct EgressState {
    /// The stack's live NAT gateways.
    pub nat_gateways: Vec<NatGateway>,
    /// The stack's elastic IPs.
    pub addresses: Vec<ElasticIp>,
    /// Every route table in the region (to know each subnet's routes).
    pub route_tables: Vec<RouteTable>,
    /// Every live VPC endpoint in the region.
    pub endpoints: Vec<Endpoint>,
}

impl EgressState {
    /// Reads NAT gateways and elastic IPs of the stack, and all route tables and endpoints, concurrently.
    pub async fn load(aws: &Aws, stack: &str) -> Result<EgressState> {
        let (nat_gateways, addresses, route_tables, endpoints) = tokio::try_join!(
            nat_gateways(aws, vec![stack_filter(stack), live_nat_filter()]),
            addresses(aws, stack),
            route_tables(aws, vec![]),
            endpoints(aws, vec![]),
        )?;
        Ok(EgressState { nat_gateways, addresses, route_tables, endpoints })
    }
}

/// The services a task without a public IP needs endpoints for, to pull from ECR and log.
pub const IMAGE_PULL_SERVICES: [&str; 4] = ["ecr.api", "ecr.dkr", "s3", "logs"];

/// Checks that tasks in `subnets` without public IPs can reach ECR and CloudWatch Logs: through a
/// default route to a NAT gateway (or another non-internet target), or through VPC endpoints for
/// every service they need. Returns a warning naming the subnets that cannot, or `None`.
pub fn private_egress_gap(pass: &Pass, subnets: &[Subnet]) -> Result<Option<String>> {
    let snapshot = pass.snapshot()?;
    let snapshot = snapshot.borrow();
    let state = &snapshot.egress;
    if !snapshot.ec2.loaded {
        return Ok(None); // check mode: nothing is known about routes
    }
    let region = pass.region().unwrap_or("");
    let missing_endpoints = |vpc_id: &str| -> Vec<&str> {
        IMAGE_PULL_SERVICES
            .iter()
            .copied()
            .filter(|short| {
                let name = service_name(region, short);
                !state.endpoints.iter().any(|e| e.serves(&name, vpc_id))
            })
            .collect()
    };
    let mut stranded = Vec::new();
    let mut missing = BTreeSet::new();
    for subnet in subnets {
        let (vpc_id, routed) = default_route(&snapshot, subnet);
        let lacking = missing_endpoints(&vpc_id);
        if !routed && !lacking.is_empty() {
            stranded.push(subnet.name.clone().unwrap_or_else(|| subnet.id.clone()));
            missing.extend(lacking);
        }
    }
    if stranded.is_empty() {
        return Ok(None);
    }
    Ok(Some(format!(
        "tasks without a public IP in subnet(s) {} cannot pull images or send logs: their route table has \
         no default route to a NAT gateway, and the VPC lacks endpoints for {}; add a route_table with a \
         nat_gateway route, or vpc_endpoint()s for those services (or set public_ip: true in public subnets)",
        stranded.join(", "),
        missing.into_iter().collect::<Vec<_>>().join(", ")
    )))
}

/// A subnet's VPC and whether its route table (its own, else the VPC's main one) has a default
/// route out that is not an internet gateway (a NAT gateway or another target).
fn default_route(snapshot: &Snapshot, subnet: &Subnet) -> (String, bool) {
    // A subnet given as a plain id: its VPC comes from the snapshot.
    let vpc_id = if subnet.vpc_id.is_empty() {
        snapshot.ec2.subnets.iter().find(|s| s.id == subnet.id).map(|s| s.vpc_id.clone()).unwrap_or_default()
    } else {
        subnet.vpc_id.clone()
    };
    let tables = &snapshot.egress.route_tables;
    let key = subnet_key(subnet);
    let table = tables
        .iter()
        .find(|t| t.associations.iter().any(|a| a.subnet == key))
        .or_else(|| tables.iter().find(|t| t.main && t.vpc_id == vpc_id));
    let routed = table.is_some_and(|t| {
        t.routes
            .iter()
            .any(|r| r.destination == "0.0.0.0/0" && matches!(r.target, RouteTarget::Nat(_) | RouteTarget::Other(_)))
    });
    (vpc_id, routed)
}

/// The subnets (names, else ids) without a default route whose tasks reach AWS through VPC
/// endpoints (an ECR endpoint in their VPC).
fn endpoints_only(snapshot: &Snapshot, region: &str, subnets: &[Subnet]) -> Vec<String> {
    subnets
        .iter()
        .filter(|subnet| {
            let (vpc_id, routed) = default_route(snapshot, subnet);
            let ecr_endpoint =
                snapshot.egress.endpoints.iter().any(|e| e.serves(&service_name(region, "ecr.dkr"), &vpc_id));
            !routed && ecr_endpoint
        })
        .map(|subnet| subnet.name.clone().unwrap_or_else(|| subnet.id.clone()))
        .collect()
}

/// ECS Exec from tasks that reach AWS only through VPC endpoints: without an `ssmmessages`
/// endpoint the exec agent cannot open its channels (ECS developer guide, ECS Exec, "Using
/// interface VPC endpoints"). A warning, or `None` when the subnets have a route or the endpoint.
pub fn exec_without_ssmmessages(pass: &Pass, subnets: &[Subnet]) -> Result<Option<String>> {
    let snapshot = pass.snapshot()?;
    let snapshot = snapshot.borrow();
    let (Some(region), true) = (pass.region(), snapshot.ec2.loaded) else {
        return Ok(None); // check mode: nothing is known about routes
    };
    let missing: Vec<String> = endpoints_only(&snapshot, region, subnets)
        .into_iter()
        .filter(|name| {
            let subnet = subnets.iter().find(|s| s.name.as_ref() == Some(name) || s.id == *name);
            let vpc_id = subnet.map(|s| default_route(&snapshot, s).0).unwrap_or_default();
            !snapshot.egress.endpoints.iter().any(|e| e.serves(&service_name(region, "ssmmessages"), &vpc_id))
        })
        .collect();
    if missing.is_empty() {
        return Ok(None);
    }
    Ok(Some(format!(
        "exec: true, but tasks in subnet(s) {} reach AWS only through VPC endpoints and there is no ssmmessages          endpoint: ECS Exec cannot connect; add vpc_endpoint(vpc, #{{ service: \"ssmmessages\", subnets,          security_groups }})",
        missing.join(", ")
    )))
}

/// Checks the images that tasks in `subnets` without public IPs pull when their only way out is
/// VPC endpoints (no default route to a NAT gateway): the ECR endpoints serve the region's private
/// registries (`<account>.dkr.ecr.<region>.amazonaws.com/...`) only, so an image from ECR Public,
/// Docker Hub, another registry or another region cannot be pulled. Returns a warning naming them.
pub fn images_beyond_endpoints(pass: &Pass, subnets: &[Subnet], images: &[String]) -> Result<Option<String>> {
    let snapshot = pass.snapshot()?;
    let snapshot = snapshot.borrow();
    let (Some(region), true) = (pass.region(), snapshot.ec2.loaded) else {
        return Ok(None); // check mode: nothing is known about routes
    };
    let endpoints_only = endpoints_only(&snapshot, region, subnets);
    let unreachable: Vec<&str> =
        images.iter().map(String::as_str).filter(|image| !in_private_ecr(image, region)).collect();
    if endpoints_only.is_empty() || unreachable.is_empty() {
        return Ok(None);
    }
    Ok(Some(format!(
        "tasks without a public IP in subnet(s) {} reach only VPC endpoints, which serve private ECR in {region} \
         (<account>.dkr.ecr.{region}.amazonaws.com/...), not ECR Public, Docker Hub or other registries: they cannot \
         pull {}; push the image to ECR in {region} (or add an ECR pull-through cache rule), or route the subnets \
         through a nat_gateway",
        endpoints_only.join(", "),
        unreachable.join(", ")
    )))
}

/// True when `image` is in a private ECR registry of `region`
/// (`<12-digit account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]/...`).
fn in_private_ecr(image: &str, region: &str) -> bool {
    let Some((host, _)) = image.split_once('/') else {
        return false;
    };
    let Some((account, rest)) = host.split_once('.') else {
        return false;
    };
    let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    let registry = ["dkr.ecr.", "dkr.ecr-fips."].iter().any(|prefix| {
        rest.strip_prefix(prefix)
            .and_then(|r| r.strip_prefix(region))
            .is_some_and(|r| r == ".amazonaws.com" || r == ".amazonaws.com.cn")
    });
    account_ok && registry
}

#[cfg(test)]
mod image_tests {
    use super::in_private_ecr;

    #[test]
    fn only_private_ecr_of_the_region_is_behind_the_endpoints() {
        let region = "us-west-2";
        assert!(in_private_ecr("123456789012.dkr.ecr.us-west-2.amazonaws.com/myapp:1.4", region));
        assert!(in_private_ecr("123456789012.dkr.ecr-fips.us-west-2.amazonaws.com/myapp@sha256:ab", region));
        assert!(in_private_ecr("123456789012.dkr.ecr.us-west-2.amazonaws.com/ecr-public/nginx/nginx", region));
        for image in [
            "public.ecr.aws/nginx/nginx-unprivileged:stable",
            "nginx:1.27",
            "docker.io/library/nginx",
            "ghcr.io/you/app:1.0",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/myapp:1.4",
            "12345.dkr.ecr.us-west-2.amazonaws.com/myapp",
            "123456789012.dkr.ecr.us-west-2.amazonaws.com.evil.example/myapp",
        ] {
            assert!(!in_private_ecr(image, region), "{image}");
        }
    }
}
