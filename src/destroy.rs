//! Deleting a stack's resources (all of them for `deckhand destroy`, what the script no longer
//! declares for `deckhand run`), dependents first, retrying while AWS still releases dependencies.

use crate::aws::acm;
use crate::aws::autoscaling::{self, ScalableTarget};
use crate::aws::ec2::{self, SecurityGroup};
use crate::aws::ecs::{self, Service};
use crate::aws::egress::{self, RouteTable};
use crate::aws::elbv2;
use crate::aws::iam;
use crate::aws::inventory::{self, Entry, Inventory, Kind};
use crate::aws::logs;
use crate::aws::route53::{self, OwnedRecord};
use crate::error::{Error, Result};
use crate::poll::{Check, Wait};
use crate::runtime::Aws;
use crate::timing::{Clock, DEPENDENCY_PACE, DEPENDENCY_TIMEOUT};

/// Resources of a stack chosen for deletion (with what deleting them needs to know), and those
/// found but kept, with why.
pub struct StackContents {
    doomed: Vec<Entry>,
    kept: Vec<(Entry, String)>,
    groups: Vec<SecurityGroup>,
    route_tables: Vec<RouteTable>,
    services: Vec<Service>,
    records: Vec<OwnedRecord>,
    scalable_targets: Vec<ScalableTarget>,
    stack: String,
}

impl StackContents {
    /// The whole stack (its [`Inventory`]), to delete: everything but what
    /// [`Inventory::kept_because`] keeps (log groups unless `delete_logs`, roles in use in
    /// another region).
    pub fn find(aws: &Aws, stack: &str, delete_logs: bool) -> Result<StackContents> {
        let inventory = aws.block_on(Inventory::read(aws, stack))?;
        let (mut doomed, mut kept) = (Vec::new(), Vec::new());
        for entry in &inventory.entries {
            match inventory.kept_because(entry, delete_logs) {
                Some(why) => kept.push((entry.clone(), why)),
                None => doomed.push(entry.clone()),
            }
        }
        Ok(StackContents::of(inventory, doomed, kept))
    }

    /// These entries of `inventory` to delete and these kept, each in the inventory's deletion
    /// order (as its entries come: an ownership marker after the records it marks, a family's
    /// revisions in numeric order).
    pub fn of(inventory: Inventory, doomed: Vec<Entry>, kept: Vec<(Entry, String)>) -> StackContents {
        let doomed_id = |kind: Kind, id: &str| doomed.iter().any(|d| d.kind == kind && d.id == id);
        let groups = inventory.security_groups.into_iter().filter(|g| doomed_id(Kind::SecurityGroup, &g.id)).collect();
        let route_tables = inventory.route_tables.into_iter().filter(|t| doomed_id(Kind::RouteTable, &t.id)).collect();
        let services = inventory.services.into_iter().filter(|s| doomed_id(Kind::Service, &s.arn)).collect();
        let records =
            inventory.records.into_iter().filter(|r| doomed_id(Kind::DnsRecord, &inventory::record_id(r))).collect();
        let scalable_targets =
            inventory.scalable_targets.into_iter().filter(|t| doomed_id(Kind::Autoscaling, &t.resource_id)).collect();
        StackContents {
            doomed,
            kept,
            groups,
            route_tables,
            services,
            records,
            scalable_targets,
            stack: inventory.stack,
        }
    }

    /// The resources to delete, in deletion order.
    pub fn resources(&self) -> &[Entry] {
        &self.doomed
    }

    /// The resources found but kept, with why (log groups without `--delete-logs`, roles in use
    /// in another region).
    pub fn kept(&self) -> &[(Entry, String)] {
        &self.kept
    }

    /// One line per resource found, in deletion order: `- kind name (id)` for each to delete,
    /// `= kind name (id) (kept; why)` for each kept.
    pub fn listing(&self) -> Vec<String> {
        let mut all: Vec<(&Entry, Option<&str>)> = self
            .doomed
            .iter()
            .map(|d| (d, None))
            .chain(self.kept.iter().map(|(d, why)| (d, Some(why.as_str()))))
            .collect();
        all.sort_by_key(|(d, _)| d.kind);
        all.into_iter()
            .map(|(d, kept)| match kept {
                Some(why) => format!("= {d} (kept; {why})"),
                None => format!("- {d}"),
            })
            .collect()
    }

    /// Deletes everything in order, reporting each deletion and the progress of long waits; stops
    /// at the first failure with a report of what was and was not deleted. Services are deleted
    /// together and drain concurrently (each drain takes at least its target group's
    /// deregistration delay); everything else goes one by one.
    pub fn delete(&self, aws: &Aws, report: impl Fn(&str)) -> Result<usize> {
        let mut deleted: Vec<&Entry> = Vec::new();
        let mut revoked = false;
        let mut rest = self.doomed.as_slice();
        while let Some(first) = rest.first() {
            let together = match first.kind {
                Kind::Service => rest.iter().take_while(|d| d.kind == Kind::Service).count(),
                _ => 1,
            };
            let (batch, after) = rest.split_at(together);
            let results = aws.block_on(async {
                if first.kind == Kind::SecurityGroup && !revoked {
                    ec2::revoke_group_references(aws, &self.groups).await?;
                    revoked = true;
                }
                let report = &report;
                let deletions = batch.iter().map(|doomed| async move {
                    let result = self.delete_one(aws, doomed, report).await;
                    if result.is_ok() {
                        report(&format!("- {doomed} deleted"));
                    }
                    result
                });
                Ok(futures_util::future::join_all(deletions).await)
            });
            // A failed revocation fails the (one) security group of its batch.
            let results = results.unwrap_or_else(|err: Error| vec![Err(err)]);
            let mut left: Vec<&Entry> = Vec::new();
            let mut cause = None;
            for (doomed, result) in batch.iter().zip(results) {
                match result {
                    Ok(()) => deleted.push(doomed),
                    Err(err) => {
                        left.push(doomed);
                        cause.get_or_insert(err);
                    }
                }
            }
            if let Some(err) = cause {
                left.extend(after);
                return Err(failure_report(&err, &deleted, &left));
            }
            rest = after;
        }
        Ok(deleted.len())
    }

    async fn delete_one(&self, aws: &Aws, doomed: &Entry, report: &impl Fn(&str)) -> Result<()> {
        let id = doomed.id.as_str();
        match doomed.kind {
            Kind::DnsRecord => {
                let record = self.records.iter().find(|r| inventory::record_id(r) == id).expect("listed above");
                route53::delete_record(aws, &self.stack, record).await
            }
            Kind::Autoscaling => {
                let target = self.scalable_targets.iter().find(|t| t.resource_id == id).expect("listed above");
                autoscaling::delete_scalable_target(aws, target).await
            }
            Kind::Service => {
                let service = self.services.iter().find(|s| s.arn == id).expect("listed above");
                // A DRAINING service was deleted by an earlier run: only wait for it.
                if service.status == "ACTIVE" {
                    ecs::delete_service(aws, &service.cluster_arn, id).await?;
                }
                let inactive =
                    async |r: &dyn Fn(&str)| ecs::wait_service_inactive(aws, &service.cluster_arn, id, r).await;
                waiting(doomed, "it is INACTIVE (its tasks stopped)", report, inactive).await
            }
            Kind::TaskDefinition => ecs::deregister_task_definition(aws, id).await,
            Kind::Cluster => ecs::delete_cluster(aws, id).await,
            Kind::ListenerRule => elbv2::delete_rule(aws, id).await,
            Kind::Listener => elbv2::delete_listener(aws, id).await,
            Kind::LoadBalancer => {
                elbv2::delete_load_balancer(aws, id).await?;
                let gone = async |r: &dyn Fn(&str)| elbv2::wait_load_balancer_deleted(aws, id, r).await;
                waiting(doomed, "it is gone", report, gone).await
            }
            // A target group stays in use for a moment after its load balancer is gone.
            Kind::TargetGroup => {
                retry_while(aws.clock(), doomed, report, "ResourceInUse", async || {
                    elbv2::delete_target_group(aws, id).await
                })
                .await
            }
            // ACM reports a certificate in use for a moment after its last listener is deleted.
            Kind::Certificate => {
                retry_while(aws.clock(), doomed, report, "ResourceInUseException", async || {
                    acm::delete_certificate(aws, id).await
                })
                .await
            }
            Kind::NatGateway => {
                let deleted = async |r: &dyn Fn(&str)| egress::delete_nat_gateway(aws, id, r).await;
                waiting(doomed, "it is deleted", report, deleted).await
            }
            Kind::ElasticIp => egress::release_address(aws, id).await,
            Kind::VpcEndpoint => egress::delete_endpoint(aws, id).await,
            Kind::RouteTable => {
                let table = self.route_tables.iter().find(|t| t.id == id).expect("listed above");
                egress::delete_route_table(aws, table).await
            }
            Kind::SecurityGroup => {
                retry_while(aws.clock(), doomed, report, "DependencyViolation", async || {
                    ec2::delete_security_group(aws, id).await
                })
                .await
            }
            Kind::Subnet => {
                retry_while(aws.clock(), doomed, report, "DependencyViolation", async || {
                    ec2::delete_subnet(aws, id).await
                })
                .await
            }
            Kind::LogGroup => logs::delete_log_group(aws, id).await,
            Kind::Role => iam::delete_role(aws, id).await,
        }
    }
}

/// The error of a destroy that stopped at `left[0]`: the cause, what was deleted, what was not.
fn failure_report(err: &Error, deleted: &[&Entry], left: &[&Entry]) -> Error {
    let list = |items: &[&Entry]| items.iter().map(|d| format!("\n  {d}")).collect::<String>();
    let deleted = match deleted.len() {
        0 => "nothing deleted".to_string(),
        n => format!("deleted ({n}):{}", list(deleted)),
    };
    let failed = left.first().map(ToString::to_string).unwrap_or_default();
    Error::conflict(
        format!("deleting {failed} failed: {err}\n{deleted}\nnot deleted ({}):{}", left.len(), list(left)),
        Some("fix the cause, then run the same destroy again: it continues where it stopped"),
    )
}

/// Says that deleting `doomed` now waits until `until`, then runs `wait` (the polling helper's
/// progress lines indented under that line).
async fn waiting<T>(
    doomed: &Entry,
    until: &str,
    report: &impl Fn(&str),
    wait: impl AsyncFnOnce(&dyn Fn(&str)) -> Result<T>,
) -> Result<T> {
    report(&format!("  {doomed}: waiting until {until}"));
    let indented = |line: &str| report(&format!("    {line}"));
    wait(&indented).await
}

/// Retries `delete` while AWS answers `code` (e.g. `DependencyViolation`: network interfaces of
/// stopped tasks or a deleted load balancer are still being released), with backoff (2 s growing
/// to 30 s), for up to 15 minutes ([`DEPENDENCY_TIMEOUT`]), then fails with AWS's last answer.
/// The SDK's own retry cannot serve here: it retries transient and throttling errors for
/// seconds, while these are successful answers saying a dependency still exists, which AWS
/// takes minutes to release.
async fn retry_while(
    clock: &Clock,
    doomed: &Entry,
    report: &impl Fn(&str),
    code: &str,
    delete: impl AsyncFn() -> Result<()>,
) -> Result<()> {
    let indented = |line: &str| report(&format!("  {line}"));
    Wait::new(clock, "dependencies released", format!("{doomed} to be free"), DEPENDENCY_PACE, DEPENDENCY_TIMEOUT)
        .report_to(&indented)
        .until(async |_| match delete().await {
            Ok(()) => Ok(Check::Done(())),
            Err(err) if err.aws_code() == Some(code) => Ok(Check::waiting_or(format!("still in use ({code})"), err)),
            Err(err) => Err(err),
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws_error(code: &str) -> Error {
        Error::Aws { operation: "DeleteSubnet".into(), code: code.into(), message: "in use".into(), hint: None }
    }

    #[test]
    fn deletes_are_retried_while_aws_says_in_use_and_other_errors_end_at_once() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let doomed = doomed(Kind::Subnet, "myapp-a", "subnet-1");
        let reports = std::cell::RefCell::new(Vec::new());
        let report = |line: &str| reports.borrow_mut().push(line.to_string());
        let attempts = std::cell::Cell::new(0);
        let in_use_once = async || {
            attempts.set(attempts.get() + 1);
            if attempts.get() == 1 { Err(aws_error("DependencyViolation")) } else { Ok(()) }
        };
        let clock = Clock::new(Some(crate::timing::TimeScale::parse("0.001").unwrap()));
        runtime.block_on(retry_while(&clock, &doomed, &report, "DependencyViolation", in_use_once)).unwrap();
        assert_eq!(attempts.get(), 2);
        assert_eq!(
            reports.take(),
            ["  waiting for subnet myapp-a (subnet-1) to be free: still in use (DependencyViolation) (0 s)"]
        );

        attempts.set(0);
        let denied = async || {
            attempts.set(attempts.get() + 1);
            Err(aws_error("UnauthorizedOperation"))
        };
        let err = runtime.block_on(retry_while(&clock, &doomed, &report, "DependencyViolation", denied)).unwrap_err();
        assert_eq!((attempts.get(), err.aws_code()), (1, Some("UnauthorizedOperation")));
        assert!(reports.take().is_empty());
    }

    fn doomed(kind: Kind, name: &str, id: &str) -> Entry {
        Entry { kind, name: name.into(), id: id.into(), part_of: None }
    }

    #[test]
    fn resources_are_deleted_in_the_inventory_order_a_marker_after_its_records() {
        let record = doomed(Kind::DnsRecord, "app.example.com A", "z/app.example.com./A");
        let marker = Entry {
            part_of: Some((Kind::DnsRecord, "app.example.com *".into())),
            ..doomed(Kind::DnsRecord, "_deckhand.app.example.com TXT", "z/_deckhand.app.example.com./TXT")
        };
        let revisions = [doomed(Kind::TaskDefinition, "web", "web:9"), doomed(Kind::TaskDefinition, "web", "web:10")];
        let entries: Vec<Entry> = [record, marker].into_iter().chain(revisions).collect();
        let inventory = Inventory {
            stack: "web".into(),
            entries: entries.clone(),
            snapshot: crate::aws::Snapshot::default(),
            services: Vec::new(),
            records: Vec::new(),
            certificates: Vec::new(),
            scalable_targets: Vec::new(),
            security_groups: Vec::new(),
            route_tables: Vec::new(),
            roles: Vec::new(),
            log_groups: Vec::new(),
            roles_used_elsewhere: std::collections::HashMap::new(),
        };
        // A destroy that stops after the marker would leave records no later run knows as the stack's.
        assert_eq!(StackContents::of(inventory, entries.clone(), Vec::new()).resources(), entries);
    }

    #[test]
    fn a_failure_midway_names_the_cause_what_was_deleted_and_what_was_not() {
        let all = [
            doomed(Kind::Service, "web", "arn:aws:ecs:us-west-2:123456789012:service/web/web"),
            doomed(Kind::Cluster, "web", "arn:aws:ecs:us-west-2:123456789012:cluster/web"),
            doomed(Kind::Subnet, "web-a", "subnet-1"),
        ];
        let cause = Error::Aws {
            operation: "DeleteCluster".into(),
            code: "ClusterContainsServicesException".into(),
            message: "The Cluster cannot be deleted while Services are active.".into(),
            hint: None,
        };
        let all: Vec<&Entry> = all.iter().collect();
        let text = failure_report(&cause, &all[..1], &all[1..]).to_string();
        assert_eq!(
            text,
            "deleting cluster web (cluster/web) failed: DeleteCluster failed: ClusterContainsServicesException: \
             The Cluster cannot be deleted while Services are active.\n\
             deleted (1):\n  service web (service/web/web)\n\
             not deleted (2):\n  cluster web (cluster/web)\n  subnet web-a (subnet-1)\n  \
             hint: fix the cause, then run the same destroy again: it continues where it stopped"
        );
        let first = failure_report(&cause, &[], &all).to_string();
        assert!(first.contains("\nnothing deleted\nnot deleted (3):\n  service web"), "{first}");
    }
}
