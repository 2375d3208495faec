"""deckhand's local emulator: moto's server, patched where moto 5.2.5 departs from AWS in ways
deckhand depends on. Embedded in the deckhand binary and run with the emulator venv's python,
with moto_server's arguments (-H HOST -p PORT).

- ECS services run what they are asked to: runningCount = desiredCount (pendingCount 0) for an
  ACTIVE service and its PRIMARY deployment COMPLETED, as AWS reports once a rollout settles.
  moto reports the constant MOTO_ECS_SERVICE_RUNNING for every service instead; when that
  variable is set (a test simulating tasks that never start), moto's behaviour is kept.
- CreateService keeps capacityProviderStrategy, deploymentConfiguration and
  healthCheckGracePeriodSeconds (moto drops them; it keeps them from UpdateService), and a
  service on a capacity provider reports no launchType, as on AWS. AWS fills in the deployment
  configuration's defaults (200 %, 100 %, circuit breaker off); so does this.
- DECKHAND_EMULATOR_LATENCY_MS (benchmarks): every AWS request waits that long before moto
  serves it, like a round trip to a real region. Requests are still served concurrently (the
  server is threaded; the wait holds no lock). The control API (/moto-api/) is not delayed.
- Before serving, the launcher builds every backend (as moto's first tagging request would) and
  freezes them out of Python's garbage collector: its full collections otherwise stalled every
  request in flight for 100-350 ms, pauses real AWS does not have (see warm_up).
- SSM DescribeParameters reports each parameter's ARN and no value, as AWS does (moto leaves the
  ARN out and adds the value).
- CloudWatch Logs FilterLogEvents honours logStreamNamePrefix: only streams whose names start with
  it are searched, and it cannot be given together with logStreamNames, as on AWS (moto ignores
  it and searches every stream of the group).
"""

import gc
import json
import logging
import os
import sys
import time

from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.utils import utcnow
from moto.ecs import models as ecs_models
from moto.ecs import responses as ecs_responses
from moto.logs import responses as logs_responses
from moto.logs.exceptions import InvalidParameterException
from moto.moto_api._internal import mock_random
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.server import main
from moto.ssm import responses as ssm_responses
from moto.ssm.utils import parameter_arn

SETTLED = "MOTO_ECS_SERVICE_RUNNING" not in os.environ

DEFAULT_DEPLOYMENT_CONFIGURATION = {
    "deploymentCircuitBreaker": {"enable": False, "rollback": False},
    "maximumPercent": 200,
    "minimumHealthyPercent": 100,
}


def settle(service):
    """Makes the service's PRIMARY deployment report a finished rollout of its task definition."""
    for deployment in service.deployments:
        if deployment.get("status") != "PRIMARY":
            continue
        if deployment.get("taskDefinition") != service.task_definition:
            # AWS starts a new deployment (new id) for a new task definition.
            deployment["id"] = f"ecs-svc/{mock_random.randint(0, 32**12)}"
            deployment["createdAt"] = utcnow()
        deployment.update(
            desiredCount=service.desired_count,
            runningCount=service.running_count,
            pendingCount=0,
            failedTasks=0,
            rolloutState="COMPLETED",
            rolloutStateReason=f"ECS deployment {deployment['id']} completed.",
            taskDefinition=service.task_definition,
            launchType=service.launch_type,
            capacityProviderStrategy=getattr(service, "capacity_provider_strategy", None) or None,
            updatedAt=utcnow(),
        )


def patch_running_counts():
    Service = ecs_models.Service
    # moto assigns these in several places; a settled service derives them from its state.
    Service.running_count = property(
        lambda self: self.desired_count if self.status == "ACTIVE" else 0, lambda self, value: None
    )
    Service.pending_count = property(lambda self: 0, lambda self, value: None)

    original_init = Service.__init__

    def __init__(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        settle(self)

    Service.__init__ = __init__

    Backend = ecs_models.EC2ContainerServiceBackend
    original_update = Backend.update_service

    def update_service(self, service_properties):
        service = original_update(self, service_properties)
        settle(service)
        return service

    Backend.update_service = update_service


def patch_create_service():
    Response = ecs_responses.EC2ContainerServiceResponse
    original_create = Response.create_service

    def create_service(self):
        strategy = self._get_param("capacityProviderStrategy")
        configuration = self._get_param("deploymentConfiguration")
        grace = self._get_param("healthCheckGracePeriodSeconds")
        result = original_create(self)
        service = self.ecs_backend._get_service(
            self._get_param("cluster", "default"), self._get_param("serviceName")
        )
        if strategy:
            service.capacity_provider_strategy = strategy
            if not self._get_param("launchType"):
                service.launch_type = None
        service.deployment_configuration = {**DEFAULT_DEPLOYMENT_CONFIGURATION, **(configuration or {})}
        if grace is not None:
            service.health_check_grace_period_seconds = grace
        if SETTLED:
            settle(service)
        return result

    Response.create_service = create_service


def patch_latency(seconds):
    original_call = DomainDispatcherApplication.__call__

    def __call__(self, environ, start_response):
        if not environ.get("PATH_INFO", "").startswith("/moto-api"):
            time.sleep(seconds)
        return original_call(self, environ, start_response)

    DomainDispatcherApplication.__call__ = __call__
def patch_describe_parameters():
    from moto.core.responses import ActionResult

    def describe_parameters(self):
        page_size = 10
        token = self._get_param("NextToken")
        token = int(token.strip() if hasattr(token, "strip") and token.strip() else 0)
        result = self.ssm_backend.describe_parameters(
            self._get_param("Filters"), self._get_param("ParameterFilters")
        )
        response = {"Parameters": []}
        for parameter in result[token:]:
            described = parameter.describe_response_object(False)
            described.pop("Value", None)
            described["ARN"] = parameter_arn(parameter.account_id, self.region, parameter.name)
            response["Parameters"].append(described)
            token += 1
            if len(response["Parameters"]) == page_size:
                response["NextToken"] = str(token)
                break
        return ActionResult(response)

    ssm_responses.SimpleSystemManagerResponse.describe_parameters = describe_parameters


def patch_filter_log_events():
    def filter_log_events(self):
        group_name = self._get_param("logGroupName")
        stream_names = self._get_param("logStreamNames", [])
        prefix = self._get_param("logStreamNamePrefix")
        if prefix:
            if stream_names:
                raise InvalidParameterException(
                    "You cannot specify both logStreamNames and logStreamNamePrefix"
                )
            group = self.logs_backend.groups.get(group_name)
            stream_names = [name for name in group.streams if name.startswith(prefix)] if group else []
            if group and not stream_names:
                # moto reads an empty list as "every stream".
                return json.dumps({"events": [], "searchedLogStreams": []})
        events, next_token, searched = self.logs_backend.filter_log_events(
            group_name,
            stream_names,
            self._get_param("startTime"),
            self._get_param("endTime"),
            self._get_param("limit"),
            self._get_param("nextToken"),
            self._get_param("filterPattern"),
            self._get_param("interleaved", False),
        )
        return json.dumps({"events": events, "nextToken": next_token, "searchedLogStreams": searched})

    logs_responses.LogsResponse.filter_log_events = filter_log_events


if SETTLED:
    patch_running_counts()
patch_create_service()
LATENCY_MS = int(os.environ.get("DECKHAND_EMULATOR_LATENCY_MS") or 0)
if LATENCY_MS > 0:
    patch_latency(LATENCY_MS / 1000)
patch_describe_parameters()
patch_filter_log_events()

def warm_up(account_id, region):
    """Builds moto's backends before serving, then takes them out of the garbage collector's way.

    moto builds the backends of every service (IAM's ~1,000 managed policies among them) on the
    first Resource Groups Tagging API request: seconds of work, done here rather than inside a
    run's first read (real AWS answers GetResources in milliseconds). What it builds is hundreds
    of thousands of long-lived objects; each full collection walked them all, stalling every
    request in flight for 100-350 ms, a pause real AWS does not have. gc.freeze() moves them to
    the permanent generation, so collections walk only what requests create."""
    from moto.resourcegroupstaggingapi.models import resourcegroupstaggingapi_backends

    resourcegroupstaggingapi_backends[account_id][region].get_resources()
    gc.collect()
    gc.freeze()


if __name__ == "__main__":
    # Errors only on stderr: deckhand keeps it in a file and shows it if the emulator fails.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    warm_up(DEFAULT_ACCOUNT_ID, os.environ.get("DECKHAND_EMULATOR_REGION", "us-west-2"))
    main(sys.argv[1:])
