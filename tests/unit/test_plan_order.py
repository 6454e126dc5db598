"""Firewall-safe stages and apply order (design invariant 4)."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.kinds import Stage
from reconciler.model import Action, Change, ObjectRef, Origin, Resource
from reconciler.plan.order import batches, in_apply_order, stage_of


def ref(kind: str, name: str, *, group: str = "projectcalico.org", ns: str = "") -> ObjectRef:
    version = "v3" if group == "projectcalico.org" else "v1"
    return ObjectRef(group, version, kind, ns, name)


def calico(kind: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "crd.projectcalico.org/v1", "kind": kind, "spec": spec}


def k8s(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "spec": spec}


K8S = "networking.k8s.io"
ALLOW = {"action": "Allow"}
DENY = {"action": "Deny"}


@pytest.mark.parametrize(
    ("kind", "stage"),
    [
        ("Tier", Stage.FOUNDATION),
        ("GlobalNetworkSet", Stage.FOUNDATION),
        ("StagedGlobalNetworkPolicy", Stage.FOUNDATION),
        ("HostEndpoint", Stage.ENDPOINTS),
        ("KubeControllersConfiguration", Stage.ENDPOINTS),
    ],
)
def test_fixed_stages_come_from_the_kind_table(kind: str, stage: Stage) -> None:
    # Rules do not matter for a kind with a fixed stage, even a staged deny.
    assert stage_of(ref(kind, "x"), calico(kind, ingress=[DENY])) == stage


@pytest.mark.parametrize(
    ("spec", "stage"),
    [
        ({"types": ["Ingress"], "ingress": [ALLOW]}, Stage.ALLOW),
        ({"types": ["Ingress"], "ingress": [{"action": "Log"}, ALLOW]}, Stage.ALLOW),
        ({"types": ["Ingress", "Egress"], "ingress": [ALLOW], "egress": [ALLOW]}, Stage.ALLOW),
        ({"types": ["Ingress"], "ingress": [ALLOW, DENY]}, Stage.RESTRICT),
        ({"types": ["Egress"], "egress": [{"action": "Pass"}]}, Stage.RESTRICT),
        ({"types": ["Ingress", "Egress"], "ingress": [ALLOW]}, Stage.RESTRICT),  # egress deny-all
        ({"types": ["Ingress"]}, Stage.RESTRICT),  # isolates
        ({"types": ["Ingress"], "ingress": [{"action": "allow"}]}, Stage.RESTRICT),  # unknown
    ],
)
def test_calico_policy_stage_follows_its_rules(spec: dict[str, Any], stage: Stage) -> None:
    assert stage_of(ref("GlobalNetworkPolicy", "p"), calico("GlobalNetworkPolicy", **spec)) == stage
    namespaced = ref("NetworkPolicy", "p", ns="shop")
    assert stage_of(namespaced, calico("NetworkPolicy", **spec)) == stage


@pytest.mark.parametrize(
    ("spec", "v3", "v1"),
    [
        # v3 (Calico API server, calicoctl) infers types from the rules; felix reads a
        # stored v1 policy without types as both directions.
        ({"ingress": [ALLOW]}, Stage.ALLOW, Stage.RESTRICT),
        ({"egress": [ALLOW]}, Stage.ALLOW, Stage.RESTRICT),
        ({"ingress": [ALLOW], "egress": [ALLOW]}, Stage.ALLOW, Stage.ALLOW),
        ({}, Stage.RESTRICT, Stage.RESTRICT),
    ],
)
def test_calico_policy_without_types(spec: dict[str, Any], v3: Stage, v1: Stage) -> None:
    body = calico("GlobalNetworkPolicy", **spec)
    assert stage_of(ref("GlobalNetworkPolicy", "p"), body) == v1
    v3_body = body | {"apiVersion": "projectcalico.org/v3"}
    assert stage_of(ref("GlobalNetworkPolicy", "p"), v3_body) == v3


@pytest.mark.parametrize(
    ("spec", "stage"),
    [
        ({"policyTypes": ["Ingress"], "ingress": [{}]}, Stage.ALLOW),
        ({"ingress": [{"from": [{"podSelector": {}}]}]}, Stage.ALLOW),  # Ingress by default
        ({"policyTypes": ["Ingress"]}, Stage.RESTRICT),  # default deny ingress
        ({"podSelector": {}}, Stage.RESTRICT),  # the same, policyTypes defaulted
        ({"egress": [{}]}, Stage.RESTRICT),  # defaults to Ingress+Egress: isolates ingress
        ({"policyTypes": ["Ingress", "Egress"], "ingress": [{}], "egress": [{}]}, Stage.ALLOW),
    ],
)
def test_kubernetes_policy_stage(spec: dict[str, Any], stage: Stage) -> None:
    np_ref = ref("NetworkPolicy", "p", group="networking.k8s.io", ns="shop")
    assert stage_of(np_ref, k8s(**spec)) == stage


def test_unknown_kind_goes_last() -> None:
    assert stage_of(ref("Secret", "s", group=""), {"apiVersion": "v1"}) == Stage.RESTRICT


def _change(action: Action, r: ObjectRef, body: dict[str, Any]) -> Change:
    if action is Action.PRUNE:
        return Change(r, action, desired=None, live=body)
    return Change(r, action, desired=Resource(r, body, Origin("repo.yaml", 1)), live=None)


def test_writes_by_stage_then_prunes_in_reverse() -> None:
    allow = calico("GlobalNetworkPolicy", types=["Ingress"], ingress=[ALLOW])
    deny = calico("GlobalNetworkPolicy", types=["Ingress"], ingress=[DENY])
    changes = [
        _change(Action.PRUNE, ref("Tier", "old-tier"), calico("Tier")),
        _change(Action.CREATE, ref("GlobalNetworkPolicy", "z-deny"), deny),
        _change(Action.PRUNE, ref("GlobalNetworkPolicy", "old-allow"), allow),
        _change(Action.CREATE, ref("HostEndpoint", "node-1"), calico("HostEndpoint")),
        _change(Action.UNCHANGED, ref("GlobalNetworkPolicy", "b-allow"), allow),
        _change(Action.UPDATE, ref("GlobalNetworkPolicy", "a-allow"), allow),
        _change(Action.PRUNE, ref("HostEndpoint", "node-9"), calico("HostEndpoint")),
        _change(Action.CREATE, ref("Tier", "security"), calico("Tier")),
        _change(Action.PRUNE, ref("GlobalNetworkPolicy", "old-deny"), deny),
    ]
    ordered = [(c.action.value, c.ref.name) for c in in_apply_order(changes)]
    assert ordered == [
        ("create", "security"),
        ("update", "a-allow"),
        ("unchanged", "b-allow"),
        ("create", "node-1"),
        ("create", "z-deny"),
        ("prune", "old-deny"),
        ("prune", "node-9"),
        ("prune", "old-allow"),
        ("prune", "old-tier"),
    ]


def test_same_stage_sorts_by_kind_then_namespace_then_name() -> None:
    allow = calico("NetworkPolicy", types=["Ingress"], ingress=[ALLOW])
    k8s_allow = k8s(policyTypes=["Ingress"], ingress=[{}])
    changes = [
        _change(Action.CREATE, ref("NetworkPolicy", "b", ns="a"), allow),
        _change(Action.CREATE, ref("GlobalNetworkPolicy", "z"), allow),
        _change(Action.CREATE, ref("NetworkPolicy", "a", ns="b"), allow),
        _change(
            Action.CREATE, ref("NetworkPolicy", "a", group="networking.k8s.io", ns="a"), k8s_allow
        ),
    ]
    ordered = [
        (c.ref.kind, c.ref.group, c.ref.namespace, c.ref.name) for c in in_apply_order(changes)
    ]
    assert ordered == [
        ("GlobalNetworkPolicy", "projectcalico.org", "", "z"),
        ("NetworkPolicy", "networking.k8s.io", "a", "a"),
        ("NetworkPolicy", "projectcalico.org", "a", "b"),
        ("NetworkPolicy", "projectcalico.org", "b", "a"),
    ]


def test_batches_cut_the_ordered_writes_at_every_stage_and_keep_their_order() -> None:
    allow = calico("GlobalNetworkPolicy", types=["Ingress"], ingress=[ALLOW])
    deny = calico("GlobalNetworkPolicy", types=["Ingress"], ingress=[DENY])
    changes = in_apply_order(
        [
            _change(Action.CREATE, ref("Tier", "security"), calico("Tier")),
            _change(Action.CREATE, ref("GlobalNetworkPolicy", "b-allow"), allow),
            _change(Action.UPDATE, ref("GlobalNetworkPolicy", "a-allow"), allow),
            _change(Action.CREATE, ref("HostEndpoint", "node-1"), calico("HostEndpoint")),
            _change(Action.CREATE, ref("HostEndpoint", "node-2"), calico("HostEndpoint")),
            _change(Action.CREATE, ref("GlobalNetworkPolicy", "z-deny"), deny),
            _change(Action.PRUNE, ref("GlobalNetworkPolicy", "old-deny"), deny),
            _change(Action.PRUNE, ref("GlobalNetworkPolicy", "old-deny-2"), deny),
            _change(Action.PRUNE, ref("HostEndpoint", "node-9"), calico("HostEndpoint")),
        ]
    )
    grouped = [[c.ref.name for c in batch] for batch in batches(changes)]
    assert grouped == [
        ["security"],
        ["a-allow", "b-allow"],
        ["node-1", "node-2"],
        ["z-deny"],
        ["old-deny", "old-deny-2"],
        ["node-9"],
    ]
    assert [c for batch in batches(changes) for c in batch] == list(changes)


def test_a_stage_met_again_later_is_a_new_batch_not_merged_back() -> None:
    # batches() groups what is consecutive; it never reorders, even a plan it did not sort.
    allow = calico("GlobalNetworkPolicy", types=["Ingress"], ingress=[ALLOW])
    changes = [
        _change(Action.CREATE, ref("GlobalNetworkPolicy", "a"), allow),
        _change(Action.CREATE, ref("HostEndpoint", "h"), calico("HostEndpoint")),
        _change(Action.CREATE, ref("GlobalNetworkPolicy", "b"), allow),
    ]
    assert [[c.ref.name for c in b] for b in batches(changes)] == [["a"], ["h"], ["b"]]
    assert batches([]) == ()


def test_an_order_checked_state_by_state_is_written_one_write_at_a_time() -> None:
    """plan/safe.py walked exactly this sequence of single writes: a batch of two would
    make states nobody checked."""
    allow = calico("GlobalNetworkPolicy", types=["Ingress"], ingress=[ALLOW])
    changes = [
        _change(Action.CREATE, ref("GlobalNetworkPolicy", n), allow) for n in ("a", "b", "c")
    ]
    assert len(batches(changes)) == 1  # one stage: concurrent
    assert [len(b) for b in batches(changes, one_by_one=True)] == [1, 1, 1]
