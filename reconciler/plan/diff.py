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
    want = _normal_desired(desired, _rules(_group_kind(desired)))
    return _covered(want.checks, live) and want.holds_owned(owned)


# A desired body's fields, flattened once: the keys down to each value compared, and
# the value (`_A_MAP`: any map there will do, for an empty granular map).
Checks: TypeAlias = tuple[tuple[tuple[str, ...], Any], ...]
_A_MAP = object()


@dataclass(frozen=True, slots=True)
class _NormalDesired:
    body: dict[str, Any]  # prepared (canonical, defaults filled), not compacted
    shape: Scope  # its scope without owned fields: what `_scope` starts from
    checks: Checks  # what `unchanged` looks up in the live object
    # owned paths -> whether all lie inside `shape`: the same live object is listed again
    # each run, and `fields.last_applied` returns one shared set for one fieldsV1.
    owned_inside: dict[frozenset[Path], bool] = field(default_factory=dict)

    def holds_owned(self, owned: Iterable[Path]) -> bool:
        key = owned if isinstance(owned, frozenset) else frozenset(owned)
        known = self.owned_inside.get(key)
        if known is None:
            if len(self.owned_inside) >= 4:
                self.owned_inside.clear()
            known = self.owned_inside[key] = all(
                _inside(self.shape, _to_list(path)) for path in key
            )
        return known


# The desired side's normal form, kept per body while the body lives: the controller
# plans the same rendered revision again and again, and each body is planned once per run.
_NORMAL: dict[int, tuple[Body, _NormalDesired]] = {}
_NORMAL_MAX = 100_000


def _normal_desired(desired: Body, rules: _Rules) -> _NormalDesired:
    key = id(desired)
    hit = _NORMAL.get(key)
    if hit is not None and hit[0] is desired:
        return hit[1]
    want = _prepared(desired, rules)
    shape = _shape(want, (), rules)
    for path in IGNORED:
        if isinstance(shape, dict):
            _drop(shape, path)
    normal = _NormalDesired(want, shape, tuple(_flat_checks(want, (), rules)))
    if len(_NORMAL) >= _NORMAL_MAX:
        _NORMAL.clear()  # a new revision's bodies replace the old ones
    _NORMAL[key] = (desired, normal)  # holding `desired` keeps its id from being reused
    return normal


def _flat_checks(want: Any, path: tuple[str, ...], rules: _Rules) -> Iterator[tuple[Any, Any]]:
    """What `live` must hold for every field of `want` to be in it with the same value:
    granular maps key by key (an empty one: a map), lists and atomic maps whole."""
    if path in IGNORED:
        return
    if isinstance(want, dict) and not rules.is_atomic(path):
        if not want:
            yield path, _A_MAP
        for k, v in want.items():
            yield from _flat_checks(v, (*path, k), rules)
        return
    yield path, want


def _covered(checks: Checks, live: Any) -> bool:
    """Every check holds in `live`: the flat form of `_covers`, one lookup per key."""
    for keys, want in checks:
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
    """A fresh canonical copy with the server's defaults filled in."""
    fresh: dict[str, Any] = {str(k): _canon(v) for k, v in body.items() if v is not None}
    for pattern, value in rules.defaults:
        _fill(fresh, pattern, value)
    return fresh


def _canon(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _canon(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_canon(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _fill(body: dict[str, Any], pattern: tuple[str, ...], value: JSON | Derived) -> None:
    *outer, name = pattern
    for holder in _holders(body, tuple(outer)):
        if holder.get(name) in (None, []):
            holder[name] = value.compute(holder) if isinstance(value, Derived) else copy.copy(value)


def _holders(value: Any, pattern: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    if not pattern:
        if isinstance(value, dict):
            yield value
        return
    for child in _children(value, pattern[0]):
        yield from _holders(child, pattern[1:])


def _children(value: Any, step: str) -> list[Any]:
    if step == _ANY_INDEX:
        return value if isinstance(value, list) else []
    if isinstance(value, dict) and step in value:
        return [value[step]]
    return []


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
