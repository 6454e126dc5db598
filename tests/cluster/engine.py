"""Helpers for engine tests: write a policy repo, run the pipeline, read the result."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from reconciler import pipeline
from reconciler.applyset import ApplySet
from reconciler.cluster.client import Cluster
from reconciler.model import Action, ApplyResult, Plan, Revision
from reconciler.plan import PlanOptions

NAMESPACE = "policy-reconciler"


@dataclass
class Repo:
    """A policy repo on disk whose object names are prefixed with the test's uid."""

    root: Path
    uid: str

    def write(self, name: str, *docs: dict[str, Any]) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        return path

    def text(self, name: str, text: str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def remove(self, name: str) -> None:
        (self.root / name).unlink()

    def settings(
        self, *, skip_checks: frozenset[str] = frozenset(), **options: Any
    ) -> pipeline.Settings:
        return pipeline.Settings(
            applyset=ApplySet(f"{self.uid}-set", NAMESPACE),
            options=PlanOptions(**options),
            skip_checks=skip_checks,
        )


def reconcile(
    cluster: Cluster, repo: Repo, *, dry_run: bool = False, **options: Any
) -> tuple[Plan, ApplyResult]:
    settings = repo.settings(**options)
    rendered = pipeline.render(repo.root, Revision("dir:test", str(repo.root)), settings)
    planned = pipeline.plan(cluster, rendered, settings)
    return planned.plan, pipeline.apply(cluster, planned, settings, dry_run=dry_run)


def plan_only(cluster: Cluster, repo: Repo, **options: Any) -> Plan:
    settings = repo.settings(**options)
    rendered = pipeline.render(repo.root, Revision("dir:test", str(repo.root)), settings)
    return pipeline.plan(cluster, rendered, settings).plan


def actions(plan: Plan) -> dict[str, Action]:
    return {str(c.ref): c.action for c in plan.changes}


def gnp(name: str, *, order: int = 10, action: str = "Allow", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "projectcalico.org/v3",
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": name},
        "spec": {
            "order": order,
            "selector": "has(host-endpoint)",
            "ingress": [{"action": action, "protocol": "TCP", "destination": {"ports": [22]}}],
            **spec,
        },
    }


def hep(name: str, node: str, ip: str) -> dict[str, Any]:
    return {
        "apiVersion": "projectcalico.org/v3",
        "kind": "HostEndpoint",
        "metadata": {"name": name, "labels": {"host-endpoint": "ingress"}},
        "spec": {"node": node, "interfaceName": "*", "expectedIPs": [ip]},
    }


def k8s_np(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"], **spec},
    }


def without(body: dict[str, Any], *path: str) -> dict[str, Any]:
    """A copy of body without the field at path."""
    if len(path) == 1:
        return {k: v for k, v in body.items() if k != path[0]}
    return {**body, path[0]: without(body[path[0]], *path[1:])}


__all__ = ["replace"]
