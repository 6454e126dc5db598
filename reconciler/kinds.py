"""The kinds a policy repo may hold, as data: API group, plural, scope, apply stage.

This table is the allowlist (anything else in a repo is an error), the map the
cluster module uses to build URLs, and the firewall-safe ordering the planner uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from reconciler.model import GroupKind, ObjectRef

CALICO_V3 = "projectcalico.org"  # served by the Calico API server, what users write
CALICO_CRD = "crd.projectcalico.org"  # the CRD storage Calico reads
K8S_NETWORKING = "networking.k8s.io"
# Repo-only kinds: expanded over live Nodes/Namespaces, never installed in the cluster.
TEMPLATE_API_VERSION = "policy-reconciler.io/v1alpha1"
TEMPLATE_KINDS = ("HostEndpointTemplate", "NamespacePolicyTemplate")
# Repo-only too: what must stay allowed or denied, checked on every plan, never installed.
CHECK_KIND = "ConnectivityCheck"


class Stage(IntEnum):
    """Firewall-safe apply order (design invariant 4). Prune runs in reverse.

    Widening objects go in before host endpoints start enforcing, and narrowing
    ones after, so no intermediate state denies what both before and after allow.
    """

    FOUNDATION = 0  # tiers, network sets, staged (inert) policies
    ALLOW = 1  # policies whose every rule allows
    ENDPOINTS = 2  # host endpoints and the config that creates them
    RESTRICT = 3  # policies that deny, pass, or isolate by having no rules


@dataclass(frozen=True, slots=True)
class KindSpec:
    kind: str
    plural: str
    namespaced: bool
    stage: Stage | None  # None: a policy, staged by what its rules do
    calico: bool = True  # exists in both Calico flavours


_CALICO_KINDS = (
    KindSpec("Tier", "tiers", False, Stage.FOUNDATION),
    KindSpec("GlobalNetworkSet", "globalnetworksets", False, Stage.FOUNDATION),
    KindSpec("NetworkSet", "networksets", True, Stage.FOUNDATION),
    KindSpec("StagedGlobalNetworkPolicy", "stagedglobalnetworkpolicies", False, Stage.FOUNDATION),
    KindSpec("StagedNetworkPolicy", "stagednetworkpolicies", True, Stage.FOUNDATION),
    KindSpec("GlobalNetworkPolicy", "globalnetworkpolicies", False, None),
    KindSpec("NetworkPolicy", "networkpolicies", True, None),
    KindSpec("HostEndpoint", "hostendpoints", False, Stage.ENDPOINTS),
    KindSpec(
        "KubeControllersConfiguration", "kubecontrollersconfigurations", False, Stage.ENDPOINTS
    ),
)
_K8S_KINDS = (KindSpec("NetworkPolicy", "networkpolicies", True, None, calico=False),)

# apiVersion -> kind -> spec
ALLOWED: dict[str, dict[str, KindSpec]] = {
    f"{CALICO_V3}/v3": {k.kind: k for k in _CALICO_KINDS},
    f"{CALICO_CRD}/v1": {k.kind: k for k in _CALICO_KINDS},
    f"{K8S_NETWORKING}/v1": {k.kind: k for k in _K8S_KINDS},
}

# Kinds whose namespaced policies carry a tier (Calico policy kinds).
TIERED_KINDS = frozenset(
    {"GlobalNetworkPolicy", "NetworkPolicy", "StagedGlobalNetworkPolicy", "StagedNetworkPolicy"}
)


def spec_for(api_version: str, kind: str) -> KindSpec | None:
    return ALLOWED.get(api_version, {}).get(kind)


def identity(ref: ObjectRef) -> tuple[str, str, str, str]:
    """ObjectRef.key, with both Calico flavours as one group: they name the same object."""
    group = CALICO_V3 if ref.group == CALICO_CRD else ref.group
    return (group, ref.kind, ref.namespace, ref.name)


def group_of(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def group_kind_of(body: Mapping[str, Any]) -> GroupKind:
    """The group-kind of a self-describing body (apiVersion + kind)."""
    return GroupKind(group_of(str(body.get("apiVersion", ""))), str(body.get("kind", "")))


def version_of(api_version: str) -> str:
    return api_version.rpartition("/")[2]


def allowed_list() -> str:
    """Human list of what a repo may hold, for error messages."""
    listed = [f"{av}: {', '.join(sorted(kinds))}" for av, kinds in ALLOWED.items()]
    listed.append(f"{TEMPLATE_API_VERSION} (templates): {', '.join(TEMPLATE_KINDS)}")
    return "; ".join(listed)


def managed_group_kinds(calico_group: str) -> tuple[GroupKind, ...]:
    """Every group-kind we may manage when Calico is served under `calico_group`."""
    calico = tuple(GroupKind(calico_group, k.kind) for k in _CALICO_KINDS)
    return (*calico, *(GroupKind(K8S_NETWORKING, k.kind) for k in _K8S_KINDS))
