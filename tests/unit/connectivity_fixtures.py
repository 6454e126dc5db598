"""A small cluster and helpers for the connectivity tests: plain values, no I/O."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from reconciler.connectivity import (
    Evaluation,
    Facts,
    Flavour,
    Verdict,
    World,
    build_world,
    evaluate,
    parse_packet,
    parse_peer,
)
from reconciler.generate.autohep import AutoHostEndpoints
from reconciler.generate.inventory import ContainerPort, Namespace, Node, Pod, ServiceAccount
from reconciler.model import ObjectRef, Origin, Resource

NODES = (
    Node("n1", {"role": "control"}, (("InternalIP", "10.0.0.1"),)),
    Node("n2", {"role": "worker"}, (("InternalIP", "10.0.0.2"),)),
    Node("n3", {"role": "worker"}, (("InternalIP", "10.0.0.3"),)),  # no host endpoint, ever
)
NAMESPACES = (
    Namespace("a", {"team": "a"}),
    Namespace("b", {"team": "b"}),
)
PODS = (
    Pod(
        "a", "web", {"app": "web"}, "n1", ("10.1.0.1",), ports=(ContainerPort("http", "TCP", 8080),)
    ),
    Pod("a", "client", {"app": "client"}, "n1", ("10.1.0.2",)),
    Pod("b", "db", {"app": "db"}, "n2", ("10.2.0.1",), service_account="db-sa"),
    Pod("b", "other", {"app": "other"}, "n2", ("10.2.0.2",)),
    Pod("a", "far", {"app": "far"}, "n3", ("10.3.0.1",)),
    # Twins of web and db on other nodes: one class each with the originals in a diff.
    Pod(
        "a",
        "web2",
        {"app": "web"},
        "n2",
        ("10.1.0.3",),
        ports=(ContainerPort("http", "TCP", 8080),),
    ),
    Pod("b", "db2", {"app": "db"}, "n1", ("10.2.0.3",), service_account="db-sa"),
)
ACCOUNTS = (ServiceAccount("b", "db-sa", {"tier": "data"}),)
FACTS = Facts(NODES, NAMESPACES, PODS, ACCOUNTS)

# Host endpoints for n1 and n2 (all interfaces, expectedIPs = InternalIP), no profile.
HEPS = """
apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata: {name: n1-hep, labels: {host-endpoint: "yes", node: n1}}
spec: {node: n1, interfaceName: "*", expectedIPs: [10.0.0.1]}
---
apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata: {name: n2-hep, labels: {host-endpoint: "yes", node: n2}}
spec: {node: n2, interfaceName: "*", expectedIPs: [10.0.0.2]}
"""
# The same, open until a policy selects them (projectcalico-default-allow).
OPEN_HEPS = HEPS.replace("spec: {", "spec: {profiles: [projectcalico-default-allow], ")


def resources(text: str, *, path: str = "repo.yaml") -> list[Resource]:
    """Objects straight from YAML (either Calico flavour; the loader only takes v3)."""
    out = []
    for i, body in enumerate(b for b in yaml.safe_load_all(text) if b):
        out.append(_resource(body, Origin(path, i + 1)))
    return out


def _resource(body: dict[str, Any], origin: Origin) -> Resource:
    group, _, version = str(body["apiVersion"]).rpartition("/")
    meta = body.get("metadata") or {}
    ref = ObjectRef(group, version, body["kind"], meta.get("namespace", ""), meta["name"])
    return Resource(ref, body, origin)


def world(
    *texts: str,
    facts: Facts = FACTS,
    calico: tuple[int, int] = (3, 31),
    auto: AutoHostEndpoints | None = None,
) -> World:
    found: Iterable[Resource] = [r for t in texts for r in resources(t)]
    return build_world(found, facts, flavour=Flavour(calico), auto=auto)


def check(w: World, src: str, dst: str, port: str) -> Evaluation:
    return evaluate(w, parse_peer(src), parse_peer(dst), parse_packet(port))


def verdict(w: World, src: str, dst: str, port: str) -> Verdict:
    return check(w, src, dst, port).verdict


ALLOW, DENY, UNKNOWN = Verdict.ALLOW, Verdict.DENY, Verdict.UNKNOWN
