"""Templates follow the live inventory within seconds: Node and Namespace watches."""

from __future__ import annotations

from typing import Any

from reconciler.cluster.client import NODES, Cluster
from tests.controller.conftest import StartController
from tests.controller.helpers import HEP, eventually, policy_yaml, settle
from tests.source.repos import Upstream


def _template(uid: str) -> dict[str, Any]:
    return {
        "apiVersion": "policy-reconciler.io/v1alpha1",
        "kind": "HostEndpointTemplate",
        "metadata": {"name": "fw"},
        "spec": {"nodeSelector": f"pool == '{uid}'", "labels": {"host-endpoint": "ingress"}},
    }


def _node(name: str, uid: str, ip: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"pool": uid}},
        "status": {"addresses": [{"type": "InternalIP", "address": ip}]},
    }


def test_a_new_node_gets_its_host_endpoint_within_seconds_not_an_interval(
    start_controller: StartController, upstream: Upstream, cluster: Cluster, uid: str
) -> None:
    cluster.create(NODES, _node(f"{uid}-a", uid, "10.250.1.1"))
    upstream.commit({"hosts.yaml": policy_yaml(_template(uid))})
    controller = start_controller(interval=3600, max_prune=1.0)  # 1 of 2 is over 30%
    assert controller.runner.wait_idle(runs=1, timeout=30), "the startup run never finished"
    assert cluster.get(HEP, f"{uid}-a-fw") is not None
    eventually(controller.watches.listening, timeout=10, what="watches started")
    settle(controller)  # the follow-up runs of startup are over: only a watch can act now

    cluster.create(NODES, _node(f"{uid}-b", uid, "10.250.1.2"))
    hep = eventually(
        lambda: cluster.get(HEP, f"{uid}-b-fw"), timeout=10, what="host endpoint for the new node"
    )
    assert hep["spec"]["expectedIPs"] == ["10.250.1.2"]

    # A status-only change (a kubelet heartbeat) does not re-plan; a new address does.
    runs = controller.runner.runs
    cluster.request(
        "PATCH",
        NODES.path("", f"{uid}-b") + "/status",
        verb="patch",
        body={"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}},
        content_type="application/merge-patch+json",
    )
    cluster.request(
        "PATCH",
        NODES.path("", f"{uid}-b") + "/status",
        verb="patch",
        body={"status": {"addresses": [{"type": "InternalIP", "address": "10.250.1.3"}]}},
        content_type="application/merge-patch+json",
    )
    eventually(
        lambda: (
            (cluster.get(HEP, f"{uid}-b-fw") or {}).get("spec", {}).get("expectedIPs")
            == ["10.250.1.3"]
        ),
        timeout=10,
        what="the new address",
    )
    assert controller.runner.runs <= runs + 2

    cluster.delete(NODES, f"{uid}-b")
    eventually(
        lambda: cluster.get(HEP, f"{uid}-b-fw") is None,
        timeout=10,
        what="the deleted node's host endpoint pruned",
    )
