"""What the reconciler applies is what Felix enforces: real packets between namespaces."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.cluster.client import Cluster
from reconciler.localcluster.dataplane import ADMIN_IP
from reconciler.localcluster.probe import listening, probe, wait_verdict
from tests.cluster.engine import Repo, reconcile
from tests.dataplane.helpers import Net


@pytest.fixture
def repo(tmp_path: Path, uid: str) -> Repo:
    return Repo(tmp_path / "repo", uid)


def host_endpoint(node: str, ip: str) -> dict[str, Any]:
    return {
        "apiVersion": "projectcalico.org/v3",
        "kind": "HostEndpoint",
        "metadata": {"name": f"{node}-all", "labels": {"dp-test": "yes"}},
        "spec": {"node": node, "interfaceName": "*", "expectedIPs": [ip]},
    }


def allow_ssh_from(cidr: str) -> dict[str, Any]:
    return {
        "apiVersion": "projectcalico.org/v3",
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": "ssh-from-admins"},
        "spec": {
            "order": 10,
            "selector": "has(dp-test)",
            "types": ["Ingress"],
            "ingress": [
                {
                    "action": "Allow",
                    "protocol": "TCP",
                    "source": {"nets": [cidr]},
                    "destination": {"ports": [22]},
                }
            ],
        },
    }


def test_host_endpoint_closes_the_node_and_a_policy_opens_ssh_to_admins_only(
    net: Net, dp_cluster: Cluster, repo: Repo
) -> None:
    node, other = net.dp.node("node-1"), net.dp.node("node-2")
    admin, outside = net.dp.admin, net.dp.outside
    assert probe(admin, node.ip, "tcp", 22) and probe(outside, node.ip, "tcp", 8080)

    repo.write("hep.yaml", host_endpoint("node-1", node.ip))
    assert reconcile(dp_cluster, repo)[1].ok
    wait_verdict(admin, node.ip, 22, allowed=False)
    assert not probe(admin, node.ip, "tcp", 8080)  # no policy: Felix drops everything
    assert probe(admin, other.ip, "tcp", 8080)  # a node without an endpoint is not policed

    repo.write("ssh.yaml", allow_ssh_from("172.30.0.0/24"))
    assert reconcile(dp_cluster, repo)[1].ok
    wait_verdict(admin, node.ip, 22, allowed=True)
    assert not probe(outside, node.ip, "tcp", 22)  # not from the admin network
    assert not probe(admin, node.ip, "tcp", 8080)  # only SSH


def test_probe_negative_control_a_port_nobody_listens_on_is_refused(net: Net) -> None:
    """The probe reports what the network does: no listener means no connection."""
    node = net.dp.node("node-3")
    assert net.dp.place("node-3") == (node.netns, node.ip)
    assert net.dp.place("admin") == (net.dp.admin, ADMIN_IP)
    assert not probe(net.dp.admin, node.ip, "tcp", 2222)
    with listening(node.netns, node.ip, 2222):
        assert probe(net.dp.admin, node.ip, "tcp", 2222)
    with listening(node.netns, node.ip, 5353, "udp"):
        assert probe(net.dp.admin, node.ip, "udp", 5353)
    assert not probe(net.dp.admin, node.ip, "udp", 5353, timeout=0.3)
