"""Properties of the connectivity engine over generated policies (hypothesis):
diff(a, a) is empty; a policy that selects nothing changes nothing; diff agrees with eval
on every sampled flow; policy order ties break by name (calico-semantics.md)."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.connectivity import Engine, Verdict, World, evaluate, parse_packet, parse_peer
from reconciler.connectivity.diff import diff
from reconciler.connectivity.flows import PeerError, place
from tests.unit.connectivity_fixtures import OPEN_HEPS, world

SELECTORS = ["all()", "app == 'web'", "app == 'db'", "has(host-endpoint)", "app != 'web'"]
NETS = ["10.1.0.0/16", "198.51.100.0/24", "10.0.0.2/32", "0.0.0.0/0"]
PEERS = [
    "pod:a/web",
    "pod:a/client",
    "pod:b/db",
    "pod:b/other",
    "pod:a/far",
    "pod:a/web2",
    "pod:b/db2",
    "node:n1",
    "node:n2",
    "node:n3",
    "cidr:198.51.100.7",
    "cidr:203.0.113.1",
    "cidr:10.1.9.9",
]
PACKETS = ["tcp/80", "tcp/443", "tcp/22", "udp/53", "icmp", "tcp/8080"]

side = st.fixed_dictionaries(
    {},
    optional={
        "selector": st.sampled_from(SELECTORS),
        "nets": st.lists(st.sampled_from(NETS), min_size=1, max_size=2),
        "notNets": st.lists(st.sampled_from(NETS), min_size=1, max_size=1),
        "namespaceSelector": st.sampled_from(["team == 'a'", "global()", "all()"]),
    },
)
rule = st.builds(
    lambda action, proto, ports, src, dst: {
        "action": action,
        **({"protocol": proto} if proto else {}),
        "source": src,
        "destination": {**dst, **({"ports": ports} if ports and proto == "TCP" else {})},
    },
    st.sampled_from(["Allow", "Deny", "Pass", "Log"]),
    st.sampled_from([None, "TCP", "UDP", "ICMP"]),
    st.lists(st.sampled_from([80, 443, "8000:8100", "http"]), max_size=2),
    side,
    side,
)


@st.composite
def policy(draw: Any, name: str) -> dict[str, Any]:
    kind = draw(st.sampled_from(["GlobalNetworkPolicy", "NetworkPolicy"]))
    spec: dict[str, Any] = {
        "selector": draw(st.sampled_from(SELECTORS)),
        "ingress": draw(st.lists(rule, max_size=2)),
        "egress": draw(st.lists(rule, max_size=2)),
    }
    order = draw(st.sampled_from([None, 10, 1000]))
    if order is not None:
        spec["order"] = order
    if draw(st.booleans()):
        spec["types"] = draw(st.sampled_from([["Ingress"], ["Egress"], ["Ingress", "Egress"]]))
    if kind == "GlobalNetworkPolicy" and draw(st.booleans()):
        spec["applyOnForward"] = True
    meta = {"name": name, **({"namespace": "a"} if kind == "NetworkPolicy" else {})}
    return {"apiVersion": "projectcalico.org/v3", "kind": kind, "metadata": meta, "spec": spec}


def text(policies: list[dict[str, Any]]) -> str:
    return "".join(yaml.safe_dump(p) + "---\n" for p in policies)


policies = st.lists(st.integers(0, 5), max_size=3, unique=True).flatmap(
    lambda ids: st.tuples(*(policy(f"p{i}") for i in ids))
)
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def flows(w: World) -> list[tuple[str, str, str]]:
    return [(s, d, p) for s in PEERS for d in PEERS for p in PACKETS if s != d]


@FAST
@given(policies)
def test_diff_of_a_world_with_itself_is_empty(found: tuple[dict[str, Any], ...]) -> None:
    w = world(OPEN_HEPS, text(list(found)))
    assert diff(w, w).changes == ()


@FAST
@given(policies, st.lists(rule, min_size=1, max_size=3))
def test_a_policy_that_selects_nothing_changes_nothing(
    found: tuple[dict[str, Any], ...], rules: list[dict[str, Any]]
) -> None:
    inert: dict[str, Any] = {
        "apiVersion": "projectcalico.org/v3",
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": "inert"},
        "spec": {"order": 1, "selector": "app == 'nobody'", "ingress": rules, "egress": rules},
    }
    base = world(OPEN_HEPS, text(list(found)))
    head = world(OPEN_HEPS, text([*found, inert]))
    assert diff(base, head).changes == ()
    # Negative control: the same policy selecting every pod first, with a Deny, does change
    # flows (from the open cluster, where everything was allowed).
    loud = {
        **inert,
        "spec": {**inert["spec"], "selector": "all()", "ingress": [{"action": "Deny"}]},
    }
    assert diff(world(OPEN_HEPS), world(OPEN_HEPS, text([loud]))).changes != ()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policies, policies)
def test_diff_agrees_with_eval_on_sampled_flows(
    a: tuple[dict[str, Any], ...], b: tuple[dict[str, Any], ...]
) -> None:
    base, head = world(OPEN_HEPS, text(list(a))), world(OPEN_HEPS, text(list(b)))
    result = diff(base, head)
    eb, eh = Engine(base), Engine(head)
    for s, d, p in flows(base):
        try:
            before = evaluate(base, parse_peer(s), parse_peer(d), parse_packet(p), eb).verdict
            after = evaluate(head, parse_peer(s), parse_peer(d), parse_packet(p), eh).verdict
        except PeerError:
            continue  # cidr -> cidr, a node to itself
        covering = result.covering(
            place(eb, parse_peer(s)), place(eb, parse_peer(d)), parse_packet(p)
        )
        if before is after:
            assert covering is None, (s, d, p, covering)
        else:
            assert covering is not None, (s, d, p, before, after)
            assert (covering.before, covering.after) == (before, after)


@FAST
@given(st.text("abcdefghij", min_size=1, max_size=6), st.text("abcdefghij", min_size=1, max_size=6))
def test_order_ties_break_by_name(x: str, y: str) -> None:
    # doc "Policies sort by order, then by name" (policy_sorter.go PolKVLess).
    if x == y:
        return

    def gnp(name: str, action: str) -> dict[str, Any]:
        spec = {"order": 5, "selector": "app == 'web'", "ingress": [{"action": action}]}
        return {
            "apiVersion": "projectcalico.org/v3",
            "kind": "GlobalNetworkPolicy",
            "metadata": {"name": name},
            "spec": spec,
        }

    w = world(text([gnp(x, "Allow"), gnp(y, "Deny")]))
    got = evaluate(w, parse_peer("pod:a/client"), parse_peer("pod:a/web"), parse_packet("tcp/1"))
    assert got.verdict is (Verdict.ALLOW if x < y else Verdict.DENY)
