"""Execute a Plan: dry-run everything, record the inventory superset, apply in order, prune.

Partial progress is returned with the failure, never lost: the ApplyResult says
what was done, what failed and what was skipped, and the next run resumes from
the live state (every step is idempotent).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from reconciler import FIELD_MANAGER
from reconciler.applyset import ApplySet, Inventory, parent_body
from reconciler.cluster import errors
from reconciler.cluster.client import CONFIGMAPS, Cluster
from reconciler.cluster.types import Types
from reconciler.kinds import group_kind_of
from reconciler.model import Action, ApplyResult, Change, Failure, Plan, Stop

log = logging.getLogger(__name__)

APPLIES = frozenset({Action.CREATE, Action.UPDATE, Action.DRIFT, Action.ADOPT})
FORCED = frozenset({Action.DRIFT, Action.ADOPT})  # take back fields someone else took
Progress = Callable[[Change, str], None]


class Interrupted(Exception):
    """Raised by a `Progress` callback to stop between two writes (shutdown, lost lease)."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where and how to execute: the cluster, its types, and our ApplySet."""

    cluster: Cluster
    types: Types
    applyset: ApplySet
    field_manager: str = FIELD_MANAGER


@dataclass(frozen=True, slots=True)
class Inventories:
    """The parent's record before the run (None: no parent yet) and after it."""

    recorded: Inventory | None
    final: Inventory  # what remains managed once this plan is done

    @property
    def superset(self) -> Inventory:
        return self.final.union(self.recorded or Inventory())


def execute(
    target: Target,
    plan: Plan,
    *,
    inventories: Inventories,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ApplyResult:
    """Each Change's `desired.body` is what gets applied (cluster flavour, labelled)."""
    blocked = _blocked(plan)
    if blocked:
        stop = (
            Stop.INVALID if plan.errors else Stop.CHECKS if plan.failing_checks else Stop.CONFLICT
        )
        return ApplyResult(plan, skipped=_writes(plan), notes=(blocked,), stopped=stop)
    rejected = _dry_run(target, plan)
    if rejected or dry_run:
        skipped = () if dry_run else _writes(plan)
        stopped = Stop.REJECTED if rejected else None
        return ApplyResult(plan, failed=rejected, skipped=skipped, stopped=stopped)
    _record(target, inventories.recorded, inventories.superset)
    result = _run(target, plan, progress=progress)
    if result.ok:
        _record(target, inventories.superset, inventories.final)
    return result


def _blocked(plan: Plan) -> str:
    if plan.errors:
        return f"{len(plan.errors)} error(s) in the input: nothing written, nothing pruned"
    failing = plan.failing_checks
    if failing:
        names = ", ".join(c.name for c in failing)
        return (
            f"{len(failing)} connectivity check(s) fail ({names}): nothing written, nothing pruned"
        )
    conflicts = plan.count(Action.CONFLICT)
    if conflicts:
        return (
            f"{conflicts} object(s) exist and are not managed by policy-reconciler: "
            "nothing written (pass --adopt to take them over)"
        )
    return ""


def _writes(plan: Plan) -> tuple[Change, ...]:
    return tuple(c for c in plan.changes if c.action.writes)


def _dry_run(target: Target, plan: Plan) -> tuple[Failure, ...]:
    """Server-side dry-run of every create and update: one rejection stops everything."""
    failures = []
    for change in plan.changes:
        if change.action in APPLIES:
            try:
                _apply(target, change, dry_run=True)
            except errors.KubeError as exc:
                failures.append(Failure(change, f"rejected by the API server: {exc.message}"))
    return tuple(failures)


def _run(target: Target, plan: Plan, *, progress: Progress | None) -> ApplyResult:
    done: list[Change] = []
    writes = _writes(plan)
    for i, change in enumerate(writes):
        try:
            _step(target, change)
        except errors.KubeError as exc:
            # Stop: carrying on past a failed step could break the firewall-safe order.
            failure = Failure(change, exc.message)
            return ApplyResult(plan, tuple(done), (failure,), writes[i + 1 :], stopped=Stop.FAILED)
        done.append(change)
        try:
            if progress:
                progress(change, "done")
        except Interrupted:
            return ApplyResult(plan, tuple(done), skipped=writes[i + 1 :], stopped=Stop.INTERRUPTED)
    return ApplyResult(plan, tuple(done))


def _step(target: Target, change: Change) -> None:
    if change.action is Action.PRUNE:
        _prune(target, change)
    else:
        _apply(target, change, dry_run=False)


def _apply(target: Target, change: Change, *, dry_run: bool) -> None:
    assert change.desired is not None, "only changes with a desired object are applied"
    body = change.desired.body
    rtype = target.types.of(group_kind_of(body))
    target.cluster.apply(
        rtype,
        body,
        force=change.action in FORCED,
        dry_run=dry_run,
        field_manager=target.field_manager,
    )


def _prune(target: Target, change: Change) -> None:
    live = change.live or {}
    meta = live.get("metadata", {})
    # The uid precondition deletes exactly the object we planned to, never a namesake.
    rtype = target.types.of(group_kind_of(live))
    target.cluster.delete(rtype, meta["name"], meta.get("namespace", ""), uid=meta.get("uid", ""))


def _record(target: Target, current: Inventory | None, wanted: Inventory) -> None:
    """Write the parent only when its record changes: a steady-state run writes nothing."""
    if current == wanted:
        return
    body = parent_body(target.applyset, wanted)
    try:
        target.cluster.apply(CONFIGMAPS, body, force=True, field_manager=target.field_manager)
    except errors.NotFound as exc:
        ns = target.applyset.namespace
        raise errors.NotFound(
            f"namespace {ns!r}, where the ApplySet parent ConfigMap records what we own, "
            f"does not exist: create it (kubectl create namespace {ns}) or pass --namespace; "
            "nothing was written"
        ) from exc
