//! How private subnets reach the internet and AWS APIs: NAT gateways (with their elastic IPs),
//! route tables, VPC endpoints, and the check that Fargate tasks without public IPs can pull images.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use aws_sdk_ec2::client::Waiters;
use aws_sdk_ec2::types::{DomainType, Filter, ResourceType, VpcEndpointType};

use crate::aws::NAME_TAG;
use crate::aws::ec2::{Subnet, stack_filter, tag_value, tags_for};
use crate::error::{Error, Result, aws_error};
use crate::pass::{Pass, STACK_TAG};
use crate::plan::{Change, ChangeKind, FieldDiff, UNKNOWN, is_known};
use crate::runtime::Aws;

/// A NAT gateway and the elastic IP it uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatGateway {
    /// `nat-...` or [`UNKNOWN`].
    pub id: String,
    /// Its `Name` tag.
    pub name: String,
    /// The (public) subnet it lives in.
    pub subnet_id: String,
    /// Its public IP, once known.
    pub public_ip: String,
}

/// An elastic IP deckhand allocated for a NAT gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElasticIp {
    /// `eipalloc-...`.
    pub allocation_id: String,
    /// Its `Name` tag (the NAT gateway's name).
    pub name: String,
    /// The address.
    pub public_ip: String,
}

/// Where a route sends traffic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum RouteTarget {
    /// Within the VPC.
    Local,
    /// A NAT gateway (`nat-...`, or [`UNKNOWN`] in plan).
    Nat(String),
    /// An internet or virtual private gateway (`igw-...`, `vgw-...`).
    Gateway(String),
    /// Anything else AWS reports (endpoint prefix lists, peering, transit gateways, ...).
    Other(String),
}

impl fmt::Display for RouteTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteTarget::Local => f.write_str("local"),
            RouteTarget::Nat(id) | RouteTarget::Gateway(id) | RouteTarget::Other(id) => f.write_str(id),
        }
    }
}

/// One route: a destination CIDR and a target.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    /// Destination CIDR, e.g. `0.0.0.0/0`.
    pub destination: String,
    /// Where it goes.
    pub target: RouteTarget,
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.destination, self.target)
    }
}

/// A subnet's association with a route table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Association {
    /// `rtbassoc-...` ([`UNKNOWN`] while planned).
    pub id: String,
    /// The subnet: its id, or `name:<Name>` for a subnet that is only planned.
    pub subnet: String,
}

/// A route table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTable {
    /// `rtb-...` or [`UNKNOWN`].
    pub id: String,
    /// Its `Name` tag.
    pub name: Option<String>,
    /// The VPC.
    pub vpc_id: String,
    /// Whether it is the VPC's main table (used by subnets without an explicit association).
    pub main: bool,
    /// Its routes.
    pub routes: Vec<Route>,
    /// Its explicit subnet associations.
    pub associations: Vec<Association>,
    /// Its `deckhand:stack` tag.
    pub stack: Option<String>,
}

/// A VPC endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `vpce-...` or [`UNKNOWN`].
    pub id: String,
    /// Its `Name` tag.
    pub name: Option<String>,
    /// The VPC.
    pub vpc_id: String,
    /// Full service name, e.g. `com.amazonaws.us-west-2.ecr.dkr`.
    pub service: String,
    /// Gateway (S3, DynamoDB) or interface.
    pub gateway: bool,
    /// Route tables (gateway endpoints).
    pub route_tables: Vec<String>,
    /// Subnets (interface endpoints).
    pub subnets: Vec<String>,
    /// Security groups (interface endpoints).
    pub security_groups: Vec<String>,
    /// Its `deckhand:stack` tag.
    pub stack: Option<String>,
}

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

fn live_nat_filter() -> Filter {
    Filter::builder().name("state").values("pending").values("available").build()
}

pub(crate) async fn nat_gateways(aws: &Aws, filters: Vec<Filter>) -> Result<Vec<NatGateway>> {
    let mut pages = aws.ec2.describe_nat_gateways().set_filter(Some(filters)).into_paginator().items().send();
    let mut found = Vec::new();
    while let Some(nat) = pages.next().await {
        let nat = nat.map_err(|e| aws_error("DescribeNatGateways", e))?;
        found.push(NatGateway {
            id: nat.nat_gateway_id().unwrap_or_default().to_string(),
            name: tag_value(nat.tags(), NAME_TAG).unwrap_or_default(),
            subnet_id: nat.subnet_id().unwrap_or_default().to_string(),
            public_ip: nat.nat_gateway_addresses().first().and_then(|a| a.public_ip()).unwrap_or_default().to_string(),
        });
    }
    Ok(found)
}

async fn addresses(aws: &Aws, stack: &str) -> Result<Vec<ElasticIp>> {
    let out = aws
        .ec2
        .describe_addresses()
        .filters(stack_filter(stack))
        .send()
        .await
        .map_err(|e| aws_error("DescribeAddresses", e))?;
    Ok(out
        .addresses()
        .iter()
        .map(|a| ElasticIp {
            allocation_id: a.allocation_id().unwrap_or_default().to_string(),
            name: tag_value(a.tags(), NAME_TAG).unwrap_or_default(),
            public_ip: a.public_ip().unwrap_or_default().to_string(),
        })
        .collect())
}

pub(crate) async fn route_tables(aws: &Aws, filters: Vec<Filter>) -> Result<Vec<RouteTable>> {
    let mut pages = aws.ec2.describe_route_tables().set_filters(Some(filters)).into_paginator().items().send();
    let mut found = Vec::new();
    while let Some(table) = pages.next().await {
        let t = table.map_err(|e| aws_error("DescribeRouteTables", e))?;
        let routes = t
            .routes()
            .iter()
            .filter_map(|r| {
                let destination = r.destination_cidr_block()?.to_string();
                let target = match (r.gateway_id(), r.nat_gateway_id()) {
                    (Some("local"), _) => RouteTarget::Local,
                    (_, Some(nat)) => RouteTarget::Nat(nat.to_string()),
                    (Some(gw), _) if gw.starts_with("igw-") || gw.starts_with("vgw-") => {
                        RouteTarget::Gateway(gw.to_string())
                    }
                    (Some(other), _) => RouteTarget::Other(other.to_string()),
                    _ => RouteTarget::Other(
                        r.transit_gateway_id()
                            .or(r.vpc_peering_connection_id())
                            .or(r.network_interface_id())
                            .or(r.instance_id())
                            .unwrap_or("unknown")
                            .to_string(),
                    ),
                };
                Some(Route { destination, target })
            })
            .collect();
        let main = t.associations().iter().any(|a| a.main().unwrap_or(false));
        let associations = t
            .associations()
            .iter()
            .filter_map(|a| {
                Some(Association {
                    id: a.route_table_association_id()?.to_string(),
                    subnet: a.subnet_id()?.to_string(),
                })
            })
            .collect();
        found.push(RouteTable {
            id: t.route_table_id().unwrap_or_default().to_string(),
            name: tag_value(t.tags(), NAME_TAG),
            vpc_id: t.vpc_id().unwrap_or_default().to_string(),
            main,
            routes,
            associations,
            stack: tag_value(t.tags(), STACK_TAG),
        });
    }
    Ok(found)
}

pub(crate) async fn endpoints(aws: &Aws, filters: Vec<Filter>) -> Result<Vec<Endpoint>> {
    let mut pages = aws.ec2.describe_vpc_endpoints().set_filters(Some(filters)).into_paginator().items().send();
    let mut found = Vec::new();
    while let Some(endpoint) = pages.next().await {
        let e = endpoint.map_err(|e| aws_error("DescribeVpcEndpoints", e))?;
        let state = e.state().map(|s| s.as_str().to_ascii_lowercase()).unwrap_or_default();
        if matches!(state.as_str(), "deleting" | "deleted" | "failed" | "rejected" | "expired") {
            continue;
        }
        found.push(Endpoint {
            id: e.vpc_endpoint_id().unwrap_or_default().to_string(),
            name: tag_value(e.tags(), NAME_TAG),
            vpc_id: e.vpc_id().unwrap_or_default().to_string(),
            service: e.service_name().unwrap_or_default().to_string(),
            gateway: e.vpc_endpoint_type().map(|t| t.as_str().eq_ignore_ascii_case("gateway")).unwrap_or(false),
            route_tables: sorted(e.route_table_ids()),
            subnets: sorted(e.subnet_ids()),
            security_groups: sorted(
                e.groups().iter().filter_map(|g| g.group_id()).map(str::to_string).collect::<Vec<_>>().as_slice(),
            ),
            stack: tag_value(e.tags(), STACK_TAG),
        });
    }
    Ok(found)
}

fn sorted(items: &[String]) -> Vec<String> {
    let mut items = items.to_vec();
    items.sort();
    items.dedup();
    items
}

/// What a script asks of a NAT gateway.
#[derive(Debug, Clone)]
pub struct NatGatewaySpec {
    /// `Name` tag, also given to its elastic IP.
    pub name: String,
    /// The public subnet it lives in.
    pub subnet: Subnet,
}

/// Converges a NAT gateway with its own elastic IP; waits until it is available when created.
pub fn ensure_nat_gateway(pass: &Pass, spec: &NatGatewaySpec) -> Result<NatGateway> {
    let stack = pass.stack()?;
    let snapshot = pass.snapshot()?;
    let existing = snapshot.borrow().egress.nat_gateways.iter().find(|n| n.name == spec.name).cloned();
    let summary = |n: &NatGateway| format!("{}, in {}", n.id, n.subnet_id);
    if let Some(nat) = existing {
        if is_known(&spec.subnet.id) && nat.subnet_id != spec.subnet.id {
            return Err(Error::conflict(
                format!(
                    "NAT gateway {} lives in {}, the script asks for {}; AWS cannot move a NAT gateway",
                    spec.name, nat.subnet_id, spec.subnet.id
                ),
                Some("give the new NAT gateway another name"),
            ));
        }
        pass.log.record(Change::new(ChangeKind::Unchanged, "nat_gateway", &spec.name, summary(&nat)));
        return Ok(nat);
    }
    let mut nat = NatGateway {
        id: UNKNOWN.into(),
        name: spec.name.clone(),
        subnet_id: spec.subnet.id.clone(),
        public_ip: UNKNOWN.into(),
    };
    if pass.mode.applies() {
        let eip = snapshot.borrow().egress.addresses.iter().find(|a| a.name == spec.name).cloned();
        let eip = match eip {
            Some(eip) => eip,
            None => allocate_address(pass, &stack, &spec.name)?,
        };
        nat.public_ip = eip.public_ip.clone();
        nat.id = pass.apply(async |aws| {
            let out = aws
                .ec2
                .create_nat_gateway()
                .subnet_id(&spec.subnet.id)
                .allocation_id(&eip.allocation_id)
                .tag_specifications(tags_for(ResourceType::Natgateway, &stack, &spec.name))
                .send()
                .await
                .map_err(|e| aws_error("CreateNatGateway", e))?;
            Ok(out.nat_gateway().and_then(|n| n.nat_gateway_id()).unwrap_or_default().to_string())
        })?;
        pass.log.say(&format!("  waiting for NAT gateway {} to become available (usually 1-2 minutes)...", nat.id));
        pass.apply(async |aws| {
            aws.ec2
                .wait_until_nat_gateway_available()
                .nat_gateway_ids(&nat.id)
                .wait(Duration::from_secs(600))
                .await
                .map(drop)
                .map_err(|e| Error::conflict(format!("NAT gateway {} did not become available: {e}", nat.id), None))
        })?;
        let mut state = snapshot.borrow_mut();
        state.egress.addresses.retain(|a| a.name != spec.name);
        state.egress.addresses.push(eip);
    }
    snapshot.borrow_mut().egress.nat_gateways.push(nat.clone());
    pass.log.record(Change::new(ChangeKind::Create, "nat_gateway", &spec.name, summary(&nat)));
    Ok(nat)
}

fn allocate_address(pass: &Pass, stack: &str, name: &str) -> Result<ElasticIp> {
    pass.apply(async |aws| {
        let out = aws
            .ec2
            .allocate_address()
            .domain(DomainType::Vpc)
            .tag_specifications(tags_for(ResourceType::ElasticIp, stack, name))
            .send()
            .await
            .map_err(|e| aws_error("AllocateAddress", e))?;
        Ok(ElasticIp {
            allocation_id: out.allocation_id().unwrap_or_default().to_string(),
            name: name.to_string(),
            public_ip: out.public_ip().unwrap_or_default().to_string(),
        })
    })
}

/// What a script asks of a route table.
#[derive(Debug, Clone)]
pub struct RouteTableSpec {
    /// `Name` tag, unique in the stack.
    pub name: String,
    /// The VPC.
    pub vpc_id: String,
    /// Exactly the subnets associated with it.
    pub subnets: Vec<Subnet>,
    /// Exactly its routes (besides the VPC-local one and endpoint routes, which AWS manages).
    pub routes: Vec<Route>,
}

/// The key a subnet is known by in associations: its id, or its name while it is only planned.
pub fn subnet_key(subnet: &Subnet) -> String {
    if is_known(&subnet.id) { subnet.id.clone() } else { format!("name:{}", subnet.name.as_deref().unwrap_or("?")) }
}

fn managed_by_script(route: &Route) -> bool {
    matches!(route.target, RouteTarget::Nat(_) | RouteTarget::Gateway(_))
}

/// Converges a route table: its routes and exactly its subnet associations.
pub fn ensure_route_table(pass: &Pass, spec: &RouteTableSpec) -> Result<RouteTable> {
    let stack = pass.stack()?;
    let snapshot = pass.snapshot()?;
    let (existing, names) = {
        let state = snapshot.borrow();
        let existing = state
            .egress
            .route_tables
            .iter()
            .find(|t| t.stack.as_deref() == Some(stack.as_str()) && t.name.as_deref() == Some(spec.name.as_str()))
            .cloned();
        let names: Vec<(String, String)> =
            spec.subnets.iter().map(|s| (subnet_key(s), s.name.clone().unwrap_or_else(|| s.id.clone()))).collect();
        (existing, names)
    };
    let show =
        |key: &str| names.iter().find(|(k, _)| k == key).map(|(_, n)| n.clone()).unwrap_or_else(|| key.to_string());
    let wanted_subnets: BTreeSet<String> = spec.subnets.iter().map(subnet_key).collect();
    let wanted_routes: BTreeSet<Route> = spec.routes.iter().cloned().collect();

    let created = existing.is_none();
    let mut table = existing.unwrap_or_else(|| RouteTable {
        id: UNKNOWN.into(),
        name: Some(spec.name.clone()),
        vpc_id: spec.vpc_id.clone(),
        main: false,
        routes: vec![],
        associations: vec![],
        stack: Some(stack.clone()),
    });
    if !created && is_known(&spec.vpc_id) && table.vpc_id != spec.vpc_id {
        return Err(Error::conflict(
            format!("route table {} is in {}, the script asks for {}", spec.name, table.vpc_id, spec.vpc_id),
            Some("give the route table another name"),
        ));
    }
    let current_routes: BTreeSet<Route> = table.routes.iter().filter(|r| managed_by_script(r)).cloned().collect();
    let current_subnets: BTreeSet<String> = table.associations.iter().map(|a| a.subnet.clone()).collect();
    let mut diffs = Vec::new();
    for route in wanted_routes.difference(&current_routes) {
        diffs.push(FieldDiff::added("routes", route));
    }
    for route in current_routes.difference(&wanted_routes) {
        diffs.push(FieldDiff::removed("routes", route));
    }
    for subnet in wanted_subnets.difference(&current_subnets) {
        diffs.push(FieldDiff::added("subnets", show(subnet)));
    }
    for subnet in current_subnets.difference(&wanted_subnets) {
        diffs.push(FieldDiff::removed("subnets", show(subnet)));
    }

    if pass.mode.applies() {
        if created {
            table.id = pass.apply(async |aws| {
                let out = aws
                    .ec2
                    .create_route_table()
                    .vpc_id(&spec.vpc_id)
                    .tag_specifications(tags_for(ResourceType::RouteTable, &stack, &spec.name))
                    .send()
                    .await
                    .map_err(|e| aws_error("CreateRouteTable", e))?;
                Ok(out.route_table().and_then(|t| t.route_table_id()).unwrap_or_default().to_string())
            })?;
        }
        let all_tables = snapshot.borrow().egress.route_tables.clone();
        apply_routes(pass, &table.id, &current_routes, &wanted_routes)?;
        table.associations = apply_associations(pass, &table, &all_tables, &wanted_subnets)?;
    } else {
        table.associations =
            wanted_subnets.iter().map(|s| Association { id: UNKNOWN.into(), subnet: s.clone() }).collect();
    }
    table.routes.retain(|r| !managed_by_script(r));
    table.routes.extend(wanted_routes.iter().cloned());
    {
        let mut state = snapshot.borrow_mut();
        // A subnet has one explicit association: moving it here takes it off any other table.
        for other in state.egress.route_tables.iter_mut() {
            other.associations.retain(|a| !wanted_subnets.contains(&a.subnet));
        }
        state.egress.route_tables.retain(|t| !(t.stack == table.stack && t.name == table.name));
        state.egress.route_tables.push(table.clone());
    }
    let kind = if created {
        ChangeKind::Create
    } else if diffs.is_empty() {
        ChangeKind::Unchanged
    } else {
        ChangeKind::Update
    };
    let diffs = if created { vec![] } else { diffs };
    pass.log.record(Change::new(kind, "route_table", &spec.name, table.id.clone()).with_diffs(diffs));
    Ok(table)
}

fn apply_routes(pass: &Pass, table_id: &str, current: &BTreeSet<Route>, wanted: &BTreeSet<Route>) -> Result<()> {
    let current_by_dest = |dest: &str| current.iter().find(|r| r.destination == dest);
    for route in wanted.difference(current) {
        let (nat, gateway) = match &route.target {
            RouteTarget::Nat(id) => (Some(id.clone()), None),
            other => (None, Some(other.to_string())),
        };
        pass.apply(async |aws| {
            if current_by_dest(&route.destination).is_some() {
                aws.ec2
                    .replace_route()
                    .route_table_id(table_id)
                    .destination_cidr_block(&route.destination)
                    .set_nat_gateway_id(nat.clone())
                    .set_gateway_id(gateway.clone())
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| aws_error("ReplaceRoute", e))
            } else {
                aws.ec2
                    .create_route()
                    .route_table_id(table_id)
                    .destination_cidr_block(&route.destination)
                    .set_nat_gateway_id(nat.clone())
                    .set_gateway_id(gateway.clone())
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| aws_error("CreateRoute", e))
            }
        })?;
    }
    for route in current.difference(wanted) {
        if wanted.iter().any(|w| w.destination == route.destination) {
            continue; // replaced above
        }
        pass.apply(async |aws| {
            aws.ec2
                .delete_route()
                .route_table_id(table_id)
                .destination_cidr_block(&route.destination)
                .send()
                .await
                .map(drop)
                .map_err(|e| aws_error("DeleteRoute", e))
        })?;
    }
    Ok(())
}

fn apply_associations(
    pass: &Pass,
    table: &RouteTable,
    all_tables: &[RouteTable],
    wanted: &BTreeSet<String>,
) -> Result<Vec<Association>> {
    let mut associations = Vec::new();
    for association in &table.associations {
        if wanted.contains(&association.subnet) {
            associations.push(association.clone());
        } else {
            pass.apply(async |aws| {
                aws.ec2
                    .disassociate_route_table()
                    .association_id(&association.id)
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| aws_error("DisassociateRouteTable", e))
            })?;
        }
    }
    for subnet in wanted {
        if table.associations.iter().any(|a| &a.subnet == subnet) {
            continue;
        }
        let elsewhere = all_tables
            .iter()
            .filter(|t| t.id != table.id)
            .flat_map(|t| t.associations.iter())
            .find(|a| &a.subnet == subnet)
            .map(|a| a.id.clone());
        let id = pass.apply(async |aws| match &elsewhere {
            Some(old) => aws
                .ec2
                .replace_route_table_association()
                .association_id(old)
                .route_table_id(&table.id)
                .send()
                .await
                .map(|o| o.new_association_id().unwrap_or_default().to_string())
                .map_err(|e| aws_error("ReplaceRouteTableAssociation", e)),
            None => aws
                .ec2
                .associate_route_table()
                .route_table_id(&table.id)
                .subnet_id(subnet)
                .send()
                .await
                .map(|o| o.association_id().unwrap_or_default().to_string())
                .map_err(|e| aws_error("AssociateRouteTable", e)),
        })?;
        associations.push(Association { id, subnet: subnet.clone() });
    }
    Ok(associations)
}

/// What a script asks of a VPC endpoint.
#[derive(Debug, Clone)]
pub struct EndpointSpec {
    /// `Name` tag, unique in the stack.
    pub name: String,
    /// The VPC.
    pub vpc_id: String,
    /// Full service name, e.g. `com.amazonaws.us-west-2.s3`.
    pub service: String,
    /// Gateway endpoint (S3, DynamoDB) or interface endpoint.
    pub gateway: bool,
    /// Route tables (gateway endpoints): ids or planned keys.
    pub route_tables: Vec<String>,
    /// Subnets (interface endpoints).
    pub subnets: Vec<String>,
    /// Security groups (interface endpoints).
    pub security_groups: Vec<String>,
}

/// The full service name for `short` (`s3`, `ecr.dkr`, ...) in `region`.
pub fn service_name(region: &str, short: &str) -> String {
    if short.starts_with("com.amazonaws.") { short.to_string() } else { format!("com.amazonaws.{region}.{short}") }
}

/// Converges a VPC endpoint: created when missing; route tables, subnets, security groups in place.
pub fn ensure_endpoint(pass: &Pass, spec: &EndpointSpec) -> Result<Endpoint> {
    let stack = pass.stack()?;
    let snapshot = pass.snapshot()?;
    let existing = snapshot
        .borrow()
        .egress
        .endpoints
        .iter()
        .find(|e| e.stack.as_deref() == Some(stack.as_str()) && e.name.as_deref() == Some(spec.name.as_str()))
        .cloned();
    let mut wanted = Endpoint {
        id: UNKNOWN.into(),
        name: Some(spec.name.clone()),
        vpc_id: spec.vpc_id.clone(),
        service: spec.service.clone(),
        gateway: spec.gateway,
        route_tables: sorted(&spec.route_tables),
        subnets: sorted(&spec.subnets),
        security_groups: sorted(&spec.security_groups),
        stack: Some(stack.clone()),
    };
    let Some(current) = existing else {
        if pass.mode.applies() {
            wanted.id = create_endpoint(pass, spec, &stack)?;
        }
        snapshot.borrow_mut().egress.endpoints.push(wanted.clone());
        pass.log.record(Change::new(
            ChangeKind::Create,
            "vpc_endpoint",
            &spec.name,
            format!("{}, {}", wanted.id, spec.service),
        ));
        return Ok(wanted);
    };
    if current.service != spec.service || current.gateway != spec.gateway {
        return Err(Error::conflict(
            format!(
                "VPC endpoint {} is for {} ({}), the script asks for {} ({}); AWS cannot change that in place",
                spec.name,
                current.service,
                if current.gateway { "gateway" } else { "interface" },
                spec.service,
                if spec.gateway { "gateway" } else { "interface" }
            ),
            Some("give the endpoint another name"),
        ));
    }
    wanted.id = current.id.clone();
    let mut diffs = Vec::new();
    let delta = |field: &str, now: &[String], want: &[String], diffs: &mut Vec<FieldDiff>| {
        let add: Vec<String> = want.iter().filter(|x| !now.contains(x)).cloned().collect();
        let remove: Vec<String> = now.iter().filter(|x| !want.contains(x)).cloned().collect();
        diffs.extend(add.iter().map(|x| FieldDiff::added(field, x)));
        diffs.extend(remove.iter().map(|x| FieldDiff::removed(field, x)));
        (add, remove)
    };
    let tables = delta("route_tables", &current.route_tables, &wanted.route_tables, &mut diffs);
    let subnets = delta("subnets", &current.subnets, &wanted.subnets, &mut diffs);
    let groups = delta("security_groups", &current.security_groups, &wanted.security_groups, &mut diffs);
    let summary = format!("{}, {}", current.id, spec.service);
    if diffs.is_empty() {
        pass.log.record(Change::new(ChangeKind::Unchanged, "vpc_endpoint", &spec.name, summary));
        return Ok(current);
    }
    if pass.mode.applies() {
        pass.apply(async |aws| {
            aws.ec2
                .modify_vpc_endpoint()
                .vpc_endpoint_id(&current.id)
                .set_add_route_table_ids(Some(tables.0.clone()).filter(|v| !v.is_empty()))
                .set_remove_route_table_ids(Some(tables.1.clone()).filter(|v| !v.is_empty()))
                .set_add_subnet_ids(Some(subnets.0.clone()).filter(|v| !v.is_empty()))
                .set_remove_subnet_ids(Some(subnets.1.clone()).filter(|v| !v.is_empty()))
                .set_add_security_group_ids(Some(groups.0.clone()).filter(|v| !v.is_empty()))
                .set_remove_security_group_ids(Some(groups.1.clone()).filter(|v| !v.is_empty()))
                .send()
                .await
                .map(drop)
                .map_err(|e| aws_error("ModifyVpcEndpoint", e))
        })?;
    }
    {
        let mut state = snapshot.borrow_mut();
        state.egress.endpoints.retain(|e| e.id != current.id);
        state.egress.endpoints.push(wanted.clone());
    }
    pass.log.record(Change::new(ChangeKind::Update, "vpc_endpoint", &spec.name, summary).with_diffs(diffs));
    Ok(wanted)
}

fn create_endpoint(pass: &Pass, spec: &EndpointSpec, stack: &str) -> Result<String> {
    pass.apply(async |aws| {
        let mut request = aws
            .ec2
            .create_vpc_endpoint()
            .vpc_id(&spec.vpc_id)
            .service_name(&spec.service)
            .tag_specifications(tags_for(ResourceType::VpcEndpoint, stack, &spec.name));
        request = if spec.gateway {
            request.vpc_endpoint_type(VpcEndpointType::Gateway).set_route_table_ids(Some(spec.route_tables.clone()))
        } else {
            request
                .vpc_endpoint_type(VpcEndpointType::Interface)
                .set_subnet_ids(Some(spec.subnets.clone()))
                .set_security_group_ids(Some(spec.security_groups.clone()).filter(|v| !v.is_empty()))
                .private_dns_enabled(true)
        };
        let out = request.send().await.map_err(|e| aws_error("CreateVpcEndpoint", e))?;
        Ok(out.vpc_endpoint().and_then(|e| e.vpc_endpoint_id()).unwrap_or_default().to_string())
    })
}

/// Deletes a NAT gateway and waits until it is gone (its elastic IP is then free to release).
pub async fn delete_nat_gateway(aws: &Aws, id: &str) -> Result<()> {
    aws.ec2.delete_nat_gateway().nat_gateway_id(id).send().await.map_err(|e| aws_error("DeleteNatGateway", e))?;
    aws.ec2
        .wait_until_nat_gateway_deleted()
        .nat_gateway_ids(id)
        .wait(Duration::from_secs(600))
        .await
        .map(drop)
        .map_err(|e| Error::conflict(format!("NAT gateway {id} was not deleted in time: {e}"), None))
}

/// Releases an elastic IP.
pub async fn release_address(aws: &Aws, allocation_id: &str) -> Result<()> {
    aws.ec2
        .release_address()
        .allocation_id(allocation_id)
        .send()
        .await
        .map(drop)
        .map_err(|e| aws_error("ReleaseAddress", e))
}

/// Deletes a VPC endpoint.
pub async fn delete_endpoint(aws: &Aws, id: &str) -> Result<()> {
    aws.ec2
        .delete_vpc_endpoints()
        .vpc_endpoint_ids(id)
        .send()
        .await
        .map(drop)
        .map_err(|e| aws_error("DeleteVpcEndpoints", e))
}

/// Detaches a route table from its subnets, then deletes it.
pub async fn delete_route_table(aws: &Aws, table: &RouteTable) -> Result<()> {
    for association in &table.associations {
        aws.ec2
            .disassociate_route_table()
            .association_id(&association.id)
            .send()
            .await
            .map_err(|e| aws_error("DisassociateRouteTable", e))?;
    }
    aws.ec2
        .delete_route_table()
        .route_table_id(&table.id)
        .send()
        .await
        .map(drop)
        .map_err(|e| aws_error("DeleteRouteTable", e))
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
                !state.endpoints.iter().any(|e| e.service == name && (e.vpc_id == vpc_id || !is_known(&e.vpc_id)))
            })
            .collect()
    };
    let mut stranded = Vec::new();
    let mut missing = BTreeSet::new();
    for subnet in subnets {
        // A subnet given as a plain id: its VPC comes from the snapshot.
        let vpc_id = if subnet.vpc_id.is_empty() {
            snapshot.ec2.subnets.iter().find(|s| s.id == subnet.id).map(|s| s.vpc_id.clone()).unwrap_or_default()
        } else {
            subnet.vpc_id.clone()
        };
        let key = subnet_key(subnet);
        let table = state
            .route_tables
            .iter()
            .find(|t| t.associations.iter().any(|a| a.subnet == key))
            .or_else(|| state.route_tables.iter().find(|t| t.main && t.vpc_id == vpc_id));
        let routed = table.is_some_and(|t| {
            t.routes.iter().any(|r| {
                r.destination == "0.0.0.0/0" && matches!(r.target, RouteTarget::Nat(_) | RouteTarget::Other(_))
            })
        });
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
    let state = &snapshot.egress;
    let endpoints_only: Vec<String> = subnets
        .iter()
        .filter(|subnet| {
            let vpc_id = if subnet.vpc_id.is_empty() {
                snapshot.ec2.subnets.iter().find(|s| s.id == subnet.id).map(|s| s.vpc_id.clone()).unwrap_or_default()
            } else {
                subnet.vpc_id.clone()
            };
            let key = subnet_key(subnet);
            let table = state
                .route_tables
                .iter()
                .find(|t| t.associations.iter().any(|a| a.subnet == key))
                .or_else(|| state.route_tables.iter().find(|t| t.main && t.vpc_id == vpc_id));
            let routed = table.is_some_and(|t| {
                t.routes.iter().any(|r| {
                    r.destination == "0.0.0.0/0" && matches!(r.target, RouteTarget::Nat(_) | RouteTarget::Other(_))
                })
            });
            let ecr_endpoint = state
                .endpoints
                .iter()
                .any(|e| e.service == service_name(region, "ecr.dkr") && (e.vpc_id == vpc_id || !is_known(&e.vpc_id)));
            !routed && ecr_endpoint
        })
        .map(|subnet| subnet.name.clone().unwrap_or_else(|| subnet.id.clone()))
        .collect();
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
