"""Calico's automatic host endpoints with the example's master/worker policies: SSH stays
open only through Felix's failsafe ports (the policies do not allow it)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.cluster.client import NODES, Cluster
from reconciler.localcluster import kubectl
from reconciler.localcluster.probe import probe, wait_verdict
from tests.cluster.engine import Repo, reconcile
from tests.dataplane.helpers import Net, default_failsafe

EXAMPLE = Path(__file__).resolve().parents[2] / "example-repo"
WITH_FAILSAFE = ("node-1", "node-2")  # node-3 keeps Felix without them: the control


@pytest.fixture
def failsafe(net: Net) -> Iterator[None]:
    with default_failsafe(net, WITH_FAILSAFE):
        yield


def auto_host_endpoint(node: dict[str, Any]) -> dict[str, Any]:
    """What calico-kube-controllers makes per Node with autoCreate: Enabled."""
    name = node["metadata"]["name"]
    ips = [a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP"]
    return {
        "apiVersion": "crd.projectcalico.org/v1",
        "kind": "HostEndpoint",
        "metadata": {"name": f"{name}-auto-hep", "labels": node["metadata"]["labels"]},
        "spec": {
            "node": name,
            "interfaceName": "*",
            "expectedIPs": ips,
            "profiles": ["projectcalico-default-allow"],
        },
    }


def test_master_and_worker_policies_keep_ssh_open_only_through_failsafe(
    net: Net, dp_cluster: Cluster, failsafe: None, tmp_path: Path, uid: str
) -> None:
    root = tmp_path / "repo" / "hosts"
    root.mkdir(parents=True)
    shutil.copy(EXAMPLE / "hosts" / "automatic-host-endpoints.yaml", root)
    assert reconcile(dp_cluster, Repo(root.parent, uid))[1].ok
    heps = [auto_host_endpoint(n) for n in dp_cluster.list(NODES) if n["metadata"]["name"]
            in {node.name for node in net.dp.nodes}]  # fmt: skip
    kubectl(net.info, "apply", "-f", "-", stdin=json.dumps({"kind": "List", "apiVersion": "v1",
                                                             "items": heps}))  # fmt: skip
    admin = net.dp.admin
    master, worker, control = (net.dp.node(n) for n in ("node-1", "node-2", "node-3"))
    wait_verdict(admin, master.ip, 8080, allowed=False)  # the endpoints are enforced
    wait_verdict(admin, control.ip, 8080, allowed=False)
    verdicts = {
        "master SSH (failsafe)": probe(admin, master.ip, "tcp", 22),
        "master API server (policy)": probe(admin, master.ip, "tcp", 6443),
        "worker SSH (failsafe)": probe(admin, worker.ip, "tcp", 22),
        "worker other port": probe(admin, worker.ip, "tcp", 8080),
        "node-3 SSH, no failsafe": probe(admin, control.ip, "tcp", 22),
    }
    assert verdicts == {
        "master SSH (failsafe)": True,
        "master API server (policy)": True,
        "worker SSH (failsafe)": True,
        "worker other port": False,
        "node-3 SSH, no failsafe": False,
    }
