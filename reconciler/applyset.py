"""Ownership and inventory, compatible with kubectl's ApplySet (KEP-3659).

The parent is a ConfigMap in the reconciler's namespace (not a Secret: the
reconciler has no business reading or writing Secrets). Members carry
`applyset.kubernetes.io/part-of=<id>`, so `kubectl get <kind> -l <that>` shows
what we manage. Before applying, the parent records the union of old and new
group-kinds and namespaces, so an interrupted run leaks nothing; after prune it
shrinks to what is applied.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler import __version__
from reconciler.model import GroupKind, Resource

ID_LABEL = "applyset.kubernetes.io/id"
PART_OF = "applyset.kubernetes.io/part-of"
TOOLING = "applyset.kubernetes.io/tooling"
GROUP_KINDS = "applyset.kubernetes.io/contains-group-kinds"
NAMESPACES = "applyset.kubernetes.io/additional-namespaces"
SUSPEND = "policy-reconciler.io/suspend"
# `policy-reconciler reconcile [--with-source]` sets one of these to the time of asking
# (as Flux's reconcile.fluxcd.io/requestedAt); the controller runs when either changes.
REQUESTED_AT = "policy-reconciler.io/requestedAt"
SOURCE_REQUESTED_AT = "policy-reconciler.io/sourceRequestedAt"


class BadAnnotation(ValueError):
    """An operator annotation on the ApplySet parent with a value we cannot read."""


@dataclass(frozen=True, slots=True)
class ApplySet:
    name: str
    namespace: str

    @property
    def id(self) -> str:
        # kubectl: base64url(sha256("<name>.<namespace>.<kind>.<group>")), unpadded.
        raw = f"{self.name}.{self.namespace}.ConfigMap.".encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(raw).digest()).decode().rstrip("=")
        return f"applyset-{digest}-v1"

    @property
    def selector(self) -> str:
        return f"{PART_OF}={self.id}"


@dataclass(frozen=True, slots=True)
class Inventory:
    """What the parent says we manage: group-kinds and the namespaces they live in."""

    group_kinds: frozenset[GroupKind] = frozenset()
    namespaces: frozenset[str] = frozenset()

    def union(self, other: Inventory) -> Inventory:
        return Inventory(self.group_kinds | other.group_kinds, self.namespaces | other.namespaces)


def label(res: Resource, applyset: ApplySet) -> Resource:
    """The resource with our part-of label added (a new value; the input is untouched)."""
    meta = dict(res.body.get("metadata", {}))
    meta["labels"] = {**meta.get("labels", {}), PART_OF: applyset.id}
    return Resource(res.ref, {**res.body, "metadata": meta}, res.origin)


def inventory_of(resources: Iterable[Resource], *, calico_group: str) -> Inventory:
    """The inventory a set of desired objects needs, in cluster group names."""
    kinds, namespaces = set(), set()
    for res in resources:
        group = calico_group if "projectcalico.org" in res.ref.group else res.ref.group
        kinds.add(GroupKind(group, res.ref.kind))
        if res.ref.namespace:
            namespaces.add(res.ref.namespace)
    return Inventory(frozenset(kinds), frozenset(namespaces))


def read_inventory(parent: Mapping[str, Any] | None) -> Inventory:
    annotations = (parent or {}).get("metadata", {}).get("annotations", {})
    kinds = frozenset(_parse_gk(s) for s in _split(annotations.get(GROUP_KINDS, "")))
    return Inventory(kinds, frozenset(_split(annotations.get(NAMESPACES, ""))))


def parent_body(applyset: ApplySet, inventory: Inventory) -> dict[str, Any]:
    """The parent ConfigMap's fields we own (server-side applied)."""
    kinds = ",".join(sorted(f"{gk.kind}.{gk.group}" for gk in inventory.group_kinds))
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": applyset.name,
            "namespace": applyset.namespace,
            "labels": {ID_LABEL: applyset.id},
            "annotations": {
                TOOLING: f"policy-reconciler/v{__version__}",
                GROUP_KINDS: kinds,
                NAMESPACES: ",".join(sorted(inventory.namespaces)),
            },
        },
    }


def is_suspended(parent: Mapping[str, Any] | None) -> bool:
    """The suspend annotation: absent, "true" or "false"; anything else is an error, since
    whoever wrote "yes" or "1" meant something we must not guess."""
    meta = (parent or {}).get("metadata") or {}
    value = (meta.get("annotations") or {}).get(SUSPEND)
    if value is None:
        return False
    text = str(value).strip().lower()
    if text not in ("true", "false"):
        where = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
        raise BadAnnotation(
            f"annotation {SUSPEND}={value!r} on ConfigMap {where} must be true or false; "
            "nothing is applied until it is"
        )
    return text == "true"


def requests(parent: Mapping[str, Any] | None) -> tuple[str, str]:
    """The last (reconcile, reconcile-with-source) request times on the parent."""
    annotations = ((parent or {}).get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(REQUESTED_AT, "")), str(annotations.get(SOURCE_REQUESTED_AT, ""))


def _split(value: str) -> list[str]:
    return [s for s in value.split(",") if s]


def _parse_gk(text: str) -> GroupKind:
    kind, _, group = text.partition(".")
    return GroupKind(group, kind)
