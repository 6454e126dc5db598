"""`python -m bench.connectivity`: connectivity eval / diff / map on a generated cluster.

Prints wall time and peak RSS per phase, each phase in a fresh process (so its RSS is its
own), for the issue-15 size (300 pods, 30 namespaces, 1,000 policies half K8s NP half
GNP, 50 host endpoints) and a larger one to show how cost grows. Figures, not assertions.

    python -m bench.connectivity [--sizes 300:1000,5000:10000]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from reconciler.connectivity import Facts, Flavour, evaluate, parse_packet, parse_peer
from reconciler.connectivity.diff import diff
from reconciler.connectivity.reach import reach_map
from reconciler.observe.inventory_file import read_inventory
from reconciler.pipeline.connectivity import world_of

PHASES = ("load", "eval", "map", "diff")


def write_cluster(root: Path, *, pods: int, policies: int, nodes: int = 50, seed: int = 1) -> None:
    """base/ and head/ repos (head: 10 policies edited, 2 added, 2 removed) + inventory."""
    rnd = random.Random(seed)
    namespaces = max(30, pods // 10)
    inventory = _inventory(rnd, pods=pods, namespaces=namespaces, nodes=nodes)
    (root / "inventory.yaml").write_text(yaml.safe_dump({"kind": "List", "items": inventory}))
    base = [*_heps(nodes), *_policies(rnd, policies, namespaces)]
    head = [dict(p) for p in base]
    for i in rnd.sample(range(nodes, len(head)), 10):
        head[i] = _edited(rnd, head[i])
    del head[-2:]
    head += _policies(random.Random(seed + 1), 2, namespaces, prefix="new")
    for name, objs in (("base", base), ("head", head)):
        (root / name).mkdir()
        for start in range(0, len(objs), 500):  # the loader caps YAML nodes per file
            chunk = objs[start : start + 500]
            (root / name / f"policies-{start:06}.yaml").write_text(yaml.safe_dump_all(chunk))


def _inventory(rnd: random.Random, *, pods: int, namespaces: int, nodes: int) -> list[Any]:
    out: list[Any] = []
    for n in range(nodes):
        labels = {"role": "control" if n < 3 else "worker", "zone": f"z{n % 3}"}
        address = [{"type": "InternalIP", "address": f"10.240.{n // 250}.{n % 250 + 1}"}]
        out.append(
            {
                "kind": "Node",
                "metadata": {"name": f"node-{n}", "labels": labels},
                "status": {"addresses": address},
            }
        )
    for k in range(namespaces):
        labels = {"team": f"t{k % 10}", "project": f"p{k % 5}", "env": rnd.choice(["dev", "prod"])}
        out.append({"kind": "Namespace", "metadata": {"name": f"ns-{k}", "labels": labels}})
    for i in range(pods):
        ns, app = f"ns-{i % namespaces}", f"app-{(i // namespaces) % 5}"
        ports = [
            {"name": "http", "containerPort": 8080},
            {"name": "metrics", "containerPort": 9090},
        ]
        out.append(
            {
                "kind": "Pod",
                "metadata": {
                    "name": f"pod-{i}",
                    "namespace": ns,
                    "labels": {"app": app, "tier": rnd.choice(["web", "db"])},
                },
                "spec": {
                    "nodeName": f"node-{rnd.randrange(nodes)}",
                    "containers": [{"name": "c", "ports": ports}],
                },
                "status": {"podIP": f"192.168.{i // 250}.{i % 250 + 1}"},
            }
        )
    return out


def _heps(nodes: int) -> list[Any]:
    return [
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "HostEndpoint",
            "metadata": {
                "name": f"node-{n}-hep",
                "labels": {"host-endpoint": "", "role": "control" if n < 3 else "worker"},
            },
            "spec": {
                "node": f"node-{n}",
                "interfaceName": "*",
                "expectedIPs": [f"10.240.{n // 250}.{n % 250 + 1}"],
                "profiles": ["projectcalico-default-allow"],
            },
        }
        for n in range(nodes)
    ]


def _policies(rnd: random.Random, count: int, namespaces: int, prefix: str = "p") -> list[Any]:
    return [(_knp if i % 2 else _gnp)(rnd, f"{prefix}-{i}", namespaces) for i in range(count)]


def _ports(rnd: random.Random) -> list[Any]:
    return rnd.sample([80, 443, 5432, 6379, 8080, "http", "metrics"], rnd.randint(1, 3))


def _knp(rnd: random.Random, name: str, namespaces: int) -> Any:
    peer = rnd.choice(
        [
            {"podSelector": {"matchLabels": {"app": f"app-{rnd.randrange(5)}"}}},
            {"namespaceSelector": {"matchLabels": {"team": f"t{rnd.randrange(10)}"}}},
            {"ipBlock": {"cidr": f"10.{rnd.randrange(256)}.{rnd.randrange(256)}.0/24"}},
        ]
    )
    ports = [{"port": p} for p in _ports(rnd)]
    section = rnd.choice(["ingress", "egress"])
    spec = {
        "podSelector": {"matchLabels": {"app": f"app-{rnd.randrange(5)}"}},
        "policyTypes": [section.capitalize()],
        section: [{"from" if section == "ingress" else "to": [peer], "ports": ports}],
    }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": f"ns-{rnd.randrange(namespaces)}"},
        "spec": spec,
    }


def _gnp(rnd: random.Random, name: str, namespaces: int) -> Any:
    host = rnd.random() < 0.1
    rule: dict[str, Any] = {
        "action": rnd.choice(["Allow", "Allow", "Deny", "Pass"]),
        "protocol": "TCP",
        "destination": {"ports": [p for p in _ports(rnd) if isinstance(p, int)] or [80]},
    }
    rule["source"] = rnd.choice(
        [
            {"selector": f"app == 'app-{rnd.randrange(5)}'"},
            {"namespaceSelector": f"project == 'p{rnd.randrange(5)}'"},
            {"nets": [f"172.{16 + rnd.randrange(16)}.{rnd.randrange(256)}.0/24"]},
        ]
    )
    spec: dict[str, Any] = {
        "order": rnd.choice([10, 100, 500, 1000, 2000]),
        "types": ["Ingress"],
        "ingress": [rule],
    }
    if host:
        spec |= {"selector": "role == 'worker'", "applyOnForward": True}
    else:
        spec |= {
            "selector": f"tier == '{rnd.choice(['web', 'db'])}'",
            "namespaceSelector": f"team == 't{rnd.randrange(10)}'",
        }
    return {
        "apiVersion": "projectcalico.org/v3",
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }


def _edited(rnd: random.Random, obj: Any) -> Any:
    body = json.loads(json.dumps(obj))
    rules = body["spec"].get("ingress") or body["spec"].get("egress")
    if body["kind"] == "NetworkPolicy":
        rules[0]["ports"] = [{"port": rnd.choice([22, 25, 3306])}]
    else:
        rules[0]["destination"]["ports"] = [rnd.choice([22, 25, 3306])]
    return body


# --- phases -------------------------------------------------------------------------------


def run_phase(phase: str, root: Path) -> dict[str, Any]:
    start = time.perf_counter()
    inv = read_inventory(root / "inventory.yaml")
    facts = Facts(inv.nodes, inv.namespaces, inv.pods, inv.service_accounts)
    base = world_of(root / "base", facts, flavour=Flavour())
    loaded = time.perf_counter()
    extra: dict[str, Any] = {}
    if phase == "eval":
        result = evaluate(
            base,
            parse_peer("pod:ns-1/pod-1"),
            parse_peer("pod:ns-2/pod-2"),
            parse_packet("tcp/8080"),
        )
        extra["verdict"] = str(result.verdict)
    elif phase == "map":
        extra["rows"] = len(reach_map(base).rows)
    elif phase == "diff":
        head = world_of(root / "head", facts, flavour=Flavour())
        found = diff(base, head)
        extra |= {"changes": len(found.changes), "classes": found.classes, "pairs": found.pairs}
    done = time.perf_counter()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "phase": phase,
        "load_s": round(loaded - start, 2),
        "work_s": round(done - loaded, 2),
        "total_s": round(done - start, 2),
        "peak_rss_mb": round(rss),
        **extra,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.connectivity")
    parser.add_argument("--sizes", default="300:1000,5000:10000", help="pods:policies,...")
    parser.add_argument("--phase")
    parser.add_argument("--root")
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(run_phase(args.phase, Path(args.root))))
        return
    for size in args.sizes.split(","):
        pods, policies = (int(x) for x in size.split(":"))
        root = Path(tempfile.mkdtemp(prefix=f"bench-conn-{pods}-"))
        write_cluster(root, pods=pods, policies=policies)
        for phase in PHASES:
            out = subprocess.run(
                [sys.executable, "-m", "bench.connectivity", "--phase", phase, "--root", str(root)],
                capture_output=True,
                text=True,
                check=False,
            )
            row = (
                json.loads(out.stdout)
                if out.returncode == 0
                else {"phase": phase, "error": out.stderr[-500:]}
            )
            print(json.dumps({"pods": pods, "policies": policies, **row}), flush=True)


if __name__ == "__main__":
    main()
