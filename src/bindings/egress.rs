//! Script functions for private egress: `nat_gateway`, `route_table`, `vpc_endpoint`.

use std::rc::Rc;

use futures_util::FutureExt;
use futures_util::future::LocalBoxFuture;
use rhai::{Dynamic, Engine, EvalAltResult, Map};

use crate::aws::Pass;
use crate::aws::ec2::Subnet;
use crate::aws::egress::{
    self, Endpoint, EndpointSettings, EndpointSpec, NatGateway, NatGatewaySpec, Route, RouteTable, RouteTableSpec,
    RouteTarget,
};
use crate::aws::queries;
use crate::bindings::ec2::{id_filter, subnet_from, validate_name, vpc_from};
use crate::bindings::keep_of;
use crate::bindings::{
    Described, Fields, as_array, as_string, function, handle, handle_id, optional, show, string_array, text,
};
use crate::converge::converge;
use crate::converge::converge_kept;
use crate::error::{Error, Result};
use crate::runtime::Aws;

type Rhai<T> = std::result::Result<T, Box<EvalAltResult>>;

pub(super) fn register(engine: &mut Engine, pass: &Rc<Pass>) {
    let p = pass.clone();
    function(
        "nat_gateway",
        &["subnet: Map", "spec: Map", "Map"],
        "Ensures a NAT gateway (with its own elastic IP) in a public subnet: #{ name }.\n\
         `keep: true` marks it (tag deckhand:keep): a run whose script no longer declares it keeps it.\n\
         Private subnets route 0.0.0.0/0 to it (see route_table) so tasks without public IPs can pull\n\
         images. It is `pending` for 1-2 minutes on AWS: the run waits for it only where something needs it\n\
         (a route to it, a service in subnets routed through it, else the end of the run), so the statements\n\
         in between go ahead meanwhile. It costs money per hour.\n\
         Example: `let nat = nat_gateway(default_subnet(vpc, \"us-west-2a\"), #{ name: \"myapp\" });`",
    )
    .register_into_engine(engine, move |subnet: Dynamic, spec: Map| -> Rhai<Map> {
        let subnet = subnet_from("nat_gateway.subnet", &subnet)?;
        let (keep, spec) = keep_of("nat_gateway", spec)?;
        let f = Fields::new("nat_gateway", spec, &["name"])?;
        let name = f.req_str("name", "the NAT gateway's Name tag, unique in the stack")?;
        validate_name(&f.name("name"), &name, 255)?;
        Ok(nat_handle(&converge_kept::<NatGateway>(&p, &NatGatewaySpec { name, subnet }, keep)?))
    });

    let p = pass.clone();
    function(
        "route_table",
        &["vpc: Map", "spec: Map", "Map"],
        "Ensures a route table with exactly the given subnets and routes: #{ name, subnets, routes }.\n\
         `keep: true` marks it (tag deckhand:keep): a run whose script no longer declares it keeps it.\n\
         A route is #{ cidr, nat_gateway }, #{ cidr, internet_gateway } (a handle of internet_gateway)\n\
         or #{ cidr, gateway: \"igw-...\" }. Subnets associated with\n\
         another table are moved to this one. The VPC-local route is implicit.\n\
         Example: `route_table(vpc, #{ name: \"myapp-private\", subnets: subnets,\n\
         routes: [#{ cidr: \"0.0.0.0/0\", nat_gateway: nat }] })`",
    )
    .register_into_engine(engine, move |vpc: Dynamic, spec: Map| -> Rhai<Map> {
        let (keep, spec) = keep_of("route_table", spec)?;
        let spec = route_table_spec(&vpc, spec)?;
        Ok(route_table_handle(&converge_kept::<RouteTable>(&p, &spec, keep)?))
    });

    let p = pass.clone();
    function(
        "vpc_endpoint",
        &["vpc: Map", "spec: Map", "Map"],
        "Ensures a VPC endpoint: #{ name, service, type, route_tables, subnets, security_groups }.\n\
         `service` is short (\"s3\", \"ecr.api\", \"ecr.dkr\", \"logs\") or a full service name. `type` is\n\
         \"gateway\" (default for s3 and dynamodb; give `route_tables`) or \"interface\" (default for the\n\
         rest; give `subnets`, one per AZ, and optionally `security_groups` admitting 443).\n\
         Example: `vpc_endpoint(vpc, #{ name: \"myapp-s3\", service: \"s3\", route_tables: [rt] })`",
    )
    .register_into_engine(engine, move |vpc: Dynamic, spec: Map| -> Rhai<Map> {
        let spec = endpoint_spec(&p, &vpc, spec)?;
        Ok(endpoint_handle(&converge::<Endpoint>(&p, &spec)?))
    });
}

pub(super) fn nat_handle(nat: &NatGateway) -> Map {
    handle(
        "nat_gateway",
        [
            ("id", nat.id.clone().into()),
            ("name", nat.name.clone().into()),
            ("subnet_id", nat.subnet_id.clone().into()),
            ("public_ip", nat.public_ip.clone().into()),
        ],
    )
}

pub(super) fn route_table_handle(table: &RouteTable) -> Map {
    handle(
        "route_table",
        [
            ("id", table.id.clone().into()),
            ("name", table.name.clone().unwrap_or_default().into()),
            ("vpc_id", table.vpc_id.clone().into()),
        ],
    )
}

pub(super) fn endpoint_handle(endpoint: &Endpoint) -> Map {
    handle(
        "vpc_endpoint",
        [
            ("id", endpoint.id.clone().into()),
            ("name", endpoint.name.clone().unwrap_or_default().into()),
            ("service", endpoint.is.service.clone().into()),
            ("type", if endpoint.is.gateway { "gateway" } else { "interface" }.into()),
        ],
    )
}

fn subnets(f: &Fields, key: &str) -> Result<Vec<Subnet>> {
    let Some(value) = f.raw(key) else { return Ok(vec![]) };
    as_array(&f.name(key), value)?
        .iter()
        .enumerate()
        .map(|(i, s)| subnet_from(&format!("{}[{i}]", f.name(key)), s))
        .collect()
}

fn ids(f: &Fields, key: &str, kind: &str, prefix: &str) -> Result<Vec<String>> {
    let Some(value) = f.raw(key) else { return Ok(vec![]) };
    as_array(&f.name(key), value)?
        .iter()
        .enumerate()
        .map(|(i, v)| handle_id(&format!("{}[{i}]", f.name(key)), v, kind, prefix))
        .collect()
}

fn route_table_spec(vpc: &Dynamic, map: Map) -> Result<RouteTableSpec> {
    let vpc = vpc_from("route_table.vpc", vpc)?;
    let f = Fields::new("route_table", map, &["name", "subnets", "routes"])?;
    let name = f.req_str("name", "the route table's Name tag, unique in the stack")?;
    validate_name(&f.name("name"), &name, 255)?;
    let subnets = subnets(&f, "subnets")?;
    let mut routes = Vec::new();
    for (i, route) in f.maps("routes")?.unwrap_or_default().into_iter().enumerate() {
        let at = |k: &str| format!("route_table.routes[{i}].{k}");
        let r = Fields::new("route_table.routes", route, &["cidr", "nat_gateway", "internet_gateway", "gateway"])?;
        let cidr = r.req_str("cidr", "the destination, e.g. \"0.0.0.0/0\"")?;
        let net: ipnet::Ipv4Net = cidr
            .parse()
            .map_err(|_| Error::invalid(at("cidr"), format!("{cidr:?}"), "an IPv4 CIDR block like \"0.0.0.0/0\""))?;
        let target = match (r.raw("nat_gateway"), r.raw("internet_gateway").or(r.raw("gateway"))) {
            (Some(nat), None) => RouteTarget::Nat(handle_id(&at("nat_gateway"), nat, "nat_gateway", "nat-")?),
            (None, Some(igw)) if r.raw("internet_gateway").is_some() => {
                if r.raw("gateway").is_some() {
                    return Err(Error::invalid(
                        at("gateway"),
                        "given together with internet_gateway",
                        "either `internet_gateway` (a handle) or `gateway` (\"igw-...\", \"vgw-...\"), not both",
                    ));
                }
                RouteTarget::Gateway(handle_id(&at("internet_gateway"), igw, "internet_gateway", "igw-")?)
            }
            (None, Some(gw)) => {
                let id = as_string(&at("gateway"), gw)?;
                if !(id.starts_with("igw-") || id.starts_with("vgw-")) {
                    return Err(Error::invalid(
                        at("gateway"),
                        show(gw),
                        "an internet or virtual private gateway id (igw-..., vgw-...)",
                    ));
                }
                RouteTarget::Gateway(id)
            }
            _ => {
                return Err(Error::invalid(
                    at("nat_gateway"),
                    "a route with both or neither target",
                    "exactly one of `nat_gateway` (a NAT gateway handle), `internet_gateway` (an internet gateway \
                     handle) or `gateway` (\"igw-...\")",
                ));
            }
        };
        routes.push(Route { destination: net.to_string(), target });
    }
    Ok(RouteTableSpec { name, vpc_id: vpc.id, subnets, routes })
}

fn endpoint_spec(pass: &Pass, vpc: &Dynamic, map: Map) -> Result<EndpointSpec> {
    let vpc = vpc_from("vpc_endpoint.vpc", vpc)?;
    let f =
        Fields::new("vpc_endpoint", map, &["name", "service", "type", "route_tables", "subnets", "security_groups"])?;
    let name = f.req_str("name", "the endpoint's Name tag, unique in the stack")?;
    validate_name(&f.name("name"), &name, 255)?;
    let short = f.req_str("service", "the AWS service, e.g. \"s3\" or \"ecr.dkr\"")?;
    if short.is_empty() || !short.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
    {
        return Err(Error::invalid(
            f.name("service"),
            format!("{short:?}"),
            "a service such as \"s3\", \"ecr.api\", \"ecr.dkr\", \"logs\"",
        ));
    }
    let gateway_capable = matches!(short.rsplit('.').next(), Some("s3" | "dynamodb"));
    let gateway = match f.str("type")?.as_deref() {
        None => gateway_capable,
        Some("gateway") if gateway_capable => true,
        Some("gateway") => {
            return Err(Error::invalid(
                f.name("type"),
                "\"gateway\"",
                format!("\"interface\": only s3 and dynamodb have gateway endpoints, not {short}"),
            ));
        }
        Some("interface") => false,
        Some(other) => {
            return Err(Error::invalid(f.name("type"), format!("{other:?}"), "\"gateway\" or \"interface\""));
        }
    };
    let route_tables = ids(&f, "route_tables", "route_table", "rtb-")?;
    let subnets = subnets(&f, "subnets")?;
    let security_groups = ids(&f, "security_groups", "security_group", "sg-")?;
    if gateway {
        if route_tables.is_empty() {
            return Err(Error::MissingKey {
                key: "route_tables".into(),
                context: "vpc_endpoint()".into(),
                what: "a gateway endpoint needs the route tables of the subnets that use it".into(),
            });
        }
        if !subnets.is_empty() || !security_groups.is_empty() {
            return Err(Error::invalid(
                f.name("subnets"),
                "given for a gateway endpoint",
                "route_tables only: gateway endpoints have no subnets or security groups",
            ));
        }
    } else {
        if subnets.is_empty() {
            return Err(Error::MissingKey {
                key: "subnets".into(),
                context: "vpc_endpoint()".into(),
                what: "an interface endpoint needs subnets (one per AZ)".into(),
            });
        }
        if !route_tables.is_empty() {
            return Err(Error::invalid(
                f.name("route_tables"),
                "given for an interface endpoint",
                "subnets and security_groups only",
            ));
        }
        let mut zones: Vec<&str> = subnets.iter().map(|s| s.az.as_str()).filter(|az| !az.is_empty()).collect();
        zones.sort();
        if zones.windows(2).any(|w| w[0] == w[1]) {
            return Err(Error::invalid(
                f.name("subnets"),
                format!("subnets in {}", zones.join(", ")),
                "at most one subnet per availability zone (an AWS limit for interface endpoints)",
            ));
        }
    }
    let region = pass.region().unwrap_or("us-east-1");
    Ok(EndpointSpec {
        name,
        wants: EndpointSettings {
            vpc_id: vpc.id,
            service: egress::service_name(region, &short),
            gateway,
            route_tables,
            subnets: subnets.iter().map(|s| s.id.clone()).collect(),
            security_groups,
        },
    })
}

/// How `describe` re-reads NAT gateways, route tables and VPC endpoints (by id).
pub(super) const DESCRIBED: &[Described] = &[
    ("nat_gateway", "id", describe_nat_gateway),
    ("route_table", "id", describe_route_table),
    ("vpc_endpoint", "id", describe_endpoint),
];

fn describe_nat_gateway<'a>(aws: &'a Aws, map: &'a Map) -> LocalBoxFuture<'a, Result<Option<Map>>> {
    async move {
        let id = text(map, "id").unwrap_or_default();
        let (found, states) = tokio::try_join!(
            egress::nat_gateways(aws, id_filter("nat-gateway-id", &id)),
            queries::nat_gateway_states(aws, std::slice::from_ref(&id)),
        )?;
        Ok(found.first().map(|n| {
            let mut map = nat_handle(n);
            map.insert("state".into(), optional(states.get(&n.id).cloned()));
            map
        }))
    }
    .boxed_local()
}

fn describe_route_table<'a>(aws: &'a Aws, map: &'a Map) -> LocalBoxFuture<'a, Result<Option<Map>>> {
    async move {
        let id = text(map, "id").unwrap_or_default();
        Ok(egress::route_tables(aws, id_filter("route-table-id", &id)).await?.first().map(|t| {
            let mut map = route_table_handle(t);
            map.insert("main".into(), t.main.into());
            map.insert("routes".into(), string_array(&t.routes.iter().map(ToString::to_string).collect::<Vec<_>>()));
            let subnets: Vec<String> = t.associations.iter().map(|a| a.subnet.clone()).collect();
            map.insert("subnets".into(), string_array(&subnets));
            map.insert("stack".into(), optional(t.stack.clone()));
            map
        }))
    }
    .boxed_local()
}

fn describe_endpoint<'a>(aws: &'a Aws, map: &'a Map) -> LocalBoxFuture<'a, Result<Option<Map>>> {
    async move {
        let id = text(map, "id").unwrap_or_default();
        let (found, states) = tokio::try_join!(
            egress::endpoints(aws, id_filter("vpc-endpoint-id", &id)),
            queries::endpoint_states(aws, std::slice::from_ref(&id)),
        )?;
        Ok(found.first().map(|e| {
            let mut map = endpoint_handle(e);
            map.insert("state".into(), optional(states.get(&e.id).cloned()));
            map.insert("vpc_id".into(), e.is.vpc_id.clone().into());
            map.insert("route_tables".into(), string_array(&e.is.route_tables));
            map.insert("subnets".into(), string_array(&e.is.subnets));
            map.insert("security_groups".into(), string_array(&e.is.security_groups));
            map.insert("stack".into(), optional(e.stack.clone()));
            map
        }))
    }
    .boxed_local()
}
