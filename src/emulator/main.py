"""deckhand's local emulator: moto's server, patched where moto 5.2.5 departs from AWS in ways
deckhand depends on. Embedded in the deckhand binary (with the modules beside it: clock.py,
the time scale and the scheduler of modelled states; network.py, NAT gateways, load balancers
and certificates; ecs.py, services, deployments and their targets; tasks.py, one task's
lifecycle), written out and run with the emulator venv's python, with moto_server's arguments (-H HOST -p PORT).

- DECKHAND_TIME_SCALE (0 < s <= 1): modelled durations pass s times as fast (clock.py).
- DECKHAND_EMULATOR_LATENCY_MS (benchmarks): every AWS request waits that long before moto
  serves it, like a round trip to a real region. The waits overlap (the server is threaded and
  the wait holds no lock); moto then serves one request at a time. The control API
  (/moto-api/) is not delayed.
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

from moto.core import DEFAULT_ACCOUNT_ID
from moto.logs import responses as logs_responses
from moto.logs.exceptions import InvalidParameterException
from moto.server import main
from moto.ssm import responses as ssm_responses
from moto.ssm.utils import parameter_arn

import clock  # the launcher's own modules, written beside it
import ecs
import exec as ecs_exec
import network

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


clock.install(int(os.environ.get("DECKHAND_EMULATOR_LATENCY_MS") or 0) / 1000)
ecs.install()
ecs_exec.install()
network.install()
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
