"""The objects every tool applies: `bench.generate`'s repo, as we read it (v3 YAML) and as
the peers must be given it (the crd.projectcalico.org/v1 bodies we write), plus the
repo's 1% change and the one object the drift phase edits out of band."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.generate import write_repo
from reconciler.calico.flavour import crd_flavour
from reconciler.manifests.loader import load_dir

CHANGE_LABEL = "bench.policy-reconciler.io/change"


@dataclass(frozen=True, slots=True)
class Repos:
    ours: Path  # v3 YAML, what `policy-reconciler apply` reads
    peers: Path  # the same objects in their CRD form, what Flux and kubectl apply
    ours_changed: Path  # 1% of the objects relabelled
    peers_changed: Path
    namespaces: tuple[str, ...]
    drift: tuple[str, str, str]  # resource, namespace ("" if cluster-scoped), name
    changed: int


def write(root: Path, n: int, *, prefix: str) -> Repos:
    ours, peers = root / "ours", root / "peers"
    ours_changed, peers_changed = root / "ours-changed", root / "peers-changed"
    for d in (ours, peers, ours_changed, peers_changed):
        d.mkdir(parents=True)
    namespaces = write_repo(ours, n, prefix=prefix)
    changed = _write_changed(ours, ours_changed)
    bodies = _crd_bodies(ours)
    _dump(peers / "objects.yaml", bodies)
    _dump(peers_changed / "objects.yaml", _crd_bodies(ours_changed))
    drift = _drift_target(bodies)
    return Repos(ours, peers, ours_changed, peers_changed, tuple(namespaces), drift, changed)


def _write_changed(source: Path, target: Path) -> int:
    """Copy the repo with every hundredth object labelled: the 1% change."""
    changed = seen = 0
    for path in sorted(source.glob("*.yaml")):
        docs = list(yaml.safe_load_all(path.read_text()))
        for doc in docs:
            if seen % 100 == 0:
                doc["metadata"].setdefault("labels", {})[CHANGE_LABEL] = "one-percent"
                changed += 1
            seen += 1
        (target / path.name).write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return changed


def _crd_bodies(repo: Path) -> list[dict[str, Any]]:
    loaded = load_dir(repo)
    if loaded.findings:
        raise SystemExit(f"the generated repo has findings: {loaded.findings[:3]}")
    flavour = crd_flavour()
    return [flavour.to_cluster(res) for res in loaded.resources]


def _dump(path: Path, bodies: list[dict[str, Any]]) -> None:
    # JSON documents are YAML; json.dumps is ten times faster than PyYAML at 10,000 objects.
    path.write_text("".join(f"---\n{json.dumps(body)}\n" for body in bodies))


def _drift_target(bodies: list[dict[str, Any]]) -> tuple[str, str, str]:
    gnp = next(b for b in bodies if b["kind"] == "GlobalNetworkPolicy")
    return "globalnetworkpolicies.crd.projectcalico.org", "", gnp["metadata"]["name"]
