//! VPCs the stack owns: `new_vpc(#{ name, cidr })` creates one (tagged with the stack, DNS
//! support and DNS hostnames on, as ECS tasks and interface endpoints with private DNS need) and
//! converges its DNS attributes; its CIDR cannot change in place. `vpc(#{ id })` and
//! `vpc(#{ name })` stay lookups (`aws/ec2/mod.rs`): a VPC is the stack's only through `new_vpc`.
//!
//! The run's snapshot reads every VPC of the region (one DescribeVpcs, which also serves the
//! default VPC and lookups); the DNS attributes of a declared VPC are read when it is converged
//! (DescribeVpcAttribute, one attribute a request, both at once). Deleting one comes after
//! everything in it; AWS refuses it (`DependencyViolation`) while network interfaces remain (a
//! deleted load balancer's or task's, released minutes later), so it is retried.

use aws_sdk_ec2::types::{AttributeBooleanValue, ResourceType, VpcAttributeName, VpcState};
use futures_util::FutureExt;
use futures_util::future::LocalBoxFuture;
use ipnet::Ipv4Net;

use super::stack_kind::retry_while;
use super::{Deleting, Entry, Inventory, Kind, Pending, Showing, Shown, StackKind, done};
use crate::aws::Pass;
use crate::aws::Snapshot;
use crate::aws::ec2::{Vpc, remembered_if_failed, tags_for};
use crate::converge::{Created, Drift, Resource};
use crate::error::{Error, Result, aws_error};
use crate::plan::{FieldDiff, UNKNOWN, is_known};
use crate::poll::{Check, Wait};
use crate::runtime::Aws;
use crate::tagged::Keepable;
use crate::timing::{VPC_AVAILABLE_PACE, VPC_AVAILABLE_TIMEOUT};

/// The kind.
pub const KIND: Kind = Kind("vpc");

/// What a script asks of a VPC the stack owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpcSpec {
    /// Its `Name` tag.
    pub name: String,
    /// Its IPv4 block, /16 to /28.
    pub cidr: Ipv4Net,
}

/// A VPC of the stack as it exists (or, planned, as it will): the VPC and its DNS attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackVpc {
    /// The VPC (its handle's facts).
    pub vpc: Vpc,
    /// Whether the Amazon-provided DNS server resolves names in it (`enableDnsSupport`).
    pub dns_support: bool,
    /// Whether instances and interfaces with public IPs get public DNS names (`enableDnsHostnames`).
    pub dns_hostnames: bool,
}

/// Checks a VPC's block as CreateVpc does: /16 to /28 (VPC User Guide, "VPC CIDR blocks"), given
/// by its network address.
pub fn validate_cidr(key: &str, cidr: Ipv4Net) -> Result<()> {
    if !(16..=28).contains(&cidr.prefix_len()) {
        return Err(Error::invalid(
            key,
            format!("{:?}", cidr.to_string()),
            "a block from /16 to /28 (AWS's VPC size limits)",
        ));
    }
    if cidr.trunc() != cidr {
        return Err(Error::invalid(
            key,
            format!("{:?}", cidr.to_string()),
            format!("a network address; did you mean {}?", cidr.trunc()),
        ));
    }
    Ok(())
}

fn on(value: bool) -> AttributeBooleanValue {
    AttributeBooleanValue::builder().value(value).build()
}

/// The VPC's DNS support and DNS hostnames attributes (two DescribeVpcAttribute, at once).
async fn dns_attributes(aws: &Aws, id: &str) -> Result<(bool, bool)> {
    let read = async |attribute: VpcAttributeName| {
        let out = aws.ec2.describe_vpc_attribute().vpc_id(id).attribute(attribute.clone()).send().await;
        let out = out.map_err(|e| aws_error("DescribeVpcAttribute", e))?;
        let value = match attribute {
            VpcAttributeName::EnableDnsSupport => out.enable_dns_support(),
            _ => out.enable_dns_hostnames(),
        };
        Ok::<_, Error>(value.and_then(AttributeBooleanValue::value).unwrap_or(false))
    };
    tokio::try_join!(read(VpcAttributeName::EnableDnsSupport), read(VpcAttributeName::EnableDnsHostnames))
}

/// Turns one DNS attribute on or off (ModifyVpcAttribute takes one attribute a request).
async fn set_dns(aws: &Aws, id: &str, attribute: VpcAttributeName, value: bool) -> Result<()> {
    let modify = aws.ec2.modify_vpc_attribute().vpc_id(id);
    let modify = match attribute {
        VpcAttributeName::EnableDnsSupport => modify.enable_dns_support(on(value)),
        _ => modify.enable_dns_hostnames(on(value)),
    };
    modify.send().await.map(drop).map_err(|e| aws_error("ModifyVpcAttribute", e))
}

/// Waits until a new VPC is `available` (CreateVpc answers `pending`), as terraform-provider-aws's
/// `waitVPCCreated` does before it sets the VPC's attributes (internal/service/ec2/wait.go).
async fn wait_available(aws: &Aws, id: &str) -> Result<()> {
    let filter = aws_sdk_ec2::types::Filter::builder().name("vpc-id").values(id).build();
    Wait::new(
        aws.clock(),
        "VPC available",
        format!("VPC {id} to be available"),
        VPC_AVAILABLE_PACE,
        VPC_AVAILABLE_TIMEOUT,
    )
    .quiet()
    .until(async |_| {
        let out = aws.ec2.describe_vpcs().filters(filter.clone()).send().await;
        let out = out.map_err(|e| aws_error("DescribeVpcs", e))?;
        match out.vpcs().first().and_then(|v| v.state()) {
            Some(VpcState::Available) => Ok(Check::Done(())),
            // Not visible yet (eventual consistency right after the create) or still pending.
            state => Ok(Check::waiting(state.map_or("not visible yet", |s| s.as_str()))),
        }
    })
    .await
}

/// CreateVpc (tagged), then, once it is available, DNS hostnames on. AWS creates a VPC with DNS
/// support on and DNS hostnames off (VPC User Guide, "DNS attributes for your VPC"), so only the
/// latter is sent, with nothing read first, as terraform-provider-aws does (`resourceVPCCreate`,
/// internal/service/ec2/vpc_.go, modifies only the attributes that differ from those defaults).
async fn create(pass: &Pass, spec: &VpcSpec, stack: &str) -> Result<Created<StackVpc>> {
    let id = pass
        .send(async |aws| {
            let tags = tags_for(ResourceType::Vpc, stack, &spec.name);
            let create = aws.ec2.create_vpc().cidr_block(spec.cidr.to_string()).tag_specifications(tags);
            let out = create.send().await.map_err(|e| aws_error("CreateVpc", e))?;
            let id = out.vpc().and_then(|v| v.vpc_id()).ok_or_else(|| Error::missing("CreateVpc", "Vpc.VpcId"))?;
            Ok(id.to_string())
        })
        .await?;
    let planned = StackVpc::planned(spec, stack);
    let made = StackVpc { vpc: Vpc { id, ..planned.vpc }, dns_support: true, dns_hostnames: false };
    let id = made.vpc.id.as_str();
    let ready = pass
        .send(async |aws| {
            wait_available(aws, id).await?;
            set_dns(aws, id, VpcAttributeName::EnableDnsHostnames, true).await
        })
        .await;
    remembered_if_failed(pass, &made, ready)?;
    Ok(Created::New(StackVpc { dns_hostnames: true, ..made }))
}

/// Deletes a VPC; one already gone counts as deleted.
async fn delete_vpc(aws: &Aws, id: &str) -> Result<()> {
    match aws.ec2.delete_vpc().vpc_id(id).send().await {
        Ok(_) => Ok(()),
        Err(err) => {
            let err = aws_error("DeleteVpc", err);
            if err.aws_code() == Some("InvalidVpcID.NotFound") { Ok(()) } else { Err(err) }
        }
    }
}

/// A VPC of the stack converges by its `Name` and the stack tag: created with its block, DNS
/// support and hostnames turned on where they are off; AWS cannot change its primary block.
impl Resource for StackVpc {
    type Reads = Snapshot;
    type Spec = VpcSpec;
    type Update = ();
    const KIND: &'static str = KIND.0;
    const FIXED: &'static [&'static str] = &["CIDR"];

    fn keepable(live: &StackVpc) -> Option<Keepable> {
        Some(Keepable::Ec2(live.vpc.id.clone()))
    }

    fn name(spec: &VpcSpec) -> String {
        spec.name.clone()
    }

    fn noun() -> String {
        "VPC".into()
    }

    fn locator(live: &StackVpc) -> String {
        live.vpc.id.clone()
    }

    fn validate(_pass: &Pass, spec: &VpcSpec) -> Result<()> {
        validate_cidr("new_vpc.cidr", spec.cidr)
    }

    /// The stack's VPC of that name, else another VPC of that name (which the engine refuses:
    /// deckhand never adopts a VPC it did not create); its DNS attributes read from AWS.
    fn find(pass: &Pass, spec: &VpcSpec) -> Result<Option<StackVpc>> {
        let stack = pass.stack()?;
        let found = {
            let snapshot = pass.snapshot()?;
            let vpcs = &snapshot.borrow().ec2.vpcs;
            let named = |v: &&Vpc| v.name == spec.name && !v.is_default;
            let own = vpcs.iter().filter(named).find(|v| v.stack.as_deref() == Some(stack.as_str()));
            own.or_else(|| vpcs.iter().find(named)).cloned()
        };
        let Some(vpc) = found else { return Ok(None) };
        if !is_known(&vpc.id) {
            // Planned earlier in this pass.
            return Ok(Some(StackVpc { vpc, dns_support: true, dns_hostnames: true }));
        }
        // Read once a run (a VPC created or updated in it is remembered with them).
        let known = pass.snapshot()?.borrow().ec2.vpc_dns.get(&vpc.id).copied();
        let (dns_support, dns_hostnames) = match known {
            Some(dns) => dns,
            None => match pass.read(async |aws| dns_attributes(aws, &vpc.id).await).transpose()? {
                Some(dns) => {
                    pass.remember_read(|reads| {
                        reads.ec2.vpc_dns.insert(vpc.id.clone(), dns);
                    })?;
                    dns
                }
                None => (true, true),
            },
        };
        Ok(Some(StackVpc { vpc, dns_support, dns_hostnames }))
    }

    fn stack_of(live: &StackVpc) -> Option<&str> {
        live.vpc.stack.as_deref()
    }

    fn planned(spec: &VpcSpec, stack: &str) -> StackVpc {
        StackVpc {
            vpc: Vpc {
                id: UNKNOWN.into(),
                name: spec.name.clone(),
                cidrs: vec![spec.cidr],
                is_default: false,
                stack: Some(stack.to_string()),
            },
            dns_support: true,
            dns_hostnames: true,
        }
    }

    fn create(pass: &Pass, spec: &VpcSpec, stack: &str) -> Result<Created<StackVpc>> {
        pass.block(create(pass, spec, stack))
    }

    fn create_beside(
        pass: &Pass,
        spec: VpcSpec,
        stack: String,
    ) -> Option<LocalBoxFuture<'_, Result<Created<StackVpc>>>> {
        Some(Box::pin(async move { create(pass, &spec, &stack).await }))
    }

    fn diff(live: &StackVpc, spec: &VpcSpec) -> Drift<()> {
        let mut fixed = Vec::new();
        if !live.vpc.cidrs.contains(&spec.cidr) {
            let current: Vec<String> = live.vpc.cidrs.iter().map(ToString::to_string).collect();
            fixed.push(FieldDiff::changed("cidr", current.join(", "), spec.cidr));
        }
        let mut diffs = Vec::new();
        if !live.dns_support {
            diffs.push(FieldDiff::changed("dns_support", false, true));
        }
        if !live.dns_hostnames {
            diffs.push(FieldDiff::changed("dns_hostnames", false, true));
        }
        Drift::of(diffs).with_fixed(fixed)
    }

    /// DNS support first: AWS refuses DNS hostnames on a VPC without it.
    fn update(pass: &Pass, live: &StackVpc, spec: &VpcSpec, _: &()) -> Result<StackVpc> {
        let id = live.vpc.id.as_str();
        pass.apply(async |aws| {
            if !live.dns_support {
                set_dns(aws, id, VpcAttributeName::EnableDnsSupport, true).await?;
            }
            if !live.dns_hostnames {
                set_dns(aws, id, VpcAttributeName::EnableDnsHostnames, true).await?;
            }
            Ok(())
        })?;
        Ok(Self::updated(live, spec))
    }

    fn updated(live: &StackVpc, _spec: &VpcSpec) -> StackVpc {
        StackVpc { dns_support: true, dns_hostnames: true, ..live.clone() }
    }

    /// Planned and created VPCs join the snapshot, so lookups, zones and subnets of the pass see
    /// them; a created or updated one with its DNS attributes, so finding it reads nothing.
    fn remember(snapshot: &mut Snapshot, live: &StackVpc) {
        let vpcs = &mut snapshot.ec2.vpcs;
        vpcs.retain(|v| !(v.stack == live.vpc.stack && v.name == live.vpc.name));
        vpcs.push(live.vpc.clone());
        if is_known(&live.vpc.id) {
            snapshot.ec2.vpc_dns.insert(live.vpc.id.clone(), (live.dns_support, live.dns_hostnames));
        }
    }

    fn summary(live: &StackVpc) -> String {
        let cidrs: Vec<String> = live.vpc.cidrs.iter().map(ToString::to_string).collect();
        format!("{}, {}", live.vpc.id, cidrs.join(", "))
    }
}

/// The stack's VPCs.
pub struct Vpcs;

impl StackKind for Vpcs {
    fn kind(&self) -> Kind {
        KIND
    }

    /// After everything in it: its internet gateway, subnets (and so what runs in them), route
    /// tables, security groups, endpoints and target groups (which name their VPC).
    fn deleted_after(&self) -> &'static [&'static str] {
        &["internet_gateway", "subnet", "route_table", "security_group", "vpc_endpoint", "target_group"]
    }

    fn list(&self, inventory: &Inventory) -> Vec<Entry> {
        let vpcs = inventory.snapshot.ec2.vpcs.iter().filter(|v| inventory.owns(&v.stack) && !v.is_default);
        vpcs.map(|vpc| Entry::new(KIND, Some(&vpc.name), &vpc.id)).collect()
    }

    /// Retried while AWS answers `DependencyViolation`: the network interfaces of a deleted load
    /// balancer or stopped tasks are released minutes later (terraform-provider-aws retries
    /// DeleteVpc on it too, `vpcDeletedTimeout`, internal/service/ec2/vpc_.go).
    fn delete<'a>(&'a self, deleting: Deleting<'a>) -> Pending<'a, ()> {
        let Deleting { aws, entry, report, .. } = deleting;
        retry_while(aws.clock(), entry, report, "DependencyViolation", async || delete_vpc(aws, &entry.id).await)
            .boxed_local()
    }

    fn status<'a>(&'a self, showing: Showing<'a>) -> Pending<'a, Vec<Shown>> {
        let Showing { reads, entries, .. } = showing;
        let rows = entries.into_iter().map(|entry| {
            let vpc = reads.inventory.snapshot.ec2.vpcs.iter().find(|v| v.id == entry.id);
            let detail = vpc.map(|v| v.cidrs.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "));
            Shown::of(entry, None, detail.unwrap_or_default())
        });
        done(rows.collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_checked_as_create_vpc_does() {
        assert!(validate_cidr("cidr", "10.20.0.0/16".parse().unwrap()).is_ok());
        assert!(validate_cidr("cidr", "10.20.0.0/28".parse().unwrap()).is_ok());
        let too_big = validate_cidr("cidr", "10.0.0.0/8".parse().unwrap()).unwrap_err().to_string();
        assert!(too_big.contains("/16 to /28"), "{too_big}");
        let not_network = validate_cidr("cidr", "10.20.1.0/16".parse().unwrap()).unwrap_err().to_string();
        assert!(not_network.contains("did you mean 10.20.0.0/16?"), "{not_network}");
    }
}
