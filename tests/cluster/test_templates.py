"""Templates over live inventory, against a real API server: the generated objects follow
Nodes and Namespaces as they come, change and go; the audit log is the witness.

Every test runs on both Calico API flavours (tests/cluster/flavours.py). Objects are read
back as stored (crd.projectcalico.org/v1), which is the same under both."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.cluster.client import NAMESPACES, NODES, Cluster, ResourceType
from reconciler.localcluster import ClusterInfo, kubectl
from reconciler.model import Action, Plan
from tests.audit import AuditLog, by_verb
from tests.cluster.engine import NAMESPACE, Repo, actions, gnp, plan_only, reconcile
from tests.cluster.flavours import Plane, audit, cluster, plane
from tests.cluster.inventory import create_all, namespace, node, relabel

__all__ = ["audit", "cluster", "plane"]  # fixtures: both flavours for every test here

HEP = ResourceType("crd.projectcalico.org", "v1", "HostEndpoint", "hostendpoints", False)
K8S_NP = ResourceType("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", True)
CALICO_NP = ResourceType("crd.projectcalico.org", "v1", "NetworkPolicy", "networkpolicies", True)
PROJECT = "field.cattle.io/projectId"
TEMPLATES = "policy-reconciler.io/v1alpha1"


@pytest.fixture(scope="module", autouse=True)
def _namespace(control_plane: ClusterInfo) -> None:
    kubectl(
        control_plane,
        "apply",
        "-f",
        "-",
        stdin=f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NAMESPACE}\n",
    )


@pytest.fixture
def repo(tmp_path: Path, uid: str) -> Repo:
    return Repo(tmp_path / "repo", uid)


@pytest.fixture
def nodes(cluster: Cluster) -> Iterator[list[str]]:
    """Names of Nodes a test creates; deleted afterwards (Nodes really go away)."""
    made: list[str] = []
    yield made
    for name in made:
        cluster.delete(NODES, name)


def host_endpoint_template(name: str, selector: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": TEMPLATES,
        "kind": "HostEndpointTemplate",
        "metadata": {"name": name},
        "spec": {"nodeSelector": selector, "labels": {"host-endpoint": "ingress"}, **spec},
    }


def isolation_template(uid: str) -> dict[str, Any]:
    """Rancher's np-default: the namespace's own project and the System project."""
    same_project = {"matchLabels": {PROJECT: f"${{labels['{PROJECT}']}}"}}
    system = {"matchLabels": {PROJECT: "p-system"}}
    return {
        "apiVersion": TEMPLATES,
        "kind": "NamespacePolicyTemplate",
        "metadata": {"name": "project-isolation"},
        "spec": {
            "namespaceSelector": f"has({uid}-tenant) && has({PROJECT})",
            "template": {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": "np-default"},
                "spec": {
                    "podSelector": {},
                    "policyTypes": ["Ingress"],
                    "ingress": [
                        {
                            "from": [
                                {"namespaceSelector": same_project},
                                {"namespaceSelector": system},
                            ]
                        }
                    ],
                },
            },
        },
    }


def role_template(uid: str) -> dict[str, Any]:
    """A Calico policy per namespace, named after it: the role/allow convention."""
    return {
        "apiVersion": TEMPLATES,
        "kind": "NamespacePolicyTemplate",
        "metadata": {"name": "redis-role"},
        "spec": {
            "namespaceSelector": f"has({uid}-tenant)",
            "template": {
                "apiVersion": "projectcalico.org/v3",
                "kind": "NetworkPolicy",
                "metadata": {"name": "allow-redis-${namespace}"},
                "spec": {
                    "selector": "all()",
                    "types": ["Ingress"],
                    "ingress": [
                        {
                            "action": "Allow",
                            "protocol": "TCP",
                            "source": {"namespaceSelector": "has(network-policy/allow_redis)"},
                            "destination": {"ports": [6379]},
                        }
                    ],
                },
            },
        },
    }


def stored_labels(body: dict[str, Any]) -> dict[str, str]:
    """User labels of a v1 Calico object: in the metadata annotation, as calicoctl keeps them."""
    meta = json.loads(body["metadata"]["annotations"]["projectcalico.org/metadata"])
    return {k: v for k, v in (meta.get("labels") or {}).items() if "applyset" not in k}


def changed(plan: Plan) -> dict[str, Action]:
    return {ref: a for ref, a in actions(plan).items() if a is not Action.UNCHANGED}


def writes(audit: AuditLog, user_agent: str, since: int) -> list[tuple[str, str, str]]:
    return [
        (r.verb, r.resource, r.name)
        for r in audit.requests(user_agent=user_agent, since=since)
        if r.is_write and r.resource != "configmaps"
    ]


def test_host_endpoints_follow_nodes_added_relabelled_and_deleted(
    cluster: Cluster, repo: Repo, uid: str, nodes: list[str]
) -> None:
    fw = f"{uid}-fw"
    a, b, c, d = (f"{uid}-{x}" for x in "abcd")
    nodes += [a, b, c, d]
    create_all(
        cluster,
        [
            node(a, "10.241.0.1", {fw: "", "role": "db"}),
            node(b, "10.241.0.2", {fw: ""}),
            node(c, "10.241.0.3", {}),  # not selected
        ],
    )
    template = host_endpoint_template("fw", f"has({fw})", copyLabels=["role"])
    # Two more objects, so that one prune stays under the default --max-prune of 30%.
    policies = [gnp(f"{uid}-allow"), gnp(f"{uid}-web"), gnp(f"{uid}-dns")]
    repo.write("hosts.yaml", template, *policies)
    plan, result = reconcile(cluster, repo)
    assert changed(plan) == {
        **{f"GlobalNetworkPolicy/{uid}-{p}": Action.CREATE for p in ("allow", "web", "dns")},
        f"HostEndpoint/{a}-fw": Action.CREATE,
        f"HostEndpoint/{b}-fw": Action.CREATE,
    }
    assert result.ok, result.failed
    live = cluster.get(HEP, f"{a}-fw")
    assert live is not None
    assert live["spec"] == {"node": a, "interfaceName": "*", "expectedIPs": ["10.241.0.1"]}
    assert stored_labels(live) == {"host-endpoint": "ingress", "role": "db"}
    origin = next(c.desired.origin for c in plan.changes if c.ref.name == f"{a}-fw" and c.desired)
    assert str(origin) == f"hosts.yaml:1 (HostEndpointTemplate/fw for Node/{a})"

    create_all(cluster, [node(d, "10.241.0.4", {fw: ""})])  # a new node
    relabel(cluster, "Node", a, {"role": "cache"})  # a relabelled node
    relabel(cluster, "Node", b, {fw: None})  # a node leaving the selector
    plan, result = reconcile(cluster, repo)
    assert changed(plan) == {
        f"HostEndpoint/{d}-fw": Action.CREATE,
        f"HostEndpoint/{a}-fw": Action.UPDATE,
        f"HostEndpoint/{b}-fw": Action.PRUNE,
    }
    assert result.ok, (result.failed, result.notes, plan.errors)
    live = cluster.get(HEP, f"{a}-fw")
    assert live is not None and stored_labels(live)["role"] == "cache"
    assert cluster.get(HEP, f"{b}-fw") is None

    cluster.delete(NODES, d)  # a deleted node
    plan, result = reconcile(cluster, repo)
    assert changed(plan) == {f"HostEndpoint/{d}-fw": Action.PRUNE}
    assert result.ok and cluster.get(HEP, f"{d}-fw") is None
    assert changed(plan_only(cluster, repo)) == {}


def test_a_new_nodes_host_endpoint_comes_after_the_allows_and_before_the_deny(
    cluster: Cluster,
    repo: Repo,
    uid: str,
    nodes: list[str],
    audit: AuditLog,
    user_agent: str,
    plane: Plane,
) -> None:
    """Design invariant 4 for generated endpoints, proven from what the API server saw."""
    fw = f"{uid}-fw"
    first, second = f"{uid}-first", f"{uid}-second"
    nodes += [first, second]
    create_all(cluster, [node(first, "10.242.0.1", {fw: ""})])
    repo.write(
        "firewall.yaml",
        gnp(f"{uid}-deny", order=20, action="Deny"),
        host_endpoint_template("fw", f"has({fw})"),
        gnp(f"{uid}-allow", order=10),
    )
    start = audit.mark()
    reconcile(cluster, repo)
    assert writes(audit, user_agent, start) == [
        ("patch", "globalnetworkpolicies", plane.policy(f"{uid}-allow")),
        ("patch", "hostendpoints", f"{first}-fw"),
        ("patch", "globalnetworkpolicies", plane.policy(f"{uid}-deny")),
    ]

    # A node joins in the same run as a new allow (say, for its SSH port): allow first.
    create_all(cluster, [node(second, "10.242.0.2", {fw: ""})])
    repo.write("ssh.yaml", gnp(f"{uid}-ssh", order=5))
    start = audit.mark()
    reconcile(cluster, repo)
    assert writes(audit, user_agent, start) == [
        ("patch", "globalnetworkpolicies", plane.policy(f"{uid}-ssh")),
        ("patch", "hostendpoints", f"{second}-fw"),
    ]


def test_namespace_policies_follow_namespaces_created_relabelled_and_deleted(
    cluster: Cluster, repo: Repo, uid: str
) -> None:
    tenant = {f"{uid}-tenant": ""}
    shop, cache, new = f"{uid}-shop", f"{uid}-cache", f"{uid}-new"
    create_all(
        cluster,
        [
            namespace(shop, {**tenant, PROJECT: "p-apps"}),
            namespace(cache, {**tenant, PROJECT: "p-data"}),
            namespace(f"{uid}-other", {PROJECT: "p-apps"}),  # not a tenant
        ],
    )
    repo.write("namespaces.yaml", isolation_template(uid), role_template(uid))
    plan, result = reconcile(cluster, repo)
    assert changed(plan) == {
        f"NetworkPolicy/{shop}/np-default": Action.CREATE,
        f"NetworkPolicy/{cache}/np-default": Action.CREATE,
        f"NetworkPolicy/{shop}/allow-redis-{shop}": Action.CREATE,
        f"NetworkPolicy/{cache}/allow-redis-{cache}": Action.CREATE,
    }
    assert result.ok, result.failed
    live = cluster.get(K8S_NP, "np-default", shop)
    assert live is not None
    peers = live["spec"]["ingress"][0]["from"]
    assert peers[0]["namespaceSelector"]["matchLabels"] == {PROJECT: "p-apps"}
    assert cluster.get(CALICO_NP, f"default.allow-redis-{cache}", cache) is not None

    create_all(cluster, [namespace(new, {**tenant, PROJECT: "p-apps"})])  # created
    relabel(cluster, "Namespace", shop, {PROJECT: "p-shop"})  # moved to another project
    plan, result = reconcile(cluster, repo)
    assert changed(plan) == {
        f"NetworkPolicy/{new}/np-default": Action.CREATE,
        f"NetworkPolicy/{new}/allow-redis-{new}": Action.CREATE,
        f"NetworkPolicy/{shop}/np-default": Action.UPDATE,
    }
    assert result.ok, result.failed
    live = cluster.get(K8S_NP, "np-default", shop)
    assert live is not None
    assert live["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"] == {
        PROJECT: "p-shop"
    }

    relabel(cluster, "Namespace", cache, {f"{uid}-tenant": None})  # leaves the selector
    cluster.delete(NAMESPACES, new)  # really deleted: Terminating for ever without KCM
    plan, result = reconcile(cluster, repo)  # 4 of 6 managed objects: over 30%
    assert any("--max-prune" in f.message for f in plan.errors)
    assert cluster.get(K8S_NP, "np-default", cache) is not None  # refused: nothing deleted
    plan, result = reconcile(cluster, repo, max_prune=1.0)
    assert changed(plan) == {
        f"NetworkPolicy/{cache}/np-default": Action.PRUNE,
        f"NetworkPolicy/{cache}/allow-redis-{cache}": Action.PRUNE,
        f"NetworkPolicy/{new}/np-default": Action.PRUNE,
        f"NetworkPolicy/{new}/allow-redis-{new}": Action.PRUNE,
    }
    assert result.ok, result.failed
    assert cluster.get(K8S_NP, "np-default", cache) is None
    assert cluster.get(K8S_NP, "np-default", new) is None
    assert changed(plan_only(cluster, repo)) == {}


def test_steady_state_with_templates_costs_one_list_per_inventory_kind(
    cluster: Cluster, repo: Repo, uid: str, nodes: list[str], audit: AuditLog, user_agent: str
) -> None:
    fw = f"{uid}-fw"
    nodes.append(f"{uid}-n")
    create_all(cluster, [node(f"{uid}-n", "10.243.0.1", {fw: ""})])
    create_all(cluster, [namespace(f"{uid}-ns", {f"{uid}-tenant": "", PROJECT: "p-1"})])
    repo.write("t.yaml", host_endpoint_template("fw", f"has({fw})"), isolation_template(uid))
    reconcile(cluster, repo)

    start = audit.mark()
    plan = plan_only(cluster, repo)
    assert set(actions(plan).values()) == {Action.UNCHANGED} and len(plan.changes) == 2
    requests = audit.requests(user_agent=user_agent, since=start)
    assert not [r for r in requests if r.is_write or r.dry_run]
    lists = sorted(r.resource for r in requests if r.verb == "list")
    assert lists == ["hostendpoints", "namespaces", "networkpolicies", "nodes"]
    gets = sorted(r.resource for r in requests if r.verb == "get")
    assert gets == ["configmaps", "kubecontrollersconfigurations"]  # parent; auto endpoints
    assert by_verb(requests)["watch"] == 0


def test_no_inventory_is_read_without_templates_and_no_kcc_get_when_the_repo_has_one(
    cluster: Cluster, repo: Repo, uid: str, audit: AuditLog, user_agent: str
) -> None:
    repo.write("p.yaml", gnp(f"{uid}-p"))
    start = audit.mark()
    plan_only(cluster, repo)  # one firewall write: no order to work out, no pods read
    requests = audit.requests(user_agent=user_agent, since=start)
    assert not {r.resource for r in requests} & {"nodes", "pods", "kubecontrollersconfigurations"}
    # Before a first apply, only whether the ApplySet parent's namespace exists: no LIST.
    asked = [(r.verb, r.name) for r in requests if r.resource == "namespaces"]
    assert asked == [("get", repo.settings().applyset.namespace)]

    kcc = {
        "apiVersion": "projectcalico.org/v3",
        "kind": "KubeControllersConfiguration",
        "metadata": {"name": "default"},
        "spec": {"controllers": {"node": {"hostEndpoint": {"autoCreate": "Enabled"}}}},
    }
    repo.write("auto.yaml", kcc, host_endpoint_template("fw", "kubernetes-worker == 'x'"))
    start = audit.mark()
    plan = plan_only(cluster, repo)
    requests = audit.requests(user_agent=user_agent, since=start)
    kcc_gets = [
        r for r in requests if r.resource == "kubecontrollersconfigurations" and r.verb == "get"
    ]
    assert len(kcc_gets) == 1  # whether the repo's new object exists; auto endpoints: the repo's
    assert "nodes" in {r.resource for r in requests}
    assert not [f for f in plan.findings if "automatic host endpoints" in f.message]  # no node

    repo.write("auto.yaml", kcc, host_endpoint_template("fw", "has(kubernetes-worker)"))
    plan = plan_only(cluster, repo)
    (warning,) = [f for f in plan.findings if "automatic host endpoints" in f.message]
    assert "node-2" in warning.message and "auto.yaml:1" in warning.message


def test_a_generated_object_colliding_with_a_file_writes_nothing(
    cluster: Cluster, repo: Repo, uid: str, nodes: list[str], audit: AuditLog, user_agent: str
) -> None:
    fw = f"{uid}-fw"
    nodes.append(f"{uid}-n")
    create_all(cluster, [node(f"{uid}-n", "10.244.0.1", {fw: ""})])
    by_hand = {
        "apiVersion": "projectcalico.org/v3",
        "kind": "HostEndpoint",
        "metadata": {"name": f"{uid}-n-fw", "labels": {"host-endpoint": "ingress"}},
        "spec": {"node": f"{uid}-n", "interfaceName": "*"},
    }
    repo.write("a-by-hand.yaml", by_hand, gnp(f"{uid}-allow"))
    repo.write("b-template.yaml", host_endpoint_template("fw", f"has({fw})"))
    start = audit.mark()
    plan, result = reconcile(cluster, repo)
    (error,) = plan.errors
    assert str(error.origin) == f"b-template.yaml:1 (HostEndpointTemplate/fw for Node/{uid}-n)"
    assert "a-by-hand.yaml:1" in error.message
    assert not result.ok
    assert writes(audit, user_agent, start) == []
