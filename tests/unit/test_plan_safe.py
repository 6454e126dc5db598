"""The firewall-safe order on the connectivity model (plan/safe.py, plan/bridge.py).

Every test checks the states an apply passes through with `evaluate`, the engine's
single-flow evaluator, independently of the matrices the planner itself used."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.connectivity import (
    Engine,
    Verdict,
    World,
    build_world,
    evaluate,
    parse_packet,
    parse_peer,
)
from reconciler.connectivity.flows import PeerError
from reconciler.connectivity.intervals import IntervalSet
from reconciler.connectivity.packets import ALL_PACKETS
from reconciler.model import Action, Change, DiffEntry, Resource
from reconciler.plan import bridge, safe
from reconciler.plan.order import in_apply_order
from reconciler.plan.safe import (
    CHECK_LIMIT,
    Ordered,
    Surroundings,
    has_states_between,
    safe_order,
)
from tests.unit.connectivity_fixtures import FACTS, OPEN_HEPS, resources
from tests.unit.test_connectivity_properties import policy

# Two policies that allow web's clients only together: either alone isolates web.
TWO = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-client, namespace: a}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{from: [{podSelector: {matchLabels: {app: client}}}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-b, namespace: a}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {team: b}}}]}]
"""
# An allow-only policy the kind order writes first (isolating web), and a mixed one
# (Deny from b, then Allow the rest) that must go first instead.
MIXED = """
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: a-allow, namespace: a}
spec:
  order: 10
  selector: app == 'web'
  types: [Ingress]
  ingress: [{action: Allow, source: {selector: app == 'client'}}]
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: b-mixed, namespace: a}
spec:
  order: 20
  selector: app == 'web'
  types: [Ingress]
  ingress: [{action: Deny, source: {namespaceSelector: team == 'b'}}, {action: Allow}]
"""
# Something already enforcing, so the start is not an empty firewall.
EXISTING = """
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: db-open}
spec: {selector: app == 'db', types: [Ingress], ingress: [{action: Allow}]}
"""
PEERS = ["pod:a/web", "pod:a/client", "pod:b/db", "pod:b/other", "pod:a/far", "pod:a/web2"]
PEERS += ["node:n1", "node:n2", "cidr:198.51.100.7"]
PACKETS = ["tcp/8080", "tcp/22", "udp/53"]


def creates(text: str) -> list[Change]:
    return [Change(r.ref, Action.CREATE, r, None) for r in resources(text)]


def states(start: Sequence[Resource], sequence: Sequence[Change]) -> Iterator[World]:
    """The world after each write, by (kind, namespace, name)."""
    now = {(r.ref.group, *r.ref.key[1:]): r for r in start}
    for change in sequence:
        key = (change.ref.group, *change.ref.key[1:])
        if change.action is Action.PRUNE:
            now.pop(key, None)
        elif change.desired is not None:
            now[key] = change.desired
        yield build_world(now.values(), FACTS)


def verdict(w: World, flow: tuple[str, str, str]) -> Verdict:
    src, dst, packet = flow
    return evaluate(w, parse_peer(src), parse_peer(dst), parse_packet(packet), Engine(w)).verdict


def blinking(start: Sequence[Resource], sequence: Sequence[Change]) -> list[tuple[str, str, str]]:
    """Sampled flows allowed before and after that some state in between denies."""
    worlds = [build_world(start, FACTS), *states(start, sequence)]
    out = []
    for flow in _flows(worlds[0]):
        kept = verdict(worlds[0], flow) is verdict(worlds[-1], flow) is Verdict.ALLOW
        if kept and any(verdict(w, flow) is not Verdict.ALLOW for w in worlds[1:-1]):
            out.append(flow)
    return out


def _flows(w: World) -> Iterator[tuple[str, str, str]]:
    for s in PEERS:
        for d in PEERS:
            for p in PACKETS:
                try:
                    parse_peer(s), parse_peer(d)
                    if s != d and not (s.startswith("cidr") and d.startswith("cidr")):
                        yield s, d, p
                except PeerError:
                    continue


def order(start: Sequence[Resource], changes: Sequence[Change], *, reorder: bool = True) -> Ordered:
    return safe_order(changes, Surroundings(tuple(start), FACTS), reorder=reorder)


def test_two_policies_that_allow_only_together_are_bridged() -> None:
    start, changes = resources(EXISTING), creates(TWO)
    # Negative control: in the kind order, client -> web blinks after the first write.
    assert ("pod:a/client", "pod:a/web", "tcp/8080") in blinking(start, in_apply_order(changes))
    found = order(start, changes)
    assert found.method == "bridged" and found.blinks == ()
    refs = [str(c.ref) for c in found.changes]
    tier = bridge.tier_name("")
    assert refs[:2] == [f"Tier/{tier}", f"GlobalNetworkPolicy/{bridge.policy_name(tier)}"]
    assert [c.action for c in found.changes[-2:]] == [Action.PRUNE, Action.PRUNE]
    assert blinking(start, found.changes) == []


def test_a_mixed_policy_goes_first_when_that_keeps_every_flow() -> None:
    start, changes = resources(EXISTING), creates(MIXED)
    far = ("pod:a/far", "pod:a/web", "tcp/8080")
    assert far in blinking(start, in_apply_order(changes))  # the kind order cuts it
    found = order(start, changes)
    assert found.method == "reordered"
    assert [c.ref.name for c in found.changes] == ["b-mixed", "a-allow"]
    assert blinking(start, found.changes) == []


def test_the_bridge_opens_nothing_the_start_denies() -> None:
    start, changes = resources(OPEN_HEPS + "---\n" + EXISTING), creates(TWO)
    found = order(start, changes)
    worlds = [build_world(start, FACTS), *states(start, found.changes[:2])]
    for flow in _flows(worlds[0]):
        if verdict(worlds[0], flow) is not Verdict.ALLOW:
            assert verdict(worlds[-1], flow) is not Verdict.ALLOW, flow


def _relabelled(found: Sequence[Resource], path: str = "metadata.labels.team") -> list[Change]:
    out = []
    for r in found:
        body = {**r.body, "metadata": {**r.body["metadata"], "labels": {"team": "x"}}}
        entry = DiffEntry(path, None, "x")
        out.append(Change(r.ref, Action.UPDATE, Resource(r.ref, body, r.origin), r.body, (entry,)))
    return out


def test_relabelling_policies_changes_no_verdict_and_is_not_walked() -> None:
    """A policy's labels and any annotation decide nothing (no selector reads them), so a
    plan of such updates has no state in between: nothing is evaluated or bridged."""
    start = resources(EXISTING + "---\n" + TWO)
    changes = _relabelled(start[1:]) + _relabelled(start[:1], "metadata.annotations.x")
    assert not has_states_between(changes)
    found = order(start, changes)
    assert (found.method, found.states) == ("kind order", 0)
    # Control: the same update of host endpoints, whose labels policies select, is walked.
    heps = resources(OPEN_HEPS)
    assert has_states_between(_relabelled(heps))
    assert order([*heps, *start], _relabelled(heps)).states > 0


def test_a_model_too_large_to_evaluate_is_reported_unchecked_not_walked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The bound is on the work before any state (policies x endpoints), so a 50,000-object
    plan answers at once, in kind order, and says why it was not evaluated."""
    start, changes = resources(EXISTING), creates(TWO)
    assert order(start, changes).method == "bridged"  # control: evaluated under the limit
    monkeypatch.setattr(safe, "MODEL_LIMIT", 3)
    found = order(start, changes)
    assert (found.method, found.states) == ("unchecked", 0)
    pairs = 3 * (len(FACTS.pods) + len(FACTS.nodes))  # db-open and the two NetworkPolicies
    assert found.note == f"too large to evaluate: {pairs} policy-endpoint pairs (at most 3)"
    assert found.changes == in_apply_order(changes)


def test_one_write_has_no_state_in_between() -> None:
    found = order(resources(EXISTING), creates(TWO)[:1])
    assert found.method == "kind order" and len(found.changes) == 1


def test_many_writes_on_an_empty_firewall_bridge_with_one_allow_rule() -> None:
    many = "---\n".join(
        TWO.replace("from-client", f"c{i}").replace("from-b", f"b{i}")
        for i in range(CHECK_LIMIT // 2 + 1)
    )
    found = order((), creates(many))
    assert found.method == "bridged" and found.states == 0
    keep = found.changes[1].desired
    assert keep is not None
    assert keep.body["spec"]["ingress"] == [{"action": "Allow"}, {"action": "Pass"}]


def test_a_tier_ahead_of_the_bridge_is_reported_not_bridged() -> None:
    tier = "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: first}\nspec: {order: 0}"
    found = order(resources(EXISTING + "---\n" + tier), creates(TWO))
    assert found.method == "unchecked" and found.note == bridge.NO_TIER
    assert found.blinks  # said, not silent


# --- property: whatever the plan, no sampled flow to keep blinks ---------------------------


def _text(found: Sequence[dict[str, Any]]) -> str:
    return "".join(yaml.safe_dump(p) + "---\n" for p in found)


plans = st.tuples(
    st.lists(st.integers(0, 4), max_size=3, unique=True).flatmap(
        lambda ids: st.tuples(*(policy(f"p{i}") for i in ids))
    ),
    st.lists(st.integers(0, 4), min_size=2, max_size=4, unique=True).flatmap(
        lambda ids: st.tuples(*(policy(f"p{i}") for i in ids))
    ),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans, st.booleans())
def test_no_flow_both_ends_allow_blinks(given_plan: tuple[Any, Any], reorder: bool) -> None:
    """With the search, and bridging wherever the kind order blinks."""
    before, after = given_plan
    start = resources(OPEN_HEPS + "---\n" + _text(before))
    old = {r.ref.key: r for r in start}
    changes = []
    for r in resources(_text(after)):
        live = old.pop(r.ref.key, None)
        if live is None or live.body != r.body:
            action = Action.CREATE if live is None else Action.UPDATE
            changes.append(Change(r.ref, action, r, None if live is None else dict(live.body)))
    changes += [
        Change(r.ref, Action.PRUNE, None, dict(r.body))
        for r in old.values()
        if r.ref.kind != "HostEndpoint"
    ]
    found = order(start, changes, reorder=reorder)
    assert found.method != "unchecked", found.note
    assert found.blinks == ()
    assert blinking(start, found.changes) == []


def test_a_bridged_plan_says_which_flows_it_keeps() -> None:
    found = order(resources(EXISTING), creates(TWO))
    assert found.kept == (
        "pods app=client in ns a (client) -> pods app=web in ns a (web, web2) all traffic",
    )


def test_the_bridge_names_every_protocol_inside_an_interval() -> None:
    """Everything but tcp/80 is two intervals, from protocol 0 to tcp/79 and from tcp/81 to
    protocol 255: every protocol inside them is bridged, not only the intervals' ends
    (hypothesis found a bridge that named protocols 0, 6 and 255 and blinked ICMP)."""
    tcp80 = (6 << 16) | 80
    rules = bridge._matches(ALL_PACKETS - IntervalSet.of([(tcp80, tcp80)]), 4)
    named = {r.get("protocol") for r in rules}
    assert {"ICMP", "UDP", 5, 254} <= named
    assert 0 not in named and "ICMPv6" not in named  # no rule can name them for IPv4
    tcp = next(r for r in rules if r.get("protocol") == "TCP")
    assert tcp["destination"]["ports"] == ["1:79", "81:65535"]
    assert bridge._matches(ALL_PACKETS - IntervalSet.of([(6 << 16, 6 << 16)]), 4) == [{}]
