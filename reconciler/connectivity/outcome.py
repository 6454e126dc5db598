"""What a hop (or a whole flow) does to a set of packets, and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from reconciler.connectivity.intervals import EMPTY, IntervalSet


class Verdict(StrEnum):
    ALLOW = "allow"
    DENY = "deny"
    UNKNOWN = "not determined"


class By(StrEnum):
    """What decided: the `path[].by` field of the JSON output."""

    FAILSAFE = "failsafe"
    RULE = "rule"
    PASS = "pass"  # noqa: S105 (an action, not a password)
    END_OF_TIER = "end of tier"
    PROFILE = "profile"
    DEFAULT = "default"
    NOT_POLICED = "not policed"
    UNKNOWN = "not determined"


@dataclass(frozen=True, slots=True)
class Step:
    hop: str  # "source egress: pod shop/busybox-1"
    verdict: Verdict | None  # None: the step hands on (Pass, no pre-DNAT match)
    by: By
    detail: str
    tier: str = ""
    policy: str = ""
    rule: str = ""
    origin: str = ""  # the policy's file:line

    def as_json(self) -> dict[str, str]:
        out = {"hop": self.hop, "by": str(self.by), "detail": self.detail}
        out["verdict"] = str(self.verdict) if self.verdict else "continue"
        for key in ("tier", "policy", "rule", "origin"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        return out


@dataclass(frozen=True, slots=True)
class Outcome:
    """A partition of some packets into allowed, denied and undetermined, with the steps."""

    allow: IntervalSet = EMPTY
    deny: IntervalSet = EMPTY
    unknown: IntervalSet = EMPTY
    trace: tuple[tuple[IntervalSet, Step], ...] = field(default=())
    reasons: tuple[tuple[IntervalSet, str], ...] = ()  # missing assumptions, per packets

    def add(self, packets: IntervalSet, step: Step, reason: str = "") -> Outcome:
        if not packets:
            return self
        trace = (*self.trace, (packets, step))
        if step.verdict is Verdict.ALLOW:
            return Outcome(self.allow | packets, self.deny, self.unknown, trace, self.reasons)
        if step.verdict is Verdict.DENY:
            return Outcome(self.allow, self.deny | packets, self.unknown, trace, self.reasons)
        if step.verdict is Verdict.UNKNOWN:
            reasons = (*self.reasons, (packets, reason or step.detail))
            return Outcome(self.allow, self.deny, self.unknown | packets, trace, reasons)
        return Outcome(self.allow, self.deny, self.unknown, trace, self.reasons)

    def then(self, later: Outcome) -> Outcome:
        """Two hops in a row: allowed only where both allow; denied where either denies."""
        deny = self.deny | later.deny
        return Outcome(
            allow=self.allow & later.allow,
            deny=deny,
            unknown=(self.unknown | later.unknown) - deny,
            trace=(*self.trace, *later.trace),
            reasons=(*self.reasons, *later.reasons),
        )

    def verdict(self, packet: int) -> Verdict:
        if packet in self.deny:
            return Verdict.DENY
        if packet in self.unknown:
            return Verdict.UNKNOWN
        return Verdict.ALLOW if packet in self.allow else Verdict.UNKNOWN

    def steps(self, packet: int) -> list[Step]:
        return [step for packets, step in self.trace if packet in packets]

    def missing(self, packet: int) -> list[str]:
        return list(dict.fromkeys(r for packets, r in self.reasons if packet in packets))
