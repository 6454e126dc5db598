"""A force-push that rewinds history is applied (as Flux does) and said plainly: in the
log, in the status record and as a Warning Event. A fast-forward says nothing of it."""

from __future__ import annotations

import pytest

from reconciler.applyset import ApplySet
from reconciler.cluster.client import Cluster
from reconciler.controller.status import read_status
from tests.cluster.engine import gnp
from tests.controller.conftest import StartController
from tests.controller.helpers import events_for, order_of, policy_yaml
from tests.source.repos import Upstream

pytestmark = pytest.mark.cluster


def test_a_rewound_branch_is_applied_and_reported(
    start_controller: StartController,
    upstream: Upstream,
    cluster: Cluster,
    uid: str,
    applyset: ApplySet,
) -> None:
    first = upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh", order=10))})
    upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh", order=20))})
    controller = start_controller(interval=3600)
    assert controller.runner.wait_idle(runs=1, timeout=30)
    controller._work(frozenset({"interval"}))  # a fast-forward: nothing to say
    head = upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh", order=25))})
    controller._work(frozenset({"interval"}))
    forward = read_status(cluster, applyset).runs[0]
    assert "history rewritten" not in forward.message
    assert controller.reconciler.source.descends(first, head) is True  # known, not guessed

    upstream.reset_hard(first)
    upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh", order=30))}, push=False)
    upstream.push(force=True)
    controller._work(frozenset({"webhook"}))

    assert order_of(cluster, f"{uid}-ssh") == 30  # applied, as Flux does
    record = read_status(cluster, applyset).runs[0]
    assert "history rewritten" in record.message and "force-push" in record.message
    warning = [e for e in events_for(cluster, applyset.name) if e["reason"] == "HistoryRewritten"]
    assert warning and warning[0]["type"] == "Warning"
