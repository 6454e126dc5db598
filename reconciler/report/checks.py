"""ConnectivityCheck results for every output: text lines, JSON, Markdown.

A failing check names its counterexample and the state of the apply where it breaks;
a skipped check (--skip-checks) is always shown, whether it holds or not, so an
emergency override never goes unnoticed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from reconciler.model import CheckResult, Plan


def check_text(check: CheckResult) -> str:
    """ "admins-ssh (checks/ssh.yaml:1): 203.0.113.9 -> node node-2 tcp/22 denied by ...,
    after create HostEndpoint/node-2-firewall" """
    where = f" ({check.origin})" if check.origin else ""
    if check.holds:
        note = f"; {check.note}" if check.note else ""
        return f"{check.name}{where}: holds{note}"
    note = f" ({check.note})" if check.note else ""
    return f"{check.name}{where}: {check.counterexample}, {check.state}{note}"


def failing(plan: Plan) -> tuple[CheckResult, ...]:
    return tuple(c for c in plan.checks if not c.holds and not c.skipped)


def skipped(plan: Plan) -> tuple[CheckResult, ...]:
    return tuple(c for c in plan.checks if c.skipped)


def skip_warnings(plan: Plan) -> Iterator[str]:
    """One line per skipped check: stderr, the PR comment."""
    for check in skipped(plan):
        verdict = "fails: " + check_text(check) if not check.holds else "holds"
        yield f"warning: ConnectivityCheck {check.name} is skipped (--skip-checks); it {verdict}"


def text_blocks(plan: Plan) -> Iterator[str]:
    broken = failing(plan)
    if broken:
        lines = [f"Connectivity checks failing ({len(broken)}): nothing will be applied"]
        yield "\n".join([*lines, *(f"  {check_text(c)}" for c in broken)])
    held = [c for c in plan.checks if c.holds and not c.skipped]
    if held:
        yield "\n".join(
            [f"Connectivity checks holding ({len(held)}):"] + [f"  {check_text(c)}" for c in held]
        )
    warnings = list(skip_warnings(plan))
    if warnings:
        yield "\n".join(warnings)


def checks_json(plan: Plan) -> list[dict[str, Any]]:
    return [c.as_json() for c in plan.checks]


def markdown_section(plan: Plan) -> str:
    """Failing and skipped checks, for the top of the PR comment ("" when none)."""
    broken, skips = failing(plan), skipped(plan)
    if not broken and not skips:
        return ""
    lines: list[str] = []
    if broken:
        lines.append(f"### :no_entry: Connectivity checks failing ({len(broken)})")
        lines.append("")
        lines += [f"- **{c.name}**: `{c.counterexample}`, {c.state}" + _at(c) for c in broken]
        lines.append("")
        lines.append("Nothing is applied while a check fails.")
    if skips:
        lines.append("")
        lines += [f"> :warning: {w.removeprefix('warning: ')}" for w in skip_warnings(plan)]
    return "\n".join(lines).strip() + "\n"


def _at(check: CheckResult) -> str:
    return f" ({check.origin})" if check.origin else ""
