//! Script basics: `stack()`, `region()`, `zones()`, `note()`.

use std::rc::Rc;

use anstyle::AnsiColor;
use rhai::{Array, Dynamic, Engine, EvalAltResult};

use crate::aws::Pass;
use crate::aws::zones::{default_zones, fargate_zones};
use crate::bindings::ec2::vpc_from;
use crate::bindings::function;
use crate::error::Error;

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

    let p = pass.clone();
    function(
        "zones",
        &["count: i64", "Array"],
        "Names of `count` availability zones of the region with a default subnet in the default VPC.\n\
         A lookup; it never changes anything. Zone letters differ per account and some zones lack\n\
         Fargate or are closed to new accounts, so ask for zones instead of writing `region() + \"a\"`.\n\
         Errors, naming the zones that exist, when there are fewer than `count`.\n\
         Example: `let zones = zones(2); default_subnet(vpc, zones[0])`",
    )
    .register_into_engine(engine, move |count: i64| -> Result<Array, Box<EvalAltResult>> {
        let count =
            usize::try_from(count).map_err(|_| Error::invalid("zones.count", count, "a number of zones from 1"))?;
        Ok(default_zones(&p, count)?.into_iter().map(Dynamic::from).collect())
    });

    let p = pass.clone();
    function(
        "zones",
        &["count: i64", "vpc: Map", "Array"],
        "Names of `count` availability zones of the VPC's region where Fargate runs, for the subnets\n\
         of a VPC of new_vpc. A lookup; it never changes anything. No AWS API lists them: deckhand keeps\n\
         the ECS docs' table of Fargate's zone IDs per region, and maps them to this account's zone\n\
         names (DescribeAvailabilityZones). In the default VPC, only zones with a default subnet.\n\
         Errors, naming the zones Fargate lacks, when there are fewer than `count`.\n\
         Example: `let vpc = new_vpc(#{ name: \"myapp\", cidr: \"10.20.0.0/16\" }); let zones = zones(2, vpc);`",
    )
    .register_into_engine(engine, move |count: i64, vpc: Dynamic| -> Result<Array, Box<EvalAltResult>> {
        let count =
            usize::try_from(count).map_err(|_| Error::invalid("zones.count", count, "a number of zones from 1"))?;
        let vpc = vpc_from("zones.vpc", &vpc)?;
        Ok(fargate_zones(&p, count, &vpc)?.into_iter().map(Dynamic::from).collect())
    });

    let p = pass.clone();
    function(
        "note",
        &["text: &str", "()"],
        "Prints a note in the run's output, `note: <text>`, set apart from the script's own `print` lines:\n\
         what a choice costs, what a later step needs. The plan prints it (so does the apply); it is\n\
         never a change. The `fargate` module notes what its egress choices cost.\n\
         Example: `note(\"one NAT gateway serves every service of this environment\");`",
    )
    .register_into_engine(engine, move |text: &str| {
        let cyan = AnsiColor::Cyan.on_default();
        p.log.say(&format!("{cyan}note{cyan:#}: {text}"));
    });
}
