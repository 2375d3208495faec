//! Subnets: their reads, validation (size, VPC, overlaps, AZ) and how a subnet converges.

use aws_sdk_ec2::types::{AttributeBooleanValue, Filter, ResourceType};
use futures_util::future::LocalBoxFuture;
use ipnet::Ipv4Net;

use super::{Ec2State, Vpc, remembered_if_failed, tag_value, tags_for, validate_az};
use crate::aws::Pass;
use crate::aws::{NAME_TAG, Snapshot};
use crate::converge::{Created, Drift, Resource};
use crate::error::{Error, Result, aws_error, sent};
use crate::plan::{FieldDiff, UNKNOWN, is_known};
use crate::runtime::Aws;
use crate::tagged::Keepable;
use crate::tagged::STACK_TAG;

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

/// Subnets matching `filters` (DescribeSubnets, paginated).
pub(crate) async fn subnets(aws: &Aws, filters: Vec<Filter>) -> Result<Vec<Subnet>> {
    let mut pages = aws.ec2.describe_subnets().set_filters(Some(filters)).into_paginator().items().send();
    let mut found = Vec::new();
    while let Some(subnet) = pages.next().await {
        let s = subnet.map_err(|e| aws_error("DescribeSubnets", e))?;
        let Some(cidr) = s.cidr_block().and_then(|c| c.parse().ok()) else {
            continue;
        };
        found.push(Subnet {
            id: s.subnet_id().ok_or_else(|| Error::missing("DescribeSubnets", "SubnetId"))?.to_string(),
            name: tag_value(s.tags(), NAME_TAG),
            vpc_id: s.vpc_id().ok_or_else(|| Error::missing("DescribeSubnets", "VpcId"))?.to_string(),
            az: s.availability_zone().unwrap_or_default().to_string(),
            cidr,
            public_ip: s.map_public_ip_on_launch().unwrap_or(false),
            default_for_az: s.default_for_az().unwrap_or(false),
            stack: tag_value(s.tags(), STACK_TAG),
        });
    }
    Ok(found)
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

/// A subnet converges by its `Name` and the stack tag; AWS cannot move it to another VPC, AZ or
/// CIDR, and only whether it assigns public IPs changes in place.
impl Resource for Subnet {
    type Reads = Snapshot;
    type Spec = SubnetSpec;
    type Update = ();
    const KIND: &'static str = "subnet";
    const FIXED: &'static [&'static str] = &["VPC", "AZ", "CIDR"];

    fn keepable(live: &Subnet) -> Option<Keepable> {
        Some(Keepable::Ec2(live.id.clone()))
    }

    fn name(spec: &SubnetSpec) -> String {
        spec.name.clone()
    }

    fn validate(pass: &Pass, spec: &SubnetSpec) -> Result<()> {
        let stack = pass.stack()?;
        let snapshot = pass.snapshot()?;
        validate_subnet(pass, spec, &snapshot.borrow().ec2, &stack)
    }

    fn find(pass: &Pass, spec: &SubnetSpec) -> Result<Option<Subnet>> {
        let stack = pass.stack()?;
        let snapshot = pass.snapshot()?;
        Ok(snapshot.borrow().ec2.stack_subnet(&stack, &spec.name).cloned())
    }

    fn stack_of(live: &Subnet) -> Option<&str> {
        live.stack.as_deref()
    }

    fn planned(spec: &SubnetSpec, stack: &str) -> Subnet {
        Subnet {
            id: UNKNOWN.into(),
            name: Some(spec.name.clone()),
            vpc_id: spec.vpc.id.clone(),
            az: spec.az.clone(),
            cidr: spec.cidr,
            public_ip: spec.public_ip,
            default_for_az: false,
            stack: Some(stack.to_string()),
        }
    }

    fn create(pass: &Pass, spec: &SubnetSpec, stack: &str) -> Result<Created<Subnet>> {
        pass.block(create(pass, spec, stack))
    }

    fn create_beside(
        pass: &Pass,
        spec: SubnetSpec,
        stack: String,
    ) -> Option<LocalBoxFuture<'_, Result<Created<Subnet>>>> {
        Some(Box::pin(async move { create(pass, &spec, &stack).await }))
    }

    fn diff(live: &Subnet, spec: &SubnetSpec) -> Drift<()> {
        let mut fixed = Vec::new();
        if is_known(&spec.vpc.id) && live.vpc_id != spec.vpc.id {
            fixed.push(FieldDiff::changed("vpc", &live.vpc_id, &spec.vpc.id));
        }
        if live.az != spec.az {
            fixed.push(FieldDiff::changed("az", &live.az, &spec.az));
        }
        if live.cidr != spec.cidr {
            fixed.push(FieldDiff::changed("cidr", live.cidr, spec.cidr));
        }
        let mut diffs = Vec::new();
        if live.public_ip != spec.public_ip {
            diffs.push(FieldDiff::changed("public_ip", live.public_ip, spec.public_ip));
        }
        Drift::of(diffs).with_fixed(fixed)
    }

    fn update(pass: &Pass, live: &Subnet, spec: &SubnetSpec, _update: &()) -> Result<Subnet> {
        pass.block(set_public_ip(pass, &live.id, spec.public_ip))?;
        Ok(Self::updated(live, spec))
    }

    fn updated(live: &Subnet, spec: &SubnetSpec) -> Subnet {
        Subnet { public_ip: spec.public_ip, ..live.clone() }
    }

    /// Planned subnets join the snapshot too, so later overlaps and lookups in the pass see them.
    fn remember(snapshot: &mut Snapshot, live: &Subnet) {
        let state = &mut snapshot.ec2;
        state.subnets.retain(|s| !(s.stack == live.stack && s.name == live.name && s.vpc_id == live.vpc_id));
        state.subnets.push(live.clone());
    }

    fn summary(live: &Subnet) -> String {
        format!("{}, {}, {}", live.id, live.az, live.cidr)
    }
}

/// Creates the subnet, then has it assign public IPs when the spec asks (CreateSubnet cannot: AWS
/// creates a subnet with them off; ModifySubnetAttribute needs its id).
async fn create(pass: &Pass, spec: &SubnetSpec, stack: &str) -> Result<Created<Subnet>> {
    let created = create_subnet(pass, spec, stack).await?;
    if let Created::New(made) = &created
        && spec.public_ip
    {
        let set = set_public_ip(pass, &made.id, true).await;
        remembered_if_failed(pass, &Subnet { public_ip: false, ..made.clone() }, set)?;
    }
    Ok(created)
}

/// Creates the subnet (public IPs off, as AWS creates it); a subnet with its CIDR that appeared meanwhile (a
/// concurrent run, or a retried CreateSubnet whose first reply was lost) is returned instead when
/// it carries this stack's tag and the script's name.
async fn create_subnet(pass: &Pass, spec: &SubnetSpec, stack: &str) -> Result<Created<Subnet>> {
    let created = pass
        .send(async |aws| {
            aws.ec2
                .create_subnet()
                .vpc_id(&spec.vpc.id)
                .availability_zone(&spec.az)
                .cidr_block(spec.cidr.to_string())
                .tag_specifications(tags_for(ResourceType::Subnet, stack, &spec.name))
                .send()
                .await
                .map_err(|e| aws_error("CreateSubnet", e))
        })
        .await;
    match created {
        Ok(out) => {
            let id =
                out.subnet().and_then(|s| s.subnet_id()).ok_or_else(|| Error::missing("CreateSubnet", "SubnetId"))?;
            Ok(Created::New(Subnet { id: id.to_string(), ..Subnet::planned(spec, stack) }))
        }
        // EC2 models no error codes: compare the code string.
        Err(err) if err.aws_code() == Some("InvalidSubnet.Conflict") => {
            let filters = vec![
                Filter::builder().name("vpc-id").values(&spec.vpc.id).build(),
                Filter::builder().name("cidr-block").values(spec.cidr.to_string()).build(),
            ];
            let found = pass.send(async |aws| subnets(aws, filters).await).await?;
            found
                .into_iter()
                .find(|s| s.stack.as_deref() == Some(stack) && s.name.as_deref() == Some(spec.name.as_str()))
                .map(Created::Existing)
                .ok_or(err)
        }
        Err(err) => Err(err),
    }
}

/// Turns the subnet's public IPs on launch on or off (ModifySubnetAttribute).
async fn set_public_ip(pass: &Pass, subnet_id: &str, on: bool) -> Result<()> {
    pass.send(async |aws| {
        let modify = aws.ec2.modify_subnet_attribute().subnet_id(subnet_id);
        let modify = modify.map_public_ip_on_launch(AttributeBooleanValue::builder().value(on).build());
        sent("ModifySubnetAttribute", modify.send()).await
    })
    .await
}

/// Deletes a subnet (fails with `DependencyViolation` while network interfaces remain).
pub async fn delete_subnet(aws: &Aws, id: &str) -> Result<()> {
    sent("DeleteSubnet", aws.ec2.delete_subnet().subnet_id(id).send()).await
}

/// Parses an IPv4 CIDR block for a subnet.
pub fn parse_subnet_cidr(key: &str, text: &str) -> Result<Ipv4Net> {
    text.parse().map_err(|_| Error::invalid(key, format!("{text:?}"), "an IPv4 CIDR block like \"10.0.1.0/24\""))
}
