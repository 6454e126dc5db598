"""Helpers for tests on the real dataplane: the cluster, its namespaces, clean-up."""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.localcluster import ClusterInfo, Dataplane, kubectl

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
