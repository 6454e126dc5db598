"""Prune guard (design invariant 3): empty render, share limit, annotation, ownership."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from reconciler.cli.options import parse_share
from reconciler.model import Action, Finding, ObjectRef, Origin, Plan, Resource, Revision, Severity
from reconciler.plan import Desired, Live
from reconciler.plan.fields import fields_v1_for
from reconciler.plan.guard import is_refusal
from tests.factories import planned

PART_OF = "applyset.kubernetes.io/part-of"
REV = Revision("0123abcd", "policies/")


def ref(name: str) -> ObjectRef:
    return ObjectRef("projectcalico.org", "v3", "GlobalNetworkSet", "", name)


def body(name: str, *, labels: dict[str, str], annotations: dict[str, str] | None = None) -> Any:
    meta: dict[str, Any] = {"name": name, "labels": labels}
    if annotations:
        meta["annotations"] = annotations
    return {
        "apiVersion": "crd.projectcalico.org/v1",
        "kind": "GlobalNetworkSet",
        "metadata": meta,
        "spec": {"nets": ["10.0.0.0/8"]},
    }


def want(name: str) -> Desired:
    b = body(name, labels={PART_OF: "applyset-x-v1"})
    return Desired(Resource(ref(name), b, Origin(f"sets/{name}.yaml", 1)), b)


def have(name: str, *, owned: bool = True, annotations: dict[str, str] | None = None) -> Live:
    labels = {PART_OF: "applyset-x-v1"} if owned else {"team": "netops"}
    b = body(name, labels=labels, annotations=annotations)
    b["metadata"]["managedFields"] = [
        {
            "manager": "policy-reconciler" if owned else "kubectl-create",
            "operation": "Apply" if owned else "Update",
            "apiVersion": "crd.projectcalico.org/v1",
            "time": "2026-01-10T12:00:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": fields_v1_for({"metadata": {"labels": labels}, "spec": b["spec"]}),
        }
    ]
    return Live(ref(name), b, owned)


plan = functools.partial(planned, revision=REV)


def pruned(p: Plan) -> list[str]:
    return [c.ref.name for c in p.changes if c.action is Action.PRUNE]


def names(n: int) -> list[str]:
    return [f"set-{i:02}" for i in range(n)]


def test_prunes_within_the_limit() -> None:
    p = plan([want(n) for n in names(8)], [have(n) for n in names(10)])
    assert pruned(p) == ["set-08", "set-09"]
    assert p.findings == ()


def test_exactly_at_the_limit_is_allowed() -> None:
    p = plan([want(n) for n in names(7)], [have(n) for n in names(10)], max_prune=0.3)
    assert pruned(p) == ["set-07", "set-08", "set-09"]
    assert not p.errors


def test_over_the_limit_refuses_every_prune() -> None:
    p = plan([want(n) for n in names(6)], [have(n) for n in names(10)], max_prune=0.3)
    assert pruned(p) == []
    (error,) = p.errors
    assert "refusing to prune 4 of 10 managed objects (40%)" in error.message
    assert "--max-prune 40%" in error.message
    assert "GlobalNetworkSet/set-06" in error.message
    assert is_refusal(error) and p.refused_prunes == 4
    assert p.count(Action.UNCHANGED) == 6  # the writes are still planned (and reported)


def test_a_raised_limit_lets_the_prunes_through() -> None:
    p = plan([want(n) for n in names(6)], [have(n) for n in names(10)], max_prune=0.4)
    assert pruned(p) == ["set-06", "set-07", "set-08", "set-09"]


def test_refusal_names_at_most_ten_objects() -> None:
    p = plan([want("set-00")], [have(n) for n in names(20)])
    (error,) = p.errors
    assert "set-19" not in error.message
    assert "and 9 more" in error.message


def test_empty_render_never_prunes() -> None:
    p = plan([], [have(n) for n in names(3)], max_prune=1.0)
    assert pruned(p) == []
    (error,) = p.errors
    assert "rendered no objects" in error.message
    assert "--allow-empty" in error.message


def test_empty_render_with_allow_empty_still_respects_the_share() -> None:
    p = plan([], [have(n) for n in names(3)], allow_empty=True)
    assert pruned(p) == []
    (error,) = p.errors
    assert error.message.startswith("refusing to prune 3 of 3 managed objects (100%) in one run")


def test_empty_render_allowed_and_unlimited_prunes_everything() -> None:
    p = plan([], [have(n) for n in names(3)], allow_empty=True, max_prune=1.0)
    assert pruned(p) == names(3)
    assert not p.errors


def test_empty_render_with_nothing_managed_is_fine() -> None:
    p = plan([], [have("foreign", owned=False)])
    assert p.changes == ()
    assert p.findings == ()


def test_prune_disabled_annotation_keeps_the_object_with_a_warning() -> None:
    kept = have("set-09", annotations={"policy-reconciler.io/prune": "disabled"})
    p = plan([want(n) for n in names(9)], [*(have(n) for n in names(9)), kept])
    assert pruned(p) == []
    (warning,) = p.findings
    assert warning.severity is Severity.WARNING
    assert warning.ref == ref("set-09")
    assert "policy-reconciler.io/prune: disabled" in warning.message


def test_kept_objects_do_not_count_against_the_limit() -> None:
    off = {"policy-reconciler.io/prune": "disabled"}
    live = [have(n, annotations=off) for n in names(5)] + [have("extra")]
    p = plan([], live, allow_empty=True, max_prune=0.2)
    assert pruned(p) == ["extra"]  # 1 of 6 managed is within 20%
    assert len(p.findings) == 5


def test_objects_we_do_not_own_are_never_pruned() -> None:
    p = plan([want("set-00")], [have("set-00"), have("theirs", owned=False)], max_prune=1.0)
    assert pruned(p) == []
    assert [c.ref.name for c in p.changes] == ["set-00"]


def test_prune_off_plans_no_prune_and_no_refusal() -> None:
    p = plan([], [have(n) for n in names(3)], prune=False)
    assert p.changes == ()
    assert p.findings == ()


def test_validation_errors_stop_every_prune_but_are_carried() -> None:
    invalid = Finding(Severity.ERROR, "unknown kind Foo", origin=Origin("x.yaml", 3))
    p = plan([want("set-00")], [have("set-00"), have("stale")], max_prune=1.0, findings=[invalid])
    assert pruned(p) == []
    assert p.errors == (invalid,)


@pytest.mark.parametrize("value", ["disabled", "Disabled", " disabled "])
def test_annotation_value_is_read_leniently(value: str) -> None:
    off = {"policy-reconciler.io/prune": value}
    p = plan([want("a")], [have("a"), have("b", annotations=off)], max_prune=1.0)
    assert pruned(p) == []
    assert [f.severity for f in p.findings] == [Severity.WARNING]


def test_other_annotation_values_do_not_protect() -> None:
    p = plan(
        [want("a")],
        [have("a"), have("b", annotations={"policy-reconciler.io/prune": "enabled"})],
        max_prune=1.0,
    )
    assert pruned(p) == ["b"]


def test_the_hint_in_percent_is_enough_and_one_less_is_not() -> None:
    """17 of 26 (the issue's case): the hint's value lets exactly those prunes through."""
    p = plan([want(n) for n in names(9)], [have(n) for n in names(26)])
    (error,) = p.errors
    assert "--max-prune 66%" in error.message and p.refused_prunes == 17
    enough = plan(
        [want(n) for n in names(9)], [have(n) for n in names(26)], max_prune=parse_share("66%")
    )
    assert len(pruned(enough)) == 17 and not enough.errors
    short = plan(
        [want(n) for n in names(9)], [have(n) for n in names(26)], max_prune=parse_share("65%")
    )
    assert pruned(short) == [] and short.refused_prunes == 17
