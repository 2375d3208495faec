//! Script functions for EC2 networking: `default_vpc`, `vpc`, `new_vpc`, `internet_gateway`,
//! `default_subnet`, `subnet`, `security_group`, `cidr_subnet`.

use std::rc::Rc;

use aws_sdk_ec2::types::Filter;
use futures_util::FutureExt;
use futures_util::future::LocalBoxFuture;
use rhai::{Array, Dynamic, Engine, EvalAltResult, Map};

use crate::aws::Pass;
use crate::aws::ec2::{
    self, InternetGateway, Peer, Rule, SecurityGroup, SecurityGroupSpec, Subnet, SubnetSpec, Vpc, check_port,
    parse_ports, parse_rule_cidr, parse_subnet_cidr,
};
use crate::bindings::keep_of;
use crate::bindings::{
    Described, Fields, as_string, function, handle, handle_field, handle_id, optional, show, string_array, text,
};
use crate::converge::converge_kept;
use crate::error::{Error, Result};
use crate::kinds::internet_gateway::InternetGatewaySpec;
use crate::kinds::vpc::{StackVpc, VpcSpec};
use crate::runtime::Aws;

type Rhai<T> = std::result::Result<T, Box<EvalAltResult>>;

pub(super) fn register(engine: &mut Engine, pass: &Rc<Pass>) {
    let p = pass.clone();
    function(
        "default_vpc",
        &["Map"],
        "The region's default VPC (a lookup; it never changes anything).\n\
         Returns #{ kind, id, name, cidr, cidrs, default }.\nExample: `let vpc = default_vpc();`",
    )
    .register_into_engine(engine, move || -> Rhai<Map> { Ok(vpc_handle(&ec2::find_default_vpc(&p)?)) });

    let p = pass.clone();
    function(
        "vpc",
        &["lookup: Map", "Map"],
        "Looks up a VPC by `id` or by `name` (its Name tag); never creates one (new_vpc does).\n\
         A VPC this stack made with new_vpc can be looked up while the script still declares it with\n\
         new_vpc; looking it up instead of declaring it is an error (the run would delete it).\n\
         Example: `let vpc = vpc(#{ name: \"shared\" });`",
    )
    .register_into_engine(engine, move |lookup: Map| -> Rhai<Map> {
        let f = Fields::new("vpc", lookup, &["id", "name"])?;
        let (id, name) = (f.str("id")?, f.str("name")?);
        if id.is_none() && name.is_none() {
            return Err(Error::MissingKey {
                key: "id".into(),
                context: "vpc()".into(),
                what: "give `id` or `name`".into(),
            }
            .into());
        }
        Ok(vpc_handle(&ec2::find_vpc(&p, id.as_deref(), name.as_deref())?))
    });

    let p = pass.clone();
    function(
        "new_vpc",
        &["spec: Map", "Map"],
        "Ensures a VPC the stack owns: #{ name, cidr }, with DNS support and DNS hostnames on.\n\
         `keep: true` marks it (tag deckhand:keep): a run whose script no longer declares it keeps it.\n\
         `name` (Name tag), `cidr` (IPv4, /16 to /28, e.g. \"10.20.0.0/16\"; it cannot change in place).\n\
         Returns the same handle as vpc(): #{ kind, id, name, cidr, cidrs, default }. Add an\n\
         internet_gateway, public subnets routed to it (route_table) and private ones behind a nat_gateway.\n\
         vpc(#{ name }) only looks a VPC up; dropping new_vpc from a script deletes the VPC on the next run.\n\
         Example: `let vpc = new_vpc(#{ name: \"myapp\", cidr: \"10.20.0.0/16\" });`",
    )
    .register_into_engine(engine, move |spec: Map| -> Rhai<Map> {
        let (keep, spec) = keep_of("new_vpc", spec)?;
        let f = Fields::new("new_vpc", spec, &["name", "cidr"])?;
        let name = f.req_str("name", "the VPC's Name tag")?;
        validate_name(&f.name("name"), &name, 255)?;
        let cidr = f.req_str("cidr", "the VPC's IPv4 block, e.g. \"10.20.0.0/16\"")?;
        let cidr = cidr.parse().map_err(|_| {
            Error::invalid(f.name("cidr"), format!("{cidr:?}"), "an IPv4 CIDR block like \"10.20.0.0/16\"")
        })?;
        Ok(vpc_handle(&converge_kept::<StackVpc>(&p, &VpcSpec { name, cidr }, keep)?.vpc))
    });

    let p = pass.clone();
    function(
        "internet_gateway",
        &["vpc: Map", "spec: Map", "Map"],
        "Ensures an internet gateway attached to a VPC of new_vpc: #{ name }.\n\
         `keep: true` marks it (tag deckhand:keep): a run whose script no longer declares it keeps it.\n\
         Public subnets route 0.0.0.0/0 to it: route_table(vpc, #{ ..., routes: [#{ cidr: \"0.0.0.0/0\",\n\
         internet_gateway: igw }] }). Load balancers, NAT gateways and public IPs need it.\n\
         Returns #{ kind, id, name, vpc_id }.\n\
         Example: `let igw = internet_gateway(vpc, #{ name: \"myapp\" });`",
    )
    .register_into_engine(engine, move |vpc: Dynamic, spec: Map| -> Rhai<Map> {
        let vpc = vpc_from("internet_gateway.vpc", &vpc)?;
        let (keep, spec) = keep_of("internet_gateway", spec)?;
        let f = Fields::new("internet_gateway", spec, &["name"])?;
        let name = f.req_str("name", "the internet gateway's Name tag, unique in the stack")?;
        validate_name(&f.name("name"), &name, 255)?;
        let gateway = converge_kept::<InternetGateway>(&p, &InternetGatewaySpec { name, vpc }, keep)?;
        Ok(internet_gateway_handle(&gateway))
    });

    function(
        "cidr_subnet",
        &["cidr: &str", "new_bits: i64", "number: i64", "String"],
        "The `number`th block of `new_bits` more bits inside `cidr` (terraform's cidrsubnet), for\n\
         subnets of a VPC whose block comes from a variable. A calculation; it never calls AWS.\n\
         Example: `cidr_subnet(\"10.20.0.0/16\", 8, 1)` is \"10.20.1.0/24\"",
    )
    .register_into_engine(engine, |cidr: &str, new_bits: i64, number: i64| -> Rhai<String> {
        Ok(cidr_subnet(cidr, new_bits, number)?.to_string())
    });

    let p = pass.clone();
    function(
        "default_subnet",
        &["vpc: Map", "az: &str", "Map"],
        "The default (public) subnet of an availability zone in the default VPC; a lookup.\n\
         Example: `default_subnet(vpc, \"us-west-2a\")`",
    )
    .register_into_engine(engine, move |vpc: Dynamic, az: &str| -> Rhai<Map> {
        let vpc = vpc_from("default_subnet.vpc", &vpc)?;
        Ok(subnet_handle(&ec2::find_default_subnet(&p, &vpc, az)?))
    });

    let p = pass.clone();
    function(
        "subnet",
        &["vpc: Map", "spec: Map", "Map"],
        "Ensures a subnet exists: #{ name, az, cidr, public_ip }.\n\
         `keep: true` marks it (tag deckhand:keep): a run whose script no longer declares it keeps it.\n\
         `name` (Name tag, unique in the stack), `az` (e.g. \"us-west-2a\"), `cidr` (IPv4, /16 to /28,\n\
         inside the VPC, overlapping no other subnet), `public_ip` (assign public IPs on launch; default false).\n\
         AZ and CIDR cannot change in place; deckhand refuses rather than replacing the subnet.\n\
         Example: `subnet(vpc, #{ name: \"myapp-a\", az: \"us-west-2a\", cidr: \"172.31.96.0/24\" })`",
    )
    .register_into_engine(engine, move |vpc: Dynamic, spec: Map| -> Rhai<Map> {
        let (keep, spec) = keep_of("subnet", spec)?;
        let spec = subnet_spec(vpc, spec)?;
        Ok(subnet_handle(&converge_kept::<Subnet>(&p, &spec, keep)?))
    });

    let p = pass.clone();
    function(
        "security_group",
        &["vpc: Map", "spec: Map", "Map"],
        "Ensures a security group with exactly the given rules: #{ name, description, ingress, egress }.\n\
         `keep: true` marks it (tag deckhand:keep): a run whose script no longer declares it keeps it.\n\
         A rule is #{ port, protocol, cidr } or #{ port, protocol, from: <security group> } (ingress;\n\
         `to:` for egress). `port` is 1-65535 or a range \"8000-8100\"; `protocol` is tcp (default), udp,\n\
         icmp or all. Rules not in the script are revoked. Without `egress`, AWS's default (all traffic\n\
         out) is kept.\n\
         Example: `security_group(vpc, #{ name: \"myapp-app\", ingress: [#{ port: 8080, from: alb_sg }] })`",
    )
    .register_into_engine(engine, move |vpc: Dynamic, spec: Map| -> Rhai<Map> {
        let (keep, spec) = keep_of("security_group", spec)?;
        let spec = security_group_spec(vpc, spec)?;
        Ok(security_group_handle(&converge_kept::<SecurityGroup>(&p, &spec, keep)?))
    });
}

pub(super) fn vpc_handle(vpc: &Vpc) -> Map {
    let cidrs: Array = vpc.cidrs.iter().map(|c| Dynamic::from(c.to_string())).collect();
    let first = cidrs.first().cloned().unwrap_or_else(|| crate::plan::UNKNOWN.into());
    handle(
        "vpc",
        [
            ("id", vpc.id.clone().into()),
            ("name", vpc.name.clone().into()),
            ("cidr", first),
            ("cidrs", cidrs.into()),
            ("default", vpc.is_default.into()),
        ],
    )
}

pub(super) fn internet_gateway_handle(gateway: &InternetGateway) -> Map {
    handle(
        "internet_gateway",
        [
            ("id", gateway.id.clone().into()),
            ("name", gateway.name.clone().unwrap_or_default().into()),
            ("vpc_id", gateway.vpc_id.clone().unwrap_or_default().into()),
        ],
    )
}

/// The `number`th block of `new_bits` more bits inside `cidr`, as terraform's `cidrsubnet`.
fn cidr_subnet(cidr: &str, new_bits: i64, number: i64) -> Result<ipnet::Ipv4Net> {
    let net: ipnet::Ipv4Net = cidr.parse().map_err(|_| {
        Error::invalid("cidr_subnet.cidr", format!("{cidr:?}"), "an IPv4 CIDR block like \"10.20.0.0/16\"")
    })?;
    let prefix = i64::from(net.prefix_len()) + new_bits;
    if new_bits < 1 || prefix > 32 {
        return Err(Error::invalid(
            "cidr_subnet.new_bits",
            new_bits,
            format!("1 to {} (a block of {net} has {} bits left)", 32 - net.prefix_len(), 32 - net.prefix_len()),
        ));
    }
    let count = 1_i64 << new_bits;
    if !(0..count).contains(&number) {
        return Err(Error::invalid("cidr_subnet.number", number, format!("0 to {} ({new_bits} new bits)", count - 1)));
    }
    let size = 1_u32 << (32 - prefix);
    let start = u32::from(net.network()) + size * u32::try_from(number).expect("checked above");
    Ok(ipnet::Ipv4Net::new(start.into(), u8::try_from(prefix).expect("checked above")).expect("a valid prefix"))
}

/// Reads a VPC handle (or a `vpc-...` id, whose CIDRs are then unknown).
pub(crate) fn vpc_from(key: &str, value: &Dynamic) -> Result<Vpc> {
    let id = handle_id(key, value, "vpc", "vpc-")?;
    let field = |name: &str| handle_field(value, name);
    let cidrs = field("cidrs")
        .and_then(|c| c.try_cast::<Array>())
        .unwrap_or_default()
        .iter()
        .filter_map(|c| c.to_string().parse().ok())
        .collect();
    Ok(Vpc {
        id,
        name: field("name").map(|n| n.to_string()).unwrap_or_default(),
        cidrs,
        is_default: field("default").and_then(|d| d.as_bool().ok()).unwrap_or(false),
        stack: None,
    })
}

/// Reads a subnet handle (or a `subnet-...` id, whose other facts are then unknown).
pub(crate) fn subnet_from(key: &str, value: &Dynamic) -> Result<Subnet> {
    let id = handle_id(key, value, "subnet", "subnet-")?;
    let field = |name: &str| handle_field(value, name).map(|v| v.to_string());
    Ok(Subnet {
        id,
        name: field("name"),
        vpc_id: field("vpc_id").unwrap_or_default(),
        az: field("az").unwrap_or_default(),
        cidr: field("cidr").and_then(|c| c.parse().ok()).unwrap_or_default(),
        public_ip: handle_field(value, "public_ip").and_then(|v| v.as_bool().ok()).unwrap_or(false),
        default_for_az: false,
        stack: None,
    })
}

fn subnet_spec(vpc: Dynamic, map: Map) -> Result<SubnetSpec> {
    let vpc = vpc_from("subnet.vpc", &vpc)?;
    let f = Fields::new("subnet", map, &["name", "az", "cidr", "public_ip"])?;
    let name = f.req_str("name", "the subnet's Name tag, unique in the stack")?;
    validate_name(&f.name("name"), &name, 255)?;
    let az = f.req_str("az", "the availability zone, e.g. \"us-west-2a\"")?;
    let cidr = parse_subnet_cidr(&f.name("cidr"), &f.req_str("cidr", "the IPv4 block, e.g. \"172.31.96.0/24\"")?)?;
    Ok(SubnetSpec { name, vpc, az, cidr, public_ip: f.bool("public_ip")?.unwrap_or(false) })
}

pub(super) fn subnet_handle(subnet: &Subnet) -> Map {
    handle(
        "subnet",
        [
            ("id", subnet.id.clone().into()),
            ("name", subnet.name.clone().map(Dynamic::from).unwrap_or(Dynamic::UNIT)),
            ("vpc_id", subnet.vpc_id.clone().into()),
            ("az", subnet.az.clone().into()),
            ("cidr", subnet.cidr.to_string().into()),
            ("public_ip", subnet.public_ip.into()),
        ],
    )
}

fn security_group_spec(vpc: Dynamic, map: Map) -> Result<SecurityGroupSpec> {
    let vpc = vpc_from("security_group.vpc", &vpc)?;
    let f = Fields::new("security_group", map, &["name", "description", "ingress", "egress"])?;
    let name = f.req_str("name", "the group name, unique in the VPC")?;
    validate_name(&f.name("name"), &name, 255)?;
    if name.starts_with("sg-") {
        return Err(Error::invalid(
            f.name("name"),
            format!("{name:?}"),
            "a name that does not start with \"sg-\" (AWS reserves it)",
        ));
    }
    let description = f.str("description")?;
    if let Some(d) = &description
        && (d.is_empty() || d.len() > 255 || !d.is_ascii())
    {
        return Err(Error::invalid(f.name("description"), format!("{d:?}"), "1 to 255 ASCII characters"));
    }
    let ingress = rules(&f, "ingress", "from")?.unwrap_or_default();
    let egress = rules(&f, "egress", "to")?;
    Ok(SecurityGroupSpec { name, vpc, description, ingress, egress })
}

fn rules(f: &Fields, key: &'static str, peer_key: &'static str) -> Result<Option<Vec<Rule>>> {
    let Some(maps) = f.maps(key)? else {
        return Ok(None);
    };
    let mut rules = Vec::new();
    for (i, map) in maps.into_iter().enumerate() {
        let context: &'static str = if key == "ingress" { "security_group.ingress" } else { "security_group.egress" };
        let at = |k: &str| format!("security_group.{key}[{i}].{k}");
        let r = Fields::new(context, map, &["port", "protocol", "cidr", peer_key])?;
        let protocol = match r.str("protocol")?.as_deref().unwrap_or("tcp") {
            "tcp" | "6" => "tcp",
            "udp" | "17" => "udp",
            "icmp" | "1" => "icmp",
            "all" | "-1" => "-1",
            other => {
                return Err(Error::invalid(at("protocol"), format!("{other:?}"), "tcp, udp, icmp or all"));
            }
        };
        let (from_port, to_port) = match (protocol, r.raw("port")) {
            ("-1", None) | ("icmp", None) => (-1, -1),
            ("-1", Some(port)) => {
                return Err(Error::invalid(at("port"), show(port), "no port: protocol \"all\" covers every port"));
            }
            (_, None) => {
                return Err(Error::MissingKey {
                    key: "port".into(),
                    context: format!("security_group.{key}[{i}]"),
                    what: "the port (1-65535) or range \"8000-8100\"".into(),
                });
            }
            (_, Some(port)) => match port.as_int() {
                Ok(n) => {
                    check_port(&at("port"), n)?;
                    (n as i32, n as i32)
                }
                Err(_) => parse_ports(&at("port"), &as_string(&at("port"), port)?)?,
            },
        };
        let peer = match (r.raw("cidr"), r.raw(peer_key)) {
            (Some(cidr), None) => Peer::Cidr(parse_rule_cidr(&at("cidr"), &as_string(&at("cidr"), cidr)?)?),
            (None, Some(group)) => Peer::Group(handle_id(&at(peer_key), group, "security_group", "sg-")?),
            (Some(_), Some(_)) => {
                return Err(Error::invalid(
                    at(peer_key),
                    "given together with cidr",
                    format!("either `cidr` or `{peer_key}`, not both"),
                ));
            }
            (None, None) => {
                return Err(Error::MissingKey {
                    key: "cidr".into(),
                    context: format!("security_group.{key}[{i}]"),
                    what: format!("each rule needs `cidr` (e.g. \"0.0.0.0/0\") or `{peer_key}` (a security group)"),
                });
            }
        };
        rules.push(Rule { protocol: protocol.to_string(), from_port, to_port, peer });
    }
    rules.sort();
    rules.dedup();
    Ok(Some(rules))
}

pub(super) fn security_group_handle(group: &SecurityGroup) -> Map {
    handle(
        "security_group",
        [
            ("id", group.id.clone().into()),
            ("name", group.name.clone().into()),
            ("vpc_id", group.vpc_id.clone().into()),
            ("description", group.description.clone().into()),
        ],
    )
}

/// Checks a resource name: non-empty, at most `max` characters.
pub(crate) fn validate_name(key: &str, name: &str, max: usize) -> Result<()> {
    if name.is_empty() || name.len() > max {
        return Err(Error::invalid(key, format!("{name:?}"), format!("1 to {max} characters")));
    }
    Ok(())
}

/// How `describe` re-reads VPCs, internet gateways, subnets and security groups (by id).
pub(super) const DESCRIBED: &[Described] = &[
    ("vpc", "id", describe_vpc),
    ("subnet", "id", describe_subnet),
    ("security_group", "id", describe_security_group),
    ("internet_gateway", "id", describe_internet_gateway),
];

/// A describe filter on one id.
pub(super) fn id_filter(name: &str, id: &str) -> Vec<Filter> {
    vec![Filter::builder().name(name).values(id).build()]
}

fn describe_vpc<'a>(aws: &'a Aws, map: &'a Map) -> LocalBoxFuture<'a, Result<Option<Map>>> {
    async move {
        let id = text(map, "id").unwrap_or_default();
        Ok(ec2::vpcs(aws, id_filter("vpc-id", &id)).await?.first().map(vpc_handle))
    }
    .boxed_local()
}

fn describe_internet_gateway<'a>(aws: &'a Aws, map: &'a Map) -> LocalBoxFuture<'a, Result<Option<Map>>> {
    async move {
        let id = text(map, "id").unwrap_or_default();
        Ok(ec2::internet_gateways(aws, id_filter("internet-gateway-id", &id)).await?.first().map(|g| {
            let mut map = internet_gateway_handle(g);
            map.insert("stack".into(), optional(g.stack.clone()));
            map
        }))
    }
    .boxed_local()
}

fn describe_subnet<'a>(aws: &'a Aws, map: &'a Map) -> LocalBoxFuture<'a, Result<Option<Map>>> {
    async move {
        let id = text(map, "id").unwrap_or_default();
        Ok(ec2::subnets(aws, id_filter("subnet-id", &id)).await?.first().map(|s| {
            let mut map = subnet_handle(s);
            map.insert("default_for_az".into(), s.default_for_az.into());
            map.insert("stack".into(), optional(s.stack.clone()));
            map
        }))
    }
    .boxed_local()
}

fn describe_security_group<'a>(aws: &'a Aws, map: &'a Map) -> LocalBoxFuture<'a, Result<Option<Map>>> {
    async move {
        let id = text(map, "id").unwrap_or_default();
        Ok(ec2::security_groups(aws, id_filter("group-id", &id)).await?.first().map(|g| {
            let mut map = security_group_handle(g);
            let rules = |rules: &[Rule]| string_array(&rules.iter().map(rule_text).collect::<Vec<_>>());
            map.insert("ingress".into(), rules(&g.ingress));
            map.insert("egress".into(), rules(&g.egress));
            map.insert("stack".into(), optional(g.stack.clone()));
            map
        }))
    }
    .boxed_local()
}

fn rule_text(rule: &Rule) -> String {
    let ports = match (rule.protocol.as_str(), rule.from_port, rule.to_port) {
        ("-1", ..) => "all".to_string(),
        (_, from, to) if from == to => format!("{}/{from}", rule.protocol),
        (_, from, to) => format!("{}/{from}-{to}", rule.protocol),
    };
    format!("{ports} {}", rule.peer)
}

#[cfg(test)]
mod tests {
    use super::cidr_subnet;

    #[test]
    fn cidr_subnet_numbers_blocks_as_terraform_does() {
        assert_eq!(cidr_subnet("10.20.0.0/16", 8, 0).unwrap().to_string(), "10.20.0.0/24");
        assert_eq!(cidr_subnet("10.20.0.0/16", 8, 11).unwrap().to_string(), "10.20.11.0/24");
        assert_eq!(cidr_subnet("10.20.0.0/16", 4, 15).unwrap().to_string(), "10.20.240.0/20");
        assert_eq!(cidr_subnet("172.31.0.0/16", 12, 4095).unwrap().to_string(), "172.31.255.240/28");
        assert!(cidr_subnet("10.20.0.0/16", 8, 256).unwrap_err().to_string().contains("0 to 255"));
        assert!(cidr_subnet("10.20.0.0/16", 17, 0).is_err());
        assert!(cidr_subnet("10.20.0.0/16", 0, 0).is_err());
        assert!(cidr_subnet("nonsense", 8, 0).is_err());
    }
}
