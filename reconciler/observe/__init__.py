"""observe: every cluster read planning needs, returned as values.

    facts = read_facts(cluster, calico=(3, 31), applyset=aset, wanted=Wanted(nodes=True))
    objects = read_objects(cluster, facts, applyset=aset, inventory=inv, desired=desired)
    observed = Observed(facts, objects)     # what `pipeline.plan_observed` plans against

Offline, `offline_facts(calico, nodes=..., namespaces=...)` stands in for `read_facts`
(an empty cluster with Calico's CRDs); the planner never tells the two apart.
"""

from reconciler.cluster.types import Types
from reconciler.observe.facts import OFFLINE_TARGET, Facts, Objects, Observed, offline_facts
from reconciler.observe.live import GET_LIMIT, read_objects
from reconciler.observe.read import (
    CalicoMissing,
    Wanted,
    detect_flavour,
    discover,
    read_facts,
    read_kube_controllers,
    read_namespaces,
    read_nodes,
    read_pods,
    read_service_accounts,
)

__all__ = [
    "GET_LIMIT",
    "OFFLINE_TARGET",
    "CalicoMissing",
    "Facts",
    "Objects",
    "Observed",
    "Types",
    "Wanted",
    "detect_flavour",
    "discover",
    "offline_facts",
    "read_facts",
    "read_kube_controllers",
    "read_namespaces",
    "read_nodes",
    "read_objects",
    "read_pods",
    "read_service_accounts",
]
