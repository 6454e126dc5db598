"""ConnectivityCheck: loading (file:line for every malformed field), the states of an apply
(plan/steps.py), exact evaluation on a world, and over every step of a plan."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.connectivity import (
    Flavour,
    Verdict,
    World,
    build_world,
    evaluate,
    parse_packet,
    parse_peer,
)
from reconciler.connectivity import checks as cc
from reconciler.connectivity.packets import parse_packet as engine_port
from reconciler.connectivity.world import WorldBuilder
from reconciler.manifests import load_text
from reconciler.manifests.conncheck import ConnectivityCheck, port
from reconciler.model import Action, Change, ObjectRef, Resource, Severity
from reconciler.plan import checks as plan_checks
from reconciler.plan.checks import Checked, run_checks
from reconciler.plan.steps import Step, steps
from tests.unit.connectivity_fixtures import FACTS, HEPS, NODES, resources, world

ALLOW_SSH = """
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: allow-ssh}
spec:
  order: 10
  selector: has(host-endpoint)
  types: [Ingress, Egress]
  ingress:
    - {action: Allow, protocol: TCP, source: {nets: [203.0.113.0/24]}, destination: {ports: [2222]}}
    - {action: Allow, source: {nets: [10.0.0.0/16]}}
  egress: [{action: Allow}]
"""
DROP = """
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: drop-other}
spec:
  order: 20
  selector: has(host-endpoint)
  types: [Ingress]
  ingress: [{action: Deny}]
"""


def check_of(spec: str, name: str = "c") -> ConnectivityCheck:
    text = (
        "apiVersion: policy-reconciler.io/v1alpha1\nkind: ConnectivityCheck\n"
        f"metadata: {{name: {name}}}\nspec:\n{spec}"
    )
    loaded = load_text(text, path="checks.yaml")
    assert not loaded.findings, [str(f) for f in loaded.findings]
    return loaded.checks[0]


ADMINS = """
  from: {cidr: "203.0.113.0/24"}
  to: {nodeSelector: "all()"}
  ports: ["tcp/2222"]
  expect: allow
"""


# --- loading -------------------------------------------------------------------------------


def test_every_malformed_field_is_an_error_at_its_line() -> None:
    text = """apiVersion: policy-reconciler.io/v1alpha1
kind: ConnectivityCheck
metadata: {name: bad}
spec:
  from: {cidr: "203.0.113.0/33", nodeSelector: "all()"}
  to:
    podSelector: "app =="
  ports:
    - tcp/0
    - icmp/300
  expect: maybe
  extra: 1
"""
    loaded = load_text(text, path="checks/bad.yaml")
    assert not loaded.checks
    found = {(f.field, f.origin.line if f.origin else 0) for f in loaded.findings}
    assert found == {
        ("spec.from.cidr", 5),
        ("spec.from", 5),
        ("spec.to.podSelector", 7),
        ("spec.ports[0]", 9),
        ("spec.ports[1]", 10),
        ("spec.expect", 11),
        ("spec.extra", 12),
    }
    assert all(f.severity is Severity.ERROR for f in loaded.findings)
    assert all(str(f).startswith("checks/bad.yaml:") for f in loaded.findings)


def test_missing_fields_two_cidrs_and_no_ports_are_errors() -> None:
    loaded = load_text(
        "apiVersion: policy-reconciler.io/v1alpha1\nkind: ConnectivityCheck\n"
        "metadata: {name: x}\nspec:\n  from: {cidr: 10.0.0.0/8}\n  to: {cidr: 10.0.0.0/8}\n"
        "  ports: []\n",
        path="c.yaml",
    )
    fields = {f.field for f in loaded.findings}
    assert {"spec.expect", "spec.ports", "spec.to"} <= fields
    assert not loaded.checks


def test_a_check_twice_is_an_error() -> None:
    one = "apiVersion: policy-reconciler.io/v1alpha1\nkind: ConnectivityCheck\n"
    one += f"metadata: {{name: x}}\nspec:\n{ADMINS}"
    loaded = load_text(f"{one}---\n{one}", path="c.yaml")
    assert [f.message for f in loaded.findings if "twice" in f.message]


def test_a_check_is_never_a_resource() -> None:
    loaded = load_text(
        "apiVersion: policy-reconciler.io/v1alpha1\nkind: ConnectivityCheck\n"
        f"metadata: {{name: x}}\nspec:\n{ADMINS}",
        path="c.yaml",
    )
    assert loaded.resources == () and len(loaded.checks) == 1


@given(st.text(alphabet="tcpudsimvrox/0123456789", max_size=12))
def test_the_port_syntax_is_the_engines(text: str) -> None:
    """manifests cannot import the engine: its grammar is repeated, and kept in step here."""
    try:
        engine_port(text)
        engine_ok = True
    except ValueError:
        engine_ok = False
    assert (port(text) is None) == engine_ok


# --- the states of an apply --------------------------------------------------------------


def _res(name: str, order: int) -> Resource:
    text = DROP.replace("drop-other", name).replace("order: 20", f"order: {order}")
    return resources(text)[0]


def test_steps_start_then_one_state_per_write_in_plan_order() -> None:
    a, b, b2, c = _res("a", 1), _res("b", 2), _res("b", 3), _res("c", 4)
    changes = [
        Change(b2.ref, Action.UPDATE, b2, dict(b.body)),
        Change(c.ref, Action.UNCHANGED, c, dict(c.body)),
        Change(a.ref, Action.PRUNE, None, dict(a.body)),
        Change(_res("d", 5).ref, Action.CREATE, _res("d", 5), None),
    ]
    found = list(steps([a, b, c], changes))
    assert [s.label for s in found] == [
        "start",
        "after update GlobalNetworkPolicy/b",
        "after prune GlobalNetworkPolicy/a",
        "after create GlobalNetworkPolicy/d",
    ]
    names = [sorted((r.ref.name, r.body["spec"]["order"]) for r in s.resources) for s in found]
    assert names[1] == [("a", 1), ("b", 3), ("c", 4)]
    assert names[2] == [("b", 3), ("c", 4)]
    assert names[3] == [("b", 3), ("c", 4), ("d", 5)]
    assert found[2].changed == ((a, None),)


def test_steps_match_objects_across_api_flavours() -> None:
    v3 = _res("x", 1)
    ref = ObjectRef("crd.projectcalico.org", "v1", "GlobalNetworkPolicy", "", "x")
    stored = Resource(ref, v3.body, v3.origin)
    found = list(steps([stored], [Change(v3.ref, Action.PRUNE, None, dict(v3.body))]))
    assert found[-1].resources == ()


# --- evaluation on one world ---------------------------------------------------------------


def test_allowed_check_holds_and_its_negative_control_fails() -> None:
    w = world(HEPS, ALLOW_SSH, DROP)
    good = check_of(ADMINS)
    assert _failure(w, good) is None
    bad = check_of(ADMINS.replace("tcp/2222", "tcp/2223"))
    found = _failure(w, bad)
    assert found is not None and found.verdict is Verdict.DENY
    assert str(found).startswith("203.0.113.0 -> node n1 tcp/2223 denied by GlobalNetworkPolicy")
    assert "drop-other" in found.deciding and "repo.yaml:" in found.deciding


def test_cidr_means_every_address_exactly() -> None:
    """Only 203.0.113.7 is not allowed: the check over the /24 must find exactly it."""
    narrowed = ALLOW_SSH.replace(
        "{action: Allow, protocol: TCP, source: {nets: [203.0.113.0/24]}",
        "{action: Deny, protocol: TCP, source: {nets: [203.0.113.7/32]}}\n"
        "    - {action: Allow, protocol: TCP, source: {nets: [203.0.113.0/24]}",
    )
    w = world(HEPS, narrowed, DROP)
    found = _failure(w, check_of(ADMINS))
    assert found is not None and found.src == "203.0.113.7"


def test_deny_check_and_endpoint_with_itself_skipped() -> None:
    w = world(HEPS, ALLOW_SSH, DROP)
    deny = check_of(
        '  from: {cidr: "198.51.100.0/24"}\n  to: {nodeSelector: "has(role)"}\n'
        '  ports: ["tcp/2222"]\n  expect: deny\n'
    )
    found = _failure(w, deny)
    # n3 has no host endpoint: open to the world. The check must say so.
    assert found is not None and found.dst == "node n3" and found.verdict is Verdict.ALLOW
    nodes = check_of(
        '  from: {nodeSelector: "all()"}\n  to: {nodeSelector: "all()"}\n'
        '  ports: ["tcp/2222"]\n  expect: allow\n'
    )
    assert _failure(w, nodes) is None  # n1 -> n1 is skipped, never an error


def test_pods_ends_podselector_defaults_to_all() -> None:
    w = world()
    check = check_of(
        "  from: {namespaceSelector: \"team == 'a'\"}\n  to: {namespaceSelector: \"team == 'b'\"}\n"
        '  ports: ["tcp/5432"]\n  expect: allow\n'
    )
    src = cc.resolve(w, check.src)
    assert {m.peer.name for m in src.members} == {"a/web", "a/client", "a/far", "a/web2"}
    assert _failure(w, check) is None


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 255),
    st.integers(0, 32).map(lambda n: 24 + n % 9),
    st.sampled_from(["tcp/2222", "tcp/22", "udp/53"]),
    st.sampled_from(["allow", "deny"]),
)
def test_property_matches_evaluating_every_address(
    last: int, length: int, port_text: str, expect: str
) -> None:
    """The exact answer equals brute force: every address of the CIDR, every node."""
    w = world(HEPS, ALLOW_SSH, DROP)
    cidr = f"203.0.113.{last & (0xFF << (32 - length)) & 0xFF}/{length}"
    check = check_of(
        f'  from: {{cidr: "{cidr}"}}\n  to: {{nodeSelector: "all()"}}\n'
        f'  ports: ["{port_text}"]\n  expect: {expect}\n'
    )
    want = Verdict.ALLOW if expect == "allow" else Verdict.DENY
    base = int.from_bytes(bytes(map(int, cidr.split("/", maxsplit=1)[0].split("."))), "big")
    brute = all(
        evaluate(
            w,
            parse_peer(f"cidr:{_ip(base + i)}"),
            parse_peer(f"node:{n.name}"),
            parse_packet(port_text),
        ).verdict
        is want
        for i in range(1 << (32 - length))
        for n in NODES
    )
    assert (_failure(w, check) is None) == brute


def _ip(value: int) -> str:
    return ".".join(str((value >> s) & 0xFF) for s in (24, 16, 8, 0))


def _failure(w: World, check: ConnectivityCheck) -> cc.Counterexample | None:
    src, dst = cc.resolve(w, check.src), cc.resolve(w, check.dst)
    return cc.failure(w, check, cc.packets_of(check), src, dst)


# --- over every step of a plan ---------------------------------------------------------------


def _creates(found: Sequence[Resource]) -> list[Change]:
    return [Change(r.ref, Action.CREATE, r, None) for r in found]


def _run(checks: list[ConnectivityCheck], start: list[Resource], changes: list[Change]) -> Checked:
    return run_checks(
        checks,
        start=start,
        changes=changes,
        facts=FACTS,
        flavour=Flavour((3, 31)),
        auto=lambda _: None,
    )


def test_a_host_endpoint_before_its_allows_breaks_the_check_at_that_step() -> None:
    heps, allow, drop = resources(HEPS), resources(ALLOW_SSH), resources(DROP)
    safe = _run([check_of(ADMINS)], [], _creates([*allow, *heps, *drop]))
    assert safe.results[0].holds
    unsafe = _run([check_of(ADMINS)], [], _creates([*heps, *allow, *drop]))
    result = unsafe.results[0]
    assert not result.holds
    assert result.state == "after create HostEndpoint/n1-hep"
    assert "n1 tcp/2222 denied" in result.counterexample
    assert result.note == "holds in the desired state: only the apply order breaks it"


def test_a_check_broken_at_the_start_is_judged_on_the_desired_state() -> None:
    heps, allow, drop = resources(HEPS), resources(ALLOW_SSH), resources(DROP)
    fixed = _run([check_of(ADMINS)], [*heps, *drop], _creates(allow))
    assert fixed.results[0].holds and "broken before this plan" in fixed.results[0].note
    still = _run([check_of(ADMINS)], [*heps, *drop], [])
    assert not still.results[0].holds and still.results[0].state == "desired state"


def test_a_selector_that_matches_nothing_is_a_warning_at_its_line_and_blocks_nothing() -> None:
    """A workload scaled to zero, or not deployed yet, must not stop the firewall: the check
    checks nothing, says so at its line, and does not block."""
    check = check_of(ADMINS.replace('"all()"', "\"role == 'none'\""))
    found = _run([check], [], _creates(resources(HEPS)))
    (finding,) = found.findings
    assert finding.severity is Severity.WARNING and finding.field == "spec.to"
    assert str(finding.origin) == "checks.yaml:7"  # the `to:` line
    (result,) = found.results
    assert result.holds and not result.blocks
    assert result.note == "checks nothing: spec.to selects nothing in this cluster"
    # Control: the same check selecting the nodes is evaluated, not waved through.
    unsafe = _run([check_of(ADMINS)], [], _creates([*resources(HEPS), *resources(DROP)]))
    assert unsafe.findings == () and unsafe.results[0].blocks


def test_steps_that_cannot_touch_the_check_are_not_evaluated() -> None:
    unrelated = [
        resources(
            DROP.replace("drop-other", f"pods-{i}").replace("has(host-endpoint)", "app == 'x'")
        )[0]
        for i in range(30)
    ]
    heps, allow, drop = resources(HEPS), resources(ALLOW_SSH), resources(DROP)
    found = _run([check_of(ADMINS)], [], _creates([*allow, *unrelated, *heps, *drop]))
    assert found.results[0].holds
    assert found.states == 34
    # start, the allow, two host endpoints, the drop, and the final judgement at most
    assert found.evaluated <= 6


def test_skipped_checks_are_evaluated_but_do_not_block() -> None:
    heps, allow, drop = resources(HEPS), resources(ALLOW_SSH), resources(DROP)
    found = run_checks(
        [check_of(ADMINS)],
        start=[],
        changes=_creates([*heps, *allow, *drop]),
        facts=FACTS,
        flavour=Flavour((3, 31)),
        auto=lambda _: None,
        skip=frozenset({"c"}),
    )
    assert not found.results[0].holds and found.results[0].skipped
    assert not found.results[0].blocks


def test_every_order_of_writes_is_judged_like_brute_force() -> None:
    """Property over all 24 orders of four writes: the check fails iff some prefix state
    (evaluated from scratch with build_world) breaks it."""
    heps, allow, drop = resources(HEPS), resources(ALLOW_SSH), resources(DROP)
    items = [*heps, *allow, *drop]
    check = check_of(ADMINS)
    for order in itertools.permutations(items):
        found = _run([check], [], _creates(list(order)))
        broken = any(
            _failure(world_of(order[:k]), check) is not None for k in range(1, len(order) + 1)
        )
        assert found.results[0].holds is not broken, [r.ref.name for r in order]


def world_of(found: Sequence[Resource]) -> World:
    return build_world(found, FACTS, flavour=Flavour((3, 31)))


@pytest.mark.parametrize("text", ["tcp/22", "icmp", "icmp/8/0", "proto/47", "UDP/53"])
def test_valid_ports(text: str) -> None:
    assert port(text) is None


def test_a_step_that_does_not_say_what_changed_is_evaluated_in_full() -> None:
    """steps() may change (batches, bridging): a Step without `changed` is never skipped."""
    heps, allow, drop = resources(HEPS), resources(ALLOW_SSH), resources(DROP)
    check, w = check_of(ADMINS), world(HEPS)
    src, dst = cc.resolve(w, check.src), cc.resolve(w, check.dst)
    prepared = plan_checks._Check(check, cc.packets_of(check), src, dst)
    builder = WorldBuilder(FACTS, flavour=Flavour((3, 31)))
    assert plan_checks._touched(builder, prepared, Step("after a batch", (*heps, *drop))) is True
    quiet = Step("after x", (*allow,), ((allow[0], allow[0]),))
    assert plan_checks._touched(builder, prepared, quiet) is False  # selects no pod of it
