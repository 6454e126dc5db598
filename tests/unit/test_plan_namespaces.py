"""Plan-time namespace checks (pipeline/namespaces.py): what the API server would refuse."""

from __future__ import annotations

from reconciler import applyset as aset
from reconciler.calico.flavour import crd_flavour
from reconciler.generate import Namespace
from reconciler.model import ObjectRef, Origin, Resource, Severity
from reconciler.observe import Facts
from reconciler.pipeline import namespaces

OURS = aset.ApplySet("policy-reconciler", "policy-reconciler")
NP = ObjectRef("networking.k8s.io", "v1", "NetworkPolicy", "shop", "web")
GNP = ObjectRef("projectcalico.org", "v3", "GlobalNetworkPolicy", "", "ssh")
RESOURCES = [Resource(NP, {}, Origin("apps/shop.yaml", 4)), Resource(GNP, {}, Origin("g.yaml", 1))]
PARENT = {"metadata": {"name": "policy-reconciler", "namespace": "policy-reconciler"}}


def facts(*names: str, parent: bool = False, terminating: str = "") -> Facts:
    listed = tuple(Namespace(n, {}, terminating=n == terminating) for n in names)
    return Facts("ctx", crd_flavour((3, 31)), parent=PARENT if parent else None, namespaces=listed)


def test_an_object_in_an_absent_namespace_is_an_error_at_its_file_and_line() -> None:
    (error,) = namespaces.missing(facts("policy-reconciler"), RESOURCES, OURS, create=False)
    assert error.severity is Severity.ERROR and str(error.origin) == "apps/shop.yaml:4"
    assert "namespace 'shop' does not exist" in error.message
    assert "apply --create-namespace" in error.message
    # negative control: the namespace exists
    assert (
        namespaces.missing(facts("policy-reconciler", "shop"), RESOURCES, OURS, create=False) == ()
    )


def test_a_terminating_namespace_refuses_too() -> None:
    found = namespaces.missing(
        facts("policy-reconciler", "shop", terminating="shop"), RESOURCES, OURS, create=False
    )
    assert [f.message.split(":")[0] for f in found] == ["namespace 'shop' is being deleted"]


def test_the_applyset_parents_namespace_before_a_first_apply() -> None:
    found = namespaces.missing(facts("shop"), RESOURCES, OURS, create=False)
    assert [f.origin for f in found] == [None]
    assert "namespace 'policy-reconciler' of the ApplySet parent ConfigMap" in found[0].message
    assert namespaces.missing(facts("shop", parent=True), RESOURCES, OURS, create=False) == ()
    # --create-namespace: warnings, and the namespaces to create, the parent's first
    warned = namespaces.missing(facts(), RESOURCES, OURS, create=True)
    assert {f.severity for f in warned} == {Severity.WARNING}
    assert namespaces.to_create(facts(), RESOURCES, OURS) == ["policy-reconciler", "shop"]


def test_nothing_is_said_when_the_namespaces_were_not_read() -> None:
    unread = Facts("ctx", crd_flavour((3, 31)), parent=PARENT)
    assert namespaces.missing(unread, RESOURCES, OURS, create=False) == ()
