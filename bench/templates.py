"""`python -m bench.templates`: templates over live inventory on the local control plane.

N Nodes x 1 HostEndpointTemplate and M Namespaces x 2 NamespacePolicyTemplates: the first
apply, then a no-op plan, with the time spent reading the inventory and expanding split
out, and API requests by verb (stable across machines, unlike seconds).

    python -m bench.templates [--nodes 500] [--namespaces 1000] [--keep]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from reconciler import generate, localcluster, pipeline
from reconciler.applyset import ApplySet
from reconciler.cluster.client import NAMESPACES, NODES, Cluster, Connection
from reconciler.localcluster import kubectl
from reconciler.model import Revision
from reconciler.observe import read_namespaces, read_nodes
from reconciler.plan import PlanOptions

PROJECT = "field.cattle.io/projectId"
TEMPLATES = "policy-reconciler.io/v1alpha1"


def main() -> None:
    args = _args()
    state = Path(tempfile.mkdtemp(prefix="bench-templates-cp-"))
    info = localcluster.up(state, nodes=3, progress=lambda m: print(m, file=sys.stderr))
    try:
        kubectl(info, "create", "namespace", "policy-reconciler")
        rows = _measure(info.kubeconfig, args.nodes, args.namespaces)
    finally:
        if not args.keep:
            localcluster.down(state)
    _print(rows, args.nodes, args.namespaces)


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.templates")
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--namespaces", type=int, default=1000)
    parser.add_argument("--keep", action="store_true", help="leave the control plane running")
    return parser.parse_args()


def _measure(kubeconfig: str, nodes: int, namespaces: int) -> list[dict[str, Any]]:
    setup = Cluster.connect(Connection(kubeconfig=kubeconfig))
    started = time.perf_counter()
    _create(setup, [_node(i) for i in range(nodes)] + [_namespace(i) for i in range(namespaces)])
    print(
        f"-- created {nodes} nodes, {namespaces} namespaces in "
        f"{time.perf_counter() - started:.1f}s",
        file=sys.stderr,
    )
    repo = Path(tempfile.mkdtemp(prefix="bench-templates-repo-"))
    (repo / "templates.yaml").write_text(yaml.safe_dump_all(_templates(), sort_keys=False))
    return [
        _phase("first apply", kubeconfig, repo, apply=True),
        _phase("no-op plan", kubeconfig, repo, apply=False),
        *_expansion(kubeconfig, repo),
    ]


def _phase(name: str, kubeconfig: str, repo: Path, *, apply: bool) -> dict[str, Any]:
    cluster = Cluster.connect(Connection(kubeconfig=kubeconfig))
    settings = pipeline.Settings(ApplySet("bench-templates", "policy-reconciler"), PlanOptions())
    started = time.perf_counter()
    rendered = pipeline.render(repo, Revision("dir:bench", str(repo)), settings)
    planned = pipeline.plan(cluster, rendered, settings)
    plan_s = time.perf_counter() - started
    result = pipeline.apply(cluster, planned, settings) if apply else None
    if result is not None and not result.ok:
        raise SystemExit(f"apply failed: {result.failed[:3]} {result.notes}")
    seconds = time.perf_counter() - started
    return _row(name, seconds, plan_s, len(planned.plan.changes), cluster.request_counts())


def _expansion(kubeconfig: str, repo: Path) -> list[dict[str, Any]]:
    """The two parts of expansion apart: reading the inventory, and the pure stage."""
    cluster = Cluster.connect(Connection(kubeconfig=kubeconfig))
    settings = pipeline.Settings()
    rendered = pipeline.render(repo, Revision("dir:bench", str(repo)), settings)
    before = cluster.request_counts()
    started = time.perf_counter()
    nodes, namespaces = read_nodes(cluster), read_namespaces(cluster)
    read_s = time.perf_counter() - started
    requests = {k: v - before.get(k, 0) for k, v in cluster.request_counts().items()}
    started = time.perf_counter()
    expanded = generate.expand(rendered.templates, nodes=nodes, namespaces=namespaces)
    expand_s = time.perf_counter() - started
    inventory = len(nodes) + len(namespaces)
    return [
        _row("read inventory", read_s, read_s, inventory, {k: v for k, v in requests.items() if v}),
        _row("pure expand", expand_s, expand_s, len(expanded.resources), {}),
    ]


def _row(
    name: str, seconds: float, plan_s: float, objects: int, requests: dict[str, int]
) -> dict[str, Any]:
    return {
        "phase": name,
        "seconds": seconds,
        "plan_s": plan_s,
        "objects": objects,
        "requests": requests,
    }


def _print(rows: Iterable[Mapping[str, Any]], nodes: int, namespaces: int) -> None:
    print(
        f"{nodes} nodes x 1 HostEndpointTemplate, {namespaces} namespaces x 2 "
        "NamespacePolicyTemplates (pages of 500)"
    )
    print(f"{'phase':<14} {'objects':>7} {'seconds':>8} {'plan s':>7}  requests")
    for r in rows:
        verbs = " ".join(f"{k}={v}" for k, v in sorted(r["requests"].items())) or "-"
        print(
            f"{r['phase']:<14} {r['objects']:>7} {r['seconds']:>8.2f} {r['plan_s']:>7.2f}  {verbs}"
        )
    print(
        "plan s: render + plan (inventory read and expansion included); objects of the last "
        "two rows: Nodes+Namespaces read, objects generated"
    )


# --- inventory and templates -------------------------------------------------------------


def _create(cluster: Cluster, bodies: list[dict[str, Any]]) -> None:
    def one(body: dict[str, Any]) -> None:
        cluster.create(NODES if body["kind"] == "Node" else NAMESPACES, body)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, bodies))


def _node(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": f"bench-node-{i}", "labels": {"bench": "", "zone": f"z{i % 3}"}},
        "status": {
            "addresses": [
                {
                    "type": "InternalIP",
                    "address": f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}",
                }
            ]
        },
    }


def _namespace(i: int) -> dict[str, Any]:
    labels = {"bench": "", PROJECT: f"p-{i % 20}"}
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": f"bench-ns-{i}", "labels": labels},
    }


def _templates() -> list[dict[str, Any]]:
    same_project = {"matchLabels": {PROJECT: f"${{labels['{PROJECT}']}}"}}
    return [
        {
            "apiVersion": TEMPLATES,
            "kind": "HostEndpointTemplate",
            "metadata": {"name": "node-firewall"},
            "spec": {
                "nodeSelector": "has(bench)",
                "labels": {"host-endpoint": "ingress"},
                "copyLabels": ["zone"],
            },
        },
        _namespace_template(
            "project-isolation",
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": "np-default"},
                "spec": {
                    "podSelector": {},
                    "policyTypes": ["Ingress"],
                    "ingress": [{"from": [{"namespaceSelector": same_project}]}],
                },
            },
        ),
        _namespace_template(
            "own-namespace",
            {
                "apiVersion": "projectcalico.org/v3",
                "kind": "NetworkPolicy",
                "metadata": {"name": "allow-${namespace}"},
                "spec": {
                    "selector": "all()",
                    "types": ["Ingress"],
                    "ingress": [
                        {
                            "action": "Allow",
                            "source": {
                                "namespaceSelector": "kubernetes.io/metadata.name == '${namespace}'"
                            },
                        }
                    ],
                },
            },
        ),
    ]


def _namespace_template(name: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": TEMPLATES,
        "kind": "NamespacePolicyTemplate",
        "metadata": {"name": name},
        "spec": {"namespaceSelector": f"has(bench) && has({PROJECT})", "template": body},
    }


if __name__ == "__main__":
    main()
