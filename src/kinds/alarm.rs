//! CloudWatch metric alarms, the whole kind in one file: `alarm(#{ name, metric, load_balancer,
//! threshold, periods })` converges an alarm on a load balancer's metric (PutMetricAlarm creates
//! and updates it; DescribeAlarms reads it by name), tagged with the stack; the stack's own are
//! found through the tagging API, deleted by prune and destroy (DeleteAlarms), shown by status
//! with their state. A service's `deploy.alarms` names them: ECS rolls a deployment back when one
//! is in ALARM.
//!
//! The metrics are the load balancer's as a whole (dimension `LoadBalancer`), never one target
//! group's: ECS swaps a service's primary and alternate target groups at every blue/green,
//! canary or linear deployment, so a group's metric watches the live version only every other
//! time.

use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, MetricAlarm, MetricDataQuery, Statistic, Tag};
use futures_util::FutureExt;
use futures_util::future::LocalBoxFuture;

use super::{Deleting, Entry, Inventory, Kind, Pending, Showing, Shown, StackKind};
use crate::arn::Arn;
use crate::aws::Pass;
use crate::aws::{Snapshot, concurrently, find_named};
use crate::converge::{Created, Drift, Resource};
use crate::error::{Error, Result, aws_error, sent};
use crate::plan::{FieldDiff, UNKNOWN, is_known};
use crate::runtime::Aws;
use crate::tagged::STACK_TAG;

/// The kind.
pub const KIND: Kind = Kind("alarm");

/// The period each datapoint covers, in seconds: Application Load Balancer metrics are published
/// every 60 seconds (ELB user guide, "CloudWatch metrics for your Application Load Balancer").
const PERIOD: i32 = 60;

/// The metrics an alarm can watch, as scripts name them.
pub const METRICS: &[&str] = &["target_5xx", "elb_5xx", "p99_response_time", "unhealthy_hosts"];

/// A load balancer metric: its name, and the statistic over each period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// HTTPCode_Target_5XX_Count, summed: the targets' 5xx answers.
    Target5xx,
    /// HTTPCode_ELB_5XX_Count, summed: the load balancer's own 5xx answers (no healthy target...).
    Elb5xx,
    /// TargetResponseTime, 99th percentile, in seconds.
    P99ResponseTime,
    /// UnHealthyHostCount: published per target group only (dimensions TargetGroup and
    /// LoadBalancer, never LoadBalancer alone: ELB user guide, "CloudWatch metrics for your
    /// Application Load Balancer"), so the alarm is a Metrics Insights query: the most any target
    /// group of the load balancer reports, whichever of a service's two groups is live.
    UnhealthyHosts,
}

impl Metric {
    /// The script's name.
    pub fn parse(name: &str) -> Option<Metric> {
        Some(match name {
            "target_5xx" => Metric::Target5xx,
            "elb_5xx" => Metric::Elb5xx,
            "p99_response_time" => Metric::P99ResponseTime,
            "unhealthy_hosts" => Metric::UnhealthyHosts,
            _ => return None,
        })
    }

    /// CloudWatch's metric name (namespace AWS/ApplicationELB).
    pub fn metric_name(self) -> &'static str {
        match self {
            Metric::Target5xx => "HTTPCode_Target_5XX_Count",
            Metric::Elb5xx => "HTTPCode_ELB_5XX_Count",
            Metric::P99ResponseTime => "TargetResponseTime",
            Metric::UnhealthyHosts => "UnHealthyHostCount",
        }
    }

    fn from_metric_name(name: &str) -> Option<Metric> {
        [Metric::Target5xx, Metric::Elb5xx, Metric::P99ResponseTime, Metric::UnhealthyHosts]
            .into_iter()
            .find(|m| m.metric_name() == name)
    }

    /// The statistic over the load balancer's dimension: a standard one, or an extended one (a
    /// percentile); `None` for a metric the load balancer alone does not publish (a query).
    fn statistic(self) -> Option<(Option<Statistic>, Option<&'static str>)> {
        match self {
            Metric::Target5xx | Metric::Elb5xx => Some((Some(Statistic::Sum), None)),
            Metric::P99ResponseTime => Some((None, Some("p99"))),
            Metric::UnhealthyHosts => None,
        }
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.metric_name())
    }
}

/// The namespace of Application Load Balancer metrics.
const NAMESPACE: &str = "AWS/ApplicationELB";

/// The Metrics Insights query of [`Metric::UnhealthyHosts`] over the load balancer whose
/// dimension is `dimension` (CloudWatch user guide, "Create alarms on Metrics Insights queries").
fn unhealthy_query(dimension: &str) -> String {
    format!(
        "SELECT MAX(UnHealthyHostCount) FROM SCHEMA(\"{NAMESPACE}\", LoadBalancer, TargetGroup) WHERE LoadBalancer = '{dimension}'"
    )
}

/// The load balancer dimension an [`unhealthy_query`] names, if `expression` is one.
fn unhealthy_query_dimension(expression: &str) -> Option<String> {
    let (_, rest) = expression.split_once("WHERE LoadBalancer = '")?;
    let dimension = rest.strip_suffix('\'')?;
    (unhealthy_query(dimension) == expression).then(|| dimension.to_string())
}

/// What a script asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmSpec {
    /// The alarm's name, unique in the region.
    pub name: String,
    /// What it watches.
    pub metric: Metric,
    /// The load balancer's ARN (or [`UNKNOWN`]).
    pub load_balancer_arn: String,
    /// In ALARM when the statistic is at or above this.
    pub threshold: f64,
    /// For this many consecutive minutes.
    pub periods: i32,
}

/// An alarm as it exists (or, planned, as it will).
#[derive(Debug, Clone, PartialEq)]
pub struct Alarm {
    /// Its name.
    pub name: String,
    /// Its ARN.
    pub arn: String,
    /// What it watches (`None`: a metric deckhand does not write).
    pub metric: Option<Metric>,
    /// The `LoadBalancer` dimension: `app/<name>/<id>`.
    pub dimension: String,
    /// The threshold.
    pub threshold: f64,
    /// Evaluation periods.
    pub periods: i32,
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub state: String,
    /// Its `deckhand:stack` tag.
    pub stack: Option<String>,
}

/// The `LoadBalancer` dimension of a load balancer: its ARN's resource after `loadbalancer/`.
pub fn dimension_of(load_balancer_arn: &str) -> String {
    if !is_known(load_balancer_arn) {
        return UNKNOWN.into();
    }
    Arn::parse(load_balancer_arn).map_or(load_balancer_arn, |a| a.resource_id()).to_string()
}

/// The alarm named `name` with its tags; `None` when there is none (DescribeAlarms, then
/// ListTagsForResource).
pub async fn read_alarm(aws: &Aws, name: &str) -> Result<Option<Alarm>> {
    let Some(alarm) = describe_alarm(aws, name).await? else { return Ok(None) };
    let arn = alarm.alarm_arn().ok_or_else(|| Error::missing("DescribeAlarms", "AlarmArn"))?.to_string();
    let tags = aws
        .cloudwatch
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .map_err(|e| aws_error("ListTagsForResource", e))?;
    let stack = tags.tags().iter().find(|t| t.key() == Some(STACK_TAG)).and_then(|t| t.value()).map(str::to_string);
    let queried = match alarm.metrics() {
        [query] => query.expression().and_then(unhealthy_query_dimension),
        _ => None,
    };
    let (metric, dimension) = match queried {
        Some(dimension) => (Some(Metric::UnhealthyHosts), dimension),
        None => (
            alarm
                .metric_name()
                .and_then(Metric::from_metric_name)
                .filter(|m| alarm.namespace() == Some(NAMESPACE) && *m != Metric::UnhealthyHosts),
            alarm
                .dimensions()
                .iter()
                .find(|d| d.name() == Some("LoadBalancer"))
                .and_then(|d| d.value())
                .unwrap_or_default()
                .to_string(),
        ),
    };
    Ok(Some(Alarm {
        name: name.to_string(),
        arn,
        metric,
        dimension,
        threshold: alarm.threshold().unwrap_or_default(),
        periods: alarm.evaluation_periods().unwrap_or_default(),
        state: alarm.state_value().map(|s| s.as_str().to_string()).unwrap_or_default(),
        stack,
    }))
}

/// The alarm named `name` as DescribeAlarms shows it; `None` when there is none.
async fn describe_alarm(aws: &Aws, name: &str) -> Result<Option<MetricAlarm>> {
    let out =
        aws.cloudwatch.describe_alarms().alarm_names(name).send().await.map_err(|e| aws_error("DescribeAlarms", e))?;
    Ok(out.metric_alarms().iter().find(|a| a.alarm_name() == Some(name)).cloned())
}

/// PutMetricAlarm: creates the alarm, or replaces its settings (the tags count only on create:
/// "any tags you specify in this parameter are ignored" for an existing alarm).
async fn put_alarm(aws: &Aws, spec: &AlarmSpec, stack: Option<&str>) -> Result<()> {
    let dimension = dimension_of(&spec.load_balancer_arn);
    let mut put = aws
        .cloudwatch
        .put_metric_alarm()
        .alarm_name(&spec.name)
        .alarm_description(format!("{} of load balancer {dimension} (deckhand)", spec.metric))
        .evaluation_periods(spec.periods)
        .threshold(spec.threshold)
        .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold)
        // No requests, no datapoints: an idle service is not failing.
        .treat_missing_data("notBreaching");
    put = match spec.metric.statistic() {
        None => put.metrics(
            MetricDataQuery::builder()
                .id("unhealthy")
                .expression(unhealthy_query(&dimension))
                .period(PERIOD)
                .return_data(true)
                .build(),
        ),
        Some((statistic, extended)) => put
            .namespace(NAMESPACE)
            .metric_name(spec.metric.metric_name())
            .dimensions(Dimension::builder().name("LoadBalancer").value(&dimension).build())
            .set_statistic(statistic)
            .set_extended_statistic(extended.map(str::to_string))
            .period(PERIOD),
    };
    if let Some(stack) = stack {
        put = put.tags(Tag::builder().key(STACK_TAG).value(stack).build());
    }
    sent("PutMetricAlarm", put.send()).await
}

/// An alarm converges by name: PutMetricAlarm creates it tagged with the stack, and replaces its
/// settings when they drifted.
impl Resource for Alarm {
    type Reads = Snapshot;
    type Spec = AlarmSpec;
    type Update = ();
    const KIND: &'static str = KIND.0;

    fn name(spec: &AlarmSpec) -> String {
        spec.name.clone()
    }

    fn validate(_pass: &Pass, spec: &AlarmSpec) -> Result<()> {
        if spec.name.is_empty() || spec.name.len() > 255 || spec.name.chars().any(char::is_control) {
            return Err(Error::invalid("alarm.name", format!("{:?}", spec.name), "1 to 255 printable characters"));
        }
        if !(1..=1440).contains(&spec.periods) {
            return Err(Error::invalid("alarm.periods", spec.periods, "1 to 1440 one-minute periods"));
        }
        if !spec.threshold.is_finite() || spec.threshold < 0.0 {
            return Err(Error::invalid("alarm.threshold", spec.threshold, "a number of 0 or more"));
        }
        Ok(())
    }

    /// Read by name the first time a run converges it (CloudWatch lists alarms by name, not by
    /// tag), then found in the run's reads, where a create ahead of the script remembered it.
    fn find(pass: &Pass, spec: &AlarmSpec) -> Result<Option<Alarm>> {
        find_named(pass, KIND.0, &spec.name, async |aws| read_alarm(aws, &spec.name).await)
    }

    fn stack_of(live: &Alarm) -> Option<&str> {
        live.stack.as_deref()
    }

    fn planned(spec: &AlarmSpec, stack: &str) -> Alarm {
        Alarm {
            name: spec.name.clone(),
            arn: UNKNOWN.into(),
            metric: Some(spec.metric),
            dimension: dimension_of(&spec.load_balancer_arn),
            threshold: spec.threshold,
            periods: spec.periods,
            state: "INSUFFICIENT_DATA".into(),
            stack: Some(stack.to_string()),
        }
    }

    fn create(pass: &Pass, spec: &AlarmSpec, stack: &str) -> Result<Created<Alarm>> {
        pass.block(create(pass, spec, stack))
    }

    fn create_beside(
        pass: &Pass,
        spec: AlarmSpec,
        stack: String,
    ) -> Option<LocalBoxFuture<'_, Result<Created<Alarm>>>> {
        Some(Box::pin(async move { create(pass, &spec, &stack).await }))
    }

    fn diff(live: &Alarm, spec: &AlarmSpec) -> Drift<()> {
        let mut diffs = Vec::new();
        if live.metric != Some(spec.metric) {
            let before = live.metric.map_or_else(|| "(another metric)".to_string(), |m| m.to_string());
            diffs.push(FieldDiff::changed("metric", before, spec.metric));
        }
        let dimension = dimension_of(&spec.load_balancer_arn);
        if live.dimension != dimension {
            diffs.push(FieldDiff::changed("load_balancer", &live.dimension, dimension));
        }
        if live.threshold != spec.threshold {
            diffs.push(FieldDiff::changed("threshold", live.threshold, spec.threshold));
        }
        if live.periods != spec.periods {
            diffs.push(FieldDiff::changed("periods", live.periods, spec.periods));
        }
        Drift::of(diffs)
    }

    fn update(pass: &Pass, live: &Alarm, spec: &AlarmSpec, _: &()) -> Result<Alarm> {
        pass.apply(async |aws| put_alarm(aws, spec, None).await)?;
        Ok(Self::updated(live, spec))
    }

    fn updated(live: &Alarm, spec: &AlarmSpec) -> Alarm {
        Alarm {
            metric: Some(spec.metric),
            dimension: dimension_of(&spec.load_balancer_arn),
            threshold: spec.threshold,
            periods: spec.periods,
            ..live.clone()
        }
    }

    fn remember(snapshot: &mut Snapshot, live: &Alarm) {
        snapshot.named.put(KIND.0, &live.name, Some(live.clone()));
    }

    fn summary(live: &Alarm) -> String {
        let metric = live.metric.map_or_else(|| "(another metric)".to_string(), |m| m.to_string());
        format!("{metric} >= {} for {}m on {}", live.threshold, live.periods, live.dimension)
    }
}

/// Creates the alarm tagged with the stack (PutMetricAlarm, which returns nothing), then reads its
/// ARN back (DescribeAlarms: the tags it was just given need no second read).
async fn create(pass: &Pass, spec: &AlarmSpec, stack: &str) -> Result<Created<Alarm>> {
    pass.send(async |aws| put_alarm(aws, spec, Some(stack)).await).await?;
    let found = pass.send(async |aws| describe_alarm(aws, &spec.name).await).await?;
    let arn = found.and_then(|a| a.alarm_arn).ok_or_else(|| Error::missing("DescribeAlarms", "MetricAlarms"))?;
    Ok(Created::New(Alarm { arn, ..Alarm::planned(spec, stack) }))
}

/// The stack's alarms.
pub struct Alarms;

/// The alarm name in an alarm ARN (`arn:aws:cloudwatch:region:account:alarm:NAME`).
fn name_in(arn: &str) -> &str {
    Arn::of_type(arn, "cloudwatch", "alarm").map_or(arn, |arn| arn.resource_id())
}

impl StackKind for Alarms {
    fn kind(&self) -> Kind {
        KIND
    }

    /// After the services whose deployments name them.
    fn deleted_after(&self) -> &'static [&'static str] {
        &["service"]
    }

    fn list(&self, inventory: &Inventory) -> Vec<Entry> {
        let arns = inventory.snapshot.tagged.arns("cloudwatch", "alarm");
        arns.iter().map(|arn| Entry::new(KIND, Some(name_in(arn)), name_in(arn))).collect()
    }

    /// Deleted only when it still carries the stack's tag (the tagging index alone does not
    /// decide what is deleted).
    fn delete<'a>(&'a self, deleting: Deleting<'a>) -> Pending<'a, ()> {
        let Deleting { aws, inventory, entry, .. } = deleting;
        async move {
            let Some(alarm) = read_alarm(aws, &entry.name).await? else { return Ok(()) };
            if alarm.stack.as_deref() != Some(inventory.stack.as_str()) {
                return Err(Error::conflict(
                    format!("alarm {} is not part of stack {}", entry.name, inventory.stack),
                    None,
                ));
            }
            sent("DeleteAlarms", aws.cloudwatch.delete_alarms().alarm_names(&entry.name).send()).await
        }
        .boxed_local()
    }

    fn status<'a>(&'a self, showing: Showing<'a>) -> Pending<'a, Vec<Shown>> {
        let Showing { aws, entries, .. } = showing;
        async move {
            let read = concurrently(&entries, async |entry| read_alarm(aws, &entry.name).await).await?;
            let rows = entries.iter().zip(read).map(|(entry, alarm)| match alarm {
                Some(alarm) => Shown::of(entry, Some(&alarm.state), Alarm::summary(&alarm)),
                None => Shown::of(entry, None, String::new()),
            });
            Ok(rows.collect())
        }
        .boxed_local()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alarms_watch_the_whole_load_balancer() {
        let arn = "arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/app/web/50dc6c495c0c9188";
        assert_eq!(dimension_of(arn), "app/web/50dc6c495c0c9188");
        assert_eq!(dimension_of(UNKNOWN), UNKNOWN);
        assert_eq!(name_in("arn:aws:cloudwatch:us-west-2:123456789012:alarm:web-5xx"), "web-5xx");
        for name in METRICS {
            let metric = Metric::parse(name).unwrap();
            assert_eq!(Metric::from_metric_name(metric.metric_name()), Some(metric));
        }
        let query = unhealthy_query("app/web/50dc");
        assert_eq!(unhealthy_query_dimension(&query).as_deref(), Some("app/web/50dc"));
        assert_eq!(unhealthy_query_dimension("SELECT AVG(CPUUtilization) FROM x WHERE LoadBalancer = 'a'"), None);
    }
}
