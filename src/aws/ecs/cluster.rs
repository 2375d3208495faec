//! ECS clusters: capacity providers, the default strategy and Container Insights, all changed in
//! place (a cluster is never re-created).

use std::collections::BTreeSet;

use aws_sdk_ecs::types::{ClusterField, ClusterSetting, ClusterSettingName};
use futures_util::future::LocalBoxFuture;

use super::{
    FARGATE_PROVIDERS, StrategyItem, show_list, show_strategy, strategy_from, strategy_to, tag_value, tags_for,
};
use crate::aws::Pass;
use crate::aws::Snapshot;
use crate::converge::{Created, Drift, Resource};
use crate::error::{Error, Result, aws_error, sent};
use crate::plan::{FieldDiff, UNKNOWN};
use crate::runtime::Aws;
use crate::tagged::Keepable;
use crate::tagged::STACK_TAG;

/// What a script asks of a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    /// Cluster name, unique in the region.
    pub name: String,
    /// Capacity providers the cluster offers (default FARGATE and FARGATE_SPOT).
    pub capacity_providers: Vec<String>,
    /// The strategy for tasks and services that name none.
    pub default_strategy: Vec<StrategyItem>,
    /// `enabled`, `enhanced` or `disabled`; `None` leaves the setting alone.
    pub container_insights: Option<String>,
}

/// A cluster as it exists (or will exist) in AWS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// Its ARN, or [`UNKNOWN`].
    pub arn: String,
    /// Its name.
    pub name: String,
    /// `ACTIVE`, `PROVISIONING`, `INACTIVE`, ...
    pub status: String,
    /// Capacity providers (sorted).
    pub capacity_providers: Vec<String>,
    /// Default capacity provider strategy (sorted).
    pub default_strategy: Vec<StrategyItem>,
    /// The containerInsights setting (`disabled` when AWS reports none).
    pub container_insights: String,
    /// Its `deckhand:stack` tag.
    pub stack: Option<String>,
}

/// Checks a capacity provider strategy: AWS's limits on weight and base, providers the cluster
/// offers, no mix of Fargate and Auto Scaling group providers.
pub fn validate_strategy(key: &str, strategy: &[StrategyItem], providers: &[String]) -> Result<()> {
    let mut seen = BTreeSet::new();
    for (i, item) in strategy.iter().enumerate() {
        if !providers.contains(&item.provider) {
            return Err(Error::invalid(
                format!("{key}[{i}].provider"),
                format!("{:?}", item.provider),
                format!("one of the cluster's capacity providers: {}", providers.join(", ")),
            ));
        }
        if !seen.insert(&item.provider) {
            return Err(Error::invalid(
                format!("{key}[{i}].provider"),
                format!("{:?}", item.provider),
                "each capacity provider once",
            ));
        }
        if !(0..=1000).contains(&item.weight) {
            return Err(Error::invalid(format!("{key}[{i}].weight"), item.weight, "a weight from 0 to 1000"));
        }
        if !(0..=100_000).contains(&item.base) {
            return Err(Error::invalid(format!("{key}[{i}].base"), item.base, "a base from 0 to 100000"));
        }
    }
    if strategy.iter().filter(|i| i.base > 0).count() > 1 {
        return Err(Error::invalid(key, show_strategy(strategy), "a base on at most one capacity provider"));
    }
    if !strategy.is_empty() && strategy.iter().all(|i| i.weight == 0) {
        return Err(Error::invalid(
            key,
            show_strategy(strategy),
            "at least one capacity provider with a weight above 0",
        ));
    }
    let fargate = strategy.iter().filter(|i| FARGATE_PROVIDERS.contains(&i.provider.as_str())).count();
    if fargate > 0 && fargate < strategy.len() {
        return Err(Error::invalid(
            key,
            show_strategy(strategy),
            "either Fargate providers (FARGATE, FARGATE_SPOT) or Auto Scaling group providers, not both",
        ));
    }
    Ok(())
}

/// Reads clusters (by name or ARN) with their tags and settings; unknown names are left out.
pub(crate) async fn describe_clusters(aws: &Aws, names: Vec<String>) -> Result<Vec<Cluster>> {
    let out = aws
        .ecs
        .describe_clusters()
        .set_clusters(Some(names))
        .include(ClusterField::Tags)
        .include(ClusterField::Settings)
        .send()
        .await
        .map_err(|e| aws_error("DescribeClusters", e))?;
    out.clusters()
        .iter()
        .map(|c| {
            let mut capacity_providers = c.capacity_providers().to_vec();
            capacity_providers.sort();
            let container_insights = c
                .settings()
                .iter()
                .find(|s| s.name() == Some(&ClusterSettingName::ContainerInsights))
                .and_then(|s| s.value())
                .unwrap_or("disabled")
                .to_string();
            Ok(Cluster {
                arn: c.cluster_arn().ok_or_else(|| Error::missing("DescribeClusters", "clusterArn"))?.to_string(),
                name: c.cluster_name().ok_or_else(|| Error::missing("DescribeClusters", "clusterName"))?.to_string(),
                status: c.status().unwrap_or_default().to_string(),
                capacity_providers,
                default_strategy: strategy_from(c.default_capacity_provider_strategy()),
                container_insights,
                stack: tag_value(c.tags(), STACK_TAG),
            })
        })
        .collect()
}

/// Which parts of a cluster an update must send.
#[derive(Debug, Default)]
pub struct ClusterUpdate {
    /// Capacity providers or the default strategy (PutClusterCapacityProviders sends both).
    capacity: bool,
    /// The containerInsights setting (UpdateCluster).
    insights: bool,
}

/// The providers and default strategy the spec asks for, sorted like AWS's reply is.
fn wanted_capacity(spec: &ClusterSpec) -> (Vec<String>, Vec<StrategyItem>) {
    let mut providers = spec.capacity_providers.clone();
    providers.sort();
    let mut strategy = spec.default_strategy.clone();
    strategy.sort();
    (providers, strategy)
}

/// A cluster converges by name; its capacity providers, default strategy and Container Insights
/// setting are changed in place.
impl Resource for Cluster {
    type Reads = Snapshot;
    type Spec = ClusterSpec;
    type Update = ClusterUpdate;
    const KIND: &'static str = "cluster";

    fn keepable(live: &Cluster) -> Option<Keepable> {
        Some(Keepable::Ecs(live.arn.clone()))
    }

    fn name(spec: &ClusterSpec) -> String {
        spec.name.clone()
    }

    fn validate(_pass: &Pass, spec: &ClusterSpec) -> Result<()> {
        validate_strategy("cluster.default_strategy", &spec.default_strategy, &spec.capacity_providers)
    }

    fn find(pass: &Pass, spec: &ClusterSpec) -> Result<Option<Cluster>> {
        let snapshot = pass.snapshot()?;
        let known = {
            let ecs = &snapshot.borrow().ecs;
            ecs.all_clusters || ecs.clusters_named.contains(&spec.name)
        };
        if !known && let Some(read) = pass.read(async |aws| describe_clusters(aws, vec![spec.name.clone()]).await) {
            let read = read?;
            pass.remember_read(|s| {
                s.ecs.clusters_named.insert(spec.name.clone());
                s.ecs.clusters.extend(read.iter().cloned());
            })?;
        }
        // An INACTIVE cluster is a deleted one that ECS still lists for a while.
        let found =
            snapshot.borrow().ecs.clusters.iter().find(|c| c.name == spec.name && c.status != "INACTIVE").cloned();
        Ok(found)
    }

    fn stack_of(live: &Cluster) -> Option<&str> {
        live.stack.as_deref()
    }

    fn planned(spec: &ClusterSpec, stack: &str) -> Cluster {
        let (capacity_providers, default_strategy) = wanted_capacity(spec);
        Cluster {
            arn: UNKNOWN.into(),
            name: spec.name.clone(),
            status: "ACTIVE".into(),
            capacity_providers,
            default_strategy,
            container_insights: spec.container_insights.clone().unwrap_or_else(|| "disabled".into()),
            stack: Some(stack.to_string()),
        }
    }

    fn create(pass: &Pass, spec: &ClusterSpec, stack: &str) -> Result<Created<Cluster>> {
        pass.block(create(pass, spec, stack))
    }

    fn create_beside(
        pass: &Pass,
        spec: ClusterSpec,
        stack: String,
    ) -> Option<LocalBoxFuture<'_, Result<Created<Cluster>>>> {
        Some(Box::pin(async move { create(pass, &spec, &stack).await }))
    }

    fn diff(live: &Cluster, spec: &ClusterSpec) -> Drift<ClusterUpdate> {
        let (providers, strategy) = wanted_capacity(spec);
        let mut diffs = Vec::new();
        if live.capacity_providers != providers {
            diffs.push(FieldDiff::changed(
                "capacity_providers",
                show_list(&live.capacity_providers),
                show_list(&providers),
            ));
        }
        if live.default_strategy != strategy {
            diffs.push(FieldDiff::changed(
                "default_strategy",
                show_strategy(&live.default_strategy),
                show_strategy(&strategy),
            ));
        }
        let insights = spec.container_insights.as_ref().filter(|wanted| **wanted != live.container_insights);
        if let Some(wanted) = insights {
            diffs.push(FieldDiff::changed("container_insights", &live.container_insights, wanted));
        }
        let update = ClusterUpdate {
            capacity: live.capacity_providers != providers || live.default_strategy != strategy,
            insights: insights.is_some(),
        };
        Drift { diffs, fixed: Vec::new(), update }
    }

    fn update(pass: &Pass, live: &Cluster, spec: &ClusterSpec, update: &ClusterUpdate) -> Result<Cluster> {
        let after = Self::updated(live, spec);
        if update.capacity {
            let items = strategy_to(&after.default_strategy)?;
            pass.apply(async |aws| {
                aws.ecs
                    .put_cluster_capacity_providers()
                    .cluster(&live.arn)
                    .set_capacity_providers(Some(after.capacity_providers.clone()))
                    .set_default_capacity_provider_strategy(Some(items))
                    .send()
                    .await
                    .map_err(|e| aws_error("PutClusterCapacityProviders", e))
            })?;
        }
        if update.insights {
            let setting = ClusterSetting::builder()
                .name(ClusterSettingName::ContainerInsights)
                .value(&after.container_insights)
                .build();
            pass.apply(async |aws| {
                aws.ecs
                    .update_cluster()
                    .cluster(&live.arn)
                    .settings(setting)
                    .send()
                    .await
                    .map_err(|e| aws_error("UpdateCluster", e))
            })?;
        }
        Ok(after)
    }

    fn updated(live: &Cluster, spec: &ClusterSpec) -> Cluster {
        let (capacity_providers, default_strategy) = wanted_capacity(spec);
        let container_insights = spec.container_insights.clone().unwrap_or_else(|| live.container_insights.clone());
        Cluster { capacity_providers, default_strategy, container_insights, ..live.clone() }
    }

    fn remember(snapshot: &mut Snapshot, live: &Cluster) {
        let state = &mut snapshot.ecs;
        let new = !state.clusters.iter().any(|c| c.name == live.name && c.status != "INACTIVE");
        state.clusters.retain(|c| c.name != live.name);
        state.clusters.push(live.clone());
        state.clusters_named.insert(live.name.clone());
        // A cluster this pass creates has no services yet: nothing to read for it. (An existing
        // one's services are read when asked for: by name, or whole.)
        if new {
            state.services.entry(live.name.clone()).or_default();
        }
    }

    fn summary(live: &Cluster) -> String {
        live.arn.clone()
    }
}

/// Creates the cluster (one CreateCluster: providers, default strategy, settings and tags go
/// with it).
async fn create(pass: &Pass, spec: &ClusterSpec, stack: &str) -> Result<Created<Cluster>> {
    let items = strategy_to(&spec.default_strategy)?;
    let settings = spec
        .container_insights
        .as_ref()
        .map(|v| vec![ClusterSetting::builder().name(ClusterSettingName::ContainerInsights).value(v).build()]);
    let out = pass
        .send(async |aws| {
            aws.ecs
                .create_cluster()
                .cluster_name(&spec.name)
                .set_capacity_providers(Some(spec.capacity_providers.clone()))
                .set_default_capacity_provider_strategy(Some(items))
                .set_settings(settings)
                .set_tags(Some(tags_for(stack, &spec.name)))
                .send()
                .await
                .map_err(|e| aws_error("CreateCluster", e))
        })
        .await?;
    let arn = out
        .cluster()
        .and_then(|c| c.cluster_arn())
        .ok_or_else(|| Error::missing("CreateCluster", "cluster.clusterArn"))?;
    Ok(Created::New(Cluster { arn: arn.to_string(), ..Cluster::planned(spec, stack) }))
}

/// Deletes a cluster (ECS refuses while it holds services or tasks).
pub async fn delete_cluster(aws: &Aws, cluster_arn: &str) -> Result<()> {
    sent("DeleteCluster", aws.ecs.delete_cluster().cluster(cluster_arn).send()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_are_checked_like_aws_does() {
        let providers: Vec<String> = FARGATE_PROVIDERS.iter().map(|p| p.to_string()).collect();
        let item = |p: &str, weight, base| StrategyItem { provider: p.into(), weight, base };
        assert!(validate_strategy("s", &[item("FARGATE", 1, 1), item("FARGATE_SPOT", 4, 0)], &providers).is_ok());
        assert!(validate_strategy("s", &[item("EC2", 1, 0)], &providers).is_err());
        assert!(validate_strategy("s", &[item("FARGATE", 1, 1), item("FARGATE_SPOT", 1, 1)], &providers).is_err());
        assert!(validate_strategy("s", &[item("FARGATE", 0, 0)], &providers).is_err());
    }
}
