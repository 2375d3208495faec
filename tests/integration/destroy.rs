//! `deckhand destroy --stack`: deletes exactly the stack's tagged resources, dependents first.

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};

use crate::support::Deck;

const STACK: &str = r#"
stack("gone");
let vpc = default_vpc();
let subnets = [
    subnet(vpc, #{ name: "gone-a", az: "us-west-2a", cidr: "172.31.96.0/24" }),
    subnet(vpc, #{ name: "gone-b", az: "us-west-2b", cidr: "172.31.97.0/24" }),
];
let alb_sg = security_group(vpc, #{ name: "gone-alb", ingress: [#{ port: 80, cidr: "0.0.0.0/0" }] });
let app_sg = security_group(vpc, #{ name: "gone-app", ingress: [#{ port: 8080, from: alb_sg }] });
// The ALB group also points back at the app group: a reference cycle destroy must break.
security_group(vpc, #{ name: "gone-alb", ingress: [#{ port: 80, cidr: "0.0.0.0/0" }],
                       egress: [#{ port: 8080, to: app_sg }] });
let nat = nat_gateway(default_subnet(vpc, "us-west-2a"), #{ name: "gone-nat" });
let rt = route_table(vpc, #{ name: "gone-private", subnets: subnets, routes: [#{ cidr: "0.0.0.0/0", nat_gateway: nat }] });
vpc_endpoint(vpc, #{ name: "gone-s3", service: "s3", route_tables: [rt] });
"#;

fn tagged(deck: &Deck, stack: &str) -> usize {
    let aws = deck.aws();
    let filter = || Filter::builder().name("tag:deckhand:stack").values(stack).build();
    let subnets = aws.block_on(aws.ec2.describe_subnets().filters(filter()).send()).unwrap().subnets().len();
    let groups =
        aws.block_on(aws.ec2.describe_security_groups().filters(filter()).send()).unwrap().security_groups().len();
    let tables = aws.block_on(aws.ec2.describe_route_tables().filters(filter()).send()).unwrap().route_tables().len();
    let endpoints = aws.block_on(aws.ec2.describe_vpc_endpoints().filters(filter()).send()).unwrap();
    // Deleted endpoints stay visible for a while, in state "deleted".
    let endpoints =
        endpoints.vpc_endpoints().iter().filter(|e| e.state().map(|s| s.as_str()) != Some("deleted")).count();
    let eips = aws.block_on(aws.ec2.describe_addresses().filters(filter()).send()).unwrap().addresses().len();
    let nats = aws
        .block_on(
            aws.ec2
                .describe_nat_gateways()
                .filter(filter())
                .filter(Filter::builder().name("state").values("available").values("pending").build())
                .send(),
        )
        .unwrap()
        .nat_gateways()
        .len();
    subnets + groups + tables + endpoints + eips + nats
}

#[test]
fn destroy_removes_the_stack_and_spares_look_alikes() {
    let deck = Deck::new();
    deck.run(STACK, &[]).success();
    assert_eq!(tagged(&deck, "gone"), 2 + 2 + 1 + 1 + 1 + 1);

    // A look-alike: same Name tag, not in the stack.
    let aws = deck.aws();
    let vpc = deck.default_vpc_id();
    let name_tag = TagSpecification::builder()
        .resource_type(ResourceType::Subnet)
        .tags(Tag::builder().key("Name").value("gone-a").build())
        .build();
    let look_alike = aws
        .block_on(
            aws.ec2
                .create_subnet()
                .vpc_id(&vpc)
                .cidr_block("172.31.98.0/24")
                .availability_zone("us-west-2c")
                .tag_specifications(name_tag)
                .send(),
        )
        .unwrap()
        .subnet()
        .unwrap()
        .subnet_id()
        .unwrap()
        .to_string();

    let (plan, requests) = deck.recorded(|| deck.deckhand(&["destroy", "--stack", "gone", "--plan"]));
    plan.success()
        .expect_changes(&[
            "- nat_gateway gone-nat (nat-",
            "- elastic_ip gone-nat (eipalloc-",
            "- vpc_endpoint gone-s3 (vpce-",
            "- route_table gone-private (rtb-",
            "- security_group gone-alb (sg-",
            "- security_group gone-app (sg-",
            "- subnet gone-a (subnet-",
            "- subnet gone-b (subnet-",
        ])
        .stdout_has("Plan: 8 to delete");
    requests.assert_read_only();

    deck.deckhand(&["destroy", "--stack", "gone"]).failure().stderr_has("pass --yes to destroy without asking");
    assert_eq!(tagged(&deck, "gone"), 8, "nothing deleted without --yes");

    deck.deckhand(&["destroy", "--stack", "gone", "--yes"]).success().stdout_has("8 deleted");
    assert_eq!(tagged(&deck, "gone"), 0);
    let survivor = aws.block_on(aws.ec2.describe_subnets().subnet_ids(&look_alike).send()).unwrap();
    assert_eq!(survivor.subnets().len(), 1, "the untagged look-alike survives");

    let (again, requests) = deck.recorded(|| deck.deckhand(&["destroy", "--stack", "gone", "--yes"]));
    again.success().stdout_has("Stack gone has no resources: nothing to destroy");
    requests.assert_read_only();

    // And the script can build the stack again from nothing.
    deck.run(STACK, &[]).success().stdout_has("7 created, 1 updated");
}
