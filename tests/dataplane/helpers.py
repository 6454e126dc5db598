"""Helpers for tests on the real dataplane: the cluster, its namespaces, clean-up."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from reconciler import pipeline
from reconciler.cluster.client import Cluster
from reconciler.localcluster import ClusterInfo, Dataplane, kubectl
from reconciler.localcluster.dataplane import (
    CALICO_FAILSAFE_IN,
    CALICO_FAILSAFE_OUT,
    restart_felix,
    ruleset,
    wait_settled,
)
from reconciler.model import ApplyResult, Change
from reconciler.pipeline import Planned, Settings

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


def apply_settled(net: Net, cluster: Cluster, planned: Planned, settings: Settings) -> ApplyResult:
    """Apply one write at a time, each held until Felix has rendered it, so that every
    intermediate state is really in force for a while (what the probe loops watch)."""
    nodes = [n.netns for n in net.dp.nodes]
    seen = {n: ruleset(n) for n in nodes}

    def settle(change: Change, _: str) -> None:
        wait_settled(nodes, seen)
        seen.update({n: ruleset(n) for n in nodes})

    one_by_one = replace(planned.plan, order=replace(planned.plan.order, one_by_one=True))
    return pipeline.apply(cluster, replace(planned, plan=one_by_one), settings, progress=settle)
