"""What templates expand over: Nodes and Namespaces, reduced to the facts templates read.

Built from raw API objects (a LIST, or a file for `plan --offline`). Two values compare
equal exactly when expanding over them gives the same objects, so a watcher can compare
them to decide whether an event is worth a re-plan (a Node's status heartbeat is not).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.manifests.templates import HostEndpointTemplate, NamespacePolicyTemplate, Template


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    labels: Mapping[str, str]
    addresses: tuple[tuple[str, str], ...] = ()  # (type, address) in status.addresses order


@dataclass(frozen=True, slots=True)
class Namespace:
    name: str
    labels: Mapping[str, str]
    terminating: bool = False  # being deleted: no new object can be created in it


@dataclass(frozen=True, slots=True)
class Needs:
    """Which live lists the templates need: nothing is read for a kind no template uses."""

    nodes: bool = False
    namespaces: bool = False


def needs(templates: Iterable[Template]) -> Needs:
    found = list(templates)
    return Needs(
        nodes=any(isinstance(t, HostEndpointTemplate) for t in found),
        namespaces=any(isinstance(t, NamespacePolicyTemplate) for t in found),
    )


def node_from_api(obj: Mapping[str, Any]) -> Node:
    meta = obj.get("metadata") or {}
    addresses = (obj.get("status") or {}).get("addresses") or []
    return Node(
        name=str(meta.get("name", "")),
        labels=dict(meta.get("labels") or {}),
        addresses=tuple(
            (str(a.get("type", "")), str(a.get("address", "")))
            for a in addresses
            if isinstance(a, Mapping)
        ),
    )


def namespace_from_api(obj: Mapping[str, Any]) -> Namespace:
    meta = obj.get("metadata") or {}
    phase = (obj.get("status") or {}).get("phase")
    return Namespace(
        name=str(meta.get("name", "")),
        labels=dict(meta.get("labels") or {}),
        terminating=bool(meta.get("deletionTimestamp")) or phase == "Terminating",
    )
