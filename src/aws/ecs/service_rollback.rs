//! What rolling a service back reads and asks of ECS, through its record of deployments ("View
//! service history using Amazon ECS service deployments", service-deployment.html; 90 days of
//! them, those created since 25 October 2024): the deployment in progress, which
//! StopServiceDeployment(ROLLBACK) rolls back ("rolls back the service deployment to the previous
//! service revision", API_StopServiceDeployment), and the task definition of the last deployment
//! that completed (SUCCESSFUL) before the current one, read from its target service revision
//! (DescribeServiceRevisions).

use aws_sdk_ecs::types::{ServiceDeploymentStatus, StopServiceDeploymentStopType};

use crate::error::{Error, Result, aws_error};
use crate::runtime::Aws;

/// The statuses of a deployment that has not finished: "Pending" and "Ongoing"
/// (service-deployment.html's stages). Completed ones are SUCCESSFUL, STOPPED,
/// ROLLBACK_SUCCESSFUL or ROLLBACK_FAILED.
const UNFINISHED: [ServiceDeploymentStatus; 5] = [
    ServiceDeploymentStatus::Pending,
    ServiceDeploymentStatus::InProgress,
    ServiceDeploymentStatus::StopRequested,
    ServiceDeploymentStatus::RollbackRequested,
    ServiceDeploymentStatus::RollbackInProgress,
];

/// DescribeServiceRevisions takes at most 20 ARNs a request (its API reference).
const REVISIONS_PER_REQUEST: usize = 20;

/// One service deployment, as ListServiceDeployments lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceDeploymentEntry {
    /// Its ARN (`...:service-deployment/<cluster>/<service>/<id>`).
    pub arn: String,
    /// `PENDING`, `IN_PROGRESS`, `SUCCESSFUL`, `ROLLBACK_IN_PROGRESS`, ...
    pub status: String,
    /// Why it is in that status, when ECS says.
    pub reason: String,
    /// The service revision it deploys.
    pub target_revision: Option<String>,
    /// When it was created (seconds since the epoch).
    pub created: f64,
}

impl ServiceDeploymentEntry {
    /// Whether it still runs and can be stopped with a rollback (PENDING or IN_PROGRESS; one that
    /// is already stopping or rolling back continues, stop-service-deployment.html).
    pub fn can_roll_back(&self) -> bool {
        matches!(self.status.as_str(), "PENDING" | "IN_PROGRESS")
    }

    /// The short id ECS shows (the ARN's last segment).
    pub fn id(&self) -> &str {
        crate::arn::last_segment(&self.arn)
    }
}

/// A service revision: what one deployment deployed (DescribeServiceRevisions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRevision {
    /// Its ARN.
    pub arn: String,
    /// The task definition ARN it runs.
    pub task_definition: String,
    /// Its containers' images, as `name=image`.
    pub images: Vec<String>,
}

/// The service's deployments in `statuses` (every status when empty), newest first: every page of
/// ListServiceDeployments (the SDK has no paginator for it). Its order is not documented, so
/// they are sorted by creation time here.
pub async fn service_deployments(
    aws: &Aws,
    cluster: &str,
    service: &str,
    statuses: &[ServiceDeploymentStatus],
) -> Result<Vec<ServiceDeploymentEntry>> {
    let mut found = Vec::new();
    let mut token = None;
    loop {
        let page = aws
            .ecs
            .list_service_deployments()
            .cluster(cluster)
            .service(service)
            .set_status((!statuses.is_empty()).then(|| statuses.to_vec()))
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| aws_error("ListServiceDeployments", e))?;
        for d in page.service_deployments() {
            let arn = d
                .service_deployment_arn()
                .ok_or_else(|| Error::missing("ListServiceDeployments", "serviceDeploymentArn"))?;
            found.push(ServiceDeploymentEntry {
                arn: arn.to_string(),
                status: d.status().map(|s| s.as_str().to_string()).unwrap_or_default(),
                reason: d.status_reason().unwrap_or_default().to_string(),
                target_revision: d.target_service_revision_arn().map(str::to_string),
                created: d.created_at().or(d.started_at()).map_or(0.0, |t| t.as_secs_f64()),
            });
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    found.sort_by(|a, b| b.created.total_cmp(&a.created));
    Ok(found)
}

/// The service's newest deployment that has not finished (pending, in progress, stopping or
/// rolling back), if any.
pub async fn unfinished_deployment(aws: &Aws, cluster: &str, service: &str) -> Result<Option<ServiceDeploymentEntry>> {
    Ok(service_deployments(aws, cluster, service, &UNFINISHED).await?.into_iter().next())
}

/// The service revisions `arns` (those ECS still describes: none created before 25 October 2024),
/// 20 a request.
pub async fn service_revisions(aws: &Aws, arns: &[String]) -> Result<Vec<ServiceRevision>> {
    let mut found = Vec::new();
    for batch in arns.chunks(REVISIONS_PER_REQUEST) {
        let out = aws
            .ecs
            .describe_service_revisions()
            .set_service_revision_arns(Some(batch.to_vec()))
            .send()
            .await
            .map_err(|e| aws_error("DescribeServiceRevisions", e))?;
        for r in out.service_revisions() {
            let (Some(arn), Some(task_definition)) = (r.service_revision_arn(), r.task_definition()) else {
                return Err(Error::missing("DescribeServiceRevisions", "serviceRevisionArn or taskDefinition"));
            };
            let images = r
                .container_images()
                .iter()
                .map(|c| format!("{}={}", c.container_name().unwrap_or("?"), c.image().unwrap_or("?")))
                .collect();
            found.push(ServiceRevision { arn: arn.to_string(), task_definition: task_definition.to_string(), images });
        }
    }
    // The reply's order is not the request's.
    found.sort_by_key(|r| arns.iter().position(|a| *a == r.arn));
    Ok(found)
}

/// The last deployment that completed (SUCCESSFUL) before the current one, and the revision it
/// deployed: the newest SUCCESSFUL deployment whose task definition is not `running` (the one the
/// service runs now). Not revision N-1 of the family, which may never have run (a deployment the
/// circuit breaker rolled back ends ROLLBACK_SUCCESSFUL, not SUCCESSFUL); and not the current
/// deployment, nor one that deployed the same task definition again (forced or for another
/// setting). `None` when ECS remembers no such deployment.
pub async fn last_completed_before(
    aws: &Aws,
    cluster: &str,
    service: &str,
    running: &str,
) -> Result<Option<(ServiceDeploymentEntry, ServiceRevision)>> {
    let completed = service_deployments(aws, cluster, service, &[ServiceDeploymentStatus::Successful]).await?;
    for batch in completed.chunks(REVISIONS_PER_REQUEST) {
        let arns: Vec<String> = batch.iter().filter_map(|d| d.target_revision.clone()).collect();
        let revisions = service_revisions(aws, &arns).await?;
        for deployment in batch {
            let revision = revisions.iter().find(|r| Some(&r.arn) == deployment.target_revision.as_ref());
            if let Some(revision) = revision.filter(|r| r.task_definition != running) {
                return Ok(Some((deployment.clone(), revision.clone())));
            }
        }
    }
    Ok(None)
}

/// Stops a deployment in progress and has ECS roll it back (StopServiceDeployment, stopType
/// ROLLBACK: "You can use this option even if you didn't configure the service deployment for the
/// rollback option").
pub async fn stop_and_roll_back(aws: &Aws, arn: &str) -> Result<()> {
    let sent = aws
        .ecs
        .stop_service_deployment()
        .service_deployment_arn(arn)
        .stop_type(StopServiceDeploymentStopType::Rollback)
        .send()
        .await;
    match sent.map_err(|e| aws_error("StopServiceDeployment", e)) {
        // A deployment that finished meanwhile, or a blue/green one cleaning up (its target groups
        // already traded places), cannot be stopped.
        Err(Error::Aws { operation, code, message, hint: None }) if code == "ConflictException" => Err(Error::Aws {
            operation,
            code,
            message,
            hint: Some(
                "the deployment can no longer be rolled back; once it completes, `deckhand rollback` redeploys the task definition of the deployment before it"
                    .into(),
            ),
        }),
        other => other.map(drop),
    }
}

/// Points the service at `task_definition` (UpdateService), which starts a deployment of it with
/// the service's deployment settings.
pub async fn redeploy(aws: &Aws, cluster: &str, service: &str, task_definition: &str) -> Result<()> {
    crate::error::sent(
        "UpdateService",
        aws.ecs.update_service().cluster(cluster).service(service).task_definition(task_definition).send(),
    )
    .await
}
