//! Environments (`fargate::environment`): one network, NAT gateway, cluster and load balancer that
//! several services share (scripts/two-services.rhai); a dropped service takes only its own pieces;
//! `nat_per_zone` routes each zone's private subnet to the NAT gateway in its zone; `vpc: #{ cidr }`
//! builds the environment in a VPC of its own; `domain` + `zone` serve its services over HTTPS.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{Filter, NatGatewayState};

use crate::support::Deck;

const TWO_SERVICES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/two-services.rhai");

fn two_services() -> String {
    std::fs::read_to_string(TWO_SERVICES).unwrap()
}

/// two-services.rhai without the API: its declaration and its print.
fn web_only() -> String {
    let both = two_services();
    let start = both.find("let api = ").unwrap();
    let end = start + both[start..].find("});").unwrap() + "});".len();
    format!("{}{}", &both[..start], &both[end..]).replace("print(`api: ${api.url}`);", "")
}

fn stack_filter() -> Filter {
    Filter::builder().name("tag:deckhand:stack").values("shop").build()
}

/// The stack's NAT gateways that are not deleted: id -> subnet id.
fn nat_gateways(deck: &Deck) -> BTreeMap<String, String> {
    let aws = deck.aws();
    let out = aws.block_on(aws.ec2.describe_nat_gateways().filter(stack_filter()).send()).unwrap();
    out.nat_gateways()
        .iter()
        .filter(|n| !matches!(n.state(), Some(NatGatewayState::Deleted | NatGatewayState::Deleting)))
        .map(|n| (n.nat_gateway_id().unwrap().to_string(), n.subnet_id().unwrap().to_string()))
        .collect()
}

fn elastic_ips(deck: &Deck) -> usize {
    let aws = deck.aws();
    aws.block_on(aws.ec2.describe_addresses().filters(stack_filter()).send()).unwrap().addresses().len()
}

/// The ACTIVE services of every cluster, by cluster ARN.
fn active_services(deck: &Deck) -> BTreeMap<String, Vec<String>> {
    let aws = deck.aws();
    let mut active = BTreeMap::new();
    for cluster in aws.block_on(aws.ecs.list_clusters().send()).unwrap().cluster_arns() {
        let arns = aws.block_on(aws.ecs.list_services().cluster(cluster).send()).unwrap().service_arns().to_vec();
        let mut names = Vec::new();
        if !arns.is_empty() {
            let out =
                aws.block_on(aws.ecs.describe_services().cluster(cluster).set_services(Some(arns)).send()).unwrap();
            let found = out.services().iter().filter(|s| s.status() == Some("ACTIVE")).filter_map(|s| s.service_name());
            names.extend(found.map(str::to_string));
        }
        names.sort();
        active.insert(cluster.clone(), names);
    }
    active
}

fn load_balancers(deck: &Deck) -> Vec<String> {
    let aws = deck.aws();
    let out = aws.block_on(aws.elbv2.describe_load_balancers().send()).unwrap();
    out.load_balancers().iter().filter_map(|l| l.load_balancer_name()).map(str::to_string).collect()
}

fn target_groups(deck: &Deck) -> BTreeMap<String, String> {
    let aws = deck.aws();
    let out = aws.block_on(aws.elbv2.describe_target_groups().send()).unwrap();
    out.target_groups()
        .iter()
        .map(|g| (g.target_group_name().unwrap().to_string(), g.target_group_arn().unwrap().to_string()))
        .collect()
}

/// The default action of the ALB `shop`'s listener on `port`, and its rules: priority -> (paths,
/// target group ARN).
fn listener_and_rules(deck: &Deck, port: i32) -> (String, BTreeMap<String, (Vec<String>, String)>) {
    let aws = deck.aws();
    let lbs = aws.block_on(aws.elbv2.describe_load_balancers().names("shop").send()).unwrap();
    let lb = lbs.load_balancers()[0].load_balancer_arn().unwrap().to_string();
    let listeners = aws.block_on(aws.elbv2.describe_listeners().load_balancer_arn(lb).send()).unwrap();
    let http = listeners.listeners().iter().find(|l| l.port() == Some(port)).expect("a listener on the port");
    let action = &http.default_actions()[0];
    let default = match (action.fixed_response_config(), action.redirect_config()) {
        (Some(fixed), _) => format!("fixed-response {}", fixed.status_code().unwrap_or_default()),
        (_, Some(to)) => format!(
            "redirect {}:{} {}",
            to.protocol().unwrap_or_default(),
            to.port().unwrap_or_default(),
            to.status_code().map(|c| c.as_str()).unwrap_or_default()
        ),
        _ => format!("{:?}", action.r#type()),
    };
    let out = aws.block_on(aws.elbv2.describe_rules().listener_arn(http.listener_arn().unwrap()).send()).unwrap();
    let rules = out
        .rules()
        .iter()
        .filter(|r| r.is_default() != Some(true))
        .map(|r| {
            let paths: Vec<String> = r
                .conditions()
                .iter()
                .filter(|c| c.field() == Some("path-pattern"))
                .flat_map(|c| {
                    c.path_pattern_config().map(|p| p.values().to_vec()).unwrap_or_else(|| c.values().to_vec())
                })
                .collect();
            (r.priority().unwrap().to_string(), (paths, r.actions()[0].target_group_arn().unwrap().to_string()))
        })
        .collect();
    (default, rules)
}

fn security_groups(deck: &Deck) -> Vec<String> {
    let aws = deck.aws();
    let out = aws.block_on(aws.ec2.describe_security_groups().filters(stack_filter()).send()).unwrap();
    let mut names: Vec<String> =
        out.security_groups().iter().filter_map(|g| g.group_name()).map(str::to_string).collect();
    names.sort();
    names
}

fn role_exists(deck: &Deck, name: &str) -> bool {
    let aws = deck.aws();
    aws.block_on(aws.iam.get_role().role_name(name).send()).is_ok()
}

#[test]
fn two_services_share_one_environment_and_a_rerun_changes_nothing() {
    let deck = Deck::new();
    deck.deckhand(&["run", TWO_SERVICES])
        .success()
        .stdout_has("note: egress \"nat\": 1 NAT gateway, $36.50/month with its public IPv4 address, + $0.045/GB")
        .stdout_has("\"nat_per_zone\": 2 NAT gateways (one per zone), $73.00/month")
        .stdout_has("\"endpoints\": 3 interface endpoints in 2 zones, $43.80/month")
        .stdout_has("api: http://shop-1.");

    // One NAT gateway and its one elastic IP, one cluster running both services, one ALB.
    assert_eq!(nat_gateways(&deck).len(), 1);
    assert_eq!(elastic_ips(&deck), 1);
    let clusters = active_services(&deck);
    assert_eq!(clusters.len(), 1, "{clusters:?}");
    assert_eq!(clusters.values().next().unwrap(), &["shop-api", "shop-web"]);
    assert_eq!(load_balancers(&deck), ["shop"]);
    // The listener answers 404 unless a rule takes the request: /api/* the API, the rest the web.
    let groups = target_groups(&deck);
    let (default, rules) = listener_and_rules(&deck, 80);
    assert_eq!(default, "fixed-response 404");
    assert_eq!(rules["10"], (vec!["/api/*".to_string()], groups["shop-api"].clone()));
    assert_eq!(rules["50000"], (vec!["/*".to_string()], groups["shop-web"].clone()));
    assert_eq!(rules.len(), 2);

    let (again, requests) = deck.recorded(|| deck.deckhand(&["run", TWO_SERVICES]));
    again.success().stdout_has("no changes");
    requests.assert_read_only();
}

#[test]
fn a_service_dropped_from_an_environment_takes_only_its_own_pieces() {
    let deck = Deck::new();
    deck.deckhand(&["run", TWO_SERVICES]).success();
    let nats = nat_gateways(&deck);
    let clusters: Vec<String> = active_services(&deck).into_keys().collect();

    let (run, requests) = deck.recorded(|| deck.run(&web_only(), &[]));
    run.success().stdout_has("- service shop-api").stdout_has("- listener_rule shop:80#10");
    let mutating = requests.mutating();
    for environment_piece in [
        "DeleteNatGateway",
        "ReleaseAddress",
        "DeleteLoadBalancer",
        "DeleteListener",
        "DeleteCluster",
        "DeleteSubnet",
        "DeleteRouteTable",
    ] {
        assert!(!mutating.iter().any(|m| m.ends_with(environment_piece)), "{environment_piece}: {mutating:?}");
    }

    // The API's service, target group, rule, security group, task definition and role are gone.
    let services = active_services(&deck);
    assert_eq!(services.keys().cloned().collect::<Vec<_>>(), clusters);
    assert_eq!(services.values().next().unwrap(), &["shop-web"]);
    let groups = target_groups(&deck);
    assert_eq!(groups.keys().collect::<Vec<_>>(), ["shop-web"]);
    let (default, rules) = listener_and_rules(&deck, 80);
    assert_eq!(default, "fixed-response 404");
    assert_eq!(rules.keys().collect::<Vec<_>>(), ["50000"]);
    assert_eq!(security_groups(&deck), ["shop-alb", "shop-web-app"]);
    assert!(!role_exists(&deck, "shop-api-exec"));
    assert!(role_exists(&deck, "shop-web-exec"));
    let aws = deck.aws();
    let api_task = aws.block_on(aws.ecs.describe_task_definition().task_definition("shop-api:1").send()).unwrap();
    assert_eq!(api_task.task_definition().unwrap().status().map(|s| s.as_str()), Some("INACTIVE"));
    // The environment stays as it was: the same NAT gateway, its address, the ALB.
    assert_eq!(nat_gateways(&deck), nats);
    assert_eq!(elastic_ips(&deck), 1);
    assert_eq!(load_balancers(&deck), ["shop"]);

    deck.run(&web_only(), &[]).success().stdout_has("no changes");
}

#[test]
fn services_whose_environment_was_dropped_fail_at_the_line_that_needs_it() {
    let deck = Deck::new();
    let both = two_services();
    let start = both.find("let env = ").unwrap();
    let end = start + both[start..].find("});").unwrap() + "});\n".len();
    let orphaned = format!("{}{}", &both[..start], &both[end..]);
    let line = orphaned.lines().position(|l| l.starts_with("let web = ")).unwrap() + 1;
    let column = "let web = fargate::web_service(".len() + 1;

    let (outcome, requests) = deck.recorded(|| deck.run(&orphaned, &[]));
    outcome
        .failure()
        .stderr_has("undefined variable `env`: nothing above this line declares it")
        .stderr_has(&format!("--> deploy.rhai:{line}:{column}"))
        .stderr_has("remove or change this line too");
    requests.assert_none();

    // An environment's option given to a service says where it belongs.
    let misplaced = both.replace("    priority: 10,", "    priority: 10,\n    egress: \"endpoints\",");
    let (outcome, requests) = deck.recorded(|| deck.run(&misplaced, &[]));
    outcome.failure().stderr_has("\"egress\" belongs to the environment (fargate::environment())");
    assert_eq!(requests.mutating(), Vec::<String>::new());
}

#[test]
fn nat_per_zone_routes_each_private_subnet_to_the_gateway_in_its_zone() {
    let deck = Deck::new();
    deck.deckhand(&["run", TWO_SERVICES]).success();
    let first = nat_gateways(&deck);

    deck.deckhand(&["run", TWO_SERVICES, "--var", "egress=nat_per_zone"])
        .success()
        .stdout_has("+ nat_gateway shop-nat-b")
        .stdout_has("note: egress \"nat_per_zone\": 2 NAT gateways (one per zone), $73.00/month");
    let nats = nat_gateways(&deck);
    assert_eq!(nats.len(), 2, "{nats:?}");
    assert!(first.keys().all(|id| nats.contains_key(id)), "the first zone's gateway stays: {first:?} {nats:?}");
    assert_eq!(elastic_ips(&deck), 2);

    let aws = deck.aws();
    let subnets = aws.block_on(aws.ec2.describe_subnets().send()).unwrap();
    let zone_of: BTreeMap<String, String> = subnets
        .subnets()
        .iter()
        .map(|s| (s.subnet_id().unwrap().to_string(), s.availability_zone().unwrap().to_string()))
        .collect();
    let nat_zones: Vec<&String> = nats.values().map(|subnet| &zone_of[subnet]).collect();
    assert_ne!(nat_zones[0], nat_zones[1], "one gateway per zone");

    let private = aws
        .block_on(
            aws.ec2
                .describe_subnets()
                .filters(Filter::builder().name("tag:Name").values("shop-a").values("shop-b").build())
                .send(),
        )
        .unwrap();
    assert_eq!(private.subnets().len(), 2);
    for subnet in private.subnets() {
        let id = subnet.subnet_id().unwrap();
        let tables = aws
            .block_on(
                aws.ec2
                    .describe_route_tables()
                    .filters(Filter::builder().name("association.subnet-id").values(id).build())
                    .send(),
            )
            .unwrap();
        assert_eq!(tables.route_tables().len(), 1, "{id}");
        let routes = tables.route_tables()[0].routes();
        let nat = routes
            .iter()
            .find(|r| r.destination_cidr_block() == Some("0.0.0.0/0"))
            .and_then(|r| r.nat_gateway_id())
            .unwrap_or_else(|| panic!("{id} routes the internet to a NAT gateway: {routes:?}"));
        assert_eq!(
            zone_of[&nats[nat]],
            subnet.availability_zone().unwrap(),
            "{id} is routed to the gateway of its zone"
        );
    }

    let (again, requests) = deck.recorded(|| deck.deckhand(&["run", TWO_SERVICES, "--var", "egress=nat_per_zone"]));
    again.success().stdout_has("no changes");
    requests.assert_read_only();

    // Back to one gateway: the second zone's gateway, address and table go, the first serves both.
    deck.deckhand(&["run", TWO_SERVICES])
        .success()
        .stdout_has("- nat_gateway shop-nat-b")
        .stdout_has("- route_table shop-private-b");
    assert_eq!(nat_gateways(&deck), first);
    assert_eq!(elastic_ips(&deck), 1);
    for subnet in private.subnets() {
        let filter = Filter::builder().name("association.subnet-id").values(subnet.subnet_id().unwrap()).build();
        let tables = aws.block_on(aws.ec2.describe_route_tables().filters(filter).send()).unwrap();
        let routes = tables.route_tables()[0].routes();
        let nat = routes.iter().find_map(|r| r.nat_gateway_id()).unwrap();
        assert!(first.contains_key(nat), "{routes:?}");
    }
    deck.deckhand(&["run", TWO_SERVICES]).success().stdout_has("no changes");
}

/// The route table named `name`: the target of its default route and its subnets' names.
fn route_table(deck: &Deck, name: &str) -> (String, Vec<String>) {
    let aws = deck.aws();
    let filter = Filter::builder().name("tag:Name").values(name).build();
    let out = aws.block_on(aws.ec2.describe_route_tables().filters(filter).send()).unwrap();
    assert_eq!(out.route_tables().len(), 1, "one route table {name}");
    let table = &out.route_tables()[0];
    let route =
        table.routes().iter().find(|r| r.destination_cidr_block() == Some("0.0.0.0/0")).expect("a default route");
    let target = route.nat_gateway_id().or(route.gateway_id()).unwrap().to_string();
    let ids: Vec<String> = table.associations().iter().filter_map(|a| a.subnet_id()).map(str::to_string).collect();
    let subnets = aws.block_on(aws.ec2.describe_subnets().set_subnet_ids(Some(ids)).send()).unwrap();
    let mut names: Vec<String> = subnets
        .subnets()
        .iter()
        .filter_map(|s| s.tags().iter().find(|t| t.key() == Some("Name")).and_then(|t| t.value()))
        .map(str::to_string)
        .collect();
    names.sort();
    (target, names)
}

#[test]
fn an_environment_in_a_vpc_of_its_own_converges_and_destroy_leaves_none_of_it() {
    let deck = Deck::new();
    let own_vpc = ["run", TWO_SERVICES, "--var", "vpc_cidr=10.20.0.0/16"];
    deck.deckhand(&own_vpc).success().stdout_has("+ vpc shop").stdout_has("+ internet_gateway shop");

    let aws = deck.aws();
    let vpcs = aws.block_on(aws.ec2.describe_vpcs().filters(stack_filter()).send()).unwrap();
    assert_eq!(vpcs.vpcs().len(), 1);
    let vpc = vpcs.vpcs()[0].vpc_id().unwrap().to_string();
    assert_eq!(vpcs.vpcs()[0].cidr_block(), Some("10.20.0.0/16"));
    let gateways = aws.block_on(aws.ec2.describe_internet_gateways().filters(stack_filter()).send()).unwrap();
    let [gateway] = gateways.internet_gateways() else { panic!("one internet gateway: {gateways:?}") };
    let attached: Vec<&str> = gateway.attachments().iter().filter_map(|a| a.vpc_id()).collect();
    assert_eq!(attached, [vpc.as_str()]);
    let igw = gateway.internet_gateway_id().unwrap();

    // Public subnets (the ALB's, the NAT gateway's) route to the gateway, private ones to the NAT
    // gateway in a public subnet; everything is in the new VPC.
    let (public_target, public) = route_table(&deck, "shop-public");
    assert_eq!((public_target.as_str(), public), (igw, vec!["shop-public-a".to_string(), "shop-public-b".to_string()]));
    let (private_target, private) = route_table(&deck, "shop-private");
    assert_eq!(private, ["shop-a", "shop-b"]);
    let nats = nat_gateways(&deck);
    assert_eq!(nats.keys().collect::<Vec<_>>(), [&private_target]);
    let subnets = aws.block_on(aws.ec2.describe_subnets().filters(stack_filter()).send()).unwrap();
    assert_eq!(subnets.subnets().len(), 4);
    assert!(subnets.subnets().iter().all(|s| s.vpc_id() == Some(vpc.as_str())), "{subnets:?}");
    let lbs = aws.block_on(aws.elbv2.describe_load_balancers().names("shop").send()).unwrap();
    assert_eq!(lbs.load_balancers()[0].vpc_id(), Some(vpc.as_str()));
    assert_eq!(active_services(&deck).values().next().unwrap(), &["shop-api", "shop-web"]);

    let (again, requests) = deck.recorded(|| deck.deckhand(&own_vpc));
    again.success().stdout_has("no changes");
    requests.assert_read_only();

    deck.deckhand(&["destroy", "--stack", "shop", "--yes"]).success();
    let left = |what: usize, kind: &str| assert_eq!(what, 0, "no {kind} of the stack is left");
    left(aws.block_on(aws.ec2.describe_vpcs().filters(stack_filter()).send()).unwrap().vpcs().len(), "VPC");
    let gateways = aws.block_on(aws.ec2.describe_internet_gateways().filters(stack_filter()).send()).unwrap();
    left(gateways.internet_gateways().len(), "internet gateway");
    left(aws.block_on(aws.ec2.describe_subnets().filters(stack_filter()).send()).unwrap().subnets().len(), "subnet");
    let tables = aws.block_on(aws.ec2.describe_route_tables().filters(stack_filter()).send()).unwrap();
    left(tables.route_tables().len(), "route table");
    left(nat_gateways(&deck).len(), "NAT gateway");
    left(elastic_ips(&deck), "elastic IP");
}

#[test]
fn a_service_can_take_a_host_and_a_rule_needs_its_priority() {
    let deck = Deck::new();
    let admin = r#"
let admin = fargate::web_service(env, #{ name: "shop-admin", image: image, host: "admin.example.com", priority: 20 });
print(`admin: ${admin.url}`);
"#;
    let (plan, requests) = deck.recorded(|| deck.plan(&format!("{}{admin}", two_services()), &[]));
    plan.success()
        .stdout_has("+ listener_rule shop:80#20 (hosts admin.example.com, forward shop-admin)")
        .stdout_has("admin: http://admin.example.com");
    requests.assert_read_only();

    let unordered = admin.replace(", priority: 20", "");
    let script = format!("{}{unordered}", two_services());
    let line = script.lines().position(|l| l.starts_with("let admin = ")).unwrap() + 1;
    let (outcome, requests) = deck.recorded(|| deck.run(&script, &[]));
    outcome
        .failure()
        .stderr_has("give the \"priority\" of the rule for admin.example.com")
        .stderr_has(&format!("--> deploy.rhai:{line}:"));
    assert_eq!(requests.mutating(), Vec::<String>::new());
}

/// An environment serving HTTPS on a domain, with two services attached by path.
const ON_A_DOMAIN: &str = r#"
import "fargate" as fargate;
stack("shop");
let image = "public.ecr.aws/nginx/nginx-unprivileged:stable";
let env = fargate::environment(#{ name: "shop", domain: "shop.example.com", zone: "example.com" });
let web = fargate::web_service(env, #{ name: "shop-web", image: image, path: "/*", priority: 100 });
let api = fargate::web_service(env, #{ name: "shop-api", image: image, path: "/api/*", priority: 10 });
print(`web: ${web.url}`);
print(`api: ${api.url}`);
"#;

#[test]
fn an_environment_on_a_domain_serves_its_services_over_https() {
    let deck = Deck::new();
    let aws = deck.aws();
    let zone = aws
        .block_on(aws.route53.create_hosted_zone().name("example.com").caller_reference("test-example.com").send())
        .expect("CreateHostedZone");
    let zone_id = zone.hosted_zone().unwrap().id().trim_start_matches("/hostedzone/").to_string();

    deck.run(ON_A_DOMAIN, &[])
        .success()
        .stdout_has("+ certificate shop.example.com")
        .stdout_has("+ listener shop:443")
        .stdout_has("+ dns_record shop.example.com A+AAAA")
        .stdout_has("web: https://shop.example.com\n")
        .stdout_has("api: https://shop.example.com/api/\n");

    // One certificate for the name, issued (validated through the zone).
    let summaries = aws.block_on(aws.acm.list_certificates().send()).unwrap();
    let arns: Vec<&str> = summaries
        .certificate_summary_list()
        .iter()
        .filter(|c| c.domain_name() == Some("shop.example.com"))
        .filter_map(|c| c.certificate_arn())
        .collect();
    let [certificate] = arns[..] else { panic!("one certificate for shop.example.com: {arns:?}") };
    let described = aws.block_on(aws.acm.describe_certificate().certificate_arn(certificate).send()).unwrap();
    assert_eq!(described.certificate().unwrap().status().map(|s| s.as_str()), Some("ISSUED"));

    // HTTPS on 443 with that certificate, answering 404 unless a service's rule takes the request;
    // 80 only redirects to it, with no rules of its own.
    let lb =
        aws.block_on(aws.elbv2.describe_load_balancers().names("shop").send()).unwrap().load_balancers()[0].clone();
    let listeners =
        aws.block_on(aws.elbv2.describe_listeners().load_balancer_arn(lb.load_balancer_arn().unwrap()).send()).unwrap();
    let mut ports: Vec<i32> = listeners.listeners().iter().filter_map(|l| l.port()).collect();
    ports.sort();
    assert_eq!(ports, [80, 443]);
    let https = listeners.listeners().iter().find(|l| l.port() == Some(443)).unwrap();
    assert_eq!(https.protocol().map(|p| p.as_str()), Some("HTTPS"));
    let served: Vec<&str> = https.certificates().iter().filter_map(|c| c.certificate_arn()).collect();
    assert_eq!(served, [certificate]);
    let groups = target_groups(&deck);
    let (default, rules) = listener_and_rules(&deck, 443);
    assert_eq!(default, "fixed-response 404");
    assert_eq!(rules["10"], (vec!["/api/*".to_string()], groups["shop-api"].clone()));
    assert_eq!(rules["100"], (vec!["/*".to_string()], groups["shop-web"].clone()));
    assert_eq!(rules.len(), 2, "{rules:?}");
    let (default, rules) = listener_and_rules(&deck, 80);
    assert_eq!(default, "redirect HTTPS:443 HTTP_301");
    assert!(rules.is_empty(), "{rules:?}");

    // The name is an alias of the load balancer.
    let sets = aws.block_on(aws.route53.list_resource_record_sets().hosted_zone_id(&zone_id).send()).unwrap();
    for rtype in ["A", "AAAA"] {
        let set = sets
            .resource_record_sets()
            .iter()
            .find(|s| s.name().trim_end_matches('.') == "shop.example.com" && s.r#type().as_str() == rtype)
            .unwrap_or_else(|| panic!("an {rtype} record for shop.example.com: {sets:?}"));
        let alias = set.alias_target().expect("an alias record");
        assert_eq!(alias.dns_name().trim_end_matches('.'), lb.dns_name().unwrap().to_ascii_lowercase());
        assert_eq!(alias.hosted_zone_id(), lb.canonical_hosted_zone_id().unwrap());
    }
    assert_eq!(active_services(&deck).values().next().unwrap(), &["shop-api", "shop-web"]);

    let (again, requests) = deck.recorded(|| deck.run(ON_A_DOMAIN, &[]));
    again.success().stdout_has("no changes");
    requests.assert_read_only();
}
