//! ECS on Fargate: clusters, task definitions and services, and how each converges (one
//! [`crate::converge::Resource`] per kind). This file holds what the kinds share: the capacity
//! provider strategy, the run's ECS snapshot and the SDK helpers; each kind lives in its own file.

mod cluster;
mod container;
mod deploy;
mod deployments;
mod run_task;
mod service;
mod service_reads;
mod service_rollback;
mod task_definition;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use aws_sdk_ecs::types::{CapacityProviderStrategyItem, Tag};
use aws_smithy_types::error::operation::BuildError;

pub use self::cluster::*;
pub use self::container::*;
pub use self::deploy::*;
pub use self::deployments::*;
pub use self::run_task::*;
pub use self::service::*;
pub use self::service_reads::*;
pub use self::service_rollback::*;
pub use self::task_definition::*;
use crate::arn::Arn;
use crate::aws::{NAME_TAG, concurrently};
use crate::error::{Error, Result, aws_error};
use crate::runtime::Aws;
use crate::tagged::STACK_TAG;
use crate::tagged::StackTagged;

/// The Fargate capacity providers every cluster can use without setup.
pub const FARGATE_PROVIDERS: [&str; 2] = ["FARGATE", "FARGATE_SPOT"];

/// One entry of a capacity provider strategy.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StrategyItem {
    /// `FARGATE`, `FARGATE_SPOT` or an Auto Scaling group capacity provider.
    pub provider: String,
    /// Relative share of tasks (0-1000).
    pub weight: i32,
    /// Tasks placed on this provider first (0-100000).
    pub base: i32,
}

impl fmt::Display for StrategyItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} weight {}", self.provider, self.weight)?;
        if self.base > 0 {
            write!(f, " base {}", self.base)?;
        }
        Ok(())
    }
}

fn show_strategy(items: &[StrategyItem]) -> String {
    if items.is_empty() { "none".into() } else { items.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ") }
}

/// The ECS part of a run's snapshot.
#[derive(Debug, Default, Clone)]
pub struct EcsState {
    /// Every cluster in the region (to find the stack's and refuse names taken by others) when
    /// `all_clusters`; else the clusters looked up by name (`clusters_named`).
    pub clusters: Vec<Cluster>,
    /// Whether `clusters` lists every cluster of the region (ListClusters), not only named ones.
    pub all_clusters: bool,
    /// The names looked up with DescribeClusters (found or not), when not `all_clusters`.
    pub clusters_named: BTreeSet<String>,
    /// Services by cluster name, every service of that cluster: loaded up front for the stack's
    /// clusters (`load`), on demand for others.
    pub services: HashMap<String, Vec<Service>>,
    /// Services looked up by cluster and service name (`None`: no such service), as a run reads
    /// the ones its script declares.
    pub services_named: HashMap<(String, String), Option<Service>>,
    /// The stack's services in any cluster, found by tag (a run's read, see
    /// [`EcsState::add_stack`]); `None` when not read that way.
    pub stack_services: Option<Vec<Service>>,
    /// The latest ACTIVE revision of each family asked about so far (`None`: no ACTIVE revision).
    pub task_definitions: HashMap<String, Option<TaskDefinition>>,
    /// Target group types by ARN, for target groups given as ARNs rather than handles.
    pub target_group_types: HashMap<String, Option<String>>,
    /// Containers by task definition ARN, for task definitions given as ARNs rather than handles.
    pub task_containers: HashMap<String, ContainerPorts>,
    /// Whether this state was read from AWS (false in check mode).
    pub loaded: bool,
}

impl EcsState {
    /// Reads every cluster (with tags and settings) and the services of the stack's clusters.
    pub async fn load(aws: &Aws, stack: &str) -> Result<EcsState> {
        let mut arns = Vec::new();
        let mut pages = aws.ecs.list_clusters().into_paginator().items().send();
        while let Some(arn) = pages.next().await {
            arns.push(arn.map_err(|e| aws_error("ListClusters", e))?);
        }
        let mut clusters = Vec::new();
        for chunk in arns.chunks(100) {
            clusters.extend(describe_clusters(aws, chunk.to_vec()).await?);
        }
        let mut services = HashMap::new();
        for cluster in clusters.iter().filter(|c| c.status == "ACTIVE" && c.stack.as_deref() == Some(stack)) {
            services.insert(cluster.name.clone(), cluster_services(aws, &cluster.arn).await?);
        }
        Ok(EcsState { clusters, all_clusters: true, services, loaded: true, ..EcsState::default() })
    }

    /// Reads the clusters (by name) and services (by cluster and name) a script declares, all in
    /// one wave: one DescribeClusters per 100 names, one DescribeServices per cluster and 10 names,
    /// tags included. No listing: what the script declares is all a run's passes look up (a name
    /// the check pass could not know is read by name when the script reaches it).
    pub async fn load_declared(aws: &Aws, clusters: &[String], services: &[(String, String)]) -> Result<EcsState> {
        let mut by_cluster: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (cluster, name) in services {
            by_cluster.entry(cluster.clone()).or_default().push(name.clone());
        }
        let mut state =
            EcsState { clusters_named: clusters.iter().cloned().collect(), loaded: true, ..EcsState::default() };
        state.add_described(aws, clusters, &by_cluster).await?;
        for (cluster, name) in services {
            state.services_named.entry((cluster.clone(), name.clone())).or_insert(None);
        }
        Ok(state)
    }

    /// Adds the stack's clusters and services found by tag (`tagged`; the
    /// Resource Groups Tagging API lists them in any cluster, in proportion to the stack) that
    /// the declared reads did not describe: one DescribeClusters per 100, one DescribeServices per
    /// cluster and 10; none when the script declares all of them. Sets `stack_services`.
    ///
    /// The tagging index is eventually consistent: one created moments ago may be missing (what
    /// the script declares is read by name anyway), one deleted moments ago may still be listed
    /// (its describe says INACTIVE, or nothing).
    pub async fn add_stack(mut self, aws: &Aws, stack: &str, tagged: &StackTagged) -> Result<EcsState> {
        let clusters: Vec<String> = tagged
            .arns("ecs", "cluster")
            .into_iter()
            .filter(|arn| !self.clusters.iter().any(|c| c.arn == *arn))
            .collect();
        let described = |arn: &str| self.services_named.values().flatten().any(|s| s.arn == arn);
        let mut by_cluster: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for arn in tagged.arns("ecs", "service").into_iter().filter(|arn| !described(arn)) {
            // A service ARN names its cluster: `service/CLUSTER/NAME`.
            if let Some((cluster, _)) =
                Arn::of_type(&arn, "ecs", "service").and_then(|a| a.resource_id().split_once('/'))
            {
                by_cluster.entry(cluster.to_string()).or_default().push(arn.to_string());
            }
        }
        let known = self.clusters.len();
        self.add_described(aws, &clusters, &by_cluster).await?;
        for cluster in &self.clusters[known..] {
            self.clusters_named.insert(cluster.name.clone());
        }
        let mut services: Vec<Service> =
            self.services_named.values().flatten().filter(|s| s.stack.as_deref() == Some(stack)).cloned().collect();
        services.sort_by(|a, b| (&a.name, &a.arn).cmp(&(&b.name, &b.arn)));
        self.stack_services = Some(services);
        Ok(self)
    }

    /// Describes `clusters` (names or ARNs: one DescribeClusters per 100) and the services of
    /// `services` (by cluster, names or ARNs: one DescribeServices per cluster and 10), all at
    /// once, and adds what exists.
    async fn add_described(
        &mut self,
        aws: &Aws,
        clusters: &[String],
        services: &BTreeMap<String, Vec<String>>,
    ) -> Result<()> {
        let batches: Vec<(&str, Vec<String>)> = services
            .iter()
            .flat_map(|(cluster, names)| names.chunks(10).map(|chunk| (cluster.as_str(), chunk.to_vec())))
            .collect();
        let (found_clusters, found_services) = tokio::try_join!(
            concurrently(clusters.chunks(100), |chunk| describe_clusters(aws, chunk.to_vec())),
            concurrently(&batches, async |(cluster, names)| services_named(aws, cluster, names.clone()).await),
        )?;
        self.clusters.extend(found_clusters.into_iter().flatten());
        for service in found_services.into_iter().flatten() {
            self.services_named.insert((service.cluster.clone(), service.name.clone()), Some(service));
        }
        Ok(())
    }

    /// The service of this name in `cluster` as read so far: looked up by name, or among its
    /// cluster's services.
    pub fn service(&self, cluster: &str, name: &str) -> Option<&Service> {
        match self.services_named.get(&(cluster.to_string(), name.to_string())) {
            Some(found) => found.as_ref(),
            None => self.services.get(cluster)?.iter().find(|s| s.name == name),
        }
    }
}

/// A request part the SDK could not build: a bug in deckhand (a required field left unset).
fn built<T>(what: &str, result: std::result::Result<T, BuildError>) -> Result<T> {
    result.map_err(|e| Error::Internal(format!("building {what}: {e}")))
}

fn tag_value(tags: &[Tag], key: &str) -> Option<String> {
    tags.iter().find(|t| t.key() == Some(key)).and_then(|t| t.value().map(str::to_string))
}

fn tags_for(stack: &str, name: &str) -> Vec<Tag> {
    vec![Tag::builder().key(NAME_TAG).value(name).build(), Tag::builder().key(STACK_TAG).value(stack).build()]
}

fn strategy_from(items: &[CapacityProviderStrategyItem]) -> Vec<StrategyItem> {
    let mut strategy: Vec<StrategyItem> = items
        .iter()
        .map(|i| StrategyItem { provider: i.capacity_provider().to_string(), weight: i.weight(), base: i.base() })
        .collect();
    strategy.sort();
    strategy
}

fn strategy_to(items: &[StrategyItem]) -> Result<Vec<CapacityProviderStrategyItem>> {
    items
        .iter()
        .map(|i| {
            built(
                "a capacity provider strategy",
                CapacityProviderStrategyItem::builder()
                    .capacity_provider(&i.provider)
                    .weight(i.weight)
                    .base(i.base)
                    .build(),
            )
        })
        .collect()
}

fn show_list(items: &[String]) -> String {
    if items.is_empty() { "none".into() } else { items.join(", ") }
}

fn opt<T: fmt::Display>(value: &Option<T>) -> String {
    value.as_ref().map(ToString::to_string).unwrap_or_else(|| "none".into())
}
