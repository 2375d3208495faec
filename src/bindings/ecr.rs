//! Script functions for ECR: `ecr_repository`.

use std::rc::Rc;

use rhai::{Dynamic, Engine, EvalAltResult, Map};

use crate::aws::Pass;
use crate::bindings::{Fields, function, handle, show};
use crate::converge::converge;
use crate::error::Error;
use crate::kinds::ecr_repository::{Repository, RepositorySpec};

type Rhai<T> = std::result::Result<T, Box<EvalAltResult>>;

pub(super) fn register(engine: &mut Engine, pass: &Rc<Pass>) {
    let p = pass.clone();
    function(
        "ecr_repository",
        &["options: Map", "Map"],
        "Ensures a private ECR repository: #{ name, scan_on_push, immutable_tags, keep_last, delete_with_images }.\n\
         `scan_on_push` scans each pushed image (default false); `immutable_tags` forbids moving a tag\n\
         to another image (default false); `keep_last: N` expires all but the newest N images (a\n\
         lifecycle policy; absent: every image is kept). Deleting the repository (when the script drops\n\
         it, or `deckhand destroy`) is refused while it holds images, naming how many, unless\n\
         `delete_with_images: true`.\n\
         Returns #{ kind: \"ecr_repository\", name, arn, uri }; `uri + \":\" + tag` is a task definition's image.\n\
         Example: `let repo = ecr_repository(#{ name: \"myapp\", keep_last: 20 });`",
    )
    .register_into_engine(engine, move |options: Dynamic| -> Rhai<Map> {
        let shown = show(&options);
        let options = options
            .try_cast::<Map>()
            .ok_or_else(|| Error::invalid("ecr_repository.options", shown, "a map like #{ name: \"myapp\" }"))?;
        let f = Fields::new(
            "ecr_repository",
            options,
            &["name", "scan_on_push", "immutable_tags", "keep_last", "delete_with_images"],
        )?;
        let keep_last = match f.int("keep_last")? {
            None => None,
            Some(n) => Some(u32::try_from(n).map_err(|_| {
                Error::invalid("ecr_repository.keep_last", n, "a number of images from 1 to 4294967295")
            })?),
        };
        let spec = RepositorySpec {
            name: f.req_str("name", "the repository's name, e.g. \"myapp\"")?,
            scan_on_push: f.bool("scan_on_push")?.unwrap_or(false),
            immutable_tags: f.bool("immutable_tags")?.unwrap_or(false),
            keep_last,
            delete_with_images: f.bool("delete_with_images")?.unwrap_or(false),
        };
        Ok(repository_handle(&converge::<Repository>(&p, &spec)?))
    });
}

fn repository_handle(repo: &Repository) -> Map {
    handle(
        "ecr_repository",
        [("name", repo.name.clone().into()), ("arn", repo.arn.clone().into()), ("uri", repo.uri.clone().into())],
    )
}
