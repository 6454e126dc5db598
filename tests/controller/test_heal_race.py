"""A heal from a watch event never writes the value of a revision older than the one in
force, whatever thread runs the full reconcile beside it.

The race: a heal reads the plan in force (revision A) and plans its one write; meanwhile a
full run applies revision B; the heal then writes A's value over B's. Both steps happen
under the Reconciler's writer lock, so the run waits for the heal (or the heal for the
run, and then plans against B). The interleaving is forced: the heal's planning step
waits for the full run to finish (at most a few seconds, in vain under the lock).

Negative control: without the lock the same interleaving writes A's value over B's."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any

import pytest

from reconciler import pipeline
from reconciler.applyset import ApplySet
from reconciler.cluster.client import Cluster
from reconciler.controller import loop
from reconciler.controller.loop import Reconciler
from reconciler.controller.record import Reason
from reconciler.pipeline import heal
from reconciler.plan import PlanOptions
from reconciler.source import GitSource, SourceSpec
from tests.cluster.engine import gnp
from tests.controller.helpers import GNP, edit_order, order_of, policy_yaml
from tests.source.repos import Upstream

pytestmark = pytest.mark.cluster


@pytest.mark.parametrize(
    ("locked", "order"),
    [
        pytest.param(True, 30, id="the newer revision stays"),
        pytest.param(False, 20, id="negative control: without the writer lock, the older wins"),
    ],
)
def test_a_heal_never_writes_an_older_revision_over_a_newer_one(
    cluster: Cluster,
    upstream: Upstream,
    applyset: ApplySet,
    tmp_path: Path,
    uid: str,
    monkeypatch: pytest.MonkeyPatch,
    locked: bool,
    order: int,
) -> None:
    assert _race(cluster, upstream, applyset, tmp_path, uid, monkeypatch, locked=locked) == order


def _race(
    cluster: Cluster,
    upstream: Upstream,
    applyset: ApplySet,
    tmp_path: Path,
    uid: str,
    monkeypatch: pytest.MonkeyPatch,
    *,
    locked: bool,
) -> int | None:
    """The order of the policy after a heal planned at revision A (order 20) races a full
    run of revision B (order 30)."""
    name = f"{uid}-ssh"
    upstream.commit({"p.yaml": policy_yaml(gnp(name, order=20))})
    reconciler = _reconciler(cluster, upstream, applyset, tmp_path)
    assert reconciler.reconcile(frozenset({"interval"})).record.reason is Reason.APPLIED
    upstream.commit({"p.yaml": policy_yaml(gnp(name, order=30))})
    edit_order(cluster, name, 99)
    edited = cluster.get(GNP, f"default.{name}")  # the body a watch event carries
    assert edited is not None
    planning, applied = threading.Event(), threading.Event()
    _hold_heal_planning(monkeypatch, planning, applied)
    if not locked:
        monkeypatch.setattr(reconciler, "_writer", contextlib.nullcontext())
    runs: list[loop.Run] = []

    def full_run() -> None:
        assert planning.wait(timeout=10)
        runs.append(reconciler.reconcile(frozenset({"webhook"})))
        applied.set()

    racer = threading.Thread(target=full_run)
    racer.start()
    heal = reconciler.heal_reported(edited)
    racer.join(timeout=60)
    assert heal is not None and heal.record.reason is Reason.DRIFT_HEALED
    # B was applied either way (over the edit, a heal too, when the heal had not run first)
    assert [r.record.reason in loop.IN_FORCE for r in runs] == [True]
    return order_of(cluster, name)


def _reconciler(
    cluster: Cluster, upstream: Upstream, applyset: ApplySet, tmp_path: Path
) -> Reconciler:
    spec = SourceSpec(url=str(upstream.bare), cache_dir=tmp_path / "cache")
    settings = pipeline.Settings(applyset=applyset, options=PlanOptions())
    return Reconciler(cluster=cluster, source=GitSource(spec), settings=settings)


def _hold_heal_planning(
    monkeypatch: pytest.MonkeyPatch, planning: threading.Event, applied: threading.Event
) -> None:
    """The heal's one-object plan waits until the full run has applied (3 s at most)."""
    real = heal.decide_one

    def held(*args: Any) -> Any:
        planning.set()
        applied.wait(timeout=3)
        return real(*args)

    monkeypatch.setattr(loop, "decide_one", held)
