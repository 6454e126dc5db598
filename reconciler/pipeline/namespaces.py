"""What the API server would refuse for certain, found at plan time from one read.

An object in a namespace that does not exist (or is being deleted) cannot be created,
and neither can the ApplySet parent ConfigMap. `plan` says so as errors with the
object's `path:line`, instead of `apply` failing half way; `apply --create-namespace`
creates them first, as `helm install --create-namespace` does.

The Namespaces are read (one LIST) only when the answer is not already known: on the
first run (no ApplySet parent yet) or when the render asks for a namespace the parent
does not record. A steady state reads nothing more.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from reconciler import applyset as aset
from reconciler.cluster.client import NAMESPACES, Cluster
from reconciler.generate import Namespace
from reconciler.model import Finding, Resource, Severity
from reconciler.observe import Facts
from reconciler.observe.facts import OFFLINE_TARGET

CREATE_HINT = "create it first, or run `apply --create-namespace`"


def unsure(facts: Facts, wanted: Iterable[aset.Inventory]) -> bool:
    """Whether the Namespaces must be read to know that every one needed exists."""
    if facts.namespaces is not None:
        return False
    recorded = facts.recorded
    if recorded is None:
        return True
    needed = frozenset(ns for inventory in wanted for ns in inventory.namespaces)
    return not needed <= recorded.namespaces


def missing(
    facts: Facts, resources: Sequence[Resource], applyset: aset.ApplySet, *, create: bool
) -> tuple[Finding, ...]:
    """Errors (warnings when `create`): objects whose namespace is absent or terminating,
    and the ApplySet parent's namespace on a cluster where the parent does not exist yet."""
    if facts.namespaces is None:
        return ()
    present = {ns.name: ns for ns in facts.namespaces}
    severity = Severity.WARNING if create else Severity.ERROR
    found = [
        Finding(severity, _why(r.ref.namespace, present), origin=r.origin, ref=r.ref)
        for r in resources
        if r.ref.namespace and _absent(r.ref.namespace, present)
    ]
    ours = applyset.namespace
    if facts.parent is None and facts.target != OFFLINE_TARGET and _absent(ours, present):
        message = (
            f"namespace {ours!r} of the ApplySet parent ConfigMap (--namespace), which "
            f"records what we own, {_state(ours, present)}: apply would write nothing; "
            f"{CREATE_HINT} (kubectl create namespace {ours}), or pass another --namespace"
        )
        found.append(Finding(severity, message))
    return tuple(found)


def to_create(facts: Facts, resources: Sequence[Resource], applyset: aset.ApplySet) -> list[str]:
    """The absent namespaces `apply --create-namespace` creates, the parent's first."""
    if facts.namespaces is None:
        return []
    present = {ns.name for ns in facts.namespaces}
    names = [applyset.namespace] if facts.parent is None else []
    names += [r.ref.namespace for r in resources if r.ref.namespace]
    return [n for n in dict.fromkeys(names) if n not in present]


def create(cluster: Cluster, names: Iterable[str], *, field_manager: str) -> None:
    for name in names:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        cluster.apply(NAMESPACES, body, field_manager=field_manager)


def _absent(name: str, present: Mapping[str, Namespace]) -> bool:
    ns = present.get(name)
    return ns is None or ns.terminating


def _state(name: str, present: Mapping[str, Namespace]) -> str:
    return "is being deleted" if name in present else "does not exist"


def _why(name: str, present: Mapping[str, Namespace]) -> str:
    state = _state(name, present)
    return f"namespace {name!r} {state}: the API server would refuse this object; {CREATE_HINT}"
