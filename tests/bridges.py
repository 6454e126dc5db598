"""Tests share one control plane: a make-before-break bridge that a test leaves behind on
purpose (a run stopped half-way keeps its flows open until its ApplySet runs again) would
keep flows open for every later test. The `cluster` fixtures remove any before a test."""

from __future__ import annotations

from reconciler.cluster.client import Cluster, ResourceType
from reconciler.plan import bridge


def remove_left_bridges(cluster: Cluster) -> list[str]:
    """Delete every bridge (policy, then tier) in the cluster; their names."""
    removed = []
    for api in ("crd.projectcalico.org/v1", "projectcalico.org/v3"):
        types = cluster.resources(api) or {}
        tiers, policies = types.get("Tier"), types.get("GlobalNetworkPolicy")
        if tiers is None or policies is None:
            continue
        for tier in cluster.list(tiers):
            name = str(tier.get("metadata", {}).get("name", ""))
            if bridge.is_bridge_object("Tier", name):
                _delete(cluster, policies, bridge.policy_name(name))
                _delete(cluster, tiers, name)
                removed.append(name)
    return removed


def _delete(cluster: Cluster, rtype: ResourceType, name: str) -> None:
    if cluster.get(rtype, name) is not None:
        cluster.delete(rtype, name, "")
