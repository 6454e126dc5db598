"""managedFields parsing: FieldsV1 as the API server writes it -> body paths."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from reconciler.model import FieldChange
from reconciler.plan.fields import (
    applied_by,
    fields_v1_for,
    last_applied,
    managed_fields,
    parse_fields_v1,
    shared,
)

# Shapes copied from what kube-apiserver returns for a NetworkPolicy created with
# `kubectl create`, labelled with `kubectl label`, and a status writer.
KUBECTL_CREATE = {
    "manager": "kubectl-create",
    "operation": "Update",
    "apiVersion": "networking.k8s.io/v1",
    "time": "2026-02-01T09:00:00Z",
    "fieldsType": "FieldsV1",
    "fieldsV1": {
        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
        "f:spec": {"f:ingress": {}, "f:podSelector": {}, "f:policyTypes": {}},
    },
}
OURS = {
    "manager": "policy-reconciler",
    "operation": "Apply",
    "apiVersion": "networking.k8s.io/v1",
    "time": "2026-02-01T09:05:00Z",
    "fieldsType": "FieldsV1",
    "fieldsV1": {
        "f:metadata": {"f:labels": {"f:applyset.kubernetes.io/part-of": {}, "f:app": {}}},
        "f:spec": {"f:ingress": {}, "f:podSelector": {}},
    },
}
STATUS_APPLY = {
    "manager": "policy-reconciler",
    "operation": "Apply",
    "apiVersion": "networking.k8s.io/v1",
    "time": "2026-02-01T09:06:00Z",
    "fieldsType": "FieldsV1",
    "fieldsV1": {"f:status": {"f:conditions": {}}},
    "subresource": "status",
}


def test_parse_fields_v1_fields_nodes_and_leaves() -> None:
    leaves, nodes = parse_fields_v1(KUBECTL_CREATE["fieldsV1"])  # type: ignore[arg-type]
    assert leaves == {
        ("metadata", "labels", "app"),
        ("spec", "ingress"),
        ("spec", "podSelector"),
        ("spec", "policyTypes"),
    }
    assert nodes == {("metadata", "labels")}


def test_keyed_and_set_elements_own_their_list_whole() -> None:
    fields = {
        "f:metadata": {
            "f:finalizers": {".": {}, 'v:"example.com/hold"': {}},
            "f:ownerReferences": {
                ".": {},
                'k:{"uid":"0b0e6a1c-7f7e-4b8e-9a55-3a9c1f1f2b11"}': {".": {}, "f:name": {}},
            },
        },
        "f:spec": {"f:items": {"i:2": {"f:name": {}}}},
    }
    leaves, nodes = parse_fields_v1(fields)
    assert ("metadata", "finalizers") in leaves
    assert ("metadata", "ownerReferences") in leaves
    assert ("spec", "items", 2, "name") in leaves
    assert ("metadata", "finalizers") in nodes


def test_managed_fields_reads_every_entry() -> None:
    body = {"metadata": {"managedFields": [KUBECTL_CREATE, OURS]}}
    entries = managed_fields(body)
    assert [e.manager for e in entries] == ["kubectl-create", "policy-reconciler"]
    assert entries[0].change == FieldChange("kubectl-create", "Update", "2026-02-01T09:00:00Z")


def test_managed_fields_tolerates_missing_metadata() -> None:
    assert managed_fields({}) == ()
    assert managed_fields({"metadata": {"managedFields": None}}) == ()


def test_applied_by_keeps_only_our_apply_on_the_main_resource() -> None:
    entries = managed_fields({"metadata": {"managedFields": [KUBECTL_CREATE, OURS, STATUS_APPLY]}})
    assert applied_by(entries, "policy-reconciler") == {
        ("metadata", "labels", "applyset.kubernetes.io/part-of"),
        ("metadata", "labels", "app"),
        ("spec", "ingress"),
        ("spec", "podSelector"),
    }
    assert applied_by(entries, "kubectl-create") == frozenset()  # an Update is not an apply


def test_owns_and_touches() -> None:
    (entry,) = managed_fields({"metadata": {"managedFields": [KUBECTL_CREATE]}})
    assert entry.owns(("spec", "ingress", 0, "from"))  # inside an atomic list it owns
    assert entry.owns(("metadata", "labels", "app"))
    assert not entry.owns(("metadata", "labels", "team"))  # owning the map is not its keys
    assert entry.touches(("metadata", "labels"))
    assert entry.touches(("spec",))  # it owns something inside spec
    assert not entry.touches(("spec", "egress"))


def test_fields_v1_for_matches_the_server_shape() -> None:
    body = {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"podSelector": {}, "ingress": [{"from": []}], "order": 10},
    }
    assert fields_v1_for(body) == {
        "f:metadata": {"f:labels": {"f:app": {}}},
        "f:spec": {"f:podSelector": {}, "f:ingress": {}, "f:order": {}},
    }


_keys = st.text(alphabet="abcxyz./-", min_size=1, max_size=6)
_values = st.recursive(
    st.one_of(st.integers(), st.text(max_size=3), st.lists(st.integers(), max_size=2)),
    lambda inner: st.dictionaries(_keys, inner, max_size=3),
    max_leaves=8,
)


def _leaf_paths(value: object, path: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    if isinstance(value, dict) and value:
        return {p for k, v in value.items() for p in _leaf_paths(v, (*path, k))}
    return {path}


@given(st.dictionaries(_keys, _values, min_size=1, max_size=4))
def test_parse_inverts_fields_v1_for(body: dict[str, object]) -> None:
    leaves, nodes = parse_fields_v1(fields_v1_for(body))
    assert leaves == _leaf_paths(body)
    assert nodes == frozenset()


def _listed(*entries: Mapping[str, object]) -> dict[str, Any]:
    """A body as a LIST returns it: every object's managedFields decoded on its own."""
    return {"metadata": {"name": "web", "managedFields": json.loads(json.dumps(entries))}}


def test_shared_keeps_the_value_and_gives_one_tree_per_shape() -> None:
    first, second = _listed(KUBECTL_CREATE, OURS), _listed(OURS)
    before = copy.deepcopy((first, second))
    assert (shared(first), shared(second)) == before  # the same value...
    tree = first["metadata"]["managedFields"][1]["fieldsV1"]
    assert second["metadata"]["managedFields"][0]["fieldsV1"] is tree
    assert last_applied(first, "policy-reconciler") == last_applied(before[0], "policy-reconciler")
    # ...while another manager's different fields keep a tree of their own
    assert first["metadata"]["managedFields"][0]["fieldsV1"] is not tree


def test_shared_leaves_malformed_entries_as_they_are() -> None:
    body = {"metadata": {"managedFields": ["not an entry", {"fieldsV1": "text"}]}}
    assert shared(copy.deepcopy(body)) == body
    assert shared({"metadata": None}) == {"metadata": None}
