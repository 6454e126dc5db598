"""The controller and ConnectivityChecks: a commit that breaks one is refused, the last good
revision stays in force, and the run says why (status, Warning Event, metric);
--skip-checks lets it through with a Warning Event."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from reconciler import localcluster
from reconciler.applyset import ApplySet
from reconciler.cluster.client import Cluster
from reconciler.controller.record import Reason
from reconciler.controller.status import read_status
from reconciler.localcluster import ClusterInfo
from tests.audit import AuditLog
from tests.cluster.inventory import create_all, delete_nodes, node
from tests.conftest import RECONCILER_NAMESPACE
from tests.controller.conftest import SECRET, StartController
from tests.controller.helpers import GNP, events_for, get, github_push, policy_yaml
from tests.source.repos import Upstream


@pytest.fixture(scope="module")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterInfo]:
    """A control plane of this module's own: checks read every policy and setting of the
    cluster, and the shared one holds what other tests left (example-repo's automatic host
    endpoints and node firewall), which would decide these flows instead of the repo."""
    state = tmp_path_factory.mktemp("cp-checks")
    try:
        info = localcluster.up(state, nodes=3)
        localcluster.kubectl(info, "create", "namespace", RECONCILER_NAMESPACE)
        yield info
    finally:
        localcluster.down(state)


@pytest.fixture
def nodes(cluster: Cluster, uid: str) -> Iterator[list[str]]:
    names = [f"{uid}-n1", f"{uid}-n2"]
    create_all(cluster, [node(n, f"10.98.{i}.1", {f"{uid}-node": ""}) for i, n in enumerate(names)])
    yield names
    delete_nodes(cluster, names)


def _repo(uid: str, nodes: list[str], port: int) -> dict[str, str]:
    selector = f"has({uid}-hep)"
    allow = {
        "apiVersion": "projectcalico.org/v3",
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": f"{uid}-allow"},
        "spec": {
            "order": 10,
            "selector": selector,
            "ingress": [
                {
                    "action": "Allow",
                    "protocol": "TCP",
                    "source": {"nets": ["203.0.113.0/24"]},
                    "destination": {"ports": [port]},
                }
            ],
        },
    }
    drop = {
        "apiVersion": "projectcalico.org/v3",
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": f"{uid}-drop"},
        "spec": {"order": 20, "selector": selector, "ingress": [{"action": "Deny"}]},
    }
    heps = [
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "HostEndpoint",
            "metadata": {"name": f"{n}-fw", "labels": {f"{uid}-hep": ""}},
            "spec": {"node": n, "interfaceName": "*", "expectedIPs": [f"10.98.{i}.1"]},
        }
        for i, n in enumerate(nodes)
    ]
    check = {
        "apiVersion": "policy-reconciler.io/v1alpha1",
        "kind": "ConnectivityCheck",
        "metadata": {"name": "admins"},
        "spec": {
            "from": {"cidr": "203.0.113.0/24"},
            "to": {"nodeSelector": f"has({uid}-node)"},
            "ports": ["tcp/2222"],
            "expect": "allow",
        },
    }
    return {"fw.yaml": policy_yaml(allow, drop, *heps), "checks.yaml": policy_yaml(check)}


def _allowed_port(cluster: Cluster, uid: str) -> Any:
    live = cluster.get(GNP, f"default.{uid}-allow")
    assert live is not None
    return live["spec"]["ingress"][0]["destination"]["ports"]


def test_a_commit_breaking_a_check_is_refused_and_the_last_good_stays(
    start_controller: StartController,
    upstream: Upstream,
    cluster: Cluster,
    uid: str,
    nodes: list[str],
    applyset: ApplySet,
    audit: AuditLog,
    user_agent: str,
) -> None:
    good = upstream.commit(_repo(uid, nodes, 2222))
    controller = start_controller(interval=3600)
    assert controller.runner.wait_idle(runs=1, timeout=30)
    assert read_status(cluster, applyset).runs[0].reason is Reason.APPLIED
    runs = controller.runner.runs

    bad = upstream.commit(_repo(uid, nodes, 2223))  # the admins' port moves: locked out
    start = audit.mark()
    github_push(f"http://127.0.0.1:{controller.webhook_port}/hook", SECRET)
    assert controller.runner.wait_idle(runs=runs + 1, timeout=30)

    writes = [
        r
        for r in audit.requests(user_agent=user_agent, since=start)
        if r.is_write and r.resource not in ("configmaps", "events")
    ]
    assert writes == []
    assert _allowed_port(cluster, uid) == [2222]  # the last good revision stays in force
    record = read_status(cluster, applyset).runs[0]
    assert record.reason is Reason.CHECKS and record.revision == bad
    assert f"admins: 203.0.113.0 -> node {uid}-n1 tcp/2222 denied" in record.message
    assert good[:12] in record.message
    warning = events_for(cluster, applyset.name)[-1]
    assert (warning["type"], warning["reason"]) == ("Warning", "ConnectivityCheckFailed")
    metrics = get(f"http://127.0.0.1:{controller.metrics_port}/metrics")[1]
    assert (
        'policy_reconciler_reconcile_runs_total{reason="ConnectivityCheckFailed",'
        'result="refused"}' in metrics
    )


def test_skip_checks_applies_with_a_warning_event(
    start_controller: StartController,
    upstream: Upstream,
    cluster: Cluster,
    uid: str,
    nodes: list[str],
    applyset: ApplySet,
) -> None:
    upstream.commit(_repo(uid, nodes, 2223))
    controller = start_controller(interval=3600, skip_checks=frozenset({"admins"}))
    assert controller.runner.wait_idle(runs=1, timeout=30)
    assert read_status(cluster, applyset).runs[0].reason is Reason.APPLIED
    assert _allowed_port(cluster, uid) == [2223]
    skipped = [
        e for e in events_for(cluster, applyset.name) if e["reason"] == "ConnectivityCheckSkipped"
    ]
    assert skipped and skipped[-1]["type"] == "Warning"
    assert "admins is skipped (--skip-checks); it fails" in skipped[-1]["message"]
