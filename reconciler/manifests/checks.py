"""Leaf checks: one value in, a problem (or None) out. Facts pinned to their sources.

Calico: libcalico-go/lib/validator/v3/validator.go (names, nets, protocols, ports) and
api/pkg/lib/numorstring/{port,protocol}.go. Kubernetes: apimachinery/pkg/util/validation
(names, labels, port names) and pkg/apis/networking/validation/validation.go.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Sequence
from typing import Any

from reconciler.manifests.schema import LeafCheck
from reconciler.manifests.selector import SelectorError, parse_selector

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN = rf"{_LABEL}(\.{_LABEL})*"
_DNS_LABEL = re.compile(_LABEL)
_DNS_SUBDOMAIN = re.compile(_SUBDOMAIN)
# validator.go: globalNetworkPolicyNameRegex and networkPolicyNameRegex.
_GLOBAL_POLICY_NAME = re.compile(rf"({_LABEL}\.)?{_LABEL}")
_POLICY_NAME = re.compile(rf"{_LABEL}(\.{_LABEL})?|(knp|ossg)\.default\.{_SUBDOMAIN}")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_INTERFACE = re.compile(r"[a-zA-Z0-9_.-]{1,15}")  # validator.go interfaceRegex
_DIGITS = re.compile(r"[0-9]+")
_PORT_RANGE = re.compile(r"([0-9]+):([0-9]+)")

CALICO_PROTOCOLS = ("TCP", "UDP", "ICMP", "ICMPv6", "SCTP", "UDPLite")  # case-sensitive
PORT_PROTOCOLS = frozenset({"TCP", "UDP", "SCTP", 6, 17, 132})  # Protocol.SupportsPorts()


# --- names -------------------------------------------------------------------------------


def _name(value: str, *, regex: re.Pattern[str], limit: int, what: str) -> str | None:
    if len(value) > limit:
        return f"{value!r} is longer than {limit} characters"
    if not regex.fullmatch(value):
        return f"{value!r} is not a valid {what}"
    return None


def dns_subdomain(value: str) -> str | None:
    what = "DNS-1123 subdomain (lower-case letters, digits, '-' and '.')"
    return _name(value, regex=_DNS_SUBDOMAIN, limit=253, what=what)


def dns_label(value: str) -> str | None:
    what = "DNS-1123 label (lower-case letters, digits and '-', no dots)"
    return _name(value, regex=_DNS_LABEL, limit=63, what=what)


def global_policy_name(value: str) -> str | None:
    what = "global policy name (a DNS-1123 label, optionally prefixed by '<tier>.')"
    return _name(value, regex=_GLOBAL_POLICY_NAME, limit=253, what=what)


def policy_name(value: str) -> str | None:
    what = "policy name (a DNS-1123 label, optionally prefixed by '<tier>.')"
    return _name(value, regex=_POLICY_NAME, limit=253, what=what)


def interface_name(value: str) -> str | None:
    if value == "*" or _INTERFACE.fullmatch(value):
        return None
    return f"{value!r} is not an interface name ('*' or up to 15 of [a-zA-Z0-9_.-])"


# --- labels and annotations (apimachinery IsQualifiedName / IsValidLabelValue) ----------


def qualified_name(value: str) -> str | None:
    prefix, slash, name = value.rpartition("/")
    if slash and (not prefix or dns_subdomain(prefix)):
        return f"{value!r}: the prefix before '/' must be a DNS-1123 subdomain"
    if len(name) > 63 or not _QUALIFIED_NAME.fullmatch(name):
        return (
            f"{value!r} is not a valid key: at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit, with an optional DNS prefix and '/'"
        )
    return None


def label_value(value: str) -> str | None:
    if value == "" or (len(value) <= 63 and _QUALIFIED_NAME.fullmatch(value)):
        return None
    return (
        f"{value!r} is not a valid label value: at most 63 letters, digits, '-', '_' or '.', "
        "starting and ending with a letter or digit"
    )


def annotation_key(value: str) -> str | None:
    return qualified_name(value.lower())  # as ValidateAnnotations does


# --- selectors ---------------------------------------------------------------------------


def _selector(value: str, *, allow_global: bool) -> str | None:
    try:
        parse_selector(value, allow_global=allow_global)
    except SelectorError as err:
        return f"invalid selector {value!r}: {err.message}"  # the message gives the position
    return None


def selector(value: str) -> str | None:
    return _selector(value, allow_global=False)


def rule_namespace_selector(value: str) -> str | None:
    return _selector(value, allow_global=True)  # global() is valid only here


# --- addresses ---------------------------------------------------------------------------


def parse_network(value: str) -> IPNetwork | None:
    """`addr/len` or a bare address, as Go's net.ParseCIDR / ParseIP read them; else None."""
    _, slash, prefix = value.partition("/")
    if "%" in value or (slash and not _DIGITS.fullmatch(prefix)):
        return None  # Python alone would accept zones and netmask suffixes; Go does not
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None


def _host_bits_set(value: str, net: IPNetwork) -> bool:
    return ipaddress.ip_interface(value).ip != net.network_address


def calico_rule_net(value: str) -> str | None:
    """Rule nets/notNets: validateRule parses them with ParseCIDR (no bare IPs) and the
    `net` field validator wants them masked."""
    net = parse_network(value)
    if net is None:
        return f"{value!r} is not a valid CIDR"
    if "/" not in value:
        return f"{value!r} has no prefix length: Calico rule nets need a CIDR such as {net}"
    if _host_bits_set(value, net):
        return f"{value!r} has host bits set: Calico needs the masked network {net}"
    return None


def calico_set_net(value: str) -> str | None:
    """Network set nets: the `cidr` validator (ParseCIDROrIP) takes bare IPs and host bits."""
    return None if parse_network(value) else f"{value!r} is not a valid CIDR or IP address"


def ip_address(value: str) -> str | None:
    if "%" not in value:
        try:
            ipaddress.ip_address(value)
            return None
        except ValueError:
            pass
    return f"{value!r} is not a valid IP address"


def k8s_cidr(value: str) -> str | None:
    if "/" in value and parse_network(value):
        return None
    return f"{value!r} is not a valid CIDR (address/prefix-length)"


# --- ports and protocols -----------------------------------------------------------------


def port_number(value: int) -> str | None:
    # 0 is refused too: numorstring validatePort and IsValidPortNum both want 1-65535.
    return None if 1 <= value <= 65535 else f"port {value} is out of range 1-65535"


def port_name(value: str) -> str | None:
    """IANA service name, as Kubernetes IsValidPortName (Calico's portName uses it too)."""
    problems = (
        (not 1 <= len(value) <= 15, "must be 1-15 characters"),
        (not re.fullmatch(r"[-a-z0-9]+", value), "may only hold lower-case letters, digits, '-'"),
        (not re.search(r"[a-z]", value), "must contain a letter"),
        ("--" in value or value.startswith("-") or value.endswith("-"), "misplaced '-'"),
    )
    for bad, why in problems:
        if bad:
            return f"{value!r} is not a valid port name: {why}"
    return None


def calico_port(value: int | str) -> str | None:
    """An int, a "min:max" range, or a named port (numorstring.PortFromString)."""
    if isinstance(value, int):
        return port_number(value)
    if _DIGITS.fullmatch(value):
        return port_number(int(value))
    bounds = _PORT_RANGE.fullmatch(value)
    if bounds is None:
        return port_name(value)
    low, high = int(bounds[1]), int(bounds[2])
    problem = port_number(low) or port_number(high)
    return problem or (f"port range {value!r} is reversed" if low > high else None)


def k8s_port(value: int | str) -> str | None:
    return port_number(value) if isinstance(value, int) else port_name(value)


def protocol_value(value: int | str) -> int | str:
    """The protocol as Calico compares it: names as written, numeric strings as numbers."""
    return int(value) if isinstance(value, str) and _DIGITS.fullmatch(value) else value


def calico_protocol(value: int | str) -> str | None:
    proto = protocol_value(value)
    if isinstance(proto, int):
        return None if 1 <= proto <= 255 else f"protocol number {proto} is out of range 1-255"
    if proto in CALICO_PROTOCOLS:
        return None
    hint = _case_hint(proto, CALICO_PROTOCOLS)
    return f"unknown protocol {proto!r}: use {', '.join(CALICO_PROTOCOLS)} or 1-255{hint}"


# --- generic -----------------------------------------------------------------------------


def _case_hint(value: str, allowed: Sequence[Any]) -> str:
    same = [a for a in allowed if isinstance(a, str) and a.lower() == value.lower()]
    return f" (values are case-sensitive: write {same[0]!r})" if same else ""


def one_of(*allowed: Any, what: str = "value") -> LeafCheck:
    def check(value: Any) -> str | None:
        if value in allowed:
            return None
        shown = ", ".join(str(a) for a in allowed)
        hint = _case_hint(value, allowed) if isinstance(value, str) else ""
        return f"{what} {value!r} is not one of {shown}{hint}"

    return check


def int_range(low: int, high: int, *, what: str) -> LeafCheck:
    def check(value: int) -> str | None:
        return None if low <= value <= high else f"{what} {value} is out of range {low}-{high}"

    return check


def finite_number(value: float) -> str | None:
    try:
        return None if math.isfinite(float(value)) else "must be a finite number"
    except OverflowError:
        return "number is too large"


def port_protocol(value: int | str) -> str | None:
    """A named endpoint port's protocol must have ports (validateEndpointPort)."""
    if protocol_value(value) in PORT_PROTOCOLS:
        return None
    return f"protocol {value!r} has no ports: use TCP, UDP or SCTP"


_DURATION = re.compile(r"0|([0-9]*(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+")


def go_duration(value: str) -> str | None:
    """metav1.Duration, read by Go's time.ParseDuration: "90s", "5m", "1h30m"."""
    if _DURATION.fullmatch(value) and any(ch.isdigit() for ch in value):
        return None
    return f"{value!r} is not a duration such as 90s, 5m or 1h30m"
