"""An out-of-band edit is healed from its watch event: no debounce, no LIST, one object
re-planned, with the same ownership and in-force guards as the full re-plan. The audit log
is the witness of what the controller asked.

Negative controls: with targeted heals off the same edit costs LISTs (so the witness can
see them); an object without our label, an edit made under our own field manager, and an
edit while suspended are left alone; a deletion still comes back (the full re-plan)."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.applyset import ApplySet
from reconciler.cluster.client import Cluster
from reconciler.controller.record import Reason
from reconciler.controller.runtime import Controller
from tests.audit import AuditLog, Request
from tests.cluster.engine import gnp
from tests.controller.conftest import StartController
from tests.controller.helpers import (
    GNP,
    annotate_suspend,
    edit_order,
    events_for,
    eventually,
    holds,
    order_of,
    policy_yaml,
    reasons,
    settle,
)
from tests.source.repos import Upstream

pytestmark = pytest.mark.cluster


def _started(start_controller: StartController, *, user_agent: str, **kwargs: Any) -> Controller:
    controller = start_controller(interval=3600, agent=_agent(user_agent), **kwargs)
    assert controller.runner.wait_idle(runs=1, timeout=30), "the startup run never finished"
    eventually(controller.watches.listening, timeout=10, what="watches started")
    settle(controller)  # the watches' first LIST asks for one full look; let it pass
    return controller


def _agent(user_agent: str) -> str:
    """The controller's own user agent: the test's edits and GETs are not its requests."""
    return f"{user_agent} controller"


def _asked(audit: AuditLog, user_agent: str, since: int) -> list[Request]:
    """What the controller asked, without its long-running watches."""
    asked = audit.requests(user_agent=_agent(user_agent), since=since)
    return [r for r in asked if r.verb != "watch"]


def test_an_edit_is_healed_from_its_watch_event_without_a_list(
    start_controller: StartController,
    upstream: Upstream,
    cluster: Cluster,
    uid: str,
    applyset: ApplySet,
    audit: AuditLog,
    user_agent: str,
) -> None:
    upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh"), gnp(f"{uid}-web", order=11))})
    controller = _started(start_controller, user_agent=user_agent)
    runs = controller.runner.runs
    start = audit.mark()

    edit_order(cluster, f"{uid}-ssh", 99)

    eventually(lambda: order_of(cluster, f"{uid}-ssh") == 10, timeout=10, what="healed")
    assert controller.runner.wait_idle(runs=runs + 1, timeout=10)
    asked = _asked(audit, user_agent, start)
    assert [r for r in asked if r.verb == "list"] == []
    policy = [(r.verb, r.dry_run) for r in asked if r.resource == "globalnetworkpolicies"]
    assert policy == [("patch", True), ("patch", False)]  # a dry-run, then the write
    assert {r.name for r in asked if r.resource == "globalnetworkpolicies"} == {
        f"default.{uid}-ssh"
    }
    run = controller.last_run
    assert run is not None
    assert (run.record.trigger, run.record.reason) == ("watch", Reason.DRIFT_HEALED)
    assert run.record.written == {"drift": 1}
    event = eventually(
        lambda: [e for e in events_for(cluster, applyset.name) if e["reason"] == "DriftHealed"],
        timeout=10,
        what="a DriftHealed event",
    )[-1]
    assert (
        f"healed drift on GlobalNetworkPolicy/{uid}-ssh made by kubectl-edit" in (event["message"])
    )
    assert "from its watch event" in event["message"]
    # Our own write's event is not drift: no run follows it.
    assert settle(controller, quiet=1.5) == runs + 1


def test_with_targeted_heals_off_the_same_edit_costs_a_full_re_plan(
    start_controller: StartController,
    upstream: Upstream,
    cluster: Cluster,
    uid: str,
    audit: AuditLog,
    user_agent: str,
) -> None:
    """The negative control of the test above: the witness sees the LISTs when they happen."""
    upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh"))})
    controller = _started(start_controller, user_agent=user_agent, targeted_heal=False)
    start = audit.mark()

    edit_order(cluster, f"{uid}-ssh", 99)

    eventually(lambda: order_of(cluster, f"{uid}-ssh") == 10, timeout=10, what="healed")
    settle(controller, quiet=1.0)
    assert [r for r in _asked(audit, user_agent, start) if r.verb == "list"] != []
    assert controller.last_run is not None
    assert controller.last_run.record.trigger == "drift"


def test_an_object_without_our_label_is_never_touched(
    start_controller: StartController,
    upstream: Upstream,
    cluster: Cluster,
    uid: str,
    audit: AuditLog,
    user_agent: str,
) -> None:
    upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ours"))})
    body = {**gnp(f"{uid}-theirs"), "apiVersion": "crd.projectcalico.org/v1"}
    body["metadata"] = {"name": f"default.{uid}-theirs"}
    cluster.apply(GNP, body, field_manager="kubectl")
    controller = _started(start_controller, user_agent=user_agent)
    runs = controller.runner.runs
    start = audit.mark()

    edit_order(cluster, f"{uid}-theirs", 99)

    holds(lambda: order_of(cluster, f"{uid}-theirs") == 99, seconds=2, what="left as edited")
    assert controller.runner.runs == runs
    assert [r for r in _asked(audit, user_agent, start) if f"{uid}-theirs" in r.name] == []


def test_an_edit_under_our_own_field_manager_is_not_healed_from_the_watch(
    start_controller: StartController,
    upstream: Upstream,
    cluster: Cluster,
    uid: str,
    user_agent: str,
) -> None:
    """Our own apply is never drift to the watch (the interval's full plan judges it)."""
    upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh"))})
    controller = _started(start_controller, user_agent=user_agent)
    runs = controller.runner.runs
    live = cluster.get(GNP, f"default.{uid}-ssh")
    assert live is not None
    mine = {
        "apiVersion": live["apiVersion"],
        "kind": live["kind"],
        "metadata": {"name": live["metadata"]["name"], "labels": live["metadata"]["labels"]},
        "spec": {**live["spec"], "order": 55},
    }

    cluster.apply(GNP, mine, force=True, field_manager="policy-reconciler")

    holds(lambda: order_of(cluster, f"{uid}-ssh") == 55, seconds=2, what="not re-healed")
    assert controller.runner.runs == runs


def test_an_edit_while_suspended_is_not_healed(
    start_controller: StartController,
    upstream: Upstream,
    cluster: Cluster,
    uid: str,
    applyset: ApplySet,
    user_agent: str,
) -> None:
    upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh"))})
    controller = _started(start_controller, user_agent=user_agent)
    annotate_suspend(cluster, applyset, "true")
    eventually(lambda: reasons(cluster, applyset)[0] == "Suspended", timeout=10, what="suspended")

    edit_order(cluster, f"{uid}-ssh", 99)

    holds(lambda: order_of(cluster, f"{uid}-ssh") == 99, seconds=2, what="left while suspended")
    annotate_suspend(cluster, applyset, None)
    eventually(lambda: order_of(cluster, f"{uid}-ssh") == 10, timeout=10, what="healed on resume")
    assert controller.last_run is not None


def test_a_deleted_managed_object_comes_back(
    start_controller: StartController,
    upstream: Upstream,
    cluster: Cluster,
    uid: str,
    user_agent: str,
) -> None:
    upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh"), gnp(f"{uid}-web", order=11))})
    controller = _started(start_controller, user_agent=user_agent)

    cluster.delete(GNP, f"default.{uid}-web")

    eventually(lambda: order_of(cluster, f"{uid}-web") == 11, timeout=10, what="recreated")
    assert controller.last_run is not None
    assert controller.last_run.record.trigger == "drift"  # a deletion: the full re-plan
