"""What one reconcile run did: a value the status, events, metrics and logs all read.

Every run ends with exactly one reason. The table below says, as data, which
result each reason means and which Kubernetes Event type (if any) reports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Result(StrEnum):
    APPLIED = "applied"  # changed something in the cluster
    UNCHANGED = "unchanged"  # in sync: nothing written
    SUSPENDED = "suspended"
    REFUSED = "refused"  # the revision is unusable: the last good one stays in force
    FAILED = "failed"  # a transient failure (git, API server, a write): retried with backoff


class Reason(StrEnum):
    APPLIED = "Applied"
    DRIFT_HEALED = "DriftHealed"
    UP_TO_DATE = "UpToDate"
    SUSPENDED = "Suspended"
    INVALID = "InvalidRevision"  # load, validation or prune-guard errors
    CHECKS = "ConnectivityCheckFailed"  # a ConnectivityCheck breaks on a state of the apply
    CONFLICT = "OwnershipConflict"  # objects exist that we do not own
    REJECTED = "DryRunRejected"  # the API server refused the server-side dry-run
    SIGNATURE = "SignatureRefused"
    UNREACHABLE = "RepoUnreachable"
    AUTH = "AuthFailed"
    REF = "RefNotFound"
    NOT_FOUND = "RepoNotFound"
    FETCH = "FetchFailed"  # any other source error
    APPLY = "ApplyFailed"
    CLUSTER = "ClusterError"  # the API server failed us: unreachable, forbidden, missing
    INTERRUPTED = "Interrupted"  # shutdown or lost leadership between two writes
    INTERNAL = "InternalError"  # a bug: logged with its traceback, retried
    ANNOTATION = "InvalidAnnotation"  # an operator annotation on the parent is unreadable


@dataclass(frozen=True, slots=True)
class Meaning:
    result: Result
    event: str  # "Normal", "Warning" or "" (no Event)


REASONS: Mapping[Reason, Meaning] = {
    Reason.APPLIED: Meaning(Result.APPLIED, "Normal"),
    Reason.DRIFT_HEALED: Meaning(Result.APPLIED, "Normal"),
    Reason.UP_TO_DATE: Meaning(Result.UNCHANGED, ""),
    Reason.SUSPENDED: Meaning(Result.SUSPENDED, "Normal"),
    Reason.INVALID: Meaning(Result.REFUSED, "Warning"),
    Reason.CHECKS: Meaning(Result.REFUSED, "Warning"),
    Reason.CONFLICT: Meaning(Result.REFUSED, "Warning"),
    Reason.REJECTED: Meaning(Result.REFUSED, "Warning"),
    Reason.SIGNATURE: Meaning(Result.REFUSED, "Warning"),
    Reason.UNREACHABLE: Meaning(Result.FAILED, "Warning"),
    Reason.AUTH: Meaning(Result.FAILED, "Warning"),
    Reason.REF: Meaning(Result.FAILED, "Warning"),
    Reason.NOT_FOUND: Meaning(Result.FAILED, "Warning"),
    Reason.FETCH: Meaning(Result.FAILED, "Warning"),
    Reason.APPLY: Meaning(Result.FAILED, "Warning"),
    Reason.CLUSTER: Meaning(Result.FAILED, "Warning"),
    Reason.INTERRUPTED: Meaning(Result.FAILED, "Warning"),
    Reason.INTERNAL: Meaning(Result.FAILED, "Warning"),
    Reason.ANNOTATION: Meaning(Result.FAILED, "Warning"),
}


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run, as stored in the status ConfigMap (JSON) and reported everywhere else."""

    trigger: str  # "interval", "webhook", "drift", "startup", ... joined with "+"
    reason: Reason
    message: str
    revision: str = ""  # the revision this run rendered ("" when none was fetched)
    subject: str = ""
    started: str = ""  # RFC 3339, UTC
    finished: str = ""
    duration: float = 0.0  # seconds
    planned: Mapping[str, int] = field(default_factory=dict)  # objects by planned action
    written: Mapping[str, int] = field(default_factory=dict)  # objects written, by action
    errors: tuple[str, ...] = ()
    drift: tuple[str, ...] = ()  # "GlobalNetworkPolicy/x by kubectl-edit at <time>"

    @property
    def result(self) -> Result:
        return REASONS[self.reason].result

    @property
    def event_type(self) -> str:
        return REASONS[self.reason].event

    @property
    def wrote(self) -> bool:
        return sum(self.written.values()) > 0

    def is_news(self, last: RunRecord | None) -> bool:
        """Worth a status write and an Event: it wrote something, or its outcome differs
        from the last recorded run. "Still in sync" after "applied" is not news."""
        if last is None or self.wrote:
            return True
        in_sync = (Result.APPLIED, Result.UNCHANGED)
        if self.result is Result.UNCHANGED and last.result in in_sync:
            return self.revision != last.revision
        if self.result is Result.SUSPENDED:  # whatever the revision: nothing happens
            return last.result is not Result.SUSPENDED
        if self.result is Result.FAILED:  # a retry of the same failure: git's and curl's
            # words vary from try to try ("after 3 ms"), the outcome does not
            return (self.reason, self.revision) != (last.reason, last.revision)
        mine = (self.reason, self.revision, self.message, self.errors)
        return mine != (last.reason, last.revision, last.message, last.errors)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["result"] = self.result.value
        data["errors"], data["drift"] = list(self.errors), list(self.drift)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunRecord:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["reason"] = Reason(known["reason"])
        known["errors"] = tuple(known.get("errors", ()))
        known["drift"] = tuple(known.get("drift", ()))
        return cls(**known)
