"""Scheduling with the real APScheduler: no overlap, one follow-up, backoff, debounce."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from reconciler.controller.schedule import Runner, Scheduler, Timing
from tests.controller.helpers import eventually, holds


class Work:
    """A reconcile stand-in that records when it ran and can be held mid-run."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, frozenset[str]]] = []
        self.active = 0
        self.overlap = False
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, reasons: frozenset[str]) -> None:
        with self._lock:
            self.active += 1
            self.overlap |= self.active > 1
            self.calls.append((time.monotonic(), reasons))
        self.entered.set()
        self.gate.wait(10)
        with self._lock:
            self.active -= 1


@pytest.fixture
def work() -> Work:
    return Work()


@pytest.fixture
def runner(work: Work) -> Iterator[Runner]:
    r = Runner(work)
    r.start()
    yield r
    work.gate.set()
    assert r.stop(timeout=10)


def test_triggers_during_a_run_make_exactly_one_follow_up(runner: Runner, work: Work) -> None:
    work.gate.clear()
    runner.trigger("interval")
    assert work.entered.wait(5)
    for reason in ("webhook", "drift", "webhook", "drift"):
        runner.trigger(reason)
    work.gate.set()
    assert runner.wait_idle(runs=2, timeout=10)
    assert [reasons for _, reasons in work.calls] == [
        frozenset({"interval"}),
        frozenset({"webhook", "drift"}),
    ]
    assert not work.overlap


def test_never_two_at_once_under_a_storm(runner: Runner, work: Work) -> None:
    def storm() -> None:
        for _ in range(50):
            runner.trigger("t")

    threads = [threading.Thread(target=storm) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert runner.wait_idle(runs=1, timeout=10)
    assert not work.overlap
    assert len(work.calls) <= 200


def test_a_crashing_run_does_not_end_the_worker(work: Work) -> None:
    calls: list[int] = []

    def flaky(_: frozenset[str]) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")

    r = Runner(flaky)
    r.start()
    r.trigger("a")
    assert r.wait_idle(runs=1, timeout=5)
    r.trigger("b")
    assert r.wait_idle(runs=2, timeout=5)
    assert r.alive and len(calls) == 2
    assert r.stop(timeout=5)


def test_the_interval_ticks_with_jitter(runner: Runner, work: Work) -> None:
    scheduler = Scheduler(runner, Timing(interval=0.4, jitter=0.5))
    scheduler.start()
    try:
        eventually(lambda: len(work.calls) >= 3, timeout=10, what="three ticks")
    finally:
        scheduler.stop()
    gaps = [b[0] - a[0] for a, b in zip(work.calls, work.calls[1:], strict=False)]
    assert all(0.3 <= g <= 0.4 * 1.5 + 0.4 for g in gaps), gaps
    assert {r for _, r in work.calls} == {frozenset({"interval"})}


def test_retry_backs_off_and_a_success_resets_it(runner: Runner, work: Work) -> None:
    scheduler = Scheduler(runner, Timing(interval=2.0, retry=0.25))
    scheduler.start()
    try:
        assert [scheduler.failed() for _ in range(5)] == [0.25, 0.5, 1.0, 2.0, 2.0]
        scheduler.succeeded()
        assert scheduler.failed() == 0.25
        start = time.monotonic()
        eventually(lambda: work.calls, timeout=5, what="the retry")
        assert work.calls[0][1] == frozenset({"retry"})
        assert 0.2 <= work.calls[0][0] - start <= 1.5
        scheduler.failed()
        scheduler.succeeded()  # cancels the pending retry
        holds(lambda: len(work.calls) == 1, seconds=0.8, what="no cancelled 0.5 s retry")
    finally:
        scheduler.stop()


def test_drift_events_are_debounced_into_one_run(runner: Runner, work: Work) -> None:
    scheduler = Scheduler(runner, Timing(interval=3600, debounce=0.3, debounce_max=1.0))
    scheduler.start()
    try:
        start = time.monotonic()
        for _ in range(5):
            scheduler.drift()
            time.sleep(0.1)
        eventually(lambda: work.calls, timeout=5, what="the debounced run")
        assert runner.wait_idle(runs=1, timeout=5)
        holds(lambda: len(work.calls) == 1, seconds=0.5, what="a single debounced run")
        assert [r for _, r in work.calls] == [frozenset({"drift"})]
        assert 0.6 <= work.calls[0][0] - start <= 1.5
        # A steady stream of events cannot postpone the run past debounce_max.
        work.calls.clear()
        start = time.monotonic()
        while not work.calls and time.monotonic() - start < 5:
            scheduler.drift()
            time.sleep(0.1)
        assert work.calls and work.calls[0][0] - start <= 1.0 + 0.5
    finally:
        scheduler.stop()
