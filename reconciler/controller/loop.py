"""One reconcile: fetch -> render -> plan -> apply -> judge, as a straight pipeline.

Each step either hands its value to the next or stops the run with exactly one
reason (`_Stop`). A revision that fails to load, validate or dry-run is refused
as a whole and the last good revision stays in force: nothing is written and
nothing pruned, and self-heal keeps enforcing the last good one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from reconciler import pipeline
from reconciler.apply import Interrupted
from reconciler.applyset import BadAnnotation
from reconciler.cluster import errors
from reconciler.cluster.client import Cluster
from reconciler.controller.record import REASONS, Reason, Result, RunRecord
from reconciler.controller.status import now_rfc3339
from reconciler.model import Action, ApplyResult, Change, CheckResult, Plan, Revision, Stop
from reconciler.pipeline.heal import decide_one
from reconciler.source import errors as source_errors

log = logging.getLogger(__name__)
DRIFT = "drift"  # the trigger of a self-heal: re-plan the last good revision, no fetch
WATCH = "watch"  # the trigger of a heal of the one object a watch event reported
MAX_ERRORS = 20

# Most specific first: the first class in an exception's MRO found here wins.
SOURCE_REASONS: Mapping[type[source_errors.SourceError], Reason] = {
    source_errors.SignatureError: Reason.SIGNATURE,
    source_errors.PathError: Reason.INVALID,
    source_errors.AuthFailed: Reason.AUTH,
    source_errors.RefNotFound: Reason.REF,
    source_errors.RepositoryNotFound: Reason.NOT_FOUND,
    source_errors.Unreachable: Reason.UNREACHABLE,
    source_errors.SourceError: Reason.FETCH,
}


# Where the executor stopped, as the run's reason: marked where it happened, never guessed.
STOP_REASONS: Mapping[Stop, Reason] = {
    Stop.INVALID: Reason.INVALID,
    Stop.CHECKS: Reason.CHECKS,
    Stop.CONFLICT: Reason.CONFLICT,
    Stop.REJECTED: Reason.REJECTED,
    Stop.FAILED: Reason.APPLY,
    Stop.INTERRUPTED: Reason.INTERRUPTED,
}
# Stops that refuse the revision as a whole: it never becomes the last good one.
REFUSALS = frozenset({Stop.INVALID, Stop.CHECKS, Stop.CONFLICT, Stop.REJECTED})
# Ends of a run that leave its revision applied in full.
IN_FORCE = frozenset({Reason.UP_TO_DATE, Reason.APPLIED, Reason.DRIFT_HEALED})


class Source(Protocol):
    def fetch(self) -> Revision: ...

    def descends(self, old: str, new: str) -> bool | None: ...

    def redacted_url(self) -> str: ...


Recall = Callable[[str], Source]  # the same repo pinned to a commit: the last good revision
Fetched = Revision | Exception  # what a fetch done elsewhere (on its own thread) came back with


@dataclass(frozen=True, slots=True)
class Run:
    """A finished run: the record everyone reads, and the plan/result for reports."""

    record: RunRecord
    plan: Plan | None = None
    result: ApplyResult | None = None
    accepted: bool = False  # the revision passed load, validation and dry-run
    drifted: tuple[str, ...] = ()  # kind of each object found changed outside Git
    fetched: bool = True  # False: a self-heal run that re-planned the last good revision
    rewound: str = ""  # what a force-push that rewound history did, in words


class _Stop(Exception):
    """Control flow: ends the run with one reason."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


@dataclass(slots=True)
class _Attempt:
    """What the run learnt so far; becomes the RunRecord at the end."""

    trigger: str
    started: str = field(default_factory=now_rfc3339)
    clock: float = field(default_factory=time.monotonic)
    revision: Revision | None = None
    plan: Plan | None = None
    result: ApplyResult | None = None
    done: list[Change] = field(default_factory=list)
    heals: tuple[Change, ...] = ()  # writes that undid an out-of-band change
    fetched: bool = False
    rewound: str = ""


class Reconciler:
    """Holds the last good revision between runs. Runs and heals are serialised here, not
    only by the caller: a heal planned against the plan in force must not write after a
    run on another thread moved the cluster to a newer revision."""

    def __init__(
        self,
        *,
        cluster: Cluster,
        source: Source,
        settings: pipeline.Settings,
        may_write: Callable[[], bool] = lambda: True,
        recall: Recall | None = None,
    ) -> None:
        self.cluster = cluster
        self.source = source
        self.settings = settings
        self._may_write = may_write
        self._recall = recall
        self.last_good: pipeline.Rendered | None = None
        self.applied: str = ""  # revision id last applied in full
        self.planned: pipeline.Planned | None = None  # of the last run that planned
        # The plan of the last run that left its revision applied in full, with no write
        # since: what a heal of one reported object re-plans (`heal_reported`).
        self.baseline: pipeline.Planned | None = None
        self._epoch = 0  # moved on by `invalidate`: a run started before keeps no baseline
        self._writer: AbstractContextManager[object] = threading.Lock()  # one writer at a time

    def reconcile(self, triggers: frozenset[str], *, fetched: Fetched | None = None) -> Run:
        """One run; `fetched`: the head, already fetched by the caller (else fetched here)."""
        with self._writer:
            return self._reconcile(triggers, fetched)

    def _reconcile(self, triggers: frozenset[str], fetched: Fetched | None) -> Run:
        attempt = _Attempt("+".join(sorted(triggers)))
        epoch = self._epoch
        try:
            rendered = self._rendered(triggers, attempt, fetched)
            planned = self._plan(rendered, attempt)
            result = self._apply(planned, attempt)
            reason, message = self._judge(rendered, result, attempt)
        except _Stop as stop:
            return self._finish(attempt, stop.reason, stop.message, ())
        except Exception as exc:  # a bug: recorded, reported and retried like any failure
            log.exception("reconcile crashed", extra={"trigger": attempt.trigger})
            return self._finish(attempt, Reason.INTERNAL, f"internal error: {exc!r}", ())
        if reason in IN_FORCE and epoch == self._epoch:
            self.baseline = planned
        return self._finish(attempt, reason, message, _errors(planned.plan, result))

    def invalidate(self) -> None:
        """What the baseline was planned from changed (inventory, the parent): until a full
        run plans again, every heal takes the full path. Safe from any thread."""
        self._epoch += 1
        self.baseline = None

    def heal_reported(self, body: Mapping[str, Any]) -> Run | None:
        """Heal the one object a watch event reported, from the plan last applied in full,
        without reading anything: the same planner on a one-object observed set
        (`pipeline.heal`), the same executor (a dry-run, then the write). None when it
        cannot decide alone; the caller then falls back to the full re-plan.

        Safe because it only returns one object to Git's value under a revision that was
        applied in full (and passed its checks and the firewall-safe order then): the state
        it writes is one that revision already held, and one write has no state between
        before and after. Nothing is written while a write of another run has happened
        since (`baseline` is cleared by every write and set again only by a run that ends
        in force), nor for a revision not applied in full yet. The baseline is read and
        written under the same lock as full runs: it is the newest plan in force.
        """
        with self._writer:
            return self._heal(body)

    def _heal(self, body: Mapping[str, Any]) -> Run | None:
        planned = self._heal_plan(body)
        if planned is None or self.last_good is None:
            return None
        (change,) = planned.plan.changes
        attempt = _Attempt(WATCH, revision=self.last_good.revision, plan=planned.plan)
        if change.action is Action.UNCHANGED:  # e.g. a field Git does not set
            return self._heal_run(attempt, Reason.UP_TO_DATE, f"{change.ref} is as Git has it")
        if change.action is not Action.DRIFT or not self._may_write():
            return None  # not an edit of ours by someone else: only a full plan says what
        try:
            result = pipeline.apply(self.cluster, planned, self.settings, workers=1)
        except errors.KubeError:
            return None
        if not result.ok:
            return None  # nothing written (one write): the full path says why, and retries
        attempt.result, attempt.done, attempt.heals = result, [*result.done], result.done
        healed = _applied_message(self.last_good.revision, result.done, result.done)
        return self._heal_run(attempt, Reason.DRIFT_HEALED, f"{healed} from its watch event")

    def _heal_plan(self, body: Mapping[str, Any]) -> pipeline.Planned | None:
        """The baseline re-planned for `body` alone, when the baseline is the last good
        revision applied in full."""
        base, good = self.baseline, self.last_good
        if base is None or good is None or base.plan.revision != good.revision:
            return None
        if good.revision.id != self.applied:
            return None
        planned = decide_one(base, body, self.settings)
        return None if planned is None or planned.plan.errors else planned

    def _heal_run(self, attempt: _Attempt, reason: Reason, message: str) -> Run:
        run = self._finish(attempt, reason, message, ())
        # Not a plan of the revision: the planned-objects gauges keep the full plan's counts.
        return replace(run, record=replace(run.record, planned={}), accepted=True)

    # -- the steps -------------------------------------------------------------------

    def _rendered(
        self, triggers: frozenset[str], attempt: _Attempt, fetched: Fetched | None
    ) -> pipeline.Rendered:
        if triggers == {DRIFT} and self.last_good is not None:
            attempt.revision = self.last_good.revision
            return self.last_good
        source = self.source
        if triggers == {DRIFT} and self.applied and self._recall is not None:
            # Self-heal right after a restart: the revision in force, not the head, which
            # may be one we refused.
            source = self._recall(self.applied)
        attempt.fetched = source is self.source
        try:
            outcome = fetched if fetched is not None and attempt.fetched else source.fetch()
            if isinstance(outcome, Exception):
                raise outcome  # a bug there is the catch-all's, as if it had happened here
            revision = outcome
        except source_errors.SourceError as exc:
            raise _Stop(_source_reason(exc), exc.message) from exc
        attempt.revision = revision
        if revision.rewound_from:
            attempt.rewound = _rewound(revision)
            log.warning(attempt.rewound, extra={"revision": revision.id})
        if self.last_good is not None and self.last_good.revision.id == revision.id:
            return self.last_good  # a render is a pure function of the commit: reuse it
        return pipeline.render(Path(revision.path), revision, self.settings)

    def _plan(self, rendered: pipeline.Rendered, attempt: _Attempt) -> pipeline.Planned:
        try:
            planned = pipeline.plan(self.cluster, rendered, self.settings)
        except errors.KubeError as exc:
            raise _Stop(Reason.CLUSTER, f"planning failed: {exc.message}") from exc
        except BadAnnotation as exc:
            raise _Stop(Reason.ANNOTATION, str(exc)) from exc
        attempt.plan = planned.plan
        self.planned = planned
        if planned.suspended:
            raise _Stop(Reason.SUSPENDED, "suspended by the ApplySet parent's annotation")
        return planned

    def _apply(self, planned: pipeline.Planned, attempt: _Attempt) -> ApplyResult:
        if not self._may_write():
            raise _Stop(Reason.INTERRUPTED, "stopped before applying")

        def progress(change: Change, _status: str) -> None:
            attempt.done.append(change)
            self.baseline = None  # the cluster moves away from the last plan in force
            if not self._may_write():
                raise Interrupted

        try:
            result = pipeline.apply(self.cluster, planned, self.settings, progress=progress)
        except errors.KubeError as exc:  # dry-run or inventory write failed to connect
            raise _Stop(Reason.CLUSTER, f"apply failed: {exc.message}") from exc
        if result.stopped is Stop.INTERRUPTED:
            raise _Stop(STOP_REASONS[result.stopped], _interrupted(attempt, planned.plan))
        attempt.result = result
        return result

    def _judge(
        self,
        rendered: pipeline.Rendered,
        result: ApplyResult,
        attempt: _Attempt,
    ) -> tuple[Reason, str]:
        short = _short(rendered.revision)
        if result.stopped in REFUSALS:
            refused = f"revision {short} refused: {_refusal(result)}{self._kept()}"
            return STOP_REASONS[result.stopped], refused
        self.last_good = rendered  # it passed load, validation and dry-run
        if result.stopped is Stop.FAILED:
            failure = result.failed[0]
            failed = f"applying {failure.change.ref} failed: {failure.message}"
            return STOP_REASONS[result.stopped], failed
        same = rendered.revision.id == self.applied  # then a create restores a deletion
        self.applied = rendered.revision.id
        if not result.done:
            return Reason.UP_TO_DATE, f"revision {short} is in force; nothing to change"
        attempt.heals = tuple(c for c in result.done if _is_heal(c, same_revision=same))
        reason = Reason.DRIFT_HEALED if len(attempt.heals) == len(result.done) else Reason.APPLIED
        return reason, _applied_message(rendered.revision, result.done, attempt.heals)

    def _kept(self) -> str:
        if self.last_good is not None:
            return f"; revision {_short(self.last_good.revision)} stays in force"
        if self.applied:
            return f"; revision {_short(Revision(self.applied, ''))} stays in force"
        return "; no revision has been applied yet"

    def _finish(
        self, attempt: _Attempt, reason: Reason, message: str, errs: tuple[str, ...]
    ) -> Run:
        revision = attempt.revision or Revision("", "")
        message = f"{message}; {attempt.rewound}" if attempt.rewound else message
        written = Counter(c.action.value for c in attempt.done)
        planned = Counter(c.action.value for c in attempt.plan.changes) if attempt.plan else {}
        failing = REASONS[reason].result in (Result.REFUSED, Result.FAILED)
        record = RunRecord(
            trigger=attempt.trigger,
            reason=reason,
            message=message,
            revision=revision.id,
            subject=revision.subject,
            started=attempt.started,
            finished=now_rfc3339(),
            duration=round(time.monotonic() - attempt.clock, 3),
            planned=dict(planned),
            written=dict(written),
            errors=errs or ((message,) if failing else ()),
            drift=tuple(heal_note(c) for c in attempt.heals),
        )
        accepted = self.last_good is not None and self.last_good.revision == revision
        return Run(
            record,
            attempt.plan,
            attempt.result,
            accepted,
            _drifted(attempt),
            fetched=attempt.fetched,
            rewound=attempt.rewound,
        )


def _rewound(revision: Revision) -> str:
    return (
        f"history rewritten: the applied commit {revision.rewound_from[:12]} is not in the "
        f"history of {revision.id[:12]} (a force-push); applying it anyway, as Flux does"
    )


def heal_note(change: Change) -> str:
    """ "GlobalNetworkPolicy/allow-ssh made by kubectl-edit at <time>", for logs and Events."""
    if change.action is Action.CREATE:
        return f"{change.ref} (deleted outside Git)"
    who = ", ".join(f"{f.manager} at {f.time}" for f in change.drifted_by) or "another manager"
    return f"{change.ref} made by {who}"


def _is_heal(change: Change, *, same_revision: bool) -> bool:
    return change.action is Action.DRIFT or (same_revision and change.action is Action.CREATE)


def _drifted(attempt: _Attempt) -> tuple[str, ...]:
    changed = [c for c in attempt.plan.changes if c.action is Action.DRIFT] if attempt.plan else []
    deleted = [c for c in attempt.heals if c.action is Action.CREATE]
    return tuple(c.ref.kind for c in (*changed, *deleted))


def _source_reason(exc: source_errors.SourceError) -> Reason:
    for cls in type(exc).__mro__:
        if cls in SOURCE_REASONS:
            return SOURCE_REASONS[cls]
    return Reason.FETCH


def _refusal(result: ApplyResult) -> str:
    """Why the executor refused the whole revision, before writing anything."""
    if result.stopped is Stop.REJECTED:
        first = result.failed[0]
        return (
            f"the API server rejected {len(result.failed)} object(s) in the dry-run: "
            f"{first.change.ref}: {first.message}"
        )
    if result.stopped is Stop.CHECKS:
        return (
            "; ".join(result.notes)
            + ": "
            + "; ".join(check_line(c) for c in result.plan.failing_checks)
        )
    errs = result.plan.errors
    return "; ".join(result.notes) + (f" (first: {errs[0]})" if errs else "")


def check_line(check: CheckResult) -> str:
    """ "admins-ssh: 203.0.113.9 -> node node-2 tcp/22 denied by ... (after create ...)" """
    return f"{check.name}: {check.counterexample} ({check.state})"


def _errors(plan: Plan, result: ApplyResult) -> tuple[str, ...]:
    found = [str(f) for f in plan.errors] + [f"{f.change.ref}: {f.message}" for f in result.failed]
    return tuple(found[:MAX_ERRORS])


def _short(revision: Revision) -> str:
    return revision.id[:12] if not revision.id.startswith("dir:") else revision.id


def _applied_message(
    revision: Revision, done: tuple[Change, ...], heals: tuple[Change, ...]
) -> str:
    healed = "healed drift on " + "; ".join(heal_note(c) for c in heals)
    if len(heals) == len(done):
        return f"{healed} (revision {_short(revision)})"
    counts = Counter(c.action.value for c in done)
    summary = ", ".join(f"{n} {action}" for action, n in sorted(counts.items()))
    text = f"applied revision {_short(revision)}: {summary}"
    return f"{text}; {healed}" if heals else text


def _interrupted(attempt: _Attempt, plan: Plan) -> str:
    writes = sum(1 for c in plan.changes if c.action.writes)
    return (
        f"stopped between two writes after {len(attempt.done)} of {writes}; "
        "the next run resumes from the live state"
    )
