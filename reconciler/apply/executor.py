"""Execute a Plan: dry-run everything, record the inventory superset, apply in order, prune.

Requests go out concurrently (`Target.workers` at a time): every dry-run at once,
since none of them changes anything, and the writes batch by batch
(`plan.order.batches`), concurrently only inside a batch. A batch is a barrier: the
next one starts only when every write of this one has answered, so the
firewall-safe order between stages holds whatever the concurrency.

Partial progress is returned with the failure, never lost: the ApplyResult says
what was done, what failed and what was skipped, and the next run resumes from
the live state (every step is idempotent).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field

from reconciler import FIELD_MANAGER
from reconciler.applyset import ApplySet, Inventory, parent_body
from reconciler.cluster import errors
from reconciler.cluster.client import CONFIGMAPS, Cluster, Payload
from reconciler.cluster.types import Types
from reconciler.kinds import group_kind_of
from reconciler.model import Action, ApplyResult, Change, Failure, Plan, Stop
from reconciler.plan.order import batches

log = logging.getLogger(__name__)

APPLIES = frozenset({Action.CREATE, Action.UPDATE, Action.DRIFT, Action.ADOPT})
FORCED = frozenset({Action.DRIFT, Action.ADOPT})  # take back fields someone else took
Progress = Callable[[Change, str], None]  # called once per write done, from one thread
# Each applied body serialised once, by id() of its Change: its dry-run and its write send
# the same bytes.
Payloads = dict[int, Payload]
# Requests in flight at once. Flux's ssa uses 4; 8 keeps both cores of a small API server
# busy while staying far below any priority level's seats (see README, Benchmarks).
WORKERS = 8


class Interrupted(Exception):
    """Raised by a `Progress` callback to stop between two writes (shutdown, lost lease)."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where and how to execute: the cluster, its types, and our ApplySet."""

    cluster: Cluster
    types: Types
    applyset: ApplySet
    field_manager: str = FIELD_MANAGER
    workers: int = WORKERS  # requests in flight at once; 1 = one at a time


@dataclass(frozen=True, slots=True)
class Inventories:
    """The parent's record before the run (None: no parent yet) and after it."""

    recorded: Inventory | None
    final: Inventory  # what remains managed once this plan is done
    transient: Inventory = field(
        default_factory=Inventory
    )  # written and removed by this plan (a bridge)

    @property
    def superset(self) -> Inventory:
        return self.final.union(self.recorded or Inventory()).union(self.transient)


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
    with _pool(target.workers) as pool:
        rejected, payloads = _dry_run(target, plan, pool)
        if rejected or dry_run:
            skipped = () if dry_run else _writes(plan)
            stopped = Stop.REJECTED if rejected else None
            return ApplyResult(plan, failed=rejected, skipped=skipped, stopped=stopped)
        _record(target, inventories.recorded, inventories.superset)
        result = _run(target, plan, pool, payloads, progress=progress)
    if result.ok:
        _record(target, inventories.superset, inventories.final)
    return result


@contextmanager
def _pool(workers: int) -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="apply")
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


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


def _dry_run(
    target: Target, plan: Plan, pool: ThreadPoolExecutor
) -> tuple[tuple[Failure, ...], Payloads]:
    """Server-side dry-run of every create and update: one rejection stops everything.

    All of them are sent, concurrently, and all the rejections are reported in plan order.
    Returns the bodies as sent, for the writes to send again.
    """
    applies = [c for c in plan.changes if c.action in APPLIES]
    outcomes = list(pool.map(lambda c: _try_dry_run(target, c), applies))
    payloads = {id(c): payload for c, (payload, _) in zip(applies, outcomes, strict=True)}
    return tuple(f for _, f in outcomes if f is not None), payloads


def _try_dry_run(target: Target, change: Change) -> tuple[Payload, Failure | None]:
    payload = _payload(change)
    try:
        _apply(target, change, payload, dry_run=True)
    except errors.KubeError as exc:
        return payload, Failure(change, f"rejected by the API server: {exc.message}")
    return payload, None


def _run(
    target: Target,
    plan: Plan,
    pool: ThreadPoolExecutor,
    payloads: Payloads,
    *,
    progress: Progress | None,
) -> ApplyResult:
    """Batch by batch; a failure or an interrupt stops the run at the end of its batch."""
    done: list[Change] = []
    groups = batches(_writes(plan), one_by_one=plan.order.one_by_one)
    for i, batch in enumerate(groups):
        outcome = _Batch(batch, payloads).run(target, pool, progress)
        done.extend(outcome.done)
        if outcome.stopped is not None:
            later = tuple(c for group in groups[i + 1 :] for c in group)
            skipped = outcome.skipped + later
            return ApplyResult(plan, tuple(done), outcome.failed, skipped, stopped=outcome.stopped)
    return ApplyResult(plan, tuple(done))


@dataclass
class _Batch:
    """One batch's writes in flight; only the calling thread touches the results."""

    changes: Sequence[Change]
    payloads: Payloads
    done: list[Change] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    interrupted: bool = False
    halt: threading.Event = field(default_factory=threading.Event)

    def run(self, target: Target, pool: ThreadPoolExecutor, progress: Progress | None) -> _Batch:
        futures = {pool.submit(self._write, target, c): c for c in self.changes}
        for future in as_completed(futures):  # waits for every write of the batch
            self._settle(futures[future], future, progress)
        order = {id(c): i for i, c in enumerate(self.changes)}
        self.done.sort(key=lambda c: order[id(c)])  # plan order, whatever finished first
        return self

    def _write(self, target: Target, change: Change) -> bool:
        """In a worker: False when the batch was halted before this write started."""
        if self.halt.is_set():
            return False
        _step(target, change, self.payloads)
        return True

    def _settle(self, change: Change, future: Future[bool], progress: Progress | None) -> None:
        try:
            written = future.result()
        except errors.KubeError as exc:
            # Halt: carrying on past a failed step could break the firewall-safe order.
            self.failures.append(Failure(change, exc.message))
            self.halt.set()
            return
        if not written:
            return
        self.done.append(change)
        try:
            if progress:
                progress(change, "done")
        except Interrupted:
            self.interrupted = True
            self.halt.set()

    @property
    def stopped(self) -> Stop | None:
        if self.failures:
            return Stop.FAILED
        return Stop.INTERRUPTED if self.interrupted else None

    @property
    def failed(self) -> tuple[Failure, ...]:
        order = {id(c): i for i, c in enumerate(self.changes)}
        return tuple(sorted(self.failures, key=lambda f: order[id(f.change)]))

    @property
    def skipped(self) -> tuple[Change, ...]:
        settled = {id(c) for c in self.done} | {id(f.change) for f in self.failures}
        return tuple(c for c in self.changes if id(c) not in settled)


def _step(target: Target, change: Change, payloads: Payloads) -> None:
    if change.action is Action.PRUNE:
        _prune(target, change)
    else:
        payload = payloads.get(id(change)) or _payload(change)
        _apply(target, change, payload, dry_run=False)


def _payload(change: Change) -> Payload:
    assert change.desired is not None, "only changes with a desired object are applied"
    return Payload.of(change.desired.body)


def _apply(target: Target, change: Change, payload: Payload, *, dry_run: bool) -> None:
    """The answer is not read: the executor needs only acceptance or the typed error."""
    assert change.desired is not None, "only changes with a desired object are applied"
    rtype = target.types.of(group_kind_of(change.desired.body))
    target.cluster.submit(
        rtype,
        payload,
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
