"""deckhand's local emulator: moto's server, patched where moto 5.2.5 departs from AWS in ways
deckhand depends on. Embedded in the deckhand binary (with the modules beside it: clock.py,
the time scale and the scheduler of modelled states; network.py, NAT gateways, load balancers,
certificates, and what keeps an internet gateway attached or a VPC in use; ecs.py, services,
deployments (rolling, blue/green, canary, linear; the service deployment APIs moto lacks) and
their targets; tasks.py, one task's
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
- The Resource Groups Tagging API lists ECR repositories (resource type ecr:repository), as AWS
  does; moto's ECR backend does not take part in it (see patch_tagged_ecr_repositories).
- ECR PutImageScanningConfiguration with an empty imageScanningConfiguration turns scanning on
  push off (scanOnPush defaults to false; the SDKs leave a false out); moto kept the old setting.
- ACM: RequestCertificate honours KeyAlgorithm (moto makes every key RSA_2048); ListCertificates
  without Includes.keyTypes lists only RSA_1024 and RSA_2048 certificates, as AWS does (moto
  lists every key type); a request with an idempotency token of the last hour returns that
  token's certificate even when it has since been deleted, as AWS does (moto fails with a
  KeyError).
- Route 53 rejects a change batch that would leave a CNAME beside another record set of the same
  name (InvalidChangeBatch), as AWS does, checking the batch as the one transaction it is (moto
  accepts the conflict). A CREATE fails only when a record set of that name and type exists
  (moto also fails one that repeats an earlier, since deleted, CREATE when any record set sorts
  after it).
- CloudWatch PutMetricAlarm: a new alarm is INSUFFICIENT_DATA and an updated one keeps its state,
  as on AWS (moto makes every alarm it writes OK, so an update would clear an ALARM).
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
import cloudwatch
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


def patch_ecr_scan_on_push_default():
    """An imageScanningConfiguration without scanOnPush means false, as on AWS: the member defaults
    to false (https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_ImageScanningConfiguration.html),
    and the SDKs leave a false value out of the request, so PutImageScanningConfiguration sends {}
    to turn scanning off. moto 5.2.5 ignores an empty map and keeps the old setting."""
    from moto.ecr.models import Repository

    def update(self, image_scanning_configuration):
        if image_scanning_configuration is not None:
            scan = bool(image_scanning_configuration.get("scanOnPush", False))
            self.image_scanning_configuration = {**image_scanning_configuration, "scanOnPush": scan}

    Repository._update_image_scanning_configuration = update


def patch_tagged_ecr_repositories():
    """GetResources lists tagged ECR repositories (ecr:repository), as AWS does: ECR is among the
    services the Resource Groups Tagging API supports
    (https://docs.aws.amazon.com/resourcegroupstagging/latest/APIReference/supported-services.html).
    moto 5.2.5's ECR backend is not a TaggableResourcesMixin, so its repositories are added to the
    resources moto's backends yield, filtered the same way (tags, resource types, ARNs)."""
    from moto.core.resource_tagging import TaggedResource, make_tag_matcher, match_resource_type
    from moto.ecr.models import ecr_backends
    from moto.resourcegroupstaggingapi.models import ResourceGroupsTaggingAPIBackend

    listed = ResourceGroupsTaggingAPIBackend._get_resources_generator

    def with_repositories(self, tag_filters=None, resource_type_filters=None, resource_arn_list=None):
        yield from listed(self, tag_filters, resource_type_filters, resource_arn_list)
        if not match_resource_type("ecr:repository", resource_type_filters):
            return
        ecr = ecr_backends[self.account_id][self.region_name]
        matches = make_tag_matcher(tag_filters)
        for repository in list(ecr.repositories.values()):
            tags = ecr.tagger.get_tag_dict_for_resource(repository.arn)
            if tags and matches(tags) and (not resource_arn_list or repository.arn in resource_arn_list):
                yield TaggedResource(arn=repository.arn, tags=tags, resource_type="ecr:repository")

    ResourceGroupsTaggingAPIBackend._get_resources_generator = with_repositories


def patch_acm():
    """ACM's key types and idempotency tokens as AWS has them (see the docstring)."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from moto.acm import models as acm_models
    from moto.acm import responses as acm_responses

    Backend = acm_models.AWSCertificateManagerBackend

    original_list = Backend.list_certificates

    def list_certificates(self, statuses, includes):
        # ListCertificates: "Default filtering returns only RSA_1024 and RSA_2048 certificates
        # that have at least one domain. To return other certificate types, provide the desired
        # type signatures in a comma-separated list." (ACM API reference, Filters.keyTypes)
        includes = dict(includes or {})
        includes.setdefault("keyTypes", ["RSA_1024", "RSA_2048"])
        return original_list(self, statuses, includes)

    Backend.list_certificates = list_certificates

    original_request = Backend.request_certificate

    def request_certificate(self, domain_name, idempotency_token, *args, **kwargs):
        # RequestCertificate: "Idempotency tokens time out after one hour. Therefore, if you call
        # RequestCertificate multiple times with the same idempotency token within one hour, ACM
        # recognizes that you are requesting only one certificate and will issue only one." The
        # one it returns may have been deleted (or have FAILED) meanwhile.
        if idempotency_token is not None:
            arn = self._get_arn_from_idempotency_token(idempotency_token)
            if arn and arn not in self._certificates:
                return arn
        return original_request(self, domain_name, idempotency_token, *args, **kwargs)

    Backend.request_certificate = request_certificate

    curves = {"EC_prime256v1": ec.SECP256R1, "EC_secp384r1": ec.SECP384R1, "EC_secp521r1": ec.SECP521R1}
    Response = acm_responses.AWSCertificateManagerResponse
    original_response = Response.request_certificate

    def request_certificate_response(self):
        result = original_response(self)
        curve = curves.get(self._get_param("KeyAlgorithm") or "")
        if curve:
            # Only the key's type is reported (DescribeCertificate's KeyAlgorithm).
            self.acm_backend.get_certificate(result.result["CertificateArn"])._key = ec.generate_private_key(curve())
        return result

    Response.request_certificate = request_certificate_response


def patch_route53_cname_conflicts():
    """A CNAME shares its name with no other record set (see the docstring)."""
    from moto.route53 import models as route53_models
    from moto.route53.exceptions import Route53ClientError

    class InvalidChangeBatch(Route53ClientError):
        def __init__(self, message):
            super().__init__("InvalidChangeBatch", message)

    Backend = route53_models.Route53Backend
    original = Backend.change_resource_record_sets

    def change_resource_record_sets(self, zoneid, change_list):
        # RFC 1034 3.6.2: "If a CNAME RR is present at a node, no other data should be present".
        # Route 53 applies a batch all or nothing ("Change batches are considered transactional
        # changes", ChangeResourceRecordSets API reference), so the check is of its end state:
        # deleting an A record and creating a CNAME at its name in one batch is allowed.
        zone = self.get_hosted_zone(zoneid)
        dotted = lambda name: name if name.endswith(".") else name + "."  # noqa: E731
        types = {}
        for rrset in zone.rrsets:
            types.setdefault(dotted(rrset.name), set()).add(rrset.type)
        for change in change_list:
            rrset = change["ResourceRecordSet"]
            name = dotted(rrset["Name"])
            if change["Action"] == "DELETE":
                types.get(name, set()).discard(rrset["Type"])
            else:
                types.setdefault(name, set()).add(rrset["Type"])
        for change in change_list:
            name = dotted(change["ResourceRecordSet"]["Name"])
            present = types.get(name, set())
            if "CNAME" in present and len(present) > 1:
                raise InvalidChangeBatch(
                    f"[RRSet of type CNAME with DNS name {name} is not permitted as it conflicts with other "
                    f"records with the same DNS name in zone {zone.name}]"
                )
        return original(self, zoneid, change_list)

    Backend.change_resource_record_sets = change_resource_record_sets

    # moto asks "is this CREATE in the zone's journal?" before it asks whether the record set
    # exists, and answers the latter with every record set from that name on: a CREATE that
    # repeats an earlier one fails even after that record set was deleted. AWS: "CREATE: Creates a
    # resource record set that has the specified values" and fails only if one with that name and
    # type exists (ChangeResourceRecordSets API reference). The journal answers exactly that here.
    Zone = route53_models.FakeZone
    original_init = Zone.__init__

    def zone_init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.rr_changes.zone = self

    Zone.__init__ = zone_init

    def exists(journal, change):
        zone = getattr(journal, "zone", None)
        if zone is None:
            return list.__contains__(journal, change)
        rrset = change["ResourceRecordSet"]
        name = rrset["Name"].strip(".")
        return any(r.name.strip(".") == name and r.type == rrset["Type"] for r in zone.rrsets)

    route53_models.ChangeList.__contains__ = exists


def patch_alarm_states():
    """PutMetricAlarm: "When this operation creates an alarm, the alarm state is immediately set to
    INSUFFICIENT_DATA ... When you update an existing alarm, its state is left unchanged, but the
    update completely overwrites the previous configuration of the alarm." (CloudWatch API
    reference). moto 5.2.5 writes a new alarm object in state OK either way."""
    from moto.cloudwatch.models import CloudWatchBackend

    original = CloudWatchBackend.put_metric_alarm

    def put_metric_alarm(self, name, *args, **kwargs):
        previous = self.alarms.get(name)
        alarm = original(self, name, *args, **kwargs)
        if previous is None:
            alarm.state_value = "INSUFFICIENT_DATA"
        else:
            for attr in ("state_value", "state_reason", "state_reason_data", "state_updated_timestamp", "history"):
                setattr(alarm, attr, getattr(previous, attr))
        return alarm

    CloudWatchBackend.put_metric_alarm = put_metric_alarm


clock.install(int(os.environ.get("DECKHAND_EMULATOR_LATENCY_MS") or 0) / 1000)
cloudwatch.install()
ecs.install()
ecs_exec.install()
network.install()
patch_describe_parameters()
patch_filter_log_events()
patch_tagged_ecr_repositories()
patch_ecr_scan_on_push_default()
patch_acm()
patch_route53_cname_conflicts()
patch_alarm_states()


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
