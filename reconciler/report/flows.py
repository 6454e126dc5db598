"""The PR comment's "Connectivity changes" section: what the change means for traffic.

From the connectivity engine's exact diff (base -> head): the flows this pull request
opens and closes, grouped (sources alike, destinations alike), each with the policy that
causes it; and, online, the effect of drift already in the cluster (live -> base): "someone
opened tcp/5432 from 0.0.0.0/0 to node-3 by hand".
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from reconciler.connectivity import Diff, Verdict
from reconciler.connectivity.diff import Change as FlowChange
from reconciler.connectivity.intervals import IntervalSet
from reconciler.connectivity.packets import ALL_PACKETS, show_packets
from reconciler.report.markdown import code_span, escape

LIMIT = 30  # flows listed per group; the rest are counted


def section(flows: Diff | None, drift: Diff | None) -> str:
    """Markdown for the top of the PR comment ("" when nothing was computed)."""
    if flows is None and drift is None:
        return ""
    lines = ["#### Connectivity changes"]
    if flows is not None:
        lines += list(_changes(flows.changes, by_hand=False))
    if drift is not None and drift.changes:
        lines.append("")
        lines.append("**Already in the cluster, not from this pull request (drift):**")
        lines += list(_changes(drift.changes, by_hand=True))
    return "\n".join(lines)


def _changes(changes: Sequence[FlowChange], *, by_hand: bool) -> Iterator[str]:
    if not changes:
        yield "No flow changes: this pull request allows and denies exactly what the base does."
        return
    opened = [c for c in changes if c.after is Verdict.ALLOW]
    closed = [c for c in changes if c.before is Verdict.ALLOW and c.after is not Verdict.ALLOW]
    other = [c for c in changes if c not in opened and c not in closed]
    suffix = " by hand" if by_hand else ""
    for title, found in (("Opens", opened), ("Closes", closed), ("Changes", other)):
        if found:
            yield ""  # a blank line: else Markdown reads the title into the list above
            yield f"**{title}{suffix} ({len(found)}):**"
            yield ""
            yield from (f"- {_flow(c)}" for c in found[:LIMIT])
            if len(found) > LIMIT:
                yield f"- … and {len(found) - LIMIT} more (`connectivity diff` lists them all)"


def ports(packets: IntervalSet) -> str:
    """The shorter of the packets and "all traffic except" the rest."""
    shown, rest = show_packets(packets), ALL_PACKETS - packets
    if rest and len(show_packets(rest)) < len(shown):
        return f"all traffic except {show_packets(rest)}"
    return shown


def _flow(change: FlowChange) -> str:
    where = {True: " (same node)", False: " (across nodes)", None: ""}[change.same_node]
    verdicts = ""
    if change.after is not Verdict.ALLOW and change.before is not Verdict.ALLOW:
        verdicts = f" ({change.before} → {change.after})"
    because = "; ".join(escape(b) for b in change.because) or "no policy (default)"
    return (
        f"{escape(change.src)} → {escape(change.dst)} {code_span(ports(change.packets))}{where}"
        f"{verdicts}, because of {because}"
    )
