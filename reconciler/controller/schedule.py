"""When to reconcile: one worker that never runs two reconciles at once, fed by triggers.

APScheduler (3.x) owns time: the jittered interval, the retry after a failure (with
exponential backoff) and the debounce of watch events. It never runs a reconcile
itself; its jobs only call `Runner.trigger`, and the runner's single thread does
the work. A trigger that arrives during a run marks exactly one follow-up run,
however many arrive.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

log = logging.getLogger(__name__)
Work = Callable[[frozenset[str]], None]


class Runner:
    """A single worker thread; `trigger` is safe from any thread and never blocks."""

    def __init__(self, work: Work, *, name: str = "reconcile") -> None:
        self._work = work
        self._cond = threading.Condition()
        self._pending: set[str] = set()
        self._stopping = False
        self._busy_since: float | None = None
        self.runs = 0
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def trigger(self, reason: str) -> None:
        with self._cond:
            self._pending.add(reason)
            self._cond.notify()

    def take(self, reason: str) -> bool:
        """Remove `reason` from the pending triggers; True if it was there (for work that
        serves a trigger early, while the current run waits on something else)."""
        with self._cond:
            if reason not in self._pending:
                return False
            self._pending.discard(reason)
            return True

    def stop(self, *, timeout: float) -> bool:
        """Ask the worker to stop after the current run; True if it did within timeout."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def busy_for(self) -> float:
        """Seconds the current run has taken so far (0 when idle)."""
        since = self._busy_since
        return time.monotonic() - since if since is not None else 0.0

    def _loop(self) -> None:
        while True:
            reasons = self._next()
            if reasons is None:
                return
            try:
                self._work(reasons)
            except Exception:  # a bug in one run must not end the controller
                log.exception("reconcile crashed", extra={"trigger": "+".join(sorted(reasons))})
            finally:
                with self._cond:
                    self._busy_since = None
                    self.runs += 1
                    self._cond.notify_all()

    def _next(self) -> frozenset[str] | None:
        with self._cond:
            while not self._pending and not self._stopping:
                self._cond.wait()
            if self._stopping:
                return None
            reasons = frozenset(self._pending)
            self._pending.clear()
            self._busy_since = time.monotonic()
            return reasons

    def wait_idle(self, *, runs: int, timeout: float) -> bool:
        """Tests and --once: wait until `runs` runs have finished and nothing is pending."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.runs < runs or self._pending or self._busy_since is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True


@dataclass(frozen=True, slots=True)
class Timing:
    interval: float = 60.0
    jitter: float = 0.1  # share of the interval added at random to each tick
    retry: float = 10.0  # first retry after a failure; doubles up to the interval
    debounce: float = 1.0  # quiet time after a watch event before self-heal runs
    debounce_max: float = 3.0  # ...but never later than this after the first event


class Scheduler:
    """The jittered interval, failure retries with backoff, and debounced drift triggers."""

    def __init__(self, runner: Runner, timing: Timing) -> None:
        self._runner = runner
        self._timing = timing
        self._aps = BackgroundScheduler(
            timezone=UTC, job_defaults={"coalesce": True, "misfire_grace_time": None}
        )
        self._lock = threading.Lock()
        self._failures = 0
        self._first_event: float | None = None

    def start(self) -> None:
        t = self._timing
        self._aps.add_job(
            self._runner.trigger,
            IntervalTrigger(seconds=t.interval, jitter=t.interval * t.jitter, timezone=UTC),
            args=["interval"],
            id="interval",
            max_instances=1,
        )
        self._aps.start()

    def stop(self) -> None:
        if self._aps.running:
            self._aps.shutdown(wait=False)

    def succeeded(self) -> None:
        with self._lock:
            self._failures = 0
        self._remove("retry")

    def failed(self) -> float:
        """Schedule one retry; returns its delay: retry, 2x, 4x ... capped at the interval."""
        with self._lock:
            self._failures += 1
            exponent = min(self._failures - 1, 16)
        ceiling = max(self._timing.interval, self._timing.retry)
        delay = min(self._timing.retry * float(2**exponent), ceiling)
        self._at(delay, "retry")
        return delay

    def drift(self) -> None:
        """Debounce: run `debounce` after the last event, at most `debounce_max` after the first."""
        now = time.monotonic()
        with self._lock:
            if self._first_event is None:
                self._first_event = now
            latest = self._first_event + self._timing.debounce_max
        self._at(min(self._timing.debounce, max(latest - now, 0.0)), "drift")

    def _fire_drift(self) -> None:
        with self._lock:
            self._first_event = None
        self._runner.trigger("drift")

    def _at(self, delay: float, job: str) -> None:
        when = datetime.now(UTC) + timedelta(seconds=delay)
        func = self._fire_drift if job == "drift" else self._runner.trigger
        args = [] if job == "drift" else [job]
        if self._aps.running:
            self._aps.add_job(
                func, DateTrigger(when, timezone=UTC), args=args, id=job, replace_existing=True
            )

    def _remove(self, job: str) -> None:
        with contextlib.suppress(JobLookupError):  # already fired, or never scheduled
            self._aps.remove_job(job)
