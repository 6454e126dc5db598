"""IP addresses on one integer line: IPv4 at [0, 2^32), IPv6 at V6_BASE + [0, 2^128)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from reconciler.connectivity.intervals import IntervalSet, Span

V6_BASE = 1 << 129
ALL_V4 = IntervalSet((((0, (1 << 32) - 1)),))
ALL_V6 = IntervalSet(((V6_BASE, V6_BASE + (1 << 128) - 1),))
ALL_ADDRESSES = ALL_V4 | ALL_V6


def network_span(text: str) -> Span:
    """A CIDR (host bits allowed, as Calico accepts them) or a bare address."""
    net = ipaddress.ip_network(text.strip(), strict=False)
    base = V6_BASE if net.version == 6 else 0
    return base + int(net.network_address), base + int(net.broadcast_address)


def address(text: str) -> int:
    ip = ipaddress.ip_address(text.strip())
    return (V6_BASE if ip.version == 6 else 0) + int(ip)


def networks(texts: Iterable[str]) -> IntervalSet:
    return IntervalSet.of(network_span(t) for t in texts)


def version(value: int) -> int:
    return 6 if value >= V6_BASE else 4


def show_address(value: int) -> str:
    if value >= V6_BASE:
        return str(ipaddress.IPv6Address(value - V6_BASE))
    return str(ipaddress.IPv4Address(value))


def show_span(span: Span) -> list[str]:
    """A span as the fewest CIDRs (a single address without a prefix length)."""
    lo, hi = span
    v6 = lo >= V6_BASE
    base = V6_BASE if v6 else 0
    make = ipaddress.IPv6Address if v6 else ipaddress.IPv4Address
    nets = ipaddress.summarize_address_range(make(lo - base), make(hi - base))
    return [str(n.network_address) if n.num_addresses == 1 else str(n) for n in nets]


def show_addresses(addresses: IntervalSet, *, limit: int = 8) -> str:
    if addresses == ALL_ADDRESSES:
        return "any address"
    if addresses == ALL_V4:
        return "0.0.0.0/0"
    cidrs = [c for span in addresses for c in show_span(span)]
    more = f" (+{len(cidrs) - limit} more)" if len(cidrs) > limit else ""
    return ", ".join(cidrs[:limit]) + more
