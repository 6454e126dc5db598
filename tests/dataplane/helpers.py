"""Helpers for tests on the real dataplane: the cluster, its namespaces, clean-up."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from reconciler.localcluster import ClusterInfo, Dataplane, kubectl
from reconciler.localcluster.dataplane import CALICO_FAILSAFE_IN, CALICO_FAILSAFE_OUT, restart_felix

CALICO_KINDS = (
    "globalnetworkpolicies.crd.projectcalico.org",
    "hostendpoints.crd.projectcalico.org",
    "globalnetworksets.crd.projectcalico.org",
    "networkpolicies.crd.projectcalico.org",
    "networksets.crd.projectcalico.org",
    "kubecontrollersconfigurations.crd.projectcalico.org",
    "networkpolicies.networking.k8s.io",
)


@dataclass(frozen=True, slots=True)
class Net:
    info: ClusterInfo
    dp: Dataplane


def delete_calico_objects(info: ClusterInfo) -> None:
    """Every policy, endpoint and set, so the next test starts from an open dataplane."""
    kubectl(info, "delete", ",".join(CALICO_KINDS), "--all", "--all-namespaces", "--wait=false")


@contextlib.contextmanager
def default_failsafe(net: Net, nodes: Sequence[str]) -> Iterator[None]:
    """These nodes' Felix with Calico's default failsafe ports, then without them again."""
    for node in nodes:
        restart_felix(net.info, node, failsafe=(CALICO_FAILSAFE_IN, CALICO_FAILSAFE_OUT))
    try:
        yield
    finally:
        for node in nodes:
            restart_felix(net.info, node, failsafe=("", ""))
