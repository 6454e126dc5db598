"""A small schema language: the known fields of each kind, their JSON types and checks, as data.

A walk over a value reports every problem it finds (never just the first) as an Issue whose
path is relative to the value walked. Unknown fields are errors: the v1 CRDs accept and
silently drop a misspelt `ingres:`.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.manifests.fieldpath import FieldPath
from reconciler.model import Severity

STRING = frozenset({"string"})
INTEGER = frozenset({"integer"})
NUMBER = frozenset({"integer", "number"})
BOOLEAN = frozenset({"boolean"})
INT_OR_STRING = frozenset({"integer", "string"})


@dataclass(frozen=True, slots=True)
class Issue:
    path: FieldPath
    message: str
    severity: Severity = Severity.ERROR


LeafCheck = Callable[[Any], str | None]  # a value of the right JSON type -> problem or None
ObjCheck = Callable[[Mapping[str, Any]], Iterable[Issue]]  # cross-field checks of one object
SeqCheck = Callable[[list[Any]], Iterable[Issue]]


@dataclass(frozen=True, slots=True)
class Scalar:
    types: frozenset[str]
    check: LeafCheck | None = None


@dataclass(frozen=True, slots=True)
class Seq:
    item: Node
    check: SeqCheck | None = None


@dataclass(frozen=True, slots=True)
class Dict:
    """A map with free keys, such as labels."""

    key: LeafCheck | None
    value: Node


@dataclass(frozen=True, slots=True)
class Obj:
    fields: Mapping[str, Node]
    required: frozenset[str] = frozenset()
    checks: tuple[ObjCheck, ...] = field(default=())


Node = Scalar | Seq | Dict | Obj


def json_type(value: Any) -> str:
    exact = _EXACT_TYPES.get(type(value))  # the common case: a plain JSON value
    if exact is not None:
        return exact
    if isinstance(value, bool):  # before int: bool is an int in Python
        return "boolean"
    for types, name in _JSON_TYPES:
        if isinstance(value, types):
            return name
    return type(value).__name__


_JSON_TYPES: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (dict, "object"),
    (list, "array"),
    (type(None), "null"),
)
_EXACT_TYPES: dict[type, str] = {
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    dict: "object",
    list: "array",
    type(None): "null",
}


def walk(node: Node, value: Any, at: FieldPath = ()) -> Iterator[Issue]:
    """Every problem of `value` against `node`. A null value is an absent one, as in JSON."""
    if value is None:
        return
    if isinstance(node, Scalar):
        yield from _scalar(node, value, at)
    elif isinstance(node, Seq):
        yield from _seq(node, value, at)
    elif isinstance(node, Dict):
        yield from _dict(node, value, at)
    else:
        yield from _obj(node, value, at)


def _wrong_type(expected: str, value: Any, at: FieldPath) -> Issue:
    got = json_type(value)
    quotable = expected == "a string" and got in ("boolean", "integer", "number")
    hint = f""" (quote it: '{json.dumps(value)}')""" if quotable else ""
    return Issue(at, f"must be {expected}, not {got}{hint}")


def _describe(types: frozenset[str]) -> str:
    if types == NUMBER:
        return "a number"
    names = {"string": "a string", "integer": "an integer", "boolean": "true or false"}
    return " or ".join(names[t] for t in sorted(types))


def _scalar(node: Scalar, value: Any, at: FieldPath) -> Iterator[Issue]:
    if json_type(value) not in node.types:
        yield _wrong_type(_describe(node.types), value, at)
        return
    problem = node.check(value) if node.check else None
    if problem:
        yield Issue(at, problem)


def _seq(node: Seq, value: Any, at: FieldPath) -> Iterator[Issue]:
    if not isinstance(value, list):
        yield _wrong_type("a list", value, at)
        return
    for index, item in enumerate(value):
        if item is None:  # a null in a map is an absent key; in a list it is a hole
            yield Issue((*at, index), "a list item must not be empty (null)")
        yield from walk(node.item, item, (*at, index))
    if node.check:
        yield from _under(at, node.check(value))


def _dict(node: Dict, value: Any, at: FieldPath) -> Iterator[Issue]:
    if not isinstance(value, dict):
        yield _wrong_type("a map", value, at)
        return
    for key, item in value.items():
        problem = node.key(key) if node.key else None
        if problem:
            yield Issue((*at, key), problem)
        yield from walk(node.value, item, (*at, key))


def _obj(node: Obj, value: Any, at: FieldPath) -> Iterator[Issue]:
    if not isinstance(value, dict):
        yield _wrong_type("a map", value, at)
        return
    for key, item in value.items():
        child = node.fields.get(key)
        if child is None:
            yield Issue((*at, key), unknown_field(key, node.fields))
        else:
            yield from walk(child, item, (*at, key))
    for name in sorted(node.required):
        if value.get(name) is None:
            yield Issue((*at, name), "required field is missing")
    for check in node.checks:
        yield from _under(at, check(value))


def unknown_field(key: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown field {key!r}{hint}"


def unique_items(items: list[Any]) -> Iterator[Issue]:
    """No entry twice: Calico 3.32 CRDs make these lists sets, and a repeat is a mistake anyway."""
    seen: set[str] = set()
    for index, item in enumerate(items):
        key = json.dumps(item, sort_keys=True, default=str)
        if key in seen:
            yield Issue((index,), f"duplicate entry {item!r}")
        seen.add(key)


def _under(at: FieldPath, issues: Iterable[Issue]) -> Iterator[Issue]:
    for issue in issues:
        yield Issue((*at, *issue.path), issue.message, issue.severity)
