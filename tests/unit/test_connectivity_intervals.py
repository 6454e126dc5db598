"""IntervalSet (the engine's symbolic sets) against Python sets; packets and addresses."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reconciler.connectivity import addresses as addr
from reconciler.connectivity.intervals import IntervalSet
from reconciler.connectivity.packets import (
    ALL_PACKETS,
    ICMP,
    TCP,
    icmp,
    parse_packet,
    ports,
    show_packet,
    show_packets,
)

spans = st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), max_size=6)


def as_set(value: IntervalSet) -> set[int]:
    return {i for lo, hi in value for i in range(lo, hi + 1)}


def plain(raw: list[tuple[int, int]]) -> set[int]:
    return {i for lo, hi in raw for i in range(lo, hi + 1)}


@given(spans, spans)
def test_set_algebra_matches_python_sets(
    a: list[tuple[int, int]], b: list[tuple[int, int]]
) -> None:
    x, y = IntervalSet.of(a), IntervalSet.of(b)
    assert as_set(x) == plain(a)
    assert as_set(x | y) == plain(a) | plain(b)
    assert as_set(x & y) == plain(a) & plain(b)
    assert as_set(x - y) == plain(a) - plain(b)
    assert (x | y).spans == IntervalSet.of(a + b).spans  # normalised: one representation


def test_packets_parse_and_show() -> None:
    assert show_packet(parse_packet("tcp/443")) == "tcp/443"
    assert parse_packet("icmp") in icmp(ICMP, 8, 0)  # echo request
    assert show_packets(ports(TCP, [(80, 80), (8000, 8100)])) == "tcp/80,8000-8100"
    assert show_packets(ALL_PACKETS) == "all traffic"
    assert show_packets(icmp(ICMP, 3, None)) == "icmp/type 3"


def test_addresses_keep_ipv4_and_ipv6_apart() -> None:
    v4, v6 = addr.network_span("10.0.0.0/8"), addr.network_span("::/0")
    assert v4[1] < v6[0]
    assert addr.show_span(v4) == ["10.0.0.0/8"]
    assert addr.show_addresses(IntervalSet((v6,))) == "::/0"
    assert addr.show_address(addr.address("fd00::1")) == "fd00::1"
