"""The real controller process, with the chart's args, authenticated as the chart's
ServiceAccount by a real token: everything it does is allowed, and it does everything.

`policy-reconciler run` runs as the Deployment would start it (args rendered by Helm, in-pod
paths mapped to a temp dir, POD_NAME set), against a local git repo, with a kubeconfig holding
a TokenRequest token of the ServiceAccount (no impersonation). It must win the Lease, apply,
record status and an Event, follow its parent's suspend annotation through its watch, and
release the Lease on SIGTERM, and the audit log must show no request refused.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reconciler.applyset import SUSPEND
from reconciler.cluster.client import CONFIGMAPS, EVENTS, LEASES, NAMESPACES, Cluster
from reconciler.localcluster import ClusterInfo, kubectl
from tests.audit import AuditLog
from tests.chart.conftest import Install
from tests.chart.helm import Release, local_args, template
from tests.cluster.engine import gnp, k8s_np
from tests.controller.helpers import GNP, eventually, policy_yaml
from tests.source.repos import Upstream


@pytest.fixture(scope="module")
def own_release(install: Install) -> Release:
    """A release of its own: its ApplySet is not shared with the engine tests."""
    return install("ctl", "ha-values.yaml")


def _sa_kubeconfig(info: ClusterInfo, release: Release, path: Path) -> Path:
    token = kubectl(
        info, "create", "token", release.name, "-n", release.namespace, "--duration=1h"
    ).strip()
    admin = json.loads(Path(info.kubeconfig).read_text())
    admin["users"] = [{"name": "sa", "user": {"token": token}}]
    admin["contexts"] = [{"name": "sa", "context": {"cluster": "local", "user": "sa"}}]
    admin["current-context"] = "sa"
    path.write_text(json.dumps(admin))
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True, slots=True)
class Started:
    proc: subprocess.Popen[str]
    log: Path
    audit_start: int  # audit log offset before the process started

    def alive(self) -> None:
        assert self.proc.poll() is None, self.log.read_text()[-3000:]


@pytest.fixture
def controller(
    control_plane: ClusterInfo,
    own_release: Release,
    helm: str,
    tmp_path: Path,
    uid: str,
    cluster: Cluster,
    audit: AuditLog,
) -> Iterator[Started]:
    app = f"{uid}-app"
    cluster.apply(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": app}})
    upstream = Upstream.create(tmp_path)
    upstream.commit({"policies.yaml": policy_yaml(gnp(f"{uid}-ssh"), k8s_np(f"{uid}-deny", app))})
    args = template(
        helm, "ha-values.yaml", release=own_release.name, namespace=own_release.namespace,
        sets=[f"git.repo=file://{upstream.bare}", f"applySet.name={own_release.applyset.name}",
              f"metrics.port={_free_port()}"],
    ).args()  # fmt: skip
    assert "--leader-elect" in args
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBERNETES_", "GIT_"))}
    env.update(
        KUBECONFIG=str(_sa_kubeconfig(control_plane, own_release, tmp_path / "sa.kubeconfig")),
        POD_NAME=f"{uid}-pod-a",
        HOME=str(tmp_path),
        TMPDIR=str(tmp_path),
        POLICY_RECONCILER_USER_AGENT_SUFFIX=f"test/{uid}",
    )
    binary = Path(sys.executable).parent / "policy-reconciler"
    log = tmp_path / "controller.log"
    start = audit.mark()
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(binary), "run", *local_args(args, tmp_path / "pod")],
            env=env, stdout=out, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        yield Started(proc, log, start)
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_controller_runs_under_the_chart_rbac(
    controller: Started,
    own_release: Release,
    cluster: Cluster,
    control_plane: ClusterInfo,
    audit: AuditLog,
    uid: str,
) -> None:
    ns, parent = own_release.namespace, own_release.applyset.name
    alive = controller.alive

    def lease_holder() -> str:
        alive()
        lease = cluster.get(LEASES, own_release.lease, ns)
        return str((lease or {}).get("spec", {}).get("holderIdentity") or "")

    eventually(lambda: lease_holder() == f"{uid}-pod-a", timeout=60, what="the Lease is won")
    eventually(lambda: alive() or cluster.get(GNP, f"default.{uid}-ssh"), timeout=60,
               what="the policy is applied")  # fmt: skip
    status = eventually(lambda: _runs(cluster, ns, parent), timeout=30, what="a status record")
    assert status[-1]["result"] == "applied", status  # the oldest run: the first apply
    assert eventually(lambda: _events(cluster, ns, parent), timeout=30, what="an Event")

    kubectl(control_plane, "annotate", "-n", ns, "configmap", parent, f"{SUSPEND}=true")
    suspended = eventually(
        lambda: alive() or [r for r in _runs(cluster, ns, parent) if r["result"] == "suspended"],
        timeout=30, what="the watch on the parent sees the suspend annotation",
    )  # fmt: skip
    assert suspended

    controller.proc.send_signal(signal.SIGTERM)
    assert controller.proc.wait(30) == 0, controller.log.read_text()[-3000:]
    assert lease_holder_after(cluster, own_release) != f"{uid}-pod-a"  # released on the way out

    seen = _as_user(audit, own_release.user, controller.audit_start)
    refused = [f"{e['verb']} {e['requestURI']}" for e in seen if e["responseStatus"]["code"] == 403]
    assert refused == []
    done = {(e["verb"], e.get("objectRef", {}).get("resource", "")) for e in seen}
    assert {
        ("update", "leases"),  # renew and release
        ("patch", "configmaps"),  # ApplySet parent and status: server-side apply
        ("create", "events"),
        ("watch", "configmaps"),  # the parent, for suspend
        ("list", "globalnetworkpolicies"),
        ("patch", "globalnetworkpolicies"),
        ("patch", "networkpolicies"),
    } <= done, sorted(done)


def lease_holder_after(cluster: Cluster, release: Release) -> str:
    lease = cluster.get(LEASES, release.lease, release.namespace) or {}
    return str(lease.get("spec", {}).get("holderIdentity") or "")


def _runs(cluster: Cluster, ns: str, parent: str) -> list[dict[str, Any]]:
    body = cluster.get(CONFIGMAPS, f"{parent}-status", ns)
    return list(json.loads(((body or {}).get("data") or {}).get("runs.json", "[]")))


def _events(cluster: Cluster, ns: str, parent: str) -> list[dict[str, Any]]:
    page = cluster.request("GET", EVENTS.path(ns), verb="list",
                           query={"fieldSelector": f"involvedObject.name={parent}"})  # fmt: skip
    return list(page.get("items", []))


def _as_user(audit: AuditLog, user: str, since: int) -> list[dict[str, Any]]:
    """Requests authenticated as `user` itself (its token; impersonation shows as admin)."""
    audit.requests(user_agent="", since=since)  # flushes the log
    with audit.path.open("rb") as f:
        f.seek(since)
        events = [json.loads(line) for line in f if line.strip()]
    return [e for e in events if e.get("user", {}).get("username") == user]
