"""Prune guard (design invariant 3): deleting firewall objects is the risky half of GitOps.

A refusal is an ERROR finding, so the caller writes nothing at all this run and
the cluster keeps enforcing what it has; the refused prunes are left out of the
plan rather than handed to an executor that might not check.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.model import Change, Finding, Severity

PRUNE_ANNOTATION = "policy-reconciler.io/prune"
PRUNE_DISABLED = "disabled"
_NAMED = 10  # objects named in a refusal; the rest are counted
REFUSAL = "refusing to prune"  # how every refusal's message starts (reports list them apart)


@dataclass(frozen=True, slots=True)
class Guarded:
    prunes: tuple[Change, ...]  # what may be deleted
    findings: tuple[Finding, ...]  # refusals (errors) and kept objects (warnings)
    refused: int = 0  # prunes the guard refused (none are carried out)


def guard_prunes(
    *,
    prunes: Sequence[Change],
    managed: int,
    rendered: int,
    findings: Sequence[Finding],
    max_prune: float,
    allow_empty: bool,
) -> Guarded:
    """`managed`: owned live objects; `rendered`: desired objects; `findings`: so far."""
    doomed = tuple(c for c in prunes if not prune_disabled(c.live))
    kept = tuple(_kept(c) for c in prunes if prune_disabled(c.live))
    refusals = tuple(
        f
        for f in (
            _empty_render(doomed, managed=managed, rendered=rendered, allow_empty=allow_empty),
            _over_limit(doomed, managed=managed, max_prune=max_prune),
        )
        if f is not None
    )
    blocked = refusals or any(f.severity is Severity.ERROR for f in findings)
    refused = len(doomed) if refusals else 0
    return Guarded(() if blocked else doomed, (*refusals, *kept), refused)


def is_refusal(finding: Finding) -> bool:
    """A prune-guard refusal: an error (nothing is applied), but not about the input."""
    return finding.severity is Severity.ERROR and finding.message.startswith(REFUSAL)


def prune_disabled(body: Mapping[str, Any] | None) -> bool:
    annotations = ((body or {}).get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(PRUNE_ANNOTATION, "")).strip().lower() == PRUNE_DISABLED


def _kept(change: Change) -> Finding:
    message = f"kept: no longer in Git, but annotated {PRUNE_ANNOTATION}: {PRUNE_DISABLED}"
    return Finding(Severity.WARNING, message, ref=change.ref)


def _empty_render(
    doomed: Sequence[Change], *, managed: int, rendered: int, allow_empty: bool
) -> Finding | None:
    if rendered or allow_empty or not doomed:
        return None
    message = (
        f"{REFUSAL}: the repository rendered no objects while {managed} managed "
        f"objects exist; if it is meant to be empty, pass --allow-empty"
        f" (would prune {_named(doomed)})"
    )
    return Finding(Severity.ERROR, message)


def _over_limit(doomed: Sequence[Change], *, managed: int, max_prune: float) -> Finding | None:
    count = len(doomed)
    if not doomed or count <= max_prune * managed + 1e-9:
        return None
    share = count / max(managed, 1)
    needed = math.ceil(share * 100 - 1e-9)  # in percent, the unit of the default (30%)
    message = (
        f"{REFUSAL} {count} of {managed} managed objects ({share:.0%}) in one run: "
        f"the limit is {max_prune:.0%}; raise it with --max-prune {needed}% if intended"
        f" (would prune {_named(doomed)})"
    )
    return Finding(Severity.ERROR, message)


def _named(changes: Sequence[Change]) -> str:
    names = sorted(str(c.ref) for c in changes)
    more = len(names) - _NAMED
    return ", ".join(names[:_NAMED]) + (f" and {more} more" if more > 0 else "")
