//! Script queries after the bundled script: clusters, services, describe, target health, events,
//! logs and the find_* lookups return what AWS holds and send nothing mutating.

use crate::status::{deploy_bundled, put_log_lines};
use crate::support::Deck;

#[test]
fn queries_read_the_deployed_stack_and_change_nothing() {
    let deck = Deck::new();
    deploy_bundled(&deck);
    let script = r#"
        stack("myapp");
        let names = clusters().map(|c| c.name);
        print(`clusters: ${names}`);
        let cluster = find_cluster("myapp");
        print(`cluster kind: ${cluster.kind} providers: ${cluster.capacity_providers}`);
        let svcs = services(cluster);
        print(`services: ${svcs.map(|s| s.name)} desired: ${svcs[0].desired}`);
        let svc = find_service("myapp", "myapp");
        print(`same arn: ${svc.arn == svcs[0].arn} kind: ${svc.kind} cluster: ${svc.cluster}`);
        let state = describe(svc);
        print(`service: ${state.status} ${state.running} running / ${state.desired} desired, ${state.deployments.len()} deployment ${state.deployments[0].status}`);
        let tg = find_target_group("myapp");
        print(`target group: ${tg.kind} ${tg.port} ${tg.target_type} same as service: ${state.target_groups[0] == tg.arn}`);
        let health = target_health(tg);
        let listed = tasks(svc);
        let ips = listed.map(|t| t.private_ip);
        print(`targets: ${health.len()} ${health[0].port} ${health[0].state} tasks' IPs: ${ips.contains(health[0].id)} same by arn: ${target_health(tg.arn) == health}`);
        print(`describe tg: ${describe(tg).health_check.path}`);
        let lb = find_load_balancer("myapp");
        print(`load balancer: ${describe(lb).state} ${describe(lb).dns_name == lb.dns_name}`);
        print(`role: ${find_role("myapp-exec").name} ${describe(find_role("myapp-exec")).managed_policies}`);
        print(`log group: ${describe(find_log_group("/ecs/myapp")).retention_days}`);
        print(`task: ${describe(#{ kind: "task_definition", arn: svc.task_definition }).cpu}`);
        print(`events: ${events(svc, 3).len()} newest: ${events(svc, 1)[0].message}`);
        print(`tasks: ${listed.map(|t| t.last_status)}`);
        print(`missing: ${find_cluster("nope") == ()} ${find_service("myapp", "nope") == ()} ${find_load_balancer("nope") == ()} ${find_target_group("nope") == ()} ${find_role("nope") == ()} ${find_log_group("/nope") == ()}`);
    "#;
    // A script that declares only part of the stack would delete the rest: --keep-undeclared.
    let (out, requests) = deck.recorded(|| deck.run(script, &["--keep-undeclared"]));
    requests.assert_read_only();
    // The bundled script waited for its rollout: both tasks run, their targets are healthy, and
    // the newest event says the service is steady.
    out.success()
        .stdout_has("clusters: [\"myapp\"]")
        .stdout_has("cluster kind: cluster providers: [\"FARGATE\", \"FARGATE_SPOT\"]")
        .stdout_has("services: [\"myapp\"] desired: 2")
        .stdout_has("same arn: true kind: service cluster: myapp")
        .stdout_has("service: ACTIVE 2 running / 2 desired, 1 deployment PRIMARY")
        .stdout_has("target group: target_group 8080 ip same as service: true")
        .stdout_has("targets: 2 8080 healthy tasks' IPs: true same by arn: true")
        .stdout_has("describe tg: /")
        .stdout_has("load balancer: active true")
        .stdout_has("role: myapp-exec [\"arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy\"]")
        .stdout_has("log group: 30")
        .stdout_has("task: 256")
        .stdout_has("events: 3 newest: (service myapp) has reached a steady state.")
        .stdout_has("tasks: [\"RUNNING\", \"RUNNING\"]")
        .stdout_has("missing: true true true true true true");

    // tasks(svc) lists the service's running and stopped tasks: ListTasks by cluster and service.
    let list_tasks: Vec<serde_json::Value> = requests
        .0
        .iter()
        .filter(|r| r.action == "ListTasks")
        .map(|r| serde_json::from_str(&r.body).expect("a JSON ListTasks body"))
        .collect();
    let mut statuses: Vec<&str> = list_tasks.iter().filter_map(|b| b["desiredStatus"].as_str()).collect();
    statuses.sort();
    assert_eq!(statuses, ["RUNNING", "STOPPED"], "{list_tasks:?}");
    for body in &list_tasks {
        assert_eq!(body["serviceName"], "myapp", "{body}");
        assert!(body["cluster"].as_str().is_some_and(|c| c.ends_with(":cluster/myapp")), "{body}");
    }
    // events(svc, 3) reads the service (its events come with DescribeServices).
    let described = requests.0.iter().filter(|r| r.action == "DescribeServices");
    assert!(described.into_iter().any(|r| r.body.contains(":service/myapp/myapp") || r.body.contains("\"myapp\"")));
}

#[test]
fn logs_returns_the_service_log_events() {
    let deck = Deck::new();
    deploy_bundled(&deck);
    put_log_lines(&deck, "myapp/app/5a6b7c", &["started", "listening on 8080"]);
    let input = r#"let svc = find_service("myapp", "myapp");
let lines = logs(svc, #{ since: "1h" });
print(`${lines.len()} ${lines[0].task} ${lines[1].message}`);
print(logs(find_log_group("/ecs/myapp"), #{ since: "1h", limit: 1 }).map(|e| e.message));
logs(svc, #{ since: "soon" })
"#;
    let (out, requests) = deck.recorded(|| deck.repl(&[], input));
    requests.assert_read_only();
    out.stdout_has("2 5a6b7c listening on 8080")
        .stdout_has("[\"listening on 8080\"]")
        .stderr_has("invalid logs.since \"soon\": a number followed by s, m, h or d");
}

#[test]
fn queries_in_check_mode_return_empty_values_and_still_check_their_arguments() {
    let deck = Deck::new();
    let script = deck.write(
        "queries.rhai",
        r#"stack("myapp");
let got = [clusters().len(), find_cluster("myapp"), logs("/ecs/myapp").len(), services("myapp").len(),
           describe(#{ kind: "cluster", arn: "arn:aws:ecs:us-west-2:123456789012:cluster/myapp" })];
if got != [0, (), 0, 0, ()] { throw `check mode read something: ${got}`; }
"#,
    );
    let (out, requests) = deck.recorded(|| deck.deckhand(&["check", script.to_str().unwrap()]));
    requests.assert_none();
    out.success();

    deck.run("stack(\"myapp\");\nevents(#{ kind: \"cluster\" }, 3);\n", &[])
        .failure()
        .stderr_has("invalid events.service")
        .stderr_has("a service handle");
    deck.run("stack(\"myapp\");\ndescribe(#{ kind: \"container\" });\n", &[])
        .failure()
        .stderr_has("invalid describe.handle")
        .stderr_has("kind one of vpc, subnet");
}

#[test]
fn describe_rereads_every_handle_kind() {
    let deck = Deck::new();
    deploy_bundled(&deck);
    // The primitives below find everything unchanged, so the run is its plan pass only: read-only
    // (with --keep-undeclared: they are only part of the stack).
    let script = r#"
        stack("myapp");
        let vpc = default_vpc();
        let a = subnet(vpc, #{ name: "myapp-a", az: "us-west-2a", cidr: "172.31.96.0/24" });
        let b = subnet(vpc, #{ name: "myapp-b", az: "us-west-2b", cidr: "172.31.97.0/24" });
        let nat = nat_gateway(default_subnet(vpc, "us-west-2a"), #{ name: "myapp-nat" });
        let rt = route_table(vpc, #{ name: "myapp-private", subnets: [a, b],
                                     routes: [#{ cidr: "0.0.0.0/0", nat_gateway: nat }] });
        let alb_sg = security_group(vpc, #{ name: "myapp-alb", ingress: [#{ port: 80, cidr: "0.0.0.0/0" }] });
        let lb = find_load_balancer("myapp");
        let l = listener(lb, #{ port: 80, forward: find_target_group("myapp") });
        print(`vpc: ${describe(vpc)["default"]} ${describe(vpc).id == vpc.id}`);
        print(`subnet: ${describe(a).cidr} ${describe(a).stack}`);
        print(`nat: ${describe(nat).state}`);
        print(`route table: ${describe(rt).routes} ${describe(rt).subnets.len()}`);
        print(`security group: ${describe(alb_sg).ingress}`);
        let found = describe(l);
        print(`listener: ${found.action} ${found.port} ${found.target_group_arn == find_target_group("myapp").arn}`);
        print(`cluster: ${describe(find_cluster("myapp")).status} ${describe(find_cluster("myapp")).stack}`);
        print(`gone: ${describe(#{ kind: "subnet", id: "subnet-0000000000" }) == ()}`);
    "#;
    let (out, requests) = deck.recorded(|| deck.run(script, &["--keep-undeclared"]));
    requests.assert_read_only();
    out.success()
        .stdout_has("vpc: true true")
        .stdout_has("subnet: 172.31.96.0/24 myapp")
        .stdout_has("nat: available")
        .stdout_has("route table: [\"172.31.0.0/16 -> local\", \"0.0.0.0/0 -> nat-")
        .stdout_has("security group: [\"tcp/80 0.0.0.0/0\"]")
        .stdout_has("listener: forward 80 true")
        .stdout_has("cluster: ACTIVE myapp")
        .stdout_has("gone: true");
}

#[test]
fn queries_on_resources_a_plan_would_create_return_empty_values() {
    let deck = Deck::new();
    let script = r#"
        stack("fresh");
        let c = cluster("fresh");
        print(`planned: ${services(c).len()} ${describe(c) == ()} ${find_service(c, "web") == ()} ${clusters().len()}`);
    "#;
    let (out, requests) = deck.recorded(|| deck.plan(script, &[]));
    requests.assert_read_only();
    out.success().expect_changes(&["+ cluster fresh"]).stdout_has("planned: 0 true true 0");
}
