"""The states an apply passes through: the start, then one state after each write.

The one place that says what the cluster holds between two writes of a plan. The
connectivity checks (plan/checks.py) read every state it yields; a plan that groups writes
into batches, or bridges them (make-before-break), changes this function and nothing else.

Objects are matched by identity whatever the API flavour (`projectcalico.org` as the user
writes it, or `crd.projectcalico.org` as it is stored): a Kubernetes NetworkPolicy and a
Calico one of the same name are different objects.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from reconciler.kinds import K8S_NETWORKING
from reconciler.model import Action, Change, ObjectRef, Resource

Identity = tuple[bool, str, str, str]  # Kubernetes networking?, kind, namespace, name


@dataclass(frozen=True, slots=True)
class Step:
    label: str  # "start", "after create HostEndpoint/node-1-firewall"
    resources: tuple[Resource, ...]
    # What changed since the previous step, as (before, after): None where absent. Readers
    # use it to skip a step that cannot touch what they look at (checks stay affordable).
    changed: tuple[tuple[Resource | None, Resource | None], ...] = ()


def identity(ref: ObjectRef) -> Identity:
    return (ref.group == K8S_NETWORKING, ref.kind, ref.namespace, ref.name)


def steps(start: Sequence[Resource], changes: Sequence[Change]) -> Iterator[Step]:
    """`start`, then the state after each write of `changes`, in plan order: a prune removes
    the object; a create, update, adopt or drift heal puts the desired one in its place."""
    state: dict[Identity, Resource] = {identity(r.ref): r for r in start}
    yield Step("start", tuple(state.values()))
    for change in changes:
        if not change.action.writes:
            continue
        key = identity(change.ref)
        before = state.get(key)
        if change.action is Action.PRUNE:
            state.pop(key, None)
        else:
            assert change.desired is not None, "a write other than a prune has a desired object"
            state[key] = change.desired
        label = f"after {change.action.value} {change.ref}"
        yield Step(label, tuple(state.values()), ((before, state.get(key)),))
