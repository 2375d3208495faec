"""ECS tasks in the emulator: how one task starts, runs, fails to start and stops, as real
AWS reports it, for as long as AWS takes (scale 1; clock.py runs it faster). ecs.py drives the
tasks of services (and their targets); RunTask's one-off tasks are here too.

Sources (cited again where each value is used):
- Task lifecycle: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-lifecycle-explanation.html
  (PROVISIONING -> PENDING -> RUNNING; DEACTIVATING -> STOPPING -> DEPROVISIONING -> STOPPED).
- Stopped task error codes ("Amazon ECS stopped task error messages"):
  https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stopped-task-error-codes.html
"""

import re
import uuid

from moto.ec2 import ec2_backends
from moto.logs.models import logs_backends
from moto.moto_api._internal import mock_random

import clock
import network

# A Fargate task takes about a minute from RunTask/CreateService to RUNNING: the figure
# and AWS's own ("Fargate tasks typically start in under a minute", Fargate task launch times,
# https://aws.amazon.com/blogs/containers/improving-aws-fargate-task-launch-times/ — ENI
# provisioning, then the image pull). About a third is PROVISIONING (the ENI), the rest PENDING.
PROVISIONING_SECONDS = 20
PENDING_SECONDS = 40
# A task that cannot pull its image or reach CloudWatch Logs/its secrets fails about a minute in
# (the agent retries the pull, then gives up with CannotPullContainerError/ResourceInitializationError).
FAILED_START_SECONDS = 60
# After its targets drained: STOPPING (SIGTERM; a web server exits within seconds, stopTimeout is
# at most 30 s by default) then DEPROVISIONING (the ENI is detached) — seconds each.
STOPPING_SECONDS = 5
DEPROVISIONING_SECONDS = 10
# A RunTask container whose command ends in `exit N` exits 10 s after it started (the model
# of a short one-off job such as a migration).
ONE_OFF_SECONDS = 10


def task_id(task):
    return task.task_arn.rsplit("/", 1)[-1]


def live(task):
    """Asked to run (desiredStatus RUNNING)."""
    return task.desired_status == "RUNNING"


def stopped(task):
    return task.last_status == "STOPPED"


def set_status(task, status):
    task._modelled_status = status
    if status == "RUNNING":
        task.started_at = clock.utcnow()
    for container in task.containers:
        if status in ("PENDING", "RUNNING"):
            container["lastStatus"] = status
        if status == "RUNNING":
            # runtimeId: the container's id on its host, `<task id>-<number>` on Fargate.
            container["runtimeId"] = f"{task_id(task)}-{mock_random.randint(10**9, 10**10 - 1)}"


def prepare(task, task_definition, overrides):
    """Turns a task moto just made (RUNNING at once, one container) into one that starts."""
    now = clock.utcnow()
    task._modelled_status = "PROVISIONING"
    task._scheduled = []
    task.created_at = now
    task.stopped_reason = None
    task.stop_code = None
    task.health_status = "UNKNOWN"
    task.cpu = getattr(task_definition, "cpu", None)
    task.memory = getattr(task_definition, "memory", None)
    task.connectivity = "CONNECTED"
    task.connectivity_at = now
    task.version = 1
    overridden = {o.get("name"): o for o in (overrides or {}).get("containerOverrides", [])}
    attachment = task.attachments[0] if task.attachments else None
    detail = {d["name"]: d["value"] for d in attachment["details"]} if attachment else {}
    if attachment:
        attachment["status"] = "PRECREATED"
        subnet = ec2_backends[task._account_id][task.region_name].get_subnet(detail["subnetId"])
        task.availability_zone = subnet.availability_zone
    task.containers = []
    for definition in task_definition.container_definitions:
        command = overridden.get(definition.get("name"), {}).get("command") or definition.get("command")
        container = {
            "containerArn": f"arn:aws:ecs:{task.region_name}:{task._account_id}:container/{task.cluster_name}/{task_id(task)}/{uuid.uuid4()}",
            "taskArn": task.task_arn,
            "name": definition.get("name"),
            "image": definition.get("image"),
            "lastStatus": "PENDING",
            "healthStatus": "UNKNOWN",
            "cpu": str(definition.get("cpu", 0)),
            "_command": command or [],
            "_definition": definition,
        }
        if attachment:
            container["networkInterfaces"] = [
                {"attachmentId": attachment["id"], "privateIpv4Address": detail.get("privateIPv4Address")}
            ]
        task.containers.append(container)


def eni_detail(task, name):
    """A detail of the task's ENI attachment (`privateIPv4Address`, `subnetId`, ...), or None."""
    for attachment in task.attachments:
        for detail in attachment["details"]:
            if detail["name"] == name:
                return detail["value"]
    return None


def private_ip(task):
    return eni_detail(task, "privateIPv4Address")


def subnet_of(task):
    return eni_detail(task, "subnetId")


def default_security_group(account_id, region, network_configuration):
    """Gives an awsvpc configuration without security groups its VPC's default one, as ECS does
    (RunTask/CreateService API reference, awsvpcConfiguration.securityGroups)."""
    awsvpc = (network_configuration or {}).get("awsvpcConfiguration")
    if awsvpc and awsvpc.get("subnets") and not awsvpc.get("securityGroups"):
        ec2 = ec2_backends[account_id][region]
        vpc = ec2.get_subnet(awsvpc["subnets"][0]).vpc_id
        awsvpc["securityGroups"] = [ec2.get_default_security_group(vpc).id]


def schedule(task, seconds, action):
    task._scheduled.append(clock.after(seconds, action))


def cancel_scheduled(task):
    for event in getattr(task, "_scheduled", []):
        event.cancel()
    task._scheduled = []


def start_failure(task):
    """Why the task cannot start (AWS's stopped reason), or None."""
    account, region = task._account_id, task.region_name
    logs = logs_backends[account][region]
    public_ip = (
        task.network_configuration.get("awsvpcConfiguration", {}).get("assignPublicIp") == "ENABLED"
        if getattr(task, "network_configuration", None)
        else False
    )
    for container in task.containers:
        definition = container["_definition"]
        log = definition.get("logConfiguration") or {}
        uses_awslogs = log.get("logDriver") == "awslogs"
        secrets = [s.get("valueFrom") for s in definition.get("secrets") or []]
        why = network.task_network_failure(
            account, region, subnet_of(task), public_ip, definition.get("image"), uses_awslogs, secrets
        )
        if why:
            return why
        options = log.get("options") or {}
        group = options.get("awslogs-group")
        if uses_awslogs and group not in logs.groups and options.get("awslogs-create-group") != "true":
            # The awslogs driver creates the stream at start; a missing group fails the task
            # (stopped-task error codes: ResourceInitializationError ... failed to validate logger args).
            return (
                "ResourceInitializationError: failed to validate logger args: create stream has been retried 1 "
                "times: failed to create Cloudwatch log stream: ResourceNotFoundException: The specified log "
                "group does not exist. : exit status 1"
            )
    return None


def begin(task, on_running, on_failed):
    """Runs the task's start: PENDING, then RUNNING (or STOPPED with the reason it could not start)."""
    why = start_failure(task)
    schedule(task, PROVISIONING_SECONDS, lambda: set_status(task, "PENDING"))
    if why:
        schedule(task, FAILED_START_SECONDS, lambda: fail_start(task, why, on_failed))
    else:
        schedule(task, PROVISIONING_SECONDS + PENDING_SECONDS, lambda: (run(task), on_running(task)))


def run(task):
    for attachment in task.attachments:
        attachment["status"] = "ATTACHED"
    set_status(task, "RUNNING")


def fail_start(task, why, on_failed):
    task.desired_status = "STOPPED"
    task.stop_code = "TaskFailedToStart"
    finish(task, why)
    on_failed(task)


def finish(task, reason, exit_code=None):
    """The task is STOPPED: containers stopped, ENI released."""
    cancel_scheduled(task)
    now = clock.utcnow()
    task.desired_status = "STOPPED"
    task._modelled_status = "STOPPED"
    if task.stopped_reason is None:
        task.stopped_reason = reason
    task.stopping_at = getattr(task, "stopping_at", None) or now
    task.execution_stopped_at = now
    task.stopped_at = now
    for container in task.containers:
        container["lastStatus"] = "STOPPED"
        if exit_code is not None:
            container["exitCode"] = exit_code
        elif "runtimeId" in container:
            container["exitCode"] = 0
    ec2 = ec2_backends[task._account_id][task.region_name]
    for attachment in task.attachments:
        attachment["status"] = "DELETED"
        for detail in attachment["details"]:
            if detail["name"] == "networkInterfaceId":
                ec2.enis.pop(detail["value"], None)


def wind_down(task, after_drain, reason, stop_code, done):
    """Stops a running task: DEACTIVATING while its targets drain, STOPPING, DEPROVISIONING, STOPPED."""
    task.desired_status = "STOPPED"
    task.stop_code = task.stop_code or stop_code
    task.stopped_reason = task.stopped_reason or reason
    task.stopping_at = clock.utcnow()
    cancel_scheduled(task)
    if task.last_status != "RUNNING":
        finish(task, reason)
        done(task)
        return
    set_status(task, "DEACTIVATING")
    schedule(task, after_drain, lambda: set_status(task, "STOPPING"))
    schedule(task, after_drain + STOPPING_SECONDS, lambda: set_status(task, "DEPROVISIONING"))
    schedule(
        task,
        after_drain + STOPPING_SECONDS + DEPROVISIONING_SECONDS,
        lambda: (finish(task, reason), done(task)),
    )


# ---------------------------------------------------------------------------------------------
# One-off tasks (RunTask)


EXIT = re.compile(r"exit\s+(\d+)\s*;?\s*$")
ECHO = re.compile(r"echo\s+(?:'([^']*)'|\"([^\"]*)\"|([^;&|]*))")


def script_of(container):
    command = container["_command"]
    return command[-1] if command and isinstance(command[-1], str) else ""


def exit_code_of(container):
    match = EXIT.search(script_of(container))
    return int(match.group(1)) if match else 0


def write_logs(task, container):
    definition = container["_definition"]
    log = definition.get("logConfiguration") or {}
    if log.get("logDriver") != "awslogs":
        return
    options = log.get("options") or {}
    group, prefix = options.get("awslogs-group"), options.get("awslogs-stream-prefix")
    lines = [next(g for g in m.groups() if g is not None).strip() for m in ECHO.finditer(script_of(container))]
    if not group or not lines:
        return
    logs = logs_backends[task._account_id][task.region_name]
    if group not in logs.groups:
        logs.create_log_group(group, {})
    # awslogs streams are prefix/container-name/task-id (awslogs-stream-prefix docs).
    stream = f"{prefix}/{container['name']}/{task_id(task)}" if prefix else task_id(task)
    if stream not in logs.groups[group].streams:
        logs.create_log_stream(group, stream)
    at = int(clock.now() * 1000)
    logs.put_log_events(group, stream, [{"timestamp": at + i, "message": line} for i, line in enumerate(lines)])


def one_off_running(task):
    for container in task.containers:
        write_logs(task, container)

    def exit_now():
        task.stop_code = "EssentialContainerExited"
        finish(task, "Essential container in task exited")
        for container in task.containers:
            code = exit_code_of(container)
            container["exitCode"] = code

    schedule(task, ONE_OFF_SECONDS, exit_now)


def patch_task_sizes(Backend):
    """A Fargate container needs no memory of its own (the task's applies; RegisterTaskDefinition
    docs, containerDefinitions.memory); moto's RunTask adds each container's memory and fails on
    one without. Containers without it count as 0 here."""
    original = Backend._calculate_task_resource_requirements

    def requirements(task_definition):
        sized = [
            d if d.get("memory") or d.get("memoryReservation") or d.get("Memory") or d.get("MemoryReservation")
            else {**d, "memory": 0}
            for d in task_definition.container_definitions
        ]
        real, task_definition.container_definitions = task_definition.container_definitions, sized
        try:
            return original(task_definition)
        finally:
            task_definition.container_definitions = real

    Backend._calculate_task_resource_requirements = staticmethod(requirements)

