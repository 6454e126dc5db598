"""Online mode of `connectivity`: the facts and the unmanaged firewall objects, read live.

One paginated LIST per kind: nodes, namespaces, pods, service accounts, and every Calico
and Kubernetes policy kind, host endpoints, network sets and tiers. Objects the repo
manages are left out (the repo's version is what the commands evaluate); everything else
acts on traffic too, so it is evaluated alongside.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from reconciler.calico.flavour import Flavour as CalicoFlavour
from reconciler.cluster.client import Cluster
from reconciler.connectivity import Facts
from reconciler.kinds import K8S_NETWORKING
from reconciler.model import ObjectRef, Origin, Resource
from reconciler.observe.read import (
    detect_flavour,
    read_namespaces,
    read_nodes,
    read_pods,
    read_service_accounts,
)

_CALICO_KINDS = (
    "Tier",
    "GlobalNetworkSet",
    "NetworkSet",
    "GlobalNetworkPolicy",
    "NetworkPolicy",
    "HostEndpoint",
)


@dataclass(frozen=True, slots=True)
class Live:
    facts: Facts
    objects: tuple[Resource, ...]  # every firewall object in the cluster


def read_cluster(cluster: Cluster, *, calico: tuple[int, int]) -> Live:
    facts = Facts(
        nodes=tuple(read_nodes(cluster)),
        namespaces=tuple(read_namespaces(cluster)),
        pods=tuple(read_pods(cluster)),
        service_accounts=tuple(read_service_accounts(cluster)),
    )
    return Live(facts, tuple(_firewall(cluster, detect_flavour(cluster, calico))))


def unmanaged(live: Iterable[Resource], repo: Iterable[Resource]) -> list[Resource]:
    """Live objects the repo does not hold: they act on traffic next to the repo's."""
    ours = {_identity(r) for r in repo}
    return [r for r in live if _identity(r) not in ours]


def _identity(resource: Resource) -> tuple[bool, str, str, str]:
    k8s = resource.ref.group == K8S_NETWORKING
    return (k8s, resource.ref.kind, resource.ref.namespace, resource.ref.name)


def _firewall(cluster: Cluster, flavour: CalicoFlavour) -> Iterable[Resource]:
    calico = cluster.resources(flavour.api_version) or {}
    for kind in _CALICO_KINDS:
        if kind in calico:
            yield from (_resource(flavour, o) for o in cluster.list(calico[kind]))
    k8s = cluster.resources(f"{K8S_NETWORKING}/v1") or {}
    if "NetworkPolicy" in k8s:
        yield from (_resource(None, o) for o in cluster.list(k8s["NetworkPolicy"]))


def _resource(flavour: CalicoFlavour | None, body: dict[str, object]) -> Resource:
    """The live body as stored (crd v1 keeps Felix's empty-types reading), under the name the
    user knows (`default.` storage prefixes dropped)."""
    meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    group, _, version = str(body.get("apiVersion", "")).rpartition("/")
    kind = str(body.get("kind", ""))
    name = str(meta.get("name", ""))
    if flavour is not None:
        name = flavour.from_cluster(body)[0].name
    ref = ObjectRef(group, version, kind, str(meta.get("namespace") or ""), name)
    return Resource(ref, body, Origin(f"cluster {kind}/{name}"))
