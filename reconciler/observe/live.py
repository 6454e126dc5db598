"""Read the live objects the planner compares with, as cheaply as the API allows.

Steady state (design invariant 5): one label-selected, paginated LIST per managed
kind, nothing else. Only objects Git wants that we do not already own cost a GET
each, to tell "create" from "exists but is not ours".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from reconciler import FIELD_MANAGER
from reconciler.applyset import PART_OF, ApplySet, Inventory
from reconciler.calico.flavour import Flavour
from reconciler.cluster.client import Cluster, ResourceType
from reconciler.cluster.types import Types
from reconciler.kinds import group_kind_of
from reconciler.model import GroupKind
from reconciler.observe.facts import Facts, Objects
from reconciler.plan import Desired, Live
from reconciler.plan.fields import managed_fields, shared

# Above this many new objects of one kind, one LIST of the kind is cheaper than a GET each.
GET_LIMIT = 20


def read_objects(
    cluster: Cluster,
    facts: Facts,
    *,
    applyset: ApplySet,
    inventory: Inventory,
    desired: Sequence[Desired],
) -> Objects:
    """Owned objects of every kind in the inventory, plus namesakes of new desired objects."""
    listed = frozenset(gk for gk in inventory.group_kinds if gk in facts.types.by_group_kind)
    owned = tuple(
        _live(facts.flavour, body, owned=True)
        for gk in sorted(listed)
        for body in cluster.list(facts.types.of(gk), label_selector=applyset.selector)
    )
    seen = {lv.ref.key for lv in owned}
    unknown = {d.resource.ref.key: d for d in desired if d.resource.ref.key not in seen}
    found = _namesakes(cluster, facts.types, applyset, unknown.values())
    return Objects(owned, listed, {lv.ref.key: lv for lv in found})


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
    return bool(labels.get(PART_OF) == applyset.id) or _applied_under_our_name(body, labels)


def _applied_under_our_name(body: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    """Someone server-side-applied it as `--field-manager=policy-reconciler`: that apply
    took our fields, and with them our label. Still ours to heal, unless another ApplySet
    claims it (its label stays on)."""
    applies = (e for e in managed_fields(body) if e.operation == "Apply")
    return PART_OF not in labels and any(e.manager == FIELD_MANAGER for e in applies)


def _live(flavour: Flavour, body: dict[str, Any], *, owned: bool) -> Live:
    ref = flavour.ref_from_cluster(body)
    return Live(ref=ref, body=shared(body), owned=owned)  # the body is ours alone yet
