"""Run a test module on both Calico API flavours, each against its own real control plane.

- `crd`: kube-apiserver with Calico's CRDs only; we write crd.projectcalico.org/v1 as
  calicoctl stores it.
- `v3`: the same plus Calico's real API server (aggregated projectcalico.org/v3); we
  write v3 as the user wrote it and Calico's own code validates, defaults and stores it.

A module opts in by importing `plane`, `cluster` and `audit` from here (they shadow the
session-wide fixtures of tests/conftest.py for that module only).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.cluster.client import Cluster, Connection, ResourceType
from reconciler.localcluster import ClusterInfo
from tests.audit import AuditLog
from tests.bridges import remove_left_bridges

CRD = "crd.projectcalico.org"
V3 = "projectcalico.org"


@dataclass(frozen=True, slots=True)
class Plane:
    """One control plane and how Calico objects look through its API."""

    flavour: str  # "crd" or "v3"
    info: ClusterInfo

    @property
    def group(self) -> str:
        return CRD if self.flavour == "crd" else V3

    def rtype(self, kind: str, plural: str, *, namespaced: bool = False) -> ResourceType:
        version = "v1" if self.flavour == "crd" else "v3"
        return ResourceType(self.group, version, kind, plural, namespaced)

    @property
    def gnp(self) -> ResourceType:
        return self.rtype("GlobalNetworkPolicy", "globalnetworkpolicies")

    @property
    def hep(self) -> ResourceType:
        return self.rtype("HostEndpoint", "hostendpoints")

    def policy(self, name: str) -> str:
        """A default-tier policy's name as this API serves it (CRDs keep the tier prefix)."""
        return f"default.{name}" if self.flavour == "crd" else name


@pytest.fixture(params=["crd", "v3"])
def plane(request: pytest.FixtureRequest) -> Plane:
    fixture = "control_plane" if request.param == "crd" else "v3_control_plane"
    return Plane(request.param, request.getfixturevalue(fixture))


@pytest.fixture
def cluster(plane: Plane, user_agent: str) -> Iterator[Cluster]:
    c = Cluster.connect(Connection(kubeconfig=plane.info.kubeconfig, user_agent=user_agent))
    remove_left_bridges(c)
    yield c
    c.close()


@pytest.fixture
def audit(plane: Plane) -> AuditLog:
    return AuditLog(Path(plane.info.audit_log), plane.info.kubeconfig)
