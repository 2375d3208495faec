//! EC2 networking: VPCs and what every EC2 kind shares (the snapshot's EC2 part, tags, lookups);
//! subnets and security groups converge in their own files. The snapshot reads every VPC of the
//! region and the stack's internet gateways here; the `vpc` and `internet_gateway` kinds
//! (`kinds/vpc.rs`, `kinds/internet_gateway.rs`) converge and delete them.

mod security_group;
mod subnet;

use std::collections::HashMap;

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use ipnet::Ipv4Net;

use crate::aws::NAME_TAG;
use crate::aws::Pass;
use crate::aws::Snapshot;
use crate::converge::Resource;
use crate::error::{Error, Result, aws_error};
use crate::plan::UNKNOWN;
use crate::runtime::Aws;
use crate::tagged::STACK_TAG;

pub(crate) use security_group::security_groups;
pub use security_group::{
    Peer, Rule, SecurityGroup, SecurityGroupSpec, check_port, default_egress, delete_security_group, parse_ports,
    parse_rule_cidr, revoke_group_references,
};
pub(crate) use subnet::subnets;
pub use subnet::{Subnet, SubnetSpec, delete_subnet, parse_subnet_cidr};

/// A VPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vpc {
    /// `vpc-...`, or [`UNKNOWN`] in check mode.
    pub id: String,
    /// Its `Name` tag, or `default` for the default VPC without one.
    pub name: String,
    /// Its IPv4 CIDR blocks (empty when unknown).
    pub cidrs: Vec<Ipv4Net>,
    /// Whether it is the region's default VPC.
    pub is_default: bool,
    /// Its `deckhand:stack` tag (a VPC of the stack is `new_vpc`'s; lookups never own one).
    pub stack: Option<String>,
}

/// An internet gateway of the stack, as the snapshot reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternetGateway {
    /// `igw-...`, or [`UNKNOWN`] while planned.
    pub id: String,
    /// Its `Name` tag.
    pub name: Option<String>,
    /// The VPC it is attached to (AWS attaches one at most).
    pub vpc_id: Option<String>,
    /// Its `deckhand:stack` tag.
    pub stack: Option<String>,
}

/// An availability zone of the region: its name (which differs per account) and its ID (the
/// same physical zone in every account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    /// e.g. `us-west-2a`.
    pub name: String,
    /// e.g. `usw2-az2`.
    pub id: String,
}

/// The EC2 part of a run's snapshot.
#[derive(Debug, Default, Clone)]
pub struct Ec2State {
    /// The region's default VPC, if it has one.
    pub default_vpc: Option<Vpc>,
    /// The region's available AZ names (empty in check mode).
    pub zones: Vec<String>,
    /// The region's availability zones (not Local or Wavelength Zones) with their zone IDs.
    pub zone_ids: Vec<Zone>,
    /// Every VPC of the region (the default one, the stack's, those scripts look up).
    pub vpcs: Vec<Vpc>,
    /// The stack's internet gateways.
    pub internet_gateways: Vec<InternetGateway>,
    /// Every subnet in the region (to find the stack's, default ones, and CIDR overlaps).
    pub subnets: Vec<Subnet>,
    /// The stack's security groups.
    pub security_groups: Vec<SecurityGroup>,
    /// The groups of any VPC, whoever's, named as the script's declared ones, read up front with
    /// the rest (the names read; the groups found).
    pub named_security_groups: (Vec<String>, Vec<SecurityGroup>),
    /// The DNS support and DNS hostnames attributes of the stack's VPCs by id, read when a VPC is
    /// first converged or as its create or update set them (`kinds/vpc.rs`).
    pub vpc_dns: HashMap<String, (bool, bool)>,
    /// Whether this state was read from AWS (false in check mode).
    pub loaded: bool,
}

impl Ec2State {
    /// Reads the VPCs, the AZs, all subnets, the stack's security groups and internet gateways,
    /// and the security groups named `names` (in any VPC) concurrently.
    pub async fn load(aws: &Aws, stack: &str, names: &[String]) -> Result<Ec2State> {
        let named = async {
            if names.is_empty() {
                return Ok(Vec::new());
            }
            let filter = Filter::builder().name("group-name").set_values(Some(names.to_vec())).build();
            security_groups(aws, vec![filter]).await
        };
        let (vpcs, (zones, zone_ids), subnets, security_groups, internet_gateways, named) = tokio::try_join!(
            vpcs(aws, vec![]),
            zones(aws),
            subnets(aws, vec![]),
            security_groups(aws, vec![stack_filter(stack)]),
            internet_gateways(aws, vec![stack_filter(stack)]),
            named,
        )?;
        let default_vpc = vpcs.iter().find(|v| v.is_default).cloned();
        let named_security_groups = (names.to_vec(), named);
        Ok(Ec2State {
            default_vpc,
            zones,
            zone_ids,
            vpcs,
            subnets,
            security_groups,
            internet_gateways,
            named_security_groups,
            vpc_dns: HashMap::new(),
            loaded: true,
        })
    }

    pub(crate) fn stack_subnet(&self, stack: &str, name: &str) -> Option<&Subnet> {
        self.subnets.iter().find(|s| s.stack.as_deref() == Some(stack) && s.name.as_deref() == Some(name))
    }
}

/// The EC2 filter for resources tagged with the stack.
pub(crate) fn stack_filter(stack: &str) -> Filter {
    Filter::builder().name(format!("tag:{STACK_TAG}")).values(stack).build()
}

/// The value of tag `key`, if present.
pub(crate) fn tag_value(tags: &[Tag], key: &str) -> Option<String> {
    tags.iter().find(|t| t.key() == Some(key)).and_then(|t| t.value().map(str::to_string))
}

/// The tags every EC2 resource deckhand creates carries: `Name` and the stack tag.
pub(crate) fn tags_for(resource: ResourceType, stack: &str, name: &str) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(resource)
        .tags(Tag::builder().key(NAME_TAG).value(name).build())
        .tags(Tag::builder().key(STACK_TAG).value(stack).build())
        .build()
}

/// The end of a create whose resource AWS made but whose next step (`step`: attach it, set an
/// attribute, put rules in) failed: `made`, as AWS has it now, is remembered in the run's reads,
/// so a statement that declares it again in the same session (the REPL's retry) finds it and
/// converges it rather than making a second one (AWS refuses no second VPC or internet gateway
/// of one name). The step's error stays the create's (and, for a create sent ahead of the script,
/// its statement's: see `converge::converge_kept`).
pub(crate) fn remembered_if_failed<R: Resource<Reads = Snapshot>>(
    pass: &Pass,
    made: &R,
    step: Result<()>,
) -> Result<()> {
    if step.is_err() {
        pass.remember_read(|reads| R::remember(reads, made))?;
    }
    step
}

/// VPCs matching `filters` (DescribeVpcs, paginated).
pub async fn vpcs(aws: &Aws, filters: Vec<Filter>) -> Result<Vec<Vpc>> {
    let mut pages = aws.ec2.describe_vpcs().set_filters(Some(filters)).into_paginator().items().send();
    let mut found = Vec::new();
    while let Some(vpc) = pages.next().await {
        found.push(vpc.map_err(|e| aws_error("DescribeVpcs", e))?);
    }
    found
        .iter()
        .map(|v| {
            let id = v.vpc_id().ok_or_else(|| Error::missing("DescribeVpcs", "VpcId"))?;
            let is_default = v.is_default().unwrap_or(false);
            let name = tag_value(v.tags(), NAME_TAG)
                .unwrap_or_else(|| if is_default { "default".into() } else { String::new() });
            let cidrs = v
                .cidr_block_association_set()
                .iter()
                .filter(|a| {
                    a.cidr_block_state().and_then(|s| s.state()).map(|s| s.as_str() == "associated").unwrap_or(true)
                })
                .filter_map(|a| a.cidr_block()?.parse().ok())
                .collect::<Vec<Ipv4Net>>();
            let cidrs = if cidrs.is_empty() {
                v.cidr_block().and_then(|c| c.parse().ok()).into_iter().collect()
            } else {
                cidrs
            };
            Ok(Vpc { id: id.to_string(), name, cidrs, is_default, stack: tag_value(v.tags(), STACK_TAG) })
        })
        .collect()
}

/// Internet gateways matching `filters` (DescribeInternetGateways, paginated).
pub async fn internet_gateways(aws: &Aws, filters: Vec<Filter>) -> Result<Vec<InternetGateway>> {
    let mut pages = aws.ec2.describe_internet_gateways().set_filters(Some(filters)).into_paginator().items().send();
    let mut found = Vec::new();
    while let Some(gateway) = pages.next().await {
        let g = gateway.map_err(|e| aws_error("DescribeInternetGateways", e))?;
        let id =
            g.internet_gateway_id().ok_or_else(|| Error::missing("DescribeInternetGateways", "InternetGatewayId"))?;
        // An attachment AWS is taking off (`detaching`) no longer counts.
        let attached = g.attachments().iter().find(|a| a.state().is_none_or(|s| s.as_str() != "detaching"));
        found.push(InternetGateway {
            id: id.to_string(),
            name: tag_value(g.tags(), NAME_TAG),
            vpc_id: attached.and_then(|a| a.vpc_id()).map(str::to_string),
            stack: tag_value(g.tags(), STACK_TAG),
        });
    }
    Ok(found)
}

/// The region's zone names (every zone the account can use), and its availability zones (not
/// Local or Wavelength Zones) with their zone IDs.
async fn zones(aws: &Aws) -> Result<(Vec<String>, Vec<Zone>)> {
    let out =
        aws.ec2.describe_availability_zones().send().await.map_err(|e| aws_error("DescribeAvailabilityZones", e))?;
    let names = out.availability_zones().iter().filter_map(|z| z.zone_name().map(str::to_string)).collect();
    let zones = out
        .availability_zones()
        .iter()
        .filter(|z| z.zone_type().is_none_or(|t| t == "availability-zone"))
        .filter_map(|z| Some(Zone { name: z.zone_name()?.to_string(), id: z.zone_id()?.to_string() }))
        .collect();
    Ok((names, zones))
}

/// The default VPC of the region (or an unknown one in check mode).
pub fn find_default_vpc(pass: &Pass) -> Result<Vpc> {
    let snapshot = pass.snapshot()?;
    let state = &snapshot.borrow().ec2;
    if !state.loaded {
        return Ok(Vpc { id: UNKNOWN.into(), name: "default".into(), cidrs: vec![], is_default: true, stack: None });
    }
    state.default_vpc.clone().ok_or_else(|| {
        Error::conflict(
            format!("region {} has no default VPC", pass.region().unwrap_or("?")),
            Some("create one with `aws ec2 create-default-vpc`, or look up another VPC with vpc(#{ id: \"vpc-...\" })"),
        )
    })
}

/// A VPC looked up by id or `Name` tag, among the region's (and those this pass plans); a lookup
/// never creates one. A VPC of this stack (`new_vpc`'s) can be looked up too, but not once the
/// script stops declaring it with `new_vpc`: the run would then delete the VPC this lookup hands
/// out, so that is an error at the lookup, and nothing changes.
pub fn find_vpc(pass: &Pass, id: Option<&str>, name: Option<&str>) -> Result<Vpc> {
    let snapshot = pass.snapshot()?;
    let state = &snapshot.borrow().ec2;
    if !state.loaded {
        return Ok(Vpc {
            id: id.unwrap_or(UNKNOWN).into(),
            name: name.unwrap_or_default().into(),
            cidrs: vec![],
            is_default: false,
            stack: None,
        });
    }
    let wanted = id.or(name).unwrap_or_default();
    let found: Vec<&Vpc> =
        state.vpcs.iter().filter(|v| id.is_none_or(|id| v.id == id) && name.is_none_or(|n| v.name == n)).collect();
    let vpc = match found[..] {
        [vpc] => vpc,
        [] => return Err(Error::conflict(format!("no VPC matches {wanted:?}"), None)),
        _ => {
            return Err(Error::conflict(
                format!("{} VPCs match {wanted:?}", found.len()),
                Some("look it up by id instead"),
            ));
        }
    };
    let stack = pass.stack()?;
    let declared = pass.declared();
    // A VPC marked `keep: true` stays when new_vpc no longer declares it: looking it up is safe.
    let kept = snapshot.borrow().tagged.is_marked(&vpc.id);
    if vpc.stack.as_deref() == Some(stack.as_str())
        && declared.whole_script
        && !declared.vpcs.contains(&vpc.name)
        && !kept
    {
        return Err(Error::conflict(
            format!(
                "VPC {} ({}) belongs to stack {stack} (new_vpc created it), and this script no longer declares it \
                 with new_vpc: the run would delete the VPC this lookup uses",
                vpc.name, vpc.id
            ),
            Some(&format!(
                "declare it with new_vpc(#{{ name: \"{}\", cidr: \"{}\" }}) (a lookup never owns or creates a VPC)",
                vpc.name,
                vpc.cidrs.first().map(ToString::to_string).unwrap_or_default()
            )),
        ));
    }
    Ok(vpc.clone())
}

/// The default subnet of `az` in the default VPC `vpc`.
pub fn find_default_subnet(pass: &Pass, vpc: &Vpc, az: &str) -> Result<Subnet> {
    validate_az(pass, "default_subnet.az", az)?;
    let snapshot = pass.snapshot()?;
    let state = &snapshot.borrow().ec2;
    if !state.loaded {
        return Ok(Subnet {
            id: UNKNOWN.into(),
            name: None,
            vpc_id: vpc.id.clone(),
            az: az.into(),
            cidr: Ipv4Net::default(),
            public_ip: true,
            default_for_az: true,
            stack: None,
        });
    }
    state.subnets.iter().find(|s| s.default_for_az && s.az == az && s.vpc_id == vpc.id).cloned().ok_or_else(|| {
        Error::conflict(
            format!("VPC {} has no default subnet in {az}", vpc.id),
            Some("default subnets exist only in the default VPC; create one with `aws ec2 create-default-subnet`"),
        )
    })
}

pub(crate) fn validate_az(pass: &Pass, key: &str, az: &str) -> Result<()> {
    let snapshot = pass.snapshot()?;
    let zones = &snapshot.borrow().ec2.zones;
    if !zones.is_empty() {
        if zones.iter().any(|z| z == az) {
            return Ok(());
        }
        return Err(Error::invalid(
            key,
            format!("{az:?}"),
            format!("an availability zone of {}: {}", pass.region().unwrap_or("the region"), zones.join(", ")),
        ));
    }
    match pass.region() {
        Some(region) if !az.starts_with(region) || az.len() <= region.len() => {
            Err(Error::invalid(key, format!("{az:?}"), format!("an availability zone of {region}, such as {region}a")))
        }
        _ => Ok(()),
    }
}
