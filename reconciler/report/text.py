"""Terminal report, in the spirit of `flux diff`: one block per change that matters.

Unchanged objects are only counted. The line builders here (field diff, drift,
counts) are shared with the Markdown renderer so both read the same.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace

from reconciler import FIELD_MANAGER
from reconciler.model import (
    JSON,
    Action,
    ApplyResult,
    Change,
    DiffEntry,
    FieldChange,
    Finding,
    ObjectRef,
    Plan,
    Severity,
)
from reconciler.plan.guard import is_refusal
from reconciler.report import checks
from reconciler.report.jsonout import change_entries, errors_first, join_path, jsonable
from reconciler.report.objdiff import Line, bookkeeping, object_diff

WIDTH = 100  # longest value shown on one line before it is expanded (never cut)

_RESET, _BOLD, _RED, _GREEN, _YELLOW = "\x1b[0m", "\x1b[1m", "\x1b[31m", "\x1b[32m", "\x1b[33m"
_CYAN, _REVERSE = "\x1b[36m", "\x1b[7m"
_ACTION_COLOR = {
    Action.CREATE: _GREEN,
    Action.UPDATE: _YELLOW,
    Action.DRIFT: _YELLOW,
    Action.ADOPT: _YELLOW,
    Action.PRUNE: _RED,
    Action.CONFLICT: _RED,
}
# (action, phrase, always shown): the order a reader expects, mirroring apply order.
_PHRASES = (
    (Action.CREATE, "{} to create", True),
    (Action.UPDATE, "{} to update", True),
    (Action.DRIFT, "{} drifted (will heal)", True),
    (Action.ADOPT, "{} to adopt", False),
    (Action.PRUNE, "{} to prune", True),
    (Action.CONFLICT, "{} in conflict (left alone)", False),
    (Action.UNCHANGED, "{} unchanged", True),
)
_CONFLICT_HINT = f"exists but is not managed by {FIELD_MANAGER}; left alone unless adopted"
_YAML_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "null", "~", ""})

Paint = Callable[[str, str], str]


def render_text(
    plan: Plan,
    *,
    color: bool = False,
    result: ApplyResult | None = None,
    show_managed: bool = False,
    fields: bool = False,
    only_failures: bool = False,
) -> str:
    """`fields`: one `- path: value` line per field instead of the YAML diff.
    `only_failures`: after an apply, the blocks of the failed changes only (the diff
    is what `plan` is for)."""
    paint = _painter(color)
    status = status_by_ref(result)
    changes = listed(plan)
    style = DiffStyle(show_managed=show_managed, fields=fields, color=color)
    shown = [c for c in changes if not only_failures or status.get(c.ref) == "failed"]
    blocks = [_block(c, paint=paint, status=status.get(c.ref, ""), style=style) for c in shown]
    if not changes and not plan.errors:
        blocks.append("No changes: the cluster matches the repository.")
    blocks.extend(_findings(plan.findings, paint))
    blocks.extend(checks.text_blocks(plan))
    blocks.append(_summary(plan, result, paint))
    return "\n\n".join(b for b in blocks if b) + "\n"


# --- shared line builders ---------------------------------------------------------------


def listed(plan: Plan) -> tuple[Change, ...]:
    """Changes worth showing one by one: everything but unchanged."""
    return tuple(c for c in plan.changes if c.action is not Action.UNCHANGED)


def count_phrases(plan: Plan) -> list[str]:
    phrases = [
        phrase.format(plan.count(action))
        for action, phrase, always in _PHRASES
        if always or plan.count(action)
    ]
    if plan.refused_prunes:  # right after "to prune": the deletions that will not happen
        at = next(i for i, p in enumerate(phrases) if p.endswith("to prune")) + 1
        phrases.insert(at, f"{plan.refused_prunes} prune refused")
    return phrases


def blocked_line(plan: Plan) -> str:
    """Why nothing will be applied; "" when something will."""
    if not plan.errors:
        return ""
    if all(is_refusal(f) for f in plan.errors):
        return "Nothing will be applied: the prune guard refused (see Prune refused)."
    return "Nothing will be applied until the errors are fixed."


def split_refusals(findings: tuple[Finding, ...]) -> tuple[list[Finding], list[Finding]]:
    """The prune guard's refusals, and every other finding (errors first)."""
    ordered = errors_first(findings)
    return [f for f in ordered if is_refusal(f)], [f for f in ordered if not is_refusal(f)]


def summary_line(plan: Plan) -> str:
    return "Plan: " + ", ".join(count_phrases(plan))


KEPT_SHOWN = 6  # kept flows listed under the summary; JSON has them all


def _cut(text: str, most: int = 160) -> str:
    """A kept flow's line, short: every one is in the JSON, whole."""
    return text if len(text) <= most else text[: most - 1] + "…"


def order_lines(plan: Plan) -> list[str]:
    """How the apply order keeps flows (design invariant 4); nothing for a plain kind order."""
    order = plan.order
    if order.method == "kind order" and not order.blinks:
        return []
    checked = f", {order.states} states checked on the connectivity model" if order.states else ""
    head = f"Apply order: {order.method}{checked}" + (f" ({order.note})" if order.note else "")
    kept = [f"  keeps: {_cut(k)}" for k in order.kept[:KEPT_SHOWN]]
    if len(order.kept) > KEPT_SHOWN:
        kept.append(f"  keeps: ... and {len(order.kept) - KEPT_SHOWN} more (-o json: order.kept)")
    return [head, *kept, *(f"  blinks: {b}" for b in order.blinks)]


def result_line(result: ApplyResult) -> str:
    return "Apply: " + apply_counts(result)


def apply_counts(result: ApplyResult) -> str:
    done, failed, skipped = len(result.done), len(result.failed), len(result.skipped)
    return f"{done} done, {failed} failed, {skipped} skipped"


def status_by_ref(result: ApplyResult | None) -> dict[ObjectRef, str]:
    if result is None:
        return {}
    status = {c.ref: "skipped" for c in result.skipped}
    status.update({c.ref: "done" for c in result.done})
    status.update({f.change.ref: "failed" for f in result.failed})
    return status


def drift_text(change: FieldChange) -> str:
    """`changed by kubectl-edit (Update) at 2026-11-21T06:01:02Z`, parts omitted if unknown."""
    text = f"changed by {change.manager or 'an unknown manager'}"
    text += f" ({change.operation})" if change.operation else ""
    return text + (f" at {change.time}" if change.time else "")


def reason_text(change: Change) -> str:
    if change.action is Action.CONFLICT:
        return change.reason or _CONFLICT_HINT
    return change.reason


def without_origin(finding: Finding) -> str:
    return str(replace(finding, origin=None))


def diff_lines(change: Change, *, width: int = WIDTH) -> list[str]:
    """`- path: before` / `+ path: after` lines; long nested values expand to their leaves."""
    return _field_lines(change_entries(change), width=width)


def _field_lines(entries: tuple[DiffEntry, ...], *, width: int = WIDTH) -> list[str]:
    lines: list[str] = []
    for entry in entries:
        for leaf in _leaf_pairs(entry, width=width):
            if leaf.before is not None:
                lines.append(f"- {leaf.path}: {format_value(leaf.before, width=width)}")
            if leaf.after is not None:
                lines.append(f"+ {leaf.path}: {format_value(leaf.after, width=width)}")
    return lines


def format_value(value: JSON, *, width: int = WIDTH) -> str:
    """Plain strings as they are, anything else as compact JSON; never cut (a change
    past the cut would be invisible). `width` only decides what expands to its leaves."""
    del width
    return value if _is_plain(value) else compact(value)


@dataclass(frozen=True, slots=True)
class DiffStyle:
    show_managed: bool = False  # show bookkeeping labels and annotations too
    fields: bool = False  # one line per field instead of the YAML diff
    color: bool = False  # reverse video instead of `^` marks under changed words


PLAIN = DiffStyle()


def change_diff(change: Change, style: DiffStyle = PLAIN) -> list[str]:
    """The change's diff lines: the YAML diff with context, or one line per field."""
    diff = None if style.fields else object_diff(change, show_managed=style.show_managed)
    if diff is None:
        entries = change_entries(change)
        if not style.show_managed:
            entries = tuple(e for e in entries if not bookkeeping(e.path))
        return _field_lines(entries)
    lines = [text for line in diff.lines for text in yaml_line(line, color=style.color)]
    if diff.hidden and not lines:
        lines.append(
            f"@@ only bookkeeping changed ({diff.hidden} fields; --show-managed-fields) @@"
        )
    return lines


def yaml_line(line: Line, *, color: bool = False) -> Iterator[str]:
    """One diff line (`+ text`); without colour, a `^` line under changed words."""
    if line.sign == "@":
        yield f"@@ {line.text} @@"
        return
    if color:
        yield f"{line.sign} {_reverse(line)}"
        return
    yield f"{line.sign} {line.text}"
    if line.marks:
        carets = [" "] * (max(end for _, end in line.marks) + 2)
        for start, end in line.marks:
            carets[start + 2 : end + 2] = "^" * (end - start)
        yield "".join(carets).rstrip()


def _reverse(line: Line) -> str:
    text, out, at = line.text, "", 0
    for start, end in line.marks:
        out += text[at:start] + _REVERSE + text[start:end] + "\x1b[27m"
        at = end
    return out + text[at:]


def compact(value: JSON) -> str:
    return json.dumps(jsonable(value), ensure_ascii=False, separators=(", ", ": "))


# --- blocks -----------------------------------------------------------------------------


def _block(change: Change, *, paint: Paint, status: str, style: DiffStyle) -> str:
    color = _ACTION_COLOR.get(change.action, "")
    head = paint(f"► {change.ref.qualified} {change.action.value}", _BOLD + color)
    lines = [head + (f" ({status})" if status else "")]
    lines += [f"  {paint('drifted: ' + drift_text(d), _YELLOW)}" for d in change.drifted_by]
    if reason := reason_text(change):
        lines.append(f"  reason: {reason}")
    lines += [f"  {_paint_diff(line, paint)}" for line in change_diff(change, style)]
    if change.desired:
        lines.append(f"  from {change.desired.origin}")
    return "\n".join(lines)


def _findings(findings: tuple[Finding, ...], paint: Paint) -> Iterator[str]:
    refused, ordered = split_refusals(findings)
    if refused:
        head = paint("Prune refused:", _BOLD + _RED)
        yield "\n".join([head, *(f"  {f}" for f in refused)])
    for severity, title, color in (
        (Severity.ERROR, "Validation errors", _RED),
        (Severity.WARNING, "Warnings", _YELLOW),
    ):
        picked = [f for f in ordered if f.severity is severity]
        if picked:
            head = paint(f"{title} ({len(picked)}):", _BOLD + color)
            yield "\n".join([head, *(f"  {f}" for f in picked)])


def _summary(plan: Plan, result: ApplyResult | None, paint: Paint) -> str:
    lines = [paint(summary_line(plan), _BOLD)]
    lines += [paint(line, _YELLOW if "blinks" in line else "") for line in order_lines(plan)]
    if blocked := blocked_line(plan):
        lines.append(paint(blocked, _RED))
    if result is not None:
        lines.append(paint(result_line(result), _BOLD))
        failed = result.failed
        lines += [paint(f"  failed: {f.change.ref.qualified}: {f.message}", _RED) for f in failed]
        lines += [f"  note: {note}" for note in result.notes]
    return "\n".join(lines)


def _painter(color: bool) -> Paint:
    if not color:
        return lambda text, _code: text
    return lambda text, code: f"{code}{text}{_RESET}" if code else text


def _paint_diff(line: str, paint: Paint) -> str:
    code = {"-": _RED, "+": _GREEN, "@": _CYAN}.get(line[:1], "")
    return paint(line, code)


# --- values -----------------------------------------------------------------------------


def _leaf_pairs(entry: DiffEntry, *, width: int) -> Iterator[DiffEntry]:
    """Walk into both sides while they are too long for one line, yielding what differs."""
    before, after = entry.before, entry.after
    if before == after:
        return
    if not _expandable(entry, width=width):
        yield entry
        return
    for key in _keys(before, after):
        child = DiffEntry(join_path(entry.path, key), _child(before, key), _child(after, key))
        yield from _leaf_pairs(child, width=width)


def _expandable(entry: DiffEntry, *, width: int) -> bool:
    sides = [v for v in (entry.before, entry.after) if v is not None]
    kinds = {_container(v) for v in sides}
    if len(kinds) != 1 or None in kinds:
        return False
    return max(len(compact(v)) for v in sides) > width


def _container(value: JSON) -> type | None:
    if isinstance(value, Mapping):
        return Mapping
    return list if isinstance(value, list | tuple) else None


def _keys(before: JSON, after: JSON) -> list[str | int]:
    if isinstance(before or after, Mapping):
        seen = [*(before or {}), *(after or {})]
        return list(dict.fromkeys(seen))
    return list(range(max(len(before or ()), len(after or ()))))


def _child(value: JSON, key: str | int) -> JSON:
    if isinstance(value, Mapping):
        return value.get(key)
    if isinstance(key, int) and value is not None and key < len(value):
        return value[key]
    return None


def _is_plain(value: JSON) -> bool:
    """A string a reader cannot mistake for a number, boolean, null or structure."""
    if not isinstance(value, str) or value.strip() != value or value.lower() in _YAML_WORDS:
        return False
    if not value.isprintable() or value[0] in "\"'[{":
        return False
    try:
        float(value)
    except ValueError:
        return True
    return False
