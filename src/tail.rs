//! `deckhand logs`: a stack's service logs from CloudWatch Logs (the awslogs group and stream
//! prefix of each service's task definition), printed once or followed until Ctrl-C.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::try_join_all;

use crate::aws::ecs::EcsState;
use crate::aws::queries::{self, LogEvent, LogSource};
use crate::error::{Error, Result};
use crate::runtime::Aws;
use crate::timing::LOG_FOLLOW_PACE;

/// The shortest and longest pause between polls when following (see the table in `timing`).
const POLL_MIN: Duration = LOG_FOLLOW_PACE.first;
const POLL_MAX: Duration = LOG_FOLLOW_PACE.max;

/// How `deckhand logs` reads.
#[derive(Debug, Clone)]
pub struct TailOptions {
    /// How far back to start.
    pub since: Duration,
    /// Keep polling for new events.
    pub follow: bool,
}

/// Finds the log sources of the stack's services (one read of the stack's clusters and services,
/// then their task definitions concurrently).
pub async fn log_sources(aws: &Aws, stack: &str, service: Option<&str>) -> Result<Vec<LogSource>> {
    let ecs = EcsState::load(aws, stack).await?;
    let services: Vec<_> = ecs
        .services
        .values()
        .flatten()
        .filter(|s| s.stack.as_deref() == Some(stack) && s.status != "INACTIVE")
        .collect();
    let chosen: Vec<_> = services.iter().filter(|s| service.is_none_or(|name| s.name == name)).collect();
    if let Some(name) = service
        && chosen.is_empty()
    {
        let mut names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
        names.sort();
        let known = if names.is_empty() { "none".to_string() } else { names.join(", ") };
        return Err(Error::invalid("--service", format!("{name:?}"), format!("a service of stack {stack}: {known}")));
    }
    let arns: Vec<String> = chosen.iter().map(|s| s.task_definition.clone()).collect();
    let tasks = queries::task_definitions(aws, &arns).await?;
    let mut sources: Vec<LogSource> = arns.iter().filter_map(|a| tasks.get(a)).flat_map(queries::log_sources).collect();
    sources.sort_by(|a, b| (&a.group, &a.stream_prefix).cmp(&(&b.group, &b.stream_prefix)));
    sources.dedup();
    if sources.is_empty() && !chosen.is_empty() {
        return Err(Error::conflict(
            format!("the services of stack {stack} send no logs to CloudWatch Logs (no awslogs log configuration)"),
            Some("give the container `logs: log_group(...)` in the task definition"),
        ));
    }
    Ok(sources)
}

/// Prints the events of `sources` since `options.since`, each line prefixed with its stream;
/// with `options.follow`, keeps polling (1 to 5 s apart) and never returns unless AWS fails.
pub fn tail(aws: &Aws, options: &TailOptions, sources: &[LogSource], mut print: impl FnMut(&str)) -> Result<usize> {
    let mut start = now_millis() - i64::try_from(options.since.as_millis()).unwrap_or(i64::MAX / 2);
    let mut seen_at_start: HashSet<String> = HashSet::new();
    let mut printed = 0;
    let mut pause = POLL_MIN;
    loop {
        let batches = aws.block_on(try_join_all(
            sources.iter().map(|s| queries::log_events(aws, &s.group, &s.stream_prefix, start, usize::MAX)),
        ))?;
        let mut events: Vec<LogEvent> =
            batches.into_iter().flatten().filter(|e| !seen_at_start.contains(&e.id)).collect();
        events.sort_by_key(|e| e.timestamp);
        for event in &events {
            print(&format!("{} {}", event.stream, event.message));
        }
        printed += events.len();
        if !options.follow {
            return Ok(printed);
        }
        if let Some(last) = events.last().map(|e| e.timestamp) {
            // The next poll starts at the newest timestamp seen (inclusive), skipping the events
            // already printed there, so events sharing a millisecond are neither lost nor doubled.
            if last > start {
                seen_at_start.clear();
                start = last;
            }
            seen_at_start.extend(events.iter().filter(|e| e.timestamp == start).map(|e| e.id.clone()));
            pause = POLL_MIN;
        } else {
            pause = (pause * 2).min(POLL_MAX);
        }
        // Not a wait that ends (it follows until Ctrl-C), so no Wait: only its pause is scaled.
        aws.block_on(aws.clock().sleep(pause));
    }
}

fn now_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_millis()).unwrap_or(0)).unwrap_or(0)
}
