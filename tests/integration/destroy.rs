//! `deckhand destroy --stack`: deletes exactly the stack's tagged resources, dependents first.

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};

use crate::support::{Deck, Fault};

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

const GUIDE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/fargate-alb.rhai");

const ASSUME_ECS_TASKS: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// Resources that look like the guide stack's but are not its (none may be touched), and one that
/// is (a service of the stack in a cluster it does not own).
fn create_look_alikes(deck: &Deck) {
    use aws_sdk_ecs::types::{ContainerDefinition, Tag as EcsTag};
    use aws_sdk_elasticloadbalancingv2::types::{ProtocolEnum, Tag as ElbTag, TargetTypeEnum};
    let aws = deck.aws();
    let vpc = aws
        .block_on(aws.ec2.describe_vpcs().filters(Filter::builder().name("isDefault").values("true").build()).send())
        .unwrap()
        .vpcs()[0]
        .vpc_id()
        .unwrap()
        .to_string();
    aws.block_on(async {
        // A target group with the stack's Name tag but not its stack tag.
        aws.elbv2
            .create_target_group()
            .name("myapp-handmade")
            .protocol(ProtocolEnum::Http)
            .port(8080)
            .vpc_id(&vpc)
            .target_type(TargetTypeEnum::Ip)
            .tags(ElbTag::builder().key("Name").value("myapp").build())
            .send()
            .await
            .unwrap();
        // Log groups: one untagged, one of another stack.
        aws.logs.create_log_group().log_group_name("/ecs/myapp-handmade").send().await.unwrap();
        aws.logs.create_log_group().log_group_name("/ecs/other").tags("deckhand:stack", "other").send().await.unwrap();
        // Roles: a hand-made copy of the execution role, and another stack's role.
        aws.iam
            .create_role()
            .role_name("myapp-exec-copy")
            .assume_role_policy_document(ASSUME_ECS_TASKS)
            .send()
            .await
            .unwrap();
        aws.iam
            .attach_role_policy()
            .role_name("myapp-exec-copy")
            .policy_arn("arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy")
            .send()
            .await
            .unwrap();
        let other = aws_sdk_iam::types::Tag::builder().key("deckhand:stack").value("other").build().unwrap();
        aws.iam
            .create_role()
            .role_name("other-exec")
            .assume_role_policy_document(ASSUME_ECS_TASKS)
            .tags(other)
            .send()
            .await
            .unwrap();
        // A revision registered by hand into the stack's family, and a hand-made family.
        let container = || ContainerDefinition::builder().name("app").image("nginx").memory(128).build();
        aws.ecs.register_task_definition().family("myapp").container_definitions(container()).send().await.unwrap();
        aws.ecs
            .register_task_definition()
            .family("myapp-handmade")
            .container_definitions(container())
            .tags(EcsTag::builder().key("Name").value("myapp").build())
            .send()
            .await
            .unwrap();
        // A hand-made cluster running a service named like the stack's.
        aws.ecs.create_cluster().cluster_name("handmade").send().await.unwrap();
        aws.ecs
            .create_service()
            .cluster("handmade")
            .service_name("myapp")
            .task_definition("myapp-handmade:1")
            .desired_count(1)
            .send()
            .await
            .unwrap();
        // A service of the stack in that cluster, which the stack does not own: it goes, the cluster stays.
        aws.ecs
            .create_service()
            .cluster("handmade")
            .service_name("worker")
            .task_definition("myapp-handmade:1")
            .desired_count(1)
            .tags(EcsTag::builder().key("deckhand:stack").value("myapp").build())
            .send()
            .await
            .unwrap();
        // An inline policy someone added to the stack's role: destroy deletes it with the role.
        aws.iam
            .put_role_policy()
            .role_name("myapp-exec")
            .policy_name("debug")
            .policy_document(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*"}]}"#,
            )
            .send()
            .await
            .unwrap();
    });
}

/// The guide stack's resources in order of deletion, as `destroy` lists them (prefixes).
const GUIDE_STACK: [&str; 16] = [
    "- service myapp (service/myapp/myapp)",
    "- service worker (service/handmade/worker)",
    "- task_definition myapp (myapp:1)",
    "- cluster myapp (cluster/myapp)",
    "- listener myapp:80 (listener/app/myapp/",
    "- load_balancer myapp (loadbalancer/app/myapp/",
    "- target_group myapp (targetgroup/myapp/",
    "- nat_gateway myapp-nat (nat-",
    "- elastic_ip myapp-nat (eipalloc-",
    "- route_table myapp-private (rtb-",
    "- security_group myapp-alb (sg-",
    "- security_group myapp-app (sg-",
    "- subnet myapp-a (subnet-",
    "- subnet myapp-b (subnet-",
    "= log_group /ecs/myapp (kept; --delete-logs deletes it)",
    "- role myapp-exec",
];

fn service_status(deck: &Deck, cluster: &str, service: &str) -> String {
    let aws = deck.aws();
    let out = aws.block_on(aws.ecs.describe_services().cluster(cluster).services(service).send()).unwrap();
    out.services().first().and_then(|s| s.status()).unwrap_or("MISSING").to_string()
}

fn cluster_status(deck: &Deck, cluster: &str) -> String {
    let aws = deck.aws();
    let out = aws.block_on(aws.ecs.describe_clusters().clusters(cluster).send()).unwrap();
    out.clusters().first().and_then(|c| c.status()).unwrap_or("MISSING").to_string()
}

fn revision_status(deck: &Deck, revision: &str) -> String {
    let aws = deck.aws();
    let out = aws.block_on(aws.ecs.describe_task_definition().task_definition(revision).send()).unwrap();
    out.task_definition().unwrap().status().unwrap().as_str().to_string()
}

fn load_balancers(deck: &Deck) -> Vec<String> {
    let aws = deck.aws();
    let out = aws.block_on(aws.elbv2.describe_load_balancers().send()).unwrap();
    out.load_balancers().iter().filter_map(|lb| lb.load_balancer_name()).map(String::from).collect()
}

fn target_groups(deck: &Deck) -> Vec<String> {
    let aws = deck.aws();
    let out = aws.block_on(aws.elbv2.describe_target_groups().send()).unwrap();
    out.target_groups().iter().filter_map(|tg| tg.target_group_name()).map(String::from).collect()
}

fn roles(deck: &Deck) -> Vec<String> {
    let aws = deck.aws();
    let out = aws.block_on(aws.iam.list_roles().send()).unwrap();
    let mut names: Vec<String> = out.roles().iter().map(|r| r.role_name().to_string()).collect();
    names.sort();
    names
}

fn log_groups(deck: &Deck) -> Vec<String> {
    let aws = deck.aws();
    let out = aws.block_on(aws.logs.describe_log_groups().send()).unwrap();
    out.log_groups().iter().filter_map(|g| g.log_group_name()).map(String::from).collect()
}

#[test]
fn destroy_deletes_the_whole_guide_stack_and_nothing_else() {
    let deck = Deck::new();
    deck.deckhand(&["run", GUIDE]).success();
    create_look_alikes(&deck);

    let (plan, requests) = deck.recorded(|| deck.deckhand(&["destroy", "--stack", "myapp", "--plan"]));
    plan.success().expect_changes(&GUIDE_STACK).stdout_has("Plan: 15 to delete, 1 kept (");
    requests.assert_read_only();
    deck.deckhand(&["destroy", "--stack", "myapp", "--plan", "--delete-logs"])
        .success()
        .stdout_has("\n- log_group /ecs/myapp\n- role myapp-exec\n")
        .stdout_has("Plan: 16 to delete (");

    let (destroyed, requests) = deck.recorded(|| deck.deckhand(&["destroy", "--stack", "myapp", "--yes"]));
    let destroyed = destroyed
        .success()
        .stdout_has("  service myapp (service/myapp/myapp): waiting until it is INACTIVE (its tasks stopped)\n")
        .stdout_has("  service worker (service/handmade/worker): waiting until it is INACTIVE (its tasks stopped)\n")
        .stdout_has("  load_balancer myapp (loadbalancer/app/myapp/")
        .stdout_has("  nat_gateway myapp-nat (nat-")
        .stdout_has("15 deleted, 1 kept (");
    // The list first, then each deletion in the listed order; the services drain together, so
    // they finish in either order.
    let changes = destroyed.changes();
    let (listed, done) = changes.split_at(GUIDE_STACK.len());
    assert!(listed.iter().zip(GUIDE_STACK).all(|(line, want)| line.starts_with(want)), "{}", destroyed.stdout);
    let mut done = done.to_vec();
    done[..2].sort();
    let expected: Vec<&&str> = GUIDE_STACK.iter().filter(|l| l.starts_with('-')).collect();
    assert_eq!(done.len(), expected.len(), "{}", destroyed.stdout);
    for (line, want) in done.iter().zip(expected) {
        assert!(line.starts_with(want) && line.ends_with(" deleted"), "{line:?} is not {want:?} deleted");
    }
    let mut mutating = requests.mutating();
    mutating[..4].sort();
    assert_eq!(
        mutating,
        [
            "ecs DeleteService",
            "ecs DeleteService",
            "ecs UpdateService",
            "ecs UpdateService",
            "ecs DeregisterTaskDefinition",
            "ecs DeleteCluster",
            "elasticloadbalancing DeleteListener",
            "elasticloadbalancing DeleteLoadBalancer",
            "elasticloadbalancing DeleteTargetGroup",
            "ec2 DeleteNatGateway",
            "ec2 ReleaseAddress",
            "ec2 DisassociateRouteTable",
            "ec2 DisassociateRouteTable",
            "ec2 DeleteRouteTable",
            "ec2 RevokeSecurityGroupIngress",
            "ec2 DeleteSecurityGroup",
            "ec2 DeleteSecurityGroup",
            "ec2 DeleteSubnet",
            "ec2 DeleteSubnet",
            "iam DetachRolePolicy",
            "iam DeleteRolePolicy",
            "iam DeleteRole",
        ],
        "exactly the stack's resources are deleted, in order"
    );

    // The stack is gone...
    assert_eq!(service_status(&deck, "myapp", "myapp"), "INACTIVE");
    assert_eq!(service_status(&deck, "handmade", "worker"), "INACTIVE");
    assert_eq!(cluster_status(&deck, "myapp"), "INACTIVE");
    assert_eq!(revision_status(&deck, "myapp:1"), "INACTIVE");
    assert_eq!(load_balancers(&deck), Vec::<String>::new());
    assert_eq!(tagged(&deck, "myapp"), 0, "no subnet, security group, route table, NAT gateway or EIP is left");
    // ... except its logs; and every look-alike survives.
    assert_eq!(target_groups(&deck), ["myapp-handmade"]);
    assert_eq!(roles(&deck), ["myapp-exec-copy", "other-exec"]);
    let mut groups = log_groups(&deck);
    groups.sort();
    assert_eq!(groups, ["/ecs/myapp", "/ecs/myapp-handmade", "/ecs/other"]);
    assert_eq!(service_status(&deck, "handmade", "myapp"), "ACTIVE");
    assert_eq!(cluster_status(&deck, "handmade"), "ACTIVE");
    assert_eq!(revision_status(&deck, "myapp:2"), "ACTIVE");
    assert_eq!(revision_status(&deck, "myapp-handmade:1"), "ACTIVE");

    // A second run finds only the kept log group, says so, and changes nothing.
    let (again, requests) = deck.recorded(|| deck.deckhand(&["destroy", "--stack", "myapp", "--yes"]));
    again
        .success()
        .expect_changes(&["= log_group /ecs/myapp (kept; --delete-logs deletes it)"])
        .stdout_has("Stack myapp has no resources to delete (1 kept): nothing to destroy");
    requests.assert_read_only();

    // --delete-logs deletes it, and only it.
    deck.deckhand(&["destroy", "--stack", "myapp", "--yes", "--delete-logs"])
        .success()
        .expect_changes(&["- log_group /ecs/myapp", "- log_group /ecs/myapp deleted"])
        .stdout_has("1 deleted (");
    groups = log_groups(&deck);
    groups.sort();
    assert_eq!(groups, ["/ecs/myapp-handmade", "/ecs/other"]);
    deck.deckhand(&["destroy", "--stack", "myapp", "--yes", "--delete-logs"])
        .success()
        .expect_changes(&[])
        .stdout_has("Stack myapp has no resources: nothing to destroy");
}

const SMALL: &str = r#"
stack("mini");
cluster("mini");
task_execution_role("mini-exec");
log_group("/ecs/mini", #{ retention_days: 7 });
"#;

#[test]
fn a_failure_midway_reports_what_was_and_was_not_deleted_and_a_rerun_continues() {
    let deck = Deck::new();
    deck.run(SMALL, &[]).success();
    // Someone put the stack's role into an instance profile: IAM refuses to delete it.
    let aws = deck.aws();
    aws.block_on(async {
        aws.iam.create_instance_profile().instance_profile_name("mini-debug").send().await.unwrap();
        aws.iam.add_role_to_instance_profile().instance_profile_name("mini-debug").role_name("mini-exec").send().await
    })
    .unwrap();

    let failed = deck.deckhand(&["destroy", "--stack", "mini", "--yes"]).failure();
    let failed = failed
        .stdout_has("- cluster mini (cluster/mini) deleted\n")
        .stderr_has(
            "error: deleting role mini-exec failed: role mini-exec is in instance profile mini-debug: \
             IAM cannot delete it there (it was left as it is)\n  \
             hint: if nothing needs it there: aws iam remove-role-from-instance-profile \
             --instance-profile-name mini-debug --role-name mini-exec\n",
        )
        .stderr_has("\ndeleted (1):\n  cluster mini (cluster/mini)\nnot deleted (1):\n  role mini-exec\n")
        .stderr_has("hint: fix the cause, then run the same destroy again: it continues where it stopped");
    assert!(!failed.stdout.contains("role mini-exec deleted"), "{}", failed.stdout);
    assert_eq!(cluster_status(&deck, "mini"), "INACTIVE");
    assert_eq!(roles(&deck), ["mini-exec"]);
    let attached = aws.block_on(aws.iam.list_attached_role_policies().role_name("mini-exec").send()).unwrap();
    assert_eq!(attached.attached_policies().len(), 1, "the role keeps its policy for whatever uses the profile");

    aws.block_on(
        aws.iam.remove_role_from_instance_profile().instance_profile_name("mini-debug").role_name("mini-exec").send(),
    )
    .unwrap();
    deck.deckhand(&["destroy", "--stack", "mini", "--yes"])
        .success()
        .expect_changes(&[
            "= log_group /ecs/mini (kept; --delete-logs deletes it)",
            "- role mini-exec",
            "- role mini-exec deleted",
        ])
        .stdout_has("1 deleted, 1 kept (");
    assert_eq!(roles(&deck), Vec::<String>::new());
}

#[test]
fn a_target_group_still_in_use_is_retried_until_elbv2_lets_it_go() {
    // ELBv2 answers ResourceInUse for a moment after the load balancer that used a target group is
    // gone: destroy retries the delete (through the polling helper) instead of failing.
    let deck =
        Deck::new().with_faults(vec![Fault::xml("DeleteTargetGroup", "ResourceInUse", "Target group is in use")]);
    let script = "stack(\"held\");\ntarget_group(default_vpc(), #{ name: \"held\", port: 8080 });\n";
    deck.run(script, &[]).success().expect_changes(&["+ target_group held"]);
    deck.deckhand(&["destroy", "--stack", "held", "--yes"])
        .success()
        .stdout_has("waiting for target_group held (")
        .stdout_has("still in use (ResourceInUse)");
    assert_eq!(deck.faults().injected(), ["DeleteTargetGroup -> ResourceInUse"]);
    assert_eq!(deck.faults().count("DeleteTargetGroup"), 2, "deleted at the second attempt");
    assert_eq!(target_groups(&deck), Vec::<String>::new());
}

#[test]
fn destroy_right_after_apply_finds_the_alb_the_tagging_api_does_not_list_yet() {
    // The tagging API's index lags behind creates: right after a deploy (a CI preview
    // environment), GetResources may answer without the new load balancer and target group.
    let deck = Deck::new().with_faults(Vec::new());
    deck.deckhand(&["run", GUIDE]).success();
    assert_eq!(load_balancers(&deck), ["myapp"]);
    deck.faults().inject(crate::support::Fault::reply("GetResources", r#"{"ResourceTagMappingList": []}"#));
    deck.deckhand(&["destroy", "--stack", "myapp", "--yes"])
        .success()
        .stdout_has("- load_balancer myapp")
        .stdout_has("- target_group myapp");
    assert_eq!(deck.faults().injected(), ["GetResources -> reply"]);
    assert!(load_balancers(&deck).is_empty(), "the ALB is gone");
    assert!(target_groups(&deck).is_empty(), "and its target group");
}
