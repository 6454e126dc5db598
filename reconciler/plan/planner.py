"""make_plan: desired + live -> one Change per object, guarded and in firewall-safe order.

Three-way: what Git wants (the desired body), what we applied last (the fields our
field manager owns in live managedFields) and what is live. A differing field that
is still ours means Git changed (UPDATE); one that another manager took over, as
kubectl edit/patch/label do with their Update operations, is DRIFT, and that
manager is named.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from reconciler import FIELD_MANAGER
from reconciler.model import (
    Action,
    Change,
    FieldChange,
    Finding,
    ObjectRef,
    Plan,
    Resource,
    Revision,
    Severity,
)
from reconciler.plan.bridge import is_bridge
from reconciler.plan.diff import Delta, compare, unchanged
from reconciler.plan.fields import Ownership, applied_by, last_applied, managed_fields
from reconciler.plan.guard import guard_prunes
from reconciler.plan.order import in_apply_order

Key = tuple[str, str, str, str]
T = TypeVar("T")

LEFTOVER = "a make-before-break bridge left by a run that stopped half-way"
REASONS: Mapping[Action, str] = {
    Action.CREATE: "not in the cluster",
    Action.UPDATE: "changed in Git",
    Action.DRIFT: "changed in the cluster outside Git; applying restores Git",
    Action.UNCHANGED: "",
    Action.PRUNE: "no longer in Git",
}


@dataclass(frozen=True, slots=True)
class Desired:
    """One object to apply: the user's resource and the exact body we server-side-apply.

    The planned Change carries `Resource(resource.ref, body, resource.origin)`: the
    user-facing identity and origin, with the body the apply stage must send.
    """

    resource: Resource
    body: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Live:
    """One object as the API server returned it; `ref` is user-facing."""

    ref: ObjectRef
    body: Mapping[str, Any]
    owned: bool  # carries our ApplySet part-of label


@dataclass(frozen=True, slots=True)
class PlanOptions:
    field_manager: str = FIELD_MANAGER
    prune: bool = True
    adopt: bool = False
    max_prune: float = 0.30  # share of managed (owned live) objects one run may delete
    allow_empty: bool = False


def make_plan(
    *,
    revision: Revision,
    desired: Sequence[Desired],
    live: Sequence[Live],
    options: PlanOptions,
    target: str = "",
    findings: Sequence[Finding] = (),
) -> Plan:
    wanted, twice = _unique(desired, key=lambda d: d.resource.ref.key, describe=_twice_desired)
    present, doubled = _unique(live, key=lambda o: o.ref.key, describe=_twice_live)
    writes = [_write(d, present.get(key), options) for key, d in wanted.items()]
    stale = [_prune(o) for key, o in present.items() if key not in wanted and o.owned]
    # A bridge left by a run that stopped half-way is ours alone: always removed, and not
    # counted by the prune guard, which protects what Git asked for.
    leftover = [replace(c, reason=LEFTOVER, transient=True) for c in stale if is_bridge(c.ref)]
    stale = [c for c in stale if not is_bridge(c.ref)]
    guarded = guard_prunes(
        prunes=stale if options.prune else (),
        managed=sum(o.owned for o in present.values()) - len(leftover),
        rendered=len(wanted),
        findings=(*findings, *twice, *doubled),
        max_prune=options.max_prune,
        allow_empty=options.allow_empty,
    )
    return Plan(
        revision=revision,
        changes=in_apply_order([*writes, *guarded.prunes, *leftover]),
        findings=(*findings, *twice, *doubled, *guarded.findings),
        target=target,
        refused_prunes=guarded.refused,
    )


# --- one object -----------------------------------------------------------------------


def _write(want: Desired, found: Live | None, options: PlanOptions) -> Change:
    if found is None:
        return _change(want, None, Action.CREATE, compare(desired=want.body, live=None))
    if not found.owned:
        return _foreign(want, found, options)
    return _three_way(want, found, options)


def _three_way(want: Desired, found: Live, options: PlanOptions) -> Change:
    # The steady state first, cheaply: normalise and diff only what may differ.
    owned = last_applied(found.body, options.field_manager)
    if unchanged(desired=want.body, live=found.body, owned=owned):
        return _change(want, found, Action.UNCHANGED, ())
    entries = managed_fields(found.body)
    ours = applied_by(entries, options.field_manager)
    deltas = compare(desired=want.body, live=found.body, owned=ours)
    drifted = drifted_by(deltas, entries=entries, manager=options.field_manager)
    if deltas and _label_taken(want.body, found.body):
        reason = HIJACKED.format(manager=options.field_manager)
        return _change(want, found, Action.DRIFT, deltas, reason=reason, drifted_by=drifted)
    action = Action.DRIFT if drifted else Action.UPDATE if deltas else Action.UNCHANGED
    return _change(want, found, action, deltas, drifted_by=drifted)


HIJACKED = (
    "applied outside a run under our field manager name ({manager}), which dropped our "
    "ownership label; applying restores Git"
)


def _label_taken(desired: Mapping[str, Any], live: Mapping[str, Any]) -> bool:
    """We always apply our ApplySet label: an owned object without it was applied by
    someone else in our name (no run of ours ever leaves it off)."""
    ours = (desired.get("metadata") or {}).get("labels") or {}
    have = (live.get("metadata") or {}).get("labels") or {}
    return any(k.startswith("applyset.kubernetes.io/") and k not in have for k in ours)


def _foreign(want: Desired, found: Live, options: PlanOptions) -> Change:
    """Same name, not ours: left alone, or adopted when asked."""
    names = sorted({e.manager for e in managed_fields(found.body) if e.manager})
    managers = f"field managers: {', '.join(names)}" if names else "no field managers recorded"
    deltas = compare(desired=want.body, live=found.body)
    if options.adopt:
        reason = f"exists and is not managed by us ({managers}); adopting it as asked"
        return _change(want, found, Action.ADOPT, deltas, reason=reason)
    reason = f"exists and is not managed by us ({managers}); left alone unless adopted"
    return _change(want, found, Action.CONFLICT, deltas, reason=reason)


def _prune(found: Live) -> Change:
    reason = REASONS[Action.PRUNE]
    return Change(found.ref, Action.PRUNE, desired=None, live=found.body, reason=reason)


def _change(
    want: Desired,
    found: Live | None,
    action: Action,
    deltas: Sequence[Delta],
    *,
    reason: str | None = None,
    drifted_by: tuple[FieldChange, ...] = (),
) -> Change:
    resource = Resource(want.resource.ref, want.body, want.resource.origin)
    return Change(
        ref=want.resource.ref,
        action=action,
        desired=resource,
        live=found.body if found else None,
        diff=tuple(d.entry for d in deltas),
        reason=REASONS.get(action, "") if reason is None else reason,
        drifted_by=drifted_by,
    )


def drifted_by(
    deltas: Sequence[Delta], *, entries: Sequence[Ownership], manager: str
) -> tuple[FieldChange, ...]:
    """Managers who took over a differing field from us, oldest change first.

    A field still ours differs because Git changed; a field another manager owns
    (itself, a whole field around it, or something inside it) was changed by them.
    """
    mine = [e for e in entries if e.manager == manager]
    others = [e for e in entries if e.manager != manager]
    taken = [d.path for d in deltas if not any(e.owns(d.path) for e in mine)]
    found = {e.change for e in others for path in taken if e.touches(path)}
    return tuple(sorted(found, key=lambda c: (c.time, c.manager, c.operation)))


# --- duplicates -----------------------------------------------------------------------


def _unique(
    items: Sequence[T], *, key: Callable[[T], Key], describe: Callable[[list[T]], Finding]
) -> tuple[dict[Key, T], tuple[Finding, ...]]:
    """One item per key, chosen independently of input order; an ERROR per duplicate."""
    groups: dict[Key, list[T]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    ranked = {k: sorted(g, key=repr) if len(g) > 1 else g for k, g in sorted(groups.items())}
    twice = tuple(describe(g) for g in ranked.values() if len(g) > 1)
    return {k: g[0] for k, g in ranked.items()}, twice


def _twice_desired(group: list[Desired]) -> Finding:
    first = group[0].resource
    where = ", ".join(str(d.resource.origin) for d in group)
    message = f"defined {len(group)} times ({where}); nothing is applied until one remains"
    return Finding(Severity.ERROR, message, origin=first.origin, ref=first.ref)


def _twice_live(group: list[Live]) -> Finding:
    names = ", ".join(sorted(str((o.body.get("metadata") or {}).get("name")) for o in group))
    message = f"{len(group)} live objects map to this one ({names}); resolve by hand"
    return Finding(Severity.ERROR, message, ref=group[0].ref)
