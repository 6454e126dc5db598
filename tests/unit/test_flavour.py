"""Calico API flavours: v3 <-> crd.projectcalico.org/v1 exactly as calicoctl stores it.

Expected v1 bodies follow projectcalico/calico v3.31.0 (commit b1f3c43f8437):
libcalico-go/lib/backend/k8s/resources/resources.go (ConvertCalicoResourceToK8sResource,
ConvertK8sResourceToCalicoResource, determinePolicyName), libcalico-go/lib/clientv3/
globalnetworkpolicy.go (defaultPolicyTypesField, addTierLabel), libcalico-go/lib/names/
policy.go (TieredPolicyName), and the fixtures in
libcalico-go/lib/backend/k8s/resources/customresource_test.go and
libcalico-go/lib/clientv3/globalnetworkpolicy_e2e_test.go. The one field calicoctl writes
that we leave out on purpose is `creationTimestamp` inside the metadata annotation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.calico import (
    METADATA_ANNOTATION,
    RULES,
    TIER_LABEL,
    Flavour,
    crd_flavour,
    rules_for,
    v3_flavour,
)
from reconciler.kinds import ALLOWED, CALICO_CRD, CALICO_V3, TIERED_KINDS
from reconciler.model import ObjectRef, Origin, Resource

PART_OF = "applyset.kubernetes.io/part-of"
APPLYSET = "applyset-abc123-v1"
V3 = "projectcalico.org/v3"
V1 = "crd.projectcalico.org/v1"
ORIGIN = Origin("policies/base.yaml", 1)
KINDS = ALLOWED[V3]
RELEASES = [r.since for r in RULES]


def resource(
    kind: str,
    name: str,
    *,
    spec: Mapping[str, Any] | None = None,
    namespace: str = "",
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    api_version: str = V3,
) -> Resource:
    group, _, version = api_version.rpartition("/")
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    body = {"apiVersion": api_version, "kind": kind, "metadata": meta, "spec": dict(spec or {})}
    return Resource(ObjectRef(group, version, kind, namespace, name), body, ORIGIN)


def stored_metadata(body: Mapping[str, Any]) -> dict[str, Any]:
    return dict(json.loads(body["metadata"]["annotations"][METADATA_ANNOTATION]))


ALLOW_DNS = {"action": "Allow", "protocol": "UDP", "destination": {"ports": [53]}}


# --- concrete v1 bodies ---------------------------------------------------------------------


def test_default_tier_global_policy_is_stored_as_calicoctl_stores_it() -> None:
    res = resource(
        "GlobalNetworkPolicy",
        "allow-dns",
        spec={"selector": "all()", "ingress": [ALLOW_DNS]},
        labels={"app": "dns", PART_OF: APPLYSET},
    )
    assert crd_flavour().to_cluster(res) == {
        "apiVersion": V1,
        "kind": "GlobalNetworkPolicy",
        "metadata": {
            "name": "default.allow-dns",
            "labels": {PART_OF: APPLYSET},
            "annotations": {
                METADATA_ANNOTATION: '{"name":"allow-dns","labels":'
                '{"app":"dns","applyset.kubernetes.io/part-of":"applyset-abc123-v1"}}'
            },
        },
        "spec": {"selector": "all()", "ingress": [ALLOW_DNS], "types": ["Ingress"]},
    }


def test_policy_in_a_tier_gets_the_tier_label_on_the_object_and_in_the_annotation() -> None:
    res = resource(
        "NetworkPolicy",
        "security.deny-egress",
        namespace="prod",
        spec={"tier": "security", "egress": [{"action": "Deny"}]},
        labels={"team": "sec"},
    )
    assert crd_flavour().to_cluster(res) == {
        "apiVersion": V1,
        "kind": "NetworkPolicy",
        "metadata": {
            "name": "security.deny-egress",
            "namespace": "prod",
            "labels": {TIER_LABEL: "security"},
            "annotations": {
                METADATA_ANNOTATION: '{"name":"security.deny-egress","labels":'
                '{"projectcalico.org/tier":"security","team":"sec"}}'
            },
        },
        "spec": {"tier": "security", "egress": [{"action": "Deny"}], "types": ["Egress"]},
    }


@pytest.mark.parametrize(
    ("kind", "namespace", "spec"),
    [
        ("HostEndpoint", "", {"node": "w1", "interfaceName": "*", "expectedIPs": ["10.0.0.1"]}),
        ("GlobalNetworkSet", "", {"nets": ["192.0.2.0/24"]}),
        ("NetworkSet", "prod", {"nets": ["2001:db8::/32"]}),
        ("Tier", "", {"order": 100}),
        ("KubeControllersConfiguration", "", {"controllers": {"node": {}}}),
    ],
)
def test_other_kinds_keep_name_and_spec_and_the_annotation_holds_no_name(
    kind: str, namespace: str, spec: dict[str, Any]
) -> None:
    res = resource(kind, "default", namespace=namespace, spec=spec, labels={PART_OF: APPLYSET})
    meta: dict[str, Any] = {"name": "default"} | ({"namespace": namespace} if namespace else {})
    assert crd_flavour().to_cluster(res) == {
        "apiVersion": V1,
        "kind": kind,
        "metadata": meta
        | {
            "labels": {PART_OF: APPLYSET},
            "annotations": {
                METADATA_ANNOTATION: '{"labels":'
                '{"applyset.kubernetes.io/part-of":"applyset-abc123-v1"}}'
            },
        },
        "spec": spec,
    }


def test_no_labels_or_annotations_give_an_empty_metadata_object() -> None:
    res = resource("GlobalNetworkSet", "empty", spec={"nets": []})
    body = crd_flavour().to_cluster(res)
    assert body["metadata"] == {"name": "empty", "annotations": {METADATA_ANNOTATION: "{}"}}


def test_labels_and_annotations_split_like_calicos_own_fixture() -> None:
    # customresource_test.go "should handle converting labels and annotations from v3 -> v1"
    # (there on a BGPPeer; the conversion is the same for every kind).
    ours = {"foo": "bar", "projectcalico.org/foo": "bar", "operator.tigera.io/foo": "bar"}
    res = resource("NetworkSet", "ns1", namespace="a", labels=ours, annotations=ours)
    flavour = crd_flavour()
    stored = flavour.to_cluster(res)
    assert stored["metadata"]["labels"] == {
        "projectcalico.org/foo": "bar",
        "operator.tigera.io/foo": "bar",
    }
    assert set(stored["metadata"]["annotations"]) == {
        "projectcalico.org/foo",
        "operator.tigera.io/foo",
        METADATA_ANNOTATION,
    }
    # Labels and annotations added to the v1 object show up on read, with the old ones.
    stored["metadata"]["labels"] |= {"foo2": "bar2", "operator.tigera.io/foo2": "bar2"}
    stored["metadata"]["annotations"] |= {"foo2": "bar2", "projectcalico.org/foo2": "bar2"}
    _, view = flavour.from_cluster(stored)
    assert view["metadata"]["labels"] == ours | {"foo2": "bar2", "operator.tigera.io/foo2": "bar2"}
    assert view["metadata"]["annotations"] == ours | {
        "foo2": "bar2",
        "projectcalico.org/foo2": "bar2",
    }
    # Writing the view again keeps only Calico's own keys on the object.
    again = flavour.to_cluster(Resource(res.ref, view, ORIGIN))
    assert "foo2" not in again["metadata"]["labels"]
    assert "foo2" not in again["metadata"]["annotations"]


def test_metadata_annotation_is_go_json_sorted_compact_and_html_escaped() -> None:
    note = 'a<b>&c "q" \\ \n\t\x01 é \u2028'
    res = resource("GlobalNetworkSet", "n", labels={"b": "1", "a": "2"}, annotations={"note": note})
    value = crd_flavour().to_cluster(res)["metadata"]["annotations"][METADATA_ANNOTATION]
    assert value == (
        '{"labels":{"a":"2","b":"1"},'
        r'"annotations":{"note":"a\u003cb\u003e\u0026c \"q\" \\ \n\t\u0001 é \u2028"}}'
    )
    assert json.loads(value)["annotations"]["note"] == note


# --- spec.types ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "types"),
    [
        ({}, ["Ingress"]),  # no rules at all: Ingress only (an isolating policy)
        ({"ingress": [ALLOW_DNS]}, ["Ingress"]),
        ({"ingress": [], "egress": [ALLOW_DNS]}, ["Egress"]),
        ({"ingress": [ALLOW_DNS], "egress": [ALLOW_DNS]}, ["Ingress", "Egress"]),
        ({"egress": [ALLOW_DNS], "types": []}, ["Egress"]),  # empty types are inferred
        ({"ingress": [ALLOW_DNS], "types": ["Egress"]}, ["Egress"]),  # given types are kept
        ({"preDNAT": True, "applyOnForward": True, "ingress": [ALLOW_DNS]}, ["Ingress"]),
    ],
)
@pytest.mark.parametrize("kind", sorted(TIERED_KINDS))
def test_types_are_inferred_as_calicoctl_does(
    kind: str, spec: dict[str, Any], types: list[str]
) -> None:
    namespace = "prod" if KINDS[kind].namespaced else ""
    res = resource(kind, "p", namespace=namespace, spec=spec)
    assert crd_flavour().to_cluster(res)["spec"]["types"] == types


@pytest.mark.parametrize("kind", ["StagedGlobalNetworkPolicy", "StagedNetworkPolicy"])
def test_staged_delete_has_no_types(kind: str) -> None:
    namespace = "prod" if KINDS[kind].namespaced else ""
    spec = {"stagedAction": "Delete", "types": ["Ingress"]}
    res = resource(kind, "p", namespace=namespace, spec=spec)
    assert crd_flavour().to_cluster(res)["spec"] == {"stagedAction": "Delete"}


def test_v3_flavour_applies_objects_as_written() -> None:
    res = resource("GlobalNetworkPolicy", "p", spec={"ingress": [ALLOW_DNS]})
    assert v3_flavour().to_cluster(res) == res.body


@pytest.mark.parametrize(("written", "served"), [("default.web", "web"), ("web", "web")])
def test_v3_flavour_sends_a_crd_document_through_v3_under_the_name_v3_shows(
    written: str, served: str
) -> None:
    """With Calico's API server the CRDs are its storage, and only v3 is discovered: a
    document written as crd.projectcalico.org/v1 is applied through v3 like any other."""
    flavour = v3_flavour()
    res = resource("GlobalNetworkPolicy", written, spec={"order": 5}, api_version=V1,
                   labels={"team": "web"})  # fmt: skip
    body = flavour.to_cluster(res)
    assert body["apiVersion"] == V3
    assert body["metadata"] == {"name": served, "labels": {"team": "web"}}
    assert body["spec"] == {"order": 5}
    assert flavour.cluster_ref(res.ref).name == served


def test_other_specs_are_not_given_types() -> None:
    res = resource("HostEndpoint", "h", spec={"node": "w1"})
    assert "types" not in crd_flavour().to_cluster(res)["spec"]


# --- names per Calico release ----------------------------------------------------------------

STORED_NAMES = [
    ((3, 28), "foo", "default.foo"),
    ((3, 28), "sec.foo", "default.sec.foo"),  # 3.28 prefixes every name
    ((3, 29), "foo", "default.foo"),
    ((3, 30), "default.foo", "default.foo"),
    ((3, 31), "foo", "default.foo"),
    ((3, 31), "default.foo", "default.foo"),
    ((3, 31), "sec.foo", "sec.foo"),
    ((3, 32), "foo", "foo"),
    ((3, 32), "sec.foo", "sec.foo"),
]


@pytest.mark.parametrize(("calico", "name", "stored"), STORED_NAMES)
@pytest.mark.parametrize("kind", sorted(TIERED_KINDS))
def test_policy_names_in_storage_per_release(
    kind: str, calico: tuple[int, int], name: str, stored: str
) -> None:
    namespace = "prod" if KINDS[kind].namespaced else ""
    flavour = crd_flavour(calico)
    ref = ObjectRef(CALICO_V3, "v3", kind, namespace, name)
    assert flavour.cluster_ref(ref) == ObjectRef(CALICO_CRD, "v1", kind, namespace, stored)
    body = flavour.to_cluster(resource(kind, name, namespace=namespace))
    assert body["metadata"]["name"] == stored


@pytest.mark.parametrize("calico", RELEASES)
@pytest.mark.parametrize(
    ("name", "spec"),
    [
        ("foo", {}),
        ("default.foo", {}),
        ("default.foo", {"tier": "default"}),
        ("sec.foo", {"tier": "sec"}),
    ],
)
def test_user_names_survive_storage_in_every_release(
    calico: tuple[int, int], name: str, spec: dict[str, Any]
) -> None:
    flavour = crd_flavour(calico)
    res = resource("StagedNetworkPolicy", name, namespace="prod", spec=spec)
    assert flavour.from_cluster(flavour.to_cluster(res))[0] == res.ref


@pytest.mark.parametrize(("calico", "kept"), [((3, 28), False), ((3, 29), True), ((3, 31), True)])
def test_releases_from_3_29_keep_the_v3_name_in_the_annotation(
    calico: tuple[int, int], kept: bool
) -> None:
    body = crd_flavour(calico).to_cluster(resource("GlobalNetworkPolicy", "foo"))
    assert ("name" in stored_metadata(body)) is kept


@pytest.mark.parametrize(("calico", "label"), [((3, 28), False), ((3, 31), True)])
def test_tier_label_from_3_29(calico: tuple[int, int], label: bool) -> None:
    res = resource("GlobalNetworkPolicy", "sec.p", spec={"tier": "sec"})
    labels = crd_flavour(calico).to_cluster(res)["metadata"].get("labels", {})
    assert (labels.get(TIER_LABEL) == "sec") is label


@pytest.mark.parametrize(
    ("calico", "v3_name"),
    [((3, 28), "prefix-test-policy"), ((3, 31), "prefix-test-policy"), ((3, 32), "default.x")],
)
def test_name_derived_when_the_annotation_has_none(calico: tuple[int, int], v3_name: str) -> None:
    # globalnetworkpolicy_e2e_test.go "GlobalNetworkPolicy without name on the
    # projectcalico.org annotation": a v1 object "default.prefix-test-policy" with "{}".
    name = "default.x" if calico >= (3, 32) else "default.prefix-test-policy"
    body = {
        "apiVersion": V1,
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": name, "annotations": {METADATA_ANNOTATION: "{}"}},
        "spec": {},
    }
    ref, view = crd_flavour(calico).from_cluster(body)
    assert ref == ObjectRef(CALICO_V3, "v3", "GlobalNetworkPolicy", "", v3_name)
    assert view["metadata"] == {"name": v3_name}


def test_default_prefix_is_kept_outside_the_default_tier_on_read() -> None:
    # determinePolicyName only strips "default." when the policy's tier is the default one.
    body = {
        "apiVersion": V1,
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": "default.x", "annotations": {METADATA_ANNOTATION: "{}"}},
        "spec": {"tier": "other"},
    }
    assert crd_flavour().from_cluster(body)[0].name == "default.x"


def test_unknown_releases() -> None:
    assert rules_for((3, 40)) is RULES[-1]
    assert rules_for((4, 0)) is RULES[-1]
    assert rules_for((3, 30)).since == (3, 30)
    with pytest.raises(ValueError, match=r"3\.27"):
        crd_flavour((3, 27))
    with pytest.raises(ValueError, match="not a Calico API flavour"):
        Flavour(CALICO_CRD, "v3")


# --- repo documents written as v1, and passthrough kinds -------------------------------------


def test_v1_document_passes_through_and_reads_back_under_the_loaders_ref() -> None:
    doc = resource(
        "GlobalNetworkPolicy",
        "default.foo",
        spec={"ingress": [ALLOW_DNS]},
        labels={PART_OF: APPLYSET},
        api_version=V1,
    )
    flavour = crd_flavour()
    assert flavour.to_cluster(doc) == doc.body
    assert flavour.from_cluster(doc.body) == (doc.ref, doc.body)
    assert flavour.cluster_ref(doc.ref) == doc.ref


@pytest.mark.parametrize("calico", RELEASES)
def test_v3_name_and_v1_document_name_are_the_same_stored_object(calico: tuple[int, int]) -> None:
    flavour = crd_flavour(calico)
    v3 = ObjectRef(CALICO_V3, "v3", "NetworkPolicy", "prod", "foo")
    stored = flavour.cluster_ref(v3)
    v1_doc = ObjectRef(CALICO_CRD, "v1", "NetworkPolicy", "prod", stored.name)
    assert flavour.cluster_ref(v1_doc) == stored
    # Under the API server both are the v3 object the server shows.
    served = Flavour(CALICO_V3, "v3", calico)
    assert served.cluster_ref(v1_doc) == served.cluster_ref(v3) == v3


def test_foo_and_default_foo_collide_in_storage_until_3_32() -> None:
    refs = [
        ObjectRef(CALICO_V3, "v3", "GlobalNetworkPolicy", "", n) for n in ("foo", "default.foo")
    ]
    assert crd_flavour((3, 31)).cluster_ref(refs[0]) == crd_flavour((3, 31)).cluster_ref(refs[1])
    assert crd_flavour((3, 32)).cluster_ref(refs[0]) != crd_flavour((3, 32)).cluster_ref(refs[1])


@pytest.mark.parametrize("flavour", [v3_flavour(), crd_flavour()], ids=["v3", "crd"])
def test_kubernetes_network_policy_passes_through(flavour: Flavour) -> None:
    res = resource(
        "NetworkPolicy",
        "np-default",
        namespace="prod",
        spec={"podSelector": {}, "policyTypes": ["Ingress"]},
        labels={PART_OF: APPLYSET},
        api_version="networking.k8s.io/v1",
    )
    assert flavour.cluster_ref(res.ref) == res.ref
    assert flavour.to_cluster(res) == res.body
    assert flavour.from_cluster(res.body) == (res.ref, res.body)


_UNTOUCHED = [
    resource("GlobalNetworkSet", "n", spec={"nets": ["192.0.2.0/24"]}),
    resource(
        "GlobalNetworkPolicy", "p", spec={"ingress": [{"action": "Allow"}]}, labels={"a": "b"}
    ),
    resource("NetworkPolicy", "p", namespace="prod", spec={"egress": [{"action": "Deny"}]}),
    resource(
        "NetworkPolicy",
        "np",
        namespace="prod",
        spec={"podSelector": {}, "egress": [{}]},
        api_version="networking.k8s.io/v1",
    ),
    resource("GlobalNetworkPolicy", "default.p", spec={"selector": "all()"}, api_version=V1),
]


@pytest.mark.parametrize("res", _UNTOUCHED, ids=lambda r: f"{r.ref.group}/{r.ref.kind}")
def test_to_cluster_leaves_its_input_untouched_and_returns_a_new_top(res: Resource) -> None:
    """The body shares what it does not rewrite with the resource (no deep copy per
    object), so it must never write into the resource's own maps and lists."""
    before = json.loads(json.dumps(res.body))
    for flavour in (v3_flavour(), crd_flavour()):
        body = flavour.to_cluster(res)
        assert body is not res.body
    assert res.body == before


# --- reading live objects --------------------------------------------------------------------


def test_live_object_view_keeps_server_fields_and_annotation_labels_win() -> None:
    live = {
        "apiVersion": V1,
        "kind": "GlobalNetworkPolicy",
        "metadata": {
            "name": "default.foo",
            "resourceVersion": "42",
            "uid": "3b5bff7a-501d-429f-b581-8954440883f4",
            "creationTimestamp": "2025-10-21T00:00:00Z",
            "labels": {PART_OF: "old", "added-by-kubectl": "yes"},
            "annotations": {
                METADATA_ANNOTATION: '{"name":"foo",'
                '"labels":{"applyset.kubernetes.io/part-of":"new"}}'
            },
        },
        "spec": {"types": ["Ingress"]},
    }
    ref, view = crd_flavour().from_cluster(live)
    assert ref == ObjectRef(CALICO_V3, "v3", "GlobalNetworkPolicy", "", "foo")
    assert view == {
        "apiVersion": V3,
        "kind": "GlobalNetworkPolicy",
        "metadata": {
            "name": "foo",
            "resourceVersion": "42",
            "uid": "3b5bff7a-501d-429f-b581-8954440883f4",
            "creationTimestamp": "2025-10-21T00:00:00Z",
            "labels": {PART_OF: "new", "added-by-kubectl": "yes"},
        },
        "spec": {"types": ["Ingress"]},
    }


def test_calicoctl_written_object_with_creation_timestamp_reads_back() -> None:
    # What calicoctl 3.31 writes for `calicoctl create` of GNP "foo" in tier "sec"... almost:
    # its annotation also holds creationTimestamp, which the view ignores like any extra field.
    live = {
        "apiVersion": V1,
        "kind": "GlobalNetworkPolicy",
        "metadata": {
            "name": "sec.foo",
            "labels": {TIER_LABEL: "sec"},
            "annotations": {
                METADATA_ANNOTATION: '{"name":"sec.foo","creationTimestamp":"2025-10-21T00:00:00Z",'
                '"labels":{"projectcalico.org/tier":"sec"}}'
            },
        },
        "spec": {"tier": "sec", "types": ["Ingress"]},
    }
    ref, view = crd_flavour().from_cluster(live)
    assert ref.name == "sec.foo"
    assert view["metadata"] == {"name": "sec.foo"}  # the implied tier label is dropped


@pytest.mark.parametrize(
    ("tier", "label", "dropped"),
    [("", "default", True), ("default", "default", True), ("sec", "sec", True), ("", "sec", False)],
)
def test_v3_view_drops_only_the_implied_tier_label(tier: str, label: str, dropped: bool) -> None:
    # The API server adds projectcalico.org/tier (clientv3 defaultTierLabelIfMissing).
    spec = {"tier": tier} if tier else {}
    res = resource("GlobalNetworkPolicy", "p", spec=spec, labels={TIER_LABEL: label, "a": "b"})
    _, view = v3_flavour().from_cluster(res.body)
    assert (TIER_LABEL not in view["metadata"]["labels"]) is dropped
    assert view["metadata"]["labels"]["a"] == "b"


# --- properties over generated policies ------------------------------------------------------

_dns = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,14}[a-z0-9])?", fullmatch=True)
_label_key = st.builds(
    lambda prefix, name: prefix + name,
    st.sampled_from(
        ["", "example.com/", "projectcalico.org/", "operator.tigera.io/", "applyset.kubernetes.io/"]
    ),
    st.from_regex(r"[a-z0-9]([-a-z0-9_.]{0,10}[a-z0-9])?", fullmatch=True),
).filter(lambda k: k != TIER_LABEL)
_label_value = st.from_regex(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,10}[A-Za-z0-9])?)?", fullmatch=True)
_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
_labels = st.dictionaries(_label_key, _label_value, max_size=4)
_annotations = st.dictionaries(_label_key.filter(lambda k: k != METADATA_ANNOTATION), _text)
_rule = st.fixed_dictionaries(
    {"action": st.sampled_from(["Allow", "Deny", "Log", "Pass"])},
    optional={
        "protocol": st.sampled_from(["TCP", "UDP"]),
        "destination": st.fixed_dictionaries({"ports": st.lists(st.integers(1, 65535))}),
    },
)
_rules = st.one_of(st.none(), st.lists(_rule, max_size=3))
_types = st.one_of(st.none(), st.lists(st.sampled_from(["Ingress", "Egress"]), max_size=2))


@st.composite
def policy_spec(draw: st.DrawFn, kind: str, tier_field: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"selector": draw(st.sampled_from(["all()", "app == 'x'"]))}
    optional: dict[str, Any] = {"tier": tier_field, "ingress": draw(_rules)}
    optional["egress"] = draw(_rules)
    optional["types"] = draw(_types)
    optional["order"] = draw(st.one_of(st.none(), st.integers(0, 2000), st.floats(0, 1e6)))
    if kind.startswith("Staged"):
        optional["stagedAction"] = draw(st.sampled_from([None, "Set", "Learn", "Delete"]))
    return spec | {k: v for k, v in optional.items() if v is not None}


@st.composite
def policy_name_and_tier(draw: st.DrawFn) -> tuple[str, str | None]:
    """A valid 3.29-3.31 policy name and the spec.tier written for it (None: omitted)."""
    base = draw(_dns)
    tier = draw(st.sampled_from(["default", "sec", "platform-1"]))
    if tier == "default":
        name = draw(st.sampled_from([base, f"default.{base}"]))
        return name, draw(st.sampled_from([None, "default"]))
    return f"{tier}.{base}", tier


@st.composite
def user_resource(draw: st.DrawFn) -> Resource:
    kind = draw(st.sampled_from(sorted(KINDS)))
    namespace = draw(st.sampled_from(["prod", "kube-system"])) if KINDS[kind].namespaced else ""
    if kind in TIERED_KINDS:
        name, tier_field = draw(policy_name_and_tier())
        spec = draw(policy_spec(kind, tier_field))
    else:
        name, spec = draw(_dns), {"nets": draw(st.lists(st.sampled_from(["10.0.0.0/8"])))}
    labels = draw(_labels) | ({PART_OF: APPLYSET} if draw(st.booleans()) else {})
    annotations = draw(_annotations)
    return resource(
        kind, name, spec=spec, namespace=namespace, labels=labels, annotations=annotations
    )


def without_types(body: Mapping[str, Any]) -> dict[str, Any]:
    return dict(body) | {"spec": {k: v for k, v in body["spec"].items() if k != "types"}}


def expected_types(spec: Mapping[str, Any]) -> list[str] | None:
    if spec.get("stagedAction") == "Delete":
        return None
    if spec.get("types"):
        return list(spec["types"])
    if not spec.get("egress"):
        return ["Ingress"]
    return ["Egress"] if not spec.get("ingress") else ["Ingress", "Egress"]


@pytest.mark.parametrize("calico", RELEASES)
@given(res=user_resource())
def test_round_trip_through_crd_storage(res: Resource, calico: tuple[int, int]) -> None:
    flavour = crd_flavour(calico)
    stored = flavour.to_cluster(res)
    ref, view = flavour.from_cluster(stored)
    assert ref == res.ref
    assert without_types(view) == without_types(res.body) | {"apiVersion": V3}
    if res.ref.kind in TIERED_KINDS:
        assert view["spec"].get("types") == expected_types(res.body["spec"])
    else:
        assert view["spec"] == res.body["spec"]


_KEPT = st.one_of(
    st.none(), st.text(max_size=8).map(lambda n: json.dumps({"name": n})), st.just("{not json")
)


@pytest.mark.parametrize("calico", RELEASES)
@given(res=user_resource(), kept=_KEPT)
def test_ref_from_cluster_is_the_ref_of_from_cluster(
    res: Resource, calico: tuple[int, int], kept: str | None
) -> None:
    """Listing builds only the ref; it must be the one the full user view has, also when
    someone rewrote the metadata annotation (`None`: as we wrote it)."""
    flavour = crd_flavour(calico)
    stored = flavour.to_cluster(res)
    if kept is not None:
        stored["metadata"]["annotations"] = {METADATA_ANNOTATION: kept}
    assert flavour.ref_from_cluster(stored) == flavour.from_cluster(stored)[0]
    v3 = v3_flavour()
    assert v3.ref_from_cluster(res.body) == v3.from_cluster(res.body)[0] == res.ref


@pytest.mark.parametrize("calico", RELEASES)
@given(res=user_resource())
def test_stored_object_is_addressed_by_cluster_ref(res: Resource, calico: tuple[int, int]) -> None:
    flavour = crd_flavour(calico)
    stored = flavour.to_cluster(res)
    meta = stored["metadata"]
    target = flavour.cluster_ref(res.ref)
    assert (stored["apiVersion"], meta["name"], meta.get("namespace", "")) == (
        target.api_version,
        target.name,
        target.namespace,
    )
    assert flavour.cluster_ref(target) == target


@pytest.mark.parametrize("calico", RELEASES)
@given(res=user_resource())
def test_labels_on_the_object_and_in_the_annotation(res: Resource, calico: tuple[int, int]) -> None:
    stored = crd_flavour(calico).to_cluster(res)
    user_labels = res.body["metadata"].get("labels", {})
    in_annotation = stored_metadata(stored).get("labels", {})
    on_object = stored["metadata"].get("labels", {})
    assert {k: v for k, v in in_annotation.items() if k != TIER_LABEL} == user_labels
    assert on_object.items() <= in_annotation.items()
    assert on_object.get(PART_OF) == user_labels.get(PART_OF)


@given(res=user_resource())
def test_v3_flavour_round_trip_is_identity(res: Resource) -> None:
    flavour = v3_flavour()
    assert flavour.to_cluster(res) == res.body
    assert flavour.from_cluster(res.body) == (res.ref, res.body)
    assert flavour.cluster_ref(res.ref) == res.ref


@pytest.mark.parametrize(
    ("spec", "types"),
    [
        ({"podSelector": {}}, ["Ingress"]),
        ({"podSelector": {}, "egress": [{"ports": [{"port": 53}]}]}, ["Ingress", "Egress"]),
        ({"podSelector": {}, "policyTypes": ["Egress"]}, ["Egress"]),
    ],
)
def test_kubernetes_policy_types_are_written_out_as_the_server_defaults_them(
    spec: dict[str, Any], types: list[str]
) -> None:
    body: dict[str, Any] = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "p", "namespace": "shop"},
        "spec": spec,
    }
    ref = ObjectRef("networking.k8s.io", "v1", "NetworkPolicy", "shop", "p")
    out = crd_flavour().to_cluster(Resource(ref, body, Origin("p.yaml", 1)))
    assert out["spec"]["policyTypes"] == types
    assert "policyTypes" not in body["spec"] or body["spec"]["policyTypes"] == types  # input kept
