"""A control plane with Felix per node in network namespaces, shared by the dataplane tests.

It is a control plane of its own: Felix enforces every HostEndpoint and policy it sees,
so the engine tests' objects must never reach it. Needs root and iptables: where they
are missing the tests fail with what to install (they never skip).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler import localcluster
from reconciler.cluster.client import Cluster, Connection
from reconciler.localcluster import dataplane, procs
from reconciler.localcluster.probe import wait_verdict
from tests.cluster.engine import Repo
from tests.dataplane.helpers import Net, delete_calico_objects


@pytest.fixture(scope="session")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    try:
        dataplane.check_host()
    except dataplane.DataplaneError as exc:
        pytest.fail(f"the real dataplane tests cannot run here: {exc}")
    state = tmp_path_factory.mktemp("cp-dp")
    try:
        info = localcluster.up(state, nodes=3, dataplane=True, progress=_progress)
        loaded = dataplane.load(state)
        assert loaded is not None
        localcluster.kubectl(info, "create", "namespace", "policy-reconciler")
        yield Net(info, loaded)
    finally:
        made = dataplane.load(state)  # as recorded last (Felix restarts change pids)
        localcluster.down(state)
    assert made is not None
    _assert_cleaned_up(made)


def _assert_cleaned_up(made: dataplane.Dataplane) -> None:
    """`down` removed every namespace (with its veths) and stopped every process."""
    left = sorted(p.name for p in Path("/var/run/netns").glob(f"{made.prefix}-*"))
    assert left == [], f"network namespaces left behind: {left}"
    running = [(pid, prog) for pid, prog in made.pids if procs.alive(pid, prog)]
    assert running == [], f"processes left running: {running}"


def _progress(message: str) -> None:
    print(message, file=sys.stderr)


@pytest.fixture
def dp_cluster(net: Net, user_agent: str) -> Iterator[Cluster]:
    """The dataplane cluster, left with no Calico policy or endpoint after each test."""
    c = Cluster.connect(Connection(kubeconfig=net.info.kubeconfig, user_agent=user_agent))
    yield c
    delete_calico_objects(net.info)
    for node in net.dp.nodes:  # unpoliced again: every port answers
        wait_verdict(net.dp.admin, node.ip, 8080, allowed=True)
    c.close()


EXAMPLE = Path(__file__).resolve().parents[2] / "example-repo"
ADMIN_NETWORK = "172.30.0.0/24"  # the admin namespace's range


@pytest.fixture
def repo(tmp_path: Path, uid: str) -> Repo:
    """The example repo's hosts/ and network sets, with its admin network (a documentation
    range) replaced by the admin namespace's private range."""
    root = tmp_path / "repo"
    shutil.copytree(EXAMPLE / "hosts", root / "hosts")
    sets = (EXAMPLE / "global" / "network-sets.yaml").read_text()
    assert "203.0.113.0/24" in sets
    (root / "global").mkdir()
    (root / "global" / "network-sets.yaml").write_text(
        sets.replace("203.0.113.0/24", ADMIN_NETWORK)
    )
    return Repo(root, uid)
