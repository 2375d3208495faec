//! Real AWS's eventual consistency after a create, injected by the fault proxy: each "not found
//! yet" error on the call that follows a create is ridden out (one run, no duplicate resource),
//! while the same error about something this run did not create fails at once.

use aws_sdk_ec2::types::Filter;

use crate::support::{Deck, Fault};

const GUIDE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/fargate-alb.rhai");

/// Each error real AWS answers right after the create it follows, once.
fn settling_faults() -> Vec<Fault> {
    vec![
        Fault::ec2(
            "AuthorizeSecurityGroupIngress",
            "InvalidGroup.NotFound",
            "The security group '{GroupId}' does not exist",
        ),
        Fault::ec2(
            "CreateNatGateway",
            "InvalidAllocationID.NotFound",
            "The allocation ID '{AllocationId}' does not exist",
        ),
        Fault::ec2("CreateRoute", "InvalidNatGatewayID.NotFound", "The natGateway ID '{NatGatewayId}' does not exist"),
        Fault::ec2("AssociateRouteTable", "InvalidSubnetID.NotFound", "The subnet ID '{SubnetId}' does not exist"),
        Fault::ec2(
            "AssociateRouteTable",
            "InvalidRouteTableID.NotFound",
            "The routeTable ID '{RouteTableId}' does not exist",
        ),
        Fault::ecs(
            "CreateCluster",
            "InvalidParameterException",
            "Unable to assume the service linked role. Please verify that the ECS service linked role exists.",
        ),
        Fault::ecs("CreateService", "ClusterNotFoundException", "Cluster not found."),
        Fault::ecs(
            "CreateService",
            "InvalidParameterException",
            "The target group with targetGroupArn {targetGroupArn} does not have an associated load balancer.",
        ),
    ]
}

#[test]
fn the_bundled_script_rides_out_every_not_found_yet_in_one_run() {
    let deck = Deck::new().with_faults(settling_faults());
    let outcome = deck.deckhand(&["run", "-v", GUIDE]).success().stdout_has("14 created, 0 updated, 0 unchanged");

    // Every fault was answered, and every one was retried (logged with -v).
    let mut injected = deck.faults().injected();
    injected.sort();
    assert_eq!(
        injected,
        [
            "AssociateRouteTable -> InvalidRouteTableID.NotFound",
            "AssociateRouteTable -> InvalidSubnetID.NotFound",
            "AuthorizeSecurityGroupIngress -> InvalidGroup.NotFound",
            "CreateCluster -> InvalidParameterException",
            "CreateNatGateway -> InvalidAllocationID.NotFound",
            "CreateRoute -> InvalidNatGatewayID.NotFound",
            "CreateService -> ClusterNotFoundException",
            "CreateService -> InvalidParameterException",
        ]
    );
    for code in [
        "InvalidGroup.NotFound",
        "InvalidAllocationID.NotFound",
        "InvalidNatGatewayID.NotFound",
        "InvalidSubnetID.NotFound",
        "InvalidRouteTableID.NotFound",
        "InvalidParameterException, but ECS is still creating its service-linked role",
        "ClusterNotFoundException, but this run created the cluster",
        "InvalidParameterException, but this run attached the target group",
    ] {
        assert!(
            outcome.stderr.lines().any(|l| l.contains(code) && l.contains("retrying")),
            "no retry logged for {code}:\n{}",
            outcome.stderr
        );
    }

    // One of each, as if nothing had failed.
    let aws = deck.aws();
    let stack = || Filter::builder().name("tag:deckhand:stack").values("myapp").build();
    let subnets = aws.block_on(aws.ec2.describe_subnets().filters(stack()).send()).unwrap();
    assert_eq!(subnets.subnets().len(), 2);
    let groups = aws.block_on(aws.ec2.describe_security_groups().filters(stack()).send()).unwrap();
    assert_eq!(groups.security_groups().len(), 2);
    let addresses = aws.block_on(aws.ec2.describe_addresses().filters(stack()).send()).unwrap();
    assert_eq!(addresses.addresses().len(), 1);
    let nats = aws.block_on(aws.ec2.describe_nat_gateways().filter(stack()).send()).unwrap();
    assert_eq!(nats.nat_gateways().len(), 1);
    let tables = aws.block_on(aws.ec2.describe_route_tables().filters(stack()).send()).unwrap();
    assert_eq!(tables.route_tables().len(), 1);
    assert_eq!(tables.route_tables()[0].associations().iter().filter(|a| a.subnet_id().is_some()).count(), 2);
    let clusters = aws.block_on(aws.ecs.list_clusters().send()).unwrap();
    assert_eq!(clusters.cluster_arns().len(), 1);
    let services = aws.block_on(aws.ecs.list_services().cluster("myapp").send()).unwrap();
    assert_eq!(services.service_arns().len(), 1);

    // And the second run finds it all in place.
    deck.deckhand(&["run", GUIDE]).success().stdout_has("0 created, 0 updated, 14 unchanged");
}

#[test]
fn a_subnet_this_run_did_not_create_fails_at_once() {
    // The NAT gateway goes into the default subnet, which this run did not create: AWS saying it
    // does not exist is the truth, not a create settling.
    let deck = Deck::new().with_faults(vec![Fault::ec2(
        "CreateNatGateway",
        "InvalidSubnetID.NotFound",
        "The subnet ID '{SubnetId}' does not exist",
    )]);
    let script = r#"
        stack("lonely");
        let vpc = default_vpc();
        nat_gateway(default_subnet(vpc, "us-west-2a"), #{ name: "lonely-nat" });
    "#;
    deck.run(script, &[]).failure().stderr_has("InvalidSubnetID.NotFound").stderr_has("does not exist");
    assert_eq!(deck.faults().count("CreateNatGateway"), 1, "a wrong id must not be retried");
}

#[test]
fn a_cluster_an_earlier_run_created_is_not_waited_for() {
    // ClusterNotFoundException is ridden out only right after this run's CreateCluster; for a
    // cluster that already existed it is the truth (deleted meanwhile) and fails at once.
    let deck =
        Deck::new().with_faults(vec![Fault::ecs("CreateService", "ClusterNotFoundException", "Cluster not found.")]);
    deck.run(r#"stack("myapp"); cluster("myapp");"#, &[]).success().expect_changes(&["+ cluster myapp"]);
    deck.deckhand(&["run", GUIDE]).failure().stderr_has("ClusterNotFoundException").stderr_has("Cluster not found.");
    assert_eq!(deck.faults().count("CreateService"), 1, "an old cluster must not be waited for");
}

#[test]
fn a_create_settling_longer_than_the_usual_attempts_is_still_ridden_out() {
    // Five answers in a row: more than the clients' usual 5 attempts allow.
    let fault = Fault::ec2(
        "CreateNatGateway",
        "InvalidAllocationID.NotFound",
        "The allocation ID '{AllocationId}' does not exist",
    );
    let deck = Deck::new().with_faults(vec![fault; 5]);
    let script = r#"
        stack("slow");
        let vpc = default_vpc();
        nat_gateway(default_subnet(vpc, "us-west-2a"), #{ name: "slow-nat" });
    "#;
    deck.run(script, &[]).success().expect_changes(&["+ nat_gateway slow-nat (nat-"]);
    assert_eq!(deck.faults().count("CreateNatGateway"), 6);
    let aws = deck.aws();
    let nats = aws.block_on(aws.ec2.describe_nat_gateways().send()).unwrap();
    assert_eq!(nats.nat_gateways().len(), 1, "one NAT gateway, however many attempts");
}

#[test]
fn a_wrong_group_id_from_the_script_fails_at_once() {
    // No fault injected: the emulator itself answers that the group does not exist.
    let deck = Deck::new().with_faults(Vec::new());
    let script = r#"
        stack("typo");
        let vpc = default_vpc();
        security_group(vpc, #{ name: "typo-app", ingress: [#{ port: 8080, from: "sg-0123456789abcdef0" }] });
    "#;
    deck.run(script, &[]).failure().stderr_has("InvalidGroup.NotFound").stderr_has("sg-0123456789abcdef0");
    assert_eq!(deck.faults().count("AuthorizeSecurityGroupIngress"), 1, "a wrong id must not be retried");
}

#[test]
fn certificate_autoscaling_and_teardown_errors_right_after_their_event_are_ridden_out() {
    // Each answered once, right after the event it follows on AWS: the certificate's
    // DescribeCertificate after RequestCertificate, the HTTPS listener with the just-issued
    // certificate, the scalable target after the service, the policy after the target; then in
    // destroy, the cluster after its services went INACTIVE (tasks still stopping) and the route
    // table after its VPC endpoints' asynchronous deletion.
    let deck = Deck::new().with_faults(vec![
        Fault::json("DescribeCertificate", "ResourceNotFoundException", "Could not find certificate {CertificateArn}."),
        Fault::xml("CreateListener", "CertificateNotFound", "Certificate not found").when("Protocol", "HTTPS"),
        Fault::json("RegisterScalableTarget", "ValidationException", "ECS service doesn't exist: service/myapp/myapp"),
        Fault::json(
            "PutScalingPolicy",
            "ObjectNotFoundException",
            "No scalable target registered for service namespace: ecs, resource ID: service/myapp/myapp",
        ),
        Fault::ecs(
            "DeleteCluster",
            "ClusterContainsTasksException",
            "The Cluster cannot be deleted while Tasks are active.",
        ),
        Fault::ec2(
            "DeleteRouteTable",
            "DependencyViolation",
            "The routeTable '{RouteTableId}' has dependencies and cannot be deleted.",
        ),
    ]);
    let aws = deck.aws();
    aws.block_on(aws.route53.create_hosted_zone().name("example.com").caller_reference("settle").send())
        .expect("CreateHostedZone");
    // Endpoints-only egress reaches private ECR only: the image is the account's own.
    let vars = [
        "--var",
        "domain=app.example.com",
        "--var",
        "zone=example.com",
        "--var",
        "max=4",
        "--var",
        "egress=endpoints",
        "--var",
        "image=123456789012.dkr.ecr.us-west-2.amazonaws.com/myapp:1",
    ];
    let mut args = vec!["run", "-v", GUIDE];
    args.extend_from_slice(&vars);
    let run = deck.deckhand(&args).success().stdout_has("+ listener myapp:443");
    let destroy = deck.deckhand(&["destroy", "-v", "--stack", "myapp", "--yes"]).success();

    let mut injected = deck.faults().injected();
    injected.sort();
    assert_eq!(
        injected,
        [
            "CreateListener -> CertificateNotFound",
            "DeleteCluster -> ClusterContainsTasksException",
            "DeleteRouteTable -> DependencyViolation",
            "DescribeCertificate -> ResourceNotFoundException",
            "PutScalingPolicy -> ObjectNotFoundException",
            "RegisterScalableTarget -> ValidationException",
        ]
    );
    for (outcome, retried) in [
        (&run, "ResourceNotFoundException, but this run requested arn:aws:acm:"),
        (&run, "CertificateNotFound, but a certificate of this run was issued"),
        (&run, "ValidationException, but this run changed the service"),
        (&run, "ObjectNotFoundException, but this run registered the scalable target"),
        (&destroy, "ClusterContainsTasksException, but this run's services went INACTIVE"),
        (&destroy, "DependencyViolation, but this run deleted VPC endpoints"),
    ] {
        assert!(
            outcome.stderr.lines().any(|l| l.contains(retried) && l.contains("retrying")),
            "no retry logged for {retried}:\n{}",
            outcome.stderr
        );
    }
    // The run converged (one HTTPS listener, a target and its policy), and destroy removed all.
    assert_eq!(deck.faults().count("CreateListener"), 3, "two listeners, one of them sent twice");
    let clusters = aws.block_on(aws.ecs.describe_clusters().clusters("myapp").send()).unwrap();
    assert!(clusters.clusters().iter().all(|c| c.status() == Some("INACTIVE")), "deleted: {clusters:?}");
    let stack = Filter::builder().name("tag:deckhand:stack").values("myapp").build();
    let tables = aws.block_on(aws.ec2.describe_route_tables().filters(stack).send()).unwrap();
    assert!(tables.route_tables().is_empty(), "{tables:?}");
}
