"""The make-before-break bridge against real API servers (both Calico flavours): the
server takes it, it is written first and removed last, and a run that stops half-way
leaves it in force (flows kept) for the next run to remove.

Pods here are API objects only (no kubelet): their addresses come from Calico's CNI
annotation, as Calico itself reads them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler import localcluster, pipeline
from reconciler.apply.executor import Interrupted
from reconciler.applyset import read_inventory
from reconciler.cluster.client import CONFIGMAPS, Cluster
from reconciler.localcluster import kubectl
from reconciler.model import Action, Change, Revision
from reconciler.plan import bridge
from tests.audit import AuditLog
from tests.cluster.engine import NAMESPACE, Repo, k8s_np, reconcile
from tests.cluster.flavours import Plane, audit, cluster

__all__ = ["audit", "cluster"]  # fixtures: both flavours, on this module's own planes
pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module", params=["crd", "v3"])
def plane(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Plane]:
    """Control planes of this module's own: the order depends on every policy in the
    cluster, and the shared planes hold what other tests left (the example repo's default
    denies, say), which would decide these flows before this module's policies do."""
    state = tmp_path_factory.mktemp(f"cp-safe-{request.param}")
    try:
        info = localcluster.up(state, nodes=3, calico_apiserver=request.param == "v3")
        kubectl(info, "create", "namespace", NAMESPACE)
        yield Plane(request.param, info)
    finally:
        localcluster.down(state)


def _pod(plane: Plane, ns: str, name: str, ip: str, labels: dict[str, str]) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels,
                     "annotations": {"cni.projectcalico.org/podIP": f"{ip}/32"}},
        "spec": {"nodeName": "node-2", "containers": [{"name": "c", "image": "none.invalid/c"}]},
    }  # fmt: skip
    kubectl(plane.info, "apply", "-f", "-", stdin=json.dumps(body))


@pytest.fixture
def repo(plane: Plane, tmp_path: Path, uid: str) -> Repo:
    """Two NetworkPolicies that allow web's clients only together, over pods of its own."""
    for ns, labels in ((f"{uid}-a", {}), (f"{uid}-b", {"team": "b"})):
        body = {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns, "labels": labels}}  # fmt: skip
        kubectl(plane.info, "apply", "-f", "-", stdin=json.dumps(body))
    _pod(plane, f"{uid}-a", "web", "10.77.0.1", {"app": "web"})
    _pod(plane, f"{uid}-a", "client", "10.77.0.2", {"app": "client"})
    _pod(plane, f"{uid}-b", "other", "10.77.0.3", {"app": "other"})
    made = Repo(tmp_path / "repo", uid)
    web = {"matchLabels": {"app": "web"}}
    made.write(
        "web.yaml",
        k8s_np(f"{uid}-from-b", f"{uid}-a", podSelector=web,
               ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"team": "b"}}}]}]),
        k8s_np(f"{uid}-from-client", f"{uid}-a", podSelector=web,
               ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}]}]),
    )  # fmt: skip
    return made


def _recorded_kinds(cluster: Cluster, repo: Repo) -> set[str]:
    parent = cluster.get(CONFIGMAPS, repo.settings().applyset.name, NAMESPACE)
    return {gk.kind for gk in read_inventory(parent).group_kinds}


def test_the_bridge_is_written_first_and_removed_last(
    cluster: Cluster, repo: Repo, audit: AuditLog, user_agent: str
) -> None:
    start = audit.mark()
    plan, result = reconcile(cluster, repo)
    assert plan.order.method == "bridged", plan.order
    assert result.ok, (result.failed, result.notes)
    assert [bridge.is_bridge(c.ref) for c in result.done] == [True, True, False, False, True, True]
    requests = audit.requests(user_agent=user_agent, since=start)
    writes = [(r.verb, r.resource) for r in requests if r.is_write and r.resource != "configmaps"]
    assert [w[1] for w in writes[:2]] == ["tiers", "globalnetworkpolicies"]
    assert writes[-2:] == [("delete", "globalnetworkpolicies"), ("delete", "tiers")]
    assert "Tier" not in _recorded_kinds(cluster, repo)  # gone with the bridge
    again, _ = reconcile(cluster, repo)
    assert not again.has_changes


def test_a_run_stopped_half_way_leaves_the_bridge_and_the_next_run_removes_it(
    cluster: Cluster, repo: Repo
) -> None:
    settings = repo.settings()
    rendered = pipeline.render(repo.root, Revision("dir:test", str(repo.root)), settings)
    planned = pipeline.plan(cluster, rendered, settings)
    assert planned.plan.order.method == "bridged"

    def stop_after_the_first_policy(change: Change, _: str) -> None:
        if not bridge.is_bridge(change.ref):
            raise Interrupted

    result = pipeline.apply(cluster, planned, settings, progress=stop_after_the_first_policy)
    assert not result.ok
    assert "Tier" in _recorded_kinds(cluster, repo)  # so the next run can prune it
    _, finished = reconcile(cluster, repo)
    assert finished.ok, finished.failed
    pruned = [c for c in finished.done if c.action is Action.PRUNE]
    assert pruned and all(bridge.is_bridge(c.ref) and c.transient for c in pruned)
    assert not reconcile(cluster, repo)[0].has_changes
