//! VPC endpoints (gateway and interface): reads, and how an endpoint converges.

use aws_sdk_ec2::types::{Filter, ResourceType, UnsuccessfulItem, VpcEndpointType};
use futures_util::future::LocalBoxFuture;

use crate::aws::Pass;
use crate::aws::ec2::{tag_value, tags_for};
use crate::aws::{NAME_TAG, Snapshot};
use crate::converge::{Created, Drift, Resource};
use crate::error::{Error, Result, aws_error, sent};
use crate::plan::{FieldDiff, UNKNOWN, is_known};
use crate::runtime::Aws;
use crate::tagged::STACK_TAG;

/// A VPC endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `vpce-...` or [`UNKNOWN`].
    pub id: String,
    /// Its `Name` tag.
    pub name: Option<String>,
    /// What it is (lists sorted).
    pub is: EndpointSettings,
    /// Its `deckhand:stack` tag.
    pub stack: Option<String>,
}

impl Endpoint {
    /// Whether it serves `service` (a full name) in `vpc_id` (one this run creates serves any).
    pub fn serves(&self, service: &str, vpc_id: &str) -> bool {
        self.is.service == service && (self.is.vpc_id == vpc_id || !is_known(&self.is.vpc_id))
    }
}

/// What a VPC endpoint is: what a script asks for and what AWS reports alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSettings {
    /// The VPC.
    pub vpc_id: String,
    /// Full service name, e.g. `com.amazonaws.us-west-2.ecr.dkr`.
    pub service: String,
    /// Gateway endpoint (S3, DynamoDB) or interface endpoint.
    pub gateway: bool,
    /// Route tables (gateway endpoints): ids, or planned keys in a spec.
    pub route_tables: Vec<String>,
    /// Subnets (interface endpoints).
    pub subnets: Vec<String>,
    /// Security groups (interface endpoints).
    pub security_groups: Vec<String>,
}

impl EndpointSettings {
    /// The same, lists sorted and without repeats, as AWS reports them.
    fn sorted(&self) -> EndpointSettings {
        EndpointSettings {
            route_tables: sorted(&self.route_tables),
            subnets: sorted(&self.subnets),
            security_groups: sorted(&self.security_groups),
            ..self.clone()
        }
    }
}

/// Live VPC endpoints matching `filters` (DescribeVpcEndpoints, paginated; deleted, failed and
/// rejected ones linger in the API and are left out).
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
            id: e.vpc_endpoint_id().ok_or_else(|| Error::missing("DescribeVpcEndpoints", "VpcEndpointId"))?.to_string(),
            name: tag_value(e.tags(), NAME_TAG),
            is: EndpointSettings {
                vpc_id: e.vpc_id().ok_or_else(|| Error::missing("DescribeVpcEndpoints", "VpcId"))?.to_string(),
                service: e.service_name().unwrap_or_default().to_string(),
                gateway: e.vpc_endpoint_type().map(|t| t.as_str().eq_ignore_ascii_case("gateway")).unwrap_or(false),
                route_tables: e.route_table_ids().to_vec(),
                subnets: e.subnet_ids().to_vec(),
                security_groups: e.groups().iter().filter_map(|g| g.group_id()).map(str::to_string).collect(),
            }
            .sorted(),
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

/// What a script asks of a VPC endpoint.
#[derive(Debug, Clone)]
pub struct EndpointSpec {
    /// `Name` tag, unique in the stack.
    pub name: String,
    /// What it should be.
    pub wants: EndpointSettings,
}

/// The full service name for `short` (`s3`, `ecr.dkr`, ...) in `region`.
pub fn service_name(region: &str, short: &str) -> String {
    if short.starts_with("com.amazonaws.") { short.to_string() } else { format!("com.amazonaws.{region}.{short}") }
}

/// What a ModifyVpcEndpoint must add and remove, worked out with the diff.
#[derive(Debug, Default)]
pub struct EndpointUpdate {
    add_route_tables: Vec<String>,
    remove_route_tables: Vec<String>,
    add_subnets: Vec<String>,
    remove_subnets: Vec<String>,
    add_security_groups: Vec<String>,
    remove_security_groups: Vec<String>,
}

/// Which of `want` are missing from `now`, and which of `now` are not wanted, as plan diffs too.
fn delta(field: &str, now: &[String], want: &[String], diffs: &mut Vec<FieldDiff>) -> (Vec<String>, Vec<String>) {
    let add: Vec<String> = want.iter().filter(|x| !now.contains(x)).cloned().collect();
    let remove: Vec<String> = now.iter().filter(|x| !want.contains(x)).cloned().collect();
    diffs.extend(add.iter().map(|x| FieldDiff::added(field, x)));
    diffs.extend(remove.iter().map(|x| FieldDiff::removed(field, x)));
    (add, remove)
}

fn kind_of(gateway: bool) -> &'static str {
    if gateway { "gateway" } else { "interface" }
}

/// Some(list) when it has items: ModifyVpcEndpoint takes no empty lists.
fn some(items: &[String]) -> Option<Vec<String>> {
    (!items.is_empty()).then(|| items.to_vec())
}

/// A VPC endpoint converges by its `Name` and the stack tag; AWS cannot change its VPC, service
/// or type in place; its route tables, subnets and security groups change in place.
impl Resource for Endpoint {
    type Reads = Snapshot;
    type Spec = EndpointSpec;
    type Update = EndpointUpdate;
    const KIND: &'static str = "vpc_endpoint";
    const FIXED: &'static [&'static str] = &["VPC", "service", "type"];

    fn name(spec: &EndpointSpec) -> String {
        spec.name.clone()
    }

    fn noun() -> String {
        "VPC endpoint".to_string()
    }

    fn locator(live: &Endpoint) -> String {
        live.id.clone()
    }

    fn find(pass: &Pass, spec: &EndpointSpec) -> Result<Option<Endpoint>> {
        let stack = pass.stack()?;
        let snapshot = pass.snapshot()?;
        let state = &snapshot.borrow().egress;
        Ok(state
            .endpoints
            .iter()
            .find(|e| e.stack.as_deref() == Some(stack.as_str()) && e.name.as_deref() == Some(spec.name.as_str()))
            .cloned())
    }

    fn stack_of(live: &Endpoint) -> Option<&str> {
        live.stack.as_deref()
    }

    fn planned(spec: &EndpointSpec, stack: &str) -> Endpoint {
        Endpoint {
            id: UNKNOWN.into(),
            name: Some(spec.name.clone()),
            is: spec.wants.sorted(),
            stack: Some(stack.to_string()),
        }
    }

    fn create(pass: &Pass, spec: &EndpointSpec, stack: &str) -> Result<Created<Endpoint>> {
        pass.block(create(pass, spec, stack))
    }

    fn create_beside(
        pass: &Pass,
        spec: EndpointSpec,
        stack: String,
    ) -> Option<LocalBoxFuture<'_, Result<Created<Endpoint>>>> {
        Some(Box::pin(async move { create(pass, &spec, &stack).await }))
    }

    fn diff(live: &Endpoint, spec: &EndpointSpec) -> Drift<EndpointUpdate> {
        let (is, wants) = (&live.is, spec.wants.sorted());
        let mut fixed = Vec::new();
        if is_known(&wants.vpc_id) && is.vpc_id != wants.vpc_id {
            fixed.push(FieldDiff::changed("vpc", &is.vpc_id, &wants.vpc_id));
        }
        if is.service != wants.service {
            fixed.push(FieldDiff::changed("service", &is.service, &wants.service));
        }
        if is.gateway != wants.gateway {
            fixed.push(FieldDiff::changed("type", kind_of(is.gateway), kind_of(wants.gateway)));
        }
        let mut diffs = Vec::new();
        let tables = delta("route_tables", &is.route_tables, &wants.route_tables, &mut diffs);
        let subnets = delta("subnets", &is.subnets, &wants.subnets, &mut diffs);
        let groups = delta("security_groups", &is.security_groups, &wants.security_groups, &mut diffs);
        let update = EndpointUpdate {
            add_route_tables: tables.0,
            remove_route_tables: tables.1,
            add_subnets: subnets.0,
            remove_subnets: subnets.1,
            add_security_groups: groups.0,
            remove_security_groups: groups.1,
        };
        Drift { diffs, fixed, update }
    }

    fn update(pass: &Pass, live: &Endpoint, spec: &EndpointSpec, update: &EndpointUpdate) -> Result<Endpoint> {
        pass.apply(async |aws| {
            sent(
                "ModifyVpcEndpoint",
                aws.ec2
                    .modify_vpc_endpoint()
                    .vpc_endpoint_id(&live.id)
                    .set_add_route_table_ids(some(&update.add_route_tables))
                    .set_remove_route_table_ids(some(&update.remove_route_tables))
                    .set_add_subnet_ids(some(&update.add_subnets))
                    .set_remove_subnet_ids(some(&update.remove_subnets))
                    .set_add_security_group_ids(some(&update.add_security_groups))
                    .set_remove_security_group_ids(some(&update.remove_security_groups))
                    .send(),
            )
            .await
        })?;
        Ok(Self::updated(live, spec))
    }

    fn updated(live: &Endpoint, spec: &EndpointSpec) -> Endpoint {
        let wants = spec.wants.sorted();
        let is = EndpointSettings {
            route_tables: wants.route_tables,
            subnets: wants.subnets,
            security_groups: wants.security_groups,
            ..live.is.clone()
        };
        Endpoint { is, ..live.clone() }
    }

    fn remember(snapshot: &mut Snapshot, live: &Endpoint) {
        let endpoints = &mut snapshot.egress.endpoints;
        endpoints.retain(|e| !(e.stack == live.stack && e.name == live.name));
        endpoints.push(live.clone());
    }

    fn summary(live: &Endpoint) -> String {
        format!("{}, {}", live.id, live.is.service)
    }
}

/// Creates the endpoint (gateway or interface) the spec asks for.
async fn create(pass: &Pass, spec: &EndpointSpec, stack: &str) -> Result<Created<Endpoint>> {
    // CreateVpcEndpoint is idempotent only with a ClientToken, and the SDK does not fill one
    // in: without it, a retry of a request whose reply was lost (a timeout, a dropped
    // connection) would create a second endpoint. One token per create, kept across retries.
    let token = client_token();
    let wants = &spec.wants;
    let id = pass
        .send(async |aws| {
            let mut request = aws
                .ec2
                .create_vpc_endpoint()
                .client_token(&token)
                .vpc_id(&wants.vpc_id)
                .service_name(&wants.service)
                .tag_specifications(tags_for(ResourceType::VpcEndpoint, stack, &spec.name));
            request = if wants.gateway {
                request
                    .vpc_endpoint_type(VpcEndpointType::Gateway)
                    .set_route_table_ids(Some(wants.route_tables.clone()))
            } else {
                request
                    .vpc_endpoint_type(VpcEndpointType::Interface)
                    .set_subnet_ids(Some(wants.subnets.clone()))
                    .set_security_group_ids(some(&wants.security_groups))
                    .private_dns_enabled(true)
            };
            let out = request.send().await.map_err(|e| aws_error("CreateVpcEndpoint", e))?;
            out.vpc_endpoint()
                .and_then(|e| e.vpc_endpoint_id())
                .map(str::to_string)
                .ok_or_else(|| Error::missing("CreateVpcEndpoint", "VpcEndpoint.VpcEndpointId"))
        })
        .await?;
    Ok(Created::New(Endpoint { id, ..Endpoint::planned(spec, stack) }))
}

/// A fresh idempotency token: a random UUID's 32 hex digits.
fn client_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Deletes a VPC endpoint. DeleteVpcEndpoints answers success even when it could not delete it and
/// lists those in `Unsuccessful`: that is a failure too.
pub async fn delete_endpoint(aws: &Aws, id: &str) -> Result<()> {
    let out = aws
        .ec2
        .delete_vpc_endpoints()
        .vpc_endpoint_ids(id)
        .send()
        .await
        .map_err(|e| aws_error("DeleteVpcEndpoints", e))?;
    match unsuccessful(out.unsuccessful()) {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

/// The error for what DeleteVpcEndpoints reports as `Unsuccessful`, or `None` when it deleted all.
fn unsuccessful(items: &[UnsuccessfulItem]) -> Option<Error> {
    let first = items.first()?;
    let error = first.error();
    let code = error.and_then(|e| e.code()).unwrap_or("Unsuccessful").to_string();
    let reason = error.and_then(|e| e.message()).unwrap_or("no reason given");
    let message = items
        .iter()
        .map(|item| {
            format!(
                "{}: {}",
                item.resource_id().unwrap_or("?"),
                item.error().and_then(|e| e.message()).unwrap_or(reason)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    Some(Error::Aws { operation: "DeleteVpcEndpoints".to_string(), code, message, hint: None })
}

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::types::UnsuccessfulItemError;

    use super::*;

    #[test]
    fn endpoints_aws_could_not_delete_are_a_failure() {
        assert!(unsuccessful(&[]).is_none());
        let item = UnsuccessfulItem::builder()
            .resource_id("vpce-123")
            .error(
                UnsuccessfulItemError::builder()
                    .code("InvalidVpcEndpoint.NotFound")
                    .message("The VPC endpoint does not exist")
                    .build(),
            )
            .build();
        let err = unsuccessful(&[item]).expect("an error");
        assert_eq!(err.aws_code(), Some("InvalidVpcEndpoint.NotFound"));
        assert_eq!(
            err.to_string(),
            "DeleteVpcEndpoints failed: InvalidVpcEndpoint.NotFound: vpce-123: The VPC endpoint does not exist"
        );
    }

    #[test]
    fn client_tokens_differ_and_fit_ec2s_limit() {
        let (a, b) = (client_token(), client_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
