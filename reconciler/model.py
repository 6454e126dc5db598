"""Core values that flow through the pipeline.

Every value here is a frozen dataclass. Bodies are plain JSON-like mappings; by
convention no stage mutates a body it was given: it builds a new one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

JSON = Any
Body = Mapping[str, Any]
ObjectKey = tuple[str, str, str, str]  # ObjectRef.key: group, kind, namespace, name


@dataclass(frozen=True, slots=True, order=True)
class GroupKind:
    group: str
    kind: str

    def __str__(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind


@dataclass(frozen=True, slots=True, order=True)
class ObjectRef:
    """Identity of one object. `namespace` is "" for cluster-scoped kinds."""

    group: str
    version: str
    kind: str
    namespace: str
    name: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_kind(self) -> GroupKind:
        return GroupKind(self.group, self.kind)

    @property
    def key(self) -> ObjectKey:
        """Identity without the version: the same object in any API version."""
        return (self.group, self.kind, self.namespace, self.name)

    def __str__(self) -> str:
        if self.namespace:
            return f"{self.kind}/{self.namespace}/{self.name}"
        return f"{self.kind}/{self.name}"

    @property
    def qualified(self) -> str:
        """`NetworkPolicy.projectcalico.org/shop/x`: Kind.group as the repo's apiVersion
        names it, so a Calico and a Kubernetes NetworkPolicy of one name never read alike.
        Every report (text, Markdown, JSON) names objects this way."""
        kind = str(self.group_kind)
        return f"{kind}/{self.namespace}/{self.name}" if self.namespace else f"{kind}/{self.name}"


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a Resource came from: a file and line, or a template and its target."""

    path: str
    line: int = 0
    template: str = ""  # "HostEndpointTemplate/node-firewall" when generated
    target: str = ""  # "Node/worker-1" when generated

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        if self.template:
            return f"{where} ({self.template} for {self.target})"
        return where


@dataclass(frozen=True, slots=True)
class Resource:
    """One desired object, as the user wrote it (user-facing API flavour and names)."""

    ref: ObjectRef
    body: Body
    origin: Origin


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Finding:
    """A validation error or a warning, tied to a place in the repo where known."""

    severity: Severity
    message: str
    origin: Origin | None = None
    ref: ObjectRef | None = None
    field: str = ""  # "spec.ingress[0].source.selector"

    def __str__(self) -> str:
        parts = [str(self.origin) if self.origin else "", str(self.ref) if self.ref else ""]
        parts.append(self.field)
        prefix = ": ".join(p for p in parts if p)
        return f"{prefix}: {self.message}" if prefix else self.message


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"  # Git changed
    DRIFT = "drift"  # someone else changed the live object
    UNCHANGED = "unchanged"
    PRUNE = "prune"
    CONFLICT = "conflict"  # exists, not ours, not adopted
    ADOPT = "adopt"  # exists, not ours, adopted on request

    @property
    def writes(self) -> bool:
        return self in (Action.CREATE, Action.UPDATE, Action.DRIFT, Action.ADOPT, Action.PRUNE)


@dataclass(frozen=True, slots=True)
class DiffEntry:
    """One field that differs. `before`/`after` is MISSING-free: None means absent."""

    path: str  # "spec.ingress[0].action"
    before: JSON
    after: JSON


@dataclass(frozen=True, slots=True)
class FieldChange:
    """Who last wrote a drifted field, from managedFields."""

    manager: str
    operation: str
    time: str


@dataclass(frozen=True, slots=True)
class Change:
    ref: ObjectRef
    action: Action
    desired: Resource | None
    live: Body | None
    diff: tuple[DiffEntry, ...] = ()
    reason: str = ""
    drifted_by: tuple[FieldChange, ...] = ()
    transient: bool = False  # written and removed by the same plan (a make-before-break bridge)


@dataclass(frozen=True, slots=True)
class Revision:
    """What was rendered: a Git commit, or a plain directory."""

    id: str  # commit sha, or "dir:<path>"
    path: str
    author: str = ""
    subject: str = ""
    rewound_from: str = ""  # the applied commit, when a force-push dropped it from history
    dirty: bool = False  # the checkout has local changes (untracked or modified files)


@dataclass(frozen=True, slots=True)
class Order:
    """How the plan's order was made firewall-safe (plan/safe.py), for the reports."""

    method: str = "kind order"  # "kind order", "reordered", "bridged", "unchecked"
    blinks: tuple[str, ...] = ()  # flows both ends allow that some state denies
    states: int = 0  # intermediate states evaluated on the connectivity model
    note: str = ""
    kept: tuple[str, ...] = ()  # the flows a make-before-break bridge keeps open
    one_by_one: bool = False  # only this exact sequence of single writes was checked


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One ConnectivityCheck over the states an apply passes through (plan/checks.py)."""

    name: str
    holds: bool
    state: str = ""  # where it breaks: "desired", "after create HostEndpoint/x"; "" if it holds
    counterexample: str = ""  # "203.0.113.9 -> node node-2 tcp/22 denied by ..., hosts.yaml:31"
    origin: Origin | None = None  # the check's file:line
    skipped: bool = False  # --skip-checks: evaluated and reported, but blocks nothing
    note: str = ""  # e.g. "already broken before this plan"

    @property
    def blocks(self) -> bool:
        return not self.holds and not self.skipped

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "holds": self.holds,
            "state": self.state,
            "counterexample": self.counterexample,
            "origin": str(self.origin) if self.origin else "",
            "skipped": self.skipped,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class Plan:
    revision: Revision
    changes: tuple[Change, ...]  # in apply order (prunes last, in reverse rank)
    findings: tuple[Finding, ...] = ()
    target: str = ""  # cluster/context name
    refused_prunes: int = 0  # prunes the prune guard refused (its finding says why)
    order: Order = Order()
    checks: tuple[CheckResult, ...] = ()  # every ConnectivityCheck of the repo

    @property
    def failing_checks(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if c.blocks)

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    def count(self, action: Action) -> int:
        """Changes of one action, the plan's own transient bridge writes aside."""
        return sum(1 for c in self.changes if c.action is action and not c.transient)

    @property
    def has_changes(self) -> bool:
        return any(c.action.writes for c in self.changes)


@dataclass(frozen=True, slots=True)
class Failure:
    change: Change
    message: str


class Stop(StrEnum):
    """Why the executor stopped before the end of the plan, marked where it happened."""

    INVALID = "invalid"  # the input has errors: nothing written
    CHECKS = "checks"  # a ConnectivityCheck fails on a state of the apply: nothing written
    CONFLICT = "conflict"  # objects exist that we do not manage: nothing written
    REJECTED = "rejected"  # the API server refused the server-side dry-run: nothing written
    FAILED = "failed"  # a write failed: the writes before it are done, the rest skipped
    INTERRUPTED = "interrupted"  # asked to stop between two writes (shutdown, lost lease)


@dataclass(frozen=True, slots=True)
class ApplyResult:
    plan: Plan
    done: tuple[Change, ...] = ()
    failed: tuple[Failure, ...] = ()
    skipped: tuple[Change, ...] = ()
    notes: tuple[str, ...] = field(default=())  # why the run was blocked before writing
    stopped: Stop | None = None  # None: ran to the end (or a dry-run that passed)

    @property
    def ok(self) -> bool:
        return self.stopped is None and not self.failed and not self.plan.errors and not self.notes
