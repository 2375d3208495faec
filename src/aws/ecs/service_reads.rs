//! Reading ECS services (DescribeServices with their tags, into [`Service`]) and deleting them.

use aws_sdk_ecs::types::{AssignPublicIp, ServiceField};

use super::deploy::{advanced_from, deployment_from};
use super::service::{LoadBalancerSpec, Service};
use super::{cluster_services, strategy_from, tag_value};
use crate::arn::Arn;
use crate::error::{Error, Result, aws_error, sent};
use crate::poll::{Check, Wait};
use crate::runtime::Aws;
use crate::tagged::STACK_TAG;
use crate::timing::{DELETION_PACE, SERVICE_INACTIVE_TIMEOUT};

pub(super) async fn describe_services(aws: &Aws, cluster: &str, names: Vec<String>) -> Result<Vec<Service>> {
    let out = aws
        .ecs
        .describe_services()
        .cluster(cluster)
        .set_services(Some(names))
        .include(ServiceField::Tags)
        .send()
        .await
        .map_err(|e| aws_error("DescribeServices", e))?;
    out.services().iter().map(|s| service_from("DescribeServices", s)).collect()
}

/// The services of `cluster` (a name or ARN) with these names, as far as they exist (ACTIVE,
/// DRAINING or INACTIVE), with their tags; none when the cluster does not exist.
pub(super) async fn services_named(aws: &Aws, cluster: &str, names: Vec<String>) -> Result<Vec<Service>> {
    let out =
        aws.ecs.describe_services().cluster(cluster).set_services(Some(names)).include(ServiceField::Tags).send().await;
    match out {
        Ok(out) => out.services().iter().map(|s| service_from("DescribeServices", s)).collect(),
        Err(err) if err.as_service_error().is_some_and(|e| e.is_cluster_not_found_exception()) => Ok(Vec::new()),
        Err(err) => Err(aws_error("DescribeServices", err)),
    }
}

/// The cluster name in a cluster ARN (`arn:aws:ecs:region:account:cluster/NAME`).
pub fn cluster_name(arn: &str) -> &str {
    Arn::of_type(arn, "ecs", "cluster").map_or(arn, |arn| arn.resource_id())
}

pub(super) fn service_from(operation: &str, s: &aws_sdk_ecs::types::Service) -> Result<Service> {
    let vpc = s.network_configuration().and_then(|n| n.awsvpc_configuration());
    let sorted = |items: &[String]| {
        let mut items = items.to_vec();
        items.sort();
        items
    };
    // A mapping without a target group is a Classic Load Balancer's (never deckhand's): it is
    // shown by that load balancer's name.
    let mut load_balancers: Vec<LoadBalancerSpec> = s
        .load_balancers()
        .iter()
        .filter_map(|lb| {
            Some(LoadBalancerSpec {
                target_group_arn: lb.target_group_arn().or(lb.load_balancer_name())?.to_string(),
                container: lb.container_name().unwrap_or_default().to_string(),
                port: lb.container_port().unwrap_or_default(),
                advanced: lb.advanced_configuration().map(advanced_from),
            })
        })
        .collect();
    load_balancers.sort();
    let deployment = s.deployment_configuration().map(deployment_from);
    let cluster_arn = s.cluster_arn().ok_or_else(|| Error::missing(operation, "service.clusterArn"))?;
    Ok(Service {
        arn: s.service_arn().ok_or_else(|| Error::missing(operation, "service.serviceArn"))?.to_string(),
        name: s.service_name().ok_or_else(|| Error::missing(operation, "service.serviceName"))?.to_string(),
        cluster_arn: cluster_arn.to_string(),
        cluster: cluster_name(cluster_arn).to_string(),
        status: s.status().unwrap_or_default().to_string(),
        // Absent only for services on the EXTERNAL deployment controller (never deckhand's).
        task_definition: s.task_definition().unwrap_or_default().to_string(),
        desired: s.desired_count(),
        strategy: strategy_from(s.capacity_provider_strategy()),
        subnets: vpc.map(|v| sorted(v.subnets())).unwrap_or_default(),
        security_groups: vpc.map(|v| sorted(v.security_groups())).unwrap_or_default(),
        public_ip: vpc.and_then(|v| v.assign_public_ip()) == Some(&AssignPublicIp::Enabled),
        load_balancers,
        health_check_grace: s.health_check_grace_period_seconds(),
        exec: s.enable_execute_command(),
        deployment,
        stack: tag_value(s.tags(), STACK_TAG),
        autoscaled: false,
    })
}

// Deletion (deckhand destroy)

/// The services of a cluster, with their tags (one ListServices per page, one DescribeServices per
/// 10 services).
pub async fn services_in_cluster(aws: &Aws, cluster_arn: &str) -> Result<Vec<Service>> {
    cluster_services(aws, cluster_arn).await
}

/// Scales a service to no tasks and deletes it; ECS then drains it (see [`wait_service_inactive`]).
pub async fn delete_service(aws: &Aws, cluster_arn: &str, service_arn: &str) -> Result<()> {
    aws.ecs
        .update_service()
        .cluster(cluster_arn)
        .service(service_arn)
        .desired_count(0)
        .send()
        .await
        .map_err(|e| aws_error("UpdateService", e))?;
    sent("DeleteService", aws.ecs.delete_service().cluster(cluster_arn).service(service_arn).send()).await
}

/// Waits until a deleted service is INACTIVE, its tasks stopped: the acceptors of the SDK's
/// ServicesInactive waiter (aws-sdk-ecs `waiters/services_inactive.rs`), polled by deckhand so
/// the time scale applies: status INACTIVE is done, and so is a `MISSING` failure (the waiter's
/// failure state: the service is gone altogether). ECS drains a deleted service's tasks first
/// (their targets' deregistration delay, then shutdown): minutes.
pub async fn wait_service_inactive(
    aws: &Aws,
    cluster_arn: &str,
    service_arn: &str,
    report: &dyn Fn(&str),
) -> Result<()> {
    let what = format!("service {service_arn} to become INACTIVE");
    Wait::new(aws.clock(), "service drain", what, DELETION_PACE, SERVICE_INACTIVE_TIMEOUT)
        .report_to(report)
        .hint("run `deckhand destroy` again once its tasks have stopped")
        .until(async |_| {
            let out = aws
                .ecs
                .describe_services()
                .cluster(cluster_arn)
                .services(service_arn)
                .send()
                .await
                .map_err(|e| aws_error("DescribeServices", e))?;
            if out.failures().iter().any(|f| f.reason() == Some("MISSING")) {
                return Ok(Check::Done(()));
            }
            match out.services().first() {
                Some(s) if s.status() == Some("INACTIVE") => Ok(Check::Done(())),
                Some(s) => {
                    Ok(Check::waiting(format!("{}, {} running", s.status().unwrap_or("unknown"), s.running_count())))
                }
                None => Ok(Check::waiting("not reported")),
            }
        })
        .await
}
