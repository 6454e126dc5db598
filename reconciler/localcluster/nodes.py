"""Node objects for the local control plane: plain API objects, no kubelet behind them."""

from __future__ import annotations

from typing import Any

# Labels from the node firewall scenarios (shared/reference/scenarios.md).
_COMMON = {"kubernetes-host": "", "environment": "dev", "kubernetes.io/os": "linux"}
_CONTROL_PLANE = {"node-role.kubernetes.io/master": "", "node-role.kubernetes.io/control-plane": ""}
_WORKER = {"kubernetes-worker": ""}


def node_manifests(count: int) -> list[dict[str, Any]]:
    """node-1 is the control plane; the rest are workers. InternalIPs in 10.240.0.0/16."""
    return [_node(i, control_plane=i == 1) for i in range(1, count + 1)]


def _node(index: int, *, control_plane: bool) -> dict[str, Any]:
    name = f"node-{index}"
    role = _CONTROL_PLANE if control_plane else _WORKER
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {**_COMMON, **role, "kubernetes.io/hostname": name},
        },
        # Nodes accept status on create, so addresses need no kubelet.
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": node_ip(index)},
                {"type": "Hostname", "address": name},
            ]
        },
    }


def node_ip(index: int) -> str:
    return f"10.240.{index // 250}.{10 + index % 250}"
