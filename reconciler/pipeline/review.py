"""A pull request's two plans, head (H) and base (B), for `report` (see `report.pr`).

Live: one read of the cluster serves both plans (`pipeline.observe` over both renders),
so they see the same snapshot, and the report costs one plan's reads. Offline: H is
planned against B's render, as if we had applied the base.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from reconciler import pipeline
from reconciler.cluster.client import Cluster
from reconciler.connectivity import diff
from reconciler.generate import Namespace, Node
from reconciler.model import Action, Plan, Resource
from reconciler.observe import Observed
from reconciler.plan import Desired, Live, make_plan
from reconciler.plan.fields import fields_v1_for
from reconciler.report.pr import OFFLINE, PrReport, as_pr_changes, compare

_OFFLINE_REASONS = {
    Action.CREATE: "not in the base branch",
    Action.UPDATE: "changed from the base branch",
    Action.PRUNE: "removed from the base branch",
}


def live_report(
    cluster: Cluster,
    *,
    head: pipeline.Rendered,
    base: pipeline.Rendered,
    settings: pipeline.Settings,
    base_ref: str = "",
    target: str = "",
) -> PrReport:
    """Both plans against one read of the live cluster: reads only (discovery, GET, LIST)."""
    observed, intents = pipeline.observe(cluster, [head, base], settings)
    head_plan, base_plan = (pipeline.decide(i, observed, settings).plan for i in intents)
    report = compare(
        head_plan, base_plan, target=target or cluster.name or "cluster", base_ref=base_ref
    )
    report = replace(report, base_origins={r.ref.key: r.origin for r in base.resources})
    found = pipeline.worlds(observed, [base_plan, head_plan], settings)
    if found is None:
        return report
    live, base_world, head_world = found  # base -> live is the drift; base -> head the PR
    return replace(report, flows=diff(base_world, head_world), drift_flows=diff(base_world, live))


def offline_against(
    head: pipeline.Rendered,
    base: pipeline.Rendered,
    settings: pipeline.Settings,
    inventory: pipeline.Inventory | None = None,
) -> Plan:
    """No cluster: the head against the base render, as if we had applied the base.

    Each side goes through `pipeline.plan_offline` (the bodies we would apply, templates
    handled as `plan --offline` does); the base's bodies then play the live objects, and
    the start of the head's ConnectivityChecks."""
    return _offline_plans(head, base, settings, inventory or pipeline.Inventory())[0]


def _offline_plans(
    head: pipeline.Rendered,
    base: pipeline.Rendered,
    settings: pipeline.Settings,
    inventory: pipeline.Inventory,
) -> tuple[Plan, Plan, Observed]:
    given = inventory.kwargs()
    head_bodies = pipeline.plan_offline(replace(head, checks=()), settings, **given)
    base_bodies = pipeline.plan_offline(replace(base, checks=()), settings, **given)
    manager = settings.options.field_manager
    plan = make_plan(
        revision=head.revision,
        desired=[Desired(r, r.body) for r in _bodies(head_bodies)],
        live=[Live(r.ref, _applied(r.body, manager), owned=True) for r in _bodies(base_bodies)],
        options=settings.options,
        target=OFFLINE,
        findings=head_bodies.findings,
    )
    facts = inventory.facts(settings.calico)
    start = pipeline.offline_firewall(facts, list(_bodies(base_bodies)))
    observed = Observed(facts, firewall=start)
    plan, _ = pipeline.safe_order(plan, observed, settings)
    return pipeline.check(plan, head.checks, observed, settings), base_bodies, observed


def offline_report(
    *,
    head: pipeline.Rendered,
    base: pipeline.Rendered,
    settings: pipeline.Settings,
    base_ref: str = "",
    target: str = "",
    nodes: Sequence[Node] | None = None,
    namespaces: Sequence[Namespace] | None = None,
    inventory: pipeline.Inventory | None = None,
) -> PrReport:
    """`offline_against`, as a PR report (drift is not checked offline)."""
    given = inventory or pipeline.Inventory(nodes=nodes, namespaces=namespaces)
    plan, base_bodies, observed = _offline_plans(head, base, settings, given)
    found = pipeline.worlds(observed, [plan], settings)
    changes = tuple(
        replace(c, reason=_OFFLINE_REASONS.get(c.action, c.reason))
        for c in as_pr_changes(plan.changes)
    )
    return PrReport(
        target or OFFLINE,
        plan,
        None,
        base.revision,
        base_ref,
        changes,
        base_errors=len(base_bodies.errors),
        base_origins={r.ref.key: r.origin for r in _bodies(base_bodies)},
        flows=diff(*found) if found else None,
    )


def _bodies(plan: Plan) -> Iterator[Resource]:
    """The labelled cluster bodies an offline plan would create (a bridge is no body of the
    repo's: it comes and goes within one apply)."""
    return (c.desired for c in plan.changes if c.desired is not None and not c.transient)


def _applied(body: Mapping[str, Any], field_manager: str) -> dict[str, Any]:
    """`body` as the API server returns it after our server-side apply of it."""
    meta = body.get("metadata") or {}
    owned = {k: v for k, v in body.items() if k not in ("apiVersion", "kind", "metadata")}
    owned["metadata"] = {k: v for k, v in meta.items() if k in ("labels", "annotations")}
    entry = {
        "manager": field_manager,
        "operation": "Apply",
        "apiVersion": body.get("apiVersion", ""),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields_v1_for(owned),
    }
    return {**body, "metadata": {**meta, "managedFields": [entry]}}


__all__ = ["live_report", "offline_report"]
