//! Private egress: NAT gateway + route table, or VPC endpoints; converge and drift.

use aws_sdk_ec2::types::{DomainType, Filter, ResourceType, Tag, TagSpecification};

use crate::support::Deck;

const BASE: &str = r#"
stack("priv");
let vpc = default_vpc();
let subnets = [
    subnet(vpc, #{ name: "priv-a", az: "us-west-2a", cidr: "172.31.96.0/24" }),
    subnet(vpc, #{ name: "priv-b", az: "us-west-2b", cidr: "172.31.97.0/24" }),
];
"#;

const VIA_NAT: &str = r#"
let nat = nat_gateway(default_subnet(vpc, "us-west-2a"), #{ name: "priv-nat" });
let rt = route_table(vpc, #{ name: "priv-private", subnets: subnets,
                             routes: [#{ cidr: "0.0.0.0/0", nat_gateway: nat }] });
"#;

const VIA_ENDPOINTS: &str = r#"
let rt = route_table(vpc, #{ name: "priv-private", subnets: subnets });
let sg = security_group(vpc, #{ name: "priv-endpoints", ingress: [#{ port: 443, cidr: "172.31.0.0/16" }] });
vpc_endpoint(vpc, #{ name: "priv-s3", service: "s3", route_tables: [rt] });
for service in ["ecr.api", "ecr.dkr", "logs"] {
    vpc_endpoint(vpc, #{ name: `priv-${service}`, service: service, subnets: subnets, security_groups: [sg] });
}
"#;

fn private_table(deck: &Deck) -> aws_sdk_ec2::types::RouteTable {
    let aws = deck.aws();
    let filter = Filter::builder().name("tag:Name").values("priv-private").build();
    let out = aws.block_on(aws.ec2.describe_route_tables().filters(filter).send()).unwrap();
    assert_eq!(out.route_tables().len(), 1, "one private route table");
    out.route_tables()[0].clone()
}

#[test]
fn nat_gateway_route_table_converge() {
    let deck = Deck::new();
    let script = format!("{BASE}{VIA_NAT}");
    deck.run(&script, &[]).success().expect_changes(&[
        "+ subnet priv-a",
        "+ subnet priv-b",
        "+ nat_gateway priv-nat (nat-",
        "+ route_table priv-private (rtb-",
    ]);

    let table = private_table(&deck);
    let nat_route =
        table.routes().iter().find(|r| r.destination_cidr_block() == Some("0.0.0.0/0")).expect("default route");
    assert!(nat_route.nat_gateway_id().unwrap().starts_with("nat-"));
    let associated: Vec<_> = table.associations().iter().filter_map(|a| a.subnet_id()).collect();
    assert_eq!(associated.len(), 2);
    let aws = deck.aws();
    let eips = aws.block_on(aws.ec2.describe_addresses().send()).unwrap();
    assert!(
        eips.addresses()
            .iter()
            .any(|a| a.tags().iter().any(|t| t.key() == Some("deckhand:stack") && t.value() == Some("priv")))
    );

    let (second, requests) = deck.recorded(|| deck.run(&script, &[]));
    second.success().expect_changes(&[
        "= subnet priv-a",
        "= subnet priv-b",
        "= nat_gateway priv-nat",
        "= route_table priv-private",
    ]);
    requests.assert_read_only();

    // Drift: the default route deleted by hand comes back.
    aws.block_on(
        aws.ec2
            .delete_route()
            .route_table_id(table.route_table_id().unwrap())
            .destination_cidr_block("0.0.0.0/0")
            .send(),
    )
    .unwrap();
    deck.run(&script, &[]).success().stdout_has("~ route_table priv-private").stdout_has("routes: + 0.0.0.0/0 -> nat-");
    assert!(private_table(&deck).routes().iter().any(|r| r.nat_gateway_id().is_some()));
}

#[test]
fn plan_shows_the_nat_route_as_known_after_apply() {
    let deck = Deck::new();
    let (plan, requests) = deck.recorded(|| deck.plan(&format!("{BASE}{VIA_NAT}"), &[]));
    plan.success().stdout_has("+ nat_gateway priv-nat ((known after apply)").stdout_has("+ route_table priv-private");
    requests.assert_read_only();
}

#[test]
fn vpc_endpoints_converge() {
    let deck = Deck::new();
    let script = format!("{BASE}{VIA_ENDPOINTS}");
    let (first, requests) = deck.recorded(|| deck.run(&script, &[]));
    first.success().expect_changes(&[
        "+ subnet priv-a",
        "+ subnet priv-b",
        "+ route_table priv-private",
        "+ security_group priv-endpoints",
        "+ vpc_endpoint priv-s3 (vpce-",
        "+ vpc_endpoint priv-ecr.api",
        "+ vpc_endpoint priv-ecr.dkr",
        "+ vpc_endpoint priv-logs",
    ]);
    let aws = deck.aws();
    let endpoints = aws.block_on(aws.ec2.describe_vpc_endpoints().send()).unwrap();
    let s3 = endpoints.vpc_endpoints().iter().find(|e| e.service_name() == Some("com.amazonaws.us-west-2.s3")).unwrap();
    assert_eq!(s3.route_table_ids(), [private_table(&deck).route_table_id().unwrap().to_string()]);
    let dkr =
        endpoints.vpc_endpoints().iter().find(|e| e.service_name() == Some("com.amazonaws.us-west-2.ecr.dkr")).unwrap();
    assert_eq!(dkr.subnet_ids().len(), 2);
    // Each create carries its own idempotency token, so a retried request cannot make a second one.
    let tokens: Vec<&str> = requests
        .0
        .iter()
        .filter(|r| r.action == "CreateVpcEndpoint")
        .map(|r| {
            let token = r.body.split('&').find_map(|p| p.strip_prefix("ClientToken="));
            token.unwrap_or_else(|| panic!("CreateVpcEndpoint without a ClientToken: {}", r.body))
        })
        .collect();
    assert_eq!(tokens.len(), 4);
    assert_eq!(tokens.iter().collect::<std::collections::BTreeSet<_>>().len(), 4, "{tokens:?}");

    let (second, requests) = deck.recorded(|| deck.run(&script, &[]));
    second.success().stdout_has("0 created, 0 updated, 8 unchanged");
    requests.assert_read_only();

    // AWS cannot turn an endpoint into one for another service: refused before anything changes.
    let other = script.replace(r#"name: "priv-s3", service: "s3""#, r#"name: "priv-s3", service: "dynamodb""#);
    let (outcome, requests) = deck.recorded(|| deck.run(&other, &[]));
    outcome
        .failure()
        .stderr_has("vpc_endpoint priv-s3 differs where AWS cannot change")
        .stderr_has("(service: com.amazonaws.us-west-2.s3 -> com.amazonaws.us-west-2.dynamodb)");
    requests.assert_read_only();
}

#[test]
fn egress_validation_errors() {
    let deck = Deck::new();
    let cases = [
        (
            r#"vpc_endpoint(vpc, #{ name: "e", service: "ecr.dkr", type: "gateway", subnets: subnets });"#,
            "only s3 and dynamodb have gateway endpoints",
        ),
        (r#"vpc_endpoint(vpc, #{ name: "e", service: "s3" });"#, "missing key `route_tables` in vpc_endpoint()"),
        (
            r#"vpc_endpoint(vpc, #{ name: "e", service: "logs", subnets: [subnets[0], subnets[0]] });"#,
            "at most one subnet per availability zone",
        ),
        (r#"route_table(vpc, #{ name: "r", routes: [#{ cidr: "0.0.0.0/0" }] });"#, "exactly one of `nat_gateway`"),
        (
            r#"route_table(vpc, #{ name: "r", routes: [#{ cidr: "0.0.0.0/0", gateway: "nat-123" }] });"#,
            "an internet or virtual private gateway id",
        ),
        (
            r#"nat_gateway(vpc, #{ name: "n" });"#,
            r#"invalid nat_gateway.subnet a vpc handle: a subnet handle or a "subnet-..." id"#,
        ),
    ];
    for (line, message) in cases {
        let script = format!("{BASE}{line}\n");
        let (outcome, requests) = deck.recorded(|| deck.run(&script, &[]));
        outcome.failure().stderr_has(message).stderr_has("--> deploy.rhai:8:1");
        assert_eq!(requests.mutating(), Vec::<String>::new(), "{line}");
    }
}

#[test]
fn an_unattached_elastic_ip_of_the_stack_is_reused_not_leaked() {
    // An earlier run allocated this address (tagged with the stack as AWS allocated it), then lost
    // the reply or failed before CreateNatGateway: the next run uses it instead of allocating
    // another. A second NAT gateway of the run must not take the same address.
    let deck = Deck::new();
    let aws = deck.aws();
    let tags = TagSpecification::builder()
        .resource_type(ResourceType::ElasticIp)
        .tags(Tag::builder().key("deckhand:stack").value("priv").build())
        .build();
    let left =
        aws.block_on(aws.ec2.allocate_address().domain(DomainType::Vpc).tag_specifications(tags).send()).unwrap();
    let allocation = left.allocation_id().unwrap().to_string();

    let second = r#"nat_gateway(default_subnet(vpc, "us-west-2b"), #{ name: "priv-nat-b" });"#;
    let script = format!("{BASE}{VIA_NAT}{second}\n");
    let (outcome, requests) = deck.recorded(|| deck.run(&script, &[]));
    outcome.success().stdout_has("+ nat_gateway priv-nat (nat-").stdout_has("+ nat_gateway priv-nat-b (nat-");
    let actions = requests.actions();
    let allocations = actions.iter().filter(|a| *a == "AllocateAddress").count();
    assert_eq!(allocations, 1, "one address reused, one allocated: {actions:?}");
    // Both NAT gateways are created together (ahead of the script): each took its address before
    // either was sent, so neither CreateNatGateway failed on the other's address and was sent again.
    let nat_creates = actions.iter().filter(|a| *a == "CreateNatGateway").count();
    assert_eq!(nat_creates, 2, "one CreateNatGateway per NAT gateway: {actions:?}");

    let nats = aws.block_on(aws.ec2.describe_nat_gateways().send()).unwrap();
    let nat_allocation = |name: &str| {
        let nat = nats
            .nat_gateways()
            .iter()
            .find(|n| n.tags().iter().any(|t| t.key() == Some("Name") && t.value() == Some(name)))
            .unwrap_or_else(|| panic!("NAT gateway {name}"));
        nat.nat_gateway_addresses()[0].allocation_id().unwrap().to_string()
    };
    let (first_nat, second_nat) = (nat_allocation("priv-nat"), nat_allocation("priv-nat-b"));
    assert_eq!(first_nat, allocation, "the left-over address went to the first NAT gateway");
    assert_ne!(second_nat, allocation);
    let stack = Filter::builder().name("tag:deckhand:stack").values("priv").build();
    let eips = aws.block_on(aws.ec2.describe_addresses().filters(stack).send()).unwrap();
    assert_eq!(eips.addresses().len(), 2, "one address per NAT gateway, none leaked");
}

#[test]
fn vpc_endpoints_serve_only_private_ecr_images_of_the_region() {
    let deck = Deck::new();
    let script = format!(
        "{BASE}{VIA_ENDPOINTS}{}",
        r#"
let task = task_definition(#{ family: "priv", cpu: 256, memory: 512,
    containers: [#{ name: "app", image: vars.image, port: 8080 }] });
service(cluster("priv"), #{ name: "priv", task: task, desired: 1, subnets: subnets });
"#
    );
    let ecr = "image=123456789012.dkr.ecr.us-west-2.amazonaws.com/priv:1";
    let out = deck.run(&script, &["--var", ecr]).success();
    assert!(!out.stdout.contains("warning:"), "{}", out.stdout);

    for image in [
        "nginx:1.27",
        "public.ecr.aws/nginx/nginx-unprivileged:stable",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/priv:1",
    ] {
        deck.plan(&script, &["--var", &format!("image={image}")]).success().stdout_has(&format!(
            "warning: tasks without a public IP in subnet(s) priv-a, priv-b reach only VPC endpoints, which serve \
             private ECR in us-west-2 (<account>.dkr.ecr.us-west-2.amazonaws.com/...), not ECR Public, Docker Hub \
             or other registries: they cannot pull {image};"
        ));
    }
    let (strict, requests) = deck.recorded(|| deck.run(&script, &["--var", "image=nginx:1.27", "--strict"]));
    strict
        .failure()
        .stderr_has("they cannot pull nginx:1.27;")
        .stderr_has("(an error because of --strict)")
        .stderr_has("--> deploy.rhai:");
    requests.assert_read_only();
}
