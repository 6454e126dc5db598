"""The JSON renderer: documented schema, every change, plain JSON values."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from reconciler.model import (
    Action,
    ApplyResult,
    Change,
    DiffEntry,
    Failure,
    FieldChange,
    Finding,
    ObjectRef,
    Origin,
    Plan,
    Resource,
    Revision,
    Severity,
)
from reconciler.report import SCHEMA_VERSION, render_json

REV = Revision("4f1c2a9be07d", "/repo", "Ana", "Tighten node ingress")
NP = ObjectRef("networking.k8s.io", "v1", "NetworkPolicy", "shop", "allow-nginx")
GNP = ObjectRef("projectcalico.org", "v3", "GlobalNetworkPolicy", "", "drop-other-ingress")
SAME = ObjectRef("projectcalico.org", "v3", "Tier", "", "platform")
DRIFTER = FieldChange("kubectl-edit", "Update", "2026-11-21T06:01:02Z")

TOP_KEYS = {
    "schemaVersion",
    "target",
    "revision",
    "valid",
    "hasChanges",
    "counts",
    "checks",
    "changes",
    "findings",
    "order",
    "result",
}
REF_KEYS = {"ref", "qualifiedRef", "apiVersion", "group", "version", "kind", "namespace", "name"}
CHANGE_KEYS = REF_KEYS | {"action", "writes", "transient", "reason", "origin", "diff", "patch"}
CHANGE_KEYS |= {"driftedBy"}


def resource(ref: ObjectRef, line: int) -> Resource:
    return Resource(ref, {"kind": ref.kind}, Origin("apps/shop/nginx.yaml", line))


def sample() -> Plan:
    update = Change(
        NP,
        Action.UPDATE,
        resource(NP, 4),
        {},
        (DiffEntry("spec.policyTypes", ("Ingress",), ("Ingress", "Egress")),),
    )
    drift = Change(
        GNP,
        Action.DRIFT,
        resource(GNP, 9),
        {},
        (DiffEntry("spec.order", 30, 20),),
        drifted_by=(DRIFTER,),
    )
    same = Change(SAME, Action.UNCHANGED, resource(SAME, 1), {})
    error = Finding(Severity.ERROR, "bad", Origin("x.yaml", 3), GNP, "spec.order")
    warning = Finding(Severity.WARNING, "odd", None, None, "")
    return Plan(REV, (update, drift, same), (warning, error), target="prod")


def load(plan: Plan, result: ApplyResult | None = None) -> dict[str, Any]:
    doc = json.loads(render_json(plan, result=result))
    assert isinstance(doc, dict)
    return doc


def test_top_level_schema() -> None:
    doc = load(sample())
    assert set(doc) == TOP_KEYS
    assert doc["schemaVersion"] == SCHEMA_VERSION == 1
    assert doc["target"] == "prod"
    assert doc["revision"] == {
        "id": "4f1c2a9be07d",
        "path": "/repo",
        "author": "Ana",
        "subject": "Tighten node ingress",
    }
    assert doc["valid"] is False
    assert doc["hasChanges"] is True
    assert doc["result"] is None


def test_counts_cover_every_action() -> None:
    counts = load(sample())["counts"]
    want = {a.value: 0 for a in Action} | {"update": 1, "drift": 1, "unchanged": 1}
    assert counts == want | {"pruneRefused": 0}


def test_every_change_listed_including_unchanged() -> None:
    changes = load(sample())["changes"]
    assert [c["ref"] for c in changes] == [
        "NetworkPolicy/shop/allow-nginx",
        "GlobalNetworkPolicy/drop-other-ingress",
        "Tier/platform",
    ]
    assert all(set(c) == CHANGE_KEYS for c in changes)
    assert changes[2]["action"] == "unchanged"
    assert changes[2]["writes"] is False


def test_change_fields() -> None:
    update, drift, _ = load(sample())["changes"]
    assert {k: update[k] for k in REF_KEYS} == {
        "ref": "NetworkPolicy/shop/allow-nginx",
        "qualifiedRef": "NetworkPolicy.networking.k8s.io/shop/allow-nginx",
        "apiVersion": "networking.k8s.io/v1",
        "group": "networking.k8s.io",
        "version": "v1",
        "kind": "NetworkPolicy",
        "namespace": "shop",
        "name": "allow-nginx",
    }
    assert update["origin"] == {
        "text": "apps/shop/nginx.yaml:4",
        "path": "apps/shop/nginx.yaml",
        "line": 4,
        "template": "",
        "target": "",
    }
    # tuples in the model become lists
    assert update["diff"] == [
        {"path": "spec.policyTypes", "before": ["Ingress"], "after": ["Ingress", "Egress"]}
    ]
    assert drift["driftedBy"] == [
        {"manager": "kubectl-edit", "operation": "Update", "time": "2026-11-21T06:01:02Z"}
    ]


def test_findings_errors_first_with_text() -> None:
    error, warning = load(sample())["findings"]
    assert error["severity"] == "error"
    assert error["text"] == "x.yaml:3: GlobalNetworkPolicy/drop-other-ingress: spec.order: bad"
    assert error["origin"]["line"] == 3
    assert error["ref"]["name"] == "drop-other-ingress"
    assert warning == {
        "severity": "warning",
        "text": "odd",
        "message": "odd",
        "field": "",
        "origin": None,
        "ref": None,
    }


def test_result_block() -> None:
    plan = sample()
    update, drift, _ = plan.changes
    result = ApplyResult(
        plan, done=(update,), failed=(Failure(drift, "conflict on spec.order"),), notes=("n",)
    )
    block = load(plan, result)["result"]
    assert block["ok"] is False
    assert block["counts"] == {"done": 1, "failed": 1, "skipped": 0}
    assert block["done"][0]["ref"] == "NetworkPolicy/shop/allow-nginx"
    assert block["failed"][0]["message"] == "conflict on spec.order"
    assert block["failed"][0]["action"] == "drift"
    assert block["skipped"] == []
    assert block["notes"] == ["n"]


def test_create_without_diff_lists_the_object_fields() -> None:
    body = {"kind": "Tier", "metadata": {"name": "platform"}, "spec": {"order": 100}}
    create = Change(SAME, Action.CREATE, Resource(SAME, body, Origin("t.yaml", 1)), None)
    (doc,) = load(Plan(REV, (create,)))["changes"]
    assert doc["diff"] == [{"path": "spec.order", "before": None, "after": 100}]


def test_bookkeeping_fields_are_scrubbed() -> None:
    annotation = 'metadata.annotations["kubectl.kubernetes.io/last-applied-configuration"]'
    diff = (
        DiffEntry("metadata.managedFields[0].manager", "a", "b"),
        DiffEntry(annotation, "old", "new"),
    )
    (doc,) = load(Plan(REV, (Change(NP, Action.UPDATE, None, {}, diff),)))["changes"]
    (entry,) = doc["diff"]
    assert entry["path"] == annotation
    assert entry["before"].startswith("(hidden, sha256:")
    assert entry["after"].startswith("(hidden, sha256:")
    assert entry["before"] != entry["after"]
    assert "old" not in json.dumps(doc)


def test_odd_python_values_become_json() -> None:
    diff = (DiffEntry("spec.x", frozenset({"b", "a"}), Origin("p", 1)),)
    (doc,) = load(Plan(REV, (Change(NP, Action.UPDATE, None, {}, diff),)))["changes"]
    assert doc["diff"][0]["before"] == ["a", "b"]
    assert doc["diff"][0]["after"] == "p:1"


def test_output_is_stable() -> None:
    assert render_json(sample()) == render_json(sample())


values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(before=values, after=values)
def test_any_diff_value_round_trips(before: Any, after: Any) -> None:
    diff = (DiffEntry("spec.x", before, after),)
    doc = load(Plan(REV, (Change(NP, Action.UPDATE, None, {}, diff),)))
    shown = doc["changes"][0]["diff"]
    as_json = json.loads(json.dumps([before, after]))  # tuples -> lists
    entry = {"path": "spec.x", "before": as_json[0], "after": as_json[1]}
    # Equal as JSON, not as Python (where False == 0): a 0 -> false change is a change.
    same = json.dumps(before, sort_keys=True) == json.dumps(after, sort_keys=True)
    assert json.dumps(shown, sort_keys=True) == json.dumps([] if same else [entry], sort_keys=True)
