"""ECS in the emulator: services, deployments and tasks as AWS reports them.

- ECS services run what they are asked to: runningCount = desiredCount (pendingCount 0) for an
  ACTIVE service and its PRIMARY deployment COMPLETED, as AWS reports once a rollout settles.
  moto reports the constant MOTO_ECS_SERVICE_RUNNING for every service instead; when that
  variable is set (a test simulating tasks that never start), moto's behaviour is kept.
- CreateService keeps capacityProviderStrategy, deploymentConfiguration and
  healthCheckGracePeriodSeconds (moto drops them; it keeps them from UpdateService), and a
  service on a capacity provider reports no launchType, as on AWS. AWS fills in the deployment
  configuration's defaults (200 %, 100 %, circuit breaker off); so does this.
"""

import os

from moto.core.utils import utcnow
from moto.ecs import models as ecs_models
from moto.ecs import responses as ecs_responses
from moto.moto_api._internal import mock_random

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



def install():
    if SETTLED:
        patch_running_counts()
    patch_create_service()
