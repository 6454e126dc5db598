"""Operators act on a running controller with `suspend`, `resume` and `reconcile
[--with-source]` (annotations on the ApplySet parent it watches, as Flux's verbs), and an
unreadable suspend value is a loud error, never silently "not suspended"."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from reconciler.applyset import ApplySet
from reconciler.cli import main
from reconciler.cluster.client import Cluster
from reconciler.localcluster import ClusterInfo
from tests.cluster.engine import gnp
from tests.controller.conftest import StartController
from tests.controller.helpers import (
    annotate_suspend,
    edit_order,
    events_for,
    eventually,
    order_of,
    policy_yaml,
    reasons,
)
from tests.source.repos import Upstream

pytestmark = pytest.mark.cluster


def _cli(control_plane: ClusterInfo, applyset: ApplySet, *args: str) -> tuple[int, str]:
    common = ["--kubeconfig", control_plane.kubeconfig, "--namespace", applyset.namespace]
    result = CliRunner().invoke(main, [*args, *common, "--applyset", applyset.name])
    return result.exit_code, result.output


def test_suspend_and_resume_verbs_with_a_resumed_event(
    start_controller: StartController,
    upstream: Upstream,
    cluster: Cluster,
    control_plane: ClusterInfo,
    uid: str,
    applyset: ApplySet,
) -> None:
    upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh"))})
    controller = start_controller(interval=3600)
    assert controller.runner.wait_idle(runs=1, timeout=30)

    assert _cli(control_plane, applyset, "suspend")[0] == 0
    eventually(lambda: reasons(cluster, applyset)[0] == "Suspended", timeout=10, what="paused")
    upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh", order=40))})
    assert _cli(control_plane, applyset, "reconcile", "--with-source")[0] == 0
    assert _cli(control_plane, applyset, "resume")[0] == 0

    eventually(lambda: order_of(cluster, f"{uid}-ssh") == 40, timeout=15, what="resumed")
    resumed = [e for e in events_for(cluster, applyset.name) if e["reason"] == "Resumed"]
    assert resumed and resumed[0]["type"] == "Normal"


def test_reconcile_with_source_fetches_now_and_without_it_heals_now(
    start_controller: StartController,
    upstream: Upstream,
    cluster: Cluster,
    control_plane: ClusterInfo,
    uid: str,
    applyset: ApplySet,
) -> None:
    upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh"))})
    controller = start_controller(interval=3600, debounce=60)  # neither interval nor watch
    assert controller.runner.wait_idle(runs=1, timeout=30)
    upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh", order=40))})

    assert _cli(control_plane, applyset, "reconcile", "--with-source")[0] == 0
    eventually(lambda: order_of(cluster, f"{uid}-ssh") == 40, timeout=15, what="fetched")

    edit_order(cluster, f"{uid}-ssh")
    assert _cli(control_plane, applyset, "reconcile")[0] == 0
    eventually(lambda: order_of(cluster, f"{uid}-ssh") == 40, timeout=15, what="healed")


def test_a_suspend_value_other_than_true_or_false_is_an_error(
    start_controller: StartController,
    upstream: Upstream,
    cluster: Cluster,
    uid: str,
    applyset: ApplySet,
) -> None:
    upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh"))})
    controller = start_controller(interval=3600)
    assert controller.runner.wait_idle(runs=1, timeout=30)
    annotate_suspend(cluster, applyset, "yes")
    upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh", order=40))})
    controller.runner.trigger("interval")

    eventually(
        lambda: reasons(cluster, applyset)[0] == "InvalidAnnotation", timeout=15, what="refused"
    )
    assert order_of(cluster, f"{uid}-ssh") == 10  # "yes" is not guessed either way
    warning = [e for e in events_for(cluster, applyset.name) if e["type"] == "Warning"][-1]
    assert "must be true or false" in warning["message"]


def test_verbs_on_a_wrong_applyset_are_exit_2(
    control_plane: ClusterInfo, reconciler_namespace: str
) -> None:
    code, output = _cli(control_plane, ApplySet("no-such-set", reconciler_namespace), "suspend")
    assert code == 2 and "check --namespace and --applyset" in output
