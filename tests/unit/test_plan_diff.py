"""Normalisation and field-level diff: no false diffs, every real one, readable paths."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.model import DiffEntry
from reconciler.plan.diff import compare, normalise, render_path, unchanged
from reconciler.plan.fields import fields_v1_for, parse_fields_v1

PART_OF = "applyset.kubernetes.io/part-of"


def k8s_np(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "web", "namespace": "shop", "labels": {PART_OF: "applyset-x-v1"}},
        "spec": spec,
    }


def gnp(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "crd.projectcalico.org/v1",
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": "default.allow-dns", "labels": {PART_OF: "applyset-x-v1"}},
        "spec": spec,
    }


def served(body: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    """The body plus what the server adds around it."""
    out = copy.deepcopy(body)
    out["metadata"] |= {"uid": "5f0c", "resourceVersion": "812", "generation": 1, **metadata}
    return out


def entries(deltas: Any) -> list[DiffEntry]:
    return [d.entry for d in deltas]


def owned(fields_v1: dict[str, Any]) -> frozenset[tuple[str | int, ...]]:
    return parse_fields_v1(fields_v1)[0]


# --- normalise ----------------------------------------------------------------------------


def test_integral_floats_become_ints_but_bools_stay() -> None:
    body = normalise(gnp(order=10.0, applyOnForward=True, doNotTrack=False))
    assert body["spec"] == {"order": 10, "applyOnForward": True, "doNotTrack": False}
    assert type(body["spec"]["order"]) is int


def test_nulls_and_empty_lists_and_maps_count_as_absent() -> None:
    body = normalise(gnp(selector=None, ingress=[], egress=[{"action": "Allow", "source": {}}]))
    assert body["spec"] == {"egress": [{"action": "Allow"}]}
    assert normalise({"metadata": {"name": "a", "labels": {}}}) == {"metadata": {"name": "a"}}


def test_k8s_defaults_fill_protocol_and_policy_types() -> None:
    body = normalise(k8s_np(podSelector={}, egress=[{"ports": [{"port": 53}]}]))
    assert body["spec"]["egress"] == [{"ports": [{"port": 53, "protocol": "TCP"}]}]
    assert body["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert body["spec"]["podSelector"] == {}  # `{}` selects every pod: kept


def test_k8s_policy_types_default_only_when_omitted() -> None:
    assert normalise(k8s_np(podSelector={}))["spec"]["policyTypes"] == ["Ingress"]
    explicit = normalise(k8s_np(policyTypes=["Egress"], egress=[{}]))
    assert explicit["spec"]["policyTypes"] == ["Egress"]


def test_k8s_explicit_protocol_is_kept() -> None:
    body = normalise(k8s_np(ingress=[{"ports": [{"port": 53, "protocol": "UDP"}]}]))
    assert body["spec"]["ingress"][0]["ports"] == [{"port": 53, "protocol": "UDP"}]


def test_empty_peer_selector_is_not_absent() -> None:
    peer = {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "db"}}}
    body = normalise(k8s_np(ingress=[{"from": [peer]}]))
    assert body["spec"]["ingress"][0]["from"][0]["namespaceSelector"] == {}


def test_calico_v1_has_no_server_defaults() -> None:
    assert "types" not in normalise(gnp(ingress=[{"action": "Allow"}]))["spec"]


def test_calico_v3_types_default_like_calicoctl() -> None:
    v3 = gnp(egress=[{"action": "Allow"}]) | {"apiVersion": "projectcalico.org/v3"}
    assert normalise(v3)["spec"]["types"] == ["Egress"]


def test_normalise_does_not_touch_its_input() -> None:
    body = k8s_np(ingress=[{"ports": [{"port": 80}]}])
    before = copy.deepcopy(body)
    normalise(body)
    assert body == before


def test_unchanged_and_compare_do_not_touch_their_inputs() -> None:
    """The normal form shares the body's canonical parts and copies only what a default
    is filled into; neither side may change."""
    desired = k8s_np(podSelector={}, ingress=[{"ports": [{"port": 80}]}], egress=[{}])
    live = served(k8s_np(podSelector={}, ingress=[{"ports": [{"port": 80.0}]}], policyTypes=[]))
    before = copy.deepcopy((desired, live))
    ours = owned(fields_v1_for(desired))
    assert not unchanged(desired=desired, live=live, owned=ours)
    assert compare(desired=desired, live=live, owned=ours) != ()
    assert (desired, live) == before


def test_bodies_of_one_shape_keep_their_own_values() -> None:
    first, second = gnp(selector="a == 'x'", order=1), gnp(selector="a == 'x'", order=2)
    live = served(first)
    assert unchanged(desired=first, live=live)
    assert not unchanged(desired=second, live=live)
    assert unchanged(desired=second, live=served(second))


# --- compare ------------------------------------------------------------------------------


def test_create_lists_every_desired_field_as_added() -> None:
    body = gnp(selector="all()", types=["Ingress"], ingress=[{"action": "Allow"}])
    assert entries(compare(desired=body, live=None)) == [
        DiffEntry(f'metadata.labels["{PART_OF}"]', None, "applyset-x-v1"),
        DiffEntry("spec.selector", None, "all()"),
        DiffEntry("spec.types[0]", None, "Ingress"),
        DiffEntry("spec.ingress[0].action", None, "Allow"),
    ]


def test_server_view_of_a_k8s_policy_is_no_change() -> None:
    desired = k8s_np(
        podSelector={},
        ingress=[{"from": [{"podSelector": {}}], "ports": [{"port": 8080}]}],
        egress=[],
    )
    live = served(
        k8s_np(
            podSelector={},
            ingress=[{"from": [{"podSelector": {}}], "ports": [{"port": 8080, "protocol": "TCP"}]}],
            policyTypes=["Ingress"],
        )
    )
    ours = owned({"f:metadata": {"f:labels": {f"f:{PART_OF}": {}}}, "f:spec": {"f:ingress": {}}})
    assert compare(desired=desired, live=live, owned=ours) == ()


def test_float_order_from_yaml_equals_the_server_int() -> None:
    desired = gnp(order=10.0, selector="all()")
    live = served(gnp(order=10, selector="all()"))
    assert compare(desired=desired, live=live) == ()


@pytest.mark.parametrize(("want", "have"), [("80", 80), (1, True), (0, False), ("1", 1)])
def test_values_of_another_type_differ(want: Any, have: Any) -> None:
    desired = gnp(ingress=[{"action": "Allow", "destination": {"ports": [want]}}])
    live = served(gnp(ingress=[{"action": "Allow", "destination": {"ports": [have]}}]))
    assert entries(compare(desired=desired, live=live)) == [
        DiffEntry("spec.ingress[0].destination.ports[0]", have, want)
    ]


def test_changed_rule_is_shown_element_wise() -> None:
    desired = gnp(ingress=[{"action": "Allow", "protocol": "TCP"}, {"action": "Deny"}])
    live = served(gnp(ingress=[{"action": "Allow", "protocol": "UDP"}]))
    assert entries(compare(desired=desired, live=live)) == [
        DiffEntry("spec.ingress[0].protocol", "UDP", "TCP"),
        DiffEntry("spec.ingress[1].action", None, "Deny"),
    ]


def test_a_field_we_owned_and_git_dropped_is_removed() -> None:
    desired = gnp(selector="all()")
    live = served(gnp(selector="all()", order=100, ingress=[{"action": "Allow"}]))
    ours = owned({"f:spec": {"f:selector": {}, "f:order": {}, "f:ingress": {}}})
    assert entries(compare(desired=desired, live=live, owned=ours)) == [
        DiffEntry("spec.order", 100, None),
        DiffEntry("spec.ingress[0].action", "Allow", None),
    ]


def test_fields_someone_else_added_are_ignored() -> None:
    desired = gnp(selector="all()")
    live = served(gnp(selector="all()", order=5), annotations={"note": "by hand"})
    live["metadata"]["labels"]["team"] = "netops"
    live["status"] = {"observed": 1}
    ours = owned({"f:metadata": {"f:labels": {f"f:{PART_OF}": {}}}, "f:spec": {"f:selector": {}}})
    assert compare(desired=desired, live=live, owned=ours) == ()


def test_an_owned_label_map_does_not_pull_in_other_labels() -> None:
    desired = gnp(selector="all()")
    live = served(gnp(selector="all()"))
    live["metadata"]["labels"]["team"] = "netops"
    ours = owned({"f:metadata": {"f:labels": {}}})  # we once applied `labels: {}`
    assert compare(desired=desired, live=live, owned=ours) == ()


def test_atomic_pod_selector_is_compared_whole() -> None:
    desired = k8s_np(podSelector={})
    live = served(k8s_np(podSelector={"matchLabels": {"app": "web"}}, policyTypes=["Ingress"]))
    assert entries(compare(desired=desired, live=live)) == [
        DiffEntry("spec.podSelector.matchLabels.app", "web", None)
    ]


def test_explicit_empty_rules_catch_rules_added_in_the_cluster() -> None:
    desired = k8s_np(podSelector={}, ingress=[], policyTypes=["Ingress"])
    live = served(k8s_np(podSelector={}, ingress=[{}], policyTypes=["Ingress"]))
    assert entries(compare(desired=desired, live=live)) == [DiffEntry("spec.ingress[0]", {}, None)]


def test_identity_fields_are_not_compared() -> None:
    desired = gnp(selector="all()")
    live = served(gnp(selector="all()"))
    live["metadata"]["name"] = "allow-dns"
    live["apiVersion"] = "crd.projectcalico.org/v2"
    assert compare(desired=desired, live=live) == ()


@pytest.mark.parametrize(
    ("path", "text"),
    [
        (("spec", "ingress", 0, "action"), "spec.ingress[0].action"),
        (("metadata", "labels", "app"), "metadata.labels.app"),
        (("metadata", "labels", "a.b/c"), 'metadata.labels["a.b/c"]'),
        ((3,), "[3]"),
    ],
)
def test_render_path(path: tuple[str | int, ...], text: str) -> None:
    assert render_path(path) == text


# --- the fast path: `unchanged` is True only when `compare` finds nothing ---------------------

_VALUES: st.SearchStrategy[Any] = st.sampled_from(
    [None, 1, 1.0, True, "80", 80, "all()", [], {}, ["Ingress"]]
)
_RULES = st.lists(
    st.fixed_dictionaries(
        {}, optional={"action": st.sampled_from(["Allow", "Deny"]), "ports": _VALUES}
    ),
    max_size=2,
)
_SPECS = st.fixed_dictionaries(
    {},
    optional={
        "selector": _VALUES,
        "order": _VALUES,
        "types": _VALUES,
        "ingress": _RULES,
        "egress": _RULES,
        "podSelector": st.sampled_from([{}, {"matchLabels": {"app": "web"}}, None]),
        "policyTypes": _VALUES,
    },
)
_OWNED = st.sets(
    st.sampled_from(
        [
            ("spec", "selector"),
            ("spec", "order"),
            ("spec", "ingress"),
            ("spec", "ingress", 0, "action"),
            ("spec", "podSelector", "matchLabels"),
            ("metadata", "labels", PART_OF),
            ("metadata", "labels", "team"),
        ]
    )
)


def v3_gnp(**spec: Any) -> dict[str, Any]:
    return {**gnp(**spec), "apiVersion": "projectcalico.org/v3"}


_KINDS = st.sampled_from([k8s_np, gnp, v3_gnp])


@settings(max_examples=400, deadline=None)
@given(kind=_KINDS, want=_SPECS, have=_SPECS, ours=_OWNED, team=st.booleans())
def test_unchanged_never_hides_a_difference(
    kind: Any, want: dict[str, Any], have: dict[str, Any], ours: set[Any], team: bool
) -> None:
    desired, live = kind(**want), served(kind(**have))
    if team:
        live["metadata"]["labels"]["team"] = "netops"
    if unchanged(desired=desired, live=live, owned=ours):
        assert compare(desired=desired, live=live, owned=ours) == ()


def test_unchanged_takes_the_steady_state_and_sends_the_rest_to_compare() -> None:
    desired = gnp(selector="all()", order=10, ingress=[{"action": "Allow"}])
    live = served(desired)
    live["metadata"]["labels"]["team"] = "netops"  # someone else's field: not compared
    ours = owned(fields_v1_for(desired))
    assert unchanged(desired=desired, live=live, owned=ours)
    drifted = served(gnp(selector="all()", order=11, ingress=[{"action": "Allow"}]))
    assert not unchanged(desired=desired, live=drifted, owned=ours)
    dropped = gnp(selector="all()", order=10)  # Git dropped the rules we own
    assert not unchanged(desired=dropped, live=live, owned=ours)
    assert compare(desired=dropped, live=live, owned=ours) != ()
