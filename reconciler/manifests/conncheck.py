"""ConnectivityCheck (policy-reconciler.io/v1alpha1): a flow that must stay allowed, or denied.

Repo-only, like templates: parsed and validated here at load (every malformed field is a
Finding with file:line), evaluated by the planner on every state an apply passes through
(plan/checks.py), never written to the cluster, never pruned, never in the ApplySet.

    spec:
      from: {cidr: "203.0.113.0/24"}     # or {nodeSelector} or {namespaceSelector, podSelector}
      to: {nodeSelector: "all()"}
      ports: ["tcp/22", "tcp/6443"]      # the port syntax of `connectivity eval`
      expect: allow                      # or deny
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from reconciler import kinds
from reconciler.manifests import checks as c
from reconciler.manifests.fieldpath import FieldPath, LineMap, format_path, line_for
from reconciler.manifests.schema import STRING, Issue, Obj, Scalar, Seq, unique_items
from reconciler.manifests.schema import walk as walk_schema
from reconciler.manifests.selector import Selector, parse_selector
from reconciler.manifests.specs import ANNOTATIONS, LABELS
from reconciler.model import Finding, ObjectRef, Origin, Severity


class Expect(StrEnum):
    ALLOW = "allow"
    DENY = "deny"


class EndKind(StrEnum):
    CIDR = "cidr"
    NODES = "nodes"
    PODS = "pods"


@dataclass(frozen=True, slots=True)
class Ends:
    """One side of a check: every address of a CIDR, the nodes or the pods selected."""

    kind: EndKind
    cidr: str = ""
    node_selector: Selector | None = None
    namespace_selector: Selector | None = None
    pod_selector: Selector | None = None
    line: int = 0  # where `from:`/`to:` is written

    def __str__(self) -> str:
        if self.kind is EndKind.CIDR:
            return self.cidr
        if self.kind is EndKind.NODES:
            return f"nodes {self.node_selector}"
        return f"pods {self.pod_selector} in namespaces {self.namespace_selector}"


@dataclass(frozen=True, slots=True)
class ConnectivityCheck:
    ref: ObjectRef  # policy-reconciler.io/v1alpha1 ConnectivityCheck/<name>
    origin: Origin
    src: Ends
    dst: Ends
    ports: tuple[str, ...]
    expect: Expect
    lines: LineMap = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.ref.name


def is_check(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and value.get("apiVersion") == kinds.TEMPLATE_API_VERSION
        and value.get("kind") == kinds.CHECK_KIND
    )


# --- schema ------------------------------------------------------------------------------

# The grammar of `connectivity eval`'s PORT (connectivity/packets.py parse_packet), checked
# here without the engine: manifests sit below it. A test keeps the two in step.
_PORT = re.compile(
    r"(tcp|udp|sctp)/([0-9]{1,5})|(icmp|icmpv6)(/[0-9]{1,3}){0,2}|proto/([0-9]{1,3})"
)


def port(value: str) -> str | None:
    found = _PORT.fullmatch(value.strip().lower())
    bad = (
        f"{value!r} is not a port: expected tcp/N, udp/N, sctp/N (N 1-65535), icmp, "
        "icmp/TYPE, icmp/TYPE/CODE or proto/N"
    )
    if found is None:
        return bad
    numbers = [int(n) for n in value.strip().split("/")[1:]]
    if found.group(1) and not 1 <= numbers[0] <= 65535:
        return bad
    if not all(0 <= n <= 255 for n in numbers) and not found.group(1):
        return bad
    return None


def _network(value: str) -> str | None:
    return None if c.parse_network(value) is not None else f"{value!r} is not a CIDR or address"


def _one_kind(value: Mapping[str, Any]) -> Iterator[Issue]:
    given = [k for k in ("cidr", "nodeSelector") if k in value]
    if "namespaceSelector" in value or "podSelector" in value:
        given.append("namespaceSelector/podSelector")
    if len(given) != 1:
        what = ", ".join(given) if given else "nothing"
        yield Issue(
            (),
            f"give exactly one of cidr, nodeSelector or namespaceSelector (with an optional "
            f"podSelector), not {what}",
        )


def _spec(spec: Mapping[str, Any]) -> Iterator[Issue]:
    if spec.get("ports") == []:
        yield Issue(("ports",), "a check needs at least one port")
    ends = [spec.get(k) for k in ("from", "to")]
    if all(isinstance(e, dict) and "cidr" in e for e in ends):
        yield Issue(("to",), "one end of a flow must be nodes or pods of the cluster, not a cidr")


_SEL = Scalar(STRING, c.selector)
_ENDS = Obj(
    {
        "cidr": Scalar(STRING, _network),
        "nodeSelector": _SEL,
        "namespaceSelector": _SEL,
        "podSelector": _SEL,
    },
    checks=(_one_kind,),
)
_DOCUMENT = Obj(
    {
        "apiVersion": Scalar(STRING),
        "kind": Scalar(STRING),
        "metadata": Obj(
            {"name": Scalar(STRING, c.dns_subdomain), "labels": LABELS, "annotations": ANNOTATIONS},
            required=frozenset({"name"}),
        ),
        "spec": Obj(
            {
                "from": _ENDS,
                "to": _ENDS,
                "ports": Seq(Scalar(STRING, port), unique_items),
                "expect": Scalar(STRING, c.one_of("allow", "deny", what="expectation")),
            },
            required=frozenset({"from", "to", "ports", "expect"}),
            checks=(_spec,),
        ),
    },
    required=frozenset({"metadata", "spec"}),
)


# --- parse -------------------------------------------------------------------------------


def parse_check(
    value: Mapping[str, Any], *, path: str, line: int, lines: LineMap
) -> tuple[ConnectivityCheck | None, list[Finding]]:
    """The typed check, or None when it has errors; every problem as a Finding."""
    origin = Origin(path, line)
    meta = value.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else ""
    ref = ObjectRef("policy-reconciler.io", "v1alpha1", kinds.CHECK_KIND, "", str(name or ""))
    issues = list(walk_schema(_DOCUMENT, dict(value)))
    findings = [_finding(i, ref, origin, lines) for i in issues]
    if any(i.severity is Severity.ERROR for i in issues):
        return None, findings
    spec = value["spec"]
    check = ConnectivityCheck(
        ref=ref,
        origin=origin,
        src=_ends(spec["from"], line_for(lines, ("spec", "from")) or line),
        dst=_ends(spec["to"], line_for(lines, ("spec", "to")) or line),
        ports=tuple(spec["ports"]),
        expect=Expect(spec["expect"]),
        lines=lines,
    )
    return check, findings


def _ends(value: Mapping[str, Any], line: int) -> Ends:
    if "cidr" in value:
        return Ends(EndKind.CIDR, cidr=str(value["cidr"]), line=line)
    if "nodeSelector" in value:
        return Ends(EndKind.NODES, node_selector=parse_selector(value["nodeSelector"]), line=line)
    return Ends(
        EndKind.PODS,
        namespace_selector=parse_selector(value.get("namespaceSelector") or "all()"),
        pod_selector=parse_selector(value.get("podSelector") or "all()"),
        line=line,
    )


def _finding(issue: Issue, ref: ObjectRef, origin: Origin, lines: LineMap) -> Finding:
    at = Origin(origin.path, line_for(lines, issue.path) or origin.line)
    return Finding(issue.severity, issue.message, at, ref, format_path(issue.path))


def at(check: ConnectivityCheck, path: FieldPath) -> Origin:
    """The file:line of one of the check's fields."""
    return Origin(check.origin.path, line_for(check.lines, path) or check.origin.line)
