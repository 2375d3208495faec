//! `zones(n)`: the region's zones with a default subnet in the default VPC, which the bundled
//! scripts and the stdlib spread over instead of assuming `${region}a` and `${region}b`.

use aws_sdk_ec2::types::Filter;

use crate::support::Deck;

const GUIDE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/fargate-alb.rhai");

/// Deletes the default subnet of `zone` (as accounts whose zone lacks one have it).
fn delete_default_subnet(deck: &Deck, zone: &str) {
    let aws = deck.aws();
    aws.block_on(async {
        let filters = [
            Filter::builder().name("default-for-az").values("true").build(),
            Filter::builder().name("availability-zone").values(zone).build(),
        ];
        let out = aws.ec2.describe_subnets().set_filters(Some(filters.to_vec())).send().await.unwrap();
        let id = out.subnets()[0].subnet_id().unwrap();
        aws.ec2.delete_subnet().subnet_id(id).send().await.unwrap();
    });
}

#[test]
fn zones_are_the_ones_with_a_default_subnet_and_too_many_is_an_error_naming_them() {
    let deck = Deck::new();
    let (outcome, requests) = deck.recorded(|| deck.plan(r#"stack("z"); print(zones(2)); print(zones(4));"#, &[]));
    outcome
        .success()
        .stdout_has(r#"["us-west-2a", "us-west-2b"]"#)
        .stdout_has(r#"["us-west-2a", "us-west-2b", "us-west-2c", "us-west-2d"]"#);
    requests.assert_read_only();

    delete_default_subnet(&deck, "us-west-2b");
    deck.plan(r#"stack("z"); print(zones(2));"#, &[]).success().stdout_has(r#"["us-west-2a", "us-west-2c"]"#);
    deck.plan(
        r#"stack("z");
print(zones(4));"#,
        &[],
    )
    .failure()
    .stderr_has("zones(4): us-west-2 has only 3 zone(s) with a default subnet in the default VPC")
    .stderr_has(": us-west-2a, us-west-2c, us-west-2d")
    .stderr_has("--> deploy.rhai:2:7")
    .stderr_has("aws ec2 create-default-subnet --availability-zone us-west-2b");
    deck.plan(r#"stack("z"); zones(0);"#, &[]).failure().stderr_has("invalid zones.count 0");
}

#[test]
fn the_bundled_script_spreads_over_zones_that_have_default_subnets() {
    let deck = Deck::new();
    delete_default_subnet(&deck, "us-west-2b");
    deck.deckhand(&["run", "--plan", GUIDE])
        .success()
        .stdout_has("+ subnet myapp-a ((known after apply), us-west-2a, 172.31.96.0/24)")
        .stdout_has("+ subnet myapp-b ((known after apply), us-west-2c, 172.31.97.0/24)");
}
