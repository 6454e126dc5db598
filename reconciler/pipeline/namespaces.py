"""What the API server would refuse for certain, found at plan time from one read.

An object in a namespace that does not exist (or is being deleted) cannot be created,
and neither can the ApplySet parent ConfigMap. `plan` says so as errors with the
object's `path:line`, instead of `apply` failing half way; `apply --create-namespace`
creates them first, as `helm install --create-namespace` does.

The Namespaces are read (one LIST) only when the render asks for a namespace the
ApplySet parent does not record (every namespace on the first run). Without a parent and
without namespaced objects, one GET of the parent's namespace answers. A steady state
reads nothing more.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from reconciler import applyset as aset
from reconciler.cluster.client import NAMESPACES, Cluster
from reconciler.generate import Namespace
from reconciler.model import Finding, Resource, Severity
from reconciler.observe import Facts, read_namespaces
from reconciler.observe.facts import OFFLINE_TARGET

CREATE_HINT = "create it first, or run `apply --create-namespace`"


def read(cluster: Cluster, facts: Facts, wanted: Iterable[aset.Inventory], ns: str) -> Facts:
    """`facts` with what is needed to know that every namespace needed exists: the
    Namespaces (one LIST), or only whether the ApplySet parent's exists (one GET)."""
    if facts.namespaces is not None:
        return facts
    recorded = facts.recorded
    needed = frozenset(n for inventory in wanted for n in inventory.namespaces)
    if needed and not needed <= (recorded.namespaces if recorded else frozenset()):
        return replace(facts, namespaces=tuple(read_namespaces(cluster)))
    if facts.parent is None:
        return replace(facts, parent_namespace=cluster.get(NAMESPACES, ns, "") is not None)
    return facts


def missing(
    facts: Facts, resources: Sequence[Resource], applyset: aset.ApplySet, *, create: bool
) -> tuple[Finding, ...]:
    """Errors (warnings when `create`): objects whose namespace is absent or terminating,
    and the ApplySet parent's namespace on a cluster where the parent does not exist yet."""
    present = {ns.name: ns for ns in facts.namespaces or ()}
    severity = Severity.WARNING if create else Severity.ERROR
    found = [
        Finding(severity, _why(r.ref.namespace, present), origin=r.origin, ref=r.ref)
        for r in resources
        if facts.namespaces is not None and r.ref.namespace and _absent(r.ref.namespace, present)
    ]
    ours = applyset.namespace
    if facts.parent is None and facts.target != OFFLINE_TARGET and _parent_absent(facts, ours):
        message = (
            f"namespace {ours!r} of the ApplySet parent ConfigMap (--namespace), which "
            f"records what we own, {_state(ours, present)}: apply would write nothing; "
            f"{CREATE_HINT} (kubectl create namespace {ours}), or pass another --namespace"
        )
        found.append(Finding(severity, message))
    return tuple(found)


def to_create(facts: Facts, resources: Sequence[Resource], applyset: aset.ApplySet) -> list[str]:
    """The absent namespaces `apply --create-namespace` creates, the parent's first."""
    ours = applyset.namespace
    names = [ours] if facts.parent is None and _parent_absent(facts, ours) else []
    if facts.namespaces is not None:
        present = {ns.name for ns in facts.namespaces}
        names += [r.ref.namespace for r in resources if r.ref.namespace not in ("", *present)]
    return list(dict.fromkeys(names))


def _parent_absent(facts: Facts, name: str) -> bool:
    if facts.namespaces is not None:
        return _absent(name, {ns.name: ns for ns in facts.namespaces})
    return facts.parent_namespace is False


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
