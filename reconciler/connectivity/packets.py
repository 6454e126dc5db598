"""Packets on one integer line: protocol << 16 | port, or protocol << 16 | type << 8 | code.

TCP, UDP and SCTP carry a destination port; ICMP and ICMPv6 a type and code; any other
protocol is the single point protocol << 16. So "tcp/80", "icmp type 8" and "all
traffic" are all IntervalSets, and rule matching is intersection.
"""

from __future__ import annotations

from collections.abc import Iterable

from reconciler.connectivity.intervals import IntervalSet, Span

ICMP, TCP, UDP, ICMPV6, SCTP, UDPLITE = 1, 6, 17, 58, 132, 136
PORT_PROTOCOLS = (TCP, UDP, SCTP)
ICMP_PROTOCOLS = (ICMP, ICMPV6)
NAMES: dict[str, int] = {
    "TCP": TCP,
    "UDP": UDP,
    "ICMP": ICMP,
    "ICMPV6": ICMPV6,
    "SCTP": SCTP,
    "UDPLITE": UDPLITE,
}
_SHOW = {TCP: "tcp", UDP: "udp", ICMP: "icmp", ICMPV6: "icmpv6", SCTP: "sctp", UDPLITE: "udplite"}


def protocol_number(value: object) -> int:
    """Calico's protocol field: a name (any case for K8s; Calico's are case-exact) or 1-255."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 255:
        return value
    if isinstance(value, str):
        if value.isdigit() and int(value) <= 255:
            return int(value)
        if value.upper() in NAMES:
            return NAMES[value.upper()]
    raise ValueError(f"unknown protocol {value!r}")


def protocol_span(proto: int) -> Span:
    """Everything of one protocol. A protocol without ports spans its whole range too, so
    that "all traffic" is one interval (its low 16 bits then carry no meaning)."""
    return proto << 16, (proto << 16) | 0xFFFF


ALL_PACKETS = IntervalSet.of(protocol_span(p) for p in range(256))


def protocols(protos: Iterable[int]) -> IntervalSet:
    return IntervalSet.of(protocol_span(p) for p in protos)


def ports(proto: int, ranges: Iterable[tuple[int, int]]) -> IntervalSet:
    return IntervalSet.of(((proto << 16) | lo, (proto << 16) | hi) for lo, hi in ranges)


def icmp(proto: int, icmp_type: int | None, code: int | None) -> IntervalSet:
    if icmp_type is None:
        return IntervalSet.of([protocol_span(proto)])
    base = (proto << 16) | (icmp_type << 8)
    if code is None:
        return IntervalSet(((base, base | 0xFF),))
    return IntervalSet.point(base | code)


def parse_packet(text: str) -> int:
    """The CLI's PORT: tcp/N, udp/N, sctp/N, icmp (echo request), icmp/TYPE[/CODE], proto/N."""
    parts = text.strip().lower().split("/")
    kind, numbers = parts[0], parts[1:]
    try:
        values = [int(n) for n in numbers]
    except ValueError:
        raise ValueError(f"PORT {text!r}: numbers expected after '/'") from None
    if kind in ("tcp", "udp", "sctp") and len(values) == 1 and 1 <= values[0] <= 65535:
        return (NAMES[kind.upper()] << 16) | values[0]
    if kind in ("icmp", "icmpv6") and len(values) <= 2:
        return _icmp_point(NAMES[kind.upper()], values, text)
    if kind == "proto" and len(values) == 1 and 0 <= values[0] <= 255:
        return values[0] << 16
    raise ValueError(
        f"PORT {text!r}: expected tcp/N, udp/N, sctp/N (N 1-65535), icmp, icmp/TYPE, "
        "icmp/TYPE/CODE or proto/N"
    )


def _icmp_point(proto: int, values: list[int], text: str) -> int:
    echo = 8 if proto == ICMP else 128
    icmp_type, code = (values + [echo, 0][len(values) :])[:2]
    if not (0 <= icmp_type <= 255 and 0 <= code <= 255):
        raise ValueError(f"PORT {text!r}: ICMP type and code are 0-255")
    return (proto << 16) | (icmp_type << 8) | code


def show_packet(value: int) -> str:
    proto, low = value >> 16, value & 0xFFFF
    name = _SHOW.get(proto, f"proto/{proto}")
    if proto in PORT_PROTOCOLS:
        return f"{name}/{low}"
    if proto in ICMP_PROTOCOLS:
        return f"{name}/{low >> 8}/{low & 0xFF}"
    return name if name.startswith("proto/") else f"proto/{proto}"


def show_packets(packets: IntervalSet) -> str:
    if packets == ALL_PACKETS:
        return "all traffic"
    return ", ".join(_show_protocol(p, packets) for p in _protocols_in(packets))


def _protocols_in(packets: IntervalSet) -> list[int]:
    found: set[int] = set()
    for lo, hi in packets:
        found.update(range(lo >> 16, (hi >> 16) + 1))
    return sorted(found)


def _show_protocol(proto: int, packets: IntervalSet) -> str:
    mine = packets & IntervalSet.of([protocol_span(proto)])
    name = _SHOW.get(proto, f"proto/{proto}")
    if mine == IntervalSet.of([protocol_span(proto)]):
        return name
    if proto in ICMP_PROTOCOLS:
        return " ".join(f"{name}/{_icmp_range(lo & 0xFFFF, hi & 0xFFFF)}" for lo, hi in mine)
    if proto not in PORT_PROTOCOLS:
        return name
    ranges = [_port_range(lo & 0xFFFF, hi & 0xFFFF) for lo, hi in mine]
    return f"{name}/" + ",".join(ranges)


def _port_range(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"{lo}-{hi}"


def _icmp_range(lo: int, hi: int) -> str:
    if lo & 0xFF == 0 and hi & 0xFF == 0xFF and lo >> 8 == hi >> 8:
        return f"type {lo >> 8}"
    if lo == hi:
        return f"{lo >> 8}/{lo & 0xFF}"
    return f"{lo >> 8}/{lo & 0xFF}-{hi >> 8}/{hi & 0xFF}"
