"""Live objects are input too: a managed Calico object whose `projectcalico.org/metadata`
annotation someone broke or pointed at another name is drift to heal, never a crash and
never a prune (before, each of these crashed every plan, or pruned the object by uid)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reconciler.calico.metadata import METADATA_ANNOTATION
from reconciler.cluster.client import Cluster, ResourceType
from reconciler.model import Action
from tests.cluster.engine import Repo, actions, gnp, plan_only, reconcile

pytestmark = pytest.mark.cluster

GNP = ResourceType(
    "crd.projectcalico.org", "v1", "GlobalNetworkPolicy", "globalnetworkpolicies", False
)


@pytest.fixture
def repo(tmp_path: Path, uid: str) -> Repo:
    return Repo(tmp_path / "repo", uid)


def _set_annotation(cluster: Cluster, name: str, value: str) -> None:
    patch: dict[str, Any] = {"metadata": {"annotations": {METADATA_ANNOTATION: value}}}
    cluster.request(
        "PATCH",
        GNP.path("", name),
        verb="patch",
        query={"fieldManager": "kubectl-edit"},
        body=patch,
        content_type="application/merge-patch+json",
    )


@pytest.mark.parametrize(
    "value",
    [
        "{",
        '"x"',
        '{"annotations":"x"}',
        '{"labels":["x"]}',
        '{"labels":{"a":1}}',
        '{"name":"someone-else"}',
        "[" * 5000,
    ],
    ids=[
        "truncated",
        "string",
        "annotations-string",
        "labels-list",
        "label-int",
        "renamed",
        "deep",
    ],
)
def test_a_broken_metadata_annotation_is_drift_that_apply_heals(
    cluster: Cluster, repo: Repo, uid: str, value: str
) -> None:
    ref = f"GlobalNetworkPolicy/{uid}-ssh"
    repo.write("p.yaml", gnp(f"{uid}-ssh"))
    reconcile(cluster, repo)
    healthy = (cluster.get(GNP, f"default.{uid}-ssh") or {})["metadata"]["annotations"]
    _set_annotation(cluster, f"default.{uid}-ssh", value)

    plan, result = reconcile(cluster, repo)

    assert actions(plan) == {ref: Action.DRIFT}, [str(f) for f in plan.findings]
    assert result.ok
    live = cluster.get(GNP, f"default.{uid}-ssh")
    assert live is not None
    assert live["metadata"]["annotations"][METADATA_ANNOTATION] == healthy[METADATA_ANNOTATION]
    assert json.loads(live["metadata"]["annotations"][METADATA_ANNOTATION])
    assert actions(plan_only(cluster, repo)) == {ref: Action.UNCHANGED}


def test_an_apply_under_our_field_manager_name_is_drift_that_apply_heals(
    cluster: Cluster, repo: Repo, uid: str
) -> None:
    """`kubectl apply --server-side --field-manager=policy-reconciler --force-conflicts`
    of a stripped object takes our fields and drops our label: before, every later run
    called the object someone else's (a conflict) until `--adopt`."""
    ref = f"GlobalNetworkPolicy/{uid}-ssh"
    repo.write("p.yaml", gnp(f"{uid}-ssh"))
    reconcile(cluster, repo)
    stripped = {
        "apiVersion": "crd.projectcalico.org/v1",
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": f"default.{uid}-ssh"},
        "spec": {"selector": "all()"},
    }
    cluster.request(
        "PATCH",
        GNP.path("", f"default.{uid}-ssh"),
        verb="patch",
        query={"fieldManager": "policy-reconciler", "force": "true"},
        body=stripped,
        content_type="application/apply-patch+yaml",
    )

    plan, result = reconcile(cluster, repo)

    (change,) = plan.changes
    assert (change.action, "under our field manager name" in change.reason) == (
        Action.DRIFT,
        True,
    )
    assert result.ok
    assert actions(plan_only(cluster, repo)) == {ref: Action.UNCHANGED}
    live = cluster.get(GNP, f"default.{uid}-ssh") or {}
    assert live["spec"]["selector"] == "has(host-endpoint)"
