"""Small builders of the core values, shared by tests (instead of a copy per file).

gnp_ref("allow-ssh")                -> ObjectRef of a projectcalico.org/v3 GlobalNetworkPolicy
knp_ref("shop", "web")              -> ObjectRef of a Kubernetes NetworkPolicy
change("allow-ssh", Action.UPDATE)  -> Change (a name means a GlobalNetworkPolicy)
plan(change(...), findings=...)     -> Plan
planned(desired, live, prune=False) -> the Plan make_plan makes of them
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reconciler.model import (
    Action,
    Change,
    DiffEntry,
    Finding,
    ObjectRef,
    Origin,
    Plan,
    Resource,
    Revision,
)
from reconciler.plan import Desired, Live, PlanOptions, make_plan

CALICO_V3 = ("projectcalico.org", "v3")
REVISION = Revision("4f1c2a9be07d3355aa1100ccddeeff0011223344", "/repo")


def gnp_ref(name: str, *, group_version: tuple[str, str] = CALICO_V3) -> ObjectRef:
    return ObjectRef(*group_version, "GlobalNetworkPolicy", "", name)


def knp_ref(namespace: str, name: str) -> ObjectRef:
    return ObjectRef("networking.k8s.io", "v1", "NetworkPolicy", namespace, name)


def change(
    ref: ObjectRef | str,
    action: Action,
    *diff: DiffEntry,
    origin: Origin | None = None,
    body: dict[str, Any] | None = None,
    live: dict[str, Any] | None = None,
    **extra: Any,
) -> Change:
    """A Change; a prune carries no desired object, every other action does."""
    ref = gnp_ref(ref) if isinstance(ref, str) else ref
    where = origin or Origin("policies/hosts.yaml", 12)
    desired = Resource(ref, body or {"kind": ref.kind}, where)
    wanted = None if action is Action.PRUNE else desired
    return Change(ref, action, wanted, {} if live is None else live, diff, **extra)


def plan(
    *changes: Change,
    findings: tuple[Finding, ...] = (),
    target: str = "prod",
    revision: Revision = REVISION,
) -> Plan:
    return Plan(revision, changes, findings, target=target)


def planned(
    desired: Sequence[Desired],
    live: Sequence[Live],
    *,
    revision: Revision = REVISION,
    findings: Sequence[Finding] = (),
    **options: Any,
) -> Plan:
    """What the planner makes of `desired` and `live`; `options` are PlanOptions fields."""
    return make_plan(
        revision=revision,
        desired=desired,
        live=live,
        options=PlanOptions(**options),
        findings=findings,
    )
