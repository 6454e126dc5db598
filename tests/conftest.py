"""Shared fixtures. Cluster tests run against ONE real etcd + kube-apiserver per test run;
tests that need Calico's API server or its dataplane get their own control plane with it
(started once per run, only when such a test is collected).

If a control plane cannot start, every test using it errors (it never skips):
a green run must mean the real API server (and Calico's parts) were exercised.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from reconciler import localcluster
from reconciler.cluster.client import USER_AGENT, Cluster, Connection
from tests.audit import AuditLog
from tests.bridges import remove_left_bridges

# Property tests judge behaviour, never speed: on a loaded 2-core CI machine hypothesis's
# timing checks (deadline, too_slow) would fail tests whose properties hold.
settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("default")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that uses the control plane, directly or through a fixture, is marked
    `cluster`, so `make unit` (`-m "not cluster"`) is the fast loop without one."""
    for item in items:
        if "control_plane" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.cluster)


def _progress(message: str) -> None:
    print(message, file=sys.stderr)


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[localcluster.ClusterInfo]:
    state = Path(os.environ.get("POLICY_RECONCILER_TEST_STATE") or tmp_path_factory.mktemp("cp"))
    info = localcluster.up(state, nodes=3, progress=_progress)
    _namespace(info, RECONCILER_NAMESPACE)
    yield info
    localcluster.down(state)


@pytest.fixture(scope="session")
def v3_control_plane(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[localcluster.ClusterInfo]:
    """A second control plane with Calico's real API server (projectcalico.org/v3)."""
    state = tmp_path_factory.mktemp("cp-v3")
    try:
        info = localcluster.up(state, nodes=3, calico_apiserver=True, progress=_progress)
        _namespace(info, RECONCILER_NAMESPACE)
        yield info
    finally:
        localcluster.down(state)


@pytest.fixture
def uid(request: pytest.FixtureRequest) -> str:
    """A short name prefix unique to this test (namespaces never finish deleting here)."""
    digest = hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:6]
    return f"t{digest}"


@pytest.fixture
def user_agent(uid: str) -> str:
    return f"{USER_AGENT} test/{uid}"


@pytest.fixture
def cluster(control_plane: localcluster.ClusterInfo, user_agent: str) -> Iterator[Cluster]:
    c = Cluster.connect(Connection(kubeconfig=control_plane.kubeconfig, user_agent=user_agent))
    remove_left_bridges(c)
    yield c
    c.close()


@pytest.fixture
def audit(control_plane: localcluster.ClusterInfo) -> AuditLog:
    return AuditLog(Path(control_plane.audit_log), control_plane.kubeconfig)


RECONCILER_NAMESPACE = "policy-reconciler"


@pytest.fixture(scope="session")
def reconciler_namespace() -> str:
    """The reconciler's own namespace (ApplySet parents, status, events, leases), which every
    control plane fixture creates when it starts (a module's own plane included)."""
    return RECONCILER_NAMESPACE


def _namespace(info: localcluster.ClusterInfo, name: str) -> None:
    body = f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n"
    localcluster.kubectl(info, "apply", "-f", "-", stdin=body)
