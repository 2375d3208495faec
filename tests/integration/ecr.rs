//! ECR repositories (`ecr_repository`): converged (scanning, tag mutability, the lifecycle policy
//! that keeps the last images), tagged, shown by status, pruned and destroyed; a repository that
//! holds images is deleted only with `delete_with_images: true`; its `uri` is a task definition's
//! image.

use aws_sdk_ecr::types::ImageTagMutability;
use serde_json::Value;

use crate::support::Deck;

/// A repository declared with these options, a log group (so dropping the repository is not most
/// of the stack) and a task definition running the repository's image.
fn script(repository: Option<&str>) -> String {
    let declared = match repository {
        Some(options) => format!(
            "let repo = ecr_repository({options});\n\
             task_definition(#{{ family: \"web\", cpu: 256, memory: 512,\n\
                 containers: [ #{{ name: \"app\", image: repo.uri + \":v1\" }} ] }});\n"
        ),
        None => String::new(),
    };
    format!("stack(\"web\");\nlog_group(\"/ecs/web\");\n{declared}")
}

/// A repository as ECR describes it.
struct Repo {
    scan_on_push: bool,
    mutability: ImageTagMutability,
    tags: Vec<(String, String)>,
    uri: String,
}

/// The repository named `name`, or `None` when there is none.
fn repository(deck: &Deck, name: &str) -> Option<Repo> {
    let aws = deck.aws();
    let described = aws.block_on(aws.ecr.describe_repositories().repository_names(name).send());
    let described = match described {
        Ok(out) => out,
        Err(err) if format!("{err:?}").contains("RepositoryNotFoundException") => return None,
        Err(err) => panic!("DescribeRepositories: {err:?}"),
    };
    let repo = described.repositories()[0].clone();
    let arn = repo.repository_arn().unwrap();
    let tags = aws.block_on(aws.ecr.list_tags_for_resource().resource_arn(arn).send()).unwrap();
    Some(Repo {
        scan_on_push: repo.image_scanning_configuration().unwrap().scan_on_push(),
        mutability: repo.image_tag_mutability().unwrap().clone(),
        tags: tags.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect(),
        uri: repo.repository_uri().unwrap().to_string(),
    })
}

/// The lifecycle policy's only rule's (tag status, count type, count), or `None` without a policy.
fn kept_images(deck: &Deck, name: &str) -> Option<(String, String, u64)> {
    let aws = deck.aws();
    let policy = aws.block_on(aws.ecr.get_lifecycle_policy().repository_name(name).send()).ok()?;
    let policy: Value = serde_json::from_str(policy.lifecycle_policy_text().unwrap()).unwrap();
    let rules = policy["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 1, "{policy}");
    let selection = &rules[0]["selection"];
    assert_eq!(rules[0]["action"]["type"], "expire", "{policy}");
    Some((
        selection["tagStatus"].as_str().unwrap().to_string(),
        selection["countType"].as_str().unwrap().to_string(),
        selection["countNumber"].as_u64().unwrap(),
    ))
}

/// Pushes an image manifest tagged `tag` into the repository (PutImage).
fn put_image(deck: &Deck, name: &str, tag: &str) {
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": { "mediaType": "application/vnd.docker.container.image.v1+json", "size": 7023,
                    "digest": format!("sha256:{:0>64}", tag.len()) },
        "layers": [{ "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 32654,
                     "digest": format!("sha256:{:0>64}", tag.len() + 1) }],
    });
    let aws = deck.aws();
    let put = aws.ecr.put_image().repository_name(name).image_tag(tag).image_manifest(manifest.to_string());
    aws.block_on(put.send()).unwrap();
}

fn task_image(deck: &Deck, family: &str) -> String {
    let aws = deck.aws();
    let out = aws.block_on(aws.ecs.describe_task_definition().task_definition(family).send()).unwrap();
    out.task_definition().unwrap().container_definitions()[0].image().unwrap().to_string()
}

#[test]
fn a_repository_converges_is_shown_and_its_uri_is_an_image() {
    let deck = Deck::new();
    let first = r#"#{ name: "web-app", scan_on_push: true, keep_last: 10 }"#;
    deck.run(&script(Some(first)), &[]).success().stdout_has("+ ecr_repository web-app");
    let Repo { scan_on_push, mutability, tags, uri } = repository(&deck, "web-app").expect("created");
    assert!(scan_on_push);
    assert_eq!(mutability, ImageTagMutability::Mutable);
    assert!(tags.contains(&("deckhand:stack".into(), "web".into())), "{tags:?}");
    assert_eq!(kept_images(&deck, "web-app"), Some(("any".into(), "imageCountMoreThan".into(), 10)));
    assert!(uri.ends_with(".dkr.ecr.us-west-2.amazonaws.com/web-app"), "{uri}");
    assert_eq!(task_image(&deck, "web"), format!("{uri}:v1"), "the handle's uri is the image's repository");

    // The same script again: nothing to do, nothing sent but reads.
    let (again, requests) = deck.recorded(|| deck.run(&script(Some(first)), &[]));
    again.success().stdout_has("= ecr_repository web-app").stdout_has("no changes");
    requests.assert_read_only();

    // Changed in place.
    let second = r#"#{ name: "web-app", immutable_tags: true, keep_last: 5 }"#;
    deck.run(&script(Some(second)), &[])
        .success()
        .stdout_has("~ ecr_repository web-app")
        .stdout_has("scan_on_push: true -> false")
        .stdout_has("immutable_tags: false -> true")
        .stdout_has("keep_last: 10 -> 5");
    let changed = repository(&deck, "web-app").unwrap();
    assert!(!changed.scan_on_push);
    assert_eq!(changed.mutability, ImageTagMutability::Immutable);
    assert_eq!(kept_images(&deck, "web-app"), Some(("any".into(), "imageCountMoreThan".into(), 5)));

    // Without keep_last, every image is kept: the policy goes.
    deck.run(&script(Some(r#"#{ name: "web-app", immutable_tags: true }"#)), &[])
        .success()
        .stdout_has("keep_last: 5 -> (none)");
    assert_eq!(kept_images(&deck, "web-app"), None);

    put_image(&deck, "web-app", "v1");
    let status = deck.deckhand(&["status", "--stack", "web", "--output", "json"]).success();
    let status: Value = serde_json::from_str(&status.stdout).unwrap();
    let shown: Vec<&Value> =
        status["resources"].as_array().unwrap().iter().filter(|r| r["type"] == "ecr_repository").collect();
    assert_eq!(shown.len(), 1, "{status}");
    assert_eq!(shown[0]["name"], "web-app");
    let detail = shown[0]["detail"].as_str().unwrap();
    assert!(detail.starts_with(&format!("{uri}, 1 image,")) && detail.contains("immutable tags"), "{detail}");
}

#[test]
fn a_new_repository_is_read_once_by_the_run_though_it_goes_ahead_of_the_script() {
    // The repository's create goes out ahead of the script (in the first wave: it needs nothing
    // still to be created). The apply reads the stack afresh, under the lock, but once: its
    // gathering passes and the apply pass itself find the repository in the run's reads, first
    // missing, then as created. One DescribeRepositories for the plan, one for the apply.
    let deck = Deck::new();
    let (first, requests) = deck.recorded(|| deck.run(&script(Some(r#"#{ name: "web-app", keep_last: 3 }"#)), &[]));
    first.success().stdout_has("+ ecr_repository web-app");
    assert_eq!(
        requests.actions_of("ecr"),
        ["DescribeRepositories", "DescribeRepositories", "CreateRepository", "PutLifecyclePolicy"]
    );
    assert_eq!(kept_images(&deck, "web-app"), Some(("any".into(), "imageCountMoreThan".into(), 3)));
}

#[test]
fn a_dropped_repository_with_images_is_kept_until_the_script_lets_its_images_go() {
    let deck = Deck::new();
    deck.run(&script(Some(r#"#{ name: "web-app" }"#)), &[]).success();
    put_image(&deck, "web-app", "v1");
    put_image(&deck, "web-app", "v22");

    deck.run(&script(None), &["--yes"])
        .failure()
        .stderr_has("deleting ecr_repository web-app failed")
        .stderr_has("ECR repository web-app still holds 2 images")
        .stderr_has("delete_with_images: true");
    assert!(repository(&deck, "web-app").is_some(), "refused: the images stay");

    deck.run(&script(Some(r#"#{ name: "web-app", delete_with_images: true }"#)), &[])
        .success()
        .stdout_has("delete_with_images: false -> true");
    let tags = repository(&deck, "web-app").unwrap().tags;
    assert!(tags.contains(&("deckhand:delete-with-images".into(), "true".into())), "{tags:?}");
    deck.run(&script(None), &["--yes"]).success().stdout_has("- ecr_repository web-app");
    assert!(repository(&deck, "web-app").is_none(), "deleted with its images");
}

#[test]
fn destroy_deletes_empty_repositories_and_refuses_one_with_images_naming_the_count() {
    let deck = Deck::new();
    let both = r#"stack("web");
ecr_repository(#{ name: "web-a" });
ecr_repository(#{ name: "web-b" });
"#;
    deck.run(both, &[]).success();
    put_image(&deck, "web-b", "v1");

    deck.deckhand(&["destroy", "--stack", "web", "--yes"])
        .failure()
        .stdout_has("- ecr_repository web-a deleted")
        .stderr_has("ECR repository web-b still holds 1 image;");
    assert!(repository(&deck, "web-a").is_none());
    assert!(repository(&deck, "web-b").is_some());

    deck.run(
        r#"stack("web");
ecr_repository(#{ name: "web-b", delete_with_images: true });
"#,
        &[],
    )
    .success();
    deck.deckhand(&["destroy", "--stack", "web", "--yes"]).success().stdout_has("- ecr_repository web-b deleted");
    assert!(repository(&deck, "web-b").is_none());
}
