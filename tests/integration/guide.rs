//! The bundled scripts: `scripts/fargate-alb.rhai` reproduces the guide (checked fact by fact
//! through the SDK), converges, plans read-only, and rolls out a new image with exactly one new
//! revision and one service update; `scripts/web-service.rhai` does the same through the stdlib.

use aws_sdk_ec2::types::Filter;

use crate::support::{Deck, Outcome};

const GUIDE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/fargate-alb.rhai");
const WEB_SERVICE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/web-service.rhai");

const CREATES: &[&str] = &[
    "+ subnet myapp-a",
    "+ subnet myapp-b",
    "+ nat_gateway myapp-nat",
    "+ route_table myapp-private",
    "+ security_group myapp-alb",
    "+ security_group myapp-app",
    "+ load_balancer myapp",
    "+ target_group myapp",
    "+ listener myapp:80",
    "+ cluster myapp",
    "+ role myapp-exec",
    "+ log_group /ecs/myapp",
    "+ task_definition myapp",
    "+ service myapp",
];

fn guide(deck: &Deck, extra: &[&str]) -> Outcome {
    let mut args = vec!["run", GUIDE];
    args.extend_from_slice(extra);
    deck.deckhand(&args)
}

#[test]
fn the_bundled_script_reproduces_the_guide() {
    let deck = Deck::new();
    let (outcome, requests) = deck.recorded(|| guide(&deck, &[]));
    outcome
        .success()
        .expect_changes(CREATES)
        // wait_stable waited for the rehearsed rollout (both tasks started and their targets
        // passed the health checks); the desired count deckhand sent is checked in the
        // CreateService body below.
        .stdout_has("service myapp is stable: 2/2 running")
        .stdout_has("http://myapp-")
        .stdout_has("14 created, 0 updated, 0 unchanged");
    let aws = deck.aws();

    // Two subnets in us-west-2a/2b of the default VPC, private (no public IP on launch).
    let default_vpc = deck.default_vpc_id();
    let stack_filter = Filter::builder().name("tag:deckhand:stack").values("myapp").build();
    let subnets = aws.block_on(aws.ec2.describe_subnets().filters(stack_filter).send()).unwrap().subnets().to_vec();
    let mut zones: Vec<&str> = subnets.iter().map(|s| s.availability_zone().unwrap()).collect();
    zones.sort();
    assert_eq!(zones, ["us-west-2a", "us-west-2b"]);
    assert!(
        subnets.iter().all(|s| s.vpc_id() == Some(default_vpc.as_str()) && s.map_public_ip_on_launch() == Some(false))
    );
    let mut subnet_ids: Vec<String> = subnets.iter().map(|s| s.subnet_id().unwrap().to_string()).collect();
    subnet_ids.sort();

    // Security groups: ALB open on 80; the app admits 8080 from the ALB's group only (TODO 1).
    let group = |name: &str| {
        let filter = Filter::builder().name("group-name").values(name).build();
        aws.block_on(aws.ec2.describe_security_groups().filters(filter).send()).unwrap().security_groups()[0].clone()
    };
    let (alb_sg, app_sg) = (group("myapp-alb"), group("myapp-app"));
    let alb_rules = alb_sg.ip_permissions();
    assert_eq!(alb_rules.len(), 1);
    assert_eq!((alb_rules[0].from_port(), alb_rules[0].ip_ranges()[0].cidr_ip()), (Some(80), Some("0.0.0.0/0")));
    let app_rules = app_sg.ip_permissions();
    assert_eq!(app_rules.len(), 1);
    assert_eq!(app_rules[0].from_port(), Some(8080));
    assert!(app_rules[0].ip_ranges().is_empty(), "no CIDR may reach the app");
    assert_eq!(app_rules[0].user_id_group_pairs()[0].group_id(), alb_sg.group_id());

    // An internet-facing ALB in the default VPC's public subnets of both AZs, a target group of
    // type ip on 8080, and a listener on 80 forwarding to it.
    let lb =
        aws.block_on(aws.elbv2.describe_load_balancers().names("myapp").send()).unwrap().load_balancers()[0].clone();
    assert_eq!(lb.scheme().map(|s| s.as_str()), Some("internet-facing"));
    assert_eq!(lb.vpc_id(), Some(default_vpc.as_str()));
    assert_eq!(lb.availability_zones().len(), 2);
    assert_eq!(lb.security_groups(), [alb_sg.group_id().unwrap().to_string()]);
    let tg = aws.block_on(aws.elbv2.describe_target_groups().names("myapp").send()).unwrap().target_groups()[0].clone();
    assert_eq!(tg.target_type().map(|t| t.as_str()), Some("ip"));
    assert_eq!(tg.port(), Some(8080));
    let listeners =
        aws.block_on(aws.elbv2.describe_listeners().load_balancer_arn(lb.load_balancer_arn().unwrap()).send()).unwrap();
    let listener = &listeners.listeners()[0];
    assert_eq!(listener.port(), Some(80));
    assert_eq!(listener.default_actions()[0].target_group_arn(), tg.target_group_arn());

    // The cluster, and the task definition: awsvpc, FARGATE, 256/512, the execution role with its
    // policy, port 8080, CloudWatch logs, the restart policy, myapp_data mounted at /myapp/data.
    let clusters = aws.block_on(aws.ecs.describe_clusters().clusters("myapp").send()).unwrap();
    assert_eq!(clusters.clusters()[0].status(), Some("ACTIVE"));
    let task = aws.block_on(aws.ecs.describe_task_definition().task_definition("myapp").send()).unwrap();
    let task = task.task_definition().unwrap();
    assert_eq!(task.network_mode().map(|m| m.as_str()), Some("awsvpc"));
    assert_eq!(task.requires_compatibilities().iter().map(|c| c.as_str()).collect::<Vec<_>>(), ["FARGATE"]);
    assert_eq!((task.cpu(), task.memory()), (Some("256"), Some("512")));
    let role = aws.block_on(aws.iam.get_role().role_name("myapp-exec").send()).unwrap();
    assert_eq!(task.execution_role_arn(), role.role().map(|r| r.arn()));
    let policies = aws.block_on(aws.iam.list_attached_role_policies().role_name("myapp-exec").send()).unwrap();
    assert_eq!(
        policies.attached_policies()[0].policy_arn(),
        Some("arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy")
    );
    let container = &task.container_definitions()[0];
    assert_eq!(container.port_mappings()[0].container_port(), Some(8080));
    // The default image listens on 8080 (nginx-unprivileged; plain nginx listens on 80).
    assert_eq!(container.image(), Some("public.ecr.aws/nginx/nginx-unprivileged:stable"));
    let log = container.log_configuration().unwrap();
    assert_eq!(log.log_driver().as_str(), "awslogs");
    assert_eq!(log.options().unwrap().get("awslogs-group").map(String::as_str), Some("/ecs/myapp"));
    let groups = aws.block_on(aws.logs.describe_log_groups().log_group_name_prefix("/ecs/myapp").send()).unwrap();
    assert_eq!(groups.log_groups()[0].retention_in_days(), Some(30));
    assert_eq!(container.restart_policy().map(|r| r.enabled()), Some(true));
    assert_eq!(task.volumes()[0].name(), Some("myapp_data"));
    let mount = &container.mount_points()[0];
    assert_eq!((mount.source_volume(), mount.container_path()), (Some("myapp_data"), Some("/myapp/data")));

    // The service: no public IP, the two private subnets, the app group, behind the target group.
    let services = aws.block_on(aws.ecs.describe_services().cluster("myapp").services("myapp").send()).unwrap();
    let service = &services.services()[0];
    assert_eq!(service.desired_count(), 2);
    let network = service.network_configuration().unwrap().awsvpc_configuration().unwrap();
    assert_eq!(network.assign_public_ip().map(|a| a.as_str()), Some("DISABLED"));
    let mut service_subnets = network.subnets().to_vec();
    service_subnets.sort();
    assert_eq!(service_subnets, subnet_ids);
    assert_eq!(network.security_groups(), [app_sg.group_id().unwrap().to_string()]);
    let mapping = &service.load_balancers()[0];
    assert_eq!(
        (mapping.target_group_arn(), mapping.container_name(), mapping.container_port()),
        (tg.target_group_arn(), Some("app"), Some(8080))
    );

    // The emulator drops the strategy from its describe; the request itself carried FARGATE.
    let create = requests.0.iter().find(|r| r.action == "CreateService").expect("CreateService was sent");
    let body: serde_json::Value = serde_json::from_str(&create.body).unwrap();
    assert_eq!(body["capacityProviderStrategy"][0]["capacityProvider"], "FARGATE");
    assert!(body.get("launchType").is_none());
    assert_eq!(body["desiredCount"], 2);
    assert_eq!(body["loadBalancers"][0]["containerPort"], 8080);

    // Image pulls without public IPs: the private subnets route 0.0.0.0/0 to the NAT gateway.
    let filter = Filter::builder().name("tag:Name").values("myapp-private").build();
    let table = aws.block_on(aws.ec2.describe_route_tables().filters(filter).send()).unwrap().route_tables()[0].clone();
    assert!(
        table.routes().iter().any(|r| r.destination_cidr_block() == Some("0.0.0.0/0") && r.nat_gateway_id().is_some())
    );

    // Second run: nothing to do, nothing mutating sent.
    let (second, requests) = deck.recorded(|| guide(&deck, &[]));
    let unchanged: Vec<String> = CREATES.iter().map(|c| c.replacen('+', "=", 1)).collect();
    let unchanged: Vec<&str> = unchanged.iter().map(String::as_str).collect();
    second.success().expect_changes(&unchanged).stdout_has("0 created, 0 updated, 14 unchanged");
    requests.assert_read_only();
}

#[test]
fn planning_the_guide_on_an_empty_account_sends_nothing_mutating() {
    let deck = Deck::new();
    let (plan, requests) = deck.recorded(|| guide(&deck, &["--plan"]));
    plan.success().expect_changes(CREATES).stdout_has("Plan: 14 to create").stdout_has("http://(known after apply)");
    requests.assert_read_only();
}

#[test]
fn a_new_image_is_one_new_revision_and_one_service_update() {
    let deck = Deck::new();
    guide(&deck, &["--var", "image=nginx:1.25"]).success();
    let (outcome, requests) = deck.recorded(|| guide(&deck, &["--var", "image=nginx:1.27"]));
    let mut expected: Vec<String> = CREATES.iter().map(|c| c.replacen('+', "=", 1)).collect();
    expected[12] = "~ task_definition myapp".into();
    expected[13] = "~ service myapp".into();
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    outcome
        .success()
        .expect_changes(&expected)
        .stdout_has("containers[app].image: nginx:1.25 -> nginx:1.27")
        .stdout_has("0 created, 2 updated, 12 unchanged");
    assert_eq!(requests.mutating(), ["ecs RegisterTaskDefinition", "ecs UpdateService"]);
}

#[test]
fn with_a_certificate_https_serves_and_http_redirects() {
    let deck = Deck::new();
    let certificate = deck.request_certificate();
    let var = format!("certificate_arn={certificate}");
    guide(&deck, &["--var", &var]).success().stdout_has("+ listener myapp:443").stdout_has("https://myapp-");
    let aws = deck.aws();
    let lb =
        aws.block_on(aws.elbv2.describe_load_balancers().names("myapp").send()).unwrap().load_balancers()[0].clone();
    let listeners =
        aws.block_on(aws.elbv2.describe_listeners().load_balancer_arn(lb.load_balancer_arn().unwrap()).send()).unwrap();
    let https = listeners.listeners().iter().find(|l| l.port() == Some(443)).expect("an HTTPS listener");
    assert_eq!(https.certificates()[0].certificate_arn(), Some(certificate.as_str()));
    assert!(https.default_actions()[0].target_group_arn().is_some());
    let http = listeners.listeners().iter().find(|l| l.port() == Some(80)).expect("an HTTP listener");
    let redirect = http.default_actions()[0].redirect_config().expect("port 80 redirects");
    assert_eq!((redirect.port(), redirect.protocol()), (Some("443"), Some("HTTPS")));
    assert_eq!(redirect.status_code().map(|s| s.as_str()), Some("HTTP_301"));
    guide(&deck, &["--var", &var]).success().stdout_has("0 created, 0 updated");
}

#[test]
fn egress_through_vpc_endpoints_instead_of_a_nat_gateway() {
    let deck = Deck::new();
    let ecr_image = "image=123456789012.dkr.ecr.us-west-2.amazonaws.com/myapp:1.4";
    guide(&deck, &["--var", "egress=endpoints", "--var", ecr_image])
        .success()
        .stdout_has("+ vpc_endpoint myapp-ecr.dkr")
        .stdout_has("+ vpc_endpoint myapp-s3");
    // AWS has the four endpoints, the S3 gateway on the private route table, and no NAT gateway.
    let aws = deck.aws();
    let of_stack = |tags: &[aws_sdk_ec2::types::Tag]| {
        tags.iter().any(|t| t.key() == Some("deckhand:stack") && t.value() == Some("myapp"))
    };
    let endpoints = aws.block_on(aws.ec2.describe_vpc_endpoints().send()).unwrap();
    let mut endpoints: Vec<_> = endpoints.vpc_endpoints().iter().filter(|e| of_stack(e.tags())).collect();
    endpoints.sort_by_key(|e| e.service_name().unwrap_or_default().to_string());
    let kinds: Vec<(&str, &str)> = endpoints
        .iter()
        .map(|e| (e.service_name().unwrap_or(""), e.vpc_endpoint_type().map_or("", |t| t.as_str())))
        .collect();
    assert_eq!(
        kinds,
        [
            ("com.amazonaws.us-west-2.ecr.api", "Interface"),
            ("com.amazonaws.us-west-2.ecr.dkr", "Interface"),
            ("com.amazonaws.us-west-2.logs", "Interface"),
            ("com.amazonaws.us-west-2.s3", "Gateway"),
        ]
    );
    let private = Filter::builder().name("tag:Name").values("myapp-private").build();
    let tables = aws.block_on(aws.ec2.describe_route_tables().filters(private).send()).unwrap();
    let private_rt = tables.route_tables()[0].route_table_id().unwrap();
    assert_eq!(endpoints[3].route_table_ids(), [private_rt], "the S3 gateway serves the private route table");
    let nats = aws.block_on(aws.ec2.describe_nat_gateways().send()).unwrap();
    assert!(nats.nat_gateways().iter().all(|n| !of_stack(n.tags())), "no NAT gateway: {nats:?}");
    let out = guide(&deck, &["--var", "egress=endpoints", "--var", ecr_image]).success();
    assert!(!out.stdout.contains("warning: tasks without a public IP"), "{}", out.stdout);

    // The endpoints serve private ECR of the region only: the default image (ECR Public) and a
    // Docker Hub image cannot be pulled through them.
    guide(&deck, &["--var", "egress=endpoints", "--plan"])
        .success()
        .stdout_has(
            "warning: tasks without a public IP in subnet(s) myapp-a, myapp-b reach only VPC endpoints, which serve \
         private ECR in us-west-2",
        )
        .stdout_has("cannot pull public.ecr.aws/nginx/nginx-unprivileged:stable;");
    // Through a NAT gateway any registry is reachable.
    let nat = guide(&deck, &["--var", "image=nginx:1.27", "--plan"]).success();
    assert!(!nat.stdout.contains("reach only VPC endpoints"), "{}", nat.stdout);
    guide(&deck, &["--var", "egress=carrier-pigeon"])
        .failure()
        .stderr_has("--var egress must be \"nat\" or \"endpoints\"");
}

#[test]
fn a_service_whose_tasks_cannot_pull_images_is_flagged() {
    let deck = Deck::new();
    let script = r#"
stack("trap");
let vpc = default_vpc();
let subnets = [
    subnet(vpc, #{ name: "trap-a", az: "us-west-2a", cidr: "172.31.96.0/24" }),
    subnet(vpc, #{ name: "trap-b", az: "us-west-2b", cidr: "172.31.97.0/24" }),
];
let task = task_definition(#{ family: "trap", cpu: 256, memory: 512,
    containers: [#{ name: "app", image: "nginx", port: 80 }] });
service(cluster("trap"), #{ name: "trap", task: task, desired: 1, subnets: subnets });
"#;
    deck.run(script, &["--plan"])
        .success()
        .stdout_has("warning: tasks without a public IP in subnet(s) trap-a, trap-b cannot pull images or send logs");
    let (strict, requests) = deck.recorded(|| deck.run(script, &["--strict"]));
    strict
        .failure()
        .stderr_has("cannot pull images")
        .stderr_has("(an error because of --strict)")
        .stderr_has("--> deploy.rhai:10:1");
    requests.assert_read_only();
}

#[test]
fn the_stdlib_builds_the_same_pattern_in_ten_lines() {
    let deck = Deck::new();
    deck.deckhand(&["run", WEB_SERVICE])
        .success()
        .stdout_has("+ load_balancer web")
        .stdout_has("+ service web")
        .stdout_has("http://web-")
        .stdout_has("14 created");
    // AWS has the load balancer and the service, running the desired two tasks' worth.
    let aws = deck.aws();
    let lbs = aws.block_on(aws.elbv2.describe_load_balancers().names("web").send()).unwrap();
    assert_eq!(lbs.load_balancers()[0].scheme().map(|s| s.as_str()), Some("internet-facing"));
    let services = aws.block_on(aws.ecs.describe_services().cluster("web").services("web").send()).unwrap();
    let service = &services.services()[0];
    assert_eq!((service.status(), service.desired_count()), (Some("ACTIVE"), 2));
    let target_group = service.load_balancers()[0].target_group_arn().expect("the service is behind the ALB");
    let groups = aws.block_on(aws.elbv2.describe_target_groups().target_group_arns(target_group).send()).unwrap();
    assert_eq!(groups.target_groups()[0].load_balancer_arns(), [lbs.load_balancers()[0].load_balancer_arn().unwrap()]);
    let (second, requests) = deck.recorded(|| deck.deckhand(&["run", WEB_SERVICE]));
    second.success().stdout_has("0 created, 0 updated, 14 unchanged");
    requests.assert_read_only();
    deck.write("typo.rhai", "import \"fargate\" as fargate;\nstack(\"t\");\nfargate::web_service(#{ name: \"t\", image: \"nginx\", prot: 80 });\n");
    deck.deckhand(&["run", "typo.rhai"]).failure().stderr_has("unknown key \"prot\" in fargate::web_service()");
}

#[test]
fn checking_the_guide_needs_no_account_and_shows_its_warnings() {
    let deck = Deck::new();
    let (outcome, requests) = deck.recorded(|| deck.deckhand(&["check", GUIDE]));
    outcome
        .success()
        .stdout_has("warning: volume myapp_data of task definition myapp is task storage")
        .stdout_has("Check passed: 14 resources declared (no AWS calls)");
    requests.assert_none();
}
