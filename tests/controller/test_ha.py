"""Processes, not threads: `policy-reconciler run` replicas with leader election, SIGKILL
and SIGTERM at awkward moments. The audit log tells replicas apart by user agent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.applyset import ApplySet
from reconciler.cluster.client import LEASES, USER_AGENT, Cluster
from reconciler.controller.status import read_status
from reconciler.localcluster import ClusterInfo
from tests.audit import AuditLog
from tests.cluster.engine import gnp, hep
from tests.controller.helpers import HEP, eventually, order_of, policy_yaml
from tests.source.repos import Upstream

pytestmark = pytest.mark.cluster
LEASE = ["--leader-elect", "--leader-lease-duration", "3s", "--leader-renew-interval", "1s",
         "--leader-retry-period", "0.5s"]  # fmt: skip
MANY = 200


class Replicas:
    """`policy-reconciler run` subprocesses; whatever is left is killed at teardown."""

    def __init__(
        self, info: ClusterInfo, upstream: Upstream, applyset: ApplySet, tmp: Path, uid: str
    ) -> None:
        self.info, self.upstream, self.applyset, self.tmp, self.uid = (
            info,
            upstream,
            applyset,
            tmp,
            uid,
        )
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def agent(self, name: str) -> str:
        return f"{USER_AGENT} ctl/{self.uid}-{name}"

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        argv = [
            sys.executable,
            "-m",
            "reconciler",
            "run",
            "--repo",
            str(self.upstream.bare),
            "--kubeconfig",
            self.info.kubeconfig,
            "--namespace",
            self.applyset.namespace,
            "--applyset",
            self.applyset.name,
            "--cache-dir",
            str(self.tmp / f"cache-{name}"),
            "--identity",
            f"{self.uid}-{name}",
            "--log-format",
            "json",
            *args,
        ]
        env = {**os.environ, "POLICY_RECONCILER_USER_AGENT_SUFFIX": f"ctl/{self.uid}-{name}"}
        with (self.tmp / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text()

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


@pytest.fixture
def replicas(
    control_plane: ClusterInfo, upstream: Upstream, applyset: ApplySet, tmp_path: Path, uid: str
) -> Iterator[Replicas]:
    r = Replicas(control_plane, upstream, applyset, tmp_path, uid)
    yield r
    r.stop_all()


def _holder(cluster: Cluster, applyset: ApplySet) -> str:
    lease = cluster.get(LEASES, f"{applyset.name}-leader", applyset.namespace)
    return str((lease or {}).get("spec", {}).get("holderIdentity") or "")


def _writes(audit: AuditLog, agent: str, since: int) -> list[tuple[str, str]]:
    return [
        (r.resource, r.name) for r in audit.requests(user_agent=agent, since=since) if r.is_write
    ]


def test_only_the_leader_writes_and_a_standby_takes_over_when_it_dies(
    replicas: Replicas,
    upstream: Upstream,
    cluster: Cluster,
    applyset: ApplySet,
    audit: AuditLog,
    uid: str,
) -> None:
    upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh"))})
    start = audit.mark()
    replicas.start("a", "--interval", "2s", *LEASE)
    eventually(lambda: _holder(cluster, applyset) == f"{uid}-a", timeout=30, what="a leads")
    replicas.start("b", "--interval", "2s", *LEASE)
    eventually(lambda: order_of(cluster, f"{uid}-ssh") == 10, timeout=30, what="a applied")
    eventually(lambda: "controller starting" in replicas.log("b"), timeout=30, what="b runs")
    upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh", order=20))})
    eventually(lambda: order_of(cluster, f"{uid}-ssh") == 20, timeout=15, what="a applied it")

    a_writes = _writes(audit, replicas.agent("a"), start)
    assert ("globalnetworkpolicies", f"default.{uid}-ssh") in a_writes
    assert _writes(audit, replicas.agent("b"), start) == []  # not even the Lease
    assert any(
        r.resource == "leases" for r in audit.requests(user_agent=replicas.agent("b"), since=start)
    )  # b did campaign

    replicas.procs["a"].kill()  # SIGKILL: no release, b must wait the lease out
    killed = time.monotonic()
    eventually(lambda: _holder(cluster, applyset) == f"{uid}-b", timeout=20, what="b takes over")
    assert time.monotonic() - killed <= 3 + 0.5 + 2.0  # lease duration + retry + slack
    upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh", order=30))})
    mark = audit.mark()
    eventually(lambda: order_of(cluster, f"{uid}-ssh") == 30, timeout=15, what="b applied it")
    assert ("globalnetworkpolicies", f"default.{uid}-ssh") in _writes(
        audit, replicas.agent("b"), mark
    )


def _many_host_endpoints(upstream: Upstream, uid: str) -> None:
    docs = [
        hep(f"{uid}-h{i:03d}", f"node-{i % 3 + 1}", f"10.1.{i // 250}.{i % 250 + 1}")
        for i in range(MANY)
    ]
    upstream.commit({"hosts.yaml": policy_yaml(gnp(f"{uid}-ssh"), *docs)})


def _managed_heps(cluster: Cluster, applyset: ApplySet) -> int:
    return len(cluster.list(HEP, label_selector=applyset.selector))


def _first_hep_write(audit: AuditLog, agent: str, since: int) -> Any:
    return [w for w in _writes(audit, agent, since) if w[0] == "hostendpoints"]


def test_sigkill_in_the_middle_of_an_apply_then_a_restart_converges(
    replicas: Replicas,
    upstream: Upstream,
    cluster: Cluster,
    applyset: ApplySet,
    audit: AuditLog,
    uid: str,
) -> None:
    _many_host_endpoints(upstream, uid)
    start = audit.mark()
    first = replicas.start("k1", "--once")
    eventually(
        lambda: _first_hep_write(audit, replicas.agent("k1"), start),
        timeout=60,
        what="the first host endpoint written",
    )
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    partial = _managed_heps(cluster, applyset)
    assert 0 < partial < MANY, f"killed too late to test anything: {partial} written"

    again = replicas.start("k2", "--once")
    assert again.wait(120) == 0, replicas.log("k2")
    assert _managed_heps(cluster, applyset) == MANY
    assert order_of(cluster, f"{uid}-ssh") == 10
    mark = audit.mark()
    third = replicas.start("k3", "--once")
    assert third.wait(120) == 0
    assert '"reason": "UpToDate"' in replicas.log("k3")
    assert _writes(audit, replicas.agent("k3"), mark) == []


def test_sigterm_stops_between_writes_releases_the_lease_and_exits_0(
    replicas: Replicas,
    upstream: Upstream,
    cluster: Cluster,
    applyset: ApplySet,
    audit: AuditLog,
    uid: str,
) -> None:
    _many_host_endpoints(upstream, uid)
    start = audit.mark()
    proc = replicas.start("t1", "--interval", "1h", *LEASE)
    eventually(
        lambda: _first_hep_write(audit, replicas.agent("t1"), start),
        timeout=60,
        what="the first host endpoint written",
    )
    proc.send_signal(signal.SIGTERM)
    stopped = time.monotonic()
    assert proc.wait(30) == 0, replicas.log("t1")
    assert time.monotonic() - stopped < 10
    partial = _managed_heps(cluster, applyset)
    assert 0 < partial < MANY, f"the whole plan ran after SIGTERM: {partial} written"
    assert _holder(cluster, applyset) == ""  # released: a standby need not wait it out
    last = read_status(cluster, applyset).runs[0]
    assert last.reason.value == "Interrupted"
    # The bridge (a Tier and its policy, plan/safe.py), the policy, then hosts; the bridge
    # goes again at the end.
    assert f"after {partial + 3} of {MANY + 5}" in last.message

    again = replicas.start("t2", "--once")
    assert again.wait(120) == 0, replicas.log("t2")
    assert _managed_heps(cluster, applyset) == MANY
