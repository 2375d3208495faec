//! EC2 networking: VPCs, subnets and security groups, and how each converges.

use std::collections::BTreeSet;
use std::fmt;

use aws_sdk_ec2::types::{
    Filter, IpPermission, IpRange, Ipv6Range, ResourceType, Tag, TagSpecification, UserIdGroupPair,
};
use ipnet::{IpNet, Ipv4Net};

use crate::aws::NAME_TAG;
use crate::error::{Error, Result, aws_error};
use crate::pass::{Pass, STACK_TAG};
use crate::plan::{Change, ChangeKind, FieldDiff, UNKNOWN, is_known};
use crate::runtime::Aws;

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

/// A subnet as it exists (or will exist) in AWS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    /// `subnet-...` or [`UNKNOWN`].
    pub id: String,
    /// Its `Name` tag.
    pub name: Option<String>,
    /// The VPC it is in.
    pub vpc_id: String,
    /// Availability zone, e.g. `us-west-2a`.
    pub az: String,
    /// IPv4 CIDR block.
    pub cidr: Ipv4Net,
    /// Whether instances get a public IP by default.
    pub public_ip: bool,
    /// Whether it is the default subnet of its AZ.
    pub default_for_az: bool,
    /// Its `deckhand:stack` tag.
    pub stack: Option<String>,
}

/// What a script asks of a subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetSpec {
    /// The `Name` tag, unique within the stack.
    pub name: String,
    /// The VPC to create it in.
    pub vpc: Vpc,
    /// Availability zone.
    pub az: String,
    /// IPv4 CIDR block, inside the VPC's.
    pub cidr: Ipv4Net,
    /// Assign public IPs on launch (default false).
    pub public_ip: bool,
}

/// Where a security group rule admits traffic from (ingress) or sends it to (egress).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Peer {
    /// An IPv4 or IPv6 CIDR block.
    Cidr(String),
    /// Another security group, by id (may be [`UNKNOWN`] in plan mode).
    Group(String),
    /// A managed prefix list (only ever found in AWS; scripts cannot ask for it yet).
    PrefixList(String),
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Cidr(c) | Peer::Group(c) | Peer::PrefixList(c) => f.write_str(c),
        }
    }
}

/// One security group rule, flattened: one protocol, one port range, one peer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rule {
    /// `tcp`, `udp`, `icmp` or `-1` (all).
    pub protocol: String,
    /// First port (-1 for all protocols / all ICMP).
    pub from_port: i32,
    /// Last port.
    pub to_port: i32,
    /// The other side.
    pub peer: Peer,
}

impl Rule {
    fn describe(&self, direction: &str) -> String {
        let ports = match (self.protocol.as_str(), self.from_port, self.to_port) {
            ("-1", _, _) => "all traffic".to_string(),
            (p, -1, _) => format!("{p} all"),
            (p, a, b) if a == b => format!("{p} {a}"),
            (p, a, b) => format!("{p} {a}-{b}"),
        };
        format!("{ports} {direction} {}", self.peer)
    }
}

/// A security group as it exists in AWS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityGroup {
    /// `sg-...` or [`UNKNOWN`].
    pub id: String,
    /// The group name (also its `Name` tag).
    pub name: String,
    /// The VPC it is in.
    pub vpc_id: String,
    /// Its description (cannot change in place).
    pub description: String,
    /// Inbound rules.
    pub ingress: Vec<Rule>,
    /// Outbound rules.
    pub egress: Vec<Rule>,
    /// Its `deckhand:stack` tag.
    pub stack: Option<String>,
}

/// What a script asks of a security group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityGroupSpec {
    /// Group name, unique within the VPC.
    pub name: String,
    /// The VPC.
    pub vpc: Vpc,
    /// Description; defaults to `managed by deckhand`.
    pub description: Option<String>,
    /// Exactly the inbound rules the group should have.
    pub ingress: Vec<Rule>,
    /// Exactly the outbound rules; `None` keeps AWS's default (all traffic to anywhere).
    pub egress: Option<Vec<Rule>>,
}

const DEFAULT_DESCRIPTION: &str = "managed by deckhand";

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
    /// Whether this state was read from AWS (false in check mode).
    pub loaded: bool,
}

impl Ec2State {
    /// Reads the default VPC, the AZs, all subnets and the stack's security groups concurrently.
    pub async fn load(aws: &Aws, stack: &str) -> Result<Ec2State> {
        let (default_vpc, zones, subnets, security_groups) = tokio::try_join!(
            default_vpc(aws),
            zones(aws),
            subnets(aws, vec![]),
            security_groups(aws, vec![stack_filter(stack)]),
        )?;
        Ok(Ec2State { default_vpc, zones, subnets, security_groups, loaded: true })
    }

    fn stack_subnet(&self, stack: &str, name: &str) -> Option<&Subnet> {
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
    Ok(out
        .vpcs()
        .iter()
        .map(|v| {
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
            Vpc { id: v.vpc_id().unwrap_or_default().to_string(), name, cidrs, is_default }
        })
        .collect())
}

async fn zones(aws: &Aws) -> Result<Vec<String>> {
    let out =
        aws.ec2.describe_availability_zones().send().await.map_err(|e| aws_error("DescribeAvailabilityZones", e))?;
    Ok(out.availability_zones().iter().filter_map(|z| z.zone_name().map(str::to_string)).collect())
}

pub(crate) async fn subnets(aws: &Aws, filters: Vec<Filter>) -> Result<Vec<Subnet>> {
    let mut pages = aws.ec2.describe_subnets().set_filters(Some(filters)).into_paginator().items().send();
    let mut found = Vec::new();
    while let Some(subnet) = pages.next().await {
        let s = subnet.map_err(|e| aws_error("DescribeSubnets", e))?;
        let Some(cidr) = s.cidr_block().and_then(|c| c.parse().ok()) else {
            continue;
        };
        found.push(Subnet {
            id: s.subnet_id().unwrap_or_default().to_string(),
            name: tag_value(s.tags(), NAME_TAG),
            vpc_id: s.vpc_id().unwrap_or_default().to_string(),
            az: s.availability_zone().unwrap_or_default().to_string(),
            cidr,
            public_ip: s.map_public_ip_on_launch().unwrap_or(false),
            default_for_az: s.default_for_az().unwrap_or(false),
            stack: tag_value(s.tags(), STACK_TAG),
        });
    }
    Ok(found)
}

pub(crate) async fn security_groups(aws: &Aws, filters: Vec<Filter>) -> Result<Vec<SecurityGroup>> {
    let mut pages = aws.ec2.describe_security_groups().set_filters(Some(filters)).into_paginator().items().send();
    let mut found = Vec::new();
    while let Some(group) = pages.next().await {
        let g = group.map_err(|e| aws_error("DescribeSecurityGroups", e))?;
        found.push(SecurityGroup {
            id: g.group_id().unwrap_or_default().to_string(),
            name: g.group_name().unwrap_or_default().to_string(),
            vpc_id: g.vpc_id().unwrap_or_default().to_string(),
            description: g.description().unwrap_or_default().to_string(),
            ingress: flatten(g.ip_permissions()),
            egress: flatten(g.ip_permissions_egress()),
            stack: tag_value(g.tags(), STACK_TAG),
        });
    }
    Ok(found)
}

fn flatten(permissions: &[IpPermission]) -> Vec<Rule> {
    let mut rules = Vec::new();
    for p in permissions {
        let protocol = match p.ip_protocol().unwrap_or("-1") {
            "6" => "tcp",
            "17" => "udp",
            "1" => "icmp",
            other => other,
        }
        .to_string();
        let (from_port, to_port) =
            if protocol == "-1" { (-1, -1) } else { (p.from_port().unwrap_or(-1), p.to_port().unwrap_or(-1)) };
        let rule = |peer| Rule { protocol: protocol.clone(), from_port, to_port, peer };
        rules.extend(p.ip_ranges().iter().filter_map(|r| r.cidr_ip()).map(|c| rule(Peer::Cidr(c.to_string()))));
        rules.extend(p.ipv6_ranges().iter().filter_map(|r| r.cidr_ipv6()).map(|c| rule(Peer::Cidr(c.to_string()))));
        rules.extend(
            p.user_id_group_pairs().iter().filter_map(|g| g.group_id()).map(|g| rule(Peer::Group(g.to_string()))),
        );
        rules.extend(
            p.prefix_list_ids()
                .iter()
                .filter_map(|l| l.prefix_list_id())
                .map(|l| rule(Peer::PrefixList(l.to_string()))),
        );
    }
    rules.sort();
    rules.dedup();
    rules
}

fn permission(rule: &Rule) -> IpPermission {
    let mut p = IpPermission::builder().ip_protocol(&rule.protocol);
    if rule.protocol != "-1" {
        p = p.from_port(rule.from_port).to_port(rule.to_port);
    }
    p = match &rule.peer {
        Peer::Cidr(c) if c.contains(':') => p.ipv6_ranges(Ipv6Range::builder().cidr_ipv6(c).build()),
        Peer::Cidr(c) => p.ip_ranges(IpRange::builder().cidr_ip(c).build()),
        Peer::Group(g) => p.user_id_group_pairs(UserIdGroupPair::builder().group_id(g).build()),
        Peer::PrefixList(l) => p.prefix_list_ids(aws_sdk_ec2::types::PrefixListId::builder().prefix_list_id(l).build()),
    };
    p.build()
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

fn validate_az(pass: &Pass, key: &str, az: &str) -> Result<()> {
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

/// Checks a subnet spec against the region and the VPC (where known), without changing anything.
fn validate_subnet(pass: &Pass, spec: &SubnetSpec, state: &Ec2State, stack: &str) -> Result<()> {
    if !(16..=28).contains(&spec.cidr.prefix_len()) {
        return Err(Error::invalid(
            "subnet.cidr",
            format!("{:?}", spec.cidr.to_string()),
            "a block from /16 to /28 (AWS's subnet size limits)",
        ));
    }
    if spec.cidr.trunc() != spec.cidr {
        return Err(Error::invalid(
            "subnet.cidr",
            format!("{:?}", spec.cidr.to_string()),
            format!("a network address; did you mean {}?", spec.cidr.trunc()),
        ));
    }
    if !spec.vpc.cidrs.is_empty() && !spec.vpc.cidrs.iter().any(|v| v.contains(&spec.cidr)) {
        let blocks: Vec<String> = spec.vpc.cidrs.iter().map(ToString::to_string).collect();
        return Err(Error::invalid(
            "subnet.cidr",
            format!("{:?}", spec.cidr.to_string()),
            format!("a block inside VPC {} ({})", spec.vpc.id, blocks.join(", ")),
        ));
    }
    if let Some(other) = state.subnets.iter().find(|s| {
        s.vpc_id == spec.vpc.id
            && (s.cidr.contains(&spec.cidr) || spec.cidr.contains(&s.cidr))
            && !(s.stack.as_deref() == Some(stack) && s.name.as_deref() == Some(spec.name.as_str()))
    }) {
        return Err(Error::invalid(
            "subnet.cidr",
            format!("{:?}", spec.cidr.to_string()),
            format!("a block that overlaps no other subnet; it overlaps {}", describe_subnet(other)),
        ));
    }
    validate_az(pass, "subnet.az", &spec.az)
}

fn describe_subnet(subnet: &Subnet) -> String {
    let name = subnet.name.as_deref().unwrap_or("(no name)");
    if is_known(&subnet.id) {
        format!("{} ({name}, {}, {})", subnet.id, subnet.cidr, subnet.az)
    } else {
        format!("subnet {name} of this script ({}, {})", subnet.cidr, subnet.az)
    }
}

/// Converges a subnet: finds it by name and stack tag, creates it when missing, fixes drift.
pub fn ensure_subnet(pass: &Pass, spec: &SubnetSpec) -> Result<Subnet> {
    let stack = pass.stack()?;
    let snapshot = pass.snapshot()?;
    let existing = {
        let state = &snapshot.borrow().ec2;
        validate_subnet(pass, spec, state, &stack)?;
        state.stack_subnet(&stack, &spec.name).cloned()
    };
    let summary = |s: &Subnet| format!("{}, {}, {}", s.id, s.az, s.cidr);
    if let Some(mut subnet) = existing {
        if (subnet.vpc_id != spec.vpc.id && is_known(&spec.vpc.id)) || subnet.az != spec.az || subnet.cidr != spec.cidr
        {
            return Err(Error::conflict(
                format!(
                    "subnet {} exists as {} in {} ({}); the script asks for {} in {} ({}), and AWS cannot change a subnet's VPC, AZ or CIDR in place",
                    spec.name, subnet.cidr, subnet.az, subnet.vpc_id, spec.cidr, spec.az, spec.vpc.id
                ),
                Some("give the new subnet another name, then `deckhand destroy` or delete the old one"),
            ));
        }
        if subnet.public_ip == spec.public_ip {
            pass.log.record(Change::new(ChangeKind::Unchanged, "subnet", &spec.name, summary(&subnet)));
            return Ok(subnet);
        }
        let diff = FieldDiff::changed("public_ip", subnet.public_ip, spec.public_ip);
        if pass.mode.applies() {
            set_public_ip(pass, &subnet.id, spec.public_ip)?;
            subnet.public_ip = spec.public_ip;
            replace_subnet(&mut snapshot.borrow_mut().ec2, &subnet);
        }
        pass.log.record(Change::new(ChangeKind::Update, "subnet", &spec.name, summary(&subnet)).with_diffs(vec![diff]));
        return Ok(subnet);
    }
    let mut subnet = Subnet {
        id: UNKNOWN.into(),
        name: Some(spec.name.clone()),
        vpc_id: spec.vpc.id.clone(),
        az: spec.az.clone(),
        cidr: spec.cidr,
        public_ip: spec.public_ip,
        default_for_az: false,
        stack: Some(stack.clone()),
    };
    if pass.mode.applies() {
        subnet.id = create_subnet(pass, spec, &stack)?;
        if spec.public_ip {
            set_public_ip(pass, &subnet.id, true)?;
        }
    }
    // Planned subnets join the snapshot too, so later overlaps and lookups in the pass see them.
    replace_subnet(&mut snapshot.borrow_mut().ec2, &subnet);
    pass.log.record(Change::new(ChangeKind::Create, "subnet", &spec.name, summary(&subnet)));
    Ok(subnet)
}

fn replace_subnet(state: &mut Ec2State, subnet: &Subnet) {
    state.subnets.retain(|s| !(s.stack == subnet.stack && s.name == subnet.name && s.vpc_id == subnet.vpc_id));
    state.subnets.push(subnet.clone());
}

fn create_subnet(pass: &Pass, spec: &SubnetSpec, stack: &str) -> Result<String> {
    let created = pass.apply(async |aws| {
        aws.ec2
            .create_subnet()
            .vpc_id(&spec.vpc.id)
            .availability_zone(&spec.az)
            .cidr_block(spec.cidr.to_string())
            .tag_specifications(tags_for(ResourceType::Subnet, stack, &spec.name))
            .send()
            .await
            .map_err(|e| aws_error("CreateSubnet", e))
    });
    match created {
        Ok(out) => Ok(out.subnet().and_then(|s| s.subnet_id()).unwrap_or_default().to_string()),
        Err(err) => {
            if err.aws_code() != Some("InvalidSubnet.Conflict") {
                return Err(err);
            }
            // Created meanwhile (e.g. by a concurrent run)? Adopt it only if it is ours.
            let filters = vec![
                Filter::builder().name("vpc-id").values(&spec.vpc.id).build(),
                Filter::builder().name("cidr-block").values(spec.cidr.to_string()).build(),
            ];
            let found = pass.apply(async |aws| subnets(aws, filters).await)?;
            found
                .into_iter()
                .find(|s| s.stack.as_deref() == Some(stack) && s.name.as_deref() == Some(spec.name.as_str()))
                .map(|s| s.id)
                .ok_or(err)
        }
    }
}

fn set_public_ip(pass: &Pass, subnet_id: &str, on: bool) -> Result<()> {
    pass.apply(async |aws| {
        aws.ec2
            .modify_subnet_attribute()
            .subnet_id(subnet_id)
            .map_public_ip_on_launch(aws_sdk_ec2::types::AttributeBooleanValue::builder().value(on).build())
            .send()
            .await
            .map_err(|e| aws_error("ModifySubnetAttribute", e))
    })?;
    Ok(())
}

/// The egress AWS gives every new security group.
pub fn default_egress() -> Vec<Rule> {
    vec![Rule { protocol: "-1".into(), from_port: -1, to_port: -1, peer: Peer::Cidr("0.0.0.0/0".into()) }]
}

/// Converges a security group: the group itself, then exactly the script's rules.
pub fn ensure_security_group(pass: &Pass, spec: &SecurityGroupSpec) -> Result<SecurityGroup> {
    let stack = pass.stack()?;
    let snapshot = pass.snapshot()?;
    let existing = snapshot.borrow().ec2.security_groups.iter().find(|g| g.name == spec.name).cloned();
    let description = spec.description.clone().unwrap_or_else(|| DEFAULT_DESCRIPTION.to_string());
    let wanted_egress = spec.egress.clone().unwrap_or_else(default_egress);
    let summary = |g: &SecurityGroup| g.id.clone();

    let Some(mut group) = existing else {
        let mut group = SecurityGroup {
            id: UNKNOWN.into(),
            name: spec.name.clone(),
            vpc_id: spec.vpc.id.clone(),
            description: description.clone(),
            ingress: vec![],
            egress: default_egress(),
            stack: Some(stack.clone()),
        };
        if pass.mode.applies() {
            group = create_security_group(pass, spec, &description, &stack)?;
            apply_rules(pass, &group, &spec.ingress, &wanted_egress)?;
        } else {
            refuse_foreign_group(pass, spec, &stack)?;
        }
        group.ingress = spec.ingress.clone();
        group.egress = wanted_egress;
        replace_group(&mut snapshot.borrow_mut().ec2, &group);
        pass.log.record(Change::new(ChangeKind::Create, "security_group", &spec.name, summary(&group)));
        return Ok(group);
    };

    if is_known(&spec.vpc.id) && group.vpc_id != spec.vpc.id {
        return Err(Error::conflict(
            format!(
                "security group {} exists in {}, not in {}; AWS cannot move a security group",
                spec.name, group.vpc_id, spec.vpc.id
            ),
            Some("give the group another name"),
        ));
    }
    if spec.description.is_some() && group.description != description {
        return Err(Error::conflict(
            format!(
                "security group {} has description {:?}, the script asks for {:?}; AWS cannot change a description in place",
                spec.name, group.description, description
            ),
            Some("keep the old description, or give the group another name"),
        ));
    }
    let mut diffs = rule_diffs("ingress", "from", &group.ingress, &spec.ingress);
    diffs.extend(rule_diffs("egress", "to", &group.egress, &wanted_egress));
    if diffs.is_empty() {
        pass.log.record(Change::new(ChangeKind::Unchanged, "security_group", &spec.name, summary(&group)));
        return Ok(group);
    }
    if pass.mode.applies() {
        apply_rules(pass, &group, &spec.ingress, &wanted_egress)?;
        group.ingress = spec.ingress.clone();
        group.egress = wanted_egress;
        replace_group(&mut snapshot.borrow_mut().ec2, &group);
    }
    pass.log.record(Change::new(ChangeKind::Update, "security_group", &spec.name, summary(&group)).with_diffs(diffs));
    Ok(group)
}

/// In plan, a group of the same name outside the stack would make the apply fail: say so now.
fn refuse_foreign_group(pass: &Pass, spec: &SecurityGroupSpec, stack: &str) -> Result<()> {
    if !is_known(&spec.vpc.id) {
        return Ok(());
    }
    let filters = vec![
        Filter::builder().name("vpc-id").values(&spec.vpc.id).build(),
        Filter::builder().name("group-name").values(&spec.name).build(),
    ];
    let Some(found) = pass.read(async |aws| security_groups(aws, filters).await) else { return Ok(()) };
    match found?.into_iter().next() {
        Some(group) => Err(foreign_group(spec, &group, stack)),
        None => Ok(()),
    }
}

fn foreign_group(spec: &SecurityGroupSpec, group: &SecurityGroup, stack: &str) -> Error {
    Error::conflict(
        format!(
            "a security group named {} already exists in {} ({}) and is not part of stack {stack}",
            spec.name, spec.vpc.id, group.id
        ),
        Some("deckhand never adopts resources it did not create; choose another name"),
    )
}

fn replace_group(state: &mut Ec2State, group: &SecurityGroup) {
    state.security_groups.retain(|g| g.name != group.name);
    state.security_groups.push(group.clone());
}

fn rule_diffs(field: &str, direction: &str, current: &[Rule], wanted: &[Rule]) -> Vec<FieldDiff> {
    let current: BTreeSet<&Rule> = current.iter().collect();
    let wanted: BTreeSet<&Rule> = wanted.iter().collect();
    let added = wanted.difference(&current).map(|r| FieldDiff::added(field, r.describe(direction)));
    let removed = current.difference(&wanted).map(|r| FieldDiff::removed(field, r.describe(direction)));
    added.chain(removed).collect()
}

fn create_security_group(
    pass: &Pass,
    spec: &SecurityGroupSpec,
    description: &str,
    stack: &str,
) -> Result<SecurityGroup> {
    let created = pass.apply(async |aws| {
        aws.ec2
            .create_security_group()
            .group_name(&spec.name)
            .description(description)
            .vpc_id(&spec.vpc.id)
            .tag_specifications(tags_for(ResourceType::SecurityGroup, stack, &spec.name))
            .send()
            .await
            .map_err(|e| aws_error("CreateSecurityGroup", e))
    });
    let id = match created {
        Ok(out) => out.group_id().unwrap_or_default().to_string(),
        Err(err) => {
            if err.aws_code() != Some("InvalidGroup.Duplicate") {
                return Err(err);
            }
            let filters = vec![
                Filter::builder().name("vpc-id").values(&spec.vpc.id).build(),
                Filter::builder().name("group-name").values(&spec.name).build(),
            ];
            let found = pass.apply(async |aws| security_groups(aws, filters).await)?;
            return match found.into_iter().next() {
                Some(group) if group.stack.as_deref() == Some(stack) => Ok(group),
                Some(group) => Err(foreign_group(spec, &group, stack)),
                None => Err(err),
            };
        }
    };
    Ok(SecurityGroup {
        id,
        name: spec.name.clone(),
        vpc_id: spec.vpc.id.clone(),
        description: description.to_string(),
        ingress: vec![],
        egress: default_egress(),
        stack: Some(stack.to_string()),
    })
}

/// Makes the group's rules exactly `ingress` and `egress`: revokes the extra, authorizes the missing.
fn apply_rules(pass: &Pass, group: &SecurityGroup, ingress: &[Rule], egress: &[Rule]) -> Result<()> {
    let missing = |current: &[Rule], wanted: &[Rule]| -> Vec<IpPermission> {
        wanted.iter().filter(|r| !current.contains(r)).map(permission).collect()
    };
    let extra = |current: &[Rule], wanted: &[Rule]| -> Vec<IpPermission> {
        current.iter().filter(|r| !wanted.contains(r)).map(permission).collect()
    };
    let id = group.id.as_str();
    let revoke_in = extra(&group.ingress, ingress);
    let revoke_out = extra(&group.egress, egress);
    let grant_in = missing(&group.ingress, ingress);
    let grant_out = missing(&group.egress, egress);
    pass.apply(async |aws| {
        if !revoke_in.is_empty() {
            aws.ec2
                .revoke_security_group_ingress()
                .group_id(id)
                .set_ip_permissions(Some(revoke_in))
                .send()
                .await
                .map_err(|e| aws_error("RevokeSecurityGroupIngress", e))?;
        }
        if !revoke_out.is_empty() {
            aws.ec2
                .revoke_security_group_egress()
                .group_id(id)
                .set_ip_permissions(Some(revoke_out))
                .send()
                .await
                .map_err(|e| aws_error("RevokeSecurityGroupEgress", e))?;
        }
        if !grant_in.is_empty() {
            aws.ec2
                .authorize_security_group_ingress()
                .group_id(id)
                .set_ip_permissions(Some(grant_in))
                .send()
                .await
                .map_err(|e| aws_error("AuthorizeSecurityGroupIngress", e))?;
        }
        if !grant_out.is_empty() {
            aws.ec2
                .authorize_security_group_egress()
                .group_id(id)
                .set_ip_permissions(Some(grant_out))
                .send()
                .await
                .map_err(|e| aws_error("AuthorizeSecurityGroupEgress", e))?;
        }
        Ok(())
    })
}

/// Deletes a subnet (fails with `DependencyViolation` while network interfaces remain).
pub async fn delete_subnet(aws: &Aws, id: &str) -> Result<()> {
    aws.ec2.delete_subnet().subnet_id(id).send().await.map(drop).map_err(|e| aws_error("DeleteSubnet", e))
}

/// Deletes a security group (fails with `DependencyViolation` while something uses it).
pub async fn delete_security_group(aws: &Aws, id: &str) -> Result<()> {
    aws.ec2.delete_security_group().group_id(id).send().await.map(drop).map_err(|e| aws_error("DeleteSecurityGroup", e))
}

/// Revokes every rule of `groups` that names another security group, so that groups which
/// reference each other can then be deleted in any order.
pub async fn revoke_group_references(aws: &Aws, groups: &[SecurityGroup]) -> Result<()> {
    for group in groups {
        let by_group = |rules: &[Rule]| -> Vec<IpPermission> {
            rules.iter().filter(|r| matches!(r.peer, Peer::Group(_))).map(permission).collect()
        };
        let (ingress, egress) = (by_group(&group.ingress), by_group(&group.egress));
        if !ingress.is_empty() {
            aws.ec2
                .revoke_security_group_ingress()
                .group_id(&group.id)
                .set_ip_permissions(Some(ingress))
                .send()
                .await
                .map_err(|e| aws_error("RevokeSecurityGroupIngress", e))?;
        }
        if !egress.is_empty() {
            aws.ec2
                .revoke_security_group_egress()
                .group_id(&group.id)
                .set_ip_permissions(Some(egress))
                .send()
                .await
                .map_err(|e| aws_error("RevokeSecurityGroupEgress", e))?;
        }
    }
    Ok(())
}

/// Parses and checks a rule's port text: `80`, `8000-8100`.
pub fn parse_ports(key: &str, text: &str) -> Result<(i32, i32)> {
    let bad = || Error::invalid(key, format!("{text:?}"), "a port from 1 to 65535, or a range like \"8000-8100\"");
    let (from, to) = match text.split_once('-') {
        Some((a, b)) => (a.trim().parse::<i64>().map_err(|_| bad())?, b.trim().parse::<i64>().map_err(|_| bad())?),
        None => {
            let p = text.trim().parse::<i64>().map_err(|_| bad())?;
            (p, p)
        }
    };
    check_port(key, from)?;
    check_port(key, to)?;
    if from > to {
        return Err(bad());
    }
    Ok((from as i32, to as i32))
}

/// Checks that `port` is a TCP/UDP port (1-65535).
pub fn check_port(key: &str, port: i64) -> Result<()> {
    if (1..=65535).contains(&port) { Ok(()) } else { Err(Error::invalid(key, port, "a port from 1 to 65535")) }
}

/// Parses a CIDR block (IPv4 or IPv6) for a security group rule.
pub fn parse_rule_cidr(key: &str, text: &str) -> Result<String> {
    let net: IpNet = text
        .parse()
        .map_err(|_| Error::invalid(key, format!("{text:?}"), "a CIDR block like \"0.0.0.0/0\" or \"10.0.0.0/16\""))?;
    if net.trunc() != net {
        return Err(Error::invalid(
            key,
            format!("{text:?}"),
            format!("a network address; did you mean \"{}\"?", net.trunc()),
        ));
    }
    Ok(net.to_string())
}

/// Parses an IPv4 CIDR block for a subnet.
pub fn parse_subnet_cidr(key: &str, text: &str) -> Result<Ipv4Net> {
    text.parse().map_err(|_| Error::invalid(key, format!("{text:?}"), "an IPv4 CIDR block like \"10.0.1.0/24\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_parse_single_and_ranges() {
        assert_eq!(parse_ports("p", "80").unwrap(), (80, 80));
        assert_eq!(parse_ports("p", "8000-8100").unwrap(), (8000, 8100));
        assert!(parse_ports("p", "0").is_err());
        assert!(parse_ports("p", "70000").is_err());
        assert!(parse_ports("p", "90-80").is_err());
        assert!(parse_ports("p", "http").is_err());
    }

    #[test]
    fn rule_cidrs_must_be_network_addresses() {
        assert_eq!(parse_rule_cidr("c", "0.0.0.0/0").unwrap(), "0.0.0.0/0");
        assert_eq!(parse_rule_cidr("c", "::/0").unwrap(), "::/0");
        let err = parse_rule_cidr("c", "10.0.0.1/16").unwrap_err().to_string();
        assert!(err.contains("did you mean \"10.0.0.0/16\""), "{err}");
        assert!(parse_rule_cidr("c", "10.0.0.0/33").is_err());
    }

    #[test]
    fn rule_diffs_show_added_and_removed() {
        let web = Rule { protocol: "tcp".into(), from_port: 80, to_port: 80, peer: Peer::Cidr("0.0.0.0/0".into()) };
        let ssh = Rule { protocol: "tcp".into(), from_port: 22, to_port: 22, peer: Peer::Cidr("0.0.0.0/0".into()) };
        let diffs = rule_diffs("ingress", "from", std::slice::from_ref(&ssh), &[web]);
        let text: Vec<String> = diffs.iter().map(ToString::to_string).collect();
        assert_eq!(text, ["ingress: + tcp 80 from 0.0.0.0/0", "ingress: - tcp 22 from 0.0.0.0/0"]);
    }
}
