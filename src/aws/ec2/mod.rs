//! EC2 networking: VPCs and what every EC2 kind shares (the snapshot's EC2 part, tags, lookups);
//! subnets and security groups converge in their own files.

mod security_group;
mod subnet;

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use ipnet::Ipv4Net;

use crate::aws::NAME_TAG;
use crate::aws::Pass;
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
}

/// The EC2 part of a run's snapshot.
#[derive(Debug, Default, Clone)]
pub struct Ec2State {
    /// The region's default VPC, if it has one.
    pub default_vpc: Option<Vpc>,
    /// The region's available AZ names (empty in check mode).
    pub zones: Vec<String>,
    /// Every subnet in the region (to find the stack's, default ones, and CIDR overlaps).
    pub subnets: Vec<Subnet>,
    /// The stack's security groups.
    pub security_groups: Vec<SecurityGroup>,
    /// The groups of any VPC, whoever's, named as the script's declared ones, read up front with
    /// the rest (the names read; the groups found).
    pub named_security_groups: (Vec<String>, Vec<SecurityGroup>),
    /// Whether this state was read from AWS (false in check mode).
    pub loaded: bool,
}

impl Ec2State {
    /// Reads the default VPC, the AZs, all subnets, the stack's security groups and those named
    /// `names` (in any VPC) concurrently.
    pub async fn load(aws: &Aws, stack: &str, names: &[String]) -> Result<Ec2State> {
        let named = async {
            if names.is_empty() {
                return Ok(Vec::new());
            }
            let filter = Filter::builder().name("group-name").set_values(Some(names.to_vec())).build();
            security_groups(aws, vec![filter]).await
        };
        let (default_vpc, zones, subnets, security_groups, named) = tokio::try_join!(
            default_vpc(aws),
            zones(aws),
            subnets(aws, vec![]),
            security_groups(aws, vec![stack_filter(stack)]),
            named,
        )?;
        let named_security_groups = (names.to_vec(), named);
        Ok(Ec2State { default_vpc, zones, subnets, security_groups, named_security_groups, loaded: true })
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

async fn default_vpc(aws: &Aws) -> Result<Option<Vpc>> {
    let filter = Filter::builder().name("isDefault").values("true").build();
    Ok(vpcs(aws, vec![filter]).await?.into_iter().next())
}

/// VPCs matching `filters`.
pub async fn vpcs(aws: &Aws, filters: Vec<Filter>) -> Result<Vec<Vpc>> {
    let out =
        aws.ec2.describe_vpcs().set_filters(Some(filters)).send().await.map_err(|e| aws_error("DescribeVpcs", e))?;
    out.vpcs()
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
            Ok(Vpc { id: id.to_string(), name, cidrs, is_default })
        })
        .collect()
}

async fn zones(aws: &Aws) -> Result<Vec<String>> {
    let out =
        aws.ec2.describe_availability_zones().send().await.map_err(|e| aws_error("DescribeAvailabilityZones", e))?;
    Ok(out.availability_zones().iter().filter_map(|z| z.zone_name().map(str::to_string)).collect())
}

/// The default VPC of the region (or an unknown one in check mode).
pub fn find_default_vpc(pass: &Pass) -> Result<Vpc> {
    let snapshot = pass.snapshot()?;
    let state = &snapshot.borrow().ec2;
    if !state.loaded {
        return Ok(Vpc { id: UNKNOWN.into(), name: "default".into(), cidrs: vec![], is_default: true });
    }
    state.default_vpc.clone().ok_or_else(|| {
        Error::conflict(
            format!("region {} has no default VPC", pass.region().unwrap_or("?")),
            Some("create one with `aws ec2 create-default-vpc`, or look up another VPC with vpc(#{ id: \"vpc-...\" })"),
        )
    })
}

/// A VPC looked up by id or `Name` tag.
pub fn find_vpc(pass: &Pass, id: Option<&str>, name: Option<&str>) -> Result<Vpc> {
    let mut filters = Vec::new();
    if let Some(id) = id {
        filters.push(Filter::builder().name("vpc-id").values(id).build());
    }
    if let Some(name) = name {
        filters.push(Filter::builder().name("tag:Name").values(name).build());
    }
    let wanted = id.or(name).unwrap_or_default();
    let Some(found) = pass.read(async |aws| vpcs(aws, filters).await) else {
        return Ok(Vpc {
            id: id.unwrap_or(UNKNOWN).into(),
            name: name.unwrap_or_default().into(),
            cidrs: vec![],
            is_default: false,
        });
    };
    let mut found = found?;
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(Error::conflict(format!("no VPC matches {wanted:?}"), None)),
        n => Err(Error::conflict(format!("{n} VPCs match {wanted:?}"), Some("look it up by id instead"))),
    }
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
