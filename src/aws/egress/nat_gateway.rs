//! NAT gateways and their elastic IPs: reads, and how a NAT gateway converges.

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{DomainType, Filter, NatGatewayState, ResourceType};
use futures_util::future::LocalBoxFuture;

use crate::aws::Pass;
use crate::aws::ec2::{Subnet, stack_filter, tag_value, tags_for};
use crate::aws::{NAME_TAG, Snapshot};
use crate::converge::{Created, Drift, Resource};
use crate::error::{Error, Result, aws_error, sent};
use crate::plan::{FieldDiff, UNKNOWN, is_known};
use crate::poll::{Check, Wait};
use crate::runtime::Aws;
use crate::tagged::Keepable;
use crate::tagged::STACK_TAG;
use crate::timing::{NAT_GATEWAY_PACE, NAT_GATEWAY_TIMEOUT};

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
    /// The elastic IP it uses (`eipalloc-...`), once known.
    pub allocation_id: String,
    /// Its `deckhand:stack` tag.
    pub stack: Option<String>,
    /// Whether it is `available` (else `pending`: routes to it wait, see [`ready`]).
    pub available: bool,
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
    /// Whether it is associated with a network interface (a NAT gateway's, an instance's).
    pub associated: bool,
}

/// Only NAT gateways that are or will be usable: deleted and failed ones linger in the API.
pub(super) fn live_nat_filter() -> Filter {
    Filter::builder().name("state").values("pending").values("available").build()
}

/// NAT gateways matching `filters` (DescribeNatGateways, paginated).
pub(crate) async fn nat_gateways(aws: &Aws, filters: Vec<Filter>) -> Result<Vec<NatGateway>> {
    let mut pages = aws.ec2.describe_nat_gateways().set_filter(Some(filters)).into_paginator().items().send();
    let mut found = Vec::new();
    while let Some(nat) = pages.next().await {
        let nat = nat.map_err(|e| aws_error("DescribeNatGateways", e))?;
        let address = nat.nat_gateway_addresses().first();
        found.push(NatGateway {
            id: nat.nat_gateway_id().ok_or_else(|| Error::missing("DescribeNatGateways", "NatGatewayId"))?.to_string(),
            name: tag_value(nat.tags(), NAME_TAG).unwrap_or_default(),
            subnet_id: nat.subnet_id().ok_or_else(|| Error::missing("DescribeNatGateways", "SubnetId"))?.to_string(),
            public_ip: address.and_then(|a| a.public_ip()).unwrap_or_default().to_string(),
            allocation_id: address.and_then(|a| a.allocation_id()).unwrap_or_default().to_string(),
            stack: tag_value(nat.tags(), STACK_TAG),
            available: nat.state() == Some(&NatGatewayState::Available),
        });
    }
    Ok(found)
}

/// The stack's elastic IPs (DescribeAddresses with the stack tag).
pub(super) async fn addresses(aws: &Aws, stack: &str) -> Result<Vec<ElasticIp>> {
    let out = aws
        .ec2
        .describe_addresses()
        .filters(stack_filter(stack))
        .send()
        .await
        .map_err(|e| aws_error("DescribeAddresses", e))?;
    out.addresses()
        .iter()
        .map(|a| {
            Ok(ElasticIp {
                allocation_id: a
                    .allocation_id()
                    .ok_or_else(|| Error::missing("DescribeAddresses", "AllocationId"))?
                    .to_string(),
                name: tag_value(a.tags(), NAME_TAG).unwrap_or_default(),
                public_ip: a.public_ip().unwrap_or_default().to_string(),
                associated: a.association_id().is_some(),
            })
        })
        .collect()
}

/// What a script asks of a NAT gateway.
#[derive(Debug, Clone)]
pub struct NatGatewaySpec {
    /// `Name` tag, also given to its elastic IP.
    pub name: String,
    /// The public subnet it lives in.
    pub subnet: Subnet,
}

/// A NAT gateway converges by its `Name` among the stack's live NAT gateways; it has nothing to
/// change in place, and AWS cannot move it to another subnet. Creating one allocates (or reuses)
/// its elastic IP; the wait until it is available is deferred to what needs it ([`ready`]).
impl Resource for NatGateway {
    type Reads = Snapshot;
    type Spec = NatGatewaySpec;
    type Update = ();
    const KIND: &'static str = "nat_gateway";
    const FIXED: &'static [&'static str] = &["subnet"];

    fn keepable(live: &NatGateway) -> Option<Keepable> {
        Some(Keepable::Ec2(live.id.clone()))
    }

    fn name(spec: &NatGatewaySpec) -> String {
        spec.name.clone()
    }

    fn noun() -> String {
        "NAT gateway".to_string()
    }

    fn locator(live: &NatGateway) -> String {
        live.id.clone()
    }

    fn find(pass: &Pass, spec: &NatGatewaySpec) -> Result<Option<NatGateway>> {
        let snapshot = pass.snapshot()?;
        let found = snapshot.borrow().egress.nat_gateways.iter().find(|n| n.name == spec.name).cloned();
        // One an earlier run left pending (it stopped before the NAT gateway was available).
        if let Some(nat) = found.as_ref().filter(|n| !n.available) {
            defer_available(pass, &nat.id);
        }
        Ok(found)
    }

    fn stack_of(live: &NatGateway) -> Option<&str> {
        live.stack.as_deref()
    }

    fn planned(spec: &NatGatewaySpec, stack: &str) -> NatGateway {
        NatGateway {
            id: UNKNOWN.into(),
            name: spec.name.clone(),
            subnet_id: spec.subnet.id.clone(),
            public_ip: UNKNOWN.into(),
            allocation_id: UNKNOWN.into(),
            stack: Some(stack.to_string()),
            available: false,
        }
    }

    fn create(pass: &Pass, spec: &NatGatewaySpec, stack: &str) -> Result<Created<NatGateway>> {
        pass.block(create(pass, spec, stack))
    }

    fn create_beside(
        pass: &Pass,
        spec: NatGatewaySpec,
        stack: String,
    ) -> Option<LocalBoxFuture<'_, Result<Created<NatGateway>>>> {
        Some(Box::pin(async move { create(pass, &spec, &stack).await }))
    }

    fn diff(live: &NatGateway, spec: &NatGatewaySpec) -> Drift<()> {
        let mut fixed = Vec::new();
        if is_known(&spec.subnet.id) && live.subnet_id != spec.subnet.id {
            fixed.push(FieldDiff::changed("subnet", &live.subnet_id, &spec.subnet.id));
        }
        Drift::none().with_fixed(fixed)
    }

    fn update(_pass: &Pass, live: &NatGateway, _spec: &NatGatewaySpec, _update: &()) -> Result<NatGateway> {
        Err(Error::Internal(format!("NAT gateway {} has nothing to update in place", live.id)))
    }

    fn updated(live: &NatGateway, _spec: &NatGatewaySpec) -> NatGateway {
        live.clone()
    }

    fn remember(snapshot: &mut Snapshot, live: &NatGateway) {
        let nats = &mut snapshot.egress.nat_gateways;
        nats.retain(|n| n.name != live.name);
        nats.push(live.clone());
    }

    fn summary(live: &NatGateway) -> String {
        format!("{}, in {}", live.id, live.subnet_id)
    }
}

/// Creates the NAT gateway with an elastic IP of the stack that nothing uses, or a new one; the
/// wait until it is available is deferred ([`ready`]). Several of these may run at once (see
/// [`Resource::create_beside`]): each takes its address in the snapshot before it sends anything,
/// so no two take the same one.
async fn create(pass: &Pass, spec: &NatGatewaySpec, stack: &str) -> Result<Created<NatGateway>> {
    let eip = match take_reusable_address(pass, &spec.name)? {
        Some(eip) => eip,
        None => {
            let eip = allocate_address(pass, stack, &spec.name).await?;
            hold_address(pass, &eip, true)?;
            eip
        }
    };
    let created = pass
        .send(async |aws| {
            // The SDK fills in CreateNatGateway's ClientToken, so its own retries cannot create two.
            let out = aws
                .ec2
                .create_nat_gateway()
                .subnet_id(&spec.subnet.id)
                .allocation_id(&eip.allocation_id)
                .tag_specifications(tags_for(ResourceType::Natgateway, stack, &spec.name))
                .send()
                .await
                .map_err(|e| aws_error("CreateNatGateway", e))?;
            out.nat_gateway()
                .and_then(|n| n.nat_gateway_id())
                .map(str::to_string)
                .ok_or_else(|| Error::missing("CreateNatGateway", "NatGateway.NatGatewayId"))
        })
        .await;
    let id = match created {
        Ok(id) => id,
        Err(err) => {
            // The address is free again: the next NAT gateway of the pass (or this one, declared
            // again in the REPL) uses it rather than allocating another.
            hold_address(pass, &eip, false)?;
            return Err(err);
        }
    };
    defer_available(pass, &id);
    Ok(Created::New(NatGateway {
        id,
        public_ip: eip.public_ip,
        allocation_id: eip.allocation_id,
        ..NatGateway::planned(spec, stack)
    }))
}

/// Takes the stack's elastic IP that no NAT gateway uses, preferring one named for this NAT
/// gateway: an address left by an earlier run whose CreateNatGateway failed, or whose
/// AllocateAddress reply was lost (deckhand tags addresses as AWS allocates them, so such an
/// address is still the stack's). It is marked in use in the snapshot at once, in the same borrow
/// that picked it, so the NAT gateways created after or beside this one take another.
fn take_reusable_address(pass: &Pass, name: &str) -> Result<Option<ElasticIp>> {
    let snapshot = pass.snapshot()?;
    let state = &mut snapshot.borrow_mut().egress;
    let in_use = |a: &ElasticIp| a.associated || state.nat_gateways.iter().any(|n| n.allocation_id == a.allocation_id);
    let Some(eip) = state.addresses.iter().filter(|a| !in_use(a)).min_by_key(|a| a.name != name).cloned() else {
        return Ok(None);
    };
    for address in state.addresses.iter_mut().filter(|a| a.allocation_id == eip.allocation_id) {
        address.associated = true;
    }
    Ok(Some(eip))
}

/// Notes in the snapshot that `eip` is in use by a NAT gateway of this pass (`true`), or free
/// again (`false`: its NAT gateway could not be created).
fn hold_address(pass: &Pass, eip: &ElasticIp, held: bool) -> Result<()> {
    let snapshot = pass.snapshot()?;
    let addresses = &mut snapshot.borrow_mut().egress.addresses;
    addresses.retain(|a| a.allocation_id != eip.allocation_id);
    addresses.push(ElasticIp { associated: held, ..eip.clone() });
    Ok(())
}

async fn allocate_address(pass: &Pass, stack: &str, name: &str) -> Result<ElasticIp> {
    pass.send(async |aws| {
        let out = aws
            .ec2
            .allocate_address()
            .domain(DomainType::Vpc)
            .tag_specifications(tags_for(ResourceType::ElasticIp, stack, name))
            .send()
            .await
            .map_err(|e| aws_error("AllocateAddress", e))?;
        Ok(ElasticIp {
            allocation_id: out
                .allocation_id()
                .ok_or_else(|| Error::missing("AllocateAddress", "AllocationId"))?
                .to_string(),
            name: name.to_string(),
            public_ip: out.public_ip().unwrap_or_default().to_string(),
            associated: false,
        })
    })
    .await
}

/// One NAT gateway's state as DescribeNatGateways reports it; `None` when AWS does not know the id
/// (`NatGatewayNotFound`: not visible yet right after the create, or long gone after a delete).
async fn nat_state(aws: &Aws, id: &str) -> Result<Option<(NatGatewayState, String)>> {
    match aws.ec2.describe_nat_gateways().nat_gateway_ids(id).send().await {
        Ok(out) => Ok(out.nat_gateways().first().and_then(|n| {
            let failure = n.failure_message().unwrap_or_default().to_string();
            n.state().map(|s| (s.clone(), failure))
        })),
        Err(err) if err.code() == Some("NatGatewayNotFound") => Ok(None),
        Err(err) => Err(aws_error("DescribeNatGateways", err)),
    }
}

/// The key of a NAT gateway's deferred wait (see [`Pass::defer`]).
fn pending_key(id: &str) -> String {
    format!("NAT gateway {id}")
}

/// Defers the wait until NAT gateway `id` is available to what needs it ([`ready`]).
fn defer_available(pass: &Pass, id: &str) {
    let id = id.to_string();
    pass.defer(pending_key(&id), move |pass, by| {
        let say = |line: &str| pass.log.say(&format!("  {line}"));
        pass.apply(async |aws| wait_available(aws, &id, by, &say).await)?;
        let snapshot = pass.snapshot()?;
        for nat in snapshot.borrow_mut().egress.nat_gateways.iter_mut().filter(|n| n.id == id) {
            nat.available = true;
        }
        Ok(())
    });
}

/// Waits until NAT gateway `id` is available if this run knows it pending, because `by` needs it
/// (e.g. `route table myapp-private`). Routes to a NAT gateway wait for it: that CreateRoute
/// accepts a `pending` one is not documented, and terraform-provider-aws
/// (`waitNATGatewayCreated` in `aws_nat_gateway`'s Create, before any route can name it) and kops
/// (its NAT gateway task waits for `available` before the route task runs) both wait; services
/// wait for the egress of their subnets, whose first tasks would otherwise fail to pull.
pub fn ready(pass: &Pass, id: &str, by: &str) -> Result<()> {
    pass.need(&pending_key(id), by)
}

/// Whether this run knows NAT gateway `id` pending (its wait deferred, not yet needed).
pub fn pending(pass: &Pass, id: &str) -> bool {
    pass.pending(&pending_key(id))
}

/// Whether the run's reads know NAT gateway `id` pending while this pass has not deferred its wait:
/// its statement has not run yet (a NAT gateway an earlier run left pending, met by a create sent
/// ahead of the script), so nothing can be deferred behind that wait yet.
pub fn pending_unawaited(pass: &Pass, id: &str) -> Result<bool> {
    if pending(pass, id) {
        return Ok(false);
    }
    let snapshot = pass.snapshot()?;
    let pending = snapshot.borrow().egress.nat_gateways.iter().any(|n| n.id == id && !n.available);
    Ok(pending)
}

/// Waits until a new NAT gateway is available: AWS creates it `pending` (for about 90 s), and
/// routes to it work only once it is `available`. The acceptors of the SDK's NatGatewayAvailable
/// waiter (aws-sdk-ec2 `waiters/nat_gateway_available.rs`), polled by deckhand so the time scale
/// applies: available is done; `failed`, `deleting` or `deleted` fail; `NatGatewayNotFound` (a
/// create not visible yet) is waited out.
async fn wait_available(aws: &Aws, id: &str, by: &str, report: &dyn Fn(&str)) -> Result<()> {
    let what = format!("NAT gateway {id} to become available for {by} (usually 1-2 minutes)");
    Wait::new(aws.clock(), "NAT gateway", what, NAT_GATEWAY_PACE, NAT_GATEWAY_TIMEOUT)
        .report_to(report)
        .hint("see its state with `aws ec2 describe-nat-gateways`; run deckhand again to continue")
        .until(async |_| match nat_state(aws, id).await? {
            Some((NatGatewayState::Available, _)) => Ok(Check::Done(())),
            Some((state @ (NatGatewayState::Failed | NatGatewayState::Deleting | NatGatewayState::Deleted), why)) => {
                Err(Error::conflict(
                    format!("NAT gateway {id} did not become available: it is {}: {why}", state.as_str()),
                    Some("see `aws ec2 describe-nat-gateways`; run deckhand again to create another"),
                ))
            }
            Some((state, _)) => Ok(Check::waiting(state.as_str())),
            None => Ok(Check::waiting("not visible yet")),
        })
        .await
}

/// Deletes a NAT gateway and waits until it is gone (its elastic IP is then free to release):
/// the SDK's NatGatewayDeleted waiter's acceptors, polled by deckhand (`deleted`, or
/// `NatGatewayNotFound`, is done; `deleting` takes about a minute).
pub async fn delete_nat_gateway(aws: &Aws, id: &str, report: &dyn Fn(&str)) -> Result<()> {
    aws.ec2.delete_nat_gateway().nat_gateway_id(id).send().await.map_err(|e| aws_error("DeleteNatGateway", e))?;
    let what = format!("NAT gateway {id} to be deleted");
    Wait::new(aws.clock(), "NAT gateway deletion", what, NAT_GATEWAY_PACE, NAT_GATEWAY_TIMEOUT)
        .report_to(report)
        .hint("see its state with `aws ec2 describe-nat-gateways`; run deckhand again to continue")
        .until(async |_| match nat_state(aws, id).await? {
            Some((NatGatewayState::Deleted, _)) | None => Ok(Check::Done(())),
            Some((state, _)) => Ok(Check::waiting(state.as_str())),
        })
        .await
}

/// Releases an elastic IP.
pub async fn release_address(aws: &Aws, allocation_id: &str) -> Result<()> {
    sent("ReleaseAddress", aws.ec2.release_address().allocation_id(allocation_id).send()).await
}
