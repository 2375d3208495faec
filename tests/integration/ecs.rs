//! ECS on Fargate: clusters, task definitions and services converge, plan sends nothing mutating,
//! bad input fails before any change, and wait_stable tells success from failure.

use aws_sdk_ecs::types::{AssignPublicIp, Compatibility, LogDriver, NetworkMode};
use aws_sdk_elasticloadbalancingv2::types::{ProtocolEnum, TargetTypeEnum};

use crate::support::Deck;

/// Prerequisites the script takes as ARNs (their primitives live in other modules).
struct Prerequisites {
    role_arn: String,
    target_group_arn: String,
    instance_target_group_arn: String,
}

const ASSUME_ECS_TASKS: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// The account's egress for private subnets, set up outside the stack as many accounts have it: the
/// VPC's main route table (which the stack's subnets use) sends 0.0.0.0/0 to a NAT gateway, whose
/// own subnet routes to the internet gateway. Without it, tasks without a public IP cannot pull
/// `nginx:1.25` (CannotPullContainerError, as on AWS). Returns once the NAT gateway is available.
async fn private_egress(aws: &deckhand::runtime::Aws, vpc_id: &str, nat_subnet: &str) {
    use aws_sdk_ec2::types::Filter;
    let filter = |name: &str, value: &str| Filter::builder().name(name).values(value).build();
    let gateways =
        aws.ec2.describe_internet_gateways().filters(filter("attachment.vpc-id", vpc_id)).send().await.unwrap();
    let igw = gateways.internet_gateways()[0].internet_gateway_id().unwrap().to_string();
    let address = aws.ec2.allocate_address().send().await.unwrap();
    let nat = aws
        .ec2
        .create_nat_gateway()
        .subnet_id(nat_subnet)
        .allocation_id(address.allocation_id().unwrap())
        .send()
        .await
        .unwrap();
    let nat_id = nat.nat_gateway().unwrap().nat_gateway_id().unwrap().to_string();
    let public = aws.ec2.create_route_table().vpc_id(vpc_id).send().await.unwrap();
    let public_id = public.route_table().unwrap().route_table_id().unwrap().to_string();
    aws.ec2
        .create_route()
        .route_table_id(&public_id)
        .destination_cidr_block("0.0.0.0/0")
        .gateway_id(&igw)
        .send()
        .await
        .unwrap();
    aws.ec2.associate_route_table().route_table_id(&public_id).subnet_id(nat_subnet).send().await.unwrap();
    let main = aws
        .ec2
        .describe_route_tables()
        .filters(filter("vpc-id", vpc_id))
        .filters(filter("association.main", "true"))
        .send()
        .await
        .unwrap();
    let main_id = main.route_tables()[0].route_table_id().unwrap().to_string();
    loop {
        let out = aws.ec2.describe_nat_gateways().nat_gateway_ids(&nat_id).send().await.unwrap();
        if out.nat_gateways()[0].state().map(|s| s.as_str()) == Some("available") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    aws.ec2
        .replace_route()
        .route_table_id(&main_id)
        .destination_cidr_block("0.0.0.0/0")
        .nat_gateway_id(&nat_id)
        .send()
        .await
        .unwrap();
}

fn prerequisites(deck: &Deck) -> Prerequisites {
    let aws = deck.aws();
    aws.block_on(async {
        let role = aws
            .iam
            .create_role()
            .role_name("shop-exec")
            .assume_role_policy_document(ASSUME_ECS_TASKS)
            .send()
            .await
            .unwrap();
        aws.iam
            .attach_role_policy()
            .role_name("shop-exec")
            .policy_arn("arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy")
            .send()
            .await
            .unwrap();
        aws.logs.create_log_group().log_group_name("/ecs/shop").send().await.unwrap();
        let vpcs = aws
            .ec2
            .describe_vpcs()
            .filters(aws_sdk_ec2::types::Filter::builder().name("isDefault").values("true").build())
            .send()
            .await
            .unwrap();
        let vpc_id = vpcs.vpcs()[0].vpc_id().unwrap().to_string();
        let target_group = |name: &str, target_type: TargetTypeEnum| {
            aws.elbv2
                .create_target_group()
                .name(name)
                .protocol(ProtocolEnum::Http)
                .port(8080)
                .vpc_id(&vpc_id)
                .target_type(target_type)
                .send()
        };
        let ip = target_group("shop", TargetTypeEnum::Ip).await.unwrap();
        let instance = target_group("shop-instances", TargetTypeEnum::Instance).await.unwrap();
        let arn = |out: &aws_sdk_elasticloadbalancingv2::operation::create_target_group::CreateTargetGroupOutput| {
            out.target_groups()[0].target_group_arn().unwrap().to_string()
        };
        // ECS registers tasks only in a target group a load balancer forwards to.
        let default_subnets = aws
            .ec2
            .describe_subnets()
            .filters(aws_sdk_ec2::types::Filter::builder().name("default-for-az").values("true").build())
            .send()
            .await
            .unwrap();
        private_egress(&aws, &vpc_id, default_subnets.subnets()[0].subnet_id().unwrap()).await;
        let lb = aws
            .elbv2
            .create_load_balancer()
            .name("shop")
            .set_subnets(Some(
                default_subnets.subnets().iter().filter_map(|s| s.subnet_id().map(str::to_string)).collect(),
            ))
            .send()
            .await
            .unwrap();
        aws.elbv2
            .create_listener()
            .load_balancer_arn(lb.load_balancers()[0].load_balancer_arn().unwrap())
            .protocol(ProtocolEnum::Http)
            .port(80)
            .default_actions(
                aws_sdk_elasticloadbalancingv2::types::Action::builder()
                    .r#type(aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum::Forward)
                    .target_group_arn(arn(&ip))
                    .build(),
            )
            .send()
            .await
            .unwrap();
        Prerequisites {
            role_arn: role.role().unwrap().arn().to_string(),
            target_group_arn: arn(&ip),
            instance_target_group_arn: arn(&instance),
        }
    })
}

/// The guide's app: two subnets, the app's security group, cluster, task definition with logs,
/// restart policy and a volume, and a service behind the target group.
const APP: &str = r#"stack("shop");
let vpc = default_vpc();
let subnets = [
    subnet(vpc, #{ name: "shop-a", az: "us-west-2a", cidr: "172.31.96.0/24" }),
    subnet(vpc, #{ name: "shop-b", az: "us-west-2b", cidr: "172.31.97.0/24" }),
];
let app_sg = security_group(vpc, #{ name: "shop-app", ingress: [ #{ port: 8080, cidr: "172.31.0.0/16" } ] });
let cluster = cluster("shop");
let task = task_definition(#{ family: "shop", cpu: 256, memory: 512, execution_role: "ROLE_ARN",
    containers: [ #{ name: "app", image: vars.image ?? "nginx:1.25", port: 8080, logs: "/ecs/shop",
                     env: #{ MODE: "production" }, restart: #{ enabled: true, attempt_period: 120 },
                     mounts: [ #{ volume: "shop_data", path: "/shop/data" } ] } ],
    volumes: [ #{ name: "shop_data" } ] });
let svc = service(cluster, #{ name: "shop", task: task, desired: 2, subnets: subnets,
    security_groups: [app_sg], target_group: "TG_ARN", container: "app", port: 8080 });
wait_stable(svc);
print(`service ${svc.name} runs ${task.family}:${task.revision}`);
"#;

/// The plan of [`APP`] re-run unchanged.
const APP_UNCHANGED: [&str; 6] = [
    "= subnet shop-a",
    "= subnet shop-b",
    "= security_group shop-app",
    "= cluster shop",
    "= task_definition shop (shop:1)",
    "= service shop",
];

fn app(p: &Prerequisites) -> String {
    APP.replace("ROLE_ARN", &p.role_arn).replace("TG_ARN", &p.target_group_arn)
}

fn describe_service(deck: &Deck) -> aws_sdk_ecs::types::Service {
    let aws = deck.aws();
    let out = aws.block_on(aws.ecs.describe_services().cluster("shop").services("shop").send()).unwrap();
    out.services()[0].clone()
}

/// The `shop` cluster with its settings, as ECS describes it.
fn describe_cluster(deck: &Deck) -> aws_sdk_ecs::types::Cluster {
    let aws = deck.aws();
    let request = aws.ecs.describe_clusters().clusters("shop").include(aws_sdk_ecs::types::ClusterField::Settings);
    aws.block_on(request.send()).unwrap().clusters()[0].clone()
}

fn describe_task(deck: &Deck, name: &str) -> aws_sdk_ecs::types::TaskDefinition {
    let aws = deck.aws();
    let out = aws.block_on(aws.ecs.describe_task_definition().task_definition(name).send()).unwrap();
    out.task_definition().unwrap().clone()
}

fn stack_subnet_ids(deck: &Deck) -> Vec<String> {
    let aws = deck.aws();
    let filter = aws_sdk_ec2::types::Filter::builder().name("tag:deckhand:stack").values("shop").build();
    let out = aws.block_on(aws.ec2.describe_subnets().filters(filter).send()).unwrap();
    let mut ids: Vec<String> = out.subnets().iter().map(|s| s.subnet_id().unwrap().to_string()).collect();
    ids.sort();
    ids
}

#[test]
fn plan_on_an_empty_account_lists_creates_and_sends_nothing_mutating() {
    let deck = Deck::new();
    let p = prerequisites(&deck);
    let (plan, requests) = deck.recorded(|| deck.plan(&app(&p), &[]));
    plan.success()
        .expect_changes(&[
            "+ subnet shop-a",
            "+ subnet shop-b",
            "+ security_group shop-app",
            "+ cluster shop ((known after apply))",
            "+ task_definition shop (shop:(known after apply))",
            "+ service shop ((known after apply), 2 desired)",
        ])
        .stdout_has("service shop runs shop:(known after apply)")
        .stdout_has("Plan: 6 to create, 0 to update, 0 unchanged");
    requests.assert_read_only();
    let aws = deck.aws();
    let clusters = aws.block_on(aws.ecs.list_clusters().send()).unwrap();
    assert!(clusters.cluster_arns().is_empty());
}

#[test]
fn apply_creates_the_app_as_asked_then_a_second_run_changes_nothing() {
    let deck = Deck::new();
    let p = prerequisites(&deck);
    let script = app(&p);
    let (first, requests) = deck.recorded(|| deck.run(&script, &[]));
    first
        .success()
        .expect_changes(&[
            "+ subnet shop-a",
            "+ subnet shop-b",
            "+ security_group shop-app",
            "+ cluster shop (arn:aws:ecs:us-west-2:",
            "+ task_definition shop (shop:1)",
            "+ service shop (arn:aws:ecs:us-west-2:",
        ])
        .stdout_has("warning: volume shop_data of task definition shop is task storage")
        // The rehearsed rollout completed (both tasks started, their targets passed the health
        // checks); what deckhand asked for is the CreateService body checked below.
        .stdout_has("service shop is stable: 2/2 running")
        .stdout_has("service shop runs shop:1")
        .stdout_has("6 created, 0 updated, 0 unchanged");
    // The cluster and the task definition went out ahead of their statements, which found them in
    // the run's reads: neither was read back.
    let ecs = requests.actions_of("ecs");
    let after = |create: &str| ecs[ecs.iter().position(|a| a == create).expect(create)..].to_vec();
    assert!(!after("CreateCluster").contains(&"DescribeClusters".to_string()), "{ecs:?}");
    assert!(!after("RegisterTaskDefinition").contains(&"DescribeTaskDefinition".to_string()), "{ecs:?}");

    // What was sent, and (below) that DescribeServices reports it back.
    let create = requests.0.iter().find(|r| r.action == "CreateService").expect("a CreateService request");
    let body: serde_json::Value = serde_json::from_str(&create.body).unwrap();
    assert_eq!(body["capacityProviderStrategy"], serde_json::json!([{ "capacityProvider": "FARGATE", "weight": 1 }]));
    assert!(body.get("launchType").is_none(), "{body}");
    assert_eq!(body["desiredCount"], 2, "{body}");
    assert_eq!(
        body["deploymentConfiguration"]["deploymentCircuitBreaker"],
        serde_json::json!({ "enable": true, "rollback": true })
    );
    assert_eq!(
        body["tags"],
        serde_json::json!([{ "key": "Name", "value": "shop" }, { "key": "deckhand:stack", "value": "shop" }])
    );

    // The task definition: Fargate, awsvpc, the size, role, logs, restart policy, volume and mount.
    let task = describe_task(&deck, "shop");
    assert_eq!(task.network_mode(), Some(&NetworkMode::Awsvpc));
    assert_eq!(task.requires_compatibilities(), [Compatibility::Fargate]);
    assert_eq!((task.cpu(), task.memory()), (Some("256"), Some("512")));
    assert_eq!(task.execution_role_arn(), Some(p.role_arn.as_str()));
    let app = &task.container_definitions()[0];
    assert_eq!(app.image(), Some("nginx:1.25"));
    assert_eq!(app.port_mappings()[0].container_port(), Some(8080));
    assert_eq!(app.port_mappings()[0].host_port(), Some(8080));
    let logs = app.log_configuration().unwrap();
    assert_eq!(logs.log_driver(), &LogDriver::Awslogs);
    let options = logs.options().unwrap();
    assert_eq!(options["awslogs-group"], "/ecs/shop");
    assert_eq!(options["awslogs-region"], "us-west-2");
    assert_eq!(options["awslogs-stream-prefix"], "shop");
    let restart = app.restart_policy().unwrap();
    assert!(restart.enabled());
    assert_eq!(restart.restart_attempt_period(), Some(120));
    assert_eq!(task.volumes()[0].name(), Some("shop_data"));
    assert_eq!(app.mount_points()[0].source_volume(), Some("shop_data"));
    assert_eq!(app.mount_points()[0].container_path(), Some("/shop/data"));
    assert_eq!(app.environment()[0].name(), Some("MODE"));

    // The service: private tasks in the stack's subnets, behind the target group.
    let service = describe_service(&deck);
    assert_eq!(service.desired_count(), 2);
    assert_eq!(service.task_definition(), task.task_definition_arn());
    let vpc = service.network_configuration().unwrap().awsvpc_configuration().unwrap();
    assert_eq!(vpc.assign_public_ip(), Some(&AssignPublicIp::Disabled));
    let mut subnets = vpc.subnets().to_vec();
    subnets.sort();
    assert_eq!(subnets, stack_subnet_ids(&deck));
    let aws = deck.aws();
    let sg = aws
        .block_on(
            aws.ec2
                .describe_security_groups()
                .filters(aws_sdk_ec2::types::Filter::builder().name("group-name").values("shop-app").build())
                .send(),
        )
        .unwrap();
    assert_eq!(vpc.security_groups(), [sg.security_groups()[0].group_id().unwrap()]);
    let strategy = service.capacity_provider_strategy();
    assert_eq!((strategy.len(), strategy[0].capacity_provider(), strategy[0].weight()), (1, "FARGATE", 1));
    let deployment = service.deployment_configuration().expect("a deployment configuration");
    assert_eq!((deployment.minimum_healthy_percent(), deployment.maximum_percent()), (Some(100), Some(200)));
    let lb = &service.load_balancers()[0];
    assert_eq!(lb.target_group_arn(), Some(p.target_group_arn.as_str()));
    assert_eq!((lb.container_name(), lb.container_port()), (Some("app"), Some(8080)));

    let (second, requests) = deck.recorded(|| deck.run(&script, &[]));
    second
        .success()
        .expect_changes(&APP_UNCHANGED)
        .stdout_has("0 created, 0 updated, 6 unchanged")
        .stdout_has("no changes");
    requests.assert_read_only();
    // ECS: the declared cluster and service described by name (tags come with the describes) and
    // the family's latest revision, all in the first wave; no listing. (The stack's clusters and
    // services are found by tag with the load balancers, in the same GetResources.) Other
    // services' tests bound their own reads.
    let mut ecs = requests.actions_of("ecs");
    ecs.sort();
    assert_eq!(ecs, ["DescribeClusters", "DescribeServices", "DescribeTaskDefinition"]);
    // The target group's type (given as an ARN, not a handle) is read once; the stack's own target
    // groups are found through the tagging API (GetResources), so none is described for the snapshot.
    let target_groups = requests.0.iter().filter(|r| r.action == "DescribeTargetGroups").count();
    assert_eq!(target_groups, 1, "{:?}", requests.actions());
}

#[test]
fn a_cluster_and_service_named_from_what_only_aws_knows_are_found_not_created_again() {
    let deck = Deck::new();
    let p = prerequisites(&deck);
    deck.run(&app(&p), &[]).success();
    // The check pass that finds the declared names knows no account: it declares "shop-other"
    // twice. The run reads those by name up front, then "shop" (cluster and service) when the
    // plan pass reaches them, and finds them: nothing is planned to be created.
    let script = app(&p)
        .replace(
            r#"let cluster = cluster("shop");"#,
            r#"let cluster = cluster(if find_role("shop-exec") == () { "shop-other" } else { "shop" });"#,
        )
        .replace(
            r#"name: "shop", task"#,
            r#"name: if cluster.arn.starts_with("arn:") { "shop" } else { "shop-other" }, task"#,
        );
    let (outcome, requests) = deck.recorded(|| deck.run(&script, &[]));
    outcome.success().expect_changes(&APP_UNCHANGED).stdout_has("no changes");
    requests.assert_read_only();
    // "shop-other" by name up front; the cluster "shop" by name when reached; the service "shop"
    // was found by tag with the stack (GetResources) and described by ARN up front. No listing.
    let mut ecs = requests.actions_of("ecs");
    ecs.sort();
    assert_eq!(
        ecs,
        ["DescribeClusters", "DescribeClusters", "DescribeServices", "DescribeServices", "DescribeTaskDefinition"]
    );
    let aws = deck.aws();
    let services = aws.block_on(aws.ecs.list_services().cluster("shop").send()).unwrap();
    assert_eq!(services.service_arns().len(), 1, "{:?}", services.service_arns());
}

#[test]
fn check_validates_the_app_without_any_request() {
    let deck = Deck::new();
    let p = prerequisites(&deck);
    deck.write("deploy.rhai", &app(&p));
    let (outcome, requests) = deck.recorded(|| deck.deckhand(&["check", "deploy.rhai"]));
    outcome.success().stdout_has("Check passed: 6 resources declared");
    requests.assert_none();
}

/// Every container and task option, to prove that what AWS reports back compares equal.
const FULL_TASK: &str = r#"stack("shop");
let cluster = cluster("shop", #{ capacity_providers: ["FARGATE", "FARGATE_SPOT"],
    default_strategy: [ #{ provider: "FARGATE", weight: 1, base: 1 }, #{ provider: "FARGATE_SPOT", weight: 3 } ],
    container_insights: "enhanced" });
task_definition(#{ family: "shop-full", cpu: 1024, memory: 3072, execution_role: "ROLE_ARN", task_role: "ROLE_ARN",
    containers: [
        #{ name: "app", image: "nginx:1.27", port: 8080, command: ["nginx", "-g", "daemon off;"],
           env: #{ B: 2, A: "one" }, logs: #{ kind: "log_group", name: "/ecs/shop", arn: "arn", retention_days: 30 },
           restart: #{ enabled: true, ignored_exit_codes: [2, 0], attempt_period: 60 },
           mounts: [ #{ volume: "shared", path: "/data", read_only: true }, #{ volume: "scratch", path: "/tmp/x" } ],
           health_check: #{ command: "curl -f http://localhost:8080/ || exit 1", interval: 10, retries: 5 } },
        #{ name: "sidecar", image: "busybox", essential: false, restart: #{ enabled: false } },
    ],
    volumes: [ #{ name: "shared", efs: #{ file_system_id: "fs-12345678", transit_encryption: true } }, #{ name: "scratch" } ] });
"#;

#[test]
fn every_task_option_converges_without_drift() {
    let deck = Deck::new();
    let p = prerequisites(&deck);
    let script = FULL_TASK.replace("ROLE_ARN", &p.role_arn);
    deck.run(&script, &[])
        .success()
        .expect_changes(&["+ cluster shop", "+ task_definition shop-full (shop-full:1)"])
        .stdout_has("warning: volume scratch of task definition shop-full is task storage");
    let task = describe_task(&deck, "shop-full");
    assert_eq!(task.task_role_arn(), Some(p.role_arn.as_str()));
    let efs = task.volumes().iter().find_map(|v| v.efs_volume_configuration()).unwrap();
    assert_eq!((efs.file_system_id(), efs.root_directory()), ("fs-12345678", Some("/")));
    let app = &task.container_definitions()[0];
    assert_eq!(app.health_check().unwrap().command(), ["CMD-SHELL", "curl -f http://localhost:8080/ || exit 1"]);
    assert_eq!(app.restart_policy().unwrap().ignored_exit_codes(), [0, 2]);
    assert_eq!(task.container_definitions()[1].essential(), Some(false));
    let cluster = describe_cluster(&deck);
    assert_eq!(cluster.settings()[0].value(), Some("enhanced"));
    assert_eq!(cluster.default_capacity_provider_strategy().len(), 2);

    let (again, requests) = deck.recorded(|| deck.run(&script, &[]));
    again.success().expect_changes(&["= cluster shop", "= task_definition shop-full (shop-full:1)"]);
    requests.assert_read_only();

    let changed = script.replace("interval: 10", "interval: 20").replace("B: 2", "B: 3");
    deck.run(&changed, &[])
        .success()
        .expect_changes(&["= cluster shop", "~ task_definition shop-full (shop-full:1 -> shop-full:2)"])
        .stdout_has("containers[app].env.B: 2 -> 3")
        .stdout_has("containers[app].health_check:");
}

#[test]
fn inactive_clusters_and_services_count_as_missing() {
    let deck = Deck::new();
    let p = prerequisites(&deck);
    let script = app(&p);
    deck.run(&script, &[]).success();
    let aws = deck.aws();
    aws.block_on(aws.ecs.delete_service().cluster("shop").service("shop").force(true).send()).unwrap();
    deck.run(&script, &[])
        .success()
        .stdout_has("= cluster shop")
        .stdout_has("+ service shop (arn:aws:ecs:")
        .stdout_has("1 created, 0 updated, 5 unchanged");
    let service = describe_service(&deck);
    assert_eq!((service.status(), service.desired_count()), (Some("ACTIVE"), 2), "the service is created again");
    aws.block_on(aws.ecs.delete_service().cluster("shop").service("shop").force(true).send()).unwrap();
    aws.block_on(aws.ecs.delete_cluster().cluster("shop").send()).unwrap();
    assert_eq!(describe_cluster(&deck).status(), Some("INACTIVE"));
    // The rest of the stack is not declared here: --keep-undeclared leaves it (and lists it as kept).
    deck.run(r#"stack("shop"); cluster("shop");"#, &["--keep-undeclared"])
        .success()
        .stdout_has("+ cluster shop (arn:aws:ecs:")
        .stdout_has("1 created, 0 updated, 0 unchanged");
    assert_eq!(describe_cluster(&deck).status(), Some("ACTIVE"), "the cluster is created again");
}

#[test]
fn resources_of_the_same_name_outside_the_stack_are_never_adopted() {
    let deck = Deck::new();
    let aws = deck.aws();
    aws.block_on(aws.ecs.create_cluster().cluster_name("shop").send()).unwrap();
    let (outcome, requests) = deck.recorded(|| deck.run(r#"stack("shop"); cluster("shop");"#, &[]));
    outcome
        .failure()
        .stderr_has("a cluster named shop already exists and is not part of stack shop: it has no deckhand:stack tag")
        .stderr_has("--> deploy.rhai:1:16");
    requests.assert_read_only();

    // A task definition family registered outside deckhand is not taken over either.
    aws.block_on(
        aws.ecs
            .register_task_definition()
            .family("outside")
            .container_definitions(
                aws_sdk_ecs::types::ContainerDefinition::builder().name("app").image("nginx").memory(512).build(),
            )
            .send(),
    )
    .unwrap();
    let script = r#"stack("shop");
task_definition(#{ family: "outside", cpu: 256, memory: 512, containers: [ #{ name: "app", image: "nginx" } ] });"#;
    let (outcome, requests) = deck.recorded(|| deck.run(script, &[]));
    outcome.failure().stderr_has(
        "a task definition family named outside already exists (outside:1) and is not part of stack shop: it has no deckhand:stack tag",
    );
    requests.assert_read_only();
    assert_eq!(describe_task(&deck, "outside").revision(), 1, "no new revision was registered");
}

#[test]
fn a_new_image_registers_one_revision_and_updates_the_service_only() {
    let deck = Deck::new();
    let p = prerequisites(&deck);
    let script = app(&p);
    deck.run(&script, &[]).success();

    let (plan, requests) = deck.recorded(|| deck.plan(&script, &["--var", "image=nginx:1.27"]));
    plan.success()
        .stdout_has("~ task_definition shop (shop:1 -> new revision)")
        .stdout_has("containers[app].image: nginx:1.25 -> nginx:1.27")
        .stdout_has("task_definition: shop:1 -> (known after apply)");
    requests.assert_read_only();

    let (outcome, requests) = deck.recorded(|| deck.run(&script, &["--var", "image=nginx:1.27"]));
    outcome
        .success()
        .expect_changes(&[
            "= subnet shop-a",
            "= subnet shop-b",
            "= security_group shop-app",
            "= cluster shop",
            "~ task_definition shop (shop:1 -> shop:2)",
            "~ service shop",
        ])
        .stdout_has("containers[app].image: nginx:1.25 -> nginx:1.27")
        .stdout_has("task_definition: shop:1 -> shop:2")
        .stdout_has("0 created, 2 updated, 4 unchanged");
    assert_eq!(requests.mutating(), ["ecs RegisterTaskDefinition", "ecs UpdateService"]);
    assert_eq!(describe_task(&deck, "shop").container_definitions()[0].image(), Some("nginx:1.27"));
    assert!(describe_service(&deck).task_definition().unwrap().ends_with("task-definition/shop:2"));

    let (again, requests) = deck.recorded(|| deck.run(&script, &["--var", "image=nginx:1.27"]));
    again.success().stdout_has("= task_definition shop (shop:2)").stdout_has("= service shop");
    requests.assert_read_only();
}

#[test]
fn cluster_settings_and_service_fields_are_updated_in_place() {
    let deck = Deck::new();
    let p = prerequisites(&deck);
    let script = app(&p);
    deck.run(&script, &[]).success();
    let changed = script
        .replace(r#"cluster("shop")"#, r#"cluster("shop", #{ container_insights: true })"#)
        .replace("desired: 2,", "desired: 3, capacity_provider: \"FARGATE_SPOT\", public_ip: true,");
    let (outcome, requests) = deck.recorded(|| deck.run(&changed.replace("wait_stable(svc);", ""), &[]));
    outcome
        .success()
        .stdout_has("~ cluster shop")
        .stdout_has("container_insights: disabled -> enabled")
        .stdout_has("~ service shop")
        .stdout_has("desired: 2 -> 3")
        .stdout_has("public_ip: false -> true")
        .stdout_has("capacity_provider: FARGATE weight 1 -> FARGATE_SPOT weight 1");
    assert_eq!(requests.mutating(), ["ecs UpdateCluster", "ecs UpdateService"]);
    let update = requests.0.iter().find(|r| r.action == "UpdateService").unwrap();
    let body: serde_json::Value = serde_json::from_str(&update.body).unwrap();
    assert_eq!(body["forceNewDeployment"], true);
    assert_eq!(body["capacityProviderStrategy"][0]["capacityProvider"], "FARGATE_SPOT");
    let service = describe_service(&deck);
    assert_eq!(service.desired_count(), 3);
    assert_eq!(service.capacity_provider_strategy()[0].capacity_provider(), "FARGATE_SPOT");
    let vpc = service.network_configuration().and_then(|n| n.awsvpc_configuration()).unwrap();
    assert_eq!(vpc.assign_public_ip().map(|a| a.as_str()), Some("ENABLED"));
    let insights = describe_cluster(&deck)
        .settings()
        .iter()
        .find(|s| s.name().is_some_and(|n| n.as_str() == "containerInsights"))
        .cloned();
    assert_eq!(insights.and_then(|s| s.value().map(str::to_string)).as_deref(), Some("enabled"));

    let (again, requests) = deck.recorded(|| deck.run(&changed.replace("wait_stable(svc);", ""), &[]));
    again.success().stdout_has("= cluster shop").stdout_has("= service shop");
    requests.assert_read_only();
}

#[test]
fn an_existing_service_keeps_its_desired_count_when_the_script_gives_none() {
    let deck = Deck::new();
    let p = prerequisites(&deck);
    let script = app(&p);
    deck.run(&script, &[]).success();
    let aws = deck.aws();
    aws.block_on(aws.ecs.update_service().cluster("shop").service("shop").desired_count(5).send()).unwrap();
    let unscaled = script.replace("desired: 2, ", "").replace("wait_stable(svc);", "");
    let (outcome, requests) = deck.recorded(|| deck.run(&unscaled, &[]));
    outcome.success().stdout_has("= service shop (arn:aws:ecs:us-west-2:").stdout_has("5 desired");
    requests.assert_read_only();
}

/// (what, replace this in the script, with this, expected message, expected `--> line:col`)
const BAD: &[(&str, &str, &str, &str, &str)] = &[
    (
        "cpu/memory pair Fargate does not offer",
        "cpu: 256, memory: 512",
        "cpu: 256, memory: 4096",
        "invalid task_definition.memory 4096: with cpu 256, Fargate allows memory 512, 1024, 2048 (MiB)",
        "deploy.rhai:9:12",
    ),
    (
        "cpu that Fargate does not offer",
        "cpu: 256, memory: 512",
        "cpu: 300, memory: 512",
        "invalid task_definition.cpu 300: a Fargate CPU size: 256, 512, 1024, 2048, 4096, 8192 or 16384",
        "deploy.rhai:9:12",
    ),
    (
        "mount of an undeclared volume",
        r#"mounts: [ #{ volume: "shop_data""#,
        r#"mounts: [ #{ volume: "shop_date""#,
        r#"invalid task_definition.containers[0].mounts[0].volume "shop_date": container app can only mount a volume of the task; declared: shop_data"#,
        "deploy.rhai:9:12",
    ),
    (
        "instance target group",
        "TG_ARN",
        "INSTANCE_TG_ARN",
        r#"invalid service.target_group target group shop-instances of type "instance": a target group of type "ip": Fargate tasks (awsvpc) register by IP address"#,
        "deploy.rhai:14:11",
    ),
    (
        "instance target group handle",
        r#"target_group: "TG_ARN""#,
        r#"target_group: #{ kind: "target_group", arn: "TG_ARN", name: "legacy", port: 8080, protocol: "HTTP", target_type: "instance", vpc_id: "vpc-1" }"#,
        r#"invalid service.target_group target group legacy of type "instance": a target group of type "ip""#,
        "deploy.rhai:14:11",
    ),
    (
        "a load balancer where a target group belongs",
        r#"target_group: "TG_ARN""#,
        r#"target_group: #{ kind: "load_balancer", arn: "TG_ARN" }"#,
        "invalid service.target_group a load_balancer handle: a target_group handle or a target group ARN",
        "deploy.rhai:14:11",
    ),
    (
        "container the task does not have",
        r#"container: "app""#,
        r#"container: "web""#,
        r#"invalid service.container "web": a container of the task definition: app:8080"#,
        "deploy.rhai:14:11",
    ),
    (
        "port the container does not expose",
        "container: \"app\", port: 8080",
        "container: \"app\", port: 9090",
        "invalid service.port 9090: a port container app exposes: [8080]",
        "deploy.rhai:14:11",
    ),
    (
        "negative desired count",
        "desired: 2,",
        "desired: -1,",
        "invalid service.desired -1: a task count of 0 or more",
        "deploy.rhai:14:11",
    ),
    (
        "health check timeout above the 60 s ECS allows",
        "restart: #{ enabled: true, attempt_period: 120 },",
        "restart: #{ enabled: true, attempt_period: 120 }, health_check: #{ command: \"true\", timeout: 61 },",
        "invalid task_definition.containers[0].health_check.timeout 61: seconds from 2 to 60",
        "deploy.rhai:9:12",
    ),
    (
        "empty image",
        r#"vars.image ?? "nginx:1.25""#,
        r#""""#,
        r#"invalid task_definition.containers[0].image "": a non-empty image reference"#,
        "deploy.rhai:9:12",
    ),
];

#[test]
fn bad_input_fails_with_its_position_before_any_change() {
    let deck = Deck::new();
    let p = prerequisites(&deck);
    for (what, from, to, message, position) in BAD {
        let script = APP
            .replace(from, to)
            .replace("ROLE_ARN", &p.role_arn)
            .replace("INSTANCE_TG_ARN", &p.instance_target_group_arn)
            .replace("TG_ARN", &p.target_group_arn);
        assert_ne!(script, app(&p), "{what}: the replacement did not apply");
        let (outcome, requests) = deck.recorded(|| deck.run(&script, &[]));
        let outcome = outcome.failure();
        assert!(outcome.stderr.contains(message), "{what}: expected {message:?} in\n{}", outcome.stderr);
        assert!(
            outcome.stderr.contains(&format!("--> {position}")),
            "{what}: expected {position} in\n{}",
            outcome.stderr
        );
        assert!(requests.mutating().is_empty(), "{what}: mutating requests {:?}", requests.mutating());
    }

    let twice = app(&p).replace(
        r#"mounts: [ #{ volume: "shop_data", path: "/shop/data" } ] } ],"#,
        r#"mounts: [ #{ volume: "shop_data", path: "/shop/data" } ] },
                   #{ name: "app", image: "busybox" } ],"#,
    );
    let (outcome, requests) = deck.recorded(|| deck.run(&twice, &[]));
    outcome
        .failure()
        .stderr_has(r#"invalid task_definition.containers[1].name "app": a name no other container of the task uses"#)
        .stderr_has("--> deploy.rhai:9:12");
    assert!(requests.mutating().is_empty());
}

#[test]
fn wait_stable_succeeds_once_the_deployment_completes() {
    let deck = Deck::new();
    let p = prerequisites(&deck);
    let script = app(&p).replace(
        "wait_stable(svc);",
        "let same = wait_stable(svc, #{ timeout: 300 });\nprint(`waited for ${same.name}`);",
    );
    // (How far the rollout got at the first poll depends on the machine's load: the rehearsal
    // tests observe IN_PROGRESS through the SDK.)
    deck.run(&script, &[])
        .success()
        .stdout_has("service shop is stable: 2/2 running, 0 pending, rollout COMPLETED")
        .stdout_has("waited for shop");
    // Stable means AWS's rollout completed and both tasks serve behind the target group.
    let aws = deck.aws();
    let service = aws.block_on(aws.ecs.describe_services().cluster("shop").services("shop").send()).unwrap().services()
        [0]
    .clone();
    assert_eq!(service.deployments()[0].rollout_state().map(|r| r.as_str()), Some("COMPLETED"));
    assert_eq!(service.running_count(), 2);
    let health = aws.block_on(aws.elbv2.describe_target_health().target_group_arn(&p.target_group_arn).send()).unwrap();
    let states: Vec<&str> = health
        .target_health_descriptions()
        .iter()
        .filter_map(|d| d.target_health().and_then(|h| h.state()).map(|s| s.as_str()))
        .collect();
    assert_eq!(states, ["healthy", "healthy"]);
}

#[test]
fn wait_stable_reports_a_deployment_that_does_not_come_up_as_a_failure() {
    // The container logs to a group that does not exist: every task stops before it runs, with
    // ECS's ResourceInitializationError, until the circuit breaker (on, with rollback) fails the
    // deployment. A first deployment has nothing to roll back to.
    let deck = Deck::new();
    let p = prerequisites(&deck);
    let script = app(&p).replace(r#"logs: "/ecs/shop""#, r#"logs: "/ecs/never-created""#);
    deck.run(&script, &[])
        .failure()
        .stdout_has("+ service shop")
        .stderr_has("error: service shop did not become stable: deployment ecs-svc/")
        .stderr_has("failed: ECS deployment circuit breaker: tasks failed to start.")
        .stderr_has("tasks stopped:\n    ResourceInitializationError: failed to validate logger args")
        .stderr_has("The specified log group does not exist.")
        .stderr_has("--> deploy.rhai:16:1");
    let aws = deck.aws();
    let service = aws.block_on(aws.ecs.describe_services().cluster("shop").services("shop").send()).unwrap().services()
        [0]
    .clone();
    let deployment = &service.deployments()[0];
    assert_eq!(deployment.rollout_state().map(|r| r.as_str()), Some("FAILED"));
    assert!(deployment.failed_tasks() >= 3, "the threshold for 2 tasks is 3: {deployment:?}");
    assert_eq!(service.running_count(), 0);
}

#[test]
fn wait_stable_rejects_what_is_not_a_service() {
    let deck = Deck::new();
    deck.plan(r#"stack("shop"); wait_stable(cluster("shop"));"#, &[])
        .failure()
        .stderr_has("invalid wait_stable.service a cluster handle: a service handle");
    deck.plan(
        r#"stack("shop"); let c = cluster("shop"); wait_stable(#{ kind: "service", name: "x" }, #{ timeout: 0 });"#,
        &[],
    )
    .failure()
    .stderr_has("invalid wait_stable.timeout 0: seconds from 1 to 86400");
}
