"""Safe YAML: compose nodes with PyYAML's SafeLoader, build plain values ourselves.

Why not `yaml.safe_load`: it silently keeps the last of two duplicate keys, expands aliases
without bound (a "billion laughs" file eats all memory), reads YAML 1.1 sexagesimals
(`ports: [20:30]` becomes 1230, where kubectl's go-yaml keeps the string "20:30"), and forgets
line numbers. Here every mapping key and list item keeps its line, and every problem becomes
a Finding instead of an exception.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.composer import Composer, ComposerError
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader, ReaderError
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from reconciler.manifests.fieldpath import FieldPath, LineMap, format_path
from reconciler.model import Finding, Origin, Severity

_TAG = "tag:yaml.org,2002:"


@dataclass(frozen=True, slots=True)
class Limits:
    max_bytes: int = 4 * 1024 * 1024
    # Nodes built per file, alias expansions included. Only alias expansion gets near this:
    # a 4 MiB file of real policy is far below it, a billion-laughs file is far above.
    max_nodes: int = 250_000
    max_depth: int = 64  # a Calico policy nests about 8 deep


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class Document:
    value: Any  # dict / list / str / int / float / bool / None
    line: int  # 1-based line of the document's first node
    lines: LineMap
    has_null: bool = True  # False: no None anywhere in `value` (nothing to drop)


@dataclass(frozen=True, slots=True)
class Parsed:
    documents: tuple[Document, ...]
    findings: tuple[Finding, ...]


class _Exhausted(Exception):
    """The node budget ran out: stop reading this file."""


# libyaml's C parser (when PyYAML has it) scans ~10x faster than the pure-Python one.
try:
    from yaml._yaml import CParser

    _PARSER: tuple[type, ...] = (CParser,)
except ImportError:  # PyYAML built without libyaml
    _PARSER = (Reader, Scanner, Parser)


def _init_parser(loader: Any, text: str) -> None:
    if len(_PARSER) == 1:
        c_parser: Any = _PARSER[0]
        c_parser.__init__(loader, text)
    else:
        Reader.__init__(loader, text)
        Scanner.__init__(loader)
        Parser.__init__(loader)


class _Loader(Composer, *_PARSER, SafeConstructor, Resolver):  # type: ignore[misc]
    """Safe loader whose composer refuses documents nested deeper than `max_depth`.

    Checked while composing, so PyYAML's recursive composer never gets near Python's
    recursion limit.
    """

    def __init__(self, text: str, max_depth: int) -> None:
        _init_parser(self, text)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self._max_depth = max_depth
        self._depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if self._depth >= self._max_depth:
            mark = self.peek_event().start_mark
            raise ComposerError(None, None, f"nested deeper than {self._max_depth} levels", mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _libyaml_bounds_nesting() -> bool:
    """Whether libyaml refuses nesting past a fixed depth (1,000 levels, PyYAML >= 6.0.3).

    Only then may its composer run: it is recursive C code, and a 4 MiB file of `[` would
    otherwise run it off the C stack. A one-off probe of 2,000 levels, events only.
    """
    if len(_PARSER) != 1:
        return False
    probe: Any = _PARSER[0]("[" * 2000 + "]" * 2000)
    try:
        while probe.check_event():
            probe.get_event()
    except yaml.YAMLError:
        return True
    return False


class _CLoader(*_PARSER, SafeConstructor, Resolver):  # type: ignore[misc]
    """libyaml composes the nodes (the composer is most of the cost in Python); nesting
    past `max_depth` is refused by the builder, which sees every node's path.

    The tag of a plain scalar is resolved once per distinct value: a repo repeats its
    keys and values thousands of times, and each resolution is a regex walk.
    """

    def __init__(self, text: str, max_depth: int) -> None:
        _init_parser(self, text)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self._max_depth = max_depth
        self._tags: dict[str, str] = {}

    def resolve(self, kind: type, value: Any, implicit: Any) -> str:
        if kind is not ScalarNode or not implicit[0]:  # quoted, or a list or map
            return _DEFAULT_TAGS[kind]  # the safe resolver has no path resolvers
        tag = self._tags.get(value)
        if tag is None:
            tag = self._tags[value] = _resolve(self, kind, value, implicit)
        return tag

    # Path resolvers are never registered (SafeLoader's), so libyaml's composer may skip
    # the two calls it makes per node to track them: `operator.is_` takes the same two
    # arguments and does nothing at C speed; `tuple` takes none.
    descend_resolver = staticmethod(operator.is_)  # type: ignore[assignment]
    ascend_resolver = staticmethod(tuple)  # type: ignore[assignment]


_DEFAULT_TAGS = {
    ScalarNode: Resolver.DEFAULT_SCALAR_TAG,
    SequenceNode: Resolver.DEFAULT_SEQUENCE_TAG,
    MappingNode: Resolver.DEFAULT_MAPPING_TAG,
}
_resolve: Callable[[Resolver, type, Any, Any], str] = Resolver.resolve  # untyped in stubs
_LOADER: type[_Loader] | type[_CLoader] = _CLoader if _libyaml_bounds_nesting() else _Loader


def parse_yaml(text: str, *, path: str, limits: Limits = DEFAULT_LIMITS) -> Parsed:
    """Every document in `text`, with problems as findings. Never raises."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limits.max_bytes:
        too_big = _error(path, 0, f"file is {size} bytes; the limit is {limits.max_bytes}")
        return Parsed((), (too_big,))
    try:
        loader = _LOADER(text, limits.max_depth)
    except yaml.YAMLError as err:  # the reader checks every character up front
        return Parsed((), (_yaml_error(err, path, text),))
    builder = _Builder(loader, path, limits)
    try:
        docs = _documents(loader, builder, text)
    finally:
        loader.dispose()
    return Parsed(docs, tuple(builder.findings))


def _documents(loader: _Loader | _CLoader, builder: _Builder, text: str) -> tuple[Document, ...]:
    docs: list[Document] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                docs.append(builder.document(node))
    except _Exhausted:
        pass  # already reported by the builder; the rest of the file is not read
    except yaml.YAMLError as err:  # PyYAML cannot resume after a syntax error
        builder.findings.append(_yaml_error(err, builder.path, text))
    except RecursionError:
        builder.findings.append(_error(builder.path, 0, "YAML nested too deeply"))
    return tuple(docs)


def _yaml_error(err: yaml.YAMLError, path: str, text: str) -> Finding:
    if isinstance(err, yaml.MarkedYAMLError):
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else 0
        parts = (err.context, err.problem)
        return _error(path, line, "YAML error: " + ", ".join(p for p in parts if p))
    if isinstance(err, ReaderError):  # bad bytes or control characters
        line = text.count("\n", 0, err.position) + 1
        char = err.character
        shown = f"#x{char:04x}" if isinstance(char, int) else repr(char)
        return _error(path, line, f"YAML error: character {shown}: {err.reason}")
    return _error(path, 0, f"YAML error: {err}")


def _error(path: str, line: int, message: str, field: str = "") -> Finding:
    return Finding(Severity.ERROR, message, Origin(path, line), field=field)


def _as_str(loader: SafeConstructor, node: ScalarNode) -> Any:
    return node.value


def _as_int(loader: SafeConstructor, node: ScalarNode) -> Any:
    if ":" in node.value:
        return node.value  # YAML 1.1 sexagesimal: go-yaml (kubectl) reads a string
    return loader.construct_yaml_int(node)


def _as_float(loader: SafeConstructor, node: ScalarNode) -> Any:
    if ":" in node.value:
        return node.value
    value = loader.construct_yaml_float(node)
    if not math.isfinite(value):
        raise ValueError("infinity and NaN cannot be written as JSON")
    return value


# Plain JSON-able scalars only. Timestamps stay strings, as in Kubernetes' YAML-to-JSON.
_SCALARS: dict[str, Callable[[SafeConstructor, ScalarNode], Any]] = {
    _TAG + "str": _as_str,
    _TAG + "int": _as_int,
    _TAG + "float": _as_float,
    _TAG + "bool": lambda loader, node: loader.construct_yaml_bool(node),
    _TAG + "null": lambda loader, node: None,
    _TAG + "timestamp": _as_str,
    _TAG + "value": _as_str,  # a bare "=" scalar
}
_KEY_TAGS = frozenset({_TAG + "str", _TAG + "timestamp", _TAG + "value"})


def _show_tag(tag: str) -> str:
    return "!!" + tag.removeprefix(_TAG) if tag.startswith(_TAG) else tag


class _Builder:
    """Builds plain values from composed nodes, recording the line of every key and item.

    Mutable only while one file is read; the node budget spans all documents of the file.
    """

    __slots__ = ("_budget", "_lines", "_loader", "_max_depth", "_null", "findings", "path")

    def __init__(self, loader: SafeConstructor, path: str, limits: Limits) -> None:
        self._loader = loader  # for its scalar constructors
        self.path = path
        self._budget = limits.max_nodes
        self._max_depth = limits.max_depth
        self._lines: dict[FieldPath, int] = {}
        self._null = False  # a None was built in this document
        self.findings: list[Finding] = []

    def document(self, node: Node) -> Document:
        self._lines = {}
        self._null = False
        value = self._build(node, ())
        return Document(value, node.start_mark.line + 1, self._lines, self._null or value is None)

    def _fail(self, node: Node, at: FieldPath, message: str) -> None:
        line = node.start_mark.line + 1
        field = format_path(at[:16]) + ("..." if len(at) > 16 else "")
        self.findings.append(_error(self.path, line, message, field))

    def _spend(self, node: Node, at: FieldPath) -> None:
        self._budget -= 1
        if self._budget < 0:
            self._fail(node, at, "too many YAML nodes (alias expansion?): refusing the file")
            raise _Exhausted
        if len(at) >= self._max_depth:  # the depth at which _Loader's composer stops too
            self._fail(node, at, f"nested deeper than {self._max_depth} levels")
            raise _Exhausted

    def _build(self, node: Node, at: FieldPath) -> Any:
        self._spend(node, at)
        if isinstance(node, ScalarNode):
            value = self._scalar(node, at)
        elif isinstance(node, SequenceNode):
            value = self._sequence(node, at)
        elif isinstance(node, MappingNode):
            value = self._mapping(node, at)
        else:
            self._fail(node, at, "unsupported YAML node")
            value = None
        if value is None:
            self._null = True
        return value

    def _refuse_tag(self, node: Node, at: FieldPath) -> None:
        self._fail(
            node,
            at,
            f"YAML tag {_show_tag(node.tag)} is not allowed: "
            "only plain strings, numbers, booleans, null, lists and maps",
        )

    def _scalar(self, node: ScalarNode, at: FieldPath) -> Any:
        construct = _SCALARS.get(node.tag)
        if construct is None:
            self._refuse_tag(node, at)
            return None
        try:
            return construct(self._loader, node)
        except (ValueError, yaml.YAMLError) as err:
            self._fail(node, at, f"invalid {_show_tag(node.tag)} value {node.value!r}: {err}")
            return None

    def _sequence(self, node: SequenceNode, at: FieldPath) -> list[Any] | None:
        if node.tag != _TAG + "seq":
            self._refuse_tag(node, at)
            return None
        out = []
        for index, item in enumerate(node.value):
            self._lines[(*at, index)] = item.start_mark.line + 1
            out.append(self._build(item, (*at, index)))
        return out

    def _mapping(self, node: MappingNode, at: FieldPath) -> dict[str, Any] | None:
        if node.tag != _TAG + "map":
            self._refuse_tag(node, at)
            return None
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self._key(key_node, at)
            if key is None:
                continue
            here = (*at, key)
            if key in out:
                first = self._lines[here]
                self._fail(key_node, here, f"duplicate key {key!r} (first at line {first})")
                continue
            self._lines[here] = key_node.start_mark.line + 1
            out[key] = self._build(value_node, here)
        return out

    def _key(self, node: Node, at: FieldPath) -> str | None:
        self._spend(node, at)
        if node.tag == _TAG + "merge":
            self._fail(node, at, "YAML merge keys (<<) are not supported: write the fields out")
        elif not isinstance(node, ScalarNode):
            self._fail(node, at, "a mapping key must be a plain string")
        elif node.tag not in _KEY_TAGS:
            self._fail(node, at, f"mapping key {node.value!r} must be a string: quote it")
        else:
            return str(node.value)
        return None
