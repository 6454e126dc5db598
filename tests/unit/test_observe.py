"""Observed values: one read shared by several plans gives each exactly its own view."""

from __future__ import annotations

from typing import Any

from reconciler import pipeline
from reconciler.applyset import Inventory
from reconciler.model import GroupKind, ObjectRef, Origin, Resource, Revision
from reconciler.observe import OFFLINE_TARGET, Objects, Observed, offline_facts
from reconciler.plan import Desired, Live

GNP = GroupKind("crd.projectcalico.org", "GlobalNetworkPolicy")
NP = GroupKind("networking.k8s.io", "NetworkPolicy")


def body(gk: GroupKind, name: str) -> dict[str, Any]:
    version = "v1"
    return {"apiVersion": f"{gk.group}/{version}", "kind": gk.kind, "metadata": {"name": name}}


def live(gk: GroupKind, name: str, *, owned: bool = True) -> Live:
    return Live(ObjectRef(gk.group, "v1", gk.kind, "", name), body(gk, name), owned)


def desired(gk: GroupKind, name: str) -> Desired:
    ref = ObjectRef(gk.group, "v1", gk.kind, "", name)
    return Desired(Resource(ref, body(gk, name), Origin("p.yaml", 1)), body(gk, name))


def test_a_plan_sees_only_its_inventorys_kinds_and_its_own_namesakes() -> None:
    ours_gnp, ours_np = live(GNP, "a"), live(NP, "b")
    theirs = live(GNP, "c", owned=False)
    objects = Objects((ours_gnp, ours_np), frozenset({GNP, NP}), {theirs.ref.key: theirs})
    head = objects.for_plan(Inventory(frozenset({GNP})), [desired(GNP, "a"), desired(GNP, "c")])
    assert head == [ours_gnp, theirs]
    base = objects.for_plan(Inventory(frozenset({GNP, NP})), [desired(GNP, "a")])
    assert base == [ours_gnp, ours_np]  # c is not the base's: no namesake for it


def test_an_owned_object_of_a_kind_outside_the_inventory_is_still_found_by_name() -> None:
    ours_np = live(NP, "b")
    objects = Objects((ours_np,), frozenset({NP}))
    assert objects.for_plan(Inventory(frozenset({GNP})), [desired(NP, "b")]) == [ours_np]


def test_offline_planning_is_plan_observed_over_offline_facts(tmp_path: Any) -> None:
    (tmp_path / "p.yaml").write_text(
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: a}\n"
        "spec: {selector: all(), types: [Ingress], ingress: [{action: Allow}]}\n"
    )
    settings = pipeline.Settings()
    rendered = pipeline.render(tmp_path, Revision("dir:x", str(tmp_path)), settings)
    observed = Observed(offline_facts(settings.calico))
    planned = pipeline.plan_observed(rendered, observed, settings)
    assert planned.plan == pipeline.plan_offline(rendered, settings)
    assert planned.plan.target == OFFLINE_TARGET
    assert [c.action.value for c in planned.plan.changes] == ["create"]
    assert planned.inventories.recorded is None and not planned.suspended
