"""Concurrent writes keep the firewall-safe order: each batch is a barrier, and a failed
write stops the run at the end of its batch with what was done reported.

Against the real API server (CRD flavour); the audit log is the witness of what was written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler import pipeline
from reconciler.cluster.client import NAMESPACES, Cluster
from reconciler.model import Action, ApplyResult, Change, Revision, Stop
from tests.audit import AuditLog
from tests.cluster.engine import Repo, gnp, hep, k8s_np

STAGE_OF_RESOURCE = {"globalnetworksets": 0, "hostendpoints": 2}


@pytest.fixture
def repo(tmp_path: Path, uid: str) -> Repo:
    return Repo(tmp_path / "repo", uid)


def _netset(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "projectcalico.org/v3",
        "kind": "GlobalNetworkSet",
        "metadata": {"name": name},
        "spec": {"nets": ["192.0.2.0/24"]},
    }


def _apply(cluster: Cluster, repo: Repo, *, workers: int, progress: Any = None) -> ApplyResult:
    settings = repo.settings()
    rendered = pipeline.render(repo.root, Revision("dir:test", str(repo.root)), settings)
    planned = pipeline.plan(cluster, rendered, settings)
    return pipeline.apply(cluster, planned, settings, workers=workers, progress=progress)


def _stage(resource: str, name: str) -> int:
    if resource == "globalnetworkpolicies":
        return 3 if "-deny-" in name else 1
    return STAGE_OF_RESOURCE[resource]


def test_many_writes_in_flight_and_still_stage_by_stage(
    cluster: Cluster, repo: Repo, uid: str, audit: AuditLog, user_agent: str
) -> None:
    repo.write("sets.yaml", *[_netset(f"{uid}-set-{i}") for i in range(6)])
    repo.write("allow.yaml", *[gnp(f"{uid}-allow-{i}") for i in range(12)])
    repo.write("heps.yaml", *[hep(f"{uid}-hep-{i}", f"n{i}", f"10.9.0.{i}") for i in range(12)])
    repo.write("deny.yaml", *[gnp(f"{uid}-deny-{i}", action="Deny") for i in range(6)])
    start = audit.mark()
    result = _apply(cluster, repo, workers=8)
    # 36 writes are more than plan/safe.py walks state by state: it bridges them (a Tier
    # and a policy written first, removed last), and keeps the stage batches between.
    assert result.ok and len([c for c in result.done if not c.transient]) == 36
    writes = [r for r in audit.requests(user_agent=user_agent, since=start) if r.is_write]
    ours = [r for r in writes if r.resource != "configmaps" and uid in r.name]
    stages = [_stage(r.resource, r.name) for r in ours]
    # In the order the API server completed them: never a later stage before an earlier one.
    assert stages == sorted(stages) and len(stages) == 36
    dry_runs = [r for r in audit.requests(user_agent=user_agent, since=start) if r.dry_run]
    assert len([r for r in dry_runs if uid in r.name]) == 36
    # 72 requests and more through 8 workers, on kept-alive connections: one TLS handshake
    # per worker at most, never one per request (a pool smaller than the workers fails this).
    assert 1 <= cluster.connections_opened() <= 8


def test_a_failed_write_stops_at_its_batch_with_the_done_writes_reported(
    cluster: Cluster, repo: Repo, uid: str, audit: AuditLog, user_agent: str
) -> None:
    doomed = f"{uid}-doomed"
    cluster.apply(
        NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": doomed}}
    )
    repo.write("set.yaml", _netset(f"{uid}-set"))
    allow = [gnp(f"{uid}-allow-{i}") for i in range(4)]
    repo.write("allow.yaml", *allow, k8s_np(f"{uid}-open", doomed, ingress=[{}]))
    repo.write("hep.yaml", hep(f"{uid}-hep", "n1", "10.9.1.1"))
    repo.write("deny.yaml", gnp(f"{uid}-deny", action="Deny"))

    def progress(change: Change, _status: str) -> None:
        # After the dry-run passed and the first batch is written: the namespace starts
        # terminating (no namespace controller here, so it stays so), and the API server
        # refuses to create anything in it.
        if change.ref.kind == "GlobalNetworkSet":
            cluster.request("DELETE", NAMESPACES.path("", doomed), verb="delete")

    start = audit.mark()
    result = _apply(cluster, repo, workers=8, progress=progress)
    assert result.stopped is Stop.FAILED and not result.ok
    assert [f.change.ref.name for f in result.failed] == [f"{uid}-open"]
    done = sorted(c.ref.name for c in result.done)
    assert done == sorted([f"{uid}-set", *[f"{uid}-allow-{i}" for i in range(4)]])
    assert [c.ref.name for c in result.skipped] == [f"{uid}-hep", f"{uid}-deny"]
    assert all(c.action is Action.CREATE for c in result.skipped)
    written = {
        r.name
        for r in audit.requests(user_agent=user_agent, since=start)
        if r.is_write and r.code < 400
    }
    assert f"{uid}-hep" not in written and f"default.{uid}-deny" not in written
    assert {f"default.{uid}-allow-{i}" for i in range(4)} <= written
