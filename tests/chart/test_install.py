"""`helm install` into the real control plane, then RBAC checked for real.

The engine runs as the chart's ServiceAccount (impersonated, RBAC on) and must be able to
create, update, heal and prune every kind it manages, and be refused everything else.
No pod runs (there is no kubelet): the objects and their permissions are what is tested.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler import pipeline
from reconciler.applyset import ApplySet
from reconciler.cluster import errors
from reconciler.cluster.client import (
    CONFIGMAPS,
    EVENTS,
    LEASES,
    NAMESPACES,
    NODES,
    Cluster,
    Connection,
    ResourceType,
)
from reconciler.kinds import ALLOWED, CALICO_CRD, CALICO_V3, K8S_NETWORKING
from reconciler.localcluster import ClusterInfo
from reconciler.model import Action
from reconciler.plan import PlanOptions
from tests.audit import AuditLog
from tests.chart.helm import Release, run
from tests.cluster.engine import Repo, actions, gnp, hep, k8s_np, reconcile

SA_AGENT = "as-chart-sa"  # tells the ServiceAccount's requests from the admin's in the audit log
WRITE_VERBS = {"get", "list", "watch", "create", "patch", "delete"}
ALL_VERBS = sorted(WRITE_VERBS | {"update", "deletecollection"})
CALICO_PLURALS = sorted(spec.plural for spec in ALLOWED[f"{CALICO_V3}/v3"].values())


def _crd(kind: str, plural: str, namespaced: bool = False) -> ResourceType:
    return ResourceType(CALICO_CRD, "v1", kind, plural, namespaced)


GNP = _crd("GlobalNetworkPolicy", "globalnetworkpolicies")
HEP = _crd("HostEndpoint", "hostendpoints")
IPPOOL = _crd("IPPool", "ippools")
BGPCONFIG = _crd("BGPConfiguration", "bgpconfigurations")
K8S_NP = ResourceType(K8S_NETWORKING, "v1", "NetworkPolicy", "networkpolicies", True)
SECRETS = ResourceType("", "v1", "Secret", "secrets", True)
PODS = ResourceType("", "v1", "Pod", "pods", True)
SERVICES = ResourceType("", "v1", "Service", "services", True)
SERVICE_ACCOUNTS = ResourceType("", "v1", "ServiceAccount", "serviceaccounts", True)
DEPLOYMENTS = ResourceType("apps", "v1", "Deployment", "deployments", True)
RBAC = "rbac.authorization.k8s.io"
ROLES = ResourceType(RBAC, "v1", "Role", "roles", True)
ROLE_BINDINGS = ResourceType(RBAC, "v1", "RoleBinding", "rolebindings", True)
CLUSTER_ROLES = ResourceType(RBAC, "v1", "ClusterRole", "clusterroles", False)
CLUSTER_ROLE_BINDINGS = ResourceType(RBAC, "v1", "ClusterRoleBinding", "clusterrolebindings", False)
NETWORK_POLICIES = K8S_NP


@dataclass
class ChartRepo(Repo):
    """An engine test repo whose ApplySet is the release's (the Role names it)."""

    applyset: ApplySet

    def settings(self, **options: Any) -> pipeline.Settings:
        return pipeline.Settings(applyset=self.applyset, options=PlanOptions(**options))


def _admin(info: ClusterInfo, agent: str = "chart-test-admin") -> Cluster:
    return Cluster.connect(Connection(kubeconfig=info.kubeconfig, user_agent=agent))


@pytest.fixture
def as_sa(control_plane: ClusterInfo, release: Release, user_agent: str) -> Iterator[Cluster]:
    """The API as the chart's ServiceAccount sees it."""
    conn = Connection(
        kubeconfig=control_plane.kubeconfig,
        user_agent=f"{user_agent} {SA_AGENT}",
        impersonate=release.user,
    )
    cluster = Cluster.connect(conn)
    yield cluster
    cluster.close()


@pytest.fixture
def app_ns(cluster: Cluster, uid: str) -> str:
    name = f"{uid}-app"
    cluster.apply(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


# -- the install ---------------------------------------------------------------------------


def test_install_creates_the_objects(cluster: Cluster, release: Release) -> None:
    ns = release.namespace
    for rtype in (DEPLOYMENTS, SERVICE_ACCOUNTS, ROLES, ROLE_BINDINGS, SERVICES, NETWORK_POLICIES):
        assert cluster.get(rtype, release.name, ns) is not None, rtype.kind
    for rtype in (CLUSTER_ROLES, CLUSTER_ROLE_BINDINGS):
        assert cluster.get(rtype, release.cluster_name) is not None, rtype.kind
    deploy = cluster.get(DEPLOYMENTS, release.name, ns)
    assert deploy is not None
    assert deploy["spec"]["replicas"] == 2
    pod = deploy["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == release.name
    assert "--leader-elect" in pod["containers"][0]["args"]
    assert cluster.get(SECRETS, release.name, ns) is None  # the chart creates no Secret
    # NOTES.txt, as helm printed it
    assert (
        f"kubectl -n {ns} annotate configmap {release.applyset.name} "
        "policy-reconciler.io/suspend=true --overwrite"
    ) in release.output
    assert f"get configmap {release.applyset.name}-status" in release.output


def test_pod_template_meets_pod_security_restricted(
    control_plane: ClusterInfo, release: Release
) -> None:
    """The namespace warns on `restricted` violations; the chart's pod template has none."""
    assert "PodSecurity" not in release.output
    manifest = run(
        control_plane.helm, "get", "manifest", release.name,
        "--namespace", release.namespace, "--kubeconfig", control_plane.kubeconfig,
    ).stdout  # fmt: skip
    (deploy,) = [d for d in yaml.safe_load_all(manifest) if d and d["kind"] == "Deployment"]
    assert "would violate PodSecurity" not in _server_dry_run(control_plane, deploy)
    # The same check sees a violation when there is one.
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"]["allowPrivilegeEscalation"] = True
    container["securityContext"]["capabilities"] = {"add": ["NET_ADMIN"]}
    warnings = _server_dry_run(control_plane, deploy)
    assert "would violate PodSecurity" in warnings
    assert "allowPrivilegeEscalation" in warnings


def _server_dry_run(info: ClusterInfo, body: dict[str, Any]) -> str:
    proc = subprocess.run(
        [info.kubectl, f"--kubeconfig={info.kubeconfig}", "apply", "--dry-run=server",
         "--server-side", "--force-conflicts", "-f", "-"],
        input=json.dumps(body), capture_output=True, text=True, check=True,
    )  # fmt: skip
    return proc.stderr


# -- the engine as the ServiceAccount -----------------------------------------------------------


def _docs(uid: str, app_ns: str) -> dict[str, list[dict[str, Any]]]:
    v3 = f"{CALICO_V3}/v3"
    return {
        "tier.yaml": [{"apiVersion": v3, "kind": "Tier", "metadata": {"name": f"{uid}-platform"},
                       "spec": {"order": 100}}],
        "sets.yaml": [
            {"apiVersion": v3, "kind": "GlobalNetworkSet",
             "metadata": {"name": f"{uid}-office", "labels": {"network-set": "office"}},
             "spec": {"nets": ["192.0.2.0/24"]}},
            {"apiVersion": v3, "kind": "NetworkSet",
             "metadata": {"name": f"{uid}-partners", "namespace": app_ns},
             "spec": {"nets": ["198.51.100.0/24"]}},
        ],
        "hosts.yaml": [gnp(f"{uid}-ssh"), hep(f"{uid}-node-1", "node-1", "10.240.0.11")],
        "staged.yaml": [
            {"apiVersion": v3, "kind": "StagedGlobalNetworkPolicy",
             "metadata": {"name": f"{uid}-try-deny"},
             "spec": {"order": 500, "selector": "all()", "types": ["Ingress"],
                      "ingress": [{"action": "Deny"}]}},
        ],
        "app.yaml": [
            {"apiVersion": v3, "kind": "NetworkPolicy",
             "metadata": {"name": f"{uid}-web", "namespace": app_ns},
             "spec": {"selector": "app == 'web'", "types": ["Ingress"],
                      "ingress": [{"action": "Allow", "protocol": "TCP",
                                   "destination": {"ports": [80]}}]}},
            k8s_np(f"{uid}-default-deny", app_ns),
        ],
    }  # fmt: skip


def test_engine_as_the_service_account_creates_updates_heals_and_prunes(
    as_sa: Cluster,
    cluster: Cluster,
    release: Release,
    tmp_path: Path,
    uid: str,
    app_ns: str,
    audit: AuditLog,
    user_agent: str,
) -> None:
    repo = ChartRepo(tmp_path / "repo", uid, release.applyset)
    docs = _docs(uid, app_ns)
    for name, items in docs.items():
        repo.write(name, *items)
    start = audit.mark()

    plan, result = reconcile(as_sa, repo)
    created = actions(plan)
    assert set(created.values()) == {Action.CREATE}, created
    assert len(created) == 8
    assert {ref.split("/")[0] for ref in created} >= {
        "Tier", "GlobalNetworkSet", "NetworkSet", "GlobalNetworkPolicy", "HostEndpoint",
        "StagedGlobalNetworkPolicy", "NetworkPolicy",
    }  # fmt: skip
    assert result.ok, result.failed

    repo.write("hosts.yaml", gnp(f"{uid}-ssh", order=20), docs["hosts.yaml"][1])
    plan, result = reconcile(as_sa, repo)
    assert actions(plan)[f"GlobalNetworkPolicy/{uid}-ssh"] is Action.UPDATE
    assert result.ok, result.failed

    cluster.request(
        "PATCH", HEP.path("", f"{uid}-node-1"), verb="patch",
        query={"fieldManager": "kubectl-edit"}, body={"spec": {"expectedIPs": ["10.9.9.9"]}},
        content_type="application/merge-patch+json",
    )  # fmt: skip
    plan, result = reconcile(as_sa, repo)
    assert actions(plan)[f"HostEndpoint/{uid}-node-1"] is Action.DRIFT
    assert result.ok, result.failed
    healed = cluster.get(HEP, f"{uid}-node-1")
    assert healed is not None and healed["spec"]["expectedIPs"] == ["10.240.0.11"]

    repo.remove("staged.yaml")
    repo.remove("sets.yaml")
    repo.write("app.yaml", docs["app.yaml"][0])
    plan, result = reconcile(as_sa, repo, max_prune=1.0)
    pruned = sorted(ref for ref, action in actions(plan).items() if action is Action.PRUNE)
    assert pruned == [
        f"GlobalNetworkSet/{uid}-office",
        f"NetworkPolicy/{app_ns}/{uid}-default-deny",
        f"NetworkSet/{app_ns}/{uid}-partners",
        f"StagedGlobalNetworkPolicy/{uid}-try-deny",
    ]
    assert result.ok, result.failed
    assert cluster.get(K8S_NP, f"{uid}-default-deny", app_ns) is None

    plan, result = reconcile(as_sa, repo)
    assert set(actions(plan).values()) == {Action.UNCHANGED}

    # The audit log is the witness: every request was made as the ServiceAccount, none refused.
    seen = _audited(audit, f"{user_agent} {SA_AGENT}", start)
    assert seen and {e["impersonatedUser"]["username"] for e in seen} == {release.user}
    assert [_describe(e) for e in seen if e["responseStatus"]["code"] == 403] == []
    writes = {e["objectRef"]["resource"] for e in seen if e["verb"] in {"patch", "delete"}}
    assert writes >= {"tiers", "globalnetworksets", "networksets", "globalnetworkpolicies",
                      "hostendpoints", "stagedglobalnetworkpolicies", "networkpolicies",
                      "configmaps"}  # fmt: skip


def _audited(audit: AuditLog, user_agent: str, since: int) -> list[dict[str, Any]]:
    audit.requests(user_agent=user_agent, since=since)  # flushes the log
    with audit.path.open("rb") as f:
        f.seek(since)
        events = [json.loads(line) for line in f if line.strip()]
    return [e for e in events if e.get("userAgent", "").startswith(user_agent)]


def _describe(event: dict[str, Any]) -> str:
    return f"{event['verb']} {event.get('requestURI', '')}"


def test_ssa_of_a_new_object_needs_create_as_well_as_patch(
    control_plane: ClusterInfo, cluster: Cluster, release: Release, tmp_path: Path, uid: str
) -> None:
    """Why the ClusterRole has `create`: the same rules without it cannot apply a new object."""
    chart_role = cluster.get(CLUSTER_ROLES, release.cluster_name)
    assert chart_role is not None
    no_create = [
        {**rule, "verbs": [v for v in rule["verbs"] if v != "create"]}
        for rule in chart_role["rules"]
    ]
    sa = f"{uid}-no-create"
    ns = release.namespace
    cluster.apply(SERVICE_ACCOUNTS, _obj("v1", "ServiceAccount", sa, ns))
    cluster.apply(CLUSTER_ROLES, {**_obj(f"{RBAC}/v1", "ClusterRole", sa), "rules": no_create})
    cluster.apply(CLUSTER_ROLE_BINDINGS, _binding("ClusterRoleBinding", sa, "ClusterRole", sa, ns))
    # Its own ApplySet parent, so this test never touches the release's.
    cluster.apply(
        ROLES,
        {
            **_obj(f"{RBAC}/v1", "Role", sa, ns),
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["configmaps"],
                    "verbs": ["get", "create", "patch"],
                }
            ],
        },
    )
    cluster.apply(ROLE_BINDINGS, _binding("RoleBinding", sa, "Role", sa, ns))
    repo = ChartRepo(tmp_path / "repo", uid, ApplySet(f"{uid}-set", ns))
    repo.write("p.yaml", gnp(f"{uid}-new"))

    restricted = Cluster.connect(
        Connection(
            kubeconfig=control_plane.kubeconfig, impersonate=f"system:serviceaccount:{ns}:{sa}"
        )
    )
    _plan, result = reconcile(restricted, repo)
    restricted.close()
    assert not result.ok
    (failure,) = result.failed
    assert 'cannot create resource "globalnetworkpolicies"' in failure.message
    assert cluster.get(GNP, f"default.{uid}-new") is None


def _obj(api_version: str, kind: str, name: str, namespace: str = "") -> dict[str, Any]:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": api_version, "kind": kind, "metadata": meta}


def _binding(kind: str, name: str, role_kind: str, role: str, ns: str) -> dict[str, Any]:
    return {
        **_obj(f"{RBAC}/v1", kind, name, ns if kind == "RoleBinding" else ""),
        "roleRef": {"apiGroup": RBAC, "kind": role_kind, "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}],
    }  # fmt: skip


# -- its own namespace: ApplySet ConfigMaps, Events, Lease ------------------------------------


def test_namespace_grants_work_for_its_own_objects(as_sa: Cluster, release: Release) -> None:
    ns, parent = release.namespace, release.applyset.name
    status = as_sa.apply(CONFIGMAPS, {**_obj("v1", "ConfigMap", f"{parent}-status", ns),
                                      "data": {"last-run": "{}"}}, force=True)  # fmt: skip
    assert status["metadata"]["name"] == f"{parent}-status"
    assert as_sa.get(CONFIGMAPS, f"{parent}-status", ns) is not None
    as_sa.create(EVENTS, {
        **_obj("v1", "Event", f"{parent}.chart-test", ns),
        "involvedObject": {"apiVersion": "v1", "kind": "ConfigMap", "name": parent,
                           "namespace": ns},
        "reason": "ReconcileSucceeded", "message": "chart test", "type": "Normal",
    })  # fmt: skip
    lease = {**_obj("coordination.k8s.io/v1", "Lease", release.lease, ns),
             "spec": {"holderIdentity": "pod-a", "leaseDurationSeconds": 15}}  # fmt: skip
    if as_sa.get(LEASES, release.lease, ns) is None:
        as_sa.create(LEASES, lease)
    current = as_sa.get(LEASES, release.lease, ns)
    assert current is not None
    current["spec"]["holderIdentity"] = "pod-b"
    assert as_sa.replace(LEASES, current)["spec"]["holderIdentity"] == "pod-b"


def _forbidden_cases(release: Release) -> dict[str, Callable[[Cluster], object]]:
    ns, parent = release.namespace, release.applyset.name

    def ssa(rtype: ResourceType, body: dict[str, Any]) -> Callable[[Cluster], object]:
        return lambda c: c.apply(rtype, body, dry_run=True)

    return {
        "create a Secret": lambda c: c.create(
            SECRETS, {**_obj("v1", "Secret", "stolen", ns), "stringData": {"a": "b"}}),
        "read a Secret": lambda c: c.get(SECRETS, "git-token", ns),
        "list Secrets": lambda c: c.list(SECRETS, namespace=ns),
        "create a Deployment": ssa(DEPLOYMENTS, {
            **_obj("apps/v1", "Deployment", "miner", ns),
            "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}),
        "create a RoleBinding": ssa(ROLE_BINDINGS, _binding(
            "RoleBinding", release.name, "ClusterRole", "cluster-admin", ns)),
        "edit its own ClusterRole": ssa(CLUSTER_ROLES, {
            **_obj(f"{RBAC}/v1", "ClusterRole", release.cluster_name),
            "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}),
        "delete a Node": lambda c: c.delete(NODES, "node-3", dry_run=True),
        "create a Node": ssa(NODES, _obj("v1", "Node", "rogue")),
        "create a Calico IPPool": ssa(IPPOOL, {
            **_obj(f"{CALICO_CRD}/v1", "IPPool", "rogue"), "spec": {"cidr": "10.99.0.0/16"}}),
        "edit BGPConfiguration": ssa(BGPCONFIG, {
            **_obj(f"{CALICO_CRD}/v1", "BGPConfiguration", "default"),
            "spec": {"asNumber": 64512}}),
        "read one Pod": lambda c: c.get(PODS, "any", ns),  # listed for the safe order, no more
        "delete a Pod": lambda c: c.delete(PODS, "any", ns, dry_run=True),
        "read another ConfigMap": lambda c: c.get(CONFIGMAPS, "kube-root-ca.crt", ns),
        "patch another ConfigMap": ssa(CONFIGMAPS, _obj("v1", "ConfigMap", f"{parent}-x", ns)),
        "list ConfigMaps elsewhere": lambda c: c.list(CONFIGMAPS, namespace="default"),
        "delete its ApplySet parent": lambda c: c.delete(CONFIGMAPS, parent, ns, dry_run=True),
        # It may patch Events (a repeat raises the count), but never delete or list them.
        "delete an Event": lambda c: c.request(
            "DELETE", EVENTS.path(ns, f"{parent}.x"), verb="delete"),
        "list Events": lambda c: c.request("GET", EVENTS.path(ns), verb="list"),
        "read another Lease": lambda c: c.get(LEASES, "kube-controller-manager", ns),
        "update (PUT) a policy": lambda c: c.replace(GNP, {
            **_obj(f"{CALICO_CRD}/v1", "GlobalNetworkPolicy", "default.any"), "spec": {}}),
        "delete all policies": lambda c: c.request(
            "DELETE", GNP.path(), verb="deletecollection", query={"dryRun": "All"}),
    }  # fmt: skip


FORBIDDEN = sorted(_forbidden_cases(Release("", "", ApplySet("", ""), "")))


@pytest.mark.parametrize("case", FORBIDDEN)
def test_everything_else_is_forbidden(as_sa: Cluster, release: Release, case: str) -> None:
    with pytest.raises(errors.Forbidden):
        _forbidden_cases(release)[case](as_sa)


def test_subject_access_reviews_match_the_managed_kinds_exactly(
    cluster: Cluster, release: Release
) -> None:
    """Both Calico API groups (projectcalico.org is not served here: RBAC decides anyway)."""
    expect: dict[tuple[str, str, str], bool] = {}
    for group in (CALICO_CRD, CALICO_V3):
        for plural in CALICO_PLURALS:
            for verb in ALL_VERBS:
                expect[(group, plural, verb)] = verb in WRITE_VERBS
        for other in ("ippools", "bgpconfigurations", "felixconfigurations", "bgppeers"):
            expect[(group, other, "create")] = False
    for tiered in (f"tier.{p}" for p in CALICO_PLURALS if p.endswith("policies")):
        for verb in ALL_VERBS:
            expect[(CALICO_V3, tiered, verb)] = verb in WRITE_VERBS
    for verb in ALL_VERBS:
        expect[(K8S_NETWORKING, "networkpolicies", verb)] = verb in WRITE_VERBS
        expect[("", "nodes", verb)] = verb in {"get", "list", "watch"}
        expect[("", "namespaces", verb)] = verb in {"get", "list", "watch"}
        expect[("", "pods", verb)] = verb == "list"
        expect[("", "serviceaccounts", verb)] = verb == "list"
        expect[("", "secrets", verb)] = False
    wrong = {
        key: allowed
        for key, allowed in expect.items()
        if _allowed(cluster, release.user, *key) != allowed
    }
    assert wrong == {}


def _allowed(cluster: Cluster, user: str, group: str, resource: str, verb: str) -> bool:
    review = cluster.request(
        "POST",
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        verb="create",
        body={
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": user,
                "resourceAttributes": {"group": group, "resource": resource, "verb": verb,
                                       "namespace": "some-app"},
            },
        },
    )  # fmt: skip
    return bool(review["status"].get("allowed"))


def test_connection_without_impersonation_is_admin(cluster: Cluster, release: Release) -> None:
    """Control: the same requests succeed for the admin, so the 403s above are RBAC's doing."""
    secrets = cluster.list(SECRETS, namespace=release.namespace)
    assert [s["metadata"]["name"] for s in secrets] == [f"sh.helm.release.v1.{release.name}.v1"]
    assert cluster.get(CONFIGMAPS, "no-such", release.namespace) is None
