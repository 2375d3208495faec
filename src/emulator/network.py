"""Networking and certificates in the emulator: NAT gateways, load balancers and ACM
certificates go through the states real AWS shows, for as long as it takes (see clock.py).

- NAT gateway: `pending` for NAT_PROVISIONING, then `available`; `failed` instead when its VPC has
  no internet gateway. DeleteNatGateway: `deleting` for NAT_DELETION (its elastic IP stays
  associated meanwhile, and ReleaseAddress answers AuthFailure), then `deleted` with its
  DeleteTime (moto deletes at once).
- Application Load Balancer: `provisioning` for LOAD_BALANCER_PROVISIONING, then `active` (moto
  activates a load balancer on its first Describe). An internet-facing one in a VPC without an
  internet gateway stays `provisioning`.
- Internet gateway: DetachInternetGateway refuses (DependencyViolation) while the VPC has
  mapped public addresses: an elastic IP associated with an interface in it (a NAT gateway's, until
  it is deleted), an internet-facing load balancer in it, a task with a public IP in it (moto
  detaches at once). DeleteVpc refuses (DependencyViolation) while an internet gateway is attached,
  security groups other than the default one remain, or VPC endpoints (moto checks only subnets,
  route tables and VPN gateways).
- ACM, DNS validation: PENDING_VALIDATION until every validation CNAME (name and value as
  DescribeCertificate shows them) is in a public hosted zone of the account, then ISSUED
  CERTIFICATE_VALIDATION later; VALIDATION_TIMED_OUT after CERTIFICATE_TIMEOUT without them.
  moto issues every certificate MOTO_ACM_VALIDATION_WAIT seconds after its request, record or
  not; that is switched off. A pending certificate shows no IssuedAt, NotBefore, NotAfter or
  Serial, as on AWS.

Every transition is put on clock's timeline (GET /moto-api/deckhand/timeline), with the route
changes that depend on them, so tests read modelled durations from the emulator's own clock.

ecs.py asks this module what a task's network lets it reach (`task_network_failure`), whether a
target's security groups admit its load balancer (`admits_load_balancer`) and whether that load
balancer is active yet (`load_balancer_active`).
"""

import hashlib
import ipaddress
import re

from moto.acm import models as acm_models
from moto.core.utils import iso_8601_datetime_with_milliseconds
from moto.ec2.models import ec2_backends
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.elastic_ip_addresses import ElasticAddressBackend
from moto.ec2.exceptions import DependencyViolationError
from moto.ec2.models.internet_gateways import InternetGateway, InternetGatewayBackend
from moto.ec2.models.nat_gateways import NatGatewayBackend
from moto.ec2.models.route_tables import RouteBackend
from moto.ec2.models.vpcs import VPCBackend
from moto.ecs import models as ecs_models
from moto.elbv2 import models as elbv2_models
from moto.elbv2.exceptions import ELBClientError
from moto.route53 import models as route53_models

import clock

# How long a NAT gateway is `pending` (modelled seconds). AWS documents no typical time; the wait
# in src/aws/egress/nat_gateway.rs says "usually 1-2 minutes", as terraform runs show
# (terraform-aws-modules/terraform-aws-vpc#999: "aws_nat_gateway ... Still creating...
# [1m0s elapsed]" and on). terraform-provider-aws's 10-minute create timeout is an upper limit.
NAT_PROVISIONING = 90

# How long a NAT gateway is `deleting`. AWS documents no typical time; observed deletions take
# about a minute (cloud-nuke's NatGatewayDeleted loop allows 30 polls of 5 s; coreos/grafiti#89
# waits because the elastic IP cannot be released while the NAT gateway is still deleting).
NAT_DELETION = 60

# How long an Application Load Balancer is `provisioning`. AWS says only that it "can take a few
# minutes"; CI runs report it active within about 2-3 minutes, rarely more than 5
# (hashicorp/terraform#24799). terraform-provider-aws waits up to 10 minutes (an upper limit).
LOAD_BALANCER_PROVISIONING = 150

# How long ACM takes to issue a certificate once its validation CNAMEs are served. ACM's docs
# say validation "can take up to 30 minutes"; with the records in a Route 53 public zone of the
# same account it typically completes in about a minute (the wait in src/aws/acm.rs: "usually
# completes within minutes of the CNAME being served").
CERTIFICATE_VALIDATION = 60

# ACM gives up on a DNS validation after 72 hours: the status becomes VALIDATION_TIMED_OUT
# (ACM User Guide, "Troubleshoot DNS validation problems").
CERTIFICATE_TIMEOUT = 72 * 3600

ANYWHERE = "0.0.0.0/0"

# A private ECR image: <account>.dkr.ecr.<region>.amazonaws.com/<repository>[:tag|@digest].
ECR_IMAGE = re.compile(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com/")


# ---------------------------------------------------------------------------------------------
# Reachability (ecs.py's questions)


def task_network_failure(account_id, region, subnet_id, public_ip, image, uses_awslogs, secret_arns):
    """Why a Fargate task in `subnet_id` cannot start, as the stopped reason AWS gives, or None
    when its network reaches everything it needs.

    `public_ip` is the service's assignPublicIp == ENABLED; `image` the container's image;
    `uses_awslogs` whether a container logs with awslogs; `secret_arns` the `valueFrom` of its
    secrets (Secrets Manager or SSM ARNs, or SSM parameter names). For a task of several
    containers, ask once per container (its image, its log driver, its secrets); the first
    reason is the task's. Deterministic: the same network and arguments give the same text.

    The task's subnet reaches the internet when the 0.0.0.0/0 route of its route table (its
    explicit association, else the VPC's main table) goes to an internet gateway attached to the
    VPC and the task has a public IP, or to an `available` public NAT gateway whose own subnet
    routes 0.0.0.0/0 to such an internet gateway. Without the internet, AWS services are
    reached only through the VPC's interface endpoints (`com.amazonaws.<region>.<service>`,
    available, private DNS on) and S3 through a gateway endpoint on the task's route table.

    The Fargate agent fetches in this order, and the first failure is the reason:
    1. ECR registry auth (private ECR images): internet or the ecr.api endpoint, else
       `ResourceInitializationError: unable to pull secrets or registry auth: ... unable to
       retrieve ecr registry auth ...`;
    2. secrets: Secrets Manager / SSM through the internet or the secretsmanager / ssm endpoint,
       else `ResourceInitializationError: ... unable to retrieve secret from asm ...` /
       `... unable to retrieve secrets from ssm ...`;
    3. the image: internet, or for a private ECR image of this region the ecr.dkr endpoint and
       the s3 gateway endpoint, else `CannotPullContainerError: ...`;
    4. awslogs: internet or the logs endpoint, else `ResourceInitializationError: failed to
       validate logger args: ...`.
    Wording as in AWS's "Stopped tasks error codes" and the re:Post articles "ecs-unable-to-pull-
    secrets" and "ecs-fargate-pull-container-error"."""
    ec2 = ec2_backends[account_id][region]
    subnet = ec2.get_subnet(subnet_id)
    table = route_table_of(ec2, subnet)
    online = reaches_internet(ec2, subnet.vpc_id, table, public_ip)
    endpoints = endpoint_services(ec2, region, subnet.vpc_id, table)

    def reaches(service):
        return online or service in endpoints

    ecr = ECR_IMAGE.match(image)
    ecr_here = bool(ecr) and ecr.group(2) == region
    if ecr and not (online or (ecr_here and "ecr.api" in endpoints)):
        return (
            "ResourceInitializationError: unable to pull secrets or registry auth: execution resource "
            "retrieval failed: unable to retrieve ecr registry auth: service call has been retried 3 "
            f'time(s): RequestError: send request failed caused by: Post "https://api.ecr.{ecr.group(2)}'
            f'.amazonaws.com/": dial tcp {public_address("api.ecr." + ecr.group(2))}:443: i/o timeout. '
            "Please check your task network configuration."
        )
    for arn in secret_arns:
        service, secret_region = secret_service(arn, region)
        if online or (secret_region == region and service in endpoints):
            continue
        if service == "secretsmanager":
            return (
                "ResourceInitializationError: unable to pull secrets or registry auth: execution "
                "resource retrieval failed: unable to retrieve secret from asm: service call has been "
                f"retried 5 time(s): failed to fetch secret {arn} from secrets manager: RequestCanceled: "
                "request context canceled caused by: context deadline exceeded. Please check your task "
                "network configuration."
            )
        return (
            "ResourceInitializationError: unable to pull secrets or registry auth: execution resource "
            "retrieval failed: unable to retrieve secrets from ssm: service call has been retried 5 "
            "time(s): RequestCanceled: request context canceled caused by: context deadline exceeded. "
            "Please check your task network configuration."
        )
    if not online:
        if not (ecr_here and "ecr.dkr" in endpoints):
            return pull_failure(image)
        if "s3" not in endpoints:
            bucket = f"prod-{region}-starport-layer-bucket.s3.{region}.amazonaws.com"
            return (
                "CannotPullContainerError: ref pull has been retried 5 time(s): failed to copy: "
                f'httpReadSeeker: failed open: failed to do request: Get "https://{bucket}/'
                f'{hashlib.sha256(image.encode()).hexdigest()[:40]}": dial tcp {public_address(bucket)}'
                ":443: i/o timeout"
            )
    if uses_awslogs and not reaches("logs"):
        return (
            "ResourceInitializationError: failed to validate logger args: create stream has been "
            "retried 1 times: failed to create Cloudwatch log stream: RequestError: send request "
            f'failed caused by: Post "https://logs.{region}.amazonaws.com/": dial tcp '
            f"{public_address('logs.' + region)}:443: i/o timeout : exit status 1"
        )
    return None


def admits_load_balancer(account_id, region, security_group_ids, load_balancer_arn, port):
    """True when one of `security_group_ids` has an ingress rule (TCP or all traffic, covering
    `port`) whose source is one of the load balancer's security groups, or a CIDR that covers
    every subnet of the load balancer (its nodes, which send the health checks, live there).
    False for a load balancer that does not exist."""
    balancer = elbv2_models.elbv2_backends[account_id][region].load_balancers.get(load_balancer_arn)
    if balancer is None:
        return False
    ec2 = ec2_backends[account_id][region]
    sources = set(balancer.security_groups or [])
    if not sources:
        # A load balancer created without security groups gets the VPC's default group.
        sources = {g.id for g in ec2.groups.get(balancer.vpc_id, {}).values() if g.name == "default"}
    networks = [ipaddress.ip_network(s.cidr_block) for s in balancer.subnets]
    for group_id in security_group_ids:
        group = ec2.get_security_group_from_id(group_id)
        for rule in group.ingress_rules if group else []:
            if rule.ip_protocol not in ("tcp", "-1"):
                continue
            if rule.ip_protocol == "tcp" and not rule.from_port <= port <= rule.to_port:
                continue
            if rule.source_group.get("GroupId") in sources:
                return True
            cidr = rule.ip_range.get("CidrIp")
            if cidr and networks and all(n.subnet_of(ipaddress.ip_network(cidr)) for n in networks):
                return True
    return False


def load_balancer_active(account_id, region, load_balancer_arn):
    """True once the load balancer is `active` (its health checks start then); False while it
    provisions or when it does not exist."""
    balancer = elbv2_models.elbv2_backends[account_id][region].load_balancers.get(load_balancer_arn)
    return balancer is not None and balancer.state == "active"


def route_table_of(ec2, subnet):
    """The subnet's route table: the one it is explicitly associated with, else the VPC's main
    table (VPC User Guide, "Subnet route tables")."""
    tables = [t for t in ec2.route_tables.values() if t.vpc_id == subnet.vpc_id]
    for table in tables:
        if subnet.id in table._associations.values():
            return table
    return next((t for t in tables if t.main_association_id), None)


def default_route(table):
    """The table's 0.0.0.0/0 route, or None."""
    if table is None:
        return None
    return next((r for r in table.routes if r.destination_cidr_block == ANYWHERE), None)


def is_attached_igw(gateway, vpc_id):
    return isinstance(gateway, InternetGateway) and gateway.vpc is not None and gateway.vpc.id == vpc_id


def vpc_has_igw(ec2, vpc_id):
    return any(is_attached_igw(g, vpc_id) for g in ec2.internet_gateways.values())


def reaches_internet(ec2, vpc_id, table, public_ip):
    """Whether traffic from a network interface (with a public IP or not) in a subnet using
    `table` reaches the internet."""
    route = default_route(table)
    if route is None:
        return False
    if is_attached_igw(route.gateway, vpc_id):
        return bool(public_ip)
    nat = route.nat_gateway
    if nat is None or nat.state != "available" or nat.connectivity_type == "private":
        return False
    nat_subnet = ec2.get_subnet(nat.subnet_id)
    return is_attached_igw(getattr(default_route(route_table_of(ec2, nat_subnet)), "gateway", None), vpc_id)


def endpoint_services(ec2, region, vpc_id, table):
    """The services (`ecr.api`, `logs`, `s3`, ...) the VPC's endpoints serve to a subnet using
    `table`: interface endpoints with private DNS serve the whole VPC (the service's name then
    resolves to them); a gateway endpoint serves the route tables it is on."""
    prefix = f"com.amazonaws.{region}."
    services = set()
    for endpoint in ec2.vpc_end_points.values():
        if endpoint.vpc_id != vpc_id or endpoint.state != "available":
            continue
        if not endpoint.service_name.startswith(prefix):
            continue
        service = endpoint.service_name[len(prefix):]
        if (endpoint.vpc_endpoint_type or "Gateway").lower() == "gateway":
            if table is not None and table.id in (endpoint.route_table_ids or []):
                services.add(service)
        elif endpoint.private_dns_enabled is not False:
            services.add(service)
    return services


def secret_service(value_from, region):
    """(`secretsmanager` or `ssm`, region) of a secret's `valueFrom` (an SSM parameter may be
    given by name: then it is in the task's region)."""
    parts = value_from.split(":")
    if value_from.startswith("arn:") and len(parts) > 3:
        return ("secretsmanager" if parts[2] == "secretsmanager" else "ssm"), parts[3]
    return "ssm", region


def pull_failure(image):
    """CannotPullContainerError for an image whose registry cannot be reached."""
    name, reference = image, "latest"
    if "@" in name:
        name, reference = name.split("@", 1)
    elif ":" in name.rsplit("/", 1)[-1]:
        name, reference = name.rsplit(":", 1)
    first = name.split("/", 1)[0]
    if "/" in name and ("." in first or ":" in first or first == "localhost"):
        host, path = name.split("/", 1)
    else:
        host, path = "docker.io", name if "/" in name else f"library/{name}"
    ref = f"{host}/{path}{'@' if reference.startswith('sha256:') else ':'}{reference}"
    server = "registry-1.docker.io" if host == "docker.io" else host
    return (
        f"CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve "
        f'ref {ref}: failed to do request: Head "https://{server}/v2/{path}/manifests/{reference}": '
        f"dial tcp {public_address(server)}:443: i/o timeout"
    )


def public_address(host):
    """A stable public IPv4 address for a host name, for the `dial tcp` part of a reason."""
    digest = hashlib.sha256(host.encode()).digest()
    return f"52.{digest[0]}.{digest[1]}.{digest[2] or 1}"


# ---------------------------------------------------------------------------------------------
# NAT gateways


def patch_nat_gateways():
    original_create = NatGatewayBackend.create_nat_gateway
    original_delete = NatGatewayBackend.delete_nat_gateway

    def create_nat_gateway(self, subnet_id, allocation_id, tags=None, connectivity_type="public"):
        nat = original_create(self, subnet_id, allocation_id, tags, connectivity_type)
        nat.state = "pending"
        nat.failure_code = nat.failure_message = nat.delete_time = None
        clock.record("nat_gateway", nat.id, "pending")
        if connectivity_type != "private" and not vpc_has_igw(self, nat.vpc_id):
            # VPC User Guide, "Troubleshoot NAT gateways": a public NAT gateway in a VPC without
            # an internet gateway goes to `failed` with this message.
            clock.after(NAT_PROVISIONING, lambda: fail(self, nat))
        else:
            clock.after(NAT_PROVISIONING, lambda: settle(nat, "pending", "available"))
        return nat

    def delete_nat_gateway(self, nat_gateway_id):
        nat = self.nat_gateways.get(nat_gateway_id)
        before = nat.state if nat else None
        nat = original_delete(self, nat_gateway_id)
        if before in ("deleting", "deleted"):
            nat.state = before
            return nat
        nat.state = "deleting"
        clock.record("nat_gateway", nat.id, "deleting")
        clock.after(NAT_DELETION, lambda: deleted(self, nat))
        return nat

    NatGatewayBackend.create_nat_gateway = create_nat_gateway
    NatGatewayBackend.delete_nat_gateway = delete_nat_gateway

    original_release = ElasticAddressBackend.release_address

    def release_address(self, address=None, allocation_id=None):
        # The elastic IP of a NAT gateway that is not deleted yet cannot be released: AWS answers
        # AuthFailure (kubernetes/kops#938, genevieve/leftovers#33, eformat/sno-for-100#5).
        eips = self.address_by_ip([address]) if address else self.address_by_allocation([allocation_id])
        holder = eips[0].eni if eips else None
        if holder is not None and any(n._eni is holder for n in self.nat_gateways.values()):
            raise EC2ClientError("AuthFailure", "You do not have permission to access the specified resource.")
        return original_release(self, address, allocation_id)

    ElasticAddressBackend.release_address = release_address


def settle(resource, expected, state):
    """Moves a NAT gateway or load balancer from `expected` to `state` (unless it moved on)."""
    if resource.state == expected:
        resource.state = state
        clock.record(kind_of(resource), resource_id(resource), state)


def kind_of(resource):
    return "load_balancer" if isinstance(resource, elbv2_models.FakeLoadBalancer) else "nat_gateway"


def resource_id(resource):
    return resource.arn if isinstance(resource, elbv2_models.FakeLoadBalancer) else resource.id


def fail(ec2, nat):
    if nat.state != "pending":
        return
    nat.failure_code = "Gateway.NotAttached"
    nat.failure_message = f"Network {nat.vpc_id} has no Internet gateway attached"
    release_interface(ec2, nat)
    settle(nat, "pending", "failed")


def deleted(ec2, nat):
    if nat.state != "deleting":
        return
    nat.delete_time = iso_8601_datetime_with_milliseconds(clock.utcnow())
    release_interface(ec2, nat)
    settle(nat, "deleting", "deleted")


def release_interface(ec2, nat):
    """A NAT gateway that is gone no longer holds its elastic IP or its network interface."""
    eni = nat._eni
    for address in ec2.addresses:
        if address.eni is eni:
            ec2.disassociate_address(address=address.public_ip)
    for entry in nat.address_set:
        entry.pop("associationId", None)
    ec2.enis.pop(eni.id, None)


def patch_routes():
    """Routes to a NAT gateway or a gateway go on the timeline (when deckhand routed through a
    NAT gateway, compared with when it became available)."""
    original_create_route = RouteBackend.create_route

    def create_route(self, route_table_id, destination_cidr_block, *args, **kwargs):
        route = original_create_route(self, route_table_id, destination_cidr_block, *args, **kwargs)
        target = route.nat_gateway or route.gateway
        if target is not None:
            destination = destination_cidr_block or route.destination_ipv6_cidr_block
            clock.record("route", f"{route_table_id} {destination}", f"to {target.id}")
        return route

    RouteBackend.create_route = create_route


def patch_default_vpc():
    """The default VPC comes with an internet gateway, attached, and its main route table routes
    0.0.0.0/0 to it (VPC User Guide, "Default VPC components"); moto creates neither."""
    original = VPCBackend.create_default_vpc

    def create_default_vpc(self):
        vpc = original(self)
        gateway = self.create_internet_gateway()
        self.attach_internet_gateway(gateway.id, vpc.id)
        main = next(t for t in self.route_tables.values() if t.vpc_id == vpc.id and t.main_association_id)
        self.create_route(main.id, ANYWHERE, gateway_id=gateway.id)
        return vpc

    VPCBackend.create_default_vpc = create_default_vpc


# ---------------------------------------------------------------------------------------------
# Internet gateways and VPCs


def mapped_public_addresses(ec2, vpc_id):
    """What maps public addresses in the VPC (one line each): elastic IPs on its interfaces (NAT
    gateways' among them), its internet-facing load balancers (their nodes have public addresses),
    its tasks with a public IP that have not stopped."""
    mapped = []
    for address in ec2.addresses:
        eni = address.eni
        if eni is not None and getattr(eni.subnet, "vpc_id", None) == vpc_id:
            mapped.append(f"elastic IP {address.public_ip}")
    elbv2 = elbv2_models.elbv2_backends[ec2.account_id][ec2.region_name]
    for balancer in elbv2.load_balancers.values():
        if balancer.vpc_id == vpc_id and (balancer.scheme or "internet-facing") == "internet-facing":
            mapped.append(f"load balancer {balancer.name}")
    ecs = ecs_models.ecs_backends[ec2.account_id][ec2.region_name]
    for tasks in ecs.tasks.values():
        for task in tasks.values():
            awsvpc = (getattr(task, "network_configuration", None) or {}).get("awsvpcConfiguration") or {}
            if task.last_status == "STOPPED" or awsvpc.get("assignPublicIp") != "ENABLED":
                continue
            if any(ec2.get_subnet(subnet).vpc_id == vpc_id for subnet in awsvpc.get("subnets") or []):
                mapped.append(f"task {task.task_arn}")
    return mapped


def patch_internet_gateways_and_vpcs():
    original_detach = InternetGatewayBackend.detach_internet_gateway

    def detach_internet_gateway(self, internet_gateway_id, vpc_id):
        # DetachInternetGateway: "The VPC must not contain any running EC2 instances with Elastic
        # IP addresses or public IPv4 addresses" (EC2 API reference); AWS answers
        # DependencyViolation "Network vpc-... has some mapped public address(es). Please unmap
        # those public address(es) before detaching the gateway." (terraform-provider-aws retries
        # the detach on it: internal/service/ec2/vpc_internet_gateway.go, detachInternetGateway).
        gateway = self.get_internet_gateway(internet_gateway_id)
        if gateway.vpc is not None and gateway.vpc.id == vpc_id and mapped_public_addresses(self, vpc_id):
            raise DependencyViolationError(
                f"Network {vpc_id} has some mapped public address(es). "
                "Please unmap those public address(es) before detaching the gateway."
            )
        return original_detach(self, internet_gateway_id, vpc_id)

    InternetGatewayBackend.detach_internet_gateway = detach_internet_gateway

    original_delete_vpc = VPCBackend.delete_vpc

    def delete_vpc(self, vpc_id):
        # DeleteVpc: "You must detach or delete all gateways and resources that are associated
        # with the VPC before you can delete it. For example, you must terminate all instances
        # running in the VPC, delete all security groups associated with the VPC (except the
        # default one), delete all route tables associated with the VPC (except the default
        # one), and so on." (EC2 API reference). moto checks subnets, route tables and VPN
        # gateways only.
        attached = [g for g in self.internet_gateways.values() if is_attached_igw(g, vpc_id)]
        groups = [g for g in self.groups.get(vpc_id, {}).values() if g.name != "default"]
        endpoints = [e for e in self.vpc_end_points.values() if e.vpc_id == vpc_id and e.state != "deleted"]
        if attached or groups or endpoints:
            raise DependencyViolationError(f"The vpc '{vpc_id}' has dependencies and cannot be deleted.")
        return original_delete_vpc(self, vpc_id)

    VPCBackend.delete_vpc = delete_vpc


# ---------------------------------------------------------------------------------------------
# Load balancers


def patch_load_balancers():
    # moto makes a load balancer active on the first DescribeLoadBalancers; the clock does.
    elbv2_models.FakeLoadBalancer.activate = lambda self: None
    Backend = elbv2_models.ELBv2Backend
    original_create = Backend.create_load_balancer
    original_delete = Backend.delete_load_balancer

    def create_load_balancer(self, *args, **kwargs):
        balancer = original_create(self, *args, **kwargs)
        # AWS's default scheme (moto keeps none when the request names none).
        balancer.scheme = balancer.scheme or "internet-facing"
        clock.record("load_balancer", balancer.arn, balancer.state)
        if balancer.scheme == "internet-facing" and not vpc_has_igw(self.ec2_backend, balancer.vpc_id):
            # An internet-facing load balancer in a VPC without an internet gateway never leaves
            # `provisioning` (hashicorp/terraform#11333: "the ALB remains stuck in provisioning
            # state if it has no IGW and is set to public").
            return balancer
        clock.after(LOAD_BALANCER_PROVISIONING, lambda: settle(balancer, "provisioning", "active"))
        return balancer

    def delete_load_balancer(self, arn):
        if arn in self.load_balancers:
            clock.record("load_balancer", arn, "deleted")
        return original_delete(self, arn)

    Backend.create_load_balancer = create_load_balancer
    Backend.delete_load_balancer = delete_load_balancer


def patch_listener_certificates():
    """CreateListener and ModifyListener refuse an ACM certificate that is not ISSUED yet with
    UnsupportedCertificate (ELBv2 API reference, CreateListener and ModifyListener, "Errors";
    its message speaks of the domain name, signature and key size, whatever the cause: as real
    runs show, hashicorp/terraform-provider-aws#26245 and #41789, DataBiosphere/azul#8321).
    moto accepts any certificate ARN on CreateListener."""
    Backend = elbv2_models.ELBv2Backend
    original_create = Backend.create_listener
    original_modify = Backend.modify_listener

    def refuse_unissued(backend, arn):
        acm = (acm_models.acm_backends.get(backend.account_id) or {}).get(backend.region_name)
        cert = acm._certificates.get(arn) if acm is not None and arn else None
        if cert is not None and cert.status != "ISSUED":
            raise ELBClientError(
                "UnsupportedCertificate",
                f"The certificate '{arn}' must have a fully-qualified domain name, a supported signature, "
                "and a supported key size.",
            )

    def create_listener(self, load_balancer_arn, protocol, port, ssl_policy, certificate, *args, **kwargs):
        refuse_unissued(self, certificate)
        return original_create(self, load_balancer_arn, protocol, port, ssl_policy, certificate, *args, **kwargs)

    def modify_listener(self, arn, port=None, protocol=None, ssl_policy=None, certificates=None, *args, **kwargs):
        for cert in certificates or []:
            refuse_unissued(self, cert.get("CertificateArn"))
        return original_modify(self, arn, port, protocol, ssl_policy, certificates, *args, **kwargs)

    Backend.create_listener = create_listener
    Backend.modify_listener = modify_listener


# ---------------------------------------------------------------------------------------------
# ACM certificates


def patch_certificates():
    Bundle = acm_models.CertBundle
    Backend = acm_models.AWSCertificateManagerBackend
    original_describe = Bundle.describe
    original_request = Backend.request_certificate

    def check(self):
        # Only expiry: issuance is the model's (moto issues after MOTO_ACM_VALIDATION_WAIT).
        if self._not_valid_after(self._cert) <= acm_models.utcnow():
            self.status = "EXPIRED"

    def describe(self):
        result = original_describe(self)
        if self.type != "AMAZON_ISSUED":
            return result
        certificate = result["Certificate"]
        issued_at = getattr(self, "issued_at", None)
        if self.status == "ISSUED" and issued_at is not None:
            certificate["IssuedAt"] = certificate["NotBefore"] = acm_models.datetime_to_epoch(issued_at)
        elif self.status != "ISSUED":
            # AWS shows no validity, serial or issue time before it issues.
            for field in ("IssuedAt", "NotBefore", "NotAfter", "Serial"):
                certificate.pop(field, None)
        domain_status = {"ISSUED": "SUCCESS", "PENDING_VALIDATION": "PENDING_VALIDATION"}.get(self.status, "FAILED")
        for option in certificate.get("DomainValidationOptions", []):
            option["ValidationStatus"] = domain_status
        return result

    def request_certificate(self, domain_name, idempotency_token, subject_alt_names, tags, *args, **kwargs):
        arn = original_request(self, domain_name, idempotency_token, subject_alt_names, tags, *args, **kwargs)
        cert = self._certificates[arn]
        if cert.type == "AMAZON_ISSUED" and not hasattr(cert, "issued_at"):
            cert.issued_at = None
            cert.issuing = None
            clock.record("certificate", arn, cert.status)
            clock.after(CERTIFICATE_TIMEOUT, lambda: time_out(cert))
            consider(self.account_id, cert)
        return arn

    Bundle.check = check
    Bundle.describe = describe
    Backend.request_certificate = request_certificate

    original_change = route53_models.Route53Backend.change_resource_record_sets

    def change_resource_record_sets(self, zoneid, change_list):
        original_change(self, zoneid, change_list)
        for backend in dict.values(acm_models.acm_backends.get(self.account_id) or {}):
            for cert in list(backend._certificates.values()):
                consider(self.account_id, cert)

    route53_models.Route53Backend.change_resource_record_sets = change_resource_record_sets


def validation_records(cert):
    """The (name, value) CNAMEs ACM asks for, normalised."""
    options = acm_models.CertBundle.describe(cert)["Certificate"].get("DomainValidationOptions", [])
    return {(normalise(o["ResourceRecord"]["Name"]), normalise(o["ResourceRecord"]["Value"])) for o in options}


def normalise(name):
    return name.strip().rstrip(".").lower()


def served(account_id, name, value):
    """Whether a public hosted zone of the account that holds `name` has it as a CNAME to
    `value` (private zones answer only inside their VPCs, where ACM does not look)."""
    for backend in dict.values(route53_models.route53_backends.get(account_id) or {}):
        for zone in backend.zones.values():
            zone_name = normalise(zone.name)
            if zone.private_zone or not (name == zone_name or name.endswith("." + zone_name)):
                continue
            for rrset in zone.rrsets:
                if normalise(rrset.name) != name or rrset.type != "CNAME":
                    continue
                values = [r.get("Value", "") if isinstance(r, dict) else r for r in rrset.records or []]
                if any(normalise(v) == value for v in values):
                    return True
    return False


def validated(account_id, cert):
    records = validation_records(cert)
    return bool(records) and all(served(account_id, name, value) for name, value in records)


def consider(account_id, cert):
    """Starts issuing a pending certificate once all its records are served."""
    if not hasattr(cert, "issuing") or cert.issuing is not None or cert.status != "PENDING_VALIDATION":
        return
    if validated(account_id, cert):
        clock.record("certificate", cert.arn, "validation records served")
        cert.issuing = clock.after(CERTIFICATE_VALIDATION, lambda: issue(account_id, cert))


def issue(account_id, cert):
    """ACM checks the records again when it issues: removed meanwhile, it keeps waiting."""
    cert.issuing = None
    if cert.status != "PENDING_VALIDATION":
        return
    if not validated(account_id, cert):
        return
    cert.status = "ISSUED"
    cert.issued_at = clock.utcnow()
    clock.record("certificate", cert.arn, "ISSUED")


def time_out(cert):
    if cert.status == "PENDING_VALIDATION":
        cert.status = "VALIDATION_TIMED_OUT"
        if cert.issuing is not None:
            cert.issuing.cancel()
            cert.issuing = None
        clock.record("certificate", cert.arn, "VALIDATION_TIMED_OUT")


def install():
    patch_default_vpc()
    patch_internet_gateways_and_vpcs()
    patch_nat_gateways()
    patch_routes()
    patch_load_balancers()
    patch_listener_certificates()
    patch_certificates()
