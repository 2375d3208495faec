//! CloudWatch Logs log groups: retention, the stack tag, and how a log group converges.

use std::collections::HashMap;

use futures_util::future::LocalBoxFuture;

use crate::aws::Pass;
use crate::aws::Snapshot;
use crate::converge::{Created, Drift, Resource};
use crate::error::{Error, Result, aws_error, sent};
use crate::plan::{FieldDiff, UNKNOWN};
use crate::runtime::Aws;
use crate::tagged::Keepable;
use crate::tagged::STACK_TAG;

/// The retention periods (days) CloudWatch Logs accepts.
pub const RETENTION_DAYS: &[i32] =
    &[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

/// A log group as it exists (or will exist) in AWS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogGroup {
    /// The log group name, e.g. `/ecs/myapp`.
    pub name: String,
    /// Its ARN (without the `:*` suffix), or [`UNKNOWN`] before creation.
    pub arn: String,
    /// Days events are kept; `None` keeps them forever.
    pub retention_days: Option<i32>,
    /// Its `deckhand:stack` tag.
    pub stack: Option<String>,
}

/// What a script asks of a log group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogGroupSpec {
    /// The log group name.
    pub name: String,
    /// Days to keep events (one of [`RETENTION_DAYS`]); `None` keeps them forever.
    pub retention_days: Option<i64>,
}

/// The Logs part of a run's snapshot: log groups looked up by name, read up front for the names a
/// script declares ([`crate::aws::Declared`]), else on demand.
#[derive(Debug, Default, Clone)]
pub struct LogsState {
    /// Log groups by name (`None`: no such group).
    pub groups: HashMap<String, Option<LogGroup>>,
}

impl LogsState {
    /// Reads the log groups named `names` with their tags, concurrently.
    pub async fn load(aws: &Aws, names: &[String]) -> Result<LogsState> {
        let groups = crate::aws::concurrently(names, |name| fetch_log_group(aws, name)).await?;
        Ok(LogsState { groups: names.iter().cloned().zip(groups).collect() })
    }
}

/// Checks a log group name: 1 to 512 characters of `A-Za-z0-9 . - _ / #`, not starting with `aws/`.
pub fn validate_log_group_name(key: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 512
        && name.chars().all(|c| c.is_ascii_alphanumeric() || ".-_/#".contains(c))
        && !name.starts_with("aws/");
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            key,
            format!("{name:?}"),
            "1 to 512 characters of A-Z a-z 0-9 . - _ / #, not starting with \"aws/\" (e.g. \"/ecs/myapp\")",
        ))
    }
}

/// Checks a retention period against the values CloudWatch Logs accepts.
pub fn validate_retention(key: &str, days: Option<i64>) -> Result<Option<i32>> {
    let Some(days) = days else { return Ok(None) };
    match RETENTION_DAYS.iter().find(|d| i64::from(**d) == days) {
        Some(d) => Ok(Some(*d)),
        None => {
            let allowed: Vec<String> = RETENTION_DAYS.iter().map(ToString::to_string).collect();
            Err(Error::invalid(key, days, format!("one of {} (days), or () to never expire", allowed.join(", "))))
        }
    }
}

/// Reads a log group and its tags; `None` when there is no such group.
pub async fn fetch_log_group(aws: &Aws, name: &str) -> Result<Option<LogGroup>> {
    let Some(mut group) = describe_log_group(aws, name).await? else { return Ok(None) };
    let tags = aws
        .logs
        .list_tags_for_resource()
        .resource_arn(&group.arn)
        .send()
        .await
        .map_err(|e| aws_error("ListTagsForResource", e))?;
    group.stack = tags.tags().and_then(|t| t.get(STACK_TAG)).cloned();
    Ok(Some(group))
}

/// Reads a log group without its tags.
async fn describe_log_group(aws: &Aws, name: &str) -> Result<Option<LogGroup>> {
    // Log groups are listed by name: every other group with this prefix sorts after the exact
    // name, so the first page holds it if it exists.
    let out = aws
        .logs
        .describe_log_groups()
        .log_group_name_prefix(name)
        .send()
        .await
        .map_err(|e| aws_error("DescribeLogGroups", e))?;
    let Some(group) = out.log_groups().iter().find(|g| g.log_group_name() == Some(name)) else { return Ok(None) };
    Ok(Some(LogGroup {
        name: name.to_string(),
        arn: group_arn(group)?,
        retention_days: group.retention_in_days(),
        stack: None,
    }))
}

/// A described log group's ARN, without the `:*` that `arn` carries.
fn group_arn(group: &aws_sdk_cloudwatchlogs::types::LogGroup) -> Result<String> {
    group
        .log_group_arn()
        .map(str::to_string)
        .or_else(|| group.arn().map(|a| a.trim_end_matches(":*").to_string()))
        .ok_or_else(|| Error::missing("DescribeLogGroups", "logGroupArn"))
}

/// The log group named `name`, from the run's cache or read once (nothing in check mode).
fn lookup_log_group(pass: &Pass, name: &str) -> Result<Option<LogGroup>> {
    let snapshot = pass.snapshot()?;
    if let Some(found) = snapshot.borrow().logs.groups.get(name) {
        return Ok(found.clone());
    }
    let Some(found) = pass.read(async |aws| fetch_log_group(aws, name).await) else { return Ok(None) };
    let found = found?;
    pass.remember_read(|s| {
        s.logs.groups.insert(name.to_string(), found.clone());
    })?;
    Ok(found)
}

fn show_retention(days: Option<i32>) -> String {
    days.map(|d| format!("{d} days")).unwrap_or_else(|| "never expire".to_string())
}

/// A log group converges by name (it must carry this stack's tag); its retention policy is set or
/// removed in place.
impl Resource for LogGroup {
    type Reads = Snapshot;
    type Spec = LogGroupSpec;
    type Update = ();
    const KIND: &'static str = "log_group";

    fn keepable(live: &LogGroup) -> Option<Keepable> {
        Some(Keepable::Logs { name: live.name.clone(), arn: live.arn.clone() })
    }

    fn name(spec: &LogGroupSpec) -> String {
        spec.name.clone()
    }

    fn validate(_pass: &Pass, spec: &LogGroupSpec) -> Result<()> {
        validate_log_group_name("log_group.name", &spec.name)?;
        validate_retention("log_group.retention_days", spec.retention_days).map(drop)
    }

    fn find(pass: &Pass, spec: &LogGroupSpec) -> Result<Option<LogGroup>> {
        lookup_log_group(pass, &spec.name)
    }

    fn stack_of(live: &LogGroup) -> Option<&str> {
        live.stack.as_deref()
    }

    fn planned(spec: &LogGroupSpec, stack: &str) -> LogGroup {
        LogGroup {
            name: spec.name.clone(),
            arn: UNKNOWN.into(),
            retention_days: retention(spec),
            stack: Some(stack.to_string()),
        }
    }

    fn create(pass: &Pass, spec: &LogGroupSpec, stack: &str) -> Result<Created<LogGroup>> {
        pass.block(create(pass, spec, stack))
    }

    fn create_beside(
        pass: &Pass,
        spec: LogGroupSpec,
        stack: String,
    ) -> Option<LocalBoxFuture<'_, Result<Created<LogGroup>>>> {
        Some(Box::pin(async move { create(pass, &spec, &stack).await }))
    }

    fn diff(live: &LogGroup, spec: &LogGroupSpec) -> Drift<()> {
        let wanted = retention(spec);
        if live.retention_days == wanted {
            return Drift::none();
        }
        Drift::of(vec![FieldDiff::changed(
            "retention_days",
            show_retention(live.retention_days),
            show_retention(wanted),
        )])
    }

    fn update(pass: &Pass, live: &LogGroup, spec: &LogGroupSpec, _: &()) -> Result<LogGroup> {
        set_retention(pass, &spec.name, retention(spec))?;
        Ok(Self::updated(live, spec))
    }

    fn updated(live: &LogGroup, spec: &LogGroupSpec) -> LogGroup {
        LogGroup { retention_days: retention(spec), ..live.clone() }
    }

    fn remember(snapshot: &mut Snapshot, live: &LogGroup) {
        snapshot.logs.groups.insert(live.name.clone(), Some(live.clone()));
    }

    fn summary(live: &LogGroup) -> String {
        format!("{}, {}", live.arn, show_retention(live.retention_days))
    }
}

/// Creates the log group with the spec's retention, or finds one created meanwhile.
async fn create(pass: &Pass, spec: &LogGroupSpec, stack: &str) -> Result<Created<LogGroup>> {
    let retention = retention(spec);
    match create_log_group(pass, &spec.name, stack, retention).await? {
        Some(created) => {
            Ok(Created::New(LogGroup { retention_days: retention, stack: Some(stack.to_string()), ..created }))
        }
        // Created meanwhile (e.g. by a concurrent run): converged like any found group.
        None => pass
            .send(async |aws| fetch_log_group(aws, &spec.name).await)
            .await?
            .map(Created::Existing)
            .ok_or_else(|| Error::conflict(format!("log group {} vanished while creating it", spec.name), None)),
    }
}

/// The retention the spec asks for (validated before use).
fn retention(spec: &LogGroupSpec) -> Option<i32> {
    spec.retention_days.and_then(|d| i32::try_from(d).ok())
}

/// Creates the log group tagged with the stack (log group names may hold `#`, which tag values
/// cannot, so there is no Name tag), then reads its ARN back and sets its retention, together (one
/// round: neither needs the other); `None` when a group with this name exists already.
async fn create_log_group(pass: &Pass, name: &str, stack: &str, retention: Option<i32>) -> Result<Option<LogGroup>> {
    let created = pass
        .send(async |aws| Ok(aws.logs.create_log_group().log_group_name(name).tags(STACK_TAG, stack).send().await))
        .await?;
    match created {
        Ok(_) => {
            // CreateLogGroup returns nothing; read the ARN back.
            let (found, ()) = pass
                .send(async |aws| {
                    let retained = async {
                        match retention {
                            Some(days) => {
                                let put = aws.logs.put_retention_policy().log_group_name(name).retention_in_days(days);
                                sent("PutRetentionPolicy", put.send()).await
                            }
                            None => Ok(()),
                        }
                    };
                    tokio::try_join!(describe_log_group(aws, name), retained)
                })
                .await?;
            let group = found
                .ok_or_else(|| Error::conflict(format!("log group {name} was created but cannot be found"), None))?;
            Ok(Some(group))
        }
        Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_already_exists_exception()) => Ok(None),
        Err(e) => Err(aws_error("CreateLogGroup", e)),
    }
}

fn set_retention(pass: &Pass, name: &str, retention: Option<i32>) -> Result<()> {
    pass.apply(async |aws| match retention {
        Some(days) => {
            sent(
                "PutRetentionPolicy",
                aws.logs.put_retention_policy().log_group_name(name).retention_in_days(days).send(),
            )
            .await
        }
        None => sent("DeleteRetentionPolicy", aws.logs.delete_retention_policy().log_group_name(name).send()).await,
    })
}

// Deletion (deckhand destroy)

/// Every log group of the region, without tags (DescribeLogGroups, 50 per page).
pub async fn list_log_groups(aws: &Aws) -> Result<Vec<LogGroup>> {
    let mut pages = aws.logs.describe_log_groups().into_paginator().items().send();
    let mut groups = Vec::new();
    while let Some(group) = pages.next().await {
        let group = group.map_err(|e| aws_error("DescribeLogGroups", e))?;
        let name = group.log_group_name().ok_or_else(|| Error::missing("DescribeLogGroups", "logGroupName"))?;
        groups.push(LogGroup {
            name: name.to_string(),
            arn: group_arn(&group)?,
            retention_days: group.retention_in_days(),
            stack: None,
        });
    }
    Ok(groups)
}

/// The stack's log groups. CloudWatch Logs cannot list by tag either: every group is listed
/// (DescribeLogGroups, 50 a page) and its tags read (ListTagsForResource): for N groups,
/// ceil(N/50) + N requests, [`crate::aws::LOOKUPS_AT_ONCE`] at a time. Used by `status` and
/// `destroy` alike.
pub async fn stack_log_groups(aws: &Aws, stack: &str) -> Result<Vec<LogGroup>> {
    let groups = list_log_groups(aws).await?;
    let stacks = crate::aws::concurrently(&groups, |group| log_group_stack(aws, &group.arn)).await?;
    Ok(groups
        .into_iter()
        .zip(stacks)
        .filter(|(_, s)| s.as_deref() == Some(stack))
        .map(|(mut g, s)| {
            g.stack = s;
            g
        })
        .collect())
}

/// The `deckhand:stack` tag of a log group (one ListTagsForResource); `None` when untagged or gone.
pub async fn log_group_stack(aws: &Aws, arn: &str) -> Result<Option<String>> {
    match aws.logs.list_tags_for_resource().resource_arn(arn).send().await {
        Ok(out) => Ok(out.tags().and_then(|t| t.get(STACK_TAG)).cloned()),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => Ok(None),
        Err(e) => Err(aws_error("ListTagsForResource", e)),
    }
}

/// Deletes a log group with all its events.
pub async fn delete_log_group(aws: &Aws, name: &str) -> Result<()> {
    sent("DeleteLogGroup", aws.logs.delete_log_group().log_group_name(name).send()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_must_be_a_value_cloudwatch_accepts() {
        assert_eq!(validate_retention("r", Some(30)).unwrap(), Some(30));
        assert_eq!(validate_retention("r", None).unwrap(), None);
        let err = validate_retention("log_group.retention_days", Some(42)).unwrap_err().to_string();
        assert!(err.starts_with("invalid log_group.retention_days 42: one of 1, 3, 5, 7, 14, 30,"), "{err}");
        assert!(err.contains("3653 (days), or () to never expire"), "{err}");
    }

    #[test]
    fn log_group_names_follow_cloudwatch_rules() {
        assert!(validate_log_group_name("n", "/ecs/my_app-1.0#x").is_ok());
        assert!(validate_log_group_name("n", "").is_err());
        assert!(validate_log_group_name("n", "has space").is_err());
        assert!(validate_log_group_name("n", "aws/reserved").is_err());
        assert!(validate_log_group_name("n", &"x".repeat(513)).is_err());
    }
}
