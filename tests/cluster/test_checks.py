"""ConnectivityChecks on a real API server: a failing check writes nothing, a holding one lets
the apply through; checks start from the live state (every firewall object, ours or not)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from reconciler import pipeline
from reconciler.cluster.client import Cluster
from reconciler.connectivity import Verdict
from reconciler.model import Revision, Stop
from reconciler.pipeline.review import live_report
from reconciler.report.pr import render_report
from tests.audit import AuditLog
from tests.cluster.engine import Repo, reconcile
from tests.cluster.flavours import Plane, audit, cluster, plane
from tests.cluster.inventory import create_all, delete_nodes, node

__all__ = ["audit", "cluster", "plane"]


@pytest.fixture
def repo(tmp_path: Any, uid: str) -> Repo:
    return Repo(tmp_path, uid)


@pytest.fixture
def nodes(cluster: Cluster, uid: str) -> Iterator[list[str]]:
    """Two Nodes of this test's own, selected by a label no other test uses."""
    names = [f"{uid}-n1", f"{uid}-n2"]
    create_all(cluster, [node(n, f"10.99.{i}.1", {f"{uid}-node": ""}) for i, n in enumerate(names)])
    yield names
    delete_nodes(cluster, names)


def hep(uid: str, name: str, ip: str) -> dict[str, Any]:
    return {
        "apiVersion": "projectcalico.org/v3",
        "kind": "HostEndpoint",
        "metadata": {"name": f"{name}-fw", "labels": {f"{uid}-hep": ""}},
        "spec": {"node": name, "interfaceName": "*", "expectedIPs": [ip]},
    }


def policy(uid: str, name: str, order: int, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "projectcalico.org/v3",
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": f"{uid}-{name}"},
        "spec": {
            "order": order,
            "selector": f"has({uid}-hep)",
            "types": ["Ingress", "Egress"],
            "ingress": rules,
            "egress": [{"action": "Allow"}],
        },
    }


def check(uid: str, port: int) -> dict[str, Any]:
    return {
        "apiVersion": "policy-reconciler.io/v1alpha1",
        "kind": "ConnectivityCheck",
        "metadata": {"name": "admins"},
        "spec": {
            "from": {"cidr": "203.0.113.0/24"},
            "to": {"nodeSelector": f"has({uid}-node)"},
            "ports": [f"tcp/{port}"],
            "expect": "allow",
        },
    }


def admins(port: int) -> dict[str, Any]:
    source = {"nets": ["203.0.113.0/24"]}
    return {
        "action": "Allow",
        "protocol": "TCP",
        "source": source,
        "destination": {"ports": [port]},
    }


def _writes(audit: AuditLog, user_agent: str, since: int) -> list[tuple[str, str, str]]:
    return [
        (r.verb, r.resource, r.name)
        for r in audit.requests(user_agent=user_agent, since=since)
        if r.is_write
    ]


def test_a_failing_check_writes_nothing_and_a_holding_one_applies(
    cluster: Cluster,
    repo: Repo,
    uid: str,
    nodes: list[str],
    audit: AuditLog,
    user_agent: str,
    plane: Plane,
) -> None:
    repo.write("checks.yaml", check(uid, 2222))
    repo.write(
        "fw.yaml",
        policy(uid, "allow", 10, [admins(2222)]),
        policy(uid, "drop", 20, [{"action": "Deny"}]),
        *(hep(uid, n, f"10.99.{i}.1") for i, n in enumerate(nodes)),
    )
    plan, result = reconcile(cluster, repo)
    assert [c.holds for c in plan.checks] == [True], plan.checks
    assert result.ok and len(result.done) == 4

    # Negative control: the commit moves the admins' port; the drop now cuts them off.
    repo.write(
        "fw.yaml",
        policy(uid, "allow", 10, [admins(2223)]),
        policy(uid, "drop", 20, [{"action": "Deny"}]),
        *(hep(uid, n, f"10.99.{i}.1") for i, n in enumerate(nodes)),
    )
    start = audit.mark()
    plan, result = reconcile(cluster, repo)
    (failed,) = plan.failing_checks
    assert failed.state == f"desired state (after update GlobalNetworkPolicy/{uid}-allow)"
    assert failed.counterexample.startswith(
        f"203.0.113.0 -> node {uid}-n1 tcp/2222 denied by GlobalNetworkPolicy {uid}-drop"
    )
    assert "fw.yaml:" in failed.counterexample  # the deciding policy's file:line
    assert result.stopped is Stop.CHECKS and not result.done
    assert _writes(audit, user_agent, start) == []
    live = cluster.get(plane.gnp, plane.policy(f"{uid}-allow"))
    assert live is not None
    assert live["spec"]["ingress"][0]["destination"]["ports"] == [2222]  # last good in force

    # --skip-checks: the same commit goes through, the check still reported as failing.
    plan, result = reconcile(cluster, repo, skip_checks=frozenset({"admins"}))
    assert result.ok and plan.checks[0].skipped and not plan.checks[0].holds


def test_checks_start_from_the_live_state_including_objects_we_do_not_manage(
    cluster: Cluster, repo: Repo, uid: str, nodes: list[str], plane: Plane
) -> None:
    """Someone else's drop policy in the cluster: our repo's allow alone is not enough."""
    theirs = policy(uid, "theirs", 1, [{"action": "Deny", "protocol": "TCP"}])
    theirs["apiVersion"] = plane.gnp.api_version
    theirs["metadata"]["name"] = plane.policy(f"{uid}-theirs")
    cluster.apply(plane.gnp, theirs, field_manager="someone-else")
    repo.write("checks.yaml", check(uid, 2222))
    repo.write(
        "fw.yaml",
        policy(uid, "allow", 10, [admins(2222)]),
        *(hep(uid, n, f"10.99.{i}.1") for i, n in enumerate(nodes)),
    )
    plan, result = reconcile(cluster, repo)
    (failed,) = plan.failing_checks
    assert f"{uid}-theirs" in failed.counterexample
    assert result.stopped is Stop.CHECKS


def test_the_pr_report_shows_what_drift_does_to_traffic(
    cluster: Cluster, repo: Repo, uid: str, nodes: list[str], plane: Plane
) -> None:
    """Someone opens tcp/5432 from anywhere to the nodes by hand: the report says so, as
    drift, apart from this pull request's flows (none here)."""
    repo.write("checks.yaml", check(uid, 2222))
    repo.write(
        "fw.yaml",
        policy(uid, "allow", 10, [admins(2222)]),
        policy(uid, "drop", 20, [{"action": "Deny"}]),
        *(hep(uid, n, f"10.99.{i}.1") for i, n in enumerate(nodes)),
    )
    _, result = reconcile(cluster, repo)
    assert result.ok
    by_hand = [
        admins(2222),
        {"action": "Allow", "protocol": "TCP", "destination": {"ports": [5432]}},
    ]
    cluster.request(
        "PATCH",
        plane.gnp.path("", plane.policy(f"{uid}-allow")),
        verb="patch",
        query={"fieldManager": "kubectl-patch"},
        body={"spec": {"ingress": by_hand}},
        content_type="application/merge-patch+json",
    )
    settings = repo.settings()
    rendered = pipeline.render(repo.root, Revision("dir:test", str(repo.root)), settings)
    report = live_report(cluster, head=rendered, base=rendered, settings=settings)
    assert report.flows is not None and not report.flows.changes  # the PR changes no flow
    assert report.drift_flows is not None
    opened = [c for c in report.drift_flows.changes if c.after is Verdict.ALLOW]
    assert opened and all("tcp/5432" in c.ports for c in opened)
    body = render_report(report)
    assert "**Already in the cluster, not from this pull request (drift):**" in body
    assert "**Opens by hand" in body and "`tcp/5432`" in body
