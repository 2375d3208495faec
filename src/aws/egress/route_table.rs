//! Route tables: routes, subnet associations, their reads, and how a route table converges.

use std::collections::BTreeSet;
use std::fmt;

use aws_sdk_ec2::types::{Filter, ResourceType};
use futures_util::future::LocalBoxFuture;

use crate::aws::Pass;
use crate::aws::ec2::{Subnet, tag_value, tags_for};
use crate::aws::egress::nat_gateway;
use crate::aws::{NAME_TAG, Snapshot};
use crate::converge::{Created, Drift, Resource};
use crate::error::{Error, Result, aws_error, sent};
use crate::plan::{FieldDiff, UNKNOWN, is_known};
use crate::runtime::Aws;
use crate::tagged::Keepable;
use crate::tagged::STACK_TAG;

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

/// Route tables matching `filters` (DescribeRouteTables, paginated).
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
                // The main association names no subnet: it is the `main` flag above.
                Some(Association {
                    id: a.route_table_association_id()?.to_string(),
                    subnet: a.subnet_id()?.to_string(),
                })
            })
            .collect();
        found.push(RouteTable {
            id: t.route_table_id().ok_or_else(|| Error::missing("DescribeRouteTables", "RouteTableId"))?.to_string(),
            name: tag_value(t.tags(), NAME_TAG),
            vpc_id: t.vpc_id().ok_or_else(|| Error::missing("DescribeRouteTables", "VpcId"))?.to_string(),
            main,
            routes,
            associations,
            stack: tag_value(t.tags(), STACK_TAG),
        });
    }
    Ok(found)
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

impl RouteTableSpec {
    fn subnet_keys(&self) -> BTreeSet<String> {
        self.subnets.iter().map(subnet_key).collect()
    }

    fn routes(&self) -> BTreeSet<Route> {
        self.routes.iter().cloned().collect()
    }

    /// How the plan shows a subnet key: the subnet's name where the script gave one.
    fn show(&self, key: &str) -> String {
        self.subnets
            .iter()
            .find(|s| subnet_key(s) == key)
            .map(|s| s.name.clone().unwrap_or_else(|| s.id.clone()))
            .unwrap_or_else(|| key.to_string())
    }
}

/// The routes of `table` that scripts declare (the VPC-local and endpoint routes are AWS's).
fn script_routes(table: &RouteTable) -> BTreeSet<Route> {
    table.routes.iter().filter(|r| managed_by_script(r)).cloned().collect()
}

/// A route table converges by its `Name` and the stack tag; AWS cannot move it to another VPC;
/// its routes and its subnet associations become exactly the script's, in place.
impl Resource for RouteTable {
    type Reads = Snapshot;
    type Spec = RouteTableSpec;
    type Update = ();
    const KIND: &'static str = "route_table";
    const FIXED: &'static [&'static str] = &["VPC"];

    fn keepable(live: &RouteTable) -> Option<Keepable> {
        Some(Keepable::Ec2(live.id.clone()))
    }

    fn name(spec: &RouteTableSpec) -> String {
        spec.name.clone()
    }

    fn noun() -> String {
        "route table".to_string()
    }

    fn find(pass: &Pass, spec: &RouteTableSpec) -> Result<Option<RouteTable>> {
        let stack = pass.stack()?;
        let snapshot = pass.snapshot()?;
        let state = &snapshot.borrow().egress;
        Ok(state
            .route_tables
            .iter()
            .find(|t| t.stack.as_deref() == Some(stack.as_str()) && t.name.as_deref() == Some(spec.name.as_str()))
            .cloned())
    }

    fn stack_of(live: &RouteTable) -> Option<&str> {
        live.stack.as_deref()
    }

    fn planned(spec: &RouteTableSpec, stack: &str) -> RouteTable {
        let bare = RouteTable {
            id: UNKNOWN.into(),
            name: Some(spec.name.clone()),
            vpc_id: spec.vpc_id.clone(),
            main: false,
            routes: vec![],
            associations: vec![],
            stack: Some(stack.to_string()),
        };
        Self::updated(&bare, spec)
    }

    fn create(pass: &Pass, spec: &RouteTableSpec, stack: &str) -> Result<Created<RouteTable>> {
        pass.block(create(pass, spec, stack))
    }

    /// Not while a route goes to a NAT gateway an earlier run left pending whose wait this pass
    /// has not deferred yet: the route must wait for it, and only the NAT gateway's statement
    /// defers that wait; the table is then created at its own statement, after it.
    fn create_beside(
        pass: &Pass,
        spec: RouteTableSpec,
        stack: String,
    ) -> Option<LocalBoxFuture<'_, Result<Created<RouteTable>>>> {
        for route in &spec.routes {
            if let RouteTarget::Nat(nat) = &route.target
                && nat_gateway::pending_unawaited(pass, nat).unwrap_or(true)
            {
                return None;
            }
        }
        Some(Box::pin(async move { create(pass, &spec, &stack).await }))
    }

    fn diff(live: &RouteTable, spec: &RouteTableSpec) -> Drift<()> {
        let mut fixed = Vec::new();
        if is_known(&spec.vpc_id) && live.vpc_id != spec.vpc_id {
            fixed.push(FieldDiff::changed("vpc", &live.vpc_id, &spec.vpc_id));
        }
        let (current_routes, wanted_routes) = (script_routes(live), spec.routes());
        let current_subnets: BTreeSet<String> = live.associations.iter().map(|a| a.subnet.clone()).collect();
        let wanted_subnets = spec.subnet_keys();
        let mut diffs = Vec::new();
        diffs.extend(wanted_routes.difference(&current_routes).map(|r| FieldDiff::added("routes", r)));
        diffs.extend(current_routes.difference(&wanted_routes).map(|r| FieldDiff::removed("routes", r)));
        diffs.extend(wanted_subnets.difference(&current_subnets).map(|s| FieldDiff::added("subnets", spec.show(s))));
        diffs.extend(current_subnets.difference(&wanted_subnets).map(|s| FieldDiff::removed("subnets", spec.show(s))));
        Drift::of(diffs).with_fixed(fixed)
    }

    fn update(pass: &Pass, live: &RouteTable, spec: &RouteTableSpec, _update: &()) -> Result<RouteTable> {
        pass.block(converge_table(pass, live, spec))
    }

    fn updated(live: &RouteTable, spec: &RouteTableSpec) -> RouteTable {
        let mut table = live.clone();
        table.routes.retain(|r| !managed_by_script(r));
        table.routes.extend(spec.routes());
        table.associations = spec
            .subnet_keys()
            .into_iter()
            .map(|subnet| {
                let kept = live.associations.iter().find(|a| a.subnet == subnet);
                Association { id: kept.map_or_else(|| UNKNOWN.to_string(), |a| a.id.clone()), subnet }
            })
            .collect();
        table
    }

    /// A subnet has one explicit association: moving it to this table takes it off any other.
    fn remember(snapshot: &mut Snapshot, live: &RouteTable) {
        let tables = &mut snapshot.egress.route_tables;
        for other in tables.iter_mut() {
            other.associations.retain(|a| !live.associations.iter().any(|mine| mine.subnet == a.subnet));
        }
        tables.retain(|t| !(t.stack == live.stack && t.name == live.name));
        tables.push(live.clone());
    }

    fn summary(live: &RouteTable) -> String {
        live.id.clone()
    }
}

/// Creates the route table, then gives it the spec's routes and subnets.
async fn create(pass: &Pass, spec: &RouteTableSpec, stack: &str) -> Result<Created<RouteTable>> {
    let id = pass
        .send(async |aws| {
            let out = aws
                .ec2
                .create_route_table()
                .vpc_id(&spec.vpc_id)
                .tag_specifications(tags_for(ResourceType::RouteTable, stack, &spec.name))
                .send()
                .await
                .map_err(|e| aws_error("CreateRouteTable", e))?;
            out.route_table()
                .and_then(|t| t.route_table_id())
                .map(str::to_string)
                .ok_or_else(|| Error::missing("CreateRouteTable", "RouteTable.RouteTableId"))
        })
        .await?;
    let bare = RouteTable { id, routes: vec![], associations: vec![], ..RouteTable::planned(spec, stack) };
    converge_table(pass, &bare, spec).await.map(Created::New)
}

/// Makes `live`'s routes and subnet associations the spec's. The route changes and the
/// association changes need only the table, not each other (terraform's `aws_route` and
/// `aws_route_table_association` are separate resources that depend only on the table, and
/// terraform sends them in parallel): they go together, one round.
async fn converge_table(pass: &Pass, live: &RouteTable, spec: &RouteTableSpec) -> Result<RouteTable> {
    let all_tables = pass.snapshot()?.borrow().egress.route_tables.clone();
    let (current, wanted, subnets) = (script_routes(live), spec.routes(), spec.subnet_keys());
    let ((), associations) = tokio::try_join!(
        apply_routes(pass, &live.id, &current, &wanted),
        apply_associations(pass, live, &all_tables, &subnets),
    )?;
    Ok(RouteTable { associations, ..RouteTable::updated(live, spec) })
}

/// Sends the route changes from `current` to `wanted` together: creates (or replaces, where the
/// destination has a route already) and deletes.
async fn apply_routes(pass: &Pass, table_id: &str, current: &BTreeSet<Route>, wanted: &BTreeSet<Route>) -> Result<()> {
    let mut sends = Vec::new();
    for route in wanted.difference(current) {
        let replace = current.iter().any(|r| r.destination == route.destination);
        match &route.target {
            // A route to a NAT gateway that is still pending is sent once it is available (see
            // `nat_gateway::ready`); the statements after this one go ahead meanwhile, and what
            // needs the route (a service in these subnets, the end of the run) waits for it.
            RouteTarget::Nat(nat) if nat_gateway::pending(pass, nat) => {
                let (table_id, route) = (table_id.to_string(), route.clone());
                pass.defer(route_key(&table_id, &route.destination), move |pass, by| {
                    let through = format!("{by} (through the route {} of {table_id})", route.destination);
                    nat_gateway::ready(pass, &route.target.to_string(), &through)?;
                    pass.apply(async |aws| send_route(aws, &table_id, &route, replace).await)
                });
            }
            _ => sends.push((route, replace)),
        }
    }
    // Routes whose destination stays are replaced above.
    let deletes: Vec<&Route> =
        current.difference(wanted).filter(|r| !wanted.iter().any(|w| w.destination == r.destination)).collect();
    if sends.is_empty() && deletes.is_empty() {
        return Ok(());
    }
    pass.send(async |aws| {
        let created = crate::aws::concurrently(&sends, |(route, replace)| send_route(aws, table_id, route, *replace));
        let deleted = crate::aws::concurrently(&deletes, |route| async move {
            sent(
                "DeleteRoute",
                aws.ec2.delete_route().route_table_id(table_id).destination_cidr_block(&route.destination).send(),
            )
            .await
        });
        tokio::try_join!(created, deleted).map(drop)
    })
    .await
}

/// The key of a route's deferred create (see [`Pass::defer`]).
fn route_key(table_id: &str, destination: &str) -> String {
    format!("route {destination} of {table_id}")
}

/// Sends one route: CreateRoute, or ReplaceRoute where the destination already has one (they
/// take the same parameters).
async fn send_route(aws: &Aws, table_id: &str, route: &Route, replace: bool) -> Result<()> {
    let (nat, gateway) = match &route.target {
        RouteTarget::Nat(id) => (Some(id.clone()), None),
        other => (None, Some(other.to_string())),
    };
    macro_rules! send_route {
        ($request:expr, $operation:literal) => {
            $request
                .route_table_id(table_id)
                .destination_cidr_block(&route.destination)
                .set_nat_gateway_id(nat)
                .set_gateway_id(gateway)
                .send()
                .await
                .map(drop)
                .map_err(|e| aws_error($operation, e))
        };
    }
    if replace {
        send_route!(aws.ec2.replace_route(), "ReplaceRoute")
    } else {
        send_route!(aws.ec2.create_route(), "CreateRoute")
    }
}

/// Waits for what the egress of `subnets` (ids) still waits for in this run, because `by` (e.g.
/// `service myapp`) needs it: the routes of their route tables to pending NAT gateways, and those
/// NAT gateways. ECS tasks in subnets without egress cannot pull their image, and each such task
/// counts against the deployment circuit breaker.
pub fn egress_ready(pass: &Pass, subnets: &[String], by: &str) -> Result<()> {
    let tables = pass.snapshot()?.borrow().egress.route_tables.clone();
    for table in tables.iter().filter(|t| t.associations.iter().any(|a| subnets.contains(&a.subnet))) {
        for route in &table.routes {
            if let RouteTarget::Nat(nat) = &route.target {
                pass.need(&route_key(&table.id, &route.destination), by)?;
                nat_gateway::ready(pass, nat, by)?;
            }
        }
    }
    Ok(())
}

/// Makes `table`'s subnet associations `wanted`: the subnets no longer wanted are disassociated
/// and the new ones associated (or moved from the table they are on), all together: one round.
async fn apply_associations(
    pass: &Pass,
    table: &RouteTable,
    all_tables: &[RouteTable],
    wanted: &BTreeSet<String>,
) -> Result<Vec<Association>> {
    let (mut associations, gone): (Vec<Association>, Vec<Association>) =
        table.associations.iter().cloned().partition(|a| wanted.contains(&a.subnet));
    let new: Vec<(&String, Option<String>)> = wanted
        .iter()
        .filter(|subnet| !table.associations.iter().any(|a| &a.subnet == *subnet))
        .map(|subnet| {
            let elsewhere = all_tables
                .iter()
                .filter(|t| t.id != table.id)
                .flat_map(|t| t.associations.iter())
                .find(|a| &a.subnet == subnet)
                .map(|a| a.id.clone());
            (subnet, elsewhere)
        })
        .collect();
    if gone.is_empty() && new.is_empty() {
        return Ok(associations);
    }
    let (_, ids) = pass
        .send(async |aws| {
            let disassociated = crate::aws::concurrently(&gone, |a| disassociate(aws, &a.id));
            let associated = crate::aws::concurrently(&new, |(subnet, elsewhere)| async move {
                match elsewhere {
                    Some(old) => aws
                        .ec2
                        .replace_route_table_association()
                        .association_id(old)
                        .route_table_id(&table.id)
                        .send()
                        .await
                        .map_err(|e| aws_error("ReplaceRouteTableAssociation", e))?
                        .new_association_id()
                        .map(str::to_string)
                        .ok_or_else(|| Error::missing("ReplaceRouteTableAssociation", "NewAssociationId")),
                    None => aws
                        .ec2
                        .associate_route_table()
                        .route_table_id(&table.id)
                        .subnet_id(*subnet)
                        .send()
                        .await
                        .map_err(|e| aws_error("AssociateRouteTable", e))?
                        .association_id()
                        .map(str::to_string)
                        .ok_or_else(|| Error::missing("AssociateRouteTable", "AssociationId")),
                }
            });
            tokio::try_join!(disassociated, associated)
        })
        .await?;
    for ((subnet, _), id) in new.into_iter().zip(ids) {
        associations.push(Association { id, subnet: subnet.clone() });
    }
    Ok(associations)
}

/// Detaches a route table from its subnets, then deletes it.
pub async fn delete_route_table(aws: &Aws, table: &RouteTable) -> Result<()> {
    for association in &table.associations {
        disassociate(aws, &association.id).await?;
    }
    sent("DeleteRouteTable", aws.ec2.delete_route_table().route_table_id(&table.id).send()).await
}

/// Removes one subnet association (DisassociateRouteTable).
async fn disassociate(aws: &Aws, association_id: &str) -> Result<()> {
    sent("DisassociateRouteTable", aws.ec2.disassociate_route_table().association_id(association_id).send()).await
}
