"""`connectivity eval` without --inventory: reads the live cluster (one LIST per kind) and
evaluates the firewall objects there that the repo does not manage, next to the repo's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from reconciler.cluster.client import NODES, Cluster, ResourceType
from reconciler.localcluster import ClusterInfo

NODE_IP = "10.249.0.1"  # a node of our own: other tests leave host endpoints on node-1..3


def _cli(*args: str, kubeconfig: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "KUBECONFIG": kubeconfig, "NO_COLOR": "1"}
    command = [sys.executable, "-m", "reconciler", "connectivity", *args]
    return subprocess.run(
        command, capture_output=True, text=True, env=env, check=False, timeout=120
    )


def _crd(cluster: Cluster, kind: str) -> ResourceType:
    found = cluster.resources("crd.projectcalico.org/v1") or {}
    return found[kind]


def _node(name: str) -> dict[str, Any]:
    addresses = [{"type": "InternalIP", "address": NODE_IP}]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name},
        "status": {"addresses": addresses},
    }


def _hep(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "crd.projectcalico.org/v1",
        "kind": "HostEndpoint",
        "metadata": {"name": name, "labels": {name: "yes"}},
        "spec": {"node": f"{name}-node", "interfaceName": "*", "expectedIPs": [NODE_IP]},
    }


def _gnp(name: str, port: int) -> dict[str, Any]:
    rule = {"action": "Allow", "protocol": "TCP", "destination": {"ports": [port]}}
    return {
        "apiVersion": "crd.projectcalico.org/v1",
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": name},
        "spec": {
            "order": 1,
            "selector": f"{name.removesuffix('-allow')} == 'yes'",
            "types": ["Ingress"],
            "ingress": [rule],
        },
    }


def test_live_unmanaged_objects_act_and_the_repo_version_wins(
    control_plane: ClusterInfo, cluster: Cluster, uid: str, tmp_path: Path
) -> None:
    cluster.create(NODES, _node(f"{uid}-node"))
    cluster.apply(_crd(cluster, "HostEndpoint"), _hep(uid))
    cluster.apply(_crd(cluster, "GlobalNetworkPolicy"), _gnp(f"{uid}-allow", 8080))
    repo = tmp_path / "repo"
    repo.mkdir()
    kube = control_plane.kubeconfig
    base = [
        "eval",
        str(repo),
        "--from",
        "cidr:198.51.100.1",
        "--to",
        f"node:{uid}-node",
        "-o",
        "json",
    ]
    try:
        allowed = _cli(*base, "--port", "tcp/8080", kubeconfig=kube)
        assert allowed.returncode == 0, allowed.stdout + allowed.stderr
        step = json.loads(allowed.stdout)["path"][-1]
        assert step["origin"] == f"cluster GlobalNetworkPolicy/{uid}-allow"
        denied = _cli(*base, "--port", "tcp/8081", kubeconfig=kube)
        assert denied.returncode == 1, denied.stdout + denied.stderr  # HEP without profile
        # The repo manages the same policy, allowing 9090 instead: its version is evaluated.
        repo_gnp = {**_gnp(f"{uid}-allow", 9090), "apiVersion": "projectcalico.org/v3"}
        (repo / "p.yaml").write_text(json.dumps(repo_gnp))
        assert _cli(*base, "--port", "tcp/8080", kubeconfig=kube).returncode == 1
        assert _cli(*base, "--port", "tcp/9090", kubeconfig=kube).returncode == 0
    finally:
        cluster.delete(_crd(cluster, "GlobalNetworkPolicy"), f"{uid}-allow")
        cluster.delete(_crd(cluster, "HostEndpoint"), uid)
        cluster.delete(NODES, f"{uid}-node")
