"""Sets of integers as sorted, disjoint, non-adjacent closed intervals.

The engine is symbolic: addresses (IPv4 and IPv6 in one integer line) and packets
(protocol x port, or ICMP type x code, in another) are both such sets, so a rule's
match, a tier's remainder and a diff are set algebra rather than samples.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

Span = tuple[int, int]  # inclusive bounds


def _normalise(spans: Iterable[Span]) -> tuple[Span, ...]:
    merged: list[Span] = []
    for lo, hi in sorted(s for s in spans if s[0] <= s[1]):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return tuple(merged)


def _merge(a: tuple[Span, ...], b: tuple[Span, ...]) -> tuple[Span, ...]:
    """Union of two normalised span lists in one pass."""
    merged: list[Span] = []
    i = j = 0
    while i < len(a) or j < len(b):
        if j == len(b) or (i < len(a) and a[i][0] <= b[j][0]):
            lo, hi = a[i]
            i += 1
        else:
            lo, hi = b[j]
            j += 1
        if merged and lo <= merged[-1][1] + 1:
            if hi > merged[-1][1]:
                merged[-1] = (merged[-1][0], hi)
        else:
            merged.append((lo, hi))
    return tuple(merged)


@dataclass(frozen=True, slots=True)
class IntervalSet:
    spans: tuple[Span, ...] = ()

    @staticmethod
    def of(spans: Iterable[Span]) -> IntervalSet:
        return IntervalSet(_normalise(spans))

    @staticmethod
    def point(value: int) -> IntervalSet:
        return IntervalSet(((value, value),))

    def __bool__(self) -> bool:
        return bool(self.spans)

    def __iter__(self) -> Iterator[Span]:
        return iter(self.spans)

    def __contains__(self, value: int) -> bool:
        return any(lo <= value <= hi for lo, hi in self.spans)

    def __or__(self, other: IntervalSet) -> IntervalSet:
        if not other.spans or other.spans == self.spans:
            return self
        if not self.spans:
            return other
        return IntervalSet(_merge(self.spans, other.spans))

    def __and__(self, other: IntervalSet) -> IntervalSet:
        if self.spans == other.spans or not self.spans:
            return self
        if not other.spans:
            return other
        out: list[Span] = []
        a, b, i, j = self.spans, other.spans, 0, 0
        while i < len(a) and j < len(b):
            lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
            if lo <= hi:
                out.append((lo, hi))
            if a[i][1] < b[j][1]:
                i += 1
            else:
                j += 1
        return IntervalSet(tuple(out))

    def __sub__(self, other: IntervalSet) -> IntervalSet:
        if not self.spans or not other.spans:
            return self
        out: list[Span] = []
        others = other.spans
        j = 0
        for lo, hi in self.spans:
            while j < len(others) and others[j][1] < lo:
                j += 1
            k, start = j, lo
            while k < len(others) and others[k][0] <= hi:
                if others[k][0] > start:
                    out.append((start, others[k][0] - 1))
                start = max(start, others[k][1] + 1)
                k += 1
            if start <= hi:
                out.append((start, hi))
        return IntervalSet(tuple(out))

    def first(self) -> int:
        return self.spans[0][0]

    def size(self) -> int:
        return sum(hi - lo + 1 for lo, hi in self.spans)


EMPTY = IntervalSet()
