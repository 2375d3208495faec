"""ECS in the emulator: services, deployments and their tasks' load balancer targets go through
the states real AWS shows (one task's lifecycle, and RunTask's, is tasks.py), for as long as AWS takes (modelled at scale 1, run faster by
DECKHAND_TIME_SCALE; see clock.py).

Sources (cited again where each value is used):
- Task lifecycle: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-lifecycle-explanation.html
  (PROVISIONING -> PENDING -> RUNNING; DEACTIVATING -> STOPPING -> DEPROVISIONING -> STOPPED).
- Service event messages ("Amazon ECS service event messages"):
  https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-event-messages-list.html
- Rolling update and the deployment circuit breaker:
  https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-type-ecs.html
  https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-circuit-breaker.html
- Target health states and reason codes (DescribeTargetHealth):
  https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_TargetHealth.html
- Stopped task error codes ("Amazon ECS stopped task error messages"):
  https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stopped-task-error-codes.html

What moto does instead: a service reports MOTO_ECS_SERVICE_RUNNING tasks running and none exist,
ListTasks ignores serviceName, a task's IP is outside its subnet, RunTask tasks run forever. Here:
- A service deployment launches tasks (PROVISIONING, PENDING, RUNNING after about a minute)
  when network.task_network_failure finds nothing missing and the awslogs group exists;
  otherwise the task stops with AWS's stopped reason and ECS launches another.
- A running task has an ENI attachment with a private IP in its subnet, a runtimeId per container,
  and is registered in the service's target groups: `initial`, then `healthy` after one passed
  health check (a newly registered target needs one, whatever the healthy threshold), one
  interval after its load balancer is active (network.load_balancer_active), if
  network.admits_load_balancer, else `unhealthy` after the unhealthy threshold x interval
  (Target.FailedHealthChecks), and ECS stops the task (after healthCheckGracePeriodSeconds).
- A rolling update respects maximumPercent/minimumHealthyPercent; an old task's target is
  `draining` for the deregistration delay before the task stops; the deployment is COMPLETED
  once the new tasks are healthy and the old ones stopped. The circuit breaker fails a
  deployment past its threshold and, with rollback, deploys the last completed task definition.
- RunTask tasks run, then stop with an exit code (a shell script ending in `exit N`), their
  `echo` lines written to their awslogs stream.
- CreateService keeps capacityProviderStrategy, deploymentConfiguration and
  healthCheckGracePeriodSeconds (moto drops them); a service on a capacity provider reports no
  launchType, as on AWS. AWS fills in the deployment configuration's defaults (200 %, 100 %,
  circuit breaker off, strategy ROLLING); so does this.
- Every deployment has a service deployment and a service revision (ListServiceDeployments,
  DescribeServiceDeployments, DescribeServiceRevisions; moto has none): PENDING, IN_PROGRESS,
  then SUCCESSFUL, or ROLLBACK_REQUESTED/ROLLBACK_IN_PROGRESS/ROLLBACK_SUCCESSFUL when the
  circuit breaker, an alarm in ALARM, StopServiceDeployment(ROLLBACK) or a lifecycle hook rolls
  it back (STOPPED without rollback), with the circuit breaker's and the alarms' details.
- deploymentConfiguration.strategy BLUE_GREEN, CANARY and LINEAR with
  loadBalancers[].advancedConfiguration (validated as CreateService/UpdateService do): the new
  revision's tasks start beside the old ones and register in the alternate target group, the test
  and production listener rules' weights move (all at once, canaryPercent then the rest, or
  stepPercent steps, each step's bake in between), bakeTimeInMinutes with both revisions running,
  then clean up: the old tasks drain and stop, and the service's target group and alternate
  target group trade places. The lifecycle stages are reported as they pass; PAUSE hooks wait
  for ContinueServiceDeployment (or their timeout's action). See "Service deployments" below.
"""

import copy
import datetime
import math
import uuid

from moto.ecs import models as ecs_models
from moto.ecs import responses as ecs_responses
from moto.ecs.exceptions import ECSException, InvalidParameterException
from moto.elbv2 import models as elbv2_models
from moto.elbv2.models import elbv2_backends
from moto.moto_api._internal import mock_random

import clock
import network
from tasks import (
    begin,
    default_security_group,
    live,
    one_off_running,
    patch_task_sizes,
    prepare,
    private_ip,
    schedule,
    stopped,
    task_id,
    wind_down,
)

DEFAULT_DEPLOYMENT_CONFIGURATION = {
    "deploymentCircuitBreaker": {"enable": False, "rollback": False},
    "maximumPercent": 200,
    "minimumHealthyPercent": 100,
    "strategy": "ROLLING",
}
# How often a target waiting for its load balancer to become active looks again (a modelling
# step, not an AWS figure: health checks start at most this late after the load balancer is active).
LOAD_BALANCER_RECHECK_SECONDS = 5

# The rolloutStateReason of a deployment the circuit breaker failed, as DescribeServices reports it
# (deployment circuit breaker docs; AWS blog "Announcing Amazon ECS deployment circuit breaker").
FAILED_TO_START_REASON = "ECS deployment circuit breaker: tasks failed to start."

# ---------------------------------------------------------------------------------------------
# Events and small helpers


def say(service, key, item, message_of):
    """Adds a service event, or extends the one of the same kind of news made at the same moment
    (ECS reports tasks started together as one "has started 2 tasks: ..." event)."""
    now = clock.utcnow()
    news = getattr(service, "_news", None)
    if news is None or news[0] != now:
        news = service._news = (now, {})
    if key in news[1]:
        items, event = news[1][key]
        items.append(item)
        event["message"] = message_of(items)
        return
    event = {"id": str(uuid.uuid4()), "createdAt": now, "message": message_of([item])}
    news[1][key] = ([item], event)
    service.events.insert(0, event)
    del service.events[100:]  # DescribeServices returns the newest 100 events.


def say_once(service, message):
    say(service, ("once", message), None, lambda _: message)


def plural(n, word):
    # ECS writes the plural whatever the count: "has started 1 tasks", "registered 1 targets".
    return f"{n} {word}s"


def deployment_id():
    # AWS's deployment ids are ecs-svc/ and 19 digits.
    return f"ecs-svc/{mock_random.randint(10**18, 10**19 - 1)}"


def configuration(service):
    return getattr(service, "deployment_configuration", None) or DEFAULT_DEPLOYMENT_CONFIGURATION


# ---------------------------------------------------------------------------------------------
# Targets


def target_groups(service):
    """The target groups of the service's load balancers (their primary groups), with the port."""
    backend = elbv2_backends[service._account_id][service.region_name]
    for lb in service.load_balancers or []:
        group = backend.target_groups.get(lb.get("targetGroupArn"))
        if group is not None:
            yield group, int(lb.get("containerPort") or group.port or 80)


def groups_of(service, task):
    """The target groups the task registers in: those of its deployment (a blue/green, canary or
    linear deployment's new tasks register in the alternate groups, deployments.py), else the
    service's."""
    chosen = getattr(service, "_groups", {}).get(task.started_by)
    if chosen is None:
        return list(target_groups(service))
    backend = elbv2_backends[service._account_id][service.region_name]
    return [(backend.target_groups[arn], port) for arn, port in chosen if arn in backend.target_groups]


def registered_groups(service, task):
    """The target groups the task is registered in."""
    backend = elbv2_backends[service._account_id][service.region_name]
    return [backend.target_groups[arn] for arn in getattr(task, "_targets", {}) if arn in backend.target_groups]


def set_health(group, target_id, state, reason=None, description=None):
    target = group.targets.get(target_id)
    if target is not None:
        target["_health"] = (state, reason, description)


def health_of(task):
    """`healthy` when every target of the task is healthy (or it has none), else its worst state."""
    states = [state for state in task._targets.values()]
    if not states or all(s == "healthy" for s in states):
        return "healthy"
    return "unhealthy" if "unhealthy" in states else "initial"


def register_targets(service, task):
    ip = private_ip(task)
    task._targets = {}
    for group, port in groups_of(service, task):
        group.targets[ip] = {"Id": ip, "Port": port}
        # Registration in progress until the load balancer's checks begin.
        set_health(group, ip, "initial", "Elb.RegistrationInProgress", "Target registration is in progress")
        task._targets[group.arn] = "initial"
        say(
            service,
            ("registered", group.arn),
            ip,
            lambda ips, arn=group.arn: f"(service {service.name}) registered {plural(len(ips), 'target')} in (target-group {arn})",
        )
        check_health(service, task, group, port)


def check_health(service, task, group, port):
    """Health checks start once the load balancer is active; the verdict comes after the checks
    it takes, one HealthCheckIntervalSeconds apart (AWS default 30 s).

    A newly registered target is `healthy` after one passed check: "After your target is
    registered, it must pass one health check to be considered healthy" (ELB User Guide, "Health
    checks for Application Load Balancer target groups",
    https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html);
    "For a newly registered target, regardless of the healthy threshold count setting, only one
    successful health check is required [...]. The healthy threshold count only applies when a
    target transitions from unhealthy back to healthy" (ECS Developer Guide, "Optimize load
    balancer health check parameters for Amazon ECS", load-balancer-healthcheck.html). ELB
    documents no figure for when the first check runs after registration; checks run every
    interval, so it is modelled at the end of the first one.

    A target that fails takes UnhealthyThresholdCount consecutive failures (AWS default 2) to be
    `unhealthy` ("If the health checks exceed UnhealthyThresholdCount consecutive failures, the
    load balancer takes the target out of service", same ELB page)."""
    if not live(task) or group.arn not in task._targets:
        return
    lbs = list(group.load_balancer_arns)
    if not lbs or not all(network.load_balancer_active(service._account_id, service.region_name, lb) for lb in lbs):
        schedule(task, LOAD_BALANCER_RECHECK_SECONDS, lambda: check_health(service, task, group, port))
        return
    ip = private_ip(task)
    set_health(group, ip, "initial", "Elb.InitialHealthChecking", "Initial health checks in progress")
    awsvpc = (getattr(task, "network_configuration", None) or {}).get("awsvpcConfiguration", {})
    groups = awsvpc.get("securityGroups", [])
    admitted = all(
        network.admits_load_balancer(service._account_id, service.region_name, groups, lb, port) for lb in lbs
    )
    interval = int(group.health_check_interval_seconds or 30)
    if admitted:
        schedule(task, interval, lambda: healthy(service, task, group))
    else:
        checks = int(group.unhealthy_threshold_count or 2)
        schedule(task, checks * interval, lambda: unhealthy(service, task, group, port))


def healthy(service, task, group):
    set_health(group, private_ip(task), "healthy")
    task._targets[group.arn] = "healthy"
    reconcile(service)


def unhealthy(service, task, group, port):
    set_health(group, private_ip(task), "unhealthy", "Target.FailedHealthChecks", "Health checks failed")
    task._targets[group.arn] = "unhealthy"
    say_once(
        service,
        f"(service {service.name}) (task {task_id(task)}) (port {port}) is unhealthy in (target-group {group.arn}) "
        "due to (reason Health checks failed).",
    )
    # ECS ignores the load balancer's verdict during the health check grace period after the
    # task started (healthCheckGracePeriodSeconds), then stops and replaces the task.
    grace = int(getattr(service, "health_check_grace_period_seconds", None) or 0)
    wait = max(0.0, grace - clock.modelled_since(task._running_wall))
    reason = f"Task failed ELB health checks in (target-group {group.arn})"
    if wait > 0:
        schedule(task, wait, lambda: fail_health(service, task, reason))
    else:
        fail_health(service, task, reason)


def fail_health(service, task, reason):
    count_failure(service, task)
    stop(service, task, reason, "ServiceSchedulerInitiated")
    reconcile(service)


def drain_seconds(service, task):
    """How long the task's targets drain: the longest deregistration delay of its target groups
    (deregistration_delay.timeout_seconds, 300 s by default)."""
    delays = [
        int(group.attributes.get("deregistration_delay.timeout_seconds", 300))
        for group in registered_groups(service, task)
    ]
    return max(delays, default=0)


def deregister_targets(service, task):
    ip = private_ip(task)
    for group in registered_groups(service, task):
        set_health(group, ip, "draining", "Target.DeregistrationInProgress", "Target deregistration is in progress")
        say(
            service,
            ("deregistered", group.arn),
            ip,
            lambda ips, arn=group.arn: f"(service {service.name}) deregistered {plural(len(ips), 'target')} in (target-group {arn})",
        )


def forget_targets(service, task):
    ip = private_ip(task)
    for group in registered_groups(service, task):
        group.targets.pop(ip, None)
    task._targets = {}

# ---------------------------------------------------------------------------------------------
# Services


def tasks_of(service):
    return getattr(service, "_tasks", [])


def deployment_of(service, task):
    return next((d for d in service.deployments if d["id"] == task.started_by), None)


def primary(service):
    return next((d for d in service.deployments if d.get("status") == "PRIMARY"), None)


def new_deployment(service, task_definition, reason=None, rollback_of=None):
    """Starts an ECS deployment (DescribeServices' deployments) of the task definition, and the
    service deployment and revision that describe it (ListServiceDeployments). A circuit breaker's
    or a rolling StopServiceDeployment's rollback is a deployment of the failed service deployment
    (`rollback_of`), not a service deployment of its own."""
    now = clock.utcnow()
    identifier = deployment_id()
    sources = [d for d in service.deployments if d.get("status") in ("PRIMARY", "ACTIVE")]
    for d in service.deployments:
        if d.get("status") == "PRIMARY":
            d["status"] = "ACTIVE"
            d["updatedAt"] = now
    deployment = {
        "id": identifier,
        "status": "PRIMARY",
        "taskDefinition": task_definition,
        "desiredCount": service.desired_count,
        "pendingCount": 0,
        "runningCount": 0,
        "failedTasks": 0,
        "createdAt": now,
        "updatedAt": now,
        "launchType": service.launch_type,
        "capacityProviderStrategy": getattr(service, "capacity_provider_strategy", None) or None,
        "platformVersion": service.platform_version or ("LATEST" if service.launch_type != "EC2" else None),
        "platformFamily": "Linux",
        "networkConfiguration": service.network_configuration or None,
        "rolloutState": "IN_PROGRESS",
        "rolloutStateReason": reason or f"ECS deployment {identifier} in progress.",
    }
    service.deployments.insert(0, deployment)
    service.task_definition = task_definition
    service._steady = False
    if rollback_of is not None:
        service._groups = {**getattr(service, "_groups", {}), identifier: primary_groups(service)}
        remember_revision(service, identifier, rollback_of.rollback_revision())
        rollback_of.rollback_to = identifier
    else:
        begin_service_deployment(service, deployment, sources)
    return deployment


def launch(service, deployment, count):
    backend = service._backend
    cluster = backend._get_cluster(service.cluster_name)
    task_definition = backend.describe_task_definition(deployment["taskDefinition"])
    network_configuration = service.network_configuration or None
    if not network_configuration and getattr(task_definition, "network_mode", None) != "awsvpc":
        # A bridge or host mode task runs on the cluster's container instances, and the emulator
        # has none: ECS places no task and says why ("Amazon ECS service event messages": service
        # (service-name) was unable to place a task because no container instance met all of its
        # requirements).
        say_once(
            service,
            f"(service {service.name}) was unable to place a task because no container instance met all of "
            "its requirements. Reason: No Container Instances were found in your cluster.",
        )
        return
    started = []
    for _ in range(count):
        configured = None
        if network_configuration:
            awsvpc = network_configuration["awsvpcConfiguration"]
            subnets = awsvpc["subnets"]
            # ECS spreads a service's tasks over its subnets' zones.
            service._next_subnet = getattr(service, "_next_subnet", -1) + 1
            chosen = subnets[service._next_subnet % len(subnets)]
            configured = {"awsvpcConfiguration": {**awsvpc, "subnets": [chosen]}}
        task = ecs_models.Task(
            cluster,
            task_definition,
            None,
            None,
            backend,
            group=f"service:{service.name}",
            launch_type=service.launch_type or "",
            started_by=deployment["id"],
            networking_configuration=configured,
            platform_version=deployment.get("platformVersion"),
            capacity_provider_name=next(
                iter(s.get("capacityProvider") for s in getattr(service, "capacity_provider_strategy", None) or []),
                None,
            ),
        )
        prepare(task, task_definition, None)
        task._service = service
        # ECS Exec reaches only tasks started after it was turned on (exec.py).
        task.enable_execute_command = bool(getattr(service, "enable_execute_command", False))
        task._targets = {}
        backend.tasks.setdefault(cluster.name, {})[task.task_arn] = task
        service._tasks = tasks_of(service) + [task]
        started.append(task)
        begin(task, lambda t: on_running(service, t), lambda t: on_failed_start(service, t))
    if started:
        service._steady = False
        say(
            service,
            "started",
            started,
            lambda batches: (
                lambda ts: f"(service {service.name}) has started {plural(len(ts), 'task')}: "
                + " ".join(f"(task {task_id(t)})" for t in ts)
                + "."
            )([t for batch in batches for t in batch]),
        )


def on_running(service, task):
    task._running_wall = clock.now()
    if groups_of(service, task):
        register_targets(service, task)
    else:
        task.health_status = "UNKNOWN"
    reconcile(service)


def on_failed_start(service, task):
    count_failure(service, task)
    reconcile(service)


def count_failure(service, task):
    deployment = deployment_of(service, task)
    if deployment is None:
        return
    deployment["failedTasks"] = deployment.get("failedTasks", 0) + 1
    deployment["updatedAt"] = clock.utcnow()
    sd = service_deployment_of(service, deployment["id"])
    if sd is not None:
        sd.failures += 1
    breaker = configuration(service).get("deploymentCircuitBreaker") or {}
    if not breaker.get("enable") or deployment.get("rolloutState") != "IN_PROGRESS":
        return
    # The failure threshold: 0.5 x the desired count, at least 3 and at most 200 (deployment
    # circuit breaker docs, "Failure threshold").
    if deployment["failedTasks"] < breaker_threshold(service):
        return
    deployment["rolloutState"] = "FAILED"
    deployment["rolloutStateReason"] = FAILED_TO_START_REASON
    say_once(
        service, f"(service {service.name}) (deployment {deployment['id']}) deployment failed: tasks failed to start."
    )
    if sd is not None and sd.active():
        sd.breaker_status = "TRIGGERED"
        fail(service, sd, FAILED_TO_START_REASON, bool(breaker.get("rollback")))
        return
    previous = getattr(service, "_completed_task_definition", None)
    if breaker.get("rollback") and previous and deployment.get("status") == "PRIMARY":
        # "rolls back to the last deployment that completed successfully": its task definition
        # and its network configuration.
        service.network_configuration = getattr(service, "_completed_network", None) or service.network_configuration
        rollback = new_deployment(service, previous)
        rollback["rolloutStateReason"] = (
            f"ECS deployment circuit breaker: rolling back to deploymentId {getattr(service, '_completed_deployment', '')}."
        )


def breaker_threshold(service):
    return min(200, max(3, math.ceil(0.5 * service.desired_count)))


def stop(service, task, reason, stop_code):
    """ECS stops the task: its targets drain first."""
    was_running = task.last_status == "RUNNING"
    if was_running and task._targets:
        say(
            service,
            "draining",
            task,
            lambda ts: f"(service {service.name}) has begun draining connections on {plural(len(ts), 'task')}.",
        )
        deregister_targets(service, task)

    def done(t):
        forget_targets(service, t)
        if was_running:
            say(
                service,
                "stopped",
                t,
                lambda ts: f"(service {service.name}) has stopped {plural(len(ts), 'running task')}: "
                + " ".join(f"(task {task_id(x)})" for x in ts)
                + ".",
            )
        reconcile(service)

    wind_down(task, drain_seconds(service, task) if was_running else 0, reason, stop_code, done)


def serving(task):
    return live(task) and task.last_status == "RUNNING" and health_of(task) == "healthy"


def reconcile(service):
    """ECS's service scheduler: launches and stops tasks toward the primary deployment at the pace
    the deployment configuration allows, and reports counts and rollout states. A change it makes
    (a task stopped at once) may ask for another look; that look runs after this one, never inside."""
    if getattr(service, "_reconciling", False):
        service._again = True
        return
    service._reconciling = True
    try:
        service._again = True
        while service._again:
            service._again = False
            reconcile_once(service)
    finally:
        service._reconciling = False


def reconcile_once(service):
    tasks = tasks_of(service)
    if service.status != "ACTIVE":
        for task in tasks:
            if live(task):
                stop(service, task, "Service deleted", "ServiceSchedulerInitiated")
        if all(stopped(t) for t in tasks):
            service.status = "INACTIVE"
        update_counts(service)
        return
    current = primary(service)
    if current is None:
        return
    sd = current_service_deployment(service)
    if sd is not None and sd.shifted and sd.active():
        reconcile_both(service, sd)
        return
    desired = service.desired_count
    config = configuration(service)
    maximum = math.floor(desired * int(config.get("maximumPercent", 200)) / 100)
    minimum = math.ceil(desired * int(config.get("minimumHealthyPercent", 100)) / 100)
    mine = [t for t in tasks if live(t) and t.started_by == current["id"]]
    others = [t for t in tasks if live(t) and t.started_by != current["id"]]

    # Scale the primary in: pending tasks first, then the newest.
    extra = len(mine) - desired
    if extra > 0:
        for task in sorted(mine, key=lambda t: (t.last_status == "RUNNING", t.created_at), reverse=False)[:extra]:
            stop(service, task, f"Scaling activity initiated by (deployment {current['id']})", "ServiceSchedulerInitiated")
        mine = [t for t in mine if live(t)]

    # Old tasks: those not serving go at once; serving ones while enough others serve.
    healthy_count = sum(1 for t in mine + others if serving(t))
    for task in sorted(others, key=lambda t: serving(t)):
        if not serving(task):
            stop(service, task, f"Scaling activity initiated by (deployment {current['id']})", "ServiceSchedulerInitiated")
        elif healthy_count - 1 >= minimum or sum(1 for t in mine if serving(t)) >= desired:
            healthy_count -= 1
            stop(service, task, f"Scaling activity initiated by (deployment {current['id']})", "ServiceSchedulerInitiated")
    others = [t for t in others if live(t)]

    # Launch for the primary, within maximumPercent (a failed deployment launches no more).
    if current.get("rolloutState") != "FAILED":
        room = max(0, maximum - len(mine) - len(others)) if desired else 0
        wanted = desired - len(mine)
        if wanted > 0 and room > 0:
            launch(service, current, min(wanted, room))

    update_counts(service)
    settle_if_steady(service)


def update_counts(service):
    now = clock.utcnow()
    for d in service.deployments:
        theirs = [t for t in tasks_of(service) if t.started_by == d["id"]]
        running = sum(1 for t in theirs if live(t) and t.last_status == "RUNNING")
        pending = sum(1 for t in theirs if live(t) and t.last_status in ("PROVISIONING", "PENDING"))
        desired = service.desired_count if d.get("status") == "PRIMARY" else sum(1 for t in theirs if live(t))
        if (running, pending, desired) != (d.get("runningCount"), d.get("pendingCount"), d.get("desiredCount")):
            d.update(runningCount=running, pendingCount=pending, desiredCount=desired, updatedAt=now)


def settle_if_steady(service):
    """COMPLETED and steady once the primary's tasks run and are healthy and every older task is
    STOPPED: its targets drained, then STOPPING and DEPROVISIONING (tasks.wind_down). By default
    "Amazon ECS considers the deployment successful when the target service revision fully
    stabilizes and the previous tasks are removed" (API_DeploymentEarlySuccessCriteria, `enable`):
    ECS cleans up the source revision's tasks, then completes the deployment ("Complete Amazon ECS
    rolling deployments early with early success criteria", early-success-criteria.html; only
    sourceServiceRevisionCleanup DEFERRED removes them after). The stop counts: a task slow to
    exit on SIGTERM slows deployments ("Optimize load balancer connection draining parameters",
    load-balancer-connection-draining.html, "SIGTERM responsiveness"). Until then the old
    deployment stays ACTIVE ("still has running tasks") with runningCount 0 once its tasks left
    RUNNING (DEACTIVATING while they drain), so the services-stable waiter's
    `length(deployments) == 1` (botocore ecs waiters-2.json ServicesStable; terraform-provider-aws
    statusServiceWaitForStable) holds only from here."""
    current = primary(service)
    if current is None:
        return
    sd = current_service_deployment(service)
    if sd is not None and sd.shifted and sd.status == "IN_PROGRESS" and sd.stage != "CLEAN_UP":
        return  # both revisions run until the blue/green, canary or linear deployment cleans up
    tasks = tasks_of(service)
    mine = [t for t in tasks if live(t) and t.started_by == current["id"]]
    steady = (
        len(mine) == service.desired_count
        and all(serving(t) for t in mine)
        and all(stopped(t) for t in tasks if t.started_by != current["id"])
    )
    if not steady or getattr(service, "_steady", False):
        return
    service._steady = True
    now = clock.utcnow()
    if current.get("rolloutState") == "IN_PROGRESS":
        current.update(rolloutState="COMPLETED", rolloutStateReason=f"ECS deployment {current['id']} completed.", updatedAt=now)
        say_once(service, f"(service {service.name}) (deployment {current['id']}) deployment completed.")
    if current.get("rolloutState") == "COMPLETED":
        service._completed_task_definition = current["taskDefinition"]
        service._completed_deployment = current["id"]
        service._completed_network = current.get("networkConfiguration")
    if sd is not None:
        if sd.status in ("PENDING", "IN_PROGRESS") and sd.deployment_id == current["id"]:
            sd.finish("SUCCESSFUL", f"ECS deployment {current['id']} completed.")
        elif sd.status in ("ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS") and sd.rollback_to == current["id"]:
            sd.finish("ROLLBACK_SUCCESSFUL", sd.status_reason)
    # The old deployments are gone once their tasks stopped.
    service.deployments[:] = [d for d in service.deployments if d is current]
    say_once(service, f"(service {service.name}) has reached a steady state.")


# ---------------------------------------------------------------------------------------------
# Service deployments and revisions (ListServiceDeployments, DescribeServiceDeployments,
# DescribeServiceRevisions, StopServiceDeployment, ContinueServiceDeployment), and the blue/green,
# canary and linear strategies
#
# Sources:
# - "View service history using Amazon ECS service deployments" (service-deployment.html): a
#   service deployment is created by CreateService, by UpdateService with forceNewDeployment and
#   by an update of a property that needs a deployment; it starts PENDING, is IN_PROGRESS (or
#   STOP_REQUESTED, ROLLBACK_REQUESTED, ROLLBACK_IN_PROGRESS), and ends SUCCESSFUL, STOPPED,
#   ROLLBACK_SUCCESSFUL or ROLLBACK_FAILED; it carries the source and target service revisions,
#   the circuit breaker's failed task count, the alarms in ALARM and the rollback's details.
# - "Stopping Amazon ECS service deployments" (stop-service-deployment.html): a PENDING or
#   IN_PROGRESS deployment moves to ROLLBACK_REQUESTED, then the rollback starts; one already
#   rolling back continues. The API's ARNs: service-deployment/<cluster>/<service>/<21-char id>,
#   service-revision/<cluster>/<service>/<number> (the ListServiceDeployments example there).
# - "Amazon ECS blue/green service deployments workflow" (blue-green-deployment-how-it-works.html)
#   and the API reference's ServiceDeployment.lifecycleStage: PRE_SCALE_UP, SCALE_UP (the green
#   revision scales up to 100% and serves no traffic), POST_SCALE_UP, TEST_TRAFFIC_SHIFT (test
#   traffic 0 -> 100% green), POST_TEST_TRAFFIC_SHIFT, PRODUCTION_TRAFFIC_SHIFT,
#   POST_PRODUCTION_TRAFFIC_SHIFT, BAKE_TIME (both revisions run after production traffic moved,
#   bakeTimeInMinutes), CLEAN_UP (the blue revision is scaled down).
# - Canary (canary-deployment.html, API_CanaryConfiguration): production traffic moves in two
#   phases, canaryPercent (default 5.0) for canaryBakeTimeInMinutes (default 10), then the rest.
#   Linear (deployment-type-linear.html, API_LinearConfiguration): stepPercent (default 10.0) at a
#   time, stepBakeTimeInMinutes (default 6) after each step but the last.
# - Lifecycle hooks (API_DeploymentLifecycleHook, pause-lifecycle-hooks.html,
#   continue-service-deployment.html): a PAUSE hook gets a hookId (ecs-pause-...), is
#   AWAITING_ACTION in lifecycleHookDetails with expiresAt and timeoutAction (timeoutInMinutes
#   default 1440, action default ROLLBACK) until ContinueServiceDeployment (CONTINUE | ROLLBACK)
#   or the timeout; PAUSE hooks cannot be at TEST_TRAFFIC_SHIFT or PRODUCTION_TRAFFIC_SHIFT.
#   PRE_PRODUCTION_TRAFFIC_SHIFT hooks run before each production traffic step. AWS_LAMBDA hooks
#   are not invoked here (no Lambda runtime): they succeed at once.
# - Traffic: ECS rewrites the production (and test) listener rule's forward action to a weighted
#   ForwardConfig over both target groups (the scalar TargetGroupArn disappears) and, at the end
#   of every deployment, the service's primary and alternate target groups trade places; the
#   first deployment too goes to the alternate group (observed on AWS: go-to-k/cdk-real-drift#1730,
#   "green=100/blue=0 after the initial deployment"; YumaInaura/YumaInaura#3421, the target group
#   changes A->B, B->A at each deployment). A rule forwarding to the primary group alone is
#   accepted (aws-cdk's own example, ListenerAction.forward([blueTargetGroup]), aws/aws-cdk#36649).
# - Alarms (deployment-alarm-failure.html): a deployment fails when a configured alarm goes into
#   ALARM; with rollback it goes back to the last completed revision.
# ---------------------------------------------------------------------------------------------

SHIFTED_STRATEGIES = ("BLUE_GREEN", "CANARY", "LINEAR")
# The lifecycle stages DescribeServiceDeployments reports (PRE_PRODUCTION_TRAFFIC_SHIFT is a hook
# stage only: ServiceDeploymentLifecycleStage has no such value).
REPORTED_STAGES = (
    "RECONCILE_SERVICE", "PRE_SCALE_UP", "SCALE_UP", "POST_SCALE_UP", "TEST_TRAFFIC_SHIFT",
    "POST_TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT", "BAKE_TIME", "CLEAN_UP",
)
PAUSE_FORBIDDEN_STAGES = ("TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT")
ACTIVE_STATUSES = ("PENDING", "IN_PROGRESS", "STOP_REQUESTED", "ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS")
# How long one change of the listener rules' weights takes to reach the load balancer's nodes (a
# modelling step: ELB documents no figure; ModifyRule takes effect within seconds).
TRAFFIC_SHIFT_SECONDS = 10
# API defaults (API_CanaryConfiguration, API_LinearConfiguration, API_DeploymentLifecycleHook's
# timeoutConfiguration).
CANARY_PERCENT, CANARY_BAKE_MINUTES = 5.0, 10
LINEAR_STEP_PERCENT, LINEAR_BAKE_MINUTES = 10.0, 6
HOOK_TIMEOUT_MINUTES, HOOK_TIMEOUT_ACTION = 1440, "ROLLBACK"

# The reasons a failed deployment gives (rollback.reason, statusReason). The circuit breaker's is
# DescribeServices' rolloutStateReason; AWS documents no wording for the others.
ALARM_REASON = "ECS deployment alarms: the following alarms went into ALARM state: {names}."
STOP_REASON = "Service deployment rolled back because of a StopServiceDeployment request."
HOOK_ROLLBACK_REASON = "Service deployment rolled back by ContinueServiceDeployment at lifecycle hook {hook}."
HOOK_TIMEOUT_REASON = "Service deployment rolled back because lifecycle hook {hook} timed out."
SUPERSEDED_REASON = "Service deployment stopped: a newer service deployment replaced it."


class ServiceDeploymentNotFoundException(ECSException):
    def __init__(self):
        super().__init__("ServiceDeploymentNotFoundException", "The service deployment does not exist.")


class ConflictException(ECSException):
    def __init__(self, message):
        super().__init__("ConflictException", message)


def records(backend):
    """The backend's service deployments and revisions (by ARN, oldest first)."""
    if not hasattr(backend, "_service_deployments"):
        backend._service_deployments = {}
        backend._service_revisions = {}
    return backend._service_deployments, backend._service_revisions


def short_id(length):
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
    return "".join(alphabet[mock_random.randint(0, len(alphabet) - 1)] for _ in range(length))


def strategy_of(config):
    return (config or {}).get("strategy") or "ROLLING"


def advanced_pairs(service):
    """(load balancer entry, primary group, alternate group, production rule, test rule) of each load
    balancer with an advancedConfiguration."""
    for lb in service.load_balancers or []:
        advanced = lb.get("advancedConfiguration")
        if advanced:
            yield lb, lb.get("targetGroupArn"), advanced.get("alternateTargetGroupArn"), advanced.get(
                "productionListenerRule"
            ), advanced.get("testListenerRule")


def container_port(service, lb, group_arn):
    group = elbv2_backends[service._account_id][service.region_name].target_groups.get(group_arn)
    return int(lb.get("containerPort") or (group.port if group else None) or 80)


def primary_groups(service):
    return [(lb.get("targetGroupArn"), container_port(service, lb, lb.get("targetGroupArn")))
            for lb in service.load_balancers or [] if lb.get("targetGroupArn")]


def alternate_groups(service):
    """A shifted deployment's new tasks register in the alternate group of each load balancer that
    has one (the others, in its primary group)."""
    chosen = []
    for lb in service.load_balancers or []:
        advanced = lb.get("advancedConfiguration") or {}
        arn = advanced.get("alternateTargetGroupArn") or lb.get("targetGroupArn")
        if arn:
            chosen.append((arn, container_port(service, lb, arn)))
    return chosen


def remember_revision(service, deployment_id, revision_arn):
    service._revision_of = {**getattr(service, "_revision_of", {}), deployment_id: revision_arn}


def new_revision(service, task_definition):
    """A service revision: the service's configuration a deployment deploys (ServiceRevision)."""
    backend = service._backend
    _, revisions = records(backend)
    arn = (
        f"arn:aws:ecs:{service.region_name}:{service._account_id}:service-revision/"
        f"{service.cluster_name}/{service.name}/{mock_random.randint(10**18, 10**19 - 1)}"
    )
    definition = backend.describe_task_definition(task_definition)
    revisions[arn] = {
        "serviceRevisionArn": arn,
        "serviceArn": service.arn,
        "clusterArn": service.cluster_arn,
        "taskDefinition": task_definition,
        "capacityProviderStrategy": getattr(service, "capacity_provider_strategy", None) or None,
        "launchType": service.launch_type or None,
        "platformVersion": service.platform_version or None,
        "platformFamily": "Linux" if service.launch_type != "EC2" else None,
        "loadBalancers": copy.deepcopy(service.load_balancers) or None,
        "serviceRegistries": getattr(service, "service_registries", None) or None,
        "networkConfiguration": service.network_configuration or None,
        "containerImages": [
            {"containerName": c.get("name"), "image": c.get("image")} for c in definition.container_definitions
        ],
        "guardDutyEnabled": False,
        "createdAt": clock.utcnow(),
    }
    return arn


class ServiceDeployment:
    """One service deployment (DescribeServiceDeployments' ServiceDeployment)."""

    def __init__(self, service, deployment, sources, shifted):
        backend = service._backend
        deployments, _ = records(backend)
        now = clock.utcnow()
        self.service = service
        self.arn = (
            f"arn:aws:ecs:{service.region_name}:{service._account_id}:service-deployment/"
            f"{service.cluster_name}/{service.name}/{short_id(21)}"
        )
        self.config = copy.deepcopy(configuration(service))
        self.shifted = shifted
        self.deployment_id = deployment["id"]
        self.revision = new_revision(service, deployment["taskDefinition"])
        remember_revision(service, self.deployment_id, self.revision)
        revision_of = getattr(service, "_revision_of", {})
        self.source_ids = [d["id"] for d in sources if d["id"] in revision_of]
        self.sources = list(dict.fromkeys(revision_of[i] for i in self.source_ids))
        self.created_at = self.started_at = self.updated_at = now
        self.finished_at = self.stopped_at = None
        # "The service deployment starts in the PENDING state" (service-deployment.html); it is
        # IN_PROGRESS once the scheduler takes it up (the next moment).
        self.status, self.status_reason = "PENDING", None
        self.stage = None
        self.hooks = []
        self.waiting = None
        self.rollback = None
        self.rollback_to = None
        self.failures = 0
        breaker = self.config.get("deploymentCircuitBreaker") or {}
        alarms = self.config.get("alarms") or {}
        self.breaker_status = "MONITORING" if breaker.get("enable") else "DISABLED"
        self.alarm_status = "MONITORING" if alarms.get("enable") else "DISABLED"
        self.triggered = []
        self.events = []
        self.retiring = set()
        self.weights = {"production": 0.0, "test": 0.0}
        self.pairs = list(advanced_pairs(service)) if shifted else []
        self.green_started = False
        deployments[self.arn] = self

    # -- state

    def active(self):
        return self.status in ACTIVE_STATUSES

    def source_revision(self):
        return self.sources[0] if self.sources else None

    def rollback_revision(self):
        """What a rollback goes back to: the blue revision (blue/green, canary, linear), else the
        revision of the last deployment that completed ("rolls back to the last deployment that
        completed successfully", deployment circuit breaker docs)."""
        if self.shifted:
            return self.source_revision()
        completed = getattr(self.service, "_completed_deployment", None)
        return getattr(self.service, "_revision_of", {}).get(completed)

    def later(self, seconds, action):
        self.events.append(clock.after(seconds, action))

    def cancel(self):
        for event in self.events:
            event.cancel()
        self.events = []

    def touch(self):
        self.updated_at = clock.utcnow()

    def set_stage(self, stage):
        if stage in REPORTED_STAGES and self.stage != stage:
            self.stage = stage
            self.touch()
            clock.record("service_deployment", self.arn, stage)

    def set_status(self, status, reason=None):
        self.status = status
        if reason is not None:
            self.status_reason = reason
        self.touch()
        clock.record("service_deployment", self.arn, status)

    def finish(self, status, reason=None):
        self.cancel()
        now = clock.utcnow()
        self.set_status(status, reason)
        self.finished_at = now
        if status == "STOPPED":
            self.stopped_at = now
        for attr in ("breaker_status", "alarm_status"):
            if getattr(self, attr) == "MONITORING":
                setattr(self, attr, "MONITORING_COMPLETE")
        if self.waiting is not None:
            self.waiting[0]["status"] = "FAILED"
            self.waiting = None

    # -- DescribeServiceDeployments

    def summary(self, revision, deployment_ids, requested, weight_side):
        tasks = [t for t in tasks_of(self.service) if t.started_by in deployment_ids]
        summary = {
            "arn": revision,
            "requestedTaskCount": requested,
            "runningTaskCount": sum(1 for t in tasks if live(t) and t.last_status == "RUNNING"),
            "pendingTaskCount": sum(1 for t in tasks if live(t) and t.last_status in ("PROVISIONING", "PENDING")),
        }
        if self.shifted:
            for kind, field in (("test", "requestedTestTrafficWeight"), ("production", "requestedProductionTrafficWeight")):
                green = self.weights[kind]
                summary[field] = green if weight_side == "target" else 100.0 - green
        return summary

    def describe(self):
        service = self.service
        revision_of = getattr(service, "_revision_of", {})
        in_flight = self.active()
        target_ids = [self.deployment_id]
        target_requested = service.desired_count if in_flight or self.status == "SUCCESSFUL" else 0
        sources = []
        for revision in self.sources:
            ids = [i for i, r in revision_of.items() if r == revision]
            keep = in_flight and not any(i in self.retiring for i in ids)
            requested = service.desired_count if keep or self.status == "ROLLBACK_SUCCESSFUL" else 0
            sources.append(self.summary(revision, ids, requested, "source"))
        described = {
            "serviceDeploymentArn": self.arn,
            "serviceArn": service.arn,
            "clusterArn": service.cluster_arn,
            "createdAt": self.created_at,
            "startedAt": self.started_at,
            "updatedAt": self.updated_at,
            "sourceServiceRevisions": sources,
            "targetServiceRevision": self.summary(self.revision, target_ids, target_requested, "target"),
            "status": self.status,
            "deploymentConfiguration": self.config,
            "deploymentCircuitBreaker": {
                "status": self.breaker_status,
                "failureCount": self.failures,
                "threshold": breaker_threshold(service),
            },
            "alarms": {
                "status": self.alarm_status,
                "alarmNames": list((self.config.get("alarms") or {}).get("alarmNames") or []),
                "triggeredAlarmNames": list(self.triggered),
            },
        }
        if self.status_reason:
            described["statusReason"] = self.status_reason
        if self.stage:
            described["lifecycleStage"] = self.stage
        if self.hooks:
            described["lifecycleHookDetails"] = [dict(h) for h in self.hooks]
        if self.finished_at:
            described["finishedAt"] = self.finished_at
        if self.stopped_at:
            described["stoppedAt"] = self.stopped_at
        if self.rollback:
            described["rollback"] = dict(self.rollback)
        return described

    def brief(self):
        described = {
            "serviceDeploymentArn": self.arn,
            "serviceArn": self.service.arn,
            "clusterArn": self.service.cluster_arn,
            "startedAt": self.started_at,
            "createdAt": self.created_at,
            "targetServiceRevisionArn": self.revision,
            "status": self.status,
        }
        if self.finished_at:
            described["finishedAt"] = self.finished_at
        if self.status_reason:
            described["statusReason"] = self.status_reason
        return described


def service_deployments(service):
    deployments, _ = records(service._backend)
    return [sd for sd in deployments.values() if sd.service is service]


def current_service_deployment(service):
    mine = service_deployments(service)
    return mine[-1] if mine else None


def service_deployment_of(service, deployment_id):
    for sd in reversed(service_deployments(service)):
        if sd.deployment_id == deployment_id or sd.rollback_to == deployment_id:
            return sd
    return None


def begin_service_deployment(service, deployment, sources):
    """Creates the deployment's service deployment and starts its strategy."""
    for older in service_deployments(service):
        if older.active():
            supersede(service, older)
            # A superseded green revision is no source: its tasks go, blue stays.
            sources = [d for d in sources if d["id"] not in older.retiring]
    config = configuration(service)
    shifted = strategy_of(config) in SHIFTED_STRATEGIES
    groups = alternate_groups(service) if shifted else primary_groups(service)
    service._groups = {**getattr(service, "_groups", {}), deployment["id"]: groups}
    sd = ServiceDeployment(service, deployment, sources, shifted)

    def start():
        if sd.status != "PENDING":
            return
        sd.started_at = clock.utcnow()
        sd.set_status("IN_PROGRESS")
        if shifted:
            # The blue revision keeps its tasks (and groups) until CLEAN_UP; new tasks wait for SCALE_UP.
            run_stage(service, sd, "PRE_SCALE_UP", lambda: scale_up(service, sd))
        else:
            check_alarms(service, sd)

    sd.later(0, start)
    return sd


def supersede(service, sd):
    """A newer deployment replaces one in progress: it stops where it is, traffic back on blue."""
    if sd.shifted:
        set_traffic(service, sd, "production", 0.0)
        set_traffic(service, sd, "test", 0.0)
        sd.retiring.add(sd.deployment_id)
    sd.finish("STOPPED", SUPERSEDED_REASON)


# -- the blue/green, canary and linear flow


def run_stage(service, sd, stage, then):
    """Enters the lifecycle stage, runs its lifecycle hooks in order, then `then()`."""
    if sd.status != "IN_PROGRESS":
        return
    sd.set_stage(stage)
    if check_alarms(service, sd):
        return
    hooks = [h for h in sd.config.get("lifecycleHooks") or [] if stage in (h.get("lifecycleStages") or [])]
    run_hooks(service, sd, hooks, then)


def run_hooks(service, sd, hooks, then):
    if sd.status != "IN_PROGRESS":
        return
    if not hooks:
        then()
        return
    hook, rest = hooks[0], hooks[1:]

    def go_on():
        run_hooks(service, sd, rest, then)

    if hook.get("targetType") == "PAUSE":
        timeout = hook.get("timeoutConfiguration") or {}
        minutes = int(timeout.get("timeoutInMinutes") or HOOK_TIMEOUT_MINUTES)
        action = timeout.get("action") or HOOK_TIMEOUT_ACTION
        detail = {
            "hookId": "ecs-pause-" + short_id(43),
            "targetType": "PAUSE",
            "status": "AWAITING_ACTION",
            # A wall time, like every timestamp the emulator reports: (expiresAt - now) / SCALE
            # is the modelled timeout (clock.py).
            "expiresAt": clock.utcnow() + datetime.timedelta(seconds=clock.scaled(minutes * 60)),
            "timeoutAction": action,
        }
        sd.hooks.append(detail)
        sd.waiting = (detail, go_on)
        sd.touch()
        sd.later(minutes * 60, lambda: hook_timed_out(service, sd, detail))
        return
    # AWS_LAMBDA: ECS invokes the function and goes on when it answers SUCCEEDED; the emulator runs
    # no Lambda functions, so the hook succeeds at once.
    sd.hooks.append(
        {"hookId": "ecs-lambda-" + short_id(43), "targetType": "AWS_LAMBDA", "targetArn": hook.get("hookTargetArn"),
         "status": "SUCCEEDED"}
    )
    go_on()


def answer_hook(service, sd, detail, action, status):
    if sd.waiting is None or sd.waiting[0] is not detail:
        return
    _, go_on = sd.waiting
    sd.waiting = None
    detail["status"] = status
    sd.touch()
    if action == "ROLLBACK":
        reason = (HOOK_TIMEOUT_REASON if status == "TIMED_OUT" else HOOK_ROLLBACK_REASON).format(hook=detail["hookId"])
        fail(service, sd, reason, True)
    else:
        go_on()


def hook_timed_out(service, sd, detail):
    answer_hook(service, sd, detail, detail["timeoutAction"], "TIMED_OUT")


def scale_up(service, sd):
    if sd.status != "IN_PROGRESS":
        return
    sd.set_stage("SCALE_UP")
    sd.green_started = True
    reconcile(service)


def scaled_up(service, sd):
    """SCALE_UP ends when the green revision's tasks all run and are healthy in their groups."""
    if sd.status != "IN_PROGRESS" or sd.stage != "SCALE_UP":
        return
    green = [t for t in tasks_of(service) if live(t) and t.started_by == sd.deployment_id]
    if len(green) < service.desired_count or not all(serving(t) for t in green):
        return
    run_stage(service, sd, "POST_SCALE_UP", lambda: shift_test(service, sd))


def shift_test(service, sd):
    def shifted():
        run_stage(service, sd, "POST_TEST_TRAFFIC_SHIFT", lambda: shift_production(service, sd, 0))

    def shift():
        set_traffic(service, sd, "test", 100.0)
        sd.later(TRAFFIC_SHIFT_SECONDS if any(p[4] for p in sd.pairs) else 0, shifted)

    run_stage(service, sd, "TEST_TRAFFIC_SHIFT", shift)


def production_steps(config):
    """The production traffic steps: (percent on green, bake seconds after it)."""
    strategy = strategy_of(config)
    if strategy == "CANARY":
        canary = config.get("canaryConfiguration") or {}
        percent = float(canary.get("canaryPercent") or CANARY_PERCENT)
        bake = canary.get("canaryBakeTimeInMinutes")
        bake = CANARY_BAKE_MINUTES if bake is None else int(bake)
        return [(percent, bake * 60), (100.0, 0)] if percent < 100 else [(100.0, 0)]
    if strategy == "LINEAR":
        linear = config.get("linearConfiguration") or {}
        step = float(linear.get("stepPercent") or LINEAR_STEP_PERCENT)
        bake = linear.get("stepBakeTimeInMinutes")
        bake = LINEAR_BAKE_MINUTES if bake is None else int(bake)
        steps, percent = [], 0.0
        while percent < 100.0:
            percent = min(100.0, round(percent + step, 1))
            # "This bake time is not applied after reaching 100 percent traffic."
            steps.append((percent, bake * 60 if percent < 100.0 else 0))
        return steps
    return [(100.0, 0)]


def shift_production(service, sd, index):
    steps = production_steps(sd.config)
    percent, bake = steps[index]

    def shifted():
        if check_alarms(service, sd):
            return
        if index + 1 < len(steps):
            sd.later(bake, lambda: shift_production(service, sd, index + 1))
        else:
            run_stage(service, sd, "POST_PRODUCTION_TRAFFIC_SHIFT", lambda: bake_time(service, sd))

    def shift():
        set_traffic(service, sd, "production", percent)
        sd.later(TRAFFIC_SHIFT_SECONDS if sd.pairs else 0, shifted)

    # Every step passes the PRE_PRODUCTION_TRAFFIC_SHIFT and PRODUCTION_TRAFFIC_SHIFT hooks.
    run_stage(service, sd, "PRE_PRODUCTION_TRAFFIC_SHIFT",
              lambda: run_stage(service, sd, "PRODUCTION_TRAFFIC_SHIFT", shift))


def bake_time(service, sd):
    if sd.status != "IN_PROGRESS":
        return
    sd.set_stage("BAKE_TIME")
    if check_alarms(service, sd):
        return
    minutes = int(sd.config.get("bakeTimeInMinutes") or 0)
    sd.later(minutes * 60, lambda: clean_up(service, sd))


def clean_up(service, sd):
    """The green revision serves all traffic: the groups trade places, and the blue tasks go
    (deregistered, drained for the deregistration delay, stopped)."""
    if sd.status != "IN_PROGRESS" or check_alarms(service, sd):
        return
    sd.set_stage("CLEAN_UP")
    if sd.alarm_status == "MONITORING":
        sd.alarm_status = "MONITORING_COMPLETE"
    for lb, blue, green, _, _ in sd.pairs:
        advanced = lb.get("advancedConfiguration") or {}
        if advanced.get("alternateTargetGroupArn") == green and lb.get("targetGroupArn") == blue:
            lb["targetGroupArn"], advanced["alternateTargetGroupArn"] = green, blue
    sd.retiring.update(sd.source_ids)
    service._steady = False
    reconcile(service)


def reconcile_both(service, sd):
    """The scheduler while a blue/green, canary or linear deployment runs: each revision keeps its
    desired count (the green one from SCALE_UP on, 100% beside the blue: no maximumPercent), and
    a retiring revision's tasks stop."""
    tasks = tasks_of(service)
    kept = set(sd.source_ids) | {sd.deployment_id, sd.rollback_to}
    for d in list(service.deployments):
        theirs = [t for t in tasks if live(t) and t.started_by == d["id"]]
        if d["id"] not in kept or d["id"] in sd.retiring:
            for task in theirs:
                stop(service, task, f"Scaling activity initiated by (deployment {sd.deployment_id})",
                     "ServiceSchedulerInitiated")
            continue
        if d["id"] == sd.deployment_id and (d.get("rolloutState") == "FAILED" or not sd.green_started):
            continue
        wanted = service.desired_count - len(theirs)
        if wanted > 0:
            launch(service, d, wanted)
        elif wanted < 0:  # scaled in meanwhile: pending tasks first, then the newest
            for task in sorted(theirs, key=lambda t: (t.last_status == "RUNNING", t.created_at))[:-wanted]:
                stop(service, task, f"Scaling activity initiated by (deployment {d['id']})", "ServiceSchedulerInitiated")
    update_counts(service)
    scaled_up(service, sd)
    settle_if_steady(service)


# -- traffic


def find_rule(service, arn):
    return rule_by_arn(service._account_id, service.region_name, arn)


def rule_by_arn(account_id, region, arn):
    """The listener and rule an ARN names (a listener ARN names its default rule: NLBs)."""
    backend = elbv2_backends[account_id][region]
    for balancer in backend.load_balancers.values():
        for listener in balancer.listeners.values():
            if listener.arn == arn:
                return listener, listener._default_rule[0]
            for rule in listener.rules.values():
                if rule.arn == arn:
                    return listener, rule
    return None, None


def forward_groups(rule):
    found = []
    for action in rule.actions:
        if action.type != "forward":
            continue
        data = action.data
        if data.get("TargetGroupArn"):
            found.append(data["TargetGroupArn"])
        for group in (data.get("ForwardConfig") or {}).get("TargetGroups") or []:
            found.append(group["TargetGroupArn"])
    return found


def set_weights(service, rule_arn, blue, green, percent):
    """Rewrites the rule's forward action to a weighted ForwardConfig: `percent` on green."""
    listener, rule = find_rule(service, rule_arn)
    if rule is None:
        return
    backend = elbv2_backends[service._account_id][service.region_name]
    weight = int(round(percent))
    actions = []
    for action in rule.actions:
        if action.type != "forward":
            actions.append(action)
            continue
        data = action.data
        config = data.get("ForwardConfig") or {}
        weights = {g["TargetGroupArn"]: g.get("Weight", 1) for g in config.get("TargetGroups") or []}
        if data.get("TargetGroupArn"):
            weights.setdefault(data["TargetGroupArn"], 1)
        weights[blue], weights[green] = 100 - weight, weight
        rewritten = {
            "Type": "forward",
            "ForwardConfig": {
                "TargetGroups": [{"TargetGroupArn": arn, "Weight": w} for arn, w in weights.items()],
                "TargetGroupStickinessConfig": config.get("TargetGroupStickinessConfig") or {"Enabled": False},
            },
        }
        if data.get("Order") is not None:
            rewritten["Order"] = data["Order"]
        actions.append(elbv2_models.FakeAction(rewritten))
    rule.actions = actions
    if rule.is_default:
        listener.default_actions = actions
    for arn in (blue, green):
        group = backend.target_groups.get(arn)
        if group is not None and listener.load_balancer_arn not in group.load_balancer_arns:
            group.load_balancer_arns.append(listener.load_balancer_arn)


def set_traffic(service, sd, kind, percent):
    sd.weights[kind] = percent
    sd.touch()
    for _, blue, green, production, test in sd.pairs:
        rule = production if kind == "production" else test
        if rule and blue and green:
            set_weights(service, rule, blue, green, percent)
    clock.record("service_deployment", sd.arn, f"{kind} traffic {percent:g}%")


# -- failure and rollback


def alarm_states(service, names):
    from moto.cloudwatch.models import cloudwatch_backends

    alarms = cloudwatch_backends[service._account_id][service.region_name].alarms
    return {name: alarms[name].state_value for name in names if name in alarms}


def check_alarms(service, sd):
    """Fails the deployment when one of its alarms is in ALARM (True when it did)."""
    alarms = sd.config.get("alarms") or {}
    if not alarms.get("enable") or sd.status != "IN_PROGRESS" or sd.alarm_status != "MONITORING":
        return False
    firing = [name for name, state in alarm_states(service, alarms.get("alarmNames") or []).items() if state == "ALARM"]
    if not firing:
        return False
    sd.alarm_status = "TRIGGERED"
    sd.triggered = firing
    say_once(service, f"(service {service.name}) (deployment {sd.deployment_id}) deployment failed: alarm detected.")
    deployment = next((d for d in service.deployments if d["id"] == sd.deployment_id), None)
    reason = ALARM_REASON.format(names=", ".join(firing))
    if deployment is not None:
        deployment.update(rolloutState="FAILED", rolloutStateReason=reason, updatedAt=clock.utcnow())
    fail(service, sd, reason, bool(alarms.get("rollback")))
    return True


def alarm_changed(account_id, region, name):
    """SetAlarmState/alarm evaluation put `name` in ALARM: the deployments watching it fail."""
    from moto.ecs.models import ecs_backends

    backend = ecs_backends[account_id][region]
    deployments, _ = records(backend)
    for sd in list(deployments.values()):
        if sd.status == "IN_PROGRESS" and name in ((sd.config.get("alarms") or {}).get("alarmNames") or []):
            check_alarms(sd.service, sd)


def fail(service, sd, reason, rollback):
    """The deployment failed (circuit breaker, alarm, hook) or was told to roll back."""
    if sd.status not in ("PENDING", "IN_PROGRESS"):
        return
    sd.cancel()
    if sd.waiting is not None:
        sd.waiting[0]["status"] = "FAILED"
        sd.waiting = None
    if not rollback:
        # Without rollback the deployment stops where it is ("stoppedAt": the rollback option is
        # not in use and the service fails).
        sd.finish("STOPPED", reason)
        return
    sd.set_status("ROLLBACK_REQUESTED", reason)
    sd.rollback = {"reason": reason, "startedAt": clock.utcnow()}
    if sd.rollback_revision():
        sd.rollback["serviceRevisionArn"] = sd.rollback_revision()
    sd.later(0, lambda: roll_back(service, sd))


def roll_back(service, sd):
    """ROLLBACK_IN_PROGRESS: traffic back on blue, green's tasks go; or, rolling, a deployment of
    the last completed revision."""
    if sd.status != "ROLLBACK_REQUESTED":
        return
    previous = sd.source_revision() if sd.shifted else getattr(service, "_completed_task_definition", None)
    if previous is None:
        # "The rollback method requires a previous deployment in COMPLETED state."
        sd.finish("ROLLBACK_FAILED", sd.status_reason)
        return
    sd.set_status("ROLLBACK_IN_PROGRESS")
    if not sd.shifted:
        # The task definition and network configuration of the last completed deployment.
        completed = getattr(service, "_completed_deployment", "")
        service.network_configuration = getattr(service, "_completed_network", None) or service.network_configuration
        reason = None
        if sd.breaker_status == "TRIGGERED":
            reason = f"ECS deployment circuit breaker: rolling back to deploymentId {completed}."
        new_deployment(service, previous, reason, rollback_of=sd)
        reconcile(service)
        return
    set_traffic(service, sd, "production", 0.0)
    set_traffic(service, sd, "test", 0.0)

    def traffic_back():
        blue = next((d for d in service.deployments if d["id"] in sd.source_ids), None)
        sd.retiring.add(sd.deployment_id)
        if blue is not None:
            now = clock.utcnow()
            for d in service.deployments:
                if d["id"] == sd.deployment_id:
                    d.update(status="ACTIVE", updatedAt=now)
                    if d.get("rolloutState") == "IN_PROGRESS":
                        d.update(rolloutState="FAILED", rolloutStateReason=sd.status_reason)
            blue.update(status="PRIMARY", updatedAt=now)
            service.deployments.sort(key=lambda d: d.get("status") != "PRIMARY")
            service.task_definition = blue["taskDefinition"]
            sd.rollback_to = blue["id"]
        service._steady = False
        reconcile(service)

    sd.later(TRAFFIC_SHIFT_SECONDS if sd.pairs else 0, traffic_back)


def stop_service_deployment(service, sd, stop_type):
    if stop_type == "ABORT":
        raise InvalidParameterException("The stopType ABORT is not supported. The valid value is ROLLBACK.")
    if sd.status in ("ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS", "STOP_REQUESTED"):
        return  # "The service deployment continues the rollback operation."
    if sd.status not in ("PENDING", "IN_PROGRESS"):
        raise ConflictException(f"The service deployment {sd.arn} is {sd.status} and cannot be stopped.")
    if sd.shifted and sd.stage == "CLEAN_UP":
        # The green revision took over (the target groups traded places); nothing is left to roll
        # back to but the draining blue tasks.
        raise ConflictException(f"The service deployment {sd.arn} is cleaning up and cannot be rolled back.")
    fail(service, sd, STOP_REASON, True)


# -- validation (CreateService, UpdateService)


def validate_deployment_configuration(account_id, region, config, load_balancers):
    """What ECS checks of deploymentConfiguration and loadBalancers[].advancedConfiguration before
    it creates or updates anything (InvalidParameterException, as ECS answers)."""
    config = config or {}
    strategy = strategy_of(config)
    if strategy not in ("ROLLING",) + SHIFTED_STRATEGIES:
        raise InvalidParameterException(f"Invalid deployment strategy: {strategy}.")
    canary = config.get("canaryConfiguration")
    linear = config.get("linearConfiguration")
    if canary and strategy != "CANARY":
        raise InvalidParameterException("canaryConfiguration can only be specified with the CANARY deployment strategy.")
    if linear and strategy != "LINEAR":
        raise InvalidParameterException("linearConfiguration can only be specified with the LINEAR deployment strategy.")
    # Ranges: API_CanaryConfiguration (0.1-100.0, 0-1440 minutes), API_LinearConfiguration
    # (3.0-100.0, 0-1440), DeploymentConfiguration.bakeTimeInMinutes (0-1440).
    checks = [
        ("bakeTimeInMinutes", config.get("bakeTimeInMinutes"), 0, 1440),
        ("canaryConfiguration.canaryPercent", (canary or {}).get("canaryPercent"), 0.1, 100.0),
        ("canaryConfiguration.canaryBakeTimeInMinutes", (canary or {}).get("canaryBakeTimeInMinutes"), 0, 1440),
        ("linearConfiguration.stepPercent", (linear or {}).get("stepPercent"), 3.0, 100.0),
        ("linearConfiguration.stepBakeTimeInMinutes", (linear or {}).get("stepBakeTimeInMinutes"), 0, 1440),
    ]
    for name, value, low, high in checks:
        if value is not None and not low <= float(value) <= high:
            raise InvalidParameterException(f"{name} must be between {low:g} and {high:g}.")
    for hook in config.get("lifecycleHooks") or []:
        kind = hook.get("targetType") or "AWS_LAMBDA"
        stages = hook.get("lifecycleStages") or []
        if not stages:
            raise InvalidParameterException("lifecycleStages must be specified for a deployment lifecycle hook.")
        if kind == "PAUSE":
            bad = [s for s in stages if s in PAUSE_FORBIDDEN_STAGES]
            if bad:
                raise InvalidParameterException(
                    f"PAUSE hooks cannot be configured at the {bad[0]} lifecycle stage."
                )
        elif not hook.get("hookTargetArn") or not hook.get("roleArn"):
            raise InvalidParameterException("hookTargetArn and roleArn must be specified for an AWS_LAMBDA lifecycle hook.")
    if strategy not in SHIFTED_STRATEGIES:
        return
    backend = elbv2_backends[account_id][region]
    for lb in load_balancers or []:
        advanced = lb.get("advancedConfiguration")
        if not advanced:
            # Blue/green, canary and linear deployments with a load balancer shift traffic between
            # two target groups (alb-resources-for-blue-green.html).
            raise InvalidParameterException(
                f"advancedConfiguration must be specified for the load balancer with targetGroupArn "
                f"{lb.get('targetGroupArn')} when the deployment strategy is {strategy}."
            )
        for field in ("alternateTargetGroupArn", "productionListenerRule", "roleArn"):
            if not advanced.get(field):
                raise InvalidParameterException(f"advancedConfiguration.{field} must be specified.")
        alternate = advanced["alternateTargetGroupArn"]
        if alternate not in backend.target_groups:
            raise InvalidParameterException(f"Unable to find the target group {alternate}.")
        if alternate == lb.get("targetGroupArn"):
            raise InvalidParameterException("The alternate target group must differ from the target group.")
        for field in ("productionListenerRule", "testListenerRule"):
            arn = advanced.get(field)
            if not arn:
                continue
            _, rule = rule_by_arn(account_id, region, arn)
            if rule is None:
                raise InvalidParameterException(f"Unable to find the listener rule {arn}.")
            groups = forward_groups(rule)
            if lb.get("targetGroupArn") not in groups and alternate not in groups:
                raise InvalidParameterException(
                    f"The listener rule {arn} does not forward to the target group {lb.get('targetGroupArn')} "
                    f"or the alternate target group {alternate}."
                )


# ---------------------------------------------------------------------------------------------
# Patches


def patch_tasks():
    Task = ecs_models.Task

    def get_status(self):
        return getattr(self, "_modelled_status", None) or self.status

    def set_status_attr(self, value):
        self._modelled_status = value

    Task.last_status = property(get_status, set_status_attr)
    # A task's ENI takes an address of its subnet (moto picks one from 10.0.0.0/8 otherwise).
    ecs_models.random_private_ip = lambda *args, **kwargs: None

    Backend = ecs_models.EC2ContainerServiceBackend
    patch_task_sizes(Backend)
    original_run = Backend.run_task

    def run_task(self, cluster_str, task_definition_str, count, overrides, started_by, tags, launch_type,
                 networking_configuration=None, *args, **kwargs):
        default_security_group(self.account_id, self.region_name, networking_configuration)
        tasks = original_run(
            self, cluster_str, task_definition_str, count, overrides, started_by, tags, launch_type,
            networking_configuration, *args, **kwargs
        )
        task_definition = self.describe_task_definition(task_definition_str)
        for task in tasks:
            if task.container_instance_arn:
                continue  # EC2 container instances: moto's model.
            prepare(task, task_definition, overrides)
            begin(task, one_off_running, lambda t: None)
        return tasks

    Backend.run_task = run_task

    original_list = Backend.list_tasks

    def list_tasks(self, cluster_str=None, container_instance=None, family=None, started_by=None,
                   service_name=None, desiredStatus=None):
        found = original_list(self, cluster_str, container_instance, family, started_by, service_name, desiredStatus)
        if service_name:
            # ListTasks(serviceName) lists the tasks the service started (moto ignores the filter).
            name = service_name.rsplit("/", 1)[-1]
            found = [t for t in found if t.group == f"service:{name}"]
        return found

    Backend.list_tasks = list_tasks

    original_stop = Backend.stop_task

    def stop_task(self, cluster_str, task_str, reason):
        cluster = self._get_cluster(cluster_str)
        task = next(
            (t for arn, t in self.tasks.get(cluster.name, {}).items() if arn.endswith(task_str.split("/")[-1])), None
        )
        if task is None or not hasattr(task, "_scheduled"):
            return original_stop(self, cluster_str, task_str, reason)
        service = getattr(task, "_service", None)
        if live(task):
            if service is not None:
                stop(service, task, reason or "Task stopped by user", "UserInitiated")
            else:
                wind_down(task, 0, reason or "Task stopped by user", "UserInitiated", lambda t: None)
        return task

    Backend.stop_task = stop_task


def patch_services():
    Service = ecs_models.Service
    Service.running_count = property(
        lambda self: sum(1 for t in tasks_of(self) if live(t) and t.last_status == "RUNNING"), lambda self, value: None
    )
    Service.pending_count = property(
        lambda self: sum(1 for t in tasks_of(self) if live(t) and t.last_status in ("PROVISIONING", "PENDING")),
        lambda self, value: None,
    )

    Response = ecs_responses.EC2ContainerServiceResponse
    original_create = Response.create_service

    def create_service(self):
        groups = elbv2_backends[self.current_account][self.region].target_groups
        for lb in self._get_param("loadBalancers") or []:
            group = groups.get(lb.get("targetGroupArn"))
            if group is not None and not group.load_balancer_arns:
                # ECS registers tasks only in a target group a load balancer uses (CreateService).
                raise InvalidParameterException(
                    f"The target group with targetGroupArn {group.arn} does not have an associated load balancer."
                )
        definition = self._get_param("taskDefinition")
        if definition and not self._get_param("networkConfiguration"):
            if self.ecs_backend.describe_task_definition(definition).network_mode == "awsvpc":
                # CreateService checks this up front (no service is created).
                raise InvalidParameterException(
                    "Network Configuration must be provided when networkMode 'awsvpc' is specified."
                )
        strategy = self._get_param("capacityProviderStrategy")
        configured = self._get_param("deploymentConfiguration")
        validate_deployment_configuration(
            self.current_account, self.region, configured, self._get_param("loadBalancers")
        )
        grace = self._get_param("healthCheckGracePeriodSeconds")
        result = original_create(self)
        service = self.ecs_backend._get_service(self._get_param("cluster", "default"), self._get_param("serviceName"))
        if strategy:
            service.capacity_provider_strategy = strategy
            if not self._get_param("launchType"):
                service.launch_type = None
        service.deployment_configuration = {**DEFAULT_DEPLOYMENT_CONFIGURATION, **(configured or {})}
        if grace is not None:
            service.health_check_grace_period_seconds = grace
        service._tasks = []
        service.deployments = []
        if service.task_definition:
            new_deployment(service, service.task_definition)
            reconcile(service)
        return result

    Response.create_service = create_service

    Backend = ecs_models.EC2ContainerServiceBackend
    original_backend_create = Backend.create_service

    def backend_create_service(self, *args, network_configuration=None, **kwargs):
        default_security_group(self.account_id, self.region_name, network_configuration)
        return original_backend_create(self, *args, network_configuration=network_configuration, **kwargs)

    Backend.create_service = backend_create_service
    original_update = Backend.update_service

    def update_service(self, properties):
        service = self._get_service(properties.get("cluster", "default"), properties["service"].split("/")[-1])
        before = (service.task_definition, repr(service.network_configuration), repr(service.load_balancers))
        if "deployment_configuration" in properties or "load_balancers" in properties:
            config = properties.get("deployment_configuration")
            if config is None:
                config = getattr(service, "deployment_configuration", None)
            lbs = properties.get("load_balancers")
            validate_deployment_configuration(
                self.account_id, self.region_name, config, service.load_balancers if lbs is None else lbs
            )
        force = properties.pop("force_new_deployment", False)
        service = original_update(self, properties)
        if not hasattr(service, "_tasks"):
            return service
        service.deployment_configuration = {
            **DEFAULT_DEPLOYMENT_CONFIGURATION,
            **(getattr(service, "deployment_configuration", None) or {}),
        }
        wanted = service.task_definition
        if wanted and not wanted.startswith("arn:"):
            wanted = self.describe_task_definition(wanted).arn
            service.task_definition = wanted
        # A new task definition, network configuration or load balancer configuration needs a
        # deployment (service-deployment.html: "updates one or more service properties that
        # require a deployment").
        changed = (wanted, repr(service.network_configuration), repr(service.load_balancers)) != before
        if wanted and (force or changed or primary(service) is None):
            new_deployment(service, wanted)
        service._steady = False
        current = primary(service)
        if current is not None:
            current["desiredCount"] = service.desired_count
        reconcile(service)
        return service

    Backend.update_service = update_service

    original_delete = Backend.delete_service

    def delete_service(self, cluster_name, service_name, force):
        service = original_delete(self, cluster_name, service_name, force)
        # "When you delete a service, Amazon ECS deletes the corresponding service deployments."
        deployments, _ = records(self)
        for sd in service_deployments(service):
            sd.cancel()
            deployments.pop(sd.arn, None)
        if hasattr(service, "_tasks") and any(not stopped(t) for t in service._tasks):
            # DeleteService: DRAINING while its tasks stop, then INACTIVE (DeleteService API reference).
            service.status = "DRAINING"
            reconcile(service)
        return service

    Backend.delete_service = delete_service


def patch_service_deployments():
    """ListServiceDeployments, DescribeServiceDeployments, DescribeServiceRevisions,
    StopServiceDeployment and ContinueServiceDeployment (moto 5.2.5 has none of them), and
    CloudWatch alarm state changes reaching the deployments that watch them."""
    from moto.cloudwatch.models import CloudWatchBackend
    from moto.core.responses import ActionResult

    Response = ecs_responses.EC2ContainerServiceResponse

    def find(backend, arn):
        deployments, _ = records(backend)
        sd = deployments.get(arn)
        if sd is None:
            raise ServiceDeploymentNotFoundException()
        return sd

    def list_service_deployments(self):
        service = self.ecs_backend._get_service(self._get_param("cluster", "default"), self._get_param("service"))
        statuses = self._get_param("status") or []
        created = self._get_param("createdAt") or {}
        found = []
        for sd in reversed(service_deployments(service)):  # newest first
            if statuses and sd.status not in statuses:
                continue
            at = sd.created_at.replace(tzinfo=datetime.timezone.utc).timestamp()
            if created.get("before") is not None and at >= float(created["before"]):
                continue
            if created.get("after") is not None and at <= float(created["after"]):
                continue
            found.append(sd)
        # "If this parameter isn't used, then ListServiceDeployments returns up to 20 results".
        page = int(self._get_param("maxResults") or 20)
        start = int(self._get_param("nextToken") or 0)
        result = {"serviceDeployments": [sd.brief() for sd in found[start:start + page]]}
        if start + page < len(found):
            result["nextToken"] = str(start + page)
        return ActionResult(result)

    def at_most_20(arns):
        # "You can specify a maximum of 20 ARNs." (DescribeServiceDeployments, DescribeServiceRevisions)
        if len(arns) > 20:
            raise InvalidParameterException("You can specify a maximum of 20 ARNs.")
        return arns

    def describe_service_deployments(self):
        deployments, _ = records(self.ecs_backend)
        found, failures = [], []
        for arn in at_most_20(self._get_param("serviceDeploymentArns") or []):
            sd = deployments.get(arn)
            if sd is None:
                failures.append({"arn": arn, "reason": "MISSING"})
            else:
                found.append(sd.describe())
        return ActionResult({"serviceDeployments": found, "failures": failures})

    def describe_service_revisions(self):
        _, revisions = records(self.ecs_backend)
        found, failures = [], []
        for arn in at_most_20(self._get_param("serviceRevisionArns") or []):
            if arn in revisions:
                found.append({k: v for k, v in revisions[arn].items() if v is not None})
            else:
                failures.append({"arn": arn, "reason": "MISSING"})
        return ActionResult({"serviceRevisions": found, "failures": failures})

    def stop_service_deployment_action(self):
        sd = find(self.ecs_backend, self._get_param("serviceDeploymentArn"))
        stop_service_deployment(sd.service, sd, self._get_param("stopType") or "ROLLBACK")
        return ActionResult({"serviceDeploymentArn": sd.arn})

    def continue_service_deployment(self):
        sd = find(self.ecs_backend, self._get_param("serviceDeploymentArn"))
        hook_id = self._get_param("hookId")
        action = self._get_param("action") or "CONTINUE"  # "the default action is CONTINUE"
        detail = next((h for h in sd.hooks if h.get("hookId") == hook_id), None)
        if detail is None:
            raise InvalidParameterException(f"The lifecycle hook {hook_id} was not found in service deployment {sd.arn}.")
        # "The pause hook must be in AWAITING_ACTION status ... The deployment must be in the
        # IN_PROGRESS state." (continue-service-deployment.html)
        if detail.get("status") != "AWAITING_ACTION" or sd.status != "IN_PROGRESS":
            raise InvalidParameterException(
                f"The lifecycle hook {hook_id} is {detail.get('status')} and the service deployment is {sd.status}: "
                "only a hook in AWAITING_ACTION of a deployment IN_PROGRESS can be continued."
            )
        answer_hook(sd.service, sd, detail, action, "SUCCEEDED" if action == "CONTINUE" else "FAILED")
        return ActionResult({"serviceDeploymentArn": sd.arn})

    Response.list_service_deployments = list_service_deployments
    Response.describe_service_deployments = describe_service_deployments
    Response.describe_service_revisions = describe_service_revisions
    Response.stop_service_deployment = stop_service_deployment_action
    Response.continue_service_deployment = continue_service_deployment

    original_set_state = CloudWatchBackend.set_alarm_state

    def set_alarm_state(self, alarm_name, reason, reason_data, state_value):
        original_set_state(self, alarm_name, reason, reason_data, state_value)
        if state_value == "ALARM":
            alarm_changed(self.account_id, self.region_name, alarm_name)

    CloudWatchBackend.set_alarm_state = set_alarm_state


def patch_target_health():
    original = elbv2_models.FakeTargetGroup.health_for

    def health_for(self, target, ec2_backend):
        t = self.targets.get(target["Id"])
        if t is not None and "_health" in t:
            state, reason, description = t["_health"]
            return elbv2_models.FakeHealthStatus(t["Id"], t["Port"], self.health_check_port, state, reason, description)
        return original(self, target, ec2_backend)

    elbv2_models.FakeTargetGroup.health_for = health_for


def install():
    patch_tasks()
    patch_services()
    patch_service_deployments()
    patch_target_health()
