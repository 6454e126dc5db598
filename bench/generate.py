"""Generated policy repos: host endpoints, global policies and namespaced policies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

NAMESPACES = 10
# Objects per file: a file stays far below the loader's limits (4 MiB, 250,000 YAML nodes;
# a generated object is about 30 nodes), so 50,000 objects load as a real repo would.
PER_FILE = 2000


def write_repo(root: Path, n: int, *, prefix: str) -> list[str]:
    """Write n objects (1/3 host endpoints, 1/3 global policies, 1/3 namespaced
    Kubernetes and Calico policies) into root; return the namespaces they need."""
    namespaces = [f"{prefix}-ns{i}" for i in range(NAMESPACES)]
    third = n // 3
    docs = {
        "hosts": [_hep(prefix, i) for i in range(third)],
        "global": [_gnp(prefix, i) for i in range(third)],
        "apps": [_np(prefix, i, namespaces[i % NAMESPACES]) for i in range(n - 2 * third)],
    }
    for name, items in docs.items():
        for start in range(0, len(items), PER_FILE):
            chunk = items[start : start + PER_FILE]
            (root / f"{name}-{start // PER_FILE:03}.yaml").write_text(
                yaml.safe_dump_all(chunk, sort_keys=False)
            )
    return namespaces


def _hep(prefix: str, i: int) -> dict[str, Any]:
    return {
        "apiVersion": "projectcalico.org/v3",
        "kind": "HostEndpoint",
        "metadata": {"name": f"{prefix}-node-{i}", "labels": {"host-endpoint": "ingress"}},
        "spec": {
            "node": f"{prefix}-node-{i}",
            "interfaceName": "*",
            "expectedIPs": [f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}"],
        },
    }


def _gnp(prefix: str, i: int) -> dict[str, Any]:
    return {
        "apiVersion": "projectcalico.org/v3",
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": f"{prefix}-allow-{i}"},
        "spec": {
            "order": 100 + i,
            "selector": f"app == 'svc-{i}'",
            "ingress": [
                {
                    "action": "Allow",
                    "protocol": "TCP",
                    "source": {"nets": [f"10.{i % 256}.0.0/16"]},
                    "destination": {"ports": [8000 + i % 1000]},
                }
            ],
        },
    }


def _np(prefix: str, i: int, namespace: str) -> dict[str, Any]:
    if i % 2:
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": f"{prefix}-np-{i}", "namespace": namespace},
            "spec": {
                "podSelector": {"matchLabels": {"app": f"a{i}"}},
                "ingress": [{"ports": [{"port": 80}]}],
            },
        }
    return {
        "apiVersion": "projectcalico.org/v3",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"{prefix}-cnp-{i}", "namespace": namespace},
        "spec": {
            "selector": f"app == 'a{i}'",
            "ingress": [{"action": "Allow", "source": {"selector": "role == 'frontend'"}}],
        },
    }
