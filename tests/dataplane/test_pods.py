"""Pods as Felix workload endpoints: Kubernetes NetworkPolicy from the example repo's
Rancher-style project isolation, enforced on real packets between pod namespaces."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from reconciler.cluster.client import Cluster
from reconciler.localcluster import kubectl
from reconciler.localcluster.pods import Pod, add_pod
from reconciler.localcluster.probe import listening, probe, wait_verdict
from tests.cluster.engine import Repo, reconcile
from tests.dataplane.helpers import Net

EXAMPLE = Path(__file__).resolve().parents[2] / "example-repo"
PROJECT = "field.cattle.io/projectId"


def _namespace(net: Net, name: str, project: str) -> None:
    body = {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {PROJECT: project}}}  # fmt: skip
    kubectl(net.info, "apply", "-f", "-", stdin=json.dumps(body))


@pytest.fixture
def pods(net: Net, uid: str) -> Iterator[dict[str, Pod]]:
    """shop and web in project p-apps, cache in p-data, sys in p-system; each pod answers
    on TCP 80."""
    layout = {"shop": ("p-apps", "node-2", 10), "web": ("p-apps", "node-3", 10),
              "cache": ("p-data", "node-2", 11), "sys": ("p-system", "node-3", 11)}  # fmt: skip
    made = {}
    for ns, (project, node, host) in layout.items():
        _namespace(net, f"{uid}-{ns}", project)
        made[ns] = add_pod(net.info, namespace=f"{uid}-{ns}", name="app", node=node, host=host)
    with ExitStack() as stack:
        for pod in made.values():
            stack.enter_context(listening(pod.netns, pod.ip, 80))
        yield made


def test_project_isolation_template_is_enforced_between_pods(
    net: Net, dp_cluster: Cluster, pods: dict[str, Pod], tmp_path: Path, uid: str
) -> None:
    shop, web, cache, sys = pods["shop"], pods["web"], pods["cache"], pods["sys"]
    for src in (web, cache, sys):  # no policy yet: pods are open
        wait_verdict(src.netns, shop.ip, 80, allowed=True)
    assert probe(net.dp.admin, shop.ip, "tcp", 80)

    root = tmp_path / "repo"
    shutil.copytree(EXAMPLE / "namespaces", root / "namespaces")
    text = (root / "namespaces" / "project-isolation.yaml").read_text()
    selector = "has(field.cattle.io/projectId) &&"
    assert selector in text
    scoped = text.replace(
        selector, f"{selector} kubernetes.io/metadata.name starts with '{uid}-' &&"
    )
    (root / "namespaces" / "project-isolation.yaml").write_text(scoped)
    assert reconcile(dp_cluster, Repo(root, uid))[1].ok

    wait_verdict(cache.netns, shop.ip, 80, allowed=False)
    verdicts = {
        "same project (web -> shop)": probe(web.netns, shop.ip, "tcp", 80),
        "other project (cache -> shop)": probe(cache.netns, shop.ip, "tcp", 80),
        "system project (sys -> shop)": probe(sys.netns, shop.ip, "tcp", 80),
        "outside the cluster (admin -> shop)": probe(net.dp.admin, shop.ip, "tcp", 80),
        "into another project (shop -> cache)": probe(shop.netns, cache.ip, "tcp", 80),
        "system project is not isolated (cache -> sys)": probe(cache.netns, sys.ip, "tcp", 80),
    }
    assert verdicts == {
        "same project (web -> shop)": True,
        "other project (cache -> shop)": False,
        "system project (sys -> shop)": True,
        "outside the cluster (admin -> shop)": False,
        "into another project (shop -> cache)": False,
        "system project is not isolated (cache -> sys)": True,
    }


def test_calico_network_policy_selects_pods_by_label(
    net: Net, dp_cluster: Cluster, tmp_path: Path, uid: str
) -> None:
    """A namespaced projectcalico.org/v3 NetworkPolicy: only `role == 'api'` pods of the
    same namespace reach the database on 5432; nothing else reaches it."""
    ns = f"{uid}-db"
    _namespace(net, ns, "p-data")
    db = add_pod(net.info, namespace=ns, name="db", node="node-1", host=20, labels={"app": "db"})
    api = add_pod(
        net.info, namespace=ns, name="api", node="node-2", host=20, labels={"role": "api"}
    )
    other = add_pod(net.info, namespace=ns, name="batch", node="node-1", host=21)
    repo = Repo(tmp_path / "repo", uid)
    rule = {
        "action": "Allow",
        "protocol": "TCP",
        "source": {"selector": "role == 'api'"},
        "destination": {"ports": [5432]},
    }
    spec = {"selector": "app == 'db'", "types": ["Ingress"], "ingress": [rule]}
    meta = {"name": "db-from-api", "namespace": ns}
    repo.write("db.yaml", {"apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
                           "metadata": meta, "spec": spec})  # fmt: skip
    with listening(db.netns, db.ip, 5432), listening(db.netns, db.ip, 80):
        wait_verdict(other.netns, db.ip, 5432, allowed=True)  # open before the policy
        assert reconcile(dp_cluster, repo)[1].ok
        wait_verdict(other.netns, db.ip, 5432, allowed=False)
        assert probe(api.netns, db.ip, "tcp", 5432)  # from another node, by label
        assert not probe(api.netns, db.ip, "tcp", 80)  # only the port the rule names
        assert not probe(net.dp.admin, db.ip, "tcp", 5432)
