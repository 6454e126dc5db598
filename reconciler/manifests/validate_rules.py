"""Cross-field checks of one rule (Calico) or one rule part (Kubernetes NetworkPolicy).

Each check takes one object and yields Issues relative to it; the schema tables in specs.py
attach them. They are written defensively: a field of the wrong type is reported by the
schema walk, so here it simply counts as absent.

Sources: validateRule / validateEntityRule in libcalico-go/lib/validator/v3/validator.go;
ValidateNetworkPolicyPort / ValidateNetworkPolicyPeer / ValidateIPBlock in Kubernetes
pkg/apis/networking/validation/validation.go; ValidateLabelSelectorRequirement in
apimachinery/pkg/apis/meta/v1/validation.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from reconciler.manifests.checks import PORT_PROTOCOLS, parse_network, protocol_value
from reconciler.manifests.fieldpath import format_path
from reconciler.manifests.schema import Issue, ObjCheck

RuleObj = Mapping[str, Any]

_SIDES = ("source", "destination")
_PORT_FIELDS = tuple((s, f) for s in _SIDES for f in ("ports", "notPorts"))
_NET_FIELDS = tuple((s, f) for s in _SIDES for f in ("nets", "notNets"))
_ICMP_FAMILY = {"ICMP": 4, "ICMPv6": 6}


def _get(obj: Any, *keys: str) -> Any:
    for key in keys:
        obj = obj.get(key) if isinstance(obj, Mapping) else None
    return obj


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _present(value: Any) -> bool:
    return value is not None and value not in ("", [])


def _protocol(value: Any) -> int | str | None:
    return protocol_value(value) if isinstance(value, int | str) else None


# --- Calico rules ------------------------------------------------------------------------


def ports_need_protocol(rule: RuleObj) -> Iterator[Issue]:
    proto = rule.get("protocol")
    if _protocol(proto) in PORT_PROTOCOLS:
        return
    now = f"protocol is {proto!r}" if proto is not None else "no protocol is set"
    for path in _PORT_FIELDS:
        if _items(_get(rule, *path)):
            yield Issue(path, f"ports need protocol TCP, UDP or SCTP in the same rule ({now})")


def icmp_needs_protocol(rule: RuleObj) -> Iterator[Issue]:
    proto = rule.get("protocol")
    icmp = isinstance(proto, str) and proto in _ICMP_FAMILY
    for name in ("icmp", "notICMP"):
        if rule.get(name) is not None and not icmp:
            yield Issue((name,), f"{name} needs protocol ICMP or ICMPv6 in the same rule")


def icmp_ip_version(rule: RuleObj) -> Iterator[Issue]:
    version = rule.get("ipVersion")
    for name in ("protocol", "notProtocol"):
        proto = rule.get(name)
        family = _ICMP_FAMILY.get(proto) if isinstance(proto, str) else None
        if family and version in (4, 6) and version != family:
            yield Issue(("ipVersion",), f"{name} {proto} needs ipVersion {family}")


def nets_one_family(rule: RuleObj) -> Iterator[Issue]:
    """All CIDRs of a rule, both sides, nets and notNets, share one IP version."""
    version = rule.get("ipVersion")
    first: dict[int, tuple[str, str]] = {}
    for path in _NET_FIELDS:
        nets = (parse_network(n) for n in _items(_get(rule, *path)) if isinstance(n, str))
        families = sorted({n.version for n in nets if n})
        for family in families:
            if version in (4, 6) and family != version:
                yield Issue(path, f"IPv{family} CIDR in a rule with ipVersion {version}")
            first.setdefault(family, path)
        if len(first) == 2 and families:  # this field brought the second family
            yield Issue(path, f"a rule cannot mix IPv4 and IPv6 CIDRs ({_mix(first)})")
            return


def _mix(first: dict[int, tuple[str, str]]) -> str:
    v4, v6 = format_path(first[4]), format_path(first[6])
    return f"{v4} has both" if v4 == v6 else f"IPv4 in {v4}, IPv6 in {v6}"


def http_on_allow_tcp(rule: RuleObj) -> Iterator[Issue]:
    if rule.get("http") is None:
        return
    if rule.get("action") != "Allow":
        yield Issue(("http",), "an HTTP match is only valid on Allow rules")
    if _protocol(rule.get("protocol")) not in (None, "TCP", 6):
        yield Issue(("protocol",), "a rule with an HTTP match needs protocol TCP (or none)")


def no_service_ports(rule: RuleObj) -> Iterator[Issue]:
    if _get(rule, "destination", "services") is None:
        return
    for name in ("ports", "notPorts"):
        if _items(_get(rule, "destination", name)):
            yield Issue(("destination", name), "ports cannot be used with destination services")


_SERVICE_EXCLUSIVE = ("selector", "notSelector", "namespaceSelector", "serviceAccounts")


def services_alone(entity: RuleObj) -> Iterator[Issue]:
    """validateEntityRule: services match endpoints themselves, so nothing else may."""
    if entity.get("services") is None:
        return
    for name in (*_SERVICE_EXCLUSIVE, "nets", "notNets"):
        if _present(entity.get(name)):
            yield Issue((name,), "cannot be combined with services on the same side of a rule")


def _side_without_services(side: str, direction: str) -> ObjCheck:
    def check(rule: RuleObj) -> Iterator[Issue]:
        if _get(rule, side, "services") is not None:
            message = f"services are not allowed in the {side} of {direction}"
            yield Issue((side, "services"), message)

    return check


def _services_namespaced(side: str) -> ObjCheck:
    def check(rule: RuleObj) -> Iterator[Issue]:
        services = _get(rule, side, "services")
        if isinstance(services, Mapping) and not services.get("namespace"):
            yield Issue((side, "services", "namespace"), "a global policy must name the namespace")

    return check


def _no_http_egress(rule: RuleObj) -> Iterator[Issue]:
    if rule.get("http") is not None:
        yield Issue(("http",), "an HTTP match is not allowed in egress rules")


_COMMON: tuple[ObjCheck, ...] = (
    ports_need_protocol,
    icmp_needs_protocol,
    icmp_ip_version,
    nets_one_family,
    http_on_allow_tcp,
    no_service_ports,
)
# Services are a source in ingress rules and a destination in egress rules.
_BY_DIRECTION: dict[str, tuple[ObjCheck, ...]] = {
    "ingress": (_side_without_services("destination", "ingress rules"),),
    "egress": (_side_without_services("source", "egress rules"), _no_http_egress),
}
_SERVICE_SIDE = {"ingress": "source", "egress": "destination"}


def rule_checks(direction: str, *, global_scope: bool) -> tuple[ObjCheck, ...]:
    scoped = (_services_namespaced(_SERVICE_SIDE[direction]),) if global_scope else ()
    return (*_COMMON, *_BY_DIRECTION[direction], *scoped)


def code_needs_type(icmp: RuleObj) -> Iterator[Issue]:
    if icmp.get("code") is not None and icmp.get("type") is None:
        yield Issue(("code",), "an ICMP code needs an ICMP type (a kernel limitation)")


def one_http_path(path: RuleObj) -> Iterator[Issue]:
    given = [k for k in ("exact", "prefix") if path.get(k)]
    if len(given) != 1:
        yield Issue((), "an HTTP path needs exactly one of exact or prefix")
    for key in given:
        value = path[key]
        if isinstance(value, str) and (not value.startswith("/") or any(c in value for c in "? #")):
            yield Issue((key,), f"{value!r} must start with '/' and hold no '?', '#' or space")


# --- Kubernetes NetworkPolicy ------------------------------------------------------------


def selector_requirement(req: RuleObj) -> Iterator[Issue]:
    operator, values = req.get("operator"), _items(req.get("values"))
    if operator in ("In", "NotIn") and not values:
        yield Issue(("values",), f"operator {operator} needs at least one value")
    if operator in ("Exists", "DoesNotExist") and values:
        yield Issue(("values",), f"operator {operator} takes no values")


def one_peer(peer: RuleObj) -> Iterator[Issue]:
    given = [k for k in ("podSelector", "namespaceSelector", "ipBlock") if peer.get(k) is not None]
    if not given:
        yield Issue((), "a peer needs podSelector, namespaceSelector or ipBlock")
    elif "ipBlock" in given and len(given) > 1:
        yield Issue(("ipBlock",), "ipBlock cannot be combined with a selector in the same peer")


def except_inside_cidr(block: RuleObj) -> Iterator[Issue]:
    cidr = block.get("cidr")
    outer = parse_network(cidr) if isinstance(cidr, str) and "/" in cidr else None
    if outer is None:
        return
    for index, text in enumerate(_items(block.get("except"))):
        inner = parse_network(text) if isinstance(text, str) and "/" in text else None
        if inner is None:
            continue  # reported by the leaf check
        inside = inner.version == outer.version and inner.subnet_of(outer)  # type: ignore[arg-type]
        if not inside or inner.prefixlen <= outer.prefixlen:
            yield Issue(("except", index), f"{text!r} must be a strict subset of cidr {cidr!r}")


def end_port(port: RuleObj) -> Iterator[Issue]:
    start, end = port.get("port"), port.get("endPort")
    if end is None or isinstance(end, bool) or not isinstance(end, int):
        return
    if start is None:
        yield Issue(("endPort",), "endPort needs port")
    elif isinstance(start, str):
        yield Issue(("endPort",), "endPort needs a numeric port")
    elif isinstance(start, int) and end < start:
        yield Issue(("endPort",), f"endPort {end} is below port {start}")
