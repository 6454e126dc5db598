"""The executor marks why it stopped; the controller maps that to its reason by a table."""

from __future__ import annotations

from typing import Any, cast

from reconciler.apply import Inventories, Target, execute
from reconciler.applyset import ApplySet, Inventory
from reconciler.cluster.types import Types
from reconciler.controller.loop import REFUSALS, STOP_REASONS
from reconciler.controller.record import REASONS, Result
from reconciler.model import Action, ApplyResult, Finding, Plan, Revision, Severity, Stop
from tests.factories import change

REVISION = Revision("dir:x", "x")
TARGET = Target(cast(Any, None), Types(), ApplySet("a", "ns"))  # never reached: blocked first
INVENTORIES = Inventories(None, Inventory())


def test_every_stop_has_one_controller_reason() -> None:
    assert set(STOP_REASONS) == set(Stop)
    for stop, reason in STOP_REASONS.items():
        expected = Result.REFUSED if stop in REFUSALS else Result.FAILED
        assert REASONS[reason].result is expected, stop


def test_invalid_input_stops_before_any_request() -> None:
    error = Finding(Severity.ERROR, "bad selector")
    plan = Plan(REVISION, (change("a", Action.CREATE),), findings=(error,))
    result = execute(TARGET, plan, inventories=INVENTORIES)
    assert result.stopped is Stop.INVALID and not result.ok
    assert [c.ref.name for c in result.skipped] == ["a"]


def test_a_conflict_stops_before_any_request() -> None:
    plan = Plan(REVISION, (change("a", Action.CREATE), change("b", Action.CONFLICT)))
    result = execute(TARGET, plan, inventories=INVENTORIES)
    assert result.stopped is Stop.CONFLICT and not result.ok


def test_a_result_that_ran_to_the_end_is_ok() -> None:
    assert ApplyResult(Plan(REVISION, ())).ok
    assert not ApplyResult(Plan(REVISION, ()), stopped=Stop.INTERRUPTED).ok
