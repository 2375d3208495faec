//! `deckhand status` and `deckhand logs`: a deployed stack's resources and service state, read
//! only; logs from the service's awslogs group.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::support::Deck;

const BUNDLED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/fargate-alb.rhai");

/// Applies the bundled script (the guide's whole architecture) as stack `myapp`.
pub fn deploy_bundled(deck: &Deck) {
    deck.deckhand(&["run", BUNDLED]).success();
}

/// Writes `lines` into a new stream of `/ecs/myapp` named like awslogs names a task's stream.
pub fn put_log_lines(deck: &Deck, stream: &str, lines: &[&str]) {
    let aws = deck.aws();
    aws.block_on(async {
        aws.logs.create_log_stream().log_group_name("/ecs/myapp").log_stream_name(stream).send().await.unwrap();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        let events = lines.iter().enumerate().map(|(i, line)| {
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(now - 1000 + i as i64)
                .message(*line)
                .build()
                .unwrap()
        });
        aws.logs
            .put_log_events()
            .log_group_name("/ecs/myapp")
            .log_stream_name(stream)
            .set_log_events(Some(events.collect()))
            .send()
            .await
            .unwrap();
    });
}

fn stack_filter(stack: &str) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder().name("tag:deckhand:stack").values(stack).build()
}

fn row(stdout: &str, kind: &str, name: &str) -> Option<String> {
    stdout.lines().find(|l| l.split_whitespace().take(2).eq([kind, name])).map(str::to_string)
}

#[test]
fn status_shows_every_resource_and_the_service_counts_read_only() {
    let deck = Deck::new();
    deploy_bundled(&deck);

    let (out, requests) = deck.recorded(|| deck.deckhand(&["status", "--stack", "myapp"]));
    requests.assert_read_only();
    let out = out.success();
    for (kind, name) in [
        ("subnet", "myapp-a"),
        ("subnet", "myapp-b"),
        ("security_group", "myapp-alb"),
        ("security_group", "myapp-app"),
        ("nat_gateway", "myapp-nat"),
        ("route_table", "myapp-private"),
        ("load_balancer", "myapp"),
        ("target_group", "myapp"),
        ("listener", "myapp:80"),
        ("role", "myapp-exec"),
        ("log_group", "/ecs/myapp"),
        ("cluster", "myapp"),
        ("task_definition", "myapp:1"),
        ("service", "myapp"),
    ] {
        assert!(row(&out.stdout, kind, name).is_some(), "no {kind} {name} row in:\n{}", out.stdout);
    }
    let lb = row(&out.stdout, "load_balancer", "myapp").unwrap();
    assert!(lb.contains("active"), "the load balancer's state is shown: {lb}");
    let cluster = row(&out.stdout, "cluster", "myapp").unwrap();
    assert!(cluster.contains("ACTIVE"), "{cluster}");
    assert!(row(&out.stdout, "subnet", "myapp-a").unwrap().contains("172.31.96.0/24"));
    assert!(row(&out.stdout, "target_group", "myapp").unwrap().contains("2/2 targets healthy"));
    // What ECS and ELB answer (the rehearsed rollout completed: both tasks run and their
    // targets passed the health checks); check that status asked them.
    let actions = requests.actions();
    for action in ["DescribeServices", "DescribeTargetHealth", "DescribeTaskDefinition", "DescribeTasks"] {
        assert!(actions.iter().any(|a| a == action), "status sends {action}: {actions:?}");
    }
    let out = out
        .stdout_has("Stack myapp: ")
        .stdout_has("Service myapp (cluster myapp): ACTIVE, 2 running / 0 pending / 2 desired, task myapp:1")
        .stdout_has("deployment PRIMARY")
        .stdout_has("  tasks:\n")
        .stdout_has("  targets:\n");
    let running = out.stdout.lines().filter(|l| l.contains(" RUNNING, task myapp:1")).count();
    let healthy =
        out.stdout.lines().filter(|l| l.starts_with("    myapp 172.31.9") && l.ends_with(":8080 healthy")).count();
    assert_eq!((running, healthy), (2, 2), "{}", out.stdout);
    assert!(!out.stdout.contains("myapp-exec-other"), "nothing outside the stack");
}

#[test]
fn status_json_has_the_documented_fields() {
    let deck = Deck::new();
    deploy_bundled(&deck);

    let out = deck.deckhand(&["status", "--stack", "myapp", "--output", "json"]).success();
    let status: Value = serde_json::from_str(&out.stdout).expect("status --output json prints JSON");
    assert_eq!(status["stack"], "myapp");
    let resources = status["resources"].as_array().expect("resources is an array");
    for resource in resources {
        for field in ["type", "name", "id", "state", "detail"] {
            assert!(resource.get(field).is_some(), "resource lacks {field}: {resource}");
        }
    }
    let kinds: Vec<&str> = resources.iter().filter_map(|r| r["type"].as_str()).collect();
    for kind in ["subnet", "security_group", "load_balancer", "target_group", "listener", "role", "log_group"] {
        assert!(kinds.contains(&kind), "no {kind} in {kinds:?}");
    }
    let lb = resources.iter().find(|r| r["type"] == "load_balancer").unwrap();
    assert_eq!(lb["state"], "active");
    assert!(lb["id"].as_str().unwrap().starts_with("arn:aws:elasticloadbalancing:"));
    let subnet = resources.iter().find(|r| r["type"] == "subnet").unwrap();
    assert!(subnet["id"].as_str().unwrap().starts_with("subnet-"));
    assert_eq!(subnet["state"], Value::Null, "subnets have no lifecycle state");

    let services = status["services"].as_array().expect("services is an array");
    assert_eq!(services.len(), 1);
    let service = &services[0];
    assert_eq!(service["name"], "myapp");
    assert_eq!(service["cluster"], "myapp");
    assert_eq!(service["status"], "ACTIVE");
    assert_eq!(service["running"], 2);
    assert_eq!(service["pending"], 0);
    assert_eq!(service["desired"], 2);
    assert_eq!(service["task_definition"], "myapp:1");
    assert!(service["arn"].as_str().unwrap().contains(":service/myapp/myapp"));
    let deployment = &service["deployments"][0];
    for field in ["id", "status", "rollout_state", "reason", "running", "pending", "desired", "task_definition"] {
        assert!(deployment.get(field).is_some(), "deployment lacks {field}: {deployment}");
    }
    assert_eq!(deployment["status"], "PRIMARY");
    assert_eq!(deployment["task_definition"], "myapp:1");
    let target = &service["targets"][0];
    assert_eq!(target["target_group"], "myapp");
    let ip = target["id"].as_str().unwrap();
    assert!(ip.starts_with("172.31.96.") || ip.starts_with("172.31.97."), "a task's IP in the stack's subnets: {ip}");
    assert_eq!(target["port"], 8080);
    assert_eq!(target["state"], "healthy");
    for field in ["reason", "description"] {
        assert!(target.get(field).is_some(), "target lacks {field}: {target}");
    }
    let task = &service["tasks"][0];
    for field in ["id", "last_status", "desired_status", "private_ip", "task_definition", "started_at"] {
        assert!(task.get(field).is_some(), "task lacks {field}: {task}");
    }
    assert!(service["tasks"].as_array().unwrap().iter().any(|t| t["private_ip"] == ip), "{service}");
    assert!(service["events"].is_array(), "{service}");
}

#[test]
fn a_stack_without_resources_says_so() {
    let deck = Deck::new();
    deck.deckhand(&["status", "--stack", "nothing"]).success().stdout_has("Stack nothing has no resources.");
    let out = deck.deckhand(&["status", "--stack", "nothing", "--output", "json"]).success();
    let status: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(status["resources"], Value::Array(vec![]));
    assert_eq!(status["services"], Value::Array(vec![]));
}

#[test]
fn logs_prints_the_service_events_prefixed_with_their_stream() {
    let deck = Deck::new();
    deploy_bundled(&deck);
    put_log_lines(&deck, "myapp/app/0f1e2d3c", &["GET / 200", "GET /health 200"]);
    put_log_lines(&deck, "other/app/99", &["not this service"]);
    put_log_lines(&deck, "myapp/sidecar/1", &["not this container"]);

    let (out, requests) = deck.recorded(|| deck.deckhand(&["logs", "--stack", "myapp", "--since", "1h"]));
    requests.assert_read_only();
    let out = out.success().stdout_has("myapp/app/0f1e2d3c GET / 200\nmyapp/app/0f1e2d3c GET /health 200\n");
    assert!(!out.stdout.contains("not this service"), "only the service's streams: {}", out.stdout);
    assert!(!out.stdout.contains("not this container"), "only the container's streams: {}", out.stdout);
    // CloudWatch Logs does the filtering: the service's stream prefix is asked for.
    let prefixes: Vec<Value> = requests
        .0
        .iter()
        .filter(|r| r.action == "FilterLogEvents")
        .map(|r| serde_json::from_str::<Value>(&r.body).unwrap()["logStreamNamePrefix"].clone())
        .collect();
    assert!(!prefixes.is_empty() && prefixes.iter().all(|p| p == "myapp/app/"), "{prefixes:?}");

    deck.deckhand(&["logs", "--stack", "myapp", "--service", "myapp", "--since", "1h"])
        .success()
        .stdout_has("GET /health 200");
    deck.deckhand(&["logs", "--stack", "myapp", "--service", "web"])
        .failure()
        .stderr_has("invalid --service \"web\": a service of stack myapp: myapp");
    deck.deckhand(&["logs", "--stack", "myapp", "--since", "ten minutes"])
        .failure()
        .stderr_has("invalid --since \"ten minutes\": a number followed by s, m, h or d");
}

#[test]
fn logs_follow_prints_new_events_as_they_arrive() {
    let deck = Deck::new();
    deploy_bundled(&deck);
    put_log_lines(&deck, "myapp/app/aaaa", &["first line"]);
    let mut child = deck
        .command(env!("CARGO_BIN_EXE_deckhand"))
        .args(["logs", "--stack", "myapp", "--since", "1h", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("deckhand logs --follow starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let next = || received.recv_timeout(Duration::from_secs(60)).expect("deckhand logs --follow printed a line");
    assert_eq!(next(), "myapp/app/aaaa first line");
    put_log_lines(&deck, "myapp/app/bbbb", &["second line"]);
    assert_eq!(next(), "myapp/app/bbbb second line", "a later event is printed once, after the first");
    child.kill().expect("deckhand logs --follow stops");
    child.wait().unwrap();
}

/// status and destroy read one inventory: status shows the elastic IP and a stack service in a
/// cluster the stack does not own, as destroy lists (and deletes) them.
#[test]
fn status_lists_what_destroy_would_delete_elastic_ips_and_services_in_foreign_clusters_included() {
    let deck = Deck::new();
    deploy_bundled(&deck);
    let aws = deck.aws();
    aws.block_on(async {
        aws.ecs.create_cluster().cluster_name("handmade").send().await.unwrap();
        let subnets = aws.ec2.describe_subnets().filters(stack_filter("myapp")).send().await.unwrap();
        let awsvpc = aws_sdk_ecs::types::AwsVpcConfiguration::builder()
            .subnets(subnets.subnets()[0].subnet_id().unwrap())
            .build()
            .unwrap();
        aws.ecs
            .create_service()
            .cluster("handmade")
            .service_name("worker")
            .task_definition("myapp:1")
            .desired_count(1)
            .network_configuration(
                aws_sdk_ecs::types::NetworkConfiguration::builder().awsvpc_configuration(awsvpc).build(),
            )
            .tags(aws_sdk_ecs::types::Tag::builder().key("deckhand:stack").value("myapp").build())
            .send()
            .await
            .unwrap();
    });
    let addresses = aws.block_on(aws.ec2.describe_addresses().filters(stack_filter("myapp")).send()).unwrap();
    let allocation = addresses.addresses()[0].allocation_id().unwrap().to_string();

    let (out, requests) = deck.recorded(|| deck.deckhand(&["status", "--stack", "myapp"]));
    requests.assert_read_only();
    let out = out.success();
    let eip =
        row(&out.stdout, "elastic_ip", "myapp-nat").unwrap_or_else(|| panic!("no elastic IP in:\n{}", out.stdout));
    assert!(eip.contains(&allocation), "{eip}");
    let worker = row(&out.stdout, "service", "worker").unwrap_or_else(|| panic!("no worker in:\n{}", out.stdout));
    assert!(worker.contains("service/handmade/worker"), "{worker}");
    assert!(row(&out.stdout, "cluster", "handmade").is_none(), "the foreign cluster is not the stack's");
    assert!(out.stdout.contains("Service worker (cluster handmade)"), "{}", out.stdout);

    let json: Value =
        serde_json::from_str(&deck.deckhand(&["status", "--stack", "myapp", "--output", "json"]).success().stdout)
            .unwrap();
    let resources = json["resources"].as_array().unwrap();
    let destroy = deck.deckhand(&["destroy", "--stack", "myapp", "--plan"]).success();
    let listed: Vec<&str> = destroy.stdout.lines().filter(|l| l.starts_with("- ") || l.starts_with("= ")).collect();
    assert_eq!(
        resources.len(),
        listed.len(),
        "status and destroy list the same resources:\n{}\n{json:#}",
        destroy.stdout
    );
    for line in [format!("- elastic_ip myapp-nat ({allocation})"), "- service worker (service/handmade/worker)".into()]
    {
        assert!(listed.contains(&line.as_str()), "{line} not in {listed:#?}");
    }
}
