"""Templates at scale: 500 Nodes x 1 template and 1,000 Namespaces x 2 templates plan and apply
correctly, and a no-op plan afterwards reads each inventory kind with one paginated LIST.
(Speed is measured in bench/templates.py, never asserted here.)"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.cluster.client import Cluster
from reconciler.model import Action
from tests.audit import AuditLog
from tests.cluster.engine import Repo, actions, plan_only, reconcile
from tests.cluster.inventory import create_all, delete_nodes, namespace, node
from tests.cluster.test_templates import (
    CALICO_NP,
    HEP,
    K8S_NP,
    PROJECT,
    host_endpoint_template,
    isolation_template,
    role_template,
)

NODES = 500
NAMESPACES = 1000


@pytest.fixture
def fleet(cluster: Cluster, uid: str) -> Iterator[list[str]]:
    names = [f"{uid}-node-{i}" for i in range(NODES)]
    create_all(
        cluster,
        [
            node(n, f"10.250.{i // 250}.{i % 250 + 1}", {f"{uid}-fw": ""})
            for i, n in enumerate(names)
        ],
    )
    yield names
    delete_nodes(cluster, names)


@pytest.fixture
def tenants(cluster: Cluster, uid: str) -> list[str]:
    names = [f"{uid}-ns-{i}" for i in range(NAMESPACES)]
    labels = [{f"{uid}-tenant": "", PROJECT: f"p-{i % 10}"} for i in range(NAMESPACES)]
    create_all(cluster, [namespace(n, ls) for n, ls in zip(names, labels, strict=True)])
    return names  # namespaces never finish deleting here: they stay, unique to this test


def test_500_nodes_and_1000_namespaces_plan_and_apply(
    cluster: Cluster,
    tmp_path: Path,
    uid: str,
    fleet: list[str],
    tenants: list[str],
    audit: AuditLog,
    user_agent: str,
) -> None:
    repo = Repo(tmp_path / "repo", uid)
    repo.write(
        "templates.yaml",
        host_endpoint_template("fw", f"has({uid}-fw)"),
        isolation_template(uid),
        role_template(uid),
    )
    plan, result = reconcile(cluster, repo)
    assert not plan.errors, plan.errors[:3]
    ours = [c for c in plan.changes if not c.transient]  # the bridge aside (plan/safe.py)
    assert Counter(c.action for c in ours) == {Action.CREATE: NODES + 2 * NAMESPACES}
    assert result.ok, (result.failed[:3], result.notes)
    assert len([c for c in result.done if not c.transient]) == NODES + 2 * NAMESPACES

    selector = repo.settings().applyset.selector
    heps = cluster.list(HEP, label_selector=selector)
    assert sorted(h["spec"]["node"] for h in heps) == sorted(fleet)
    isolation = cluster.list(K8S_NP, label_selector=selector)
    assert sorted(p["metadata"]["namespace"] for p in isolation) == sorted(tenants)
    project = {p["metadata"]["namespace"]: p["spec"]["ingress"][0]["from"][0] for p in isolation}
    assert project[f"{uid}-ns-13"]["namespaceSelector"]["matchLabels"] == {PROJECT: "p-3"}
    assert len(cluster.list(CALICO_NP, label_selector=selector)) == NAMESPACES

    start = audit.mark()
    again = plan_only(cluster, repo)
    assert set(actions(again).values()) == {Action.UNCHANGED}
    assert len(again.changes) == NODES + 2 * NAMESPACES
    requests = audit.requests(user_agent=user_agent, since=start)
    assert not [r for r in requests if r.is_write or r.dry_run]
    first_pages = Counter(
        r.resource for r in requests if r.verb == "list" and "continue=" not in r.uri
    )
    # one paginated LIST each; networkpolicies twice: Kubernetes' and Calico's
    assert first_pages == {"nodes": 1, "namespaces": 1, "hostendpoints": 1, "networkpolicies": 2}
    assert not [
        r
        for r in requests
        if r.verb == "get" and r.resource not in ("configmaps", "kubecontrollersconfigurations")
    ]
