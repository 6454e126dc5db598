"""Markdown report for a pull-request comment (argocd-diff-preview / tfcmt layout).

Layout: optional hidden marker, title, revision, counts, validation findings,
a table of the objects that change, then one collapsed ```diff block per object.
The result always fits in `max_chars`: diffs of the last objects go first, then
table rows, and a closing note says exactly what was left out.

Reports made of several parts (the pull-request report: this PR's changes, then
drift already in the cluster) build `Section`s from the same pieces (`row`,
`details`, `findings_blocks`) and `fit` them together under one size limit.

User values (paths, messages, field managers) are escaped for where they land:
backslash escapes in text and table cells, HTML escapes in <summary>, and
fences or code spans longer than any backtick run inside them.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from reconciler.model import (
    ApplyResult,
    Change,
    FieldChange,
    Finding,
    Plan,
    Severity,
)
from reconciler.report import checks
from reconciler.report.text import (
    PLAIN,
    DiffStyle,
    apply_counts,
    blocked_line,
    change_diff,
    count_phrases,
    listed,
    order_lines,
    reason_text,
    split_refusals,
    status_by_ref,
    without_origin,
)

GITHUB_LIMIT = 65_536
TABLE_HEAD = "| Action | Kind | Namespace | Name | Origin |\n|---|---|---|---|---|"
_ESCAPED = re.compile(r"([\\`*_\[\]<>|#~&!])")
_BACKTICKS = re.compile(r"`+")
_SHA = re.compile(r"[0-9a-f]{12,64}")
NOTE_TAIL = (
    "omitted to stay under GitHub's comment size limit; "
    "run `policy-reconciler plan` for the full output."
)


def render_markdown(
    plan: Plan,
    *,
    result: ApplyResult | None = None,
    title: str = "",
    max_chars: int = 60000,
    marker: str = "",
    style: DiffStyle = PLAIN,
) -> str:
    status = status_by_ref(result)
    changes = listed(plan)
    failing = checks.markdown_section(plan)  # the issue-16 section, kept apart
    section = Section(
        head=(
            *_head(plan, result=result, title=title, marker=marker),
            *([failing] * bool(failing)),
        ),
        rows=tuple(row(c, status.get(c.ref, "")) for c in changes),
        details=tuple(d for c in changes if (d := details(c, status.get(c.ref, ""), style))),
    )
    return fit([section], max_chars=max_chars)


# --- escaping ---------------------------------------------------------------------------


def escape(text: str) -> str:
    """Inline text and table cells: one line, Markdown punctuation and `|` escaped."""
    return _ESCAPED.sub(r"\\\1", " ".join(text.splitlines()))


def code_span(text: str) -> str:
    """A code span no backtick inside `text` can close."""
    flat = " ".join(text.splitlines())
    ticks = "`" * (_longest_backticks(flat) + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{ticks}{pad}{flat}{pad}{ticks}"


def fenced(body: str, info: str = "") -> str:
    """A fenced block whose fence is longer than any backtick run in `body`."""
    fence = "`" * max(3, _longest_backticks(body) + 1)
    return f"{fence}{info}\n{body}\n{fence}"


def _longest_backticks(text: str) -> int:
    return max((len(m) for m in _BACKTICKS.findall(text)), default=0)


# --- head: title, counts, result, findings ----------------------------------------------


def _head(plan: Plan, *, result: ApplyResult | None, title: str, marker: str) -> Iterator[str]:
    if marker:
        yield marker
    yield _title(plan, title=title, applied=result is not None)
    if plan.revision.id:
        yield f"Revision {code_span(_short(plan.revision.id))}"
    yield _counts(plan)
    order = order_lines(plan)
    if order:
        yield "\n".join([escape(order[0]), *(f"- {escape(b.strip())}" for b in order[1:])])
    if result is not None:
        yield from _result(result)
    yield from findings_blocks(plan.findings)
    if not listed(plan) and not plan.errors:
        yield "No changes: the cluster matches the repository."


def _title(plan: Plan, *, title: str, applied: bool) -> str:
    if title:
        return title if title.startswith("#") else f"### {title}"
    verb = "apply" if applied else "plan"
    target = f" for {escape(plan.target)}" if plan.target else ""
    return f"### policy-reconciler {verb}{target}"


def _short(revision: str) -> str:
    return revision[:12] if _SHA.fullmatch(revision) else revision


def _counts(plan: Plan) -> str:
    line = "**Plan:** " + " · ".join(count_phrases(plan))
    if blocked := blocked_line(plan):
        line += f"\n\n**{blocked.replace('the errors', 'the validation errors')}**"
    return line


def _result(result: ApplyResult) -> Iterator[str]:
    yield f"**Apply:** {apply_counts(result)}"
    failed = [f"- {code_span(f.change.ref.qualified)}: {escape(f.message)}" for f in result.failed]
    notes = [f"- {escape(note)}" for note in result.notes]
    if failed:
        yield f"#### Failed ({len(failed)})\n\n" + "\n".join(failed)
    if notes:
        yield "#### Notes\n\n" + "\n".join(notes)


def findings_blocks(findings: tuple[Finding, ...], *, level: str = "####") -> Iterator[str]:
    """The prune guard's refusals, then one block per severity: errors (with
    `path:line`), then warnings."""
    refused, ordered = split_refusals(findings)
    if refused:
        yield f"{level} Prune refused\n\n" + "\n".join(_finding(f) for f in refused)
    for severity, title in ((Severity.ERROR, "Validation errors"), (Severity.WARNING, "Warnings")):
        items = [_finding(f) for f in ordered if f.severity is severity]
        if items:
            yield f"{level} {title} ({len(items)})\n\n" + "\n".join(items)


def _finding(finding: Finding) -> str:
    where = f"{code_span(str(finding.origin))}: " if finding.origin else ""
    return f"- {where}{escape(without_origin(finding))}"


# --- table and details ------------------------------------------------------------------


def row(change: Change, status: str = "", origin: str = "") -> str:
    """`origin`: where a prune's object came from (the base branch), when known."""
    ref = change.ref
    origin = str(change.desired.origin) if change.desired else origin
    cells = (_action(change, status), str(ref.group_kind), ref.namespace, ref.name, origin)
    return "| " + " | ".join(escape(c) for c in cells) + " |"


def _action(change: Change, status: str) -> str:
    return f"{change.action.value} ({status})" if status else change.action.value


def details(change: Change, status: str = "", style: DiffStyle = PLAIN, origin: str = "") -> str:
    """A collapsed block: drift, reason and origin facts, then the YAML diff."""
    diff = change_diff(change, style)
    facts = list(_facts(change, origin))
    if not diff and not facts:
        return ""
    body = [*facts, fenced("\n".join(diff), "diff")] if diff else facts
    return "\n\n".join([_summary(change, status=status, diff=diff), *body, "</details>"])


def _summary(change: Change, *, status: str, diff: list[str]) -> str:
    added = sum(1 for line in diff if line.startswith("+"))
    removed = sum(1 for line in diff if line.startswith("-"))
    counts = f" (+{added} -{removed})" if diff else ""
    what = html.escape(_action(change, status))
    ref = html.escape(change.ref.qualified)
    return f"<details><summary>{what} <code>{ref}</code>{counts}</summary>"


def _facts(change: Change, origin: str = "") -> Iterator[str]:
    lines = [f"- Drifted: {drift_phrase(d)}" for d in change.drifted_by]
    if reason := reason_text(change):
        lines.append(f"- Reason: {escape(reason)}")
    if change.desired:
        lines.append(f"- From {code_span(str(change.desired.origin))}")
    elif origin:
        lines.append(f"- Was in the base branch at {code_span(origin)}")
    if lines:
        yield "\n".join(lines)


def drift_phrase(change: FieldChange) -> str:
    """`changed by `kubectl-edit` (Update) at <time>`, escaped for Markdown."""
    text = f"changed by {code_span(change.manager or 'an unknown manager')}"
    text += f" ({escape(change.operation)})" if change.operation else ""
    return text + (f" at {escape(change.time)}" if change.time else "")


# --- fitting under max_chars ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Section:
    """One part of a report: its head (always kept), a table, one <details> per object."""

    head: tuple[str, ...]
    rows: tuple[str, ...] = ()
    details: tuple[str, ...] = ()
    table_head: str = TABLE_HEAD

    def blocks(self, *, details: int, rows: int) -> list[str]:
        table = [f"{self.table_head}\n" + "\n".join(self.rows[:rows])] if rows else []
        return [*self.head, *table, *self.details[:details]]


def fit(sections: Sequence[Section], *, max_chars: int, note_tail: str = NOTE_TAIL) -> str:
    """All sections within `max_chars`: the last diffs go first, then the last table rows,
    counted across sections in reading order; a closing note says what was left out."""
    parts = _Parts(tuple(sections), note_tail)
    all_rows, all_details = parts.rows, parts.details
    full = parts.render(details=all_details, rows=all_rows)
    if len(full) <= max_chars:
        return full
    fits = _fitting(
        lambda k: parts.render(details=k, rows=all_rows), max_chars=max_chars, most=all_details
    )
    if fits is None:
        fits = _fitting(
            lambda k: parts.render(details=0, rows=k), max_chars=max_chars, most=all_rows
        )
    return fits if fits is not None else _cut(parts, max_chars)


@dataclass(frozen=True, slots=True)
class _Parts:
    sections: tuple[Section, ...]
    note_tail: str

    @property
    def rows(self) -> int:
        return sum(len(s.rows) for s in self.sections)

    @property
    def details(self) -> int:
        return sum(len(s.details) for s in self.sections)

    def render(self, *, details: int, rows: int, cut: bool = False) -> str:
        """The first `details` diffs and `rows` table rows of the report, then the note."""
        note = self.note(diffs=self.details - details, rows=self.rows - rows, cut=cut)
        blocks: list[str] = []
        for section in self.sections:
            shown_details, shown_rows = (
                min(details, len(section.details)),
                min(rows, len(section.rows)),
            )
            blocks += section.blocks(details=shown_details, rows=shown_rows)
            details, rows = details - shown_details, rows - shown_rows
        return "\n\n".join([*blocks, *([note] if note else [])]) + "\n"

    def note(self, *, diffs: int, rows: int, cut: bool) -> str:
        return _note(diffs=diffs, rows=rows, cut=cut, tail=self.note_tail)


def _fitting(render: Callable[[int], str], *, max_chars: int, most: int) -> str | None:
    """The render for the largest k in [0, most] that fits; size grows with k."""
    low, high, best = 0, most, None
    while low <= high:
        mid = (low + high) // 2
        text = render(mid)
        if len(text) <= max_chars:
            low, best = mid + 1, text
        else:
            high = mid - 1
    return best


def _cut(parts: _Parts, max_chars: int) -> str:
    """Last resort (a huge list of findings): whole lines of the heads, then the note."""
    note = parts.note(diffs=parts.details, rows=parts.rows, cut=True)
    head = "\n\n".join(block for section in parts.sections for block in section.head)
    room = max_chars - len(note) - 3  # "\n\n" before the note, "\n" after it
    if room <= 0:
        return note[:max_chars]
    end = head.rfind("\n", 0, room + 1)
    kept = head if len(head) <= room else head[: end if end > 0 else room]
    return f"{kept}\n\n{note}\n"


def _note(*, diffs: int, rows: int, cut: bool, tail: str) -> str:
    parts = [_plural(diffs, "object diff"), _plural(rows, "table row")]
    parts = [p for p in parts if p] + (["the rest of the report"] if cut else [])
    if not parts:
        return ""
    listed_parts = ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]
    return f"_{listed_parts} {tail}_"


def _plural(count: int, noun: str) -> str:
    if count <= 0:
        return ""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
