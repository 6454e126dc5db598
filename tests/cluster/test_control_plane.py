"""The built-in control plane is real: SSA, managedFields, CRDs, Nodes, audit log."""

from __future__ import annotations

from pathlib import Path

from reconciler import FIELD_MANAGER, localcluster
from reconciler.cluster.client import NODES, Cluster
from reconciler.localcluster import ClusterInfo, kubectl
from tests.audit import AuditLog


def test_server_side_apply_of_a_calico_crd_records_our_field_manager(
    cluster: Cluster, uid: str, audit: AuditLog, user_agent: str
) -> None:
    gnps = cluster.resources("crd.projectcalico.org/v1")
    assert gnps is not None, "Calico CRDs are not served"
    rtype = gnps["GlobalNetworkPolicy"]
    body = {
        "apiVersion": "crd.projectcalico.org/v1",
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": f"default.{uid}-allow-ping"},
        "spec": {
            "order": 10,
            "selector": "all()",
            "types": ["Ingress"],
            "ingress": [{"action": "Allow", "protocol": "ICMP", "icmp": {"type": 8}}],
        },
    }
    start = audit.mark()
    cluster.apply(rtype, body)
    live = cluster.get(rtype, f"default.{uid}-allow-ping")
    assert live is not None
    assert live["spec"]["ingress"][0]["icmp"] == {"type": 8}
    managers = {m["manager"]: m for m in live["metadata"]["managedFields"]}
    assert managers[FIELD_MANAGER]["operation"] == "Apply"
    assert "f:ingress" in managers[FIELD_MANAGER]["fieldsV1"]["f:spec"]
    verbs = [(r.verb, r.resource) for r in audit.requests(user_agent=user_agent, since=start)]
    assert verbs == [("patch", "globalnetworkpolicies"), ("get", "globalnetworkpolicies")]


def test_nodes_exist_with_addresses_and_roles(cluster: Cluster) -> None:
    nodes = {n["metadata"]["name"]: n for n in cluster.list(NODES)}
    assert set(nodes) >= {"node-1", "node-2", "node-3"}
    assert "node-role.kubernetes.io/control-plane" in nodes["node-1"]["metadata"]["labels"]
    assert "kubernetes-worker" in nodes["node-2"]["metadata"]["labels"]
    addresses = nodes["node-2"]["status"]["addresses"]
    assert {"type": "InternalIP", "address": "10.240.0.12"} in addresses


def test_create_nodes_and_read_them_back(cluster: Cluster, uid: str) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": f"{uid}-extra", "labels": {"pool": uid}},
        "status": {"addresses": [{"type": "InternalIP", "address": "10.250.0.7"}]},
    }
    cluster.create(NODES, body)
    listed = cluster.list(NODES, label_selector=f"pool={uid}")
    assert [n["metadata"]["name"] for n in listed] == [f"{uid}-extra"]
    assert listed[0]["status"]["addresses"][0]["address"] == "10.250.0.7"
    cluster.delete(NODES, f"{uid}-extra")


def test_kubectl_sees_calico_crds_and_a_real_version(control_plane: ClusterInfo) -> None:
    crds = kubectl(control_plane, "get", "crd", "-o", "name")
    for plural in ("globalnetworkpolicies", "hostendpoints", "tiers", "networksets"):
        assert (
            f"customresourcedefinition.apiextensions.k8s.io/{plural}.crd.projectcalico.org" in crds
        )
    version = kubectl(control_plane, "version", "-o", "json")
    assert '"gitVersion": "v1.34.' in version


def test_up_is_idempotent(control_plane: ClusterInfo) -> None:
    messages: list[str] = []
    again = localcluster.up(Path(control_plane.state_dir), progress=messages.append)
    assert again == control_plane
    assert messages == [f"Local cluster already running at {control_plane.server}"]
