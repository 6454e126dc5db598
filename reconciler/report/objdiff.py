"""An object's change as a YAML diff with context, as `kubectl diff` and `flux diff` show it.

Both sides are YAML documents of the compared fields: Git's (after) and the cluster's
(before). For an update they are built from the desired body and the change's field
entries, so a pull request's report, which keeps only its own entries, shows only those.
Nothing is ever cut: a value that differs is printed whole. Around each changed line
the reader gets its YAML ancestors (`spec:`, `ingress:`, the rule's `- action: Allow`
line), the whole rule when it is short, and two lines either side; the rest collapses
into `@@ N unchanged lines @@`.

A long line that changed in place gets a word-level mark: the changed words are
underlined with `^` on the next line (plain text and Markdown), or shown in reverse
video on a colour terminal.

Bookkeeping (the ApplySet label, Calico's `projectcalico.org/metadata` annotation,
`policy-reconciler.io/` annotations, kubectl's last-applied annotation) is left out
unless asked for (`--show-managed-fields`). If the documents cannot be made to show
exactly the change's entries, the renderer falls back to one line per field, in full.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from reconciler.model import JSON, Action, Change, DiffEntry
from reconciler.plan.diff import normalise
from reconciler.report.jsonout import LAST_APPLIED, jsonable, same_json, visible

CONTEXT = 2  # unchanged lines shown either side of a change
FOLD = 90  # long strings fold (at spaces, as YAML allows) so a change near the end shows
WHOLE_RULE = 15  # a list item (a rule) this short is shown whole around its change
LONG_LINE = 60  # a changed line this long gets word-level marks
_STEP = re.compile(r'\.?([A-Za-z0-9_-]+)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]')
_WORD = re.compile(r"\w+|\s+|[^\w\s]")
_HIDDEN_LABELS = ("applyset.kubernetes.io/",)
_HIDDEN_ANNOTATIONS = (
    "applyset.kubernetes.io/",
    "projectcalico.org/metadata",
    "policy-reconciler.io/",
    LAST_APPLIED,
)
_IDENTITY = ("apiVersion", "kind", "status")

Step = str | int
Doc = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Line:
    """One line of the diff: sign ' ', '-', '+', or '@' (a run of unchanged lines);
    `marks` are the (start, end) character spans of `text` that changed."""

    sign: str
    text: str
    marks: tuple[tuple[int, int], ...] = ()

    @property
    def changed(self) -> bool:
        return self.sign in "-+"


@dataclass(frozen=True, slots=True)
class ObjectDiff:
    lines: tuple[Line, ...]
    hidden: int = 0  # bookkeeping fields that changed but are not shown

    @property
    def added(self) -> int:
        return sum(1 for line in self.lines if line.sign == "+")

    @property
    def removed(self) -> int:
        return sum(1 for line in self.lines if line.sign == "-")


def object_diff(change: Change, *, show_managed: bool = False) -> ObjectDiff | None:
    """The change as a YAML diff; None when its entries cannot be shown that way."""
    docs = object_documents(change, show_managed=show_managed)
    if docs is None:
        return None
    before, after, hidden = docs
    lines = diff_documents(before, after)
    return ObjectDiff(tuple(_in_context(lines)), hidden)


def object_documents(
    change: Change, *, show_managed: bool = False
) -> tuple[Doc | None, Doc | None, int] | None:
    """Both sides as documents that differ in exactly the change's entries (bookkeeping
    left out unless `show_managed`, and counted), or None."""
    docs = _documents(change, visible(change.diff))
    if docs is None:
        return None
    before, after = docs
    if show_managed:
        return before, after, 0
    hidden = _hidden_count(before, after)
    return _without_bookkeeping(before), _without_bookkeeping(after), hidden


def bookkeeping(path: str) -> bool:
    """A field path (as `DiffEntry.path`) that is our or Calico's bookkeeping."""
    steps = parse_path(path)
    if steps is None or len(steps) < 3 or steps[0] != "metadata":
        return False
    hidden = {"labels": _HIDDEN_LABELS, "annotations": _HIDDEN_ANNOTATIONS}.get(str(steps[1]))
    return bool(hidden) and str(steps[2]).startswith(hidden or ())


# --- the two documents ------------------------------------------------------------------


def _documents(
    change: Change, entries: Sequence[DiffEntry]
) -> tuple[Doc | None, Doc | None] | None:
    if change.action is Action.PRUNE and not entries:
        return _body_doc(change.live or {}), None
    if change.action is Action.CREATE and change.desired is not None:
        # The entries add what the server defaults (policy types): set them over the body.
        after = _with(_body_doc(change.desired.body), ((e.path, e.after) for e in entries))
        return (None, after) if after is not None and _holds(after, entries) else None
    if change.desired is None:
        return None
    context = _body_doc(change.desired.body)
    before = _with(context, ((e.path, e.before) for e in entries))
    after = _with(context, ((e.path, e.after) for e in entries))
    if before is None or after is None or not _shows(before, after, entries):
        return None
    return before, after


def _body_doc(body: Mapping[str, Any]) -> Doc:
    """The fields a reader compares, in the planner's normal form (server defaults in,
    empty lists and maps out): labels, annotations, then everything else but identity."""
    body = normalise(body)
    doc: Doc = {}
    meta = body.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}  # hostile input never raises here
    kept = {k: meta[k] for k in ("labels", "annotations") if meta.get(k)}
    if kept:
        doc["metadata"] = kept
    doc.update({k: v for k, v in body.items() if k not in (*_IDENTITY, "metadata")})
    scrubbed = jsonable(doc)
    return scrubbed if isinstance(scrubbed, dict) else {}


def _holds(after: Doc, entries: Sequence[DiffEntry]) -> bool:
    return all(same_json(_get(after, parse_path(e.path)), e.after) for e in entries)


def _shows(before: Doc, after: Doc, entries: Sequence[DiffEntry]) -> bool:
    """The documents differ in exactly the change's entries."""
    found = {(p, _key(b), _key(a)) for p, b, a in leaves((), before, after)}
    wanted = {
        (tuple(parse_path(e.path) or ()), _key(jsonable(e.before)), _key(jsonable(e.after)))
        for e in entries
    }
    return found == wanted or _same_leaves(before, after, entries)


def _same_leaves(before: Doc | None, after: Doc | None, entries: Sequence[DiffEntry]) -> bool:
    """Entries may stop at a whole list or map: compare each entry's value at its path."""
    paths: list[tuple[Step, ...]] = []
    for entry in entries:
        path = parse_path(entry.path)
        if path is None:
            return False
        if not same_json(_get(before, path), entry.before):
            return False
        if not same_json(_get(after, path), entry.after):
            return False
        paths.append(path)
    return all(any(p[: len(c)] == c for c in paths) for p, _, _ in leaves((), before, after))


def _key(value: JSON) -> str:
    return json.dumps(value, sort_keys=True)


def leaves(
    path: tuple[Step, ...], before: Any, after: Any
) -> Iterator[tuple[tuple[Step, ...], Any, Any]]:
    """Leaf differences, walked as the planner walks them (plan/diff.py `_walk`)."""
    if same_json(before, after):
        return
    present = [v for v in (before, after) if v is not None]
    if len({type(v) for v in present}) != 1 or not any(present):
        yield path, before, after
        return
    if isinstance(present[0], dict):
        old, new = before or {}, after or {}
        for k in [*new, *(k for k in old if k not in new)]:
            yield from leaves((*path, k), old.get(k), new.get(k))
        return
    if isinstance(present[0], list):
        old, new = before or [], after or []
        for i in range(max(len(old), len(new))):
            yield from leaves(
                (*path, i), old[i] if i < len(old) else None, new[i] if i < len(new) else None
            )
        return
    yield path, before, after


def parse_path(path: str) -> tuple[Step, ...] | None:
    """`spec.ingress[0]["a.b/c"]` -> ("spec", "ingress", 0, "a.b/c"); None if malformed."""
    steps: list[Step] = []
    at = 0
    while at < len(path):
        match = _STEP.match(path, at)
        if match is None or match.end() == at:
            return None
        name, index, quoted = match.groups()
        steps.append(name if name is not None else int(index) if index else json.loads(quoted))
        at = match.end()
    return tuple(steps)


def _get(doc: Any, path: tuple[Step, ...] | None) -> Any:
    if path is None:
        return object()  # never equal to a value
    for step in path:
        if not _has(doc, step):
            return None
        doc = doc[step]
    return doc


def _with(context: Doc, values: Iterable[tuple[str, JSON]]) -> Doc | None:
    """`context` with each path set to its value; None deletes (emptied parents go too)."""
    doc: Any = json.loads(json.dumps(context))
    deletions: list[tuple[Step, ...]] = []
    for text, value in values:
        path = parse_path(text)
        if not path:
            return None
        if value is None:
            deletions.append(path)
        elif not _set(doc, path, jsonable(value)):
            return None
    for path in sorted(deletions, key=_order, reverse=True):
        _delete(doc, path)
    return doc if isinstance(doc, dict) else None


def _order(path: tuple[Step, ...]) -> tuple[tuple[int, int, str], ...]:
    return tuple((0, s, "") if isinstance(s, int) else (1, 0, s) for s in path)


def _set(doc: Any, path: tuple[Step, ...], value: JSON) -> bool:
    *outer, last = path
    for i, step in enumerate(outer):
        child: Any = [] if isinstance(path[i + 1], int) else {}
        holder = _child(doc, step, child)
        if holder is None:
            return False
        doc = holder
    return _put(doc, last, value)


def _child(doc: Any, step: Step, empty: Any) -> Any:
    if isinstance(step, str) and isinstance(doc, dict):
        return doc.setdefault(step, empty)
    if isinstance(step, int) and isinstance(doc, list) and step <= len(doc):
        if step == len(doc):
            doc.append(empty)
        return doc[step]
    return None


def _put(doc: Any, step: Step, value: JSON) -> bool:
    if isinstance(step, str) and isinstance(doc, dict):
        doc[step] = value
        return True
    if isinstance(step, int) and isinstance(doc, list) and step <= len(doc):
        doc[step : step + 1] = [value]
        return True
    return False


def _delete(doc: Any, path: tuple[Step, ...]) -> None:
    chain = [doc]  # the containers along the path
    for step in path[:-1]:
        if not _has(chain[-1], step):
            return
        chain.append(chain[-1][step])
    for holder, step in zip(reversed(chain), reversed(path), strict=False):
        if not _has(holder, step):
            return
        del holder[step]
        if holder:  # a parent emptied by the deletion goes too, as in the normal form
            return


def _has(holder: Any, step: Step) -> bool:
    if isinstance(step, int):
        return isinstance(holder, list) and step < len(holder)
    return isinstance(holder, dict) and step in holder


def _hidden_count(before: Doc | None, after: Doc | None) -> int:
    count = 0
    for path, _, _ in leaves((), before, after):
        if len(path) >= 3 and bookkeeping(_render(path)):
            count += 1
    return count


def _render(path: tuple[Step, ...]) -> str:
    text = ""
    for step in path:
        if isinstance(step, int):
            text += f"[{step}]"
        elif re.fullmatch(r"[A-Za-z0-9_-]+", step):
            text += f".{step}" if text else step
        else:
            text += f"[{json.dumps(step)}]"
    return text


def _without_bookkeeping(doc: Doc | None) -> Doc | None:
    if doc is None:
        return None
    found = doc.get("metadata")
    meta = dict(found) if isinstance(found, Mapping) else {}
    for key, hidden in (("labels", _HIDDEN_LABELS), ("annotations", _HIDDEN_ANNOTATIONS)):
        held = meta.get(key)
        held = held if isinstance(held, Mapping) else {}
        kept = {k: v for k, v in held.items() if not str(k).startswith(hidden)}
        meta.pop(key, None)
        if kept:
            meta[key] = kept
    rest = {k: v for k, v in doc.items() if k != "metadata"}
    return {"metadata": meta, **rest} if meta else rest


# --- YAML lines and context ---------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Block YAML. A string with line breaks is quoted with `\\n`, and a long one folds
    at spaces over several lines (the same string, to YAML): a change at the end of a
    long selector is then a short changed line next to unchanged ones."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = '"' if any(ch in value for ch in "\n\r\x85\u2028\u2029") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _string)


def to_yaml(doc: Doc | None) -> list[str]:
    if not doc:
        return []
    text = yaml.dump(
        doc,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=FOLD,
    )
    return text.splitlines()


def diff_documents(before: Doc | None, after: Doc | None) -> list[Line]:
    """Every line of both documents, signed, with word marks on long lines changed in place."""
    old, new = to_yaml(before), to_yaml(after)
    lines: list[Line] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if op == "equal":
            lines += [Line(" ", t) for t in old[i1:i2]]
        elif op == "replace" and i2 - i1 == j2 - j1:
            pairs = list(zip(old[i1:i2], new[j1:j2], strict=True))
            lines += [_marked("-", a, b, side=0) for a, b in pairs]
            lines += [_marked("+", b, a, side=1) for a, b in pairs]
        else:
            lines += [Line("-", t) for t in old[i1:i2]]
            lines += [Line("+", t) for t in new[j1:j2]]
    return lines


def _marked(sign: str, text: str, other: str, *, side: int) -> Line:
    if max(len(text), len(other)) < LONG_LINE:
        return Line(sign, text)
    mine, theirs = _WORD.findall(text), _WORD.findall(other)
    pair = (theirs, mine) if side else (mine, theirs)
    spans: list[tuple[int, int]] = []
    offsets = _offsets(mine)
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, *pair, autojunk=False).get_opcodes():
        lo, hi = (j1, j2) if side else (i1, i2)
        if op != "equal" and hi > lo:
            spans.append((offsets[lo], offsets[hi]))
    changed = sum(b - a for a, b in spans)
    return Line(sign, text, tuple(spans)) if 0 < changed < 0.6 * len(text) else Line(sign, text)


def _offsets(words: Sequence[str]) -> list[int]:
    at, out = 0, [0]
    for word in words:
        at += len(word)
        out.append(at)
    return out


def _in_context(lines: Sequence[Line]) -> Iterator[Line]:
    """Changed lines, their ancestors, short enclosing rules and CONTEXT neighbours."""
    if all(line.changed for line in lines) or not any(line.changed for line in lines):
        yield from (line for line in lines if line.changed)
        return
    keep: set[int] = set()
    for i, line in enumerate(lines):
        if line.changed:
            keep.update(range(max(0, i - CONTEXT), min(len(lines), i + CONTEXT + 1)))
            keep.update(_ancestors(lines, i))
    skipped = 0
    for i, line in enumerate(lines):
        if i in keep:
            if skipped:
                yield Line("@", f"{skipped} unchanged line{'s' if skipped > 1 else ''}")
                skipped = 0
            yield line
        else:
            skipped += 1
    if skipped:
        yield Line("@", f"{skipped} unchanged line{'s' if skipped > 1 else ''}")


def _column(text: str) -> int:
    """Where the content starts: after the indent and any `- ` list markers."""
    stripped = text.lstrip(" -")
    return len(text) - len(stripped)


def _ancestors(lines: Sequence[Line], at: int) -> set[int]:
    """Lines that hold line `at` (less indented, above it), and each short list item
    (a rule, a peer) that holds it, whole: its action and peer are then on the page."""
    found: set[int] = set()
    keys, items = _limits(lines[at].text)
    for i in range(at - 1, -1, -1):
        text = lines[i].text
        if {lines[i].sign, lines[at].sign} == {"-", "+"}:
            continue  # the other side's lines are not this line's parents
        if _is_item(text) and _indent(text) < items:
            found.update(_item_lines(lines, i))
            keys, items = _indent(text) + 1, _indent(text)
        elif not _is_item(text) and _column(text) < keys:
            found.add(i)
            keys = items = _column(text)
        if keys == 0:
            break
    return found


def _limits(text: str) -> tuple[int, int]:
    """Below which column a key, and a list item's dash, holds this line. PyYAML puts a
    list's dashes in its key's column, so that key holds a dash line in the same column."""
    if _is_item(text):
        return _indent(text) + 1, _indent(text)
    return _column(text), _column(text)


def _is_item(text: str) -> bool:
    return text.lstrip(" ").startswith("- ") or text.strip() == "-"


def _item_lines(lines: Sequence[Line], start: int) -> range:
    """The list item that starts at `start`, if it is short enough to show whole."""
    dash = _indent(lines[start].text)
    end = start + 1
    while end < len(lines) and _indent(lines[end].text) > dash:
        end += 1
    return range(start, end) if end - start <= WHOLE_RULE else range(start, start + 1)


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip(" "))


__all__ = [
    "Line",
    "ObjectDiff",
    "bookkeeping",
    "diff_documents",
    "object_diff",
    "object_documents",
    "parse_path",
    "to_yaml",
]
