"""Read the live state the planner needs, as cheaply as the API allows.

Steady state (design invariant 5): one label-selected, paginated LIST per managed
kind, nothing else. Only objects Git wants that we do not already own cost a GET
each, to tell "create" from "exists but is not ours".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.applyset import PART_OF, ApplySet, Inventory
from reconciler.calico.flavour import Flavour
from reconciler.cluster import errors
from reconciler.cluster.client import NAMESPACES, NODES, Cluster, JSONDict, ResourceType
from reconciler.generate import Namespace, Node, namespace_from_api, node_from_api
from reconciler.kinds import K8S_NETWORKING, group_kind_of
from reconciler.model import GroupKind
from reconciler.plan import Desired, Live


class CalicoMissing(errors.KubeError):
    """Neither projectcalico.org/v3 nor crd.projectcalico.org/v1 is served."""


@dataclass(frozen=True, slots=True)
class Types:
    """Resource types of the group-kinds we may manage, from (cached) discovery."""

    by_group_kind: dict[GroupKind, ResourceType]

    def of(self, gk: GroupKind) -> ResourceType:
        try:
            return self.by_group_kind[gk]
        except KeyError:
            raise errors.NotFound(f"{gk} is not served by this cluster") from None


def discover(cluster: Cluster, flavour: Flavour) -> Types:
    found: dict[GroupKind, ResourceType] = {}
    for group_version in (f"{flavour.group}/{flavour.version}", f"{K8S_NETWORKING}/v1"):
        for kind, rtype in (cluster.resources(group_version) or {}).items():
            found[GroupKind(rtype.group, kind)] = rtype
    return Types(found)


def read_live(
    cluster: Cluster,
    *,
    flavour: Flavour,
    types: Types,
    applyset: ApplySet,
    inventory: Inventory,
    desired: Sequence[Desired],
) -> list[Live]:
    """Owned objects of every kind in the inventory, plus namesakes of new desired objects."""
    owned = [
        _live(flavour, body, owned=True)
        for gk in sorted(inventory.group_kinds)
        if gk in types.by_group_kind
        for body in cluster.list(types.of(gk), label_selector=applyset.selector)
    ]
    seen = {lv.ref.key for lv in owned}
    unknown = [d for d in desired if d.resource.ref.key not in seen]
    return owned + list(_namesakes(cluster, types, applyset, unknown))


# Above this many new objects of one kind, one LIST of the kind is cheaper than a GET each.
GET_LIMIT = 20


def _namesakes(
    cluster: Cluster, types: Types, applyset: ApplySet, desired: Iterable[Desired]
) -> Iterable[Live]:
    """What already sits at each new object's name, matched to it by that name.

    It may have been written by anyone (kubectl, calicoctl, another tool), so its
    metadata may not map back to the user's name; the name we fetched it by does.
    """
    by_kind: dict[GroupKind, list[Desired]] = {}
    for d in desired:
        by_kind.setdefault(group_kind_of(d.body), []).append(d)
    for gk, group in sorted(by_kind.items()):
        found = _existing(cluster, types.of(gk), group)
        for d in group:
            body = found.get(_name_key(d.body))
            if body is not None:
                yield Live(ref=d.resource.ref, body=body, owned=_ours(body, applyset))


def _existing(
    cluster: Cluster, rtype: ResourceType, group: Sequence[Desired]
) -> dict[tuple[str, str], dict[str, Any]]:
    if len(group) > GET_LIMIT:
        return {_name_key(b): b for b in cluster.list(rtype)}
    found = {}
    for d in group:
        meta = d.body["metadata"]
        body = cluster.get(rtype, meta["name"], meta.get("namespace", ""))
        if body is not None:
            found[_name_key(d.body)] = body
    return found


def _name_key(body: Mapping[str, Any]) -> tuple[str, str]:
    meta = body["metadata"]
    return (meta.get("namespace", ""), meta["name"])


def _ours(body: Mapping[str, Any], applyset: ApplySet) -> bool:
    labels = body.get("metadata", {}).get("labels") or {}
    return bool(labels.get(PART_OF) == applyset.id)


def _live(flavour: Flavour, body: dict[str, object], *, owned: bool) -> Live:
    ref, _ = flavour.from_cluster(body)
    return Live(ref=ref, body=body, owned=owned)


# --- what templates expand over (read only when the repo has templates that need it) ----


def read_nodes(cluster: Cluster) -> list[Node]:
    return [node_from_api(obj) for obj in cluster.list(NODES)]


def read_namespaces(cluster: Cluster) -> list[Namespace]:
    return [namespace_from_api(obj) for obj in cluster.list(NAMESPACES)]


def read_kube_controllers(cluster: Cluster, types: Types, calico_group: str) -> JSONDict | None:
    """The live KubeControllersConfiguration `default` (the only one kube-controllers reads)."""
    gk = GroupKind(calico_group, "KubeControllersConfiguration")
    if gk not in types.by_group_kind:
        return None
    return cluster.get(types.of(gk), "default")
