//! Internet gateways: `internet_gateway(vpc, #{ name })` creates one, tagged with the stack, and
//! attaches it to the VPC (public subnets route `0.0.0.0/0` to it through a `route_table`). The
//! run's snapshot reads the stack's gateways with their attachments (`aws/ec2/mod.rs`).
//!
//! Deleting one follows what AWS requires: a gateway cannot be detached while its VPC has mapped
//! public addresses (DetachInternetGateway answers `DependencyViolation`: "Network vpc-... has
//! some mapped public address(es). Please unmap those public address(es) before detaching the
//! gateway."), so the load balancers, NAT gateways (their elastic IPs) and services (public task
//! interfaces) of the stack go first; a deleted load balancer's interfaces keep their addresses
//! for a while, so the detach is retried, as terraform-provider-aws does
//! (`detachInternetGateway`, internal/service/ec2/vpc_internet_gateway.go: DetachInternetGateway
//! retried on `DependencyViolation` within the 20-minute delete timeout, `Gateway.NotAttached`
//! counting as detached; then DeleteInternetGateway, retried on `DependencyViolation` too).

use aws_sdk_ec2::types::ResourceType;
use futures_util::FutureExt;
use futures_util::future::LocalBoxFuture;

use super::stack_kind::retry_while;
use super::{Deleting, Entry, Inventory, Kind, Pending, Showing, Shown, StackKind, done};
use crate::aws::Pass;
use crate::aws::Snapshot;
use crate::aws::ec2::{InternetGateway, Vpc, remembered_if_failed, tags_for};
use crate::converge::{Created, Drift, Resource};
use crate::error::{Error, Result, aws_error};
use crate::plan::{FieldDiff, UNKNOWN, is_known};
use crate::runtime::Aws;
use crate::tagged::Keepable;

/// The kind.
pub const KIND: Kind = Kind("internet_gateway");

/// What a script asks of an internet gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternetGatewaySpec {
    /// Its `Name` tag, unique in the stack.
    pub name: String,
    /// The VPC it is attached to.
    pub vpc: Vpc,
}

/// Attaches the gateway to the VPC (AttachInternetGateway).
async fn attach(aws: &Aws, id: &str, vpc_id: &str) -> Result<()> {
    let attach = aws.ec2.attach_internet_gateway().internet_gateway_id(id).vpc_id(vpc_id);
    attach.send().await.map(drop).map_err(|e| aws_error("AttachInternetGateway", e))
}

/// Creates the gateway (tagged), then attaches it to the VPC (AttachInternetGateway needs its id).
async fn create(pass: &Pass, spec: &InternetGatewaySpec, stack: &str) -> Result<Created<InternetGateway>> {
    let id = pass
        .send(async |aws| {
            let tags = tags_for(ResourceType::InternetGateway, stack, &spec.name);
            let create = aws.ec2.create_internet_gateway().tag_specifications(tags);
            let out = create.send().await.map_err(|e| aws_error("CreateInternetGateway", e))?;
            let id = out.internet_gateway().and_then(|g| g.internet_gateway_id());
            let id = id.ok_or_else(|| Error::missing("CreateInternetGateway", "InternetGateway.InternetGatewayId"))?;
            Ok(id.to_string())
        })
        .await?;
    let made = InternetGateway { id, vpc_id: None, ..InternetGateway::planned(spec, stack) };
    let attached = pass.send(async |aws| attach(aws, &made.id, &spec.vpc.id).await).await;
    remembered_if_failed(pass, &made, attached)?;
    Ok(Created::New(InternetGateway { vpc_id: Some(spec.vpc.id.clone()), ..made }))
}

/// Detaches the gateway from the VPC; one not attached (any more) counts as detached.
async fn detach(aws: &Aws, id: &str, vpc_id: &str) -> Result<()> {
    match aws.ec2.detach_internet_gateway().internet_gateway_id(id).vpc_id(vpc_id).send().await {
        Ok(_) => Ok(()),
        Err(err) => {
            let err = aws_error("DetachInternetGateway", err);
            let gone = matches!(err.aws_code(), Some("Gateway.NotAttached" | "InvalidInternetGatewayID.NotFound"));
            if gone { Ok(()) } else { Err(err) }
        }
    }
}

/// Deletes the (detached) gateway; one already gone counts as deleted.
async fn delete_gateway(aws: &Aws, id: &str) -> Result<()> {
    match aws.ec2.delete_internet_gateway().internet_gateway_id(id).send().await {
        Ok(_) => Ok(()),
        Err(err) => {
            let err = aws_error("DeleteInternetGateway", err);
            if err.aws_code() == Some("InvalidInternetGatewayID.NotFound") { Ok(()) } else { Err(err) }
        }
    }
}

/// An internet gateway converges by its `Name` and the stack tag: created, then attached to the
/// VPC; one found detached is attached again. AWS attaches a gateway to one VPC at most, and
/// deckhand does not move one that is attached to another (detaching it cuts that VPC off).
impl Resource for InternetGateway {
    type Reads = Snapshot;
    type Spec = InternetGatewaySpec;
    type Update = ();
    const KIND: &'static str = KIND.0;
    const FIXED: &'static [&'static str] = &["VPC"];

    fn keepable(live: &InternetGateway) -> Option<Keepable> {
        Some(Keepable::Ec2(live.id.clone()))
    }

    fn name(spec: &InternetGatewaySpec) -> String {
        spec.name.clone()
    }

    fn locator(live: &InternetGateway) -> String {
        live.id.clone()
    }

    fn validate(_pass: &Pass, spec: &InternetGatewaySpec) -> Result<()> {
        if spec.vpc.is_default {
            return Err(Error::invalid(
                "internet_gateway.vpc",
                format!("the default VPC ({})", spec.vpc.id),
                "a VPC of new_vpc: the default VPC has its internet gateway already (AWS attaches one at most)",
            ));
        }
        Ok(())
    }

    fn find(pass: &Pass, spec: &InternetGatewaySpec) -> Result<Option<InternetGateway>> {
        let stack = pass.stack()?;
        let snapshot = pass.snapshot()?;
        let gateways = &snapshot.borrow().ec2.internet_gateways;
        let own = |g: &&InternetGateway| g.stack.as_deref() == Some(stack.as_str());
        Ok(gateways.iter().filter(own).find(|g| g.name.as_deref() == Some(spec.name.as_str())).cloned())
    }

    fn stack_of(live: &InternetGateway) -> Option<&str> {
        live.stack.as_deref()
    }

    fn planned(spec: &InternetGatewaySpec, stack: &str) -> InternetGateway {
        InternetGateway {
            id: UNKNOWN.into(),
            name: Some(spec.name.clone()),
            vpc_id: Some(spec.vpc.id.clone()),
            stack: Some(stack.to_string()),
        }
    }

    fn create(pass: &Pass, spec: &InternetGatewaySpec, stack: &str) -> Result<Created<InternetGateway>> {
        pass.block(create(pass, spec, stack))
    }

    fn create_beside(
        pass: &Pass,
        spec: InternetGatewaySpec,
        stack: String,
    ) -> Option<LocalBoxFuture<'_, Result<Created<InternetGateway>>>> {
        Some(Box::pin(async move { create(pass, &spec, &stack).await }))
    }

    fn diff(live: &InternetGateway, spec: &InternetGatewaySpec) -> Drift<()> {
        match &live.vpc_id {
            None => Drift::of(vec![FieldDiff::changed("vpc", "(detached)", &spec.vpc.id)]),
            Some(vpc) if is_known(&spec.vpc.id) && *vpc != spec.vpc.id => {
                Drift::none().with_fixed(vec![FieldDiff::changed("vpc", vpc, &spec.vpc.id)])
            }
            Some(_) => Drift::none(),
        }
    }

    fn update(pass: &Pass, live: &InternetGateway, spec: &InternetGatewaySpec, _: &()) -> Result<InternetGateway> {
        pass.apply(async |aws| attach(aws, &live.id, &spec.vpc.id).await)?;
        Ok(Self::updated(live, spec))
    }

    fn updated(live: &InternetGateway, spec: &InternetGatewaySpec) -> InternetGateway {
        InternetGateway { vpc_id: Some(spec.vpc.id.clone()), ..live.clone() }
    }

    /// Gateways of the pass join the snapshot (a later VPC check or a re-declaration sees them).
    fn remember(snapshot: &mut Snapshot, live: &InternetGateway) {
        let gateways = &mut snapshot.ec2.internet_gateways;
        gateways.retain(|g| !(g.stack == live.stack && g.name == live.name));
        gateways.push(live.clone());
    }

    fn summary(live: &InternetGateway) -> String {
        format!("{}, attached to {}", live.id, live.vpc_id.as_deref().unwrap_or("nothing"))
    }
}

/// The stack's internet gateways.
pub struct InternetGateways;

impl StackKind for InternetGateways {
    fn kind(&self) -> Kind {
        KIND
    }

    /// After what maps public addresses in its VPC: load balancers, NAT gateways (whose deletion
    /// releases their elastic IPs), services (tasks with public IPs).
    fn deleted_after(&self) -> &'static [&'static str] {
        &["load_balancer", "nat_gateway", "service"]
    }

    fn list(&self, inventory: &Inventory) -> Vec<Entry> {
        let gateways = inventory.snapshot.ec2.internet_gateways.iter().filter(|g| inventory.owns(&g.stack));
        gateways.map(|g| Entry::new(KIND, g.name.as_deref(), &g.id)).collect()
    }

    /// Detached (retried while the VPC still has mapped public addresses), then deleted.
    fn delete<'a>(&'a self, deleting: Deleting<'a>) -> Pending<'a, ()> {
        let Deleting { aws, inventory, entry, report } = deleting;
        let gateways = &inventory.snapshot.ec2.internet_gateways;
        let vpc_id = gateways.iter().find(|g| g.id == entry.id).and_then(|g| g.vpc_id.clone());
        async move {
            if let Some(vpc_id) = &vpc_id {
                let detached = async || detach(aws, &entry.id, vpc_id).await;
                retry_while(aws.clock(), entry, report, "DependencyViolation", detached).await?;
            }
            retry_while(aws.clock(), entry, report, "DependencyViolation", async || {
                delete_gateway(aws, &entry.id).await
            })
            .await
        }
        .boxed_local()
    }

    fn status<'a>(&'a self, showing: Showing<'a>) -> Pending<'a, Vec<Shown>> {
        let Showing { reads, entries, .. } = showing;
        let rows = entries.into_iter().map(|entry| {
            let gateway = reads.inventory.snapshot.ec2.internet_gateways.iter().find(|g| g.id == entry.id);
            let detail = gateway.map(|g| match &g.vpc_id {
                Some(vpc) => format!("attached to {vpc}"),
                None => "detached".to_string(),
            });
            Shown::of(entry, None, detail.unwrap_or_default())
        });
        done(rows.collect())
    }
}
