"""plan: pure three-way planning. desired + live -> a Plan of Changes in firewall-safe order.

    make_plan(revision=..., desired=[Desired(resource, body)], live=[Live(ref, body, owned)],
              options=PlanOptions()) -> Plan

Modules: `fields` reads managedFields, `diff` normalises and compares bodies,
`order` ranks objects by firewall stage, `guard` refuses dangerous prunes, and
`planner` puts them together.
"""

from reconciler.plan.diff import ATOMIC, DEFAULTS, EMPTY_MEANS_ALL, normalise, render_path
from reconciler.plan.guard import PRUNE_ANNOTATION, prune_disabled
from reconciler.plan.order import stage_of
from reconciler.plan.planner import Desired, Live, PlanOptions, make_plan

__all__ = [
    "ATOMIC",
    "DEFAULTS",
    "EMPTY_MEANS_ALL",
    "PRUNE_ANNOTATION",
    "Desired",
    "Live",
    "PlanOptions",
    "make_plan",
    "normalise",
    "prune_disabled",
    "render_path",
    "stage_of",
]
