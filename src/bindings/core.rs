//! Script basics: `stack()`, `region()`.

use std::rc::Rc;

use rhai::{Engine, EvalAltResult};

use crate::bindings::function;
use crate::pass::Pass;

pub(super) fn register(engine: &mut Engine, pass: &Rc<Pass>) {
    let p = pass.clone();
    function(
        "stack",
        &["name: &str", "()"],
        "Names the stack: every resource declared after this call is tagged `deckhand:stack=<name>`.\n\
         Call it once, first. `deckhand destroy --stack <name>` removes the stack again.\n\
         Example: `stack(vars.app ?? \"myapp\");`",
    )
    .register_into_engine(engine, move |name: &str| -> Result<(), Box<EvalAltResult>> { Ok(p.set_stack(name)?) });

    let p = pass.clone();
    function(
        "region",
        &["String"],
        "The AWS region the script runs against, e.g. `us-west-2`.\nExample: `let az = region() + \"a\";`",
    )
    .register_into_engine(engine, move || -> String { p.region().unwrap_or("(unknown region)").to_string() });
}
