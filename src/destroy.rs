//! `deckhand destroy`: finds everything tagged with a stack (no local state) and deletes it in
//! reverse dependency order, retrying while AWS still releases dependencies.

use std::time::{Duration, Instant};

use crate::aws::Snapshot;
use crate::aws::ec2::{self, SecurityGroup};
use crate::aws::egress::{self, RouteTable};
use crate::error::{Error, Result};
use crate::runtime::Aws;

/// Resource kinds in the order they are deleted (dependents first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// NAT gateways (before their elastic IPs and subnets).
    NatGateway,
    /// Elastic IPs of NAT gateways.
    ElasticIp,
    /// VPC endpoints (before route tables and subnets).
    VpcEndpoint,
    /// Route tables (after disassociating subnets).
    RouteTable,
    /// Security groups (after revoking cross references).
    SecurityGroup,
    /// Subnets, last of the network.
    Subnet,
}

impl Kind {
    /// The resource type as scripts name it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::NatGateway => "nat_gateway",
            Kind::ElasticIp => "elastic_ip",
            Kind::VpcEndpoint => "vpc_endpoint",
            Kind::RouteTable => "route_table",
            Kind::SecurityGroup => "security_group",
            Kind::Subnet => "subnet",
        }
    }
}

/// One resource of the stack, to be deleted.
#[derive(Debug, Clone)]
pub struct Doomed {
    /// What it is.
    pub kind: Kind,
    /// Its name (Name tag).
    pub name: String,
    /// Its id.
    pub id: String,
}

impl std::fmt::Display for Doomed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} ({})", self.kind.name(), self.name, self.id)
    }
}

/// Everything of a stack, found by its tag, as one read.
pub struct StackContents {
    doomed: Vec<Doomed>,
    groups: Vec<SecurityGroup>,
    route_tables: Vec<RouteTable>,
}

impl StackContents {
    /// Reads the stack's resources from every service (describe calls with the tag filter).
    pub fn find(aws: &Aws, stack: &str) -> Result<StackContents> {
        let snapshot = aws.block_on(Snapshot::load(aws, stack))?;
        let ours = |tag: &Option<String>| tag.as_deref() == Some(stack);
        let mut doomed = Vec::new();
        let named = |kind, name: Option<&str>, id: &str| Doomed {
            kind,
            name: name.unwrap_or("-").to_string(),
            id: id.to_string(),
        };
        for nat in &snapshot.egress.nat_gateways {
            doomed.push(named(Kind::NatGateway, Some(&nat.name), &nat.id));
        }
        for eip in &snapshot.egress.addresses {
            doomed.push(named(Kind::ElasticIp, Some(&eip.name), &eip.allocation_id));
        }
        for endpoint in snapshot.egress.endpoints.iter().filter(|e| ours(&e.stack)) {
            doomed.push(named(Kind::VpcEndpoint, endpoint.name.as_deref(), &endpoint.id));
        }
        let route_tables: Vec<RouteTable> =
            snapshot.egress.route_tables.into_iter().filter(|t| ours(&t.stack)).collect();
        for table in &route_tables {
            doomed.push(named(Kind::RouteTable, table.name.as_deref(), &table.id));
        }
        let groups: Vec<SecurityGroup> = snapshot.ec2.security_groups.into_iter().filter(|g| ours(&g.stack)).collect();
        for group in &groups {
            doomed.push(named(Kind::SecurityGroup, Some(&group.name), &group.id));
        }
        for subnet in snapshot.ec2.subnets.iter().filter(|s| ours(&s.stack)) {
            doomed.push(named(Kind::Subnet, subnet.name.as_deref(), &subnet.id));
        }
        doomed.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
        Ok(StackContents { doomed, groups, route_tables })
    }

    /// The resources, in deletion order.
    pub fn resources(&self) -> &[Doomed] {
        &self.doomed
    }

    /// Deletes everything in order, reporting each deletion; stops at the first failure with a
    /// report of what was and was not deleted.
    pub fn delete(&self, aws: &Aws, report: impl Fn(&str)) -> Result<usize> {
        let mut deleted = 0;
        let mut revoked = false;
        for doomed in &self.doomed {
            if doomed.kind == Kind::SecurityGroup && !revoked {
                aws.block_on(ec2::revoke_group_references(aws, &self.groups))?;
                revoked = true;
            }
            let result = aws.block_on(self.delete_one(aws, doomed, &report));
            if let Err(err) = result {
                let left: Vec<String> = self.doomed[deleted..].iter().map(ToString::to_string).collect();
                return Err(Error::conflict(
                    format!(
                        "deleting {doomed} failed: {err}\n{deleted} deleted; not deleted:\n  {}",
                        left.join("\n  ")
                    ),
                    Some("fix the cause, then run the same destroy again: it continues where it stopped"),
                ));
            }
            report(&format!("- {doomed} deleted"));
            deleted += 1;
        }
        Ok(deleted)
    }

    async fn delete_one(&self, aws: &Aws, doomed: &Doomed, report: &impl Fn(&str)) -> Result<()> {
        let id = doomed.id.as_str();
        match doomed.kind {
            Kind::NatGateway => egress::delete_nat_gateway(aws, id).await,
            Kind::ElasticIp => egress::release_address(aws, id).await,
            Kind::VpcEndpoint => egress::delete_endpoint(aws, id).await,
            Kind::RouteTable => {
                let table = self.route_tables.iter().find(|t| t.id == id).expect("listed above");
                egress::delete_route_table(aws, table).await
            }
            Kind::SecurityGroup => {
                retry_while_in_use(doomed, report, async || ec2::delete_security_group(aws, id).await).await
            }
            Kind::Subnet => retry_while_in_use(doomed, report, async || ec2::delete_subnet(aws, id).await).await,
        }
    }
}

/// Retries `delete` while AWS answers `DependencyViolation` (e.g. network interfaces of stopped
/// tasks or a deleted load balancer are still being released), with backoff, for up to 15 minutes.
async fn retry_while_in_use(
    doomed: &Doomed,
    report: &impl Fn(&str),
    delete: impl AsyncFn() -> Result<()>,
) -> Result<()> {
    let started = Instant::now();
    let mut delay = Duration::from_secs(2);
    loop {
        match delete().await {
            Err(err)
                if err.aws_code() == Some("DependencyViolation") && started.elapsed() < Duration::from_secs(900) =>
            {
                report(&format!("  {doomed} is still in use; retrying in {} s", delay.as_secs()));
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
            result => return result,
        }
    }
}
