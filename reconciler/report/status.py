"""`policy-reconciler status` as text: the controller's recent runs, newest first.

Renders the same JSON view that `status -o json` prints, so the two never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

_HEAD = f"{'FINISHED':<21} {'RESULT':<10} {'REASON':<18} {'REVISION':<12} {'TOOK':>7}  CHANGES"


def render_status(view: Mapping[str, Any]) -> str:
    suspended = "yes (policy-reconciler.io/suspend)" if view["suspended"] else "no"
    lines = [
        f"ApplySet:   {view['applyset']}",
        f"Suspended:  {suspended}",
        f"Revision:   {view['lastAppliedRevision'] or '(none applied yet)'}",
    ]
    if view["leader"]:
        lines.append(f"Leader:     {view['leader']}")
    runs: Sequence[Mapping[str, Any]] = view["runs"]
    if not runs:
        lines.append("\nNo runs recorded yet (is `policy-reconciler run` running?).")
        return "\n".join(lines)
    lines += ["", _HEAD]
    for run in runs:
        lines += _run_lines(run)
    return "\n".join(lines)


def _run_lines(run: Mapping[str, Any]) -> list[str]:
    written = ", ".join(f"{n} {a}" for a, n in sorted(run["written"].items())) or "-"
    lines = [
        f"{run['finished']:<21} {run['result']!s:<10} {run['reason']!s:<18} "
        f"{run['revision'][:12]:<12} {run['duration']:>6.1f}s  {written}",
        f"    {run['message']}",
    ]
    return lines + [f"    ! {e}" for e in run["errors"][1:4]]


__all__ = ["render_status"]
