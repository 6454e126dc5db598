"""make_plan: one action per object, three-way drift attribution, and planner properties."""

from __future__ import annotations

import copy
import functools
from typing import Any

import jsonpatch
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.model import (
    Action,
    Change,
    DiffEntry,
    FieldChange,
    ObjectRef,
    Origin,
    Resource,
    Revision,
    Severity,
)
from reconciler.plan import Desired, Live, PlanOptions, bridge, make_plan
from reconciler.plan.diff import projections
from reconciler.plan.fields import applied_by, fields_v1_for, managed_fields
from reconciler.report.jsonout import change_patch
from tests.factories import planned

PART_OF = "applyset.kubernetes.io/part-of"
APPLYSET = "applyset-Xk2Vq9w8yXhWm3V4pZ7nBqFf0c1H2d3e4f5g6h7i8j9-v1"
REV = Revision("9f1c2e7", "policies/", author="Ana", subject="tighten dns")
V1 = "crd.projectcalico.org/v1"
NP_V1 = "networking.k8s.io/v1"
APPLIED_AT = "2026-03-01T10:00:00Z"
EDITED_AT = "2026-03-02T08:15:42Z"


# --- builders -----------------------------------------------------------------------------


def gnp_ref(name: str) -> ObjectRef:
    return ObjectRef("projectcalico.org", "v3", "GlobalNetworkPolicy", "", name)


def np_ref(name: str, ns: str = "shop") -> ObjectRef:
    return ObjectRef("networking.k8s.io", "v1", "NetworkPolicy", ns, name)


def gnp_body(name: str, **spec: Any) -> dict[str, Any]:
    spec = {"selector": "has(node-role)", "types": ["Ingress"], **spec}
    meta = {"name": f"default.{name}", "labels": {PART_OF: APPLYSET}}
    return {"apiVersion": V1, "kind": "GlobalNetworkPolicy", "metadata": meta, "spec": spec}


def np_body(name: str, ns: str = "shop", **spec: Any) -> dict[str, Any]:
    meta = {"name": name, "namespace": ns, "labels": {PART_OF: APPLYSET, "app": "web"}}
    return {"apiVersion": NP_V1, "kind": "NetworkPolicy", "metadata": meta, "spec": spec}


def desired(ref: ObjectRef, body: dict[str, Any], line: int = 1) -> Desired:
    return Desired(Resource(ref, {"user": "body"}, Origin("policies/main.yaml", line)), body)


def entry(
    manager: str, operation: str, fields: dict[str, Any], time: str, api_version: str = V1
) -> dict[str, Any]:
    """A managedFields entry exactly as kube-apiserver writes it."""
    return {
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": time,
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    }


def applied(body: dict[str, Any]) -> dict[str, Any]:
    """Our Apply entry for having applied `body`."""
    owned = {k: v for k, v in body.items() if k not in ("apiVersion", "kind")}
    owned["metadata"] = {
        k: v for k, v in body["metadata"].items() if k in ("labels", "annotations")
    }
    api_version = body["apiVersion"]
    return entry("policy-reconciler", "Apply", fields_v1_for(owned), APPLIED_AT, api_version)


def live_of(body: dict[str, Any], *entries: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(body)
    out["metadata"] |= {
        "uid": "3f6c1a52-8a51-4a44-9f3e-2b1f0e7d9c10",
        "resourceVersion": "48213",
        "generation": 2,
        "creationTimestamp": "2026-03-01T10:00:00Z",
        "managedFields": list(entries),
    }
    return out


plan = functools.partial(planned, revision=REV)


def one(want: dict[str, Any], have: dict[str, Any], **options: Any) -> Change:
    """Plan a single owned GlobalNetworkPolicy `allow-dns`."""
    ref = gnp_ref("allow-dns")
    (change,) = plan([desired(ref, want)], [Live(ref, have, True)], **options).changes
    return change


# --- one action per case --------------------------------------------------------------------

ALLOW_DNS = gnp_body("allow-dns", order=100, ingress=[{"action": "Allow", "protocol": "UDP"}])


def test_create_when_nothing_is_live() -> None:
    p = plan([desired(gnp_ref("allow-dns"), ALLOW_DNS)], [])
    (change,) = p.changes
    assert change.action is Action.CREATE
    assert change.live is None
    assert DiffEntry("spec.order", None, 100) in change.diff
    assert change.desired == Resource(
        gnp_ref("allow-dns"), ALLOW_DNS, Origin("policies/main.yaml", 1)
    )  # user-facing ref and origin, the body we apply
    assert p.revision == REV


def test_unchanged_when_live_is_what_we_applied() -> None:
    change = one(ALLOW_DNS, live_of(ALLOW_DNS, applied(ALLOW_DNS)))
    assert change.action is Action.UNCHANGED
    assert change.diff == ()
    assert change.reason == ""


def test_update_when_git_changed_a_field_we_own() -> None:
    changed = gnp_body("allow-dns", order=50, ingress=[{"action": "Allow", "protocol": "UDP"}])
    change = one(changed, live_of(ALLOW_DNS, applied(ALLOW_DNS)))
    assert change.action is Action.UPDATE
    assert change.diff == (DiffEntry("spec.order", 100, 50),)
    assert change.drifted_by == ()
    assert change.reason == "changed in Git"


def test_update_when_git_removed_a_field() -> None:
    trimmed = gnp_body("allow-dns", ingress=[{"action": "Allow", "protocol": "UDP"}])
    change = one(trimmed, live_of(ALLOW_DNS, applied(ALLOW_DNS)))
    assert change.action is Action.UPDATE
    assert change.diff == (DiffEntry("spec.order", 100, None),)


def test_drift_names_who_edited_and_when() -> None:
    # `kubectl edit` flipped the rule to Deny: ownership of the atomic ingress list
    # moved from our Apply entry to kubectl-edit's Update entry.
    ours = applied(ALLOW_DNS)
    del ours["fieldsV1"]["f:spec"]["f:ingress"]
    edit = entry("kubectl-edit", "Update", {"f:spec": {"f:ingress": {}}}, EDITED_AT)
    body = live_of(ALLOW_DNS, ours, edit)
    body["spec"]["ingress"][0]["action"] = "Deny"
    change = one(ALLOW_DNS, body)
    assert change.action is Action.DRIFT
    assert change.diff == (DiffEntry("spec.ingress[0].action", "Deny", "Allow"),)
    assert change.drifted_by == (FieldChange("kubectl-edit", "Update", EDITED_AT),)


def test_drift_by_label_edit_on_a_kubernetes_policy() -> None:
    want = np_body("web", podSelector={}, ingress=[{"ports": [{"port": 8080}]}])
    ours = applied(want)
    del ours["fieldsV1"]["f:metadata"]["f:labels"]["f:app"]
    label = entry(
        "kubectl-label",
        "Update",
        {"f:metadata": {"f:labels": {"f:app": {}}}},
        EDITED_AT,
        NP_V1,
    )
    body = live_of(want, ours, label)
    body["metadata"]["labels"]["app"] = "web-canary"
    body["spec"]["ingress"][0]["ports"][0]["protocol"] = "TCP"  # server default
    body["spec"]["policyTypes"] = ["Ingress"]  # server default
    (change,) = plan([desired(np_ref("web"), want)], [Live(np_ref("web"), body, True)]).changes
    assert change.action is Action.DRIFT
    assert change.diff == (DiffEntry("metadata.labels.app", "web-canary", "web"),)
    assert change.drifted_by == (FieldChange("kubectl-label", "Update", EDITED_AT),)


def test_drift_lists_every_manager_oldest_first() -> None:
    ours = applied(ALLOW_DNS)
    del ours["fieldsV1"]["f:spec"]["f:ingress"]
    del ours["fieldsV1"]["f:spec"]["f:order"]
    patch = entry("kubectl-patch", "Update", {"f:spec": {"f:order": {}}}, "2026-03-03T00:00:00Z")
    edit = entry("kubectl-edit", "Update", {"f:spec": {"f:ingress": {}}}, EDITED_AT)
    body = live_of(ALLOW_DNS, ours, patch, edit)
    body["spec"]["order"] = 1
    body["spec"]["ingress"] = []
    change = one(ALLOW_DNS, body)
    assert change.action is Action.DRIFT
    assert [c.manager for c in change.drifted_by] == ["kubectl-edit", "kubectl-patch"]


def test_a_field_still_ours_is_git_even_if_others_share_it() -> None:
    # Objects adopted from kubectl keep its Update entry with the same fields; a value
    # that differs while we still own it was changed in Git.
    create = entry("kubectl-create", "Update", {"f:spec": {"f:order": {}}}, "2026-01-01T00:00:00Z")
    body = live_of(ALLOW_DNS, applied(ALLOW_DNS), create)
    changed = gnp_body("allow-dns", order=7, ingress=[{"action": "Allow", "protocol": "UDP"}])
    change = one(changed, body)
    assert change.action is Action.UPDATE


def test_fields_others_added_do_not_make_a_change() -> None:
    label = entry(
        "kubectl-label", "Update", {"f:metadata": {"f:labels": {"f:team": {}}}}, EDITED_AT
    )
    body = live_of(ALLOW_DNS, applied(ALLOW_DNS), label)
    body["metadata"]["labels"]["team"] = "netops"
    body["metadata"]["annotations"] = {"projectcalico.org/metadata": '{"creationTimestamp":null}'}
    change = one(ALLOW_DNS, body)
    assert change.action is Action.UNCHANGED


def test_git_change_and_drift_together_is_drift_with_every_field() -> None:
    ours = applied(ALLOW_DNS)
    del ours["fieldsV1"]["f:spec"]["f:ingress"]
    edit = entry("kubectl-edit", "Update", {"f:spec": {"f:ingress": {}}}, EDITED_AT)
    body = live_of(ALLOW_DNS, ours, edit)
    body["spec"]["ingress"][0]["protocol"] = "TCP"
    changed = gnp_body("allow-dns", order=5, ingress=[{"action": "Allow", "protocol": "UDP"}])
    change = one(changed, body)
    assert change.action is Action.DRIFT
    assert change.diff == (
        DiffEntry("spec.order", 100, 5),
        DiffEntry("spec.ingress[0].protocol", "TCP", "UDP"),
    )
    assert change.drifted_by == (FieldChange("kubectl-edit", "Update", EDITED_AT),)


def test_a_field_removed_in_the_cluster_is_an_unattributed_update() -> None:
    # An Update that only removes a field leaves no trace in managedFields (the
    # remover owns nothing, structured-merge-diff drops the field from every set):
    # the planner restores it but cannot say who removed it.
    ours = applied(ALLOW_DNS)
    del ours["fieldsV1"]["f:spec"]["f:order"]
    body = live_of(ALLOW_DNS, ours)
    del body["spec"]["order"]
    change = one(ALLOW_DNS, body)
    assert change.action is Action.UPDATE
    assert change.diff == (DiffEntry("spec.order", None, 100),)


def test_conflict_names_the_managers() -> None:
    foreign = copy.deepcopy(ALLOW_DNS)
    foreign["metadata"]["labels"] = {"team": "netops"}
    create = entry(
        "kubectl-client-side-apply", "Update", fields_v1_for({"spec": foreign["spec"]}), APPLIED_AT
    )
    calicoctl = entry("calicoctl", "Update", {"f:spec": {"f:order": {}}}, EDITED_AT)
    live = Live(gnp_ref("allow-dns"), live_of(foreign, create, calicoctl), owned=False)
    (change,) = plan([desired(gnp_ref("allow-dns"), ALLOW_DNS)], [live]).changes
    assert change.action is Action.CONFLICT
    assert "not managed by us" in change.reason
    assert "calicoctl, kubectl-client-side-apply" in change.reason
    assert change.diff == (DiffEntry(f'metadata.labels["{PART_OF}"]', None, APPLYSET),)
    assert not plan([desired(gnp_ref("allow-dns"), ALLOW_DNS)], [live]).has_changes


def test_adopt_when_asked() -> None:
    foreign = copy.deepcopy(ALLOW_DNS)
    foreign["metadata"]["labels"] = {}
    live = Live(gnp_ref("allow-dns"), live_of(foreign), owned=False)
    (change,) = plan([desired(gnp_ref("allow-dns"), ALLOW_DNS)], [live], adopt=True).changes
    assert change.action is Action.ADOPT
    assert "no field managers recorded" in change.reason
    assert change.diff == (DiffEntry(f'metadata.labels["{PART_OF}"]', None, APPLYSET),)


def test_prune_when_git_dropped_an_owned_object() -> None:
    bodies = {gnp_ref(f"p{i}"): gnp_body(f"p{i}") for i in range(4)}
    keep = [desired(r, b) for r, b in bodies.items()]
    live = [Live(r, live_of(b, applied(b)), True) for r, b in bodies.items()]
    gone = Live(gnp_ref("old"), live_of(ALLOW_DNS, applied(ALLOW_DNS)), True)
    p = plan(keep, [*live, gone])
    assert p.changes[-1].action is Action.PRUNE
    assert p.changes[-1].ref == gnp_ref("old")
    assert p.changes[-1].desired is None
    assert p.changes[-1].live == gone.body
    assert p.count(Action.UNCHANGED) == 4


def test_k8s_and_calico_policies_of_the_same_name_do_not_match() -> None:
    calico_ref = ObjectRef("projectcalico.org", "v3", "NetworkPolicy", "shop", "web")
    body = np_body("web", podSelector={})
    live = Live(np_ref("web"), live_of(body, applied(body)), True)
    calico_body = {"apiVersion": V1, "kind": "NetworkPolicy", "metadata": {"name": "default.web"}}
    p = plan([desired(calico_ref, calico_body)], [live], max_prune=1.0)
    assert sorted(c.action.value for c in p.changes) == ["create", "prune"]


def test_duplicate_desired_objects_are_an_error() -> None:
    a = desired(gnp_ref("allow-dns"), ALLOW_DNS, line=1)
    b = desired(gnp_ref("allow-dns"), gnp_body("allow-dns"), line=40)
    p = plan([a, b], [])
    (error,) = p.errors
    assert "defined 2 times" in error.message
    assert len(p.changes) == 1
    assert plan([b, a], []) == p


def test_duplicate_live_objects_are_an_error() -> None:
    first = Live(gnp_ref("allow-dns"), live_of(ALLOW_DNS, applied(ALLOW_DNS)), True)
    other = gnp_body("allow-dns")
    other["metadata"]["name"] = "allow-dns"
    second = Live(gnp_ref("allow-dns"), live_of(other, applied(other)), True)
    p = plan([], [first, second], allow_empty=True, max_prune=1.0)
    (error,) = p.findings
    assert error.severity is Severity.ERROR
    assert "2 live objects map to this one (allow-dns, default.allow-dns)" in error.message
    assert error.ref == gnp_ref("allow-dns")
    assert p.count(Action.PRUNE) == 0


def test_target_and_findings_are_carried() -> None:
    p = make_plan(revision=REV, desired=[], live=[], options=PlanOptions(), target="prod")
    assert p.target == "prod"
    assert p.changes == ()


# --- properties ---------------------------------------------------------------------------

_NAMES = st.sampled_from(["dns", "ssh", "api", "web", "db", "mon"])
_SELECTORS = st.sampled_from(["all()", "app == 'web'", "has(node-role)"])
_NETS = st.lists(st.sampled_from(["10.0.0.0/8", "192.168.1.0/24", "fd00::/8"]), max_size=2)
_PORTS = st.lists(
    st.one_of(st.integers(1, 65535), st.sampled_from(["http", "6040:6050"])), max_size=2
)


def _maybe(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


_calico_rule = st.fixed_dictionaries(
    {"action": st.sampled_from(["Allow", "Deny", "Log", "Pass"])},
    optional={
        "protocol": st.sampled_from(["TCP", "UDP", 17]),
        "source": _maybe(nets=_NETS, selector=_SELECTORS),
        "destination": _maybe(ports=_PORTS, notNets=_NETS),
    },
)
_order = st.one_of(st.integers(0, 2000), st.integers(0, 2000).map(float), st.just(10.5))
_gnp_spec = st.fixed_dictionaries(
    {
        "selector": _SELECTORS,
        "types": st.sampled_from([["Ingress"], ["Egress"], ["Ingress", "Egress"]]),
    },
    optional={
        "order": _order,
        "ingress": st.lists(_calico_rule, max_size=3),
        "egress": st.lists(_calico_rule, max_size=3),
        "applyOnForward": st.booleans(),
    },
)
_match_labels = st.dictionaries(
    st.sampled_from(["app", "tier"]), st.sampled_from(["a", "b"]), max_size=2
)
_label_selector: st.SearchStrategy[dict[str, Any]] = st.one_of(
    st.just({}), st.fixed_dictionaries({"matchLabels": _match_labels})
)
_np_port = st.fixed_dictionaries(
    {"port": st.one_of(st.integers(1, 65535), st.just("http"))},
    optional={"protocol": st.sampled_from(["TCP", "UDP", "SCTP"])},
)
_np_peer = st.one_of(
    st.fixed_dictionaries({"podSelector": _label_selector}),
    st.fixed_dictionaries(
        {"namespaceSelector": _label_selector}, optional={"podSelector": _label_selector}
    ),
    st.fixed_dictionaries({"ipBlock": st.fixed_dictionaries({"cidr": st.just("10.0.0.0/8")})}),
)
_np_rule = _maybe(ports=st.lists(_np_port, max_size=2), **{"from": st.lists(_np_peer, max_size=2)})
_np_spec = st.fixed_dictionaries(
    {"podSelector": _label_selector},
    optional={
        "ingress": st.lists(_np_rule, max_size=2),
        "egress": st.lists(
            _np_rule.map(lambda r: {("to" if k == "from" else k): v for k, v in r.items()}),
            max_size=2,
        ),
        "policyTypes": st.sampled_from([["Ingress"], ["Egress"], ["Ingress", "Egress"]]),
    },
)
_gns_spec = st.fixed_dictionaries({"nets": _NETS})
_hep_spec = st.fixed_dictionaries(
    {"node": st.sampled_from(["worker-1", "worker-2"]), "interfaceName": st.just("*")},
    optional={
        "expectedIPs": st.lists(st.just("10.0.0.5"), max_size=1),
        "profiles": st.just(["projectcalico-default-allow"]),
    },
)

_KINDS: dict[str, tuple[st.SearchStrategy[dict[str, Any]], str]] = {
    "GlobalNetworkPolicy": (_gnp_spec, "default."),
    "GlobalNetworkSet": (_gns_spec, ""),
    "HostEndpoint": (_hep_spec, ""),
    "NetworkPolicy": (_np_spec, ""),
}


@st.composite
def _object(draw: st.DrawFn) -> tuple[ObjectRef, dict[str, Any]]:
    kind = draw(st.sampled_from(sorted(_KINDS)))
    name = draw(_NAMES)
    spec_strategy, prefix = _KINDS[kind]
    spec = draw(spec_strategy)
    if kind == "NetworkPolicy":
        return np_ref(name), np_body(name, **spec)
    ref = ObjectRef("projectcalico.org", "v3", kind, "", name)
    meta = {"name": prefix + name, "labels": {PART_OF: APPLYSET}}
    return ref, {"apiVersion": V1, "kind": kind, "metadata": meta, "spec": spec}


_objects = st.lists(_object(), max_size=6, unique_by=lambda o: o[0].key)


def served(body: dict[str, Any]) -> dict[str, Any]:
    """What the API server hands back after applying `body` (written apart from the planner)."""
    out: dict[str, Any] = _json_numbers(copy.deepcopy(body))
    if out["apiVersion"] == NP_V1:
        spec = out["spec"]
        for rule in spec.get("ingress", []) + spec.get("egress", []):
            for port in rule.get("ports", []):
                port.setdefault("protocol", "TCP")
        if not spec.get("policyTypes"):
            spec["policyTypes"] = ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]
        out = _omit_empty(out)
    return out


def _json_numbers(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_numbers(v) for v in value]
    return int(value) if isinstance(value, float) and value == int(value) else value


def _omit_empty(value: Any) -> Any:
    """Go `omitempty` on a typed object: empty slices and maps vanish (pointers to {} stay)."""
    if isinstance(value, dict):
        kept = {k: _omit_empty(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in ([], {}) or k.endswith("Selector")}
    if isinstance(value, list):
        return [_omit_empty(v) for v in value]
    return value


def _live_state(objects: list[tuple[ObjectRef, dict[str, Any]]]) -> list[Live]:
    lives = []
    for ref, body in objects:
        noise = entry(
            "calico-kube-controllers",
            "Update",
            {"f:metadata": {"f:labels": {"f:extra": {}}}},
            EDITED_AT,
        )
        live = live_of(served(body), applied(body), noise)
        live["metadata"]["labels"]["extra"] = "yes"
        live["status"] = {"observedGeneration": 2}
        lives.append(Live(ref, live, owned=True))
    return lives


@settings(max_examples=150)
@given(_objects)
def test_live_equal_to_desired_plans_all_unchanged(
    objects: list[tuple[ObjectRef, dict[str, Any]]],
) -> None:
    want = [desired(ref, body) for ref, body in objects]
    p = plan(want, _live_state(objects))
    assert [c.action for c in p.changes] == [Action.UNCHANGED] * len(objects), [
        c.diff for c in p.changes
    ]
    assert p.findings == ()


_live_objects = st.lists(
    st.tuples(_object(), st.booleans(), st.booleans()),  # (object, owned, as applied)
    max_size=6,
    unique_by=lambda o: o[0][0].key,
)


def _lives(drawn: list[tuple[tuple[ObjectRef, dict[str, Any]], bool, bool]]) -> list[Live]:
    lives = []
    for (ref, body), owned, as_applied in drawn:
        entries = [applied(body)] if owned and as_applied else []
        lives.append(Live(ref, live_of(served(body), *entries), owned))
    return lives


@settings(max_examples=150)
@given(_objects, _live_objects, st.booleans(), st.booleans())
def test_every_desired_object_gets_exactly_one_change(
    objects: list[tuple[ObjectRef, dict[str, Any]]],
    live: list[tuple[tuple[ObjectRef, dict[str, Any]], bool, bool]],
    adopt: bool,
    prune: bool,
) -> None:
    p = plan(
        [desired(r, b) for r, b in objects], _lives(live), adopt=adopt, prune=prune, max_prune=1.0
    )
    refs = [c.ref.key for c in p.changes]
    assert len(refs) == len(set(refs))
    assert {r.key for r, _ in objects} <= set(refs)
    assert [c.ref.key for c in p.changes if c.desired is not None] == [
        c.ref.key for c in p.changes if c.ref.key in {r.key for r, _ in objects}
    ]


@settings(max_examples=100)
@given(_objects, _live_objects, st.randoms(use_true_random=False))
def test_plan_is_deterministic_under_permutation(
    objects: list[tuple[ObjectRef, dict[str, Any]]],
    live: list[tuple[tuple[ObjectRef, dict[str, Any]], bool, bool]],
    random: Any,
) -> None:
    want = [desired(r, b) for r, b in objects]
    have = _lives(live)
    first = plan(want, have, max_prune=1.0, allow_empty=True)
    random.shuffle(want)
    random.shuffle(have)
    assert plan(want, have, max_prune=1.0, allow_empty=True) == first


@settings(max_examples=150)
@given(_objects, _live_objects)
def test_no_prune_for_objects_we_do_not_own(
    objects: list[tuple[ObjectRef, dict[str, Any]]],
    live: list[tuple[tuple[ObjectRef, dict[str, Any]], bool, bool]],
) -> None:
    have = _lives(live)
    p = plan([desired(r, b) for r, b in objects], have, max_prune=1.0, allow_empty=True)
    owned = {o.ref.key for o in have if o.owned}
    pruned = {c.ref.key for c in p.changes if c.action is Action.PRUNE}
    assert pruned <= owned
    assert pruned == owned - {r.key for r, _ in objects}


# --- the RFC 6902 patch in `-o json` ---------------------------------------------------------


def _patched(change: Change) -> tuple[Any, Any]:
    """The live side with the change's patch applied, and the desired side (normal forms)."""
    assert change.desired is not None
    ops = change_patch(change)
    assert ops is not None
    owned = applied_by(managed_fields(change.live), "policy-reconciler") if change.live else ()
    before, after = projections(desired=change.desired.body, live=change.live, owned=owned)
    return jsonpatch.apply_patch(before or {}, ops), after


def test_patch_of_an_update_replaces_just_the_changed_field() -> None:
    changed = gnp_body("allow-dns", order=50, ingress=[{"action": "Allow", "protocol": "UDP"}])
    change = one(changed, live_of(ALLOW_DNS, applied(ALLOW_DNS)))

    assert change_patch(change) == [{"op": "replace", "path": "/spec/order", "value": 50}]


def test_patch_of_drift_restores_git_when_applied_to_the_live_object() -> None:
    ours = applied(ALLOW_DNS)
    del ours["fieldsV1"]["f:spec"]["f:ingress"]
    edit = entry("kubectl-edit", "Update", {"f:spec": {"f:ingress": {}}}, EDITED_AT)
    body = live_of(ALLOW_DNS, ours, edit)
    body["spec"]["ingress"].append({"action": "Deny"})
    body["spec"]["ingress"][0]["action"] = "Deny"
    change = one(ALLOW_DNS, body)

    patched, wanted = _patched(change)

    assert change.action is Action.DRIFT
    assert patched == wanted


def test_patch_of_a_create_adds_every_field_and_a_prune_has_none() -> None:
    (create,) = plan([desired(gnp_ref("allow-dns"), ALLOW_DNS)], []).changes
    (prune,) = plan(
        [],
        [Live(gnp_ref("x"), live_of(ALLOW_DNS, applied(ALLOW_DNS)), True)],
        max_prune=1.0,
        allow_empty=True,
    ).changes

    patched, wanted = _patched(create)

    assert (patched, prune.action, change_patch(prune)) == (wanted, Action.PRUNE, None)
    assert {op["op"] for op in change_patch(create) or []} == {"add"}


def test_patch_of_an_unchanged_object_is_empty() -> None:
    change = one(ALLOW_DNS, live_of(ALLOW_DNS, applied(ALLOW_DNS)))

    assert change_patch(change) == []


def test_a_leftover_bridge_is_pruned_whatever_the_prune_guard_says() -> None:
    """A run that stopped half-way left its make-before-break bridge: the next plan removes
    it (transient, not counted against --max-prune), while the guard still protects the
    user's objects. Negative control: a user object pruned in the same proportion is
    refused."""
    tier = bridge.tier_name("x")
    refs = [
        ObjectRef("projectcalico.org", "v3", "Tier", "", tier),
        ObjectRef("projectcalico.org", "v3", "GlobalNetworkPolicy", "", bridge.policy_name(tier)),
    ]
    kept = gnp_ref("kept")
    live = [Live(r, {"kind": r.kind, "metadata": {"name": r.name}}, True) for r in [*refs, kept]]
    want = Desired(Resource(kept, live[2].body, Origin("p.yaml", 1)), live[2].body)
    found = planned([want], live)
    assert not found.errors
    prunes = [c for c in found.changes if c.action is Action.PRUNE]
    assert {c.ref for c in prunes} == set(refs) and all(c.transient for c in prunes)
    assert found.count(Action.PRUNE) == 0  # not the user's: not in the summary either

    users = [Live(gnp_ref(n), {"kind": "GlobalNetworkPolicy"}, True) for n in ("a", "b")]
    refused = planned([want], [*users, live[2]])
    assert refused.errors
