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
import sys
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


def shared(body: dict[str, Any]) -> dict[str, Any]:
    """`body` with each managedFields entry's FieldsV1 replaced by an equal tree shared by
    every object of that shape, and the entry's strings interned.

    Objects of one kind written by one manager mostly share their FieldsV1 (it names
    fields, not values): about 1.9 KiB of every listed object, a tenth of a plan's memory
    at 50,000 objects. The value is unchanged; `body` must be fresh from the API server
    (changed in place, before anyone else holds it) and, as every body, never mutated after.
    """
    for entry in (body.get("metadata") or {}).get("managedFields") or ():
        if not isinstance(entry, dict):
            continue
        for key, value in entry.items():
            if isinstance(value, str):
                entry[key] = sys.intern(value)
        tree = entry.get("fieldsV1")
        if isinstance(tree, Mapping):
            entry["fieldsV1"] = _shared_tree(tree)
    return body


# fieldsV1 text -> one tree of that content, and id of such a tree -> (tree, its leaves).
# The controller lists the same objects every run; `shared` gives them one tree per shape.
_TREES: dict[str, Mapping[str, Any]] = {}
_LEAVES: dict[int, tuple[Mapping[str, Any], frozenset[Path]]] = {}
_CACHE_MAX = 10_000


def _shared_tree(fields: Mapping[str, Any]) -> Mapping[str, Any]:
    key = json.dumps(fields)
    found = _TREES.get(key)
    if found is None:
        if len(_TREES) >= _CACHE_MAX:
            _TREES.clear()  # bodies read before keep the trees they were given
        found = _TREES[key] = fields
    return found


def _leaves(fields: Mapping[str, Any]) -> frozenset[Path]:
    hit = _LEAVES.get(id(fields))
    if hit is None or hit[0] is not fields:  # not a shared tree yet: find or make it
        tree = _shared_tree(fields)
        hit = _LEAVES.get(id(tree))
        if hit is None or hit[0] is not tree:
            if len(_LEAVES) >= _CACHE_MAX:
                _LEAVES.clear()
            hit = _LEAVES[id(tree)] = (tree, parse_fields_v1(tree)[0])  # holds the id's tree
    return hit[1]


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
