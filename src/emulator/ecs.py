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
  and is registered in the service's target groups: `initial`, then `healthy` after the target
  group's healthy threshold x interval counted from when its load balancer is active
  (network.load_balancer_active) if network.admits_load_balancer, else `unhealthy`
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
  circuit breaker off); so does this.
"""

import math
import uuid

from moto.ecs import models as ecs_models
from moto.ecs import responses as ecs_responses
from moto.ecs.exceptions import InvalidParameterException
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
    backend = elbv2_backends[service._account_id][service.region_name]
    for lb in service.load_balancers or []:
        group = backend.target_groups.get(lb.get("targetGroupArn"))
        if group is not None:
            yield group, int(lb.get("containerPort") or group.port or 80)


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
    for group, port in target_groups(service):
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
    """Health checks start once the load balancer is active; the verdict comes after threshold x
    interval (healthy threshold when the task's security groups admit the load balancer's,
    unhealthy threshold otherwise: the target group's HealthyThresholdCount/UnhealthyThresholdCount
    and HealthCheckIntervalSeconds, AWS defaults 5, 2 and 30 s)."""
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
        checks = int(group.healthy_threshold_count or 5)
        schedule(task, checks * interval, lambda: healthy(service, task, group))
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
        for group, _ in target_groups(service)
        if group.arn in getattr(task, "_targets", {})
    ]
    return max(delays, default=0)


def deregister_targets(service, task):
    ip = private_ip(task)
    for group, _ in target_groups(service):
        if group.arn not in getattr(task, "_targets", {}):
            continue
        set_health(group, ip, "draining", "Target.DeregistrationInProgress", "Target deregistration is in progress")
        say(
            service,
            ("deregistered", group.arn),
            ip,
            lambda ips, arn=group.arn: f"(service {service.name}) deregistered {plural(len(ips), 'target')} in (target-group {arn})",
        )


def forget_targets(service, task):
    ip = private_ip(task)
    for group, _ in target_groups(service):
        if group.arn in getattr(task, "_targets", {}):
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


def new_deployment(service, task_definition, reason=None):
    now = clock.utcnow()
    identifier = deployment_id()
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
    if list(target_groups(service)):
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
    breaker = configuration(service).get("deploymentCircuitBreaker") or {}
    if not breaker.get("enable") or deployment.get("rolloutState") != "IN_PROGRESS":
        return
    # The failure threshold: 0.5 x the desired count, at least 3 and at most 200 (deployment
    # circuit breaker docs, "Failure threshold").
    threshold = min(200, max(3, math.ceil(0.5 * service.desired_count)))
    if deployment["failedTasks"] < threshold:
        return
    deployment["rolloutState"] = "FAILED"
    deployment["rolloutStateReason"] = FAILED_TO_START_REASON
    say_once(
        service, f"(service {service.name}) (deployment {deployment['id']}) deployment failed: tasks failed to start."
    )
    previous = getattr(service, "_completed_task_definition", None)
    if breaker.get("rollback") and previous and deployment.get("status") == "PRIMARY":
        # "rolls back to the last deployment that completed successfully": its task definition
        # and its network configuration.
        service.network_configuration = getattr(service, "_completed_network", None) or service.network_configuration
        rollback = new_deployment(service, previous)
        rollback["rolloutStateReason"] = (
            f"ECS deployment circuit breaker: rolling back to deploymentId {getattr(service, '_completed_deployment', '')}."
        )


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
    current = primary(service)
    if current is None:
        return
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
    # The old deployments are gone once their tasks stopped.
    service.deployments[:] = [d for d in service.deployments if d is current]
    say_once(service, f"(service {service.name}) has reached a steady state.")

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
        before = (service.task_definition, repr(service.network_configuration))
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
        changed = (wanted, repr(service.network_configuration)) != before
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
        if hasattr(service, "_tasks") and any(not stopped(t) for t in service._tasks):
            # DeleteService: DRAINING while its tasks stop, then INACTIVE (DeleteService API reference).
            service.status = "DRAINING"
            reconcile(service)
        return service

    Backend.delete_service = delete_service


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
    patch_target_health()
