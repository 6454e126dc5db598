"""pipeline.heal.decide_one: the planner on a one-object observed set, and what it leaves
to the full re-plan (None): objects without our label, objects Git does not have, and
renders with ConnectivityChecks (the full plan evaluates them on the live firewall)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from reconciler import pipeline
from reconciler.applyset import PART_OF, ApplySet
from reconciler.model import Action, Revision
from reconciler.observe import Observed, offline_facts
from reconciler.pipeline.heal import decide_one
from tests.cluster.engine import gnp

SETTINGS = pipeline.Settings(ApplySet("heal", "policy-reconciler"))
CHECK = """apiVersion: policy-reconciler.io/v1alpha1
kind: ConnectivityCheck
metadata: {name: admins}
spec:
  from: {cidr: "203.0.113.0/24"}
  to: {nodeSelector: "all()"}
  ports: ["tcp/22"]
  expect: allow
"""


def _planned(tmp_path: Path, *extra: str) -> pipeline.Planned:
    docs = [gnp("ssh"), gnp("web", order=11)]
    (tmp_path / "p.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    for i, text in enumerate(extra):
        (tmp_path / f"x{i}.yaml").write_text(text)
    rendered = pipeline.render(tmp_path, Revision("dir:t", str(tmp_path)), SETTINGS)
    observed = Observed(offline_facts(SETTINGS.calico))
    return pipeline.plan_observed(rendered, observed, SETTINGS)


def _live(planned: pipeline.Planned, name: str, *, order: int) -> dict[str, Any]:
    """The desired body of `name` as the API server holds it after `kubectl edit` set order."""
    assert planned.intent is not None
    (want,) = [d for d in planned.intent.desired if d.resource.ref.name == name]
    body = copy.deepcopy(dict(want.body))
    body["spec"]["order"] = order
    body["metadata"]["managedFields"] = [
        {
            "manager": "policy-reconciler",
            "operation": "Apply",
            "time": "2026-01-01T00:00:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:selector": {}, "f:ingress": {}}},
        },
        {
            "manager": "kubectl-edit",
            "operation": "Update",
            "time": "2026-01-01T00:01:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:order": {}}},
        },
    ]
    return body


def test_an_edited_object_is_one_drift_named_by_its_manager(tmp_path: Path) -> None:
    planned = _planned(tmp_path)

    one = decide_one(planned, _live(planned, "ssh", order=99), SETTINGS)

    assert one is not None
    (change,) = one.plan.changes
    assert (change.action, change.ref.name) == (Action.DRIFT, "ssh")
    assert [f.manager for f in change.drifted_by] == ["kubectl-edit"]
    assert change.desired is not None and change.desired.body["spec"]["order"] == 10
    # The parent keeps what the full plan recorded: nothing to write there.
    assert one.inventories.recorded == one.inventories.final == planned.inventories.final


def test_an_object_as_git_has_it_is_unchanged(tmp_path: Path) -> None:
    planned = _planned(tmp_path)

    one = decide_one(planned, _live(planned, "web", order=11), SETTINGS)

    assert one is not None
    assert [c.action for c in one.plan.changes] == [Action.UNCHANGED]


def test_without_our_label_it_is_left_to_the_full_plan(tmp_path: Path) -> None:
    planned = _planned(tmp_path)
    body = _live(planned, "ssh", order=99)
    del body["metadata"]["labels"][PART_OF]

    assert decide_one(planned, body, SETTINGS) is None


def test_an_object_git_does_not_have_is_left_to_the_full_plan(tmp_path: Path) -> None:
    planned = _planned(tmp_path)
    body = _live(planned, "ssh", order=99)
    body["metadata"]["name"] = "default.gone"

    assert decide_one(planned, body, SETTINGS) is None


def test_a_render_with_connectivity_checks_is_left_to_the_full_plan(tmp_path: Path) -> None:
    planned = _planned(tmp_path, CHECK)
    assert planned.intent is not None and planned.intent.rendered.checks

    assert decide_one(planned, _live(planned, "ssh", order=99), SETTINGS) is None
