"""Re-plan the one object a watch event reported, against the plan last applied in full.

The controller's self-heal used to re-LIST and re-plan every managed object to heal one
edit. A watch event already carries the edited object: `decide_one` runs the same
planner (`plan.make_plan`, the three-way diff, the prune guard) on a one-object
observed set: the event's body as the only live object, its desired body from the
intent the last full plan was made from. Anything it cannot decide alone is None, and
the caller falls back to the full re-plan.

Why one write needs no more than this:
- Firewall-safe order: a plan of one write has no state between before and after
  (`plan.safe.has_states_between` is False), so no order can open a gap.
- ConnectivityChecks: the full plan evaluates them on the live firewall, which this
  does not read. A render with checks is left to the full re-plan (None).
- Ownership: only an object with our ApplySet label, and one the intent desires (an
  owned object Git no longer has is a prune: the full plan and its guard decide).
- The inventory: a heal writes no new kind or namespace, so the ApplySet parent keeps
  what the full plan recorded and is not written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from reconciler.apply import Inventories
from reconciler.applyset import PART_OF
from reconciler.kinds import group_kind_of
from reconciler.pipeline import Intent, Planned, Settings
from reconciler.plan import Desired, Live, make_plan

# (group, kind, namespace, name): how the API server names an object
ClusterKey = tuple[str, str, str, str]
# The desired objects of the last intent by cluster name: heals come one by one, and the
# controller plans one revision again and again.
_INDEX: list[tuple[Intent, dict[ClusterKey, Desired]]] = []


def decide_one(planned: Planned, body: Mapping[str, Any], settings: Settings) -> Planned | None:
    """`planned` (applied in full) re-planned for the one live object `body`; None when
    only a full re-plan may decide about it."""
    intent = planned.intent
    if intent is None or intent.rendered.checks or not _ours(body, settings):
        return None
    want = _desired(intent, cluster_key(body))
    if want is None:
        return None
    live = Live(ref=want.resource.ref, body=body, owned=True)
    plan = make_plan(
        revision=intent.rendered.revision,
        desired=[want],
        live=[live],
        options=settings.options,
        target=planned.plan.target,
    )
    kept = planned.inventories.final
    return replace(planned, plan=plan, inventories=Inventories(kept, kept), namespaces_to_create=())


def cluster_key(body: Mapping[str, Any]) -> ClusterKey:
    gk = group_kind_of(body)
    meta = body.get("metadata") or {}
    return (gk.group, gk.kind, str(meta.get("namespace") or ""), str(meta.get("name", "")))


def _desired(intent: Intent, key: ClusterKey) -> Desired | None:
    # Desired bodies are in the cluster's flavour, named as the API server names them.
    if not _INDEX or _INDEX[0][0] is not intent:
        _INDEX[:] = [(intent, {cluster_key(d.body): d for d in intent.desired})]
    return _INDEX[0][1].get(key)


def _ours(body: Mapping[str, Any], settings: Settings) -> bool:
    labels = (body.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(PART_OF) == settings.applyset.id)
