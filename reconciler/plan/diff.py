"""Normalise bodies and diff them field by field, on the fields that are ours to compare.

A fresh apply followed by a plan must show nothing, so both sides are brought to
one canonical form first: integral floats become ints (YAML `10.0`, server `10`),
nulls are absent, the API server's defaults are filled in, and empty lists (and
empty maps, except where `{}` means "everything") count as absent, as they do to
the Go code that reads these objects. Int-or-string values (ports) are compared as
written: the server keeps `80` and `"80"` apart, and so do we.

What is compared (the scope) is the union of the fields the desired body sets and
the fields we own in the live object; everything else (status, server metadata,
fields other managers added) is left out.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, TypeAlias

from reconciler.kinds import CALICO_V3, K8S_NETWORKING, group_of
from reconciler.model import JSON, Body, DiffEntry
from reconciler.plan.fields import Path, Step

# A scope tree: a map of the keys to compare inside, or True for "compare whole".
Scope: TypeAlias = "dict[str, Scope] | bool"
GroupKind = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Derived:
    """A default computed from the map that holds the field."""

    compute: Callable[[Mapping[str, Any]], JSON]


def k8s_policy_types(spec: Mapping[str, Any]) -> list[str]:
    """pkg/apis/networking/v1/defaults.go: Ingress always, Egress when egress rules exist."""
    return ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]


def calico_policy_types(spec: Mapping[str, Any]) -> list[str]:
    """libcalico-go clientv3 defaultPolicyTypesField (what calicoctl and the v3 API do)."""
    if not spec.get("egress"):
        return ["Ingress"]  # even with no rules at all
    return ["Ingress", "Egress"] if spec.get("ingress") else ["Egress"]


# (group, kind, path pattern) -> the value the API server fills in when the field is unset
# (absent, or an empty list: Go's len(nil) == 0). `[]` in a pattern is any list index.
# The Calico v1 CRDs of the kinds we manage declare no `default:` (checked through v3.31),
# so crd.projectcalico.org has no entry; the Calico API server (v3) fills `types` in.
DEFAULTS: Mapping[tuple[str, str, str], JSON | Derived] = {
    (K8S_NETWORKING, "NetworkPolicy", "spec.ingress[].ports[].protocol"): "TCP",
    (K8S_NETWORKING, "NetworkPolicy", "spec.egress[].ports[].protocol"): "TCP",
    (K8S_NETWORKING, "NetworkPolicy", "spec.policyTypes"): Derived(k8s_policy_types),
    (CALICO_V3, "GlobalNetworkPolicy", "spec.types"): Derived(calico_policy_types),
    (CALICO_V3, "NetworkPolicy", "spec.types"): Derived(calico_policy_types),
}

# Maps that server-side apply treats as one value (metav1.LabelSelector is
# +structType=atomic). Every other map is granular; every list in our kinds is atomic.
ATOMIC: frozenset[tuple[str, str, str]] = frozenset(
    {(K8S_NETWORKING, "NetworkPolicy", "spec.podSelector")}
)

# Keys whose empty map `{}` means "select everything" and so differs from absent.
EMPTY_MEANS_ALL: Mapping[GroupKind, frozenset[str]] = {
    (K8S_NETWORKING, "NetworkPolicy"): frozenset({"podSelector", "namespaceSelector"}),
}

# Identity (matched already, by the user-facing ref) and what the server alone writes.
IGNORED: tuple[Path, ...] = (
    ("apiVersion",),
    ("kind",),
    ("metadata", "name"),
    ("metadata", "namespace"),
    ("status",),
)

_ANY_INDEX = "[]"
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class Delta:
    """One differing field; None means absent."""

    path: Path
    before: JSON
    after: JSON

    @property
    def entry(self) -> DiffEntry:
        return DiffEntry(render_path(self.path), self.before, self.after)


@dataclass(frozen=True, slots=True)
class _Rules:
    defaults: tuple[tuple[tuple[str, ...], JSON | Derived], ...]
    atomic: tuple[tuple[str, ...], ...]
    keep: frozenset[str]

    def is_atomic(self, path: Path) -> bool:
        if not self.atomic:  # most kinds: asked for every map of every body
            return False
        return any(_matches(pattern, path) for pattern in self.atomic)


def normalise(body: Body) -> dict[str, Any]:
    """The canonical form two bodies are compared in."""
    rules = _rules(_group_kind(body))
    compacted = _compact(_prepared(body, rules), rules.keep)
    return compacted if isinstance(compacted, dict) else {}


def compare(*, desired: Body, live: Body | None, owned: Iterable[Path] = ()) -> tuple[Delta, ...]:
    """Leaf differences from `live` to `desired` on the fields in scope (no live: all added)."""
    before, after = projections(desired=desired, live=live, owned=owned)
    return tuple(_walk((), before, after))


def unchanged(*, desired: Body, live: Body, owned: Iterable[Path] = ()) -> bool:
    """A cheap test that `compare` would find nothing (True is always right; False: ask it).

    True when every field of the desired normal form is in `live` with the same value,
    and every field we own lies inside the desired body (so none was removed in Git).
    Nothing of `live` is copied or canonicalised: an unchanged object, the steady state,
    costs one walk over the desired side. Any doubt answers False and `compare` decides.
    """
    shape, values = _normal_desired(desired, _rules(_group_kind(desired)))
    return _covered(shape.paths, values, live) and shape.holds_owned(owned)


# A desired body's fields, flattened once: the keys down to each value compared (its
# `_Shape`), and the values (`_A_MAP`: any map there will do, for an empty granular map).
Keys: TypeAlias = tuple[tuple[str, ...], ...]
_A_MAP = object()


@dataclass(frozen=True, slots=True, eq=False)
class _Shape:
    """The keys a desired body's checks look up, shared by every body of that shape.

    Thousands of bodies of one kind differ in their values only: one shape each keeps
    the per-object cost of the cache to a tuple of values (goal: 50,000 objects in less
    than 600 MB). The tree is built from the keys, so a map that held only ignored
    fields (`metadata` with a name alone) is absent from it: an owned path there answers
    "not inside", and `compare` decides, never the other way round.
    """

    paths: Keys
    tree: dict[str, Scope]
    # owned paths -> whether all lie inside `tree`: the same live objects are listed again
    # each run, and `fields.last_applied` returns one shared set for one fieldsV1.
    owned_inside: dict[frozenset[Path], bool] = field(default_factory=dict)

    def holds_owned(self, owned: Iterable[Path]) -> bool:
        key = owned if isinstance(owned, frozenset) else frozenset(owned)
        known = self.owned_inside.get(key)
        if known is None:
            if len(self.owned_inside) >= 64:
                self.owned_inside.clear()
            known = self.owned_inside[key] = all(_inside(self.tree, _to_list(path)) for path in key)
        return known


# The desired side's normal form, kept per body while the body lives: the controller
# plans the same rendered revision again and again, and each body is planned once per run.
# Only the shape (shared) and the values (shared with the body where already canonical)
# are kept, not a normalised copy of the body.
_NORMAL: dict[int, tuple[Body, _Shape, tuple[Any, ...]]] = {}
_NORMAL_MAX = 100_000
_SHAPES: dict[tuple[Keys, tuple[int, ...]], _Shape] = {}
_SHAPES_MAX = 10_000


def _normal_desired(desired: Body, rules: _Rules) -> tuple[_Shape, tuple[Any, ...]]:
    key = id(desired)
    hit = _NORMAL.get(key)
    if hit is not None and hit[0] is desired:
        return hit[1], hit[2]
    checks: list[tuple[tuple[str, ...], Any]] = []
    _flat_checks(_prepared(desired, rules), (), rules, checks)
    maps = tuple(i for i, (_, value) in enumerate(checks) if value is _A_MAP)
    shape = _shape_of(tuple(path for path, _ in checks), maps)
    values = tuple(value for _, value in checks)
    if len(_NORMAL) >= _NORMAL_MAX:
        _NORMAL.clear()  # a new revision's bodies replace the old ones
    _NORMAL[key] = (desired, shape, values)  # holding `desired` keeps its id from being reused
    return shape, values


def _shape_of(paths: Keys, maps: tuple[int, ...]) -> _Shape:
    found = _SHAPES.get((paths, maps))
    if found is None:
        if len(_SHAPES) >= _SHAPES_MAX:
            _SHAPES.clear()  # bodies cached already keep their own shape
        found = _SHAPES[(paths, maps)] = _Shape(paths, _tree(paths, frozenset(maps)))
    return found


def _tree(paths: Keys, maps: frozenset[int]) -> dict[str, Scope]:
    """The scope the checks cover: maps down to each key, the value compared whole (an
    empty granular map: a map with nothing in it)."""
    root: dict[str, Scope] = {}
    for i, path in enumerate(paths):
        if not path:
            continue  # the empty body itself: the root is that map
        node = root
        for step in path[:-1]:
            child = node.setdefault(step, {})
            assert isinstance(child, dict)  # a check's keys never pass through a leaf
            node = child
        node[path[-1]] = {} if i in maps else True
    return root


def _flat_checks(
    want: Any, path: tuple[str, ...], rules: _Rules, out: list[tuple[tuple[str, ...], Any]]
) -> None:
    """What `live` must hold for every field of `want` to be in it with the same value:
    granular maps key by key (an empty one: a map), lists and atomic maps whole."""
    if path in IGNORED:
        return
    if isinstance(want, dict) and not rules.is_atomic(path):
        if not want:
            out.append((path, _A_MAP))
        for k, v in want.items():
            _flat_checks(v, (*path, k), rules, out)
        return
    out.append((path, want))


def _covered(paths: Keys, values: tuple[Any, ...], live: Any) -> bool:
    """Every check holds in `live`: the flat form of `_covers`, one lookup per key."""
    for keys, want in zip(paths, values, strict=True):
        node = live
        for key in keys:
            if not isinstance(node, dict) or key not in node:
                return False  # a Mapping that is not a dict: doubt, and `compare` decides
            node = node[key]
        if want is _A_MAP:
            if not isinstance(node, dict):
                return False
        elif not _same(want, node):
            return False
    return True


def _inside(shape: Scope, path: tuple[str, ...]) -> bool:
    """`_claim` of this owned path would add nothing to the desired body's scope."""
    if any(path[: len(ignored)] == ignored for ignored in IGNORED):
        return True  # dropped from the scope whatever we own there
    node = shape
    for step in path:
        if not isinstance(node, dict):
            return True  # inside a field compared whole
        if step not in node:
            return False
        node = node[step]
    return True


def projections(
    *, desired: Body, live: Body | None, owned: Iterable[Path] = ()
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Both sides in normal form, cut to the fields in scope: what `compare` walks."""
    rules = _rules(_group_kind(desired))
    want = _prepared(desired, rules)
    scope = _scope(want, owned, rules)
    after = _compact(_project(want, scope, (), rules), rules.keep)
    if live is None:
        return None, after
    have = _project(_prepared(_lean(live), rules), scope, (), rules)
    return _compact(have, rules.keep), after


def _lean(live: Body) -> dict[str, Any]:
    """Live minus what is never compared (managedFields is most of a live object)."""
    meta = {k: v for k, v in (live.get("metadata") or {}).items() if k != "managedFields"}
    return {**{k: v for k, v in live.items() if k != "status"}, "metadata": meta}


def render_path(path: Path) -> str:
    """`spec.ingress[0].action`, `metadata.labels["app.kubernetes.io/name"]`."""
    text = ""
    for step in path:
        if isinstance(step, int):
            text += f"[{step}]"
        elif not _PLAIN_KEY.fullmatch(step):
            text += f"[{json.dumps(step)}]"  # label keys hold dots and slashes
        else:
            text += f".{step}" if text else step
    return text


# --- normal form ----------------------------------------------------------------------


def _group_kind(body: Body) -> GroupKind:
    return group_of(str(body.get("apiVersion") or "")), str(body.get("kind") or "")


@cache
def _rules(gk: GroupKind) -> _Rules:
    defaults = tuple((_pattern(p), v) for (g, k, p), v in DEFAULTS.items() if (g, k) == gk)
    atomic = tuple(_pattern(p) for g, k, p in sorted(ATOMIC) if (g, k) == gk)
    return _Rules(defaults, atomic, EMPTY_MEANS_ALL.get(gk, frozenset()))


def _prepared(body: Body, rules: _Rules) -> dict[str, Any]:
    """A canonical form with the server's defaults filled in: a new top-level map whose
    parts are the body's own wherever they are canonical already (never mutated: a
    default is filled in by copying the maps and lists on its way)."""
    fresh: dict[str, Any] = {str(k): _canon(v) for k, v in body.items() if v is not None}
    for pattern, value in rules.defaults:
        fresh = _filled(fresh, pattern, value)
    return fresh


def _canon(value: Any) -> Any:
    """`value` itself when canonical (the common case, nothing allocated), else a copy."""
    return value if _is_canon(value) else _canon_copy(value)


def _is_canon(value: Any) -> bool:
    """`_canon_copy(value)` would equal `value` in type and value everywhere (C-level
    `map`s, not generators: this walks every desired body once)."""
    if type(value) is str:
        return True
    if isinstance(value, Mapping):
        return (
            type(value) is dict
            and set(map(type, value)) <= {str}
            and None not in value.values()
            and all(map(_is_canon, value.values()))
        )
    if isinstance(value, list | tuple):
        return type(value) is list and all(map(_is_canon, value))
    return not (isinstance(value, float) and value.is_integer())


def _canon_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _canon_copy(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_canon_copy(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _filled(value: Any, pattern: tuple[str, ...], default: JSON | Derived) -> Any:
    """`value` with `default` where `pattern` leads to an unset field (absent, or an empty
    list: Go's len(nil) == 0); the maps and lists on the way are copied, never changed."""
    step, rest = pattern[0], pattern[1:]
    if not rest:
        if isinstance(value, dict) and value.get(step) in (None, []):
            made = default.compute(value) if isinstance(default, Derived) else copy.copy(default)
            return {**value, step: made}
        return value
    if step == _ANY_INDEX:
        if not isinstance(value, list):
            return value
        items = [_filled(v, rest, default) for v in value]
        return items if any(a is not b for a, b in zip(items, value, strict=True)) else value
    if isinstance(value, dict) and step in value:
        child = _filled(value[step], rest, default)
        if child is not value[step]:
            return {**value, step: child}
    return value


def _compact(value: Any, keep: frozenset[str]) -> Any:
    """Drop empty lists and maps held by a map (Go reads nil and empty alike)."""
    if isinstance(value, dict):
        kept = {k: _compact(v, keep) for k, v in value.items()}
        return {k: v for k, v in kept.items() if k in keep or not _is_empty(v)}
    if isinstance(value, list):
        return [_compact(v, keep) for v in value]
    return value


def _is_empty(value: Any) -> bool:
    return isinstance(value, dict | list) and not value


def _pattern(text: str) -> tuple[str, ...]:
    steps: list[str] = []
    for part in text.split("."):
        steps.append(part.partition("[")[0])
        steps.extend([_ANY_INDEX] * part.count(_ANY_INDEX))
    return tuple(steps)


def _matches(pattern: tuple[str, ...], path: Path) -> bool:
    if len(pattern) != len(path):
        return False
    pairs = zip(pattern, path, strict=True)
    return all(isinstance(s, int) if p == _ANY_INDEX else p == s for p, s in pairs)


# --- scope ----------------------------------------------------------------------------


def _scope(want: dict[str, Any], owned: Iterable[Path], rules: _Rules) -> dict[str, Scope]:
    shape = _shape(want, (), rules)
    scope: dict[str, Scope] = shape if isinstance(shape, dict) else {}
    for path in sorted(owned, key=lambda p: (len(p), repr(p))):  # outer fields first
        _claim(scope, _to_list(path))
    for path in IGNORED:
        _drop(scope, path)
    return scope


def _shape(value: Any, path: Path, rules: _Rules) -> Scope:
    if isinstance(value, dict) and not rules.is_atomic(path):
        return {k: _shape(v, (*path, k), rules) for k, v in value.items()}
    return True


def _to_list(path: Path) -> tuple[str, ...]:
    """Cut a path at its first list index: lists are compared whole."""
    cut = next((i for i, step in enumerate(path) if isinstance(step, int)), len(path))
    return tuple(str(step) for step in path[:cut])


def _claim(scope: dict[str, Scope], path: tuple[str, ...]) -> None:
    """Add an owned field; what the desired body sets inside it stays as it is."""
    node = scope
    for i, step in enumerate(path):
        child = node.get(step)
        if child is True:
            return
        if child is None or child is False:
            child = node[step] = True if i == len(path) - 1 else {}
        if isinstance(child, dict):
            node = child


def _drop(scope: dict[str, Scope], path: Path) -> None:
    *outer, last = path
    node: Scope = scope
    for step in outer:
        node = node.get(str(step), False) if isinstance(node, dict) else False
    if isinstance(node, dict):
        node.pop(str(last), None)


def _project(value: Any, scope: Scope, path: Path, rules: _Rules) -> Any:
    if not isinstance(scope, dict):
        # A granular map owned as a node: its children are scoped one by one.
        return {} if isinstance(value, dict) and not rules.is_atomic(path) else value
    if not isinstance(value, dict):
        return value
    return {k: _project(v, scope[k], (*path, k), rules) for k, v in value.items() if k in scope}


# --- walk -----------------------------------------------------------------------------


def _walk(path: Path, before: Any, after: Any) -> Iterator[Delta]:
    if _same(before, after):
        return
    pairs = _pairs(before, after)
    if pairs is None:
        yield Delta(path, before, after)
        return
    for step, old, new in pairs:
        yield from _walk((*path, step), old, new)


def _pairs(before: Any, after: Any) -> list[tuple[Step, Any, Any]] | None:
    """Children to descend into, or None when this is a leaf difference."""
    present = [v for v in (before, after) if v is not None]
    if len({type(v) for v in present}) != 1 or not any(present):
        return None  # a change of type, or absent against empty: one entry says it
    if isinstance(present[0], dict):
        old, new = before or {}, after or {}
        keys = [*new, *(k for k in old if k not in new)]
        return [(k, old.get(k), new.get(k)) for k in keys]
    if isinstance(present[0], list):
        old, new = before or [], after or []
        return [(i, _at(old, i), _at(new, i)) for i in range(max(len(old), len(new)))]
    return None


def _at(items: list[Any], index: int) -> Any:
    return items[index] if index < len(items) else None


def _same(a: Any, b: Any) -> bool:
    """Equality that keeps true apart from 1 and "80" apart from 80, but 10 == 10.0."""
    if type(a) is str:  # most values: one type check before the general case
        return type(b) is str and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and bool(a == b)
