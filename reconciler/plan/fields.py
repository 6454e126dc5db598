"""managedFields: which field manager owns which field of a live object.

The API server records ownership per manager as structured-merge-diff FieldsV1
(sigs.k8s.io/structured-merge-diff fieldpath/serialize.go): nested objects keyed
`f:<field>`, `k:<json>` (element of a keyed list), `v:<json>` (element of a set),
`i:<n>` (list index), and `.` (the node itself is a member, its children apart).
An empty object `{}` is a leaf: the field is owned whole.

We turn that into paths over the object body, `("spec", "ingress")`. Every list
in the kinds we manage is atomic, so an element-keyed path is cut back to its list
and owned whole; that is exact for our fields and only coarse for server-side
bookkeeping (ownerReferences, finalizers) that we never compare.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.model import Body, FieldChange

Step = str | int
Path = tuple[Step, ...]
APPLY = "Apply"


@dataclass(frozen=True, slots=True)
class Ownership:
    """One managedFields entry, its FieldsV1 read as body paths."""

    manager: str
    operation: str
    time: str
    subresource: str
    leaves: frozenset[Path]  # owned whole: scalars, lists, atomic structs
    nodes: frozenset[Path]  # maps owned as such ("."): their existence, not their content

    @property
    def change(self) -> FieldChange:
        return FieldChange(self.manager, self.operation, self.time)

    def owns(self, path: Path) -> bool:
        """Owns `path` itself, or a whole field that contains it."""
        return path in self.nodes or any(_within(path, leaf) for leaf in self.leaves)

    def touches(self, path: Path) -> bool:
        """Owns `path`, a whole field around it, or anything inside it."""
        members = self.leaves | self.nodes
        return self.owns(path) or any(_within(member, path) for member in members)


def managed_fields(body: Body) -> tuple[Ownership, ...]:
    entries = (body.get("metadata") or {}).get("managedFields") or ()
    return tuple(_ownership(e) for e in entries if isinstance(e, Mapping))


def applied_by(entries: Sequence[Ownership], manager: str) -> frozenset[Path]:
    """The fields `manager` last applied to the main resource (our last-applied state)."""
    mine = (e for e in entries if _applies(e, manager))
    return frozenset(path for e in mine for path in e.leaves)


def last_applied(body: Body, manager: str) -> frozenset[Path]:
    """`applied_by(managed_fields(body), manager)` reading only `manager`'s own entries.

    The planner's fast path: the other managers' entries matter only once a field differs.
    """
    entries = (body.get("metadata") or {}).get("managedFields") or ()
    mine = (
        e
        for e in entries
        if isinstance(e, Mapping)
        and e.get("manager") == manager
        and e.get("operation") == APPLY
        and not e.get("subresource")
    )
    sets = [_leaves(e.get("fieldsV1") or {}) for e in mine]
    return sets[0] if len(sets) == 1 else frozenset().union(*sets)  # one: the shared set


# fieldsV1 text -> its leaves. Objects of one kind written by one manager mostly share
# their fieldsV1 (it names fields, not values), and the controller lists them every run.
_LEAVES: dict[str, frozenset[Path]] = {}
_LEAVES_MAX = 10_000


def _leaves(fields: Mapping[str, Any]) -> frozenset[Path]:
    key = json.dumps(fields)
    found = _LEAVES.get(key)
    if found is None:
        if len(_LEAVES) >= _LEAVES_MAX:
            _LEAVES.clear()
        found = _LEAVES[key] = parse_fields_v1(fields)[0]
    return found


def parse_fields_v1(fields: Mapping[str, Any]) -> tuple[frozenset[Path], frozenset[Path]]:
    """FieldsV1 -> (leaves, nodes)."""
    found = list(_walk(fields, ()))
    leaves = frozenset(path for path, whole in found if whole)
    return leaves, frozenset(path for path, whole in found if not whole)


def fields_v1_for(body: Body) -> dict[str, Any]:
    """The FieldsV1 an apply of `body` records: maps granular, lists and scalars whole."""
    return {f"f:{key}": _fields_of(value) for key, value in body.items()}


def _fields_of(value: Any) -> dict[str, Any]:
    return fields_v1_for(value) if isinstance(value, Mapping) and value else {}


def _applies(entry: Ownership, manager: str) -> bool:
    return entry.manager == manager and entry.operation == APPLY and not entry.subresource


def _ownership(entry: Mapping[str, Any]) -> Ownership:
    leaves, nodes = parse_fields_v1(entry.get("fieldsV1") or {})
    return Ownership(
        manager=str(entry.get("manager") or ""),
        operation=str(entry.get("operation") or ""),
        time=str(entry.get("time") or ""),
        subresource=str(entry.get("subresource") or ""),
        leaves=leaves,
        nodes=nodes,
    )


def _walk(tree: Mapping[str, Any], path: Path) -> Iterator[tuple[Path, bool]]:
    """(path, owned whole) for every member of a FieldsV1 tree."""
    for key, sub in tree.items():
        if key == ".":
            yield path, False
            continue
        step = _step(key)
        if step is None:  # k:/v: element of a list: the list is ours whole
            if path:
                yield path, True
        elif isinstance(sub, Mapping) and sub:
            yield from _walk(sub, (*path, step))
        else:
            yield (*path, step), True


def _step(key: str) -> Step | None:
    prefix, _, name = key.partition(":")
    if prefix == "f":
        return name
    if prefix == "i" and name.isdigit():
        return int(name)
    return None


def _within(path: Path, outer: Path) -> bool:
    return path[: len(outer)] == outer
