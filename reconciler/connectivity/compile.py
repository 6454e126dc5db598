"""Repo and cluster objects -> compiled Policies, Tiers, host endpoints and network sets.

The loader has validated shapes already; this module is still defensive, since live
objects and inventories are not validated: a bad value raises CompileError naming where.
Sources: calico-semantics.md (types defaulting, K8s conversion, selector scoping).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.calico import metadata
from reconciler.connectivity import addresses as addr
from reconciler.connectivity.intervals import EMPTY, IntervalSet
from reconciler.connectivity.packets import (
    ALL_PACKETS,
    ICMP,
    ICMPV6,
    icmp,
    ports,
    protocol_number,
    protocols,
)
from reconciler.connectivity.rules import (
    Action,
    Direction,
    NamedPorts,
    Policy,
    Rule,
    Side,
    Stage,
    Tier,
)
from reconciler.connectivity.views import DEFAULT_ALLOW_PROFILE, Kind, Match, NamedPort, View
from reconciler.kinds import CALICO_CRD, K8S_NETWORKING
from reconciler.manifests.selector import Selector, SelectorError, parse_selector
from reconciler.model import Resource

BOTH = frozenset({Direction.INGRESS, Direction.EGRESS})
K8S_ORDER = 1000.0  # conversion.go K8sNetworkPolicyToCalico


class CompileError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Flavour:
    """What changes with the Calico release (the --calico-version option)."""

    calico: tuple[int, int] = (3, 31)

    @property
    def tier_pass(self) -> bool:
        """Tier spec.defaultAction Pass is honoured from v3.29 (absent on 3.28)."""
        return self.calico >= (3, 29)

    def sort_name(self, kind: str, name: str, tier: str) -> str:
        """PolKVLess ties: through v3.31 Felix sees `knp.default.<name>` for K8s policies and
        `<tier>.<name>` for Calico ones; from v3.32 the bare names (calico.md, rules.py)."""
        if self.calico >= (3, 32):
            return name
        if kind == "KubernetesNetworkPolicy":
            return f"knp.default.{name}"
        return name if name.startswith(f"{tier}.") else f"{tier}.{name}"


DEFAULT_FLAVOUR = Flavour()


def _where(resource: Resource) -> str:
    return f"{resource.ref} at {resource.origin}"


def _selector(text: Any, where: str, *, allow_global: bool = False) -> Selector:
    if text is None:
        return parse_selector("")
    if not isinstance(text, str):
        raise CompileError(f"{where}: a selector must be a string, not {type(text).__name__}")
    try:
        return parse_selector(text, allow_global=allow_global)
    except SelectorError as err:
        raise CompileError(f"{where}: selector {text!r}: {err.message}") from None


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


# --- tiers ---------------------------------------------------------------------------------


def tier(resource: Resource) -> Tier:
    spec = _map(resource.body.get("spec"))
    order = spec.get("order")
    action = Action.PASS if spec.get("defaultAction") == "Pass" else Action.DENY
    return Tier(resource.ref.name, _order(order, _where(resource)), action, str(resource.origin))


def _order(value: Any, where: str) -> float:
    if value is None:
        return math.inf
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise CompileError(f"{where}: order must be a number, not {value!r}")


# --- Calico policies -----------------------------------------------------------------------


def calico_policy(resource: Resource, flavour: Flavour) -> Policy:
    where = _where(resource)
    spec = _map(resource.body.get("spec"))
    namespace = resource.ref.namespace
    tier_name = str(spec.get("tier") or "default")
    ingress, egress = _list(spec.get("ingress")), _list(spec.get("egress"))
    stage = Stage.UNTRACKED if spec.get("doNotTrack") else Stage.NORMAL
    stage = Stage.PRE_DNAT if spec.get("preDNAT") else stage
    name = resource.ref.name
    return Policy(
        kind=resource.ref.kind,
        name=name,
        namespace=namespace,
        tier=tier_name,
        order=_order(spec.get("order"), where),
        sort_name=flavour.sort_name(resource.ref.kind, name, tier_name),
        selects=_applies_to(spec, namespace, where),
        types=_calico_types(spec, resource.ref.group, ingress, egress),
        ingress=tuple(
            _calico_rule(r, f"ingress[{i}]", namespace, where) for i, r in _each(ingress)
        ),
        egress=tuple(_calico_rule(r, f"egress[{i}]", namespace, where) for i, r in _each(egress)),
        stage=stage,
        apply_on_forward=bool(spec.get("applyOnForward")),
        origin=str(resource.origin),
    )


def _each(rules: list[Any]) -> Iterable[tuple[int, Mapping[str, Any]]]:
    return ((i, r) for i, r in enumerate(rules) if isinstance(r, Mapping))


def _calico_types(
    spec: Mapping[str, Any], group: str, ingress: list[Any], egress: list[Any]
) -> frozenset[Direction]:
    """v3 is defaulted on write (defaults/networkpolicy.go defaultPolicyTypesField); a crd v1
    object without types is read by Felix as Ingress+Egress (policy_sorter.go)."""
    given = spec.get("types")
    if isinstance(given, list) and given:
        return frozenset(Direction(t) for t in given if t in ("Ingress", "Egress"))
    if group == CALICO_CRD:
        return BOTH
    if egress and ingress:
        return BOTH
    return frozenset({Direction.EGRESS}) if egress else frozenset({Direction.INGRESS})


def _applies_to(spec: Mapping[str, Any], namespace: str, where: str) -> Match:
    """A GNP with a top-level namespaceSelector or serviceAccountSelector never selects host
    endpoints (globalnetworkpolicyprocessor.go: all() becomes has(projectcalico.org/namespace))."""
    ns_text = spec.get("namespaceSelector")
    sa_text = spec.get("serviceAccountSelector")
    ns_selector = _selector(ns_text, where) if ns_text not in (None, "") else None
    sa_selector = _selector(sa_text, where) if sa_text not in (None, "") else None
    if namespace:
        ns_selector = None  # a namespaced policy selects in its namespace only
    if sa_selector is not None and ns_selector is None and not namespace:
        ns_selector = parse_selector("")  # namespaced endpoints only
    return Match(
        selector=_selector(spec.get("selector"), where),
        namespace=namespace or None,
        ns_selector=ns_selector,
        endpoints_only=True,
        sa_selector=sa_selector,
    )


def _calico_rule(rule: Mapping[str, Any], label: str, namespace: str, where: str) -> Rule:
    at = f"{where} {label}"
    try:
        action = Action(str(rule.get("action")))
    except ValueError:
        raise CompileError(f"{at}: unknown action {rule.get('action')!r}") from None
    source, destination = _map(rule.get("source")), _map(rule.get("destination"))
    proto = _protocols(rule, at)
    fixed, named, has_ports = _ports(destination.get("ports"), proto, at)
    not_fixed, not_named, _ = _ports(destination.get("notPorts"), proto, at)
    unknown = ""
    if _list(source.get("ports")) or _list(source.get("notPorts")):
        unknown = "the flow's source port (a rule matches source ports)"
    if rule.get("http") or source.get("services") or destination.get("services"):
        unknown = "HTTP/service match (needs the application layer or Service endpoints)"
    return Rule(
        action=action,
        label=label,
        protocols=proto,
        fixed=fixed if has_ports else proto,
        named=named,
        not_fixed=not_fixed,
        not_named=not_named,
        source=_side(source, namespace, at + ".source"),
        destination=_side(destination, namespace, at + ".destination"),
        ip_version=rule.get("ipVersion") if rule.get("ipVersion") in (4, 6) else None,
        unknown=unknown,
    )


def _protocols(rule: Mapping[str, Any], at: str) -> IntervalSet:
    try:
        proto = rule.get("protocol")
        out = ALL_PACKETS if proto is None else protocols([protocol_number(proto)])
        if rule.get("notProtocol") is not None:
            out = out - protocols([protocol_number(rule["notProtocol"])])
    except ValueError as err:
        raise CompileError(f"{at}: {err}") from None
    family = protocol_number(proto) if proto is not None else ICMP
    out = out & _icmp(rule.get("icmp"), family, ALL_PACKETS)
    return out - _icmp(rule.get("notICMP"), family, EMPTY)


def _icmp(spec: Any, family: int, absent: IntervalSet) -> IntervalSet:
    if not isinstance(spec, Mapping) or spec.get("type") is None:
        return absent
    families = (family,) if family in (ICMP, ICMPV6) else (ICMP, ICMPV6)
    out = EMPTY
    for proto in families:
        out = out | icmp(proto, int(spec["type"]), _int_or_none(spec.get("code")))
    return out


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _ports(value: Any, proto: IntervalSet, at: str) -> tuple[IntervalSet, NamedPorts, bool]:
    """numorstring.Port: an int, "lo:hi", or a name. Ports apply to the rule's protocol."""
    items = _list(value)
    numbers: list[tuple[int, int]] = []
    names: list[tuple[int | None, str]] = []
    for item in items:
        span = _port_span(item, at)
        if span is None:
            names.append((None, str(item)))
        else:
            numbers.append(span)
    fixed = EMPTY
    for p in (6, 17, 132):
        fixed = fixed | ports(p, numbers)
    return fixed & proto, NamedPorts(tuple(names)), bool(items)


def _port_span(item: Any, at: str) -> tuple[int, int] | None:
    if isinstance(item, int) and not isinstance(item, bool):
        return item, item
    if not isinstance(item, str):
        raise CompileError(f"{at}: port {item!r} is neither a number, a range nor a name")
    lo, colon, hi = item.partition(":")
    if lo.isdigit() and (not colon or hi.isdigit()):
        return int(lo), int(hi or lo)
    return None


def _side(side: Mapping[str, Any], namespace: str, at: str) -> Side:
    nets, not_nets = _nets(side.get("nets"), at), _nets(side.get("notNets"), at)
    return Side(
        nets=nets,
        not_nets=not_nets,
        match=_rule_match(side, side.get("selector"), namespace, at),
        not_match=_not_match(side, namespace, at),
    )


def _nets(value: Any, at: str) -> IntervalSet | None:
    if value is None:
        return None
    try:
        return addr.networks(str(n) for n in _list(value))
    except ValueError as err:
        raise CompileError(f"{at}: {err}") from None


def _rule_match(side: Mapping[str, Any], selector: Any, namespace: str, at: str) -> Match | None:
    """updateprocessors/rules.go getEndpointSelector: selector, namespaceSelector and
    serviceAccounts together; namespaced policies stay in their namespace unless a
    namespaceSelector says otherwise; global() means non-namespaced only."""
    ns_text = side.get("namespaceSelector")
    accounts = _map(side.get("serviceAccounts"))
    if selector in (None, "") and ns_text in (None, "") and not accounts:
        return None
    scope = _scope(ns_text, namespace, at)
    names = _list(accounts.get("names"))
    sa_text = accounts.get("selector")
    return Match(
        selector=_selector(selector, at),
        sa_names=frozenset(map(str, names)) if names else None,
        sa_selector=_selector(sa_text, at) if sa_text not in (None, "") else None,
        **scope,
    )


def _scope(ns_text: Any, namespace: str, at: str) -> dict[str, Any]:
    if ns_text in (None, ""):
        return {"namespace": namespace or None}
    ns_selector = _selector(ns_text, at, allow_global=True)
    if ns_selector.is_global:
        return {"global_only": True}
    return {"ns_selector": ns_selector}


def _not_match(side: Mapping[str, Any], namespace: str, at: str) -> Match | None:
    text = side.get("notSelector")
    if text in (None, ""):
        return None
    return Match(
        selector=_selector(text, at), **_scope(side.get("namespaceSelector"), namespace, at)
    )


# --- Kubernetes NetworkPolicy (conversion.go K8sNetworkPolicyToCalico) ----------------------


def k8s_policy(resource: Resource, flavour: Flavour) -> Policy:
    where = _where(resource)
    spec = _map(resource.body.get("spec"))
    namespace = resource.ref.namespace
    name = resource.ref.name
    kind = "KubernetesNetworkPolicy"
    return Policy(
        kind=kind,
        name=name,
        namespace=namespace,
        tier="default",
        order=K8S_ORDER,
        sort_name=flavour.sort_name(kind, name, "default"),
        selects=Match(
            selector=_label_selector(spec.get("podSelector"), where),
            namespace=namespace,
            pods_only=True,
        ),
        types=_k8s_types(spec),
        ingress=_k8s_rules(spec, "ingress", "from", namespace, where),
        egress=_k8s_rules(spec, "egress", "to", namespace, where),
        origin=str(resource.origin),
    )


def _k8s_types(spec: Mapping[str, Any]) -> frozenset[Direction]:
    given = _list(spec.get("policyTypes"))
    if given:
        return frozenset(Direction(t) for t in given if t in ("Ingress", "Egress"))
    if _list(spec.get("egress")):
        return BOTH
    return frozenset({Direction.INGRESS})


def _k8s_rules(
    spec: Mapping[str, Any], section: str, peers_key: str, namespace: str, where: str
) -> tuple[Rule, ...]:
    out: list[Rule] = []
    for i, item in _each(_list(spec.get(section))):
        fixed, named = _k8s_ports(_list(item.get("ports")), f"{where} {section}[{i}]")
        peers = [p for p in _list(item.get(peers_key)) if isinstance(p, Mapping)]
        for j, peer in enumerate(peers) if peers else [(-1, {})]:
            label = f"{section}[{i}]" + (f".{peers_key}[{j}]" if j >= 0 else "")
            side = _k8s_peer(peer, namespace, f"{where} {label}")
            out.append(_k8s_rule(label, section, side, fixed, named))
    return tuple(out)


def _k8s_rule(label: str, section: str, side: Side, fixed: IntervalSet, named: NamedPorts) -> Rule:
    ingress = section == "ingress"
    return Rule(
        action=Action.ALLOW,
        label=label,
        protocols=ALL_PACKETS,
        fixed=fixed,
        named=named,
        source=side if ingress else Side(),
        destination=Side() if ingress else side,
    )


def _k8s_ports(items: list[Any], at: str) -> tuple[IntervalSet, NamedPorts]:
    """No ports: everything. A port without protocol is TCP; port:endPort is inclusive; a
    rule with ports never matches ICMP."""
    if not items:
        return ALL_PACKETS, NamedPorts()
    fixed, names = EMPTY, []
    for item in (i for i in items if isinstance(i, Mapping)):
        try:
            proto = protocol_number(item.get("protocol") or "TCP")
        except ValueError as err:
            raise CompileError(f"{at}: {err}") from None
        port = item.get("port")
        if port is None:
            fixed = fixed | protocols([proto])
        elif isinstance(port, str) and not port.isdigit():
            names.append((proto, port))
        else:
            lo = int(port)
            fixed = fixed | ports(proto, [(lo, int(item.get("endPort") or lo))])
    return fixed, NamedPorts(tuple(names))


def _k8s_peer(peer: Mapping[str, Any], namespace: str, at: str) -> Side:
    block = _map(peer.get("ipBlock"))
    if block:
        cidr = block.get("cidr")
        return Side(nets=_nets([cidr], at), not_nets=_nets(block.get("except"), at))
    if not peer:
        return Side()
    pods = _label_selector(peer.get("podSelector"), at)
    if "namespaceSelector" in peer:
        ns = _label_selector(peer.get("namespaceSelector"), at)
        return Side(match=Match(selector=pods, ns_selector=ns, pods_only=True))
    return Side(match=Match(selector=pods, namespace=namespace, pods_only=True))


_K8S_OPERATORS = {"In": "in", "NotIn": "not in"}


def _label_selector(value: Any, at: str) -> Selector:
    """A metav1.LabelSelector as the Calico selector conversion.go builds from it."""
    spec = _map(value)
    parts = [f"{k} == {_quoted(v)}" for k, v in sorted(_map(spec.get("matchLabels")).items())]
    for expr in (e for e in _list(spec.get("matchExpressions")) if isinstance(e, Mapping)):
        parts.append(_expression(expr, at))
    return _selector(" && ".join(parts), at)


def _expression(expr: Mapping[str, Any], at: str) -> str:
    key, op = str(expr.get("key")), expr.get("operator")
    values = ", ".join(_quoted(v) for v in _list(expr.get("values")))
    if op in _K8S_OPERATORS:
        return f"{key} {_K8S_OPERATORS[op]} {{{values}}}"
    if op == "Exists":
        return f"has({key})"
    if op == "DoesNotExist":
        return f"!has({key})"
    raise CompileError(f"{at}: unknown matchExpressions operator {op!r}")


def _quoted(value: Any) -> str:
    text = str(value)
    return f"'{text}'" if '"' in text else f'"{text}"'


# --- endpoints and sets --------------------------------------------------------------------


def labels_of(resource: Resource) -> dict[str, str]:
    """The labels selectors see. A crd.projectcalico.org/v1 object as stored keeps the user's
    labels in the projectcalico.org/metadata annotation, which wins on read (resources.go
    ConvertK8sResourceToCalicoResource; calico/metadata.py)."""
    meta = _map(resource.body.get("metadata"))
    own = {str(k): str(v) for k, v in _map(meta.get("labels")).items()}
    annotation = _map(meta.get("annotations")).get(metadata.METADATA_ANNOTATION)
    stored = str(resource.body.get("apiVersion", "")).startswith(f"{CALICO_CRD}/")
    if not stored or annotation is None:
        return own
    return metadata.merged(own, metadata.decode(annotation).get("labels", {}))


def network_set(resource: Resource, namespaces: Mapping[str, Mapping[str, str]]) -> View:
    spec = _map(resource.body.get("spec"))
    ns = resource.ref.namespace
    labels = labels_of(resource)
    return View(
        kind=Kind.SET,
        name=f"{ns}/{resource.ref.name}" if ns else resource.ref.name,
        namespace=ns,
        labels=labels,
        addresses=_nets(spec.get("nets"), _where(resource)) or EMPTY,
        ns_labels=namespaces.get(ns, {}) if ns else None,
        origin=str(resource.origin),
    )


def host_endpoint(resource: Resource) -> View:
    where = _where(resource)
    spec = _map(resource.body.get("spec"))
    labels = labels_of(resource)
    return View(
        kind=Kind.HOST,
        name=resource.ref.name,
        namespace="",
        labels=labels,
        addresses=_nets(spec.get("expectedIPs"), where + " spec.expectedIPs") or EMPTY,
        node=str(spec.get("node") or ""),
        named_ports=tuple(_hep_ports(_list(spec.get("ports")), where)),
        interface=str(spec.get("interfaceName") or ""),
        profiles=tuple(str(p) for p in _list(spec.get("profiles"))),
        origin=str(resource.origin),
    )


def _hep_ports(items: Sequence[Any], where: str) -> Iterable[NamedPort]:
    for item in (i for i in items if isinstance(i, Mapping)):
        try:
            yield NamedPort(str(item["name"]), protocol_number(item["protocol"]), int(item["port"]))
        except (KeyError, ValueError, TypeError):
            raise CompileError(f"{where}: bad spec.ports entry {dict(item)!r}") from None


def auto_host_endpoint(node: str, labels: Mapping[str, str], ips: Sequence[str]) -> View:
    """kube-controllers node/hostendpoints.go: <node>-auto-hep, interface *, Node labels plus
    created-by, expectedIPs, profile projectcalico-default-allow."""
    return View(
        kind=Kind.HOST,
        name=f"{node}-auto-hep",
        namespace="",
        labels={**labels, "projectcalico.org/created-by": "calico-kube-controllers"},
        addresses=addr.networks(ips),
        node=node,
        interface="*",
        profiles=(DEFAULT_ALLOW_PROFILE,),
        origin="automatic host endpoint (KubeControllersConfiguration)",
    )


def is_k8s(resource: Resource) -> bool:
    return resource.ref.group == K8S_NETWORKING
