"""`python -m bench.checks`: ConnectivityChecks over every state of a big first apply.

The generated cluster of bench/connectivity.py (K8s and Calico policies, host endpoints
with a profile, pods in many namespaces), applied from an empty cluster one object per
step in the planner's order, with four checks: nodes to nodes, admins to nodes, pods of
one namespace to another's, and a deny. Prints states, evaluations actually run (steps
that cannot touch a check are skipped) and wall time. Figures, not assertions.

    python -m bench.checks [--objects 3000] [--nodes 300] [--pods 300]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import yaml

from bench.connectivity import _heps, _inventory, _policies
from reconciler import pipeline
from reconciler.connectivity import Facts, Flavour
from reconciler.manifests import load_text
from reconciler.model import Revision
from reconciler.observe.inventory_file import read_inventory
from reconciler.plan.checks import run_checks

CHECKS = """
apiVersion: policy-reconciler.io/v1alpha1
kind: ConnectivityCheck
metadata: {name: nodes-ssh}
spec:
  from: {nodeSelector: "all()"}
  to: {nodeSelector: "all()"}
  ports: ["tcp/22"]
  expect: allow
---
apiVersion: policy-reconciler.io/v1alpha1
kind: ConnectivityCheck
metadata: {name: admins-ssh}
spec:
  from: {cidr: "203.0.113.0/24"}
  to: {nodeSelector: "all()"}
  ports: ["tcp/22", "tcp/6443"]
  expect: allow
---
apiVersion: policy-reconciler.io/v1alpha1
kind: ConnectivityCheck
metadata: {name: web-to-db}
spec:
  from: {namespaceSelector: "team == 't1'"}
  to: {namespaceSelector: "team == 't2'"}
  ports: ["tcp/5432"]
  expect: allow
---
apiVersion: policy-reconciler.io/v1alpha1
kind: ConnectivityCheck
metadata: {name: outside-no-kubelet}
spec:
  from: {cidr: "198.51.100.0/24"}
  to: {nodeSelector: "all()"}
  ports: ["tcp/10250"]
  expect: deny
"""


def main() -> None:
    args = _args()
    with tempfile.TemporaryDirectory(prefix="bench-checks-") as tmp:
        root = Path(tmp)
        rnd = random.Random(1)
        namespaces = max(30, args.pods // 10)
        _write(root, rnd, args, namespaces)
        inventory = read_inventory(root / "inventory.yaml")
        settings = pipeline.Settings()
        rendered = pipeline.render(root / "repo", Revision("bench", str(root)), settings)
        checks = load_text(CHECKS, path="checks.yaml").checks
        facts = Facts(
            inventory.nodes, inventory.namespaces, inventory.pods, inventory.service_accounts
        )
        began = time.perf_counter()
        plan = pipeline.plan_offline(rendered, settings, nodes=inventory.nodes)
        planned = time.perf_counter() - began
        began = time.perf_counter()
        checked = run_checks(
            checks,
            start=(),
            changes=plan.changes,
            facts=facts,
            flavour=Flavour(settings.calico),
            auto=lambda _: None,
        )
        took = time.perf_counter() - began
    writes = sum(1 for c in plan.changes if c.action.writes)
    print(f"objects {writes}, nodes {args.nodes}, pods {args.pods}, checks {len(checks)}")
    for result in checked.results:
        print(f"  {result.name}: {'holds' if result.holds else 'fails ' + result.state}")
    print(f"plan (no checks): {planned:.1f} s")
    print(
        f"checks on all {checked.states + 1} states: {took:.1f} s "
        f"({checked.evaluated} evaluations of a check on a state; the other steps cannot "
        "touch it)"
    )


def _write(root: Path, rnd: random.Random, args: argparse.Namespace, namespaces: int) -> None:

    items = _inventory(rnd, pods=args.pods, namespaces=namespaces, nodes=args.nodes)
    (root / "inventory.yaml").write_text(yaml.safe_dump({"kind": "List", "items": items}))
    objects = [*_heps(args.nodes), *_policies(rnd, args.objects - args.nodes, namespaces)]
    (root / "repo").mkdir()
    for start in range(0, len(objects), 500):  # the loader caps YAML nodes per file
        chunk = objects[start : start + 500]
        (root / "repo" / f"objects-{start:06}.yaml").write_text(yaml.safe_dump_all(chunk))


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.checks")
    parser.add_argument("--objects", type=int, default=3000)
    parser.add_argument("--nodes", type=int, default=300)
    parser.add_argument("--pods", type=int, default=300)
    return parser.parse_args()


if __name__ == "__main__":
    main()
