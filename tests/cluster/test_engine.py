"""The reconcile engine against a real API server, with the audit log as witness.

Every test runs on both Calico API flavours (tests/cluster/flavours.py): CRDs only, and
Calico's real API server (projectcalico.org/v3, aggregated)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler import FIELD_MANAGER, pipeline
from reconciler.applyset import PART_OF, ApplySet
from reconciler.cluster.client import CONFIGMAPS, NAMESPACES, Cluster, ResourceType
from reconciler.localcluster import kubectl
from reconciler.model import Action, Revision
from tests.audit import AuditLog, by_verb
from tests.cluster.engine import (
    NAMESPACE,
    Repo,
    actions,
    gnp,
    hep,
    k8s_np,
    plan_only,
    reconcile,
)
from tests.cluster.flavours import Plane, audit, cluster, plane

__all__ = ["audit", "cluster", "plane"]  # fixtures: both flavours for every test here

# How either flavour stores a policy: Calico's API server writes the same CR as calicoctl.
STORED_GNP = ResourceType(
    "crd.projectcalico.org", "v1", "GlobalNetworkPolicy", "globalnetworkpolicies", False
)


@pytest.fixture
def repo(tmp_path: Path, uid: str) -> Repo:
    return Repo(tmp_path / "repo", uid)


@pytest.fixture
def app_ns(cluster: Cluster, uid: str) -> Iterator[str]:
    name = f"{uid}-app"
    cluster.apply(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name


def _writes(audit: AuditLog, user_agent: str, since: int) -> list[tuple[str, str, str]]:
    return [
        (r.verb, r.resource, r.name)
        for r in audit.requests(user_agent=user_agent, since=since)
        if r.is_write
    ]


def _patch_as(
    cluster: Cluster, rtype: ResourceType, name: str, patch: dict[str, Any], manager: str
) -> None:
    """An out-of-band edit, as `kubectl edit` makes it (an Update by another manager)."""
    cluster.request(
        "PATCH",
        rtype.path("", name),
        verb="patch",
        query={"fieldManager": manager},
        body=patch,
        content_type="application/merge-patch+json",
    )


def test_create_then_steady_state_reads_once_per_kind_and_writes_nothing(
    cluster: Cluster, repo: Repo, uid: str, audit: AuditLog, user_agent: str
) -> None:
    repo.write("hosts.yaml", gnp(f"{uid}-ssh"), hep(f"{uid}-node-1", "node-1", "10.240.0.11"))
    plan, result = reconcile(cluster, repo)
    assert set(actions(plan).values()) == {Action.CREATE}
    assert result.ok and len(result.done) == 2

    start = audit.mark()
    plan, result = reconcile(cluster, repo)
    assert set(actions(plan).values()) == {Action.UNCHANGED}
    requests = audit.requests(user_agent=user_agent, since=start)
    verbs = by_verb(requests)
    assert not [r for r in requests if r.is_write or r.dry_run]
    assert verbs["list"] == 2  # GlobalNetworkPolicy and HostEndpoint: one LIST each
    assert verbs["get"] == 1  # the ApplySet parent; no per-object GETs


def test_stored_as_calicoctl_would_and_read_back_in_user_names(
    cluster: Cluster, repo: Repo, uid: str, plane: Plane
) -> None:
    repo.write("p.yaml", gnp(f"{uid}-ssh"))
    reconcile(cluster, repo)
    stored = cluster.get(STORED_GNP, f"default.{uid}-ssh")
    assert stored is not None, "v1 storage name carries the tier prefix"
    assert stored["spec"]["types"] == ["Ingress"]  # explicit, or Felix denies egress too
    assert "projectcalico.org/metadata" in stored["metadata"]["annotations"]
    served = cluster.get(plane.gnp, plane.policy(f"{uid}-ssh"))
    assert served is not None
    assert served["metadata"]["labels"][PART_OF] == repo.settings().applyset.id
    assert f"GlobalNetworkPolicy/{uid}-ssh" in actions(plan_only(cluster, repo))


def test_a_document_written_as_crd_v1_applies_and_then_shows_no_drift(
    cluster: Cluster, repo: Repo, uid: str, plane: Plane
) -> None:
    """Under Calico's API server it goes through v3 (where the CRDs are not discovered)."""
    written = {
        "apiVersion": "crd.projectcalico.org/v1",
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": f"default.{uid}-v1"},
        "spec": {
            "order": 7,
            "selector": "all()",
            "types": ["Ingress"],
            "ingress": [{"action": "Allow"}],
        },
    }
    repo.write("v1.yaml", written)
    plan, result = reconcile(cluster, repo)
    assert [c.action for c in plan.changes] == [Action.CREATE]
    assert result.ok, (result.failed, result.notes)
    stored = cluster.get(STORED_GNP, f"default.{uid}-v1")
    assert stored is not None and stored["spec"]["order"] == 7
    assert [c.action for c in plan_only(cluster, repo).changes] == [Action.UNCHANGED]


def test_git_change_is_an_update_and_removed_fields_disappear(
    cluster: Cluster, repo: Repo, uid: str, plane: Plane
) -> None:
    repo.write("p.yaml", gnp(f"{uid}-ssh", doNotTrack=False))
    reconcile(cluster, repo)
    repo.write("p.yaml", gnp(f"{uid}-ssh", order=20))
    plan, result = reconcile(cluster, repo)
    (change,) = plan.changes
    assert change.action is Action.UPDATE
    assert {(d.path, d.before, d.after) for d in change.diff} >= {("spec.order", 10, 20)}
    assert result.ok
    live = cluster.get(plane.gnp, plane.policy(f"{uid}-ssh"))
    assert live is not None
    assert live["spec"]["order"] == 20
    assert "doNotTrack" not in live["spec"]
    assert actions(plan_only(cluster, repo)) == {f"GlobalNetworkPolicy/{uid}-ssh": Action.UNCHANGED}


def test_drift_names_the_other_manager_and_apply_heals_it(
    cluster: Cluster, repo: Repo, uid: str, plane: Plane
) -> None:
    repo.write("p.yaml", gnp(f"{uid}-ssh"))
    reconcile(cluster, repo)
    name = plane.policy(f"{uid}-ssh")
    _patch_as(cluster, plane.gnp, name, {"spec": {"order": 99}}, "kubectl-edit")

    plan, result = reconcile(cluster, repo)
    (change,) = plan.changes
    assert change.action is Action.DRIFT
    assert [f.manager for f in change.drifted_by] == ["kubectl-edit"]
    assert change.drifted_by[0].time.startswith("20")
    assert result.ok
    live = cluster.get(plane.gnp, name)
    assert live is not None and live["spec"]["order"] == 10
    assert actions(plan_only(cluster, repo)) == {f"GlobalNetworkPolicy/{uid}-ssh": Action.UNCHANGED}


def test_prune_deletes_what_git_dropped(
    cluster: Cluster, repo: Repo, uid: str, plane: Plane
) -> None:
    repo.write("a.yaml", gnp(f"{uid}-a"))
    repo.write("b.yaml", gnp(f"{uid}-b"), gnp(f"{uid}-c"), gnp(f"{uid}-d"))
    reconcile(cluster, repo)
    repo.remove("a.yaml")
    plan, result = reconcile(cluster, repo)
    assert actions(plan)[f"GlobalNetworkPolicy/{uid}-a"] is Action.PRUNE
    assert result.ok
    assert cluster.get(plane.gnp, plane.policy(f"{uid}-a")) is None
    assert cluster.get(plane.gnp, plane.policy(f"{uid}-b")) is not None


def test_someone_elses_object_is_a_conflict_and_never_touched_unless_adopted(
    cluster: Cluster, repo: Repo, uid: str, audit: AuditLog, user_agent: str, plane: Plane
) -> None:
    theirs = {
        "apiVersion": plane.gnp.api_version,
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": plane.policy(f"{uid}-theirs")},
        "spec": {"order": 5, "selector": "all()", "types": ["Ingress"]},
    }
    cluster.apply(plane.gnp, theirs, field_manager="someone-else")
    repo.write("p.yaml", gnp(f"{uid}-theirs"), gnp(f"{uid}-mine"))

    start = audit.mark()
    plan, result = reconcile(cluster, repo)
    assert actions(plan)[f"GlobalNetworkPolicy/{uid}-theirs"] is Action.CONFLICT
    assert not result.ok and result.notes
    assert _writes(audit, user_agent, start) == []

    plan, result = reconcile(cluster, repo, adopt=True)
    assert actions(plan)[f"GlobalNetworkPolicy/{uid}-theirs"] is Action.ADOPT
    assert result.ok
    live = cluster.get(plane.gnp, plane.policy(f"{uid}-theirs"))
    assert live is not None and PART_OF in live["metadata"]["labels"]


BAD_INPUTS = {
    "yaml-syntax": "apiVersion: projectcalico.org/v3\nkind: [unclosed\n",
    "unknown-kind": "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\n"
    "metadata: {name: evil}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, "
    "name: cluster-admin}\nsubjects: []\n",
    "bad-selector": "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\n"
    'metadata: {name: UID-bad}\nspec:\n  selector: "has(a"\n',
    "duplicate": "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\n"
    "metadata: {name: UID-keep}\nspec: {selector: all(), order: 3}\n",
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_writes_nothing_and_prunes_nothing(
    cluster: Cluster,
    repo: Repo,
    uid: str,
    audit: AuditLog,
    user_agent: str,
    case: str,
    plane: Plane,
) -> None:
    repo.write("keep.yaml", gnp(f"{uid}-keep"))
    repo.write("gone.yaml", gnp(f"{uid}-gone"))
    reconcile(cluster, repo)
    repo.remove("gone.yaml")
    repo.write("keep.yaml", gnp(f"{uid}-keep", order=50))
    bad = repo.text("zz-bad.yaml", BAD_INPUTS[case].replace("UID", uid))

    start = audit.mark()
    plan, result = reconcile(cluster, repo)
    assert plan.errors, "the bad input must be reported"
    assert any(str(f.origin or "").startswith(bad.name) for f in plan.errors)
    assert not result.ok
    assert _writes(audit, user_agent, start) == []
    live = cluster.get(plane.gnp, plane.policy(f"{uid}-keep"))
    assert live is not None and live["spec"]["order"] == 10  # last good state in force
    assert cluster.get(plane.gnp, plane.policy(f"{uid}-gone")) is not None  # nothing pruned


def test_server_rejection_in_dry_run_writes_nothing(
    cluster: Cluster, repo: Repo, uid: str, audit: AuditLog, user_agent: str
) -> None:
    """The namespace starts terminating between plan and apply (plan catches an absent one
    itself): the API server refuses the dry-run, and nothing at all is written."""
    leaving = f"{uid}-leaving"
    cluster.apply(
        NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": leaving}}
    )
    repo.write("ok.yaml", gnp(f"{uid}-ok"))
    repo.write("np.yaml", k8s_np(f"{uid}-np", leaving))
    settings = repo.settings()
    rendered = pipeline.render(repo.root, Revision("dir:test", str(repo.root)), settings)
    planned = pipeline.plan(cluster, rendered, settings)
    assert not planned.plan.errors
    cluster.delete(NAMESPACES, leaving, "")  # no namespace controller here: it stays terminating
    start = audit.mark()
    result = pipeline.apply(cluster, planned, settings)
    assert not result.ok
    assert [f.change.ref.name for f in result.failed] == [f"{uid}-np"]
    assert "rejected by the API server" in result.failed[0].message
    assert _writes(audit, user_agent, start) == []


def test_apply_order_is_firewall_safe_and_prune_runs_in_reverse(
    cluster: Cluster, repo: Repo, uid: str, audit: AuditLog, user_agent: str, plane: Plane
) -> None:
    repo.write("deny.yaml", gnp(f"{uid}-deny", order=20, action="Deny"))
    repo.write("allow.yaml", gnp(f"{uid}-allow", order=10))
    repo.write("hep.yaml", hep(f"{uid}-hep", "node-2", "10.240.0.12"))
    repo.write(
        "set.yaml",
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "GlobalNetworkSet",
            "metadata": {"name": f"{uid}-office"},
            "spec": {"nets": ["192.0.2.0/24"]},
        },
    )
    start = audit.mark()
    reconcile(cluster, repo)
    order = [
        (r.resource, r.name)
        for r in audit.requests(user_agent=user_agent, since=start)
        if r.is_write and r.resource != "configmaps"
    ]
    assert order == [
        ("globalnetworksets", f"{uid}-office"),
        ("globalnetworkpolicies", plane.policy(f"{uid}-allow")),
        ("hostendpoints", f"{uid}-hep"),
        ("globalnetworkpolicies", plane.policy(f"{uid}-deny")),
    ]
    for name in ("deny.yaml", "allow.yaml", "hep.yaml", "set.yaml"):
        repo.remove(name)
    repo.write("other.yaml", gnp(f"{uid}-other"))
    start = audit.mark()
    reconcile(cluster, repo, max_prune=1.0)
    deletes = [
        (r.resource, r.name)
        for r in audit.requests(user_agent=user_agent, since=start)
        if r.verb == "delete"
    ]
    assert deletes == list(reversed(order))


def test_prune_guard(cluster: Cluster, repo: Repo, uid: str, plane: Plane) -> None:
    repo.write("a.yaml", gnp(f"{uid}-a"), gnp(f"{uid}-b"), gnp(f"{uid}-c"))
    kept = gnp(f"{uid}-kept")
    kept["metadata"]["annotations"] = {"policy-reconciler.io/prune": "disabled"}
    repo.write("kept.yaml", kept)
    reconcile(cluster, repo)

    repo.remove("a.yaml")
    repo.remove("kept.yaml")
    plan, result = reconcile(cluster, repo)  # empty render
    assert plan.errors and not result.ok
    assert cluster.get(plane.gnp, plane.policy(f"{uid}-a")) is not None

    repo.write("d.yaml", gnp(f"{uid}-d"))
    plan, result = reconcile(cluster, repo)  # 4 of 4 managed objects to prune > 30%
    assert any("--max-prune" in f.message for f in plan.errors)
    assert cluster.get(plane.gnp, plane.policy(f"{uid}-a")) is not None

    plan, result = reconcile(cluster, repo, max_prune=1.0)
    assert result.ok
    assert cluster.get(plane.gnp, plane.policy(f"{uid}-a")) is None
    assert cluster.get(plane.gnp, plane.policy(f"{uid}-kept")) is not None  # never deleted


def test_applyset_parent_records_what_we_manage(
    cluster: Cluster, repo: Repo, uid: str, app_ns: str, plane: Plane
) -> None:
    repo.write("p.yaml", gnp(f"{uid}-ssh"), k8s_np(f"{uid}-deny", app_ns))
    reconcile(cluster, repo)
    applyset: ApplySet = repo.settings().applyset
    parent = cluster.get(CONFIGMAPS, applyset.name, NAMESPACE)
    assert parent is not None
    assert parent["metadata"]["labels"]["applyset.kubernetes.io/id"] == applyset.id
    annotations = parent["metadata"]["annotations"]
    assert annotations["applyset.kubernetes.io/contains-group-kinds"] == (
        f"GlobalNetworkPolicy.{plane.group},NetworkPolicy.networking.k8s.io"
    )
    assert annotations["applyset.kubernetes.io/additional-namespaces"] == app_ns
    managers = {m["manager"] for m in parent["metadata"]["managedFields"]}
    assert managers == {FIELD_MANAGER}


EXAMPLE_REPO = Path(__file__).resolve().parents[2] / "example-repo"
# The namespaces example-repo's policies live in, labelled as its README says
# (scripts/demo.sh labels them the same way).
PROJECT = "field.cattle.io/projectId"
EXAMPLE_NAMESPACES = {
    "shop": {
        PROJECT: "p-apps",
        "network-policy/ingress": "nginx",
        "network-policy/allow_redis": "",
    },
    "cache": {PROJECT: "p-data", "network-policy/role_redis": ""},
    "ingress-nginx": {PROJECT: "p-system", "ingress": "nginx"},
}


def test_example_repo_applies_cleanly_with_no_false_drift_afterwards(
    cluster: Cluster, plane: Plane, audit: AuditLog, user_agent: str, tmp_path: Path
) -> None:
    """Every example-repo file: apply, then plan again shows each object unchanged. Its
    ConnectivityChecks select the example's pods, which this cluster has not: they are
    left out here (tests/unit/test_cli_checks.py and `make demo` run them)."""
    for ns, labels in EXAMPLE_NAMESPACES.items():
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}}
        kubectl(plane.info, "apply", "-f", "-", stdin=json.dumps(body))
    shutil.copytree(EXAMPLE_REPO, tmp_path / "repo", ignore=shutil.ignore_patterns("checks"))
    repo = Repo(tmp_path / "repo", "example")
    plan, result = reconcile(cluster, repo)
    assert not plan.errors and result.ok, result.failed
    files = {c.desired.origin.path for c in plan.changes if c.desired}
    assert len(files) >= 8, files  # every YAML file contributed
    generated = {str(c.ref) for c in plan.changes if c.desired and c.desired.origin.template}
    assert generated == {
        *(f"HostEndpoint/node-{i}-node-firewall" for i in (1, 2, 3)),
        "NetworkPolicy/shop/np-default",
        "NetworkPolicy/cache/np-default",
    }

    start = audit.mark()
    again = plan_only(cluster, repo)
    drifting = {
        str(c.ref): [d.path for d in c.diff]
        for c in again.changes
        if c.action is not Action.UNCHANGED
    }
    assert drifting == {}
    assert len(again.changes) == len(plan.changes)
    assert not [r for r in audit.requests(user_agent=user_agent, since=start) if r.is_write]


def test_out_of_band_policy_types_edit_on_a_kubernetes_policy_is_healed(
    cluster: Cluster, repo: Repo, uid: str, app_ns: str
) -> None:
    repo.write("np.yaml", k8s_np(f"{uid}-web", app_ns, ingress=[{"ports": [{"port": 80}]}]))
    body = repo.root / "np.yaml"
    body.write_text(body.read_text().replace("  policyTypes:\n  - Ingress\n", ""))
    reconcile(cluster, repo)
    np_type = ResourceType("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", True)
    cluster.request(
        "PATCH",
        np_type.path(app_ns, f"{uid}-web"),
        verb="patch",
        query={"fieldManager": "kubectl-edit"},
        body={"spec": {"policyTypes": ["Ingress", "Egress"]}},
        content_type="application/merge-patch+json",
    )
    plan, result = reconcile(cluster, repo)
    assert [c.action for c in plan.changes] == [Action.DRIFT]
    assert result.ok
    live = cluster.get(np_type, f"{uid}-web", app_ns)
    assert live is not None and live["spec"]["policyTypes"] == ["Ingress"]
