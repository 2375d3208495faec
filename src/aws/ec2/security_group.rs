//! Security groups: rules (flattened to one protocol, port range and peer each), their reads, and
//! how a group converges to exactly the script's rules.

use std::collections::BTreeSet;
use std::fmt;

use aws_sdk_ec2::types::{Filter, IpPermission, IpRange, Ipv6Range, PrefixListId, ResourceType, UserIdGroupPair};
use futures_util::future::LocalBoxFuture;
use ipnet::IpNet;

use super::{Vpc, remembered_if_failed, tag_value, tags_for};
use crate::aws::Pass;
use crate::aws::Snapshot;
use crate::converge::{Created, Drift, Resource};
use crate::error::{Error, Result, aws_error, sent};
use crate::plan::{FieldDiff, UNKNOWN, is_known};
use crate::runtime::Aws;
use crate::tagged::Keepable;
use crate::tagged::STACK_TAG;

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

/// Security groups matching `filters` (DescribeSecurityGroups, paginated).
pub(crate) async fn security_groups(aws: &Aws, filters: Vec<Filter>) -> Result<Vec<SecurityGroup>> {
    let mut pages = aws.ec2.describe_security_groups().set_filters(Some(filters)).into_paginator().items().send();
    let mut found = Vec::new();
    while let Some(group) = pages.next().await {
        let g = group.map_err(|e| aws_error("DescribeSecurityGroups", e))?;
        found.push(SecurityGroup {
            id: g.group_id().ok_or_else(|| Error::missing("DescribeSecurityGroups", "GroupId"))?.to_string(),
            name: g.group_name().ok_or_else(|| Error::missing("DescribeSecurityGroups", "GroupName"))?.to_string(),
            vpc_id: g.vpc_id().ok_or_else(|| Error::missing("DescribeSecurityGroups", "VpcId"))?.to_string(),
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
        Peer::PrefixList(l) => p.prefix_list_ids(PrefixListId::builder().prefix_list_id(l).build()),
    };
    p.build()
}

/// The egress AWS gives every new security group.
pub fn default_egress() -> Vec<Rule> {
    vec![Rule { protocol: "-1".into(), from_port: -1, to_port: -1, peer: Peer::Cidr("0.0.0.0/0".into()) }]
}

impl SecurityGroupSpec {
    fn description(&self) -> String {
        self.description.clone().unwrap_or_else(|| DEFAULT_DESCRIPTION.to_string())
    }

    fn egress(&self) -> Vec<Rule> {
        self.egress.clone().unwrap_or_else(default_egress)
    }
}

/// A security group converges by name (the stack's groups are read up front; a group of that name
/// outside the stack is looked up so that the plan already refuses it); its VPC and description
/// cannot change in place, its rules become exactly the script's.
impl Resource for SecurityGroup {
    type Reads = Snapshot;
    type Spec = SecurityGroupSpec;
    type Update = ();
    const KIND: &'static str = "security_group";
    const FIXED: &'static [&'static str] = &["VPC", "description"];

    fn keepable(live: &SecurityGroup) -> Option<Keepable> {
        Some(Keepable::Ec2(live.id.clone()))
    }

    fn name(spec: &SecurityGroupSpec) -> String {
        spec.name.clone()
    }

    fn locator(live: &SecurityGroup) -> String {
        format!("{} in {}", live.id, live.vpc_id)
    }

    fn find(pass: &Pass, spec: &SecurityGroupSpec) -> Result<Option<SecurityGroup>> {
        let snapshot = pass.snapshot()?;
        if let Some(group) = snapshot.borrow().ec2.security_groups.iter().find(|g| g.name == spec.name) {
            return Ok(Some(group.clone()));
        }
        if !is_known(&spec.vpc.id) {
            return Ok(None);
        }
        // Another's group with this name in this VPC: read up front when the script declares it.
        {
            let state = &snapshot.borrow().ec2;
            let (names, named) = &state.named_security_groups;
            if names.contains(&spec.name) {
                return Ok(named.iter().find(|g| g.name == spec.name && g.vpc_id == spec.vpc.id).cloned());
            }
        }
        let Some(found) = pass.read(async |aws| security_groups(aws, by_name(&spec.vpc, &spec.name)).await) else {
            return Ok(None);
        };
        Ok(found?.into_iter().next())
    }

    fn stack_of(live: &SecurityGroup) -> Option<&str> {
        live.stack.as_deref()
    }

    fn planned(spec: &SecurityGroupSpec, stack: &str) -> SecurityGroup {
        SecurityGroup {
            id: UNKNOWN.into(),
            name: spec.name.clone(),
            vpc_id: spec.vpc.id.clone(),
            description: spec.description(),
            ingress: spec.ingress.clone(),
            egress: spec.egress(),
            stack: Some(stack.to_string()),
        }
    }

    fn create(pass: &Pass, spec: &SecurityGroupSpec, stack: &str) -> Result<Created<SecurityGroup>> {
        pass.block(create(pass, spec, stack))
    }

    fn create_beside(
        pass: &Pass,
        spec: SecurityGroupSpec,
        stack: String,
    ) -> Option<LocalBoxFuture<'_, Result<Created<SecurityGroup>>>> {
        Some(Box::pin(async move { create(pass, &spec, &stack).await }))
    }

    fn diff(live: &SecurityGroup, spec: &SecurityGroupSpec) -> Drift<()> {
        let mut fixed = Vec::new();
        if is_known(&spec.vpc.id) && live.vpc_id != spec.vpc.id {
            fixed.push(FieldDiff::changed("vpc", &live.vpc_id, &spec.vpc.id));
        }
        if spec.description.is_some() && live.description != spec.description() {
            fixed.push(FieldDiff::changed(
                "description",
                format!("{:?}", live.description),
                format!("{:?}", spec.description()),
            ));
        }
        let mut diffs = rule_diffs("ingress", "from", &live.ingress, &spec.ingress);
        diffs.extend(rule_diffs("egress", "to", &live.egress, &spec.egress()));
        Drift::of(diffs).with_fixed(fixed)
    }

    fn update(pass: &Pass, live: &SecurityGroup, spec: &SecurityGroupSpec, _update: &()) -> Result<SecurityGroup> {
        pass.block(apply_rules(pass, live, &spec.ingress, &spec.egress()))?;
        Ok(Self::updated(live, spec))
    }

    fn updated(live: &SecurityGroup, spec: &SecurityGroupSpec) -> SecurityGroup {
        SecurityGroup { ingress: spec.ingress.clone(), egress: spec.egress(), ..live.clone() }
    }

    fn remember(snapshot: &mut Snapshot, live: &SecurityGroup) {
        let groups = &mut snapshot.ec2.security_groups;
        groups.retain(|g| g.name != live.name);
        groups.push(live.clone());
    }

    fn summary(live: &SecurityGroup) -> String {
        live.id.clone()
    }
}

/// Creates the group, then puts the script's rules in; a group of that name that appeared
/// meanwhile (a concurrent run, a lost reply) is returned instead: the engine checks whose it is.
async fn create(pass: &Pass, spec: &SecurityGroupSpec, stack: &str) -> Result<Created<SecurityGroup>> {
    let created = pass
        .send(async |aws| {
            aws.ec2
                .create_security_group()
                .group_name(&spec.name)
                .description(spec.description())
                .vpc_id(&spec.vpc.id)
                .tag_specifications(tags_for(ResourceType::SecurityGroup, stack, &spec.name))
                .send()
                .await
                .map_err(|e| aws_error("CreateSecurityGroup", e))
        })
        .await;
    let id = match created {
        Ok(out) => out.group_id().ok_or_else(|| Error::missing("CreateSecurityGroup", "GroupId"))?.to_string(),
        // EC2 models no error codes: compare the code string.
        Err(err) if err.aws_code() == Some("InvalidGroup.Duplicate") => {
            let found = pass.send(async |aws| security_groups(aws, by_name(&spec.vpc, &spec.name)).await).await?;
            return found.into_iter().next().map(Created::Existing).ok_or(err);
        }
        Err(err) => return Err(err),
    };
    // AWS creates a group with no ingress and all egress; then the script's rules go in.
    let bare = SecurityGroup { id, ingress: vec![], egress: default_egress(), ..SecurityGroup::planned(spec, stack) };
    let ruled = apply_rules(pass, &bare, &spec.ingress, &spec.egress()).await;
    remembered_if_failed(pass, &bare, ruled)?;
    Ok(Created::New(SecurityGroup::updated(&bare, spec)))
}

/// The filters for the group named `name` in `vpc`.
fn by_name(vpc: &Vpc, name: &str) -> Vec<Filter> {
    vec![
        Filter::builder().name("vpc-id").values(&vpc.id).build(),
        Filter::builder().name("group-name").values(name).build(),
    ]
}

fn rule_diffs(field: &str, direction: &str, current: &[Rule], wanted: &[Rule]) -> Vec<FieldDiff> {
    let current: BTreeSet<&Rule> = current.iter().collect();
    let wanted: BTreeSet<&Rule> = wanted.iter().collect();
    let added = wanted.difference(&current).map(|r| FieldDiff::added(field, r.describe(direction)));
    let removed = current.difference(&wanted).map(|r| FieldDiff::removed(field, r.describe(direction)));
    added.chain(removed).collect()
}

/// Sends one rule change to the group `$group_id` when `$rules` has any: Authorize/Revoke
/// SecurityGroupIngress/Egress take the same parameters (none may be sent empty).
macro_rules! send_rules {
    ($aws:expr, $request:ident, $operation:literal, $group_id:expr, $rules:expr) => {
        if !$rules.is_empty() {
            $aws.ec2
                .$request()
                .group_id($group_id)
                .set_ip_permissions(Some($rules))
                .send()
                .await
                .map_err(|e| aws_error($operation, e))?;
        }
    };
}

/// Makes the group's rules exactly `ingress` and `egress`: revokes the extra, authorizes the
/// missing. The two directions go together (they are separate rule sets of the group, as
/// terraform-provider-aws's `aws_vpc_security_group_ingress_rule` and `_egress_rule` resources,
/// created concurrently on one group, rely on); within one, the revoke goes first, so the group
/// never holds more rules than the script asks for (the rules-per-group quota counts each
/// direction: VPC User Guide, "Amazon VPC quotas").
async fn apply_rules(pass: &Pass, group: &SecurityGroup, ingress: &[Rule], egress: &[Rule]) -> Result<()> {
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
    pass.send(async |aws| {
        let inbound = async {
            send_rules!(aws, revoke_security_group_ingress, "RevokeSecurityGroupIngress", id, revoke_in);
            send_rules!(aws, authorize_security_group_ingress, "AuthorizeSecurityGroupIngress", id, grant_in);
            Ok::<_, Error>(())
        };
        let outbound = async {
            send_rules!(aws, revoke_security_group_egress, "RevokeSecurityGroupEgress", id, revoke_out);
            send_rules!(aws, authorize_security_group_egress, "AuthorizeSecurityGroupEgress", id, grant_out);
            Ok::<_, Error>(())
        };
        tokio::try_join!(inbound, outbound).map(drop)
    })
    .await
}

/// Deletes a security group (fails with `DependencyViolation` while something uses it).
pub async fn delete_security_group(aws: &Aws, id: &str) -> Result<()> {
    sent("DeleteSecurityGroup", aws.ec2.delete_security_group().group_id(id).send()).await
}

/// Revokes every rule of `groups` that names another security group, so that groups which
/// reference each other can then be deleted in any order.
pub async fn revoke_group_references(aws: &Aws, groups: &[SecurityGroup]) -> Result<()> {
    for group in groups {
        let by_group = |rules: &[Rule]| -> Vec<IpPermission> {
            rules.iter().filter(|r| matches!(r.peer, Peer::Group(_))).map(permission).collect()
        };
        let (ingress, egress) = (by_group(&group.ingress), by_group(&group.egress));
        send_rules!(aws, revoke_security_group_ingress, "RevokeSecurityGroupIngress", &group.id, ingress);
        send_rules!(aws, revoke_security_group_egress, "RevokeSecurityGroupEgress", &group.id, egress);
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
