"""ECS Exec in the emulator: moto 5.2.5 has no ExecuteCommand and drops CreateService's
enableExecuteCommand. Here:
- CreateService keeps enableExecuteCommand; UpdateService already sets it (moto copies every
  parameter onto the service). A task takes the service's setting when it starts, as on AWS: "you
  can't turn on ECS Exec for existing tasks; only tasks started after the change" (ECS developer
  guide, "Monitor Amazon ECS containers with ECS Exec").
- ExecuteCommand (ECS API reference, ExecuteCommand) answers a RUNNING task started with exec on
  with a Session Manager session {sessionId, streamUrl, tokenValue}; a task started without it,
  or not running, fails with AWS's InvalidParameterException ("The execute command failed
  because execute command was not enabled when the task was run or the execute command agent
  isn't running. Wait and try the command again or run a new task with execute command enabled
  and try again.").
"""

import uuid

from moto.ecs import models as ecs_models
from moto.ecs import responses as ecs_responses
from moto.ecs.exceptions import InvalidParameterException
from moto.core.responses import ActionResult

NOT_ENABLED = (
    "The execute command failed because execute command was not enabled when the task was run or the execute "
    "command agent isn't running. Wait and try the command again or run a new task with execute command enabled "
    "and try again."
)


def install():
    Response = ecs_responses.EC2ContainerServiceResponse
    original_create = Response.create_service

    def create_service(self):
        result = original_create(self)
        service = self.ecs_backend._get_service(self._get_param("cluster", "default"), self._get_param("serviceName"))
        service.enable_execute_command = bool(self._get_param("enableExecuteCommand", False))
        # The tasks this CreateService launched (ecs.py) start with the service's setting.
        for task in getattr(service, "_tasks", []):
            task.enable_execute_command = service.enable_execute_command
        return result

    Response.create_service = create_service

    # A service's task takes the service's setting when it starts (ecs.start_tasks sets it);
    # a RunTask task runs without (deckhand's one-off tasks do not ask for it).
    ecs_models.Task.enable_execute_command = False

    def execute_command(self):
        cluster = self._get_param("cluster", "default")
        task_str = self._get_param("task")
        cluster_name = cluster.rsplit("/", 1)[-1]
        tasks = self.ecs_backend.tasks.get(cluster_name, {})
        task = next((t for arn, t in tasks.items() if arn.endswith("/" + task_str.rsplit("/", 1)[-1])), None)
        if task is None:
            raise InvalidParameterException("The specified task was not found.")
        if not task.enable_execute_command or task.last_status != "RUNNING":
            raise InvalidParameterException(NOT_ENABLED)
        name = self._get_param("container") or task.containers[0]["name"]
        container = next((c for c in task.containers if c["name"] == name), None)
        if container is None:
            raise InvalidParameterException(f"The specified container {name} was not found.")
        session_id = f"ecs-execute-command-{uuid.uuid4().hex[:17]}"
        region = self.region
        return ActionResult(
            {
                "clusterArn": task.cluster_arn,
                "containerArn": container["containerArn"],
                "containerName": name,
                "interactive": True,
                "taskArn": task.task_arn,
                "session": {
                    "sessionId": session_id,
                    "streamUrl": f"wss://ssmmessages.{region}.amazonaws.com/v1/data-channel/{session_id}?role=publish_subscribe",
                    "tokenValue": uuid.uuid4().hex,
                },
            }
        )

    Response.execute_command = execute_command
