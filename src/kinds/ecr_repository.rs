//! ECR repositories, the whole kind in one file: `ecr_repository(#{ name, scan_on_push,
//! immutable_tags, keep_last, delete_with_images })` converges a private repository (scan on
//! push, tag mutability, a lifecycle policy that keeps the last `keep_last` images), tagged with
//! the stack; the stack's own are found through the tagging API, deleted by prune and destroy,
//! and shown by status. Deleting one that still holds images is refused, naming the count, unless
//! the script set `delete_with_images: true` (DeleteRepository's `force`), which the repository
//! carries as its `deckhand:delete-with-images` tag so that `destroy` (which has no script) knows.
//!
//! ECR cannot list repositories by tag, and a run reads no repository unless its script declares
//! one (each is read by name the first time the run converges it, then kept in the run's reads)
//! or the stack has one (its ARN comes with the tagging API's first read). Its create needs
//! nothing pending, so it goes ahead of the script with the other creates of its wave.

use aws_sdk_ecr::types::{ImageScanningConfiguration, ImageTagMutability, Tag};
use futures_util::FutureExt;
use futures_util::future::LocalBoxFuture;
use serde_json::json;

use super::stack_kind::count;
use super::{Deleting, Entry, Inventory, Kind, Pending, Showing, Shown, StackKind};
use crate::aws::Pass;
use crate::aws::{Snapshot, concurrently, find_named};
use crate::converge::{Created, Drift, Resource};
use crate::error::{Error, Result, aws_error, sent};
use crate::plan::{FieldDiff, UNKNOWN};
use crate::runtime::Aws;
use crate::tagged::STACK_TAG;

/// The kind.
pub const KIND: Kind = Kind("ecr_repository");

/// The tag that lets deleting the repository delete its images too (value `true`).
const DELETE_WITH_IMAGES_TAG: &str = "deckhand:delete-with-images";

/// What a script asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositorySpec {
    /// The repository's name, e.g. `myapp` or `team/myapp`.
    pub name: String,
    /// Scan each image for vulnerabilities when it is pushed.
    pub scan_on_push: bool,
    /// Tags cannot be moved to another image once pushed.
    pub immutable_tags: bool,
    /// Keep only the last this many images (a lifecycle policy expires older ones); `None`: no policy.
    pub keep_last: Option<u32>,
    /// Deleting the repository deletes its images too; else it is refused while it holds any.
    pub delete_with_images: bool,
}

/// A repository's lifecycle policy, as deckhand reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lifecycle {
    /// No lifecycle policy.
    None,
    /// deckhand's policy: keep the last this many images.
    KeepLast(u32),
    /// A policy deckhand did not write.
    Other,
}

impl std::fmt::Display for Lifecycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lifecycle::None => write!(f, "(none)"),
            Lifecycle::KeepLast(n) => write!(f, "{n}"),
            Lifecycle::Other => write!(f, "(another lifecycle policy)"),
        }
    }
}

/// A repository as it exists (or, planned, as it will).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    /// Its name.
    pub name: String,
    /// Its ARN.
    pub arn: String,
    /// What `docker push` and a task definition's `image` name it by
    /// (`<account>.dkr.ecr.<region>.amazonaws.com/<name>`).
    pub uri: String,
    /// Scan on push.
    pub scan_on_push: bool,
    /// Immutable tags.
    pub immutable_tags: bool,
    /// Its lifecycle policy.
    pub lifecycle: Lifecycle,
    /// Whether deleting it deletes its images (its `deckhand:delete-with-images` tag).
    pub delete_with_images: bool,
    /// Its `deckhand:stack` tag.
    pub stack: Option<String>,
}

/// Checks a repository name the way ECR does (2 to 256 characters; lowercase letters, digits and
/// `._-` separators between them, `/` between path parts).
pub fn validate_name(key: &str, name: &str) -> Result<()> {
    let part_ok = |part: &str| {
        !part.is_empty()
            && part
                .split(['.', '_', '-'])
                .all(|run| !run.is_empty() && run.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
    };
    if (2..=256).contains(&name.len()) && name.split('/').all(part_ok) {
        return Ok(());
    }
    Err(Error::invalid(
        key,
        format!("{name:?}"),
        "2 to 256 lowercase letters and digits, separated by single '.', '_', '-' or '/' (e.g. \"team/myapp\")",
    ))
}

/// The lifecycle policy that keeps the last `count` images (of any tag status).
fn keep_last_policy(count: u32) -> String {
    json!({ "rules": [{
        "rulePriority": 1,
        "description": format!("keep the last {count} images (deckhand)"),
        "selection": { "tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": count },
        "action": { "type": "expire" },
    }]})
    .to_string()
}

/// What a lifecycle policy text is to deckhand.
fn lifecycle_of(text: Option<&str>) -> Lifecycle {
    let Some(text) = text else { return Lifecycle::None };
    let policy: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    let count = match policy["rules"].as_array().map(Vec::as_slice) {
        Some([rule])
            if rule["selection"]["tagStatus"] == "any"
                && rule["selection"]["countType"] == "imageCountMoreThan"
                && rule["action"]["type"] == "expire" =>
        {
            rule["selection"]["countNumber"].as_u64().and_then(|n| u32::try_from(n).ok())
        }
        _ => None,
    };
    count.map_or(Lifecycle::Other, Lifecycle::KeepLast)
}

fn wanted_lifecycle(spec: &RepositorySpec) -> Lifecycle {
    spec.keep_last.map_or(Lifecycle::None, Lifecycle::KeepLast)
}

fn mutability(immutable: bool) -> ImageTagMutability {
    if immutable { ImageTagMutability::Immutable } else { ImageTagMutability::Mutable }
}

fn scanning(scan_on_push: bool) -> ImageScanningConfiguration {
    ImageScanningConfiguration::builder().scan_on_push(scan_on_push).build()
}

/// The repository named `name` with its tags and lifecycle policy; `None` when there is none
/// (DescribeRepositories, then ListTagsForResource and GetLifecyclePolicy together).
pub async fn read_repository(aws: &Aws, name: &str) -> Result<Option<Repository>> {
    let described = match aws.ecr.describe_repositories().repository_names(name).send().await {
        Ok(out) => out,
        Err(err) => {
            let err = aws_error("DescribeRepositories", err);
            return if err.aws_code() == Some("RepositoryNotFoundException") { Ok(None) } else { Err(err) };
        }
    };
    let Some(repo) = described.repositories().first() else { return Ok(None) };
    let arn = repo.repository_arn().ok_or_else(|| Error::missing("DescribeRepositories", "repositoryArn"))?;
    let tags = async {
        let out = aws.ecr.list_tags_for_resource().resource_arn(arn).send().await;
        out.map_err(|e| aws_error("ListTagsForResource", e))
    };
    let policy = async {
        match aws.ecr.get_lifecycle_policy().repository_name(name).send().await {
            Ok(out) => Ok(out.lifecycle_policy_text().map(str::to_string)),
            Err(err) => {
                let err = aws_error("GetLifecyclePolicy", err);
                if err.aws_code() == Some("LifecyclePolicyNotFoundException") { Ok(None) } else { Err(err) }
            }
        }
    };
    let (tags, policy) = tokio::try_join!(tags, policy)?;
    let tag = |key: &str| tags.tags().iter().find(|t| t.key() == key).map(|t| t.value().to_string());
    Ok(Some(Repository {
        name: name.to_string(),
        arn: arn.to_string(),
        uri: repo.repository_uri().unwrap_or_default().to_string(),
        scan_on_push: repo.image_scanning_configuration().is_some_and(|c| c.scan_on_push()),
        immutable_tags: repo.image_tag_mutability() == Some(&ImageTagMutability::Immutable),
        lifecycle: lifecycle_of(policy.as_deref()),
        delete_with_images: tag(DELETE_WITH_IMAGES_TAG).as_deref() == Some("true"),
        stack: tag(STACK_TAG),
    }))
}

/// How many images the repository holds (ListImages, 1,000 a page).
async fn image_count(aws: &Aws, name: &str) -> Result<usize> {
    let mut pages = aws.ecr.list_images().repository_name(name).max_results(1000).into_paginator().send();
    let mut count = 0;
    while let Some(page) = pages.next().await {
        count += page.map_err(|e| aws_error("ListImages", e))?.image_ids().len();
    }
    Ok(count)
}

/// Puts deckhand's lifecycle policy for `lifecycle` on the repository, or deletes the policy.
async fn set_lifecycle(aws: &Aws, name: &str, lifecycle: &Lifecycle) -> Result<()> {
    match lifecycle {
        Lifecycle::KeepLast(count) => {
            let put =
                aws.ecr.put_lifecycle_policy().repository_name(name).lifecycle_policy_text(keep_last_policy(*count));
            sent("PutLifecyclePolicy", put.send()).await
        }
        _ => sent("DeleteLifecyclePolicy", aws.ecr.delete_lifecycle_policy().repository_name(name).send()).await,
    }
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build().expect("key and value are set")
}

/// An ECR repository converges by name: created private, tagged with the stack; its scanning,
/// tag mutability, lifecycle policy and delete-with-images tag changed in place.
impl Resource for Repository {
    type Reads = Snapshot;
    type Spec = RepositorySpec;
    type Update = ();
    const KIND: &'static str = KIND.0;

    fn name(spec: &RepositorySpec) -> String {
        spec.name.clone()
    }

    fn noun() -> String {
        "ECR repository".into()
    }

    fn validate(_pass: &Pass, spec: &RepositorySpec) -> Result<()> {
        validate_name("ecr_repository.name", &spec.name)?;
        if spec.keep_last == Some(0) {
            return Err(Error::invalid(
                "ecr_repository.keep_last",
                0,
                "at least 1 (or leave it out to keep every image)",
            ));
        }
        Ok(())
    }

    /// Read by name the first time a run converges it (ECR cannot list by tag), then found in
    /// the run's reads, where a create ahead of the script remembered it.
    fn find(pass: &Pass, spec: &RepositorySpec) -> Result<Option<Repository>> {
        find_named(pass, KIND.0, &spec.name, async |aws| read_repository(aws, &spec.name).await)
    }

    fn stack_of(live: &Repository) -> Option<&str> {
        live.stack.as_deref()
    }

    fn planned(spec: &RepositorySpec, stack: &str) -> Repository {
        Repository {
            name: spec.name.clone(),
            arn: UNKNOWN.into(),
            uri: UNKNOWN.into(),
            scan_on_push: spec.scan_on_push,
            immutable_tags: spec.immutable_tags,
            lifecycle: wanted_lifecycle(spec),
            delete_with_images: spec.delete_with_images,
            stack: Some(stack.to_string()),
        }
    }

    fn create(pass: &Pass, spec: &RepositorySpec, stack: &str) -> Result<Created<Repository>> {
        pass.block(create(pass, spec, stack))
    }

    fn create_beside(
        pass: &Pass,
        spec: RepositorySpec,
        stack: String,
    ) -> Option<LocalBoxFuture<'_, Result<Created<Repository>>>> {
        Some(Box::pin(async move { create(pass, &spec, &stack).await }))
    }

    fn diff(live: &Repository, spec: &RepositorySpec) -> Drift<()> {
        let mut diffs = Vec::new();
        if live.scan_on_push != spec.scan_on_push {
            diffs.push(FieldDiff::changed("scan_on_push", live.scan_on_push, spec.scan_on_push));
        }
        if live.immutable_tags != spec.immutable_tags {
            diffs.push(FieldDiff::changed("immutable_tags", live.immutable_tags, spec.immutable_tags));
        }
        let lifecycle = wanted_lifecycle(spec);
        if live.lifecycle != lifecycle {
            diffs.push(FieldDiff::changed("keep_last", &live.lifecycle, lifecycle));
        }
        if live.delete_with_images != spec.delete_with_images {
            diffs.push(FieldDiff::changed("delete_with_images", live.delete_with_images, spec.delete_with_images));
        }
        Drift::of(diffs)
    }

    fn update(pass: &Pass, live: &Repository, spec: &RepositorySpec, _: &()) -> Result<Repository> {
        let name = spec.name.as_str();
        pass.apply(async |aws| {
            if live.scan_on_push != spec.scan_on_push {
                let put = aws.ecr.put_image_scanning_configuration().repository_name(name);
                sent(
                    "PutImageScanningConfiguration",
                    put.image_scanning_configuration(scanning(spec.scan_on_push)).send(),
                )
                .await?;
            }
            if live.immutable_tags != spec.immutable_tags {
                let put = aws.ecr.put_image_tag_mutability().repository_name(name);
                sent("PutImageTagMutability", put.image_tag_mutability(mutability(spec.immutable_tags)).send()).await?;
            }
            let lifecycle = wanted_lifecycle(spec);
            if live.lifecycle != lifecycle {
                set_lifecycle(aws, name, &lifecycle).await?;
            }
            if live.delete_with_images != spec.delete_with_images {
                let arn = live.arn.as_str();
                if spec.delete_with_images {
                    let put = aws.ecr.tag_resource().resource_arn(arn).tags(tag(DELETE_WITH_IMAGES_TAG, "true"));
                    sent("TagResource", put.send()).await?;
                } else {
                    let take = aws.ecr.untag_resource().resource_arn(arn).tag_keys(DELETE_WITH_IMAGES_TAG);
                    sent("UntagResource", take.send()).await?;
                }
            }
            Ok(())
        })?;
        Ok(Self::updated(live, spec))
    }

    fn updated(live: &Repository, spec: &RepositorySpec) -> Repository {
        Repository {
            scan_on_push: spec.scan_on_push,
            immutable_tags: spec.immutable_tags,
            lifecycle: wanted_lifecycle(spec),
            delete_with_images: spec.delete_with_images,
            ..live.clone()
        }
    }

    fn remember(snapshot: &mut Snapshot, live: &Repository) {
        snapshot.named.put(KIND.0, &live.name, Some(live.clone()));
    }

    fn summary(live: &Repository) -> String {
        live.uri.clone()
    }
}

/// Creates the repository (CreateRepository, then its lifecycle policy, which CreateRepository
/// cannot carry), or finds one created meanwhile.
async fn create(pass: &Pass, spec: &RepositorySpec, stack: &str) -> Result<Created<Repository>> {
    let created = pass
        .send(async |aws| {
            let mut create = aws
                .ecr
                .create_repository()
                .repository_name(&spec.name)
                .image_scanning_configuration(scanning(spec.scan_on_push))
                .image_tag_mutability(mutability(spec.immutable_tags))
                .tags(tag(STACK_TAG, stack));
            if spec.delete_with_images {
                create = create.tags(tag(DELETE_WITH_IMAGES_TAG, "true"));
            }
            match create.send().await {
                Ok(out) => Ok(out.repository().cloned()),
                Err(err) => {
                    let err = aws_error("CreateRepository", err);
                    if err.aws_code() == Some("RepositoryAlreadyExistsException") { Ok(None) } else { Err(err) }
                }
            }
        })
        .await?;
    let Some(repo) = created else {
        // Created meanwhile (a concurrent run, a lost reply): converged like any found repository.
        let found = pass.send(async |aws| read_repository(aws, &spec.name).await).await?;
        return found
            .map(Created::Existing)
            .ok_or_else(|| Error::conflict(format!("ECR repository {} vanished while creating it", spec.name), None));
    };
    if let Some(count) = spec.keep_last {
        pass.send(async |aws| set_lifecycle(aws, &spec.name, &Lifecycle::KeepLast(count)).await).await?;
    }
    Ok(Created::New(Repository {
        arn: repo.repository_arn().unwrap_or_default().to_string(),
        uri: repo.repository_uri().unwrap_or_default().to_string(),
        ..Repository::planned(spec, stack)
    }))
}

/// The stack's ECR repositories.
pub struct Repositories;

/// The repository name in an ECR repository ARN (`arn:...:repository/<name>`).
fn name_in(arn: &str) -> &str {
    // A repository's name may hold `/` (`team/app`): all of the resource after its type.
    crate::arn::Arn::of_type(arn, "ecr", "repository").map_or(arn, |arn| arn.resource_id())
}

impl StackKind for Repositories {
    fn kind(&self) -> Kind {
        KIND
    }

    /// After what runs its images.
    fn deleted_after(&self) -> &'static [&'static str] {
        &["service", "task_definition"]
    }

    /// Known by name, as ECR's calls name them (status shows the ARN).
    fn list(&self, inventory: &Inventory) -> Vec<Entry> {
        let arns = inventory.snapshot.tagged.arns("ecr", "repository");
        arns.iter().map(|arn| Entry::new(KIND, Some(name_in(arn)), name_in(arn))).collect()
    }

    /// Refused while it holds images, unless it carries `delete_with_images` (and the stack's
    /// tag: the tagging API's index alone does not decide what is deleted).
    fn delete<'a>(&'a self, deleting: Deleting<'a>) -> Pending<'a, ()> {
        let Deleting { aws, inventory, entry, .. } = deleting;
        async move {
            let Some(repo) = read_repository(aws, &entry.name).await? else { return Ok(()) };
            if repo.stack.as_deref() != Some(inventory.stack.as_str()) {
                return Err(Error::conflict(
                    format!("ECR repository {} is not part of stack {}", entry.name, inventory.stack),
                    None,
                ));
            }
            if !repo.delete_with_images {
                let images = image_count(aws, &entry.name).await?;
                if images > 0 {
                    return Err(Error::conflict(
                        format!(
                            "ECR repository {} still holds {images} image{}; deleting it would delete them",
                            entry.name,
                            if images == 1 { "" } else { "s" }
                        ),
                        Some("declare it with delete_with_images: true and run, or delete the images first"),
                    ));
                }
            }
            let delete = aws.ecr.delete_repository().repository_name(&entry.name).force(repo.delete_with_images);
            sent("DeleteRepository", delete.send()).await
        }
        .boxed_local()
    }

    fn status<'a>(&'a self, showing: Showing<'a>) -> Pending<'a, Vec<Shown>> {
        let Showing { aws, entries, .. } = showing;
        async move {
            let read = concurrently(&entries, async |entry| {
                let (repo, images) =
                    tokio::try_join!(read_repository(aws, &entry.name), image_count(aws, &entry.name))?;
                Ok(repo.map(|repo| (repo, images)))
            })
            .await?;
            let rows = entries.iter().zip(read).map(|(entry, read)| {
                let arn = read.as_ref().map(|(repo, _)| repo.arn.clone());
                let detail = read.map(|(repo, images)| {
                    let mut facts = vec![repo.uri, count(images, "image")];
                    if let Lifecycle::KeepLast(n) = repo.lifecycle {
                        facts.push(format!("keeps the last {n}"));
                    }
                    facts.extend(repo.scan_on_push.then(|| "scan on push".to_string()));
                    facts.extend(repo.immutable_tags.then(|| "immutable tags".to_string()));
                    facts.join(", ")
                });
                Shown {
                    id: arn.unwrap_or_else(|| entry.id.clone()),
                    ..Shown::of(entry, None, detail.unwrap_or_default())
                }
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
    fn names_are_checked_as_ecr_does() {
        for ok in ["myapp", "team/myapp", "my-app.v2", "a_b"] {
            assert!(validate_name("name", ok).is_ok(), "{ok}");
        }
        for bad in ["a", "MyApp", "my--app", "-app", "team//app", "app/"] {
            assert!(validate_name("name", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn deckhands_policy_reads_back_as_keep_last_and_others_as_other() {
        assert_eq!(lifecycle_of(Some(&keep_last_policy(10))), Lifecycle::KeepLast(10));
        assert_eq!(lifecycle_of(None), Lifecycle::None);
        let other = r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":7},"action":{"type":"expire"}}]}"#;
        assert_eq!(lifecycle_of(Some(other)), Lifecycle::Other);
    }
}
