"""Text and Markdown for eval, diff and map results (JSON is each value's as_json)."""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.connectivity.diff import Change, Diff
from reconciler.connectivity.evaluate import Evaluation
from reconciler.connectivity.intervals import IntervalSet
from reconciler.connectivity.outcome import Verdict
from reconciler.connectivity.packets import show_packet, show_packets
from reconciler.connectivity.reach import ReachMap

_HEADLINE = {
    Verdict.ALLOW: "ALLOWED",
    Verdict.DENY: "DENIED",
    Verdict.UNKNOWN: "NOT DETERMINED by the repository",
}
_NOW = {
    Verdict.ALLOW: "now allowed",
    Verdict.DENY: "now denied",
    Verdict.UNKNOWN: "now not determined",
}


def eval_text(result: Evaluation) -> str:
    head = _HEADLINE[result.verdict]
    lines = [f"{result.src} -> {result.dst} {show_packet(result.packet)}: {head}", ""]
    for i, step in enumerate(result.path, 1):
        verdict = str(step.verdict) if step.verdict else "continue"
        where = f"  ({step.origin})" if step.origin else ""
        lines += [f"  {i}. {step.hop}", f"     {verdict}: {step.detail}{where}"]
    if result.missing:
        lines += ["", "Missing assumptions (the answer depends on them):"]
        lines += [f"  - {m}" for m in result.missing]
    if result.assumptions:
        lines += ["", "Assumed:", *(f"  - {a}" for a in result.assumptions)]
    return "\n".join(lines)


def _topology(change: Change) -> str:
    return _topology_of(change.same_node)


def diff_text(result: Diff) -> str:
    if not result.changes:
        return (
            f"No flow changes ({result.classes} peer classes, {result.pairs} class pairs compared)."
        )
    lines = [f"{len(result.changes)} flow change(s):", ""]
    for c in result.changes:
        lines.append(
            f"{c.src} -> {c.dst} {c.ports}: {_NOW[c.after]} (was {c.before}){_topology(c)}"
        )
        lines += [f"    because: {b}" for b in c.because]
    return "\n".join(lines)


def diff_markdown(result: Diff) -> str:
    if not result.changes:
        return "**Connectivity:** no flow changes."
    rows = ["| From | To | Ports | Change | Because |", "|---|---|---|---|---|"]
    rows += [_row(c) for c in result.changes]
    return f"**Connectivity:** {len(result.changes)} flow change(s)\n\n" + "\n".join(rows)


def _row(c: Change) -> str:
    cells: Sequence[str] = (
        c.src,
        c.dst,
        f"`{c.ports}`",
        f"{_NOW[c.after]} (was {c.before}){_topology(c)}",
        "<br>".join(c.because),
    )
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def map_text(result: ReachMap) -> str:
    lines = [f"Who can reach whom ({result.classes} peer classes):", ""]
    for row in result.rows:
        where = _topology_of(row.same_node)
        lines.append(f"{row.src} -> {row.dst}{where}")
        if row.allowed:
            lines.append(f"    allowed: {show_packets(row.allowed)}")
        if row.unknown:
            lines.append(f"    not determined: {show_packets(row.unknown)}")
    return "\n".join(lines)


def map_markdown(result: ReachMap) -> str:
    rows = ["| From | To | Allowed | Not determined |", "|---|---|---|---|"]
    for r in result.rows:
        cells = (r.src, r.dst + _topology_of(r.same_node), _code(r.allowed), _code(r.unknown))
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows)


def _code(packets: IntervalSet) -> str:
    return f"`{show_packets(packets)}`" if packets else ""


def _topology_of(same_node: bool | None) -> str:
    if same_node is None:
        return ""
    return " [same node]" if same_node else " [across nodes]"
