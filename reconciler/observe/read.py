"""Every read of the cluster's facts, each returning a value.

`read_facts` reads only what is asked for: discovery (cached), the ApplySet parent, and
Nodes, Namespaces, Pods, ServiceAccounts or Calico's kube-controllers settings when a
template or an engine needs them (one paginated LIST each).
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.applyset import ApplySet
from reconciler.calico.flavour import Flavour, crd_flavour, v3_flavour
from reconciler.cluster import errors
from reconciler.cluster.client import CONFIGMAPS, NAMESPACES, NODES, Cluster, JSONDict, ResourceType
from reconciler.cluster.types import Types
from reconciler.generate.inventory import (
    Namespace,
    Node,
    Pod,
    ServiceAccount,
    namespace_from_api,
    node_from_api,
    pod_from_api,
    service_account_from_api,
)
from reconciler.kinds import CALICO_CRD, CALICO_V3, K8S_NETWORKING
from reconciler.model import GroupKind
from reconciler.observe.facts import Facts

PODS = ResourceType("", "v1", "Pod", "pods", True)
SERVICE_ACCOUNTS = ResourceType("", "v1", "ServiceAccount", "serviceaccounts", True)


class CalicoMissing(errors.KubeError):
    """Neither projectcalico.org/v3 nor crd.projectcalico.org/v1 is served."""


@dataclass(frozen=True, slots=True)
class Wanted:
    """Which facts to read beyond discovery and the parent: nothing else by default."""

    nodes: bool = False
    namespaces: bool = False
    workloads: bool = False  # pods and service accounts (the connectivity engine)
    kube_controllers: bool = False  # templates that need Calico's automatic host endpoints


def read_facts(
    cluster: Cluster, *, calico: tuple[int, int], applyset: ApplySet, wanted: Wanted
) -> Facts:
    flavour = detect_flavour(cluster, calico)
    types = discover(cluster, flavour)
    return Facts(
        target=cluster.name,
        flavour=flavour,
        types=types,
        parent=cluster.get(CONFIGMAPS, applyset.name, applyset.namespace),
        nodes=tuple(read_nodes(cluster)) if wanted.nodes else None,
        namespaces=tuple(read_namespaces(cluster)) if wanted.namespaces else None,
        pods=tuple(read_pods(cluster)) if wanted.workloads else None,
        service_accounts=tuple(read_service_accounts(cluster)) if wanted.workloads else None,
        kube_controllers=(
            read_kube_controllers(cluster, types, flavour.group)
            if wanted.kube_controllers
            else None
        ),
    )


def detect_flavour(cluster: Cluster, calico: tuple[int, int]) -> Flavour:
    """Write v3 where the Calico API server serves it, else the CRDs Calico reads."""
    v3 = cluster.resources(f"{CALICO_V3}/v3")
    if v3 and "GlobalNetworkPolicy" in v3:
        return v3_flavour()
    if cluster.resources(f"{CALICO_CRD}/v1"):
        return crd_flavour(calico)
    raise CalicoMissing(
        "Calico is not installed in this cluster: neither projectcalico.org/v3 nor "
        "crd.projectcalico.org/v1 is served"
    )


def discover(cluster: Cluster, flavour: Flavour) -> Types:
    found: dict[GroupKind, ResourceType] = {}
    for group_version in (f"{flavour.group}/{flavour.version}", f"{K8S_NETWORKING}/v1"):
        for kind, rtype in (cluster.resources(group_version) or {}).items():
            found[GroupKind(rtype.group, kind)] = rtype
    return Types(found)


def read_nodes(cluster: Cluster) -> list[Node]:
    return [node_from_api(obj) for obj in cluster.list(NODES)]


def read_namespaces(cluster: Cluster) -> list[Namespace]:
    return [namespace_from_api(obj) for obj in cluster.list(NAMESPACES)]


def read_pods(cluster: Cluster) -> list[Pod]:
    return [pod_from_api(obj) for obj in cluster.list(PODS)]


def read_service_accounts(cluster: Cluster) -> list[ServiceAccount]:
    return [service_account_from_api(obj) for obj in cluster.list(SERVICE_ACCOUNTS)]


def read_kube_controllers(cluster: Cluster, types: Types, calico_group: str) -> JSONDict | None:
    """The live KubeControllersConfiguration `default` (the only one kube-controllers reads)."""
    gk = GroupKind(calico_group, "KubeControllersConfiguration")
    if gk not in types.by_group_kind:
        return None
    return cluster.get(types.of(gk), "default")
