"""Firewall-safe order (design invariant 4), as data.

A kind's stage comes from `kinds.KindSpec.stage`. Policies have no fixed stage:
one that only widens what is allowed goes in before host endpoints start
enforcing, and one that narrows it (a Deny or Pass rule, or a declared direction
with no rules, which isolates) goes in after them. Prunes run in reverse.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler import kinds
from reconciler.kinds import Stage
from reconciler.model import Action, Body, Change, ObjectRef
from reconciler.plan.diff import calico_policy_types, k8s_policy_types

# Calico rule action -> the stage a policy holding it needs. Log goes on to the next
# rule, so it narrows nothing by itself; an unknown action is treated as narrowing.
ACTION_STAGE: Mapping[str, Stage] = {
    "Allow": Stage.ALLOW,
    "Log": Stage.ALLOW,
    "Deny": Stage.RESTRICT,
    "Pass": Stage.RESTRICT,
}
DIRECTION_RULES: Mapping[str, str] = {"Ingress": "ingress", "Egress": "egress"}


@dataclass(frozen=True, slots=True)
class _Dialect:
    types_field: str
    infer_types: Callable[[Mapping[str, Any]], list[str]]
    rule_stage: Callable[[Mapping[str, Any]], Stage]


def _calico_rule(rule: Mapping[str, Any]) -> Stage:
    return ACTION_STAGE.get(str(rule.get("action")), Stage.RESTRICT)


def _k8s_rule(rule: Mapping[str, Any]) -> Stage:
    # Kubernetes rules only allow; the isolation the first policy brings to a pod is
    # covered by a direction without rules (deny-all) being RESTRICT.
    return Stage.ALLOW


def _felix_types(spec: Mapping[str, Any]) -> list[str]:
    # felix/calc/policy_sorter.go: a stored v1 policy without types applies both ways.
    return ["Ingress", "Egress"]


# API group of the body -> how to read a policy written in it.
_DIALECTS: Mapping[str, _Dialect] = {
    kinds.CALICO_V3: _Dialect("types", calico_policy_types, _calico_rule),
    kinds.CALICO_CRD: _Dialect("types", _felix_types, _calico_rule),
    kinds.K8S_NETWORKING: _Dialect("policyTypes", k8s_policy_types, _k8s_rule),
}


def stage_of(ref: ObjectRef, body: Mapping[str, Any]) -> Stage:
    """The firewall-safe stage of one object (its kind's, or its posture for a policy)."""
    spec = _kind_spec(ref, body)
    if spec is None:
        return Stage.RESTRICT  # not a kind we know: latest in, first out
    if spec.stage is not None:
        return spec.stage
    group = kinds.group_of(str(body.get("apiVersion") or "")) or ref.group
    dialect = _DIALECTS.get(group, _DIALECTS[kinds.CALICO_CRD])
    return _posture(body.get("spec") or {}, dialect)


def in_apply_order(changes: Iterable[Change]) -> tuple[Change, ...]:
    """Writes (and the rest) by (stage, kind, namespace, name), then prunes by stage reversed."""
    return tuple(sorted(changes, key=_sort_key))


def batches(
    changes: Sequence[Change], *, one_by_one: bool = False
) -> tuple[tuple[Change, ...], ...]:
    """The ordered changes cut into consecutive groups that may be written concurrently.

    `one_by_one`: the order was checked on the connectivity model state by state
    (plan/safe.py), and only that sequence of states is known to be safe: a batch per
    write. (A bridged plan is safe in any order between the bridge's writes, so it keeps
    the stage batches.)

    A batch is a run of consecutive changes of one stage (writes), or of one stage of
    prunes: nothing inside a batch depends on another member, and every batch is a
    barrier, written completely before the next one starts, so the firewall-safe
    order holds between stages whatever the concurrency inside one. The order of
    `changes` is kept, never re-sorted.
    """
    if one_by_one:
        return tuple((c,) for c in changes)
    groups: list[list[Change]] = []
    previous: tuple[bool, Stage] | None = None
    for change in changes:
        key = (change.action is Action.PRUNE, stage_of(change.ref, _body_of(change)))
        if key != previous:
            groups.append([])
            previous = key
        groups[-1].append(change)
    return tuple(tuple(group) for group in groups)


def _sort_key(change: Change) -> tuple[int, int, str, str, str, str, str]:
    ref = change.ref
    stage = stage_of(ref, _body_of(change))
    pruning = change.action is Action.PRUNE
    rank = -stage if pruning else stage
    return (int(pruning), rank, ref.kind, ref.group, ref.namespace, ref.name, ref.version)


def _body_of(change: Change) -> Body:
    # A write is staged by what it makes the object, a prune by what it takes away.
    return change.desired.body if change.desired else change.live or {}


def _kind_spec(ref: ObjectRef, body: Mapping[str, Any]) -> kinds.KindSpec | None:
    found = kinds.spec_for(ref.api_version, ref.kind)
    return found or kinds.spec_for(str(body.get("apiVersion") or ""), ref.kind)


def _posture(spec: Mapping[str, Any], dialect: _Dialect) -> Stage:
    types = spec.get(dialect.types_field) or dialect.infer_types(spec)
    return max((_direction(spec, str(t), dialect) for t in types), default=Stage.RESTRICT)


def _direction(spec: Mapping[str, Any], direction: str, dialect: _Dialect) -> Stage:
    rules = spec.get(DIRECTION_RULES.get(direction, "")) or ()
    if not rules:
        return Stage.RESTRICT  # a declared direction without rules denies it all
    return max(dialect.rule_stage(r) if isinstance(r, Mapping) else Stage.RESTRICT for r in rules)
