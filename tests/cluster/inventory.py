"""Nodes and Namespaces for template tests, created through the Cluster API."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from reconciler.cluster.client import NAMESPACES, NODES, Cluster

WORKERS = 8  # parallel requests when creating in bulk


def node(name: str, ip: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """A Node with an InternalIP (Nodes accept status on create: no kubelet needed)."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": dict(labels)},
        "status": {"addresses": [{"type": "InternalIP", "address": ip}]},
    }


def namespace(name: str, labels: Mapping[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": dict(labels)},
    }


def relabel(cluster: Cluster, kind: str, name: str, labels: Mapping[str, str | None]) -> None:
    """Merge-patch labels (None removes one), as `kubectl label` does."""
    rtype = NODES if kind == "Node" else NAMESPACES
    cluster.request(
        "PATCH",
        rtype.path("", name),
        verb="patch",
        query={"fieldManager": "kubectl-label"},
        body={"metadata": {"labels": dict(labels)}},
        content_type="application/merge-patch+json",
    )


def create_all(cluster: Cluster, bodies: Iterable[Mapping[str, Any]]) -> None:
    """Create many Nodes/Namespaces with a few requests in flight at once."""

    def one(body: Mapping[str, Any]) -> None:
        cluster.create(NODES if body["kind"] == "Node" else NAMESPACES, body)

    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(one, bodies))


def delete_nodes(cluster: Cluster, names: Iterable[str]) -> None:
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(lambda n: cluster.delete(NODES, n), names))
