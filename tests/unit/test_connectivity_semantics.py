"""One test per Calico semantic rule the engine follows. Each cites its source:
"doc" is ../shared/reference/calico-semantics.md (section), Felix paths are projectcalico/calico.
Every test checks both a flow the rule allows and one it denies (a negative control)."""

from __future__ import annotations

from reconciler.connectivity import By
from reconciler.generate.autohep import AutoHostEndpoints
from tests.unit.connectivity_fixtures import (
    ALLOW,
    DENY,
    HEPS,
    OPEN_HEPS,
    UNKNOWN,
    check,
    verdict,
    world,
)


def gnp(name: str, body: str, *, api: str = "projectcalico.org/v3") -> str:
    return (
        f"apiVersion: {api}\n"
        f"kind: GlobalNetworkPolicy\n"
        f"metadata: {{name: {name}}}\n"
        f"spec:\n"
        f"{body}\n"
        f"---\n"
    )


def np(namespace: str, name: str, body: str, *, api: str = "projectcalico.org/v3") -> str:
    return (
        f"apiVersion: {api}\nkind: NetworkPolicy\n"
        f"metadata: {{name: {name}, namespace: {namespace}}}\nspec:\n{body}\n---\n"
    )


def knp(namespace: str, name: str, body: str) -> str:
    return (
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
        f"metadata: {{name: {name}, namespace: {namespace}}}\nspec:\n{body}\n---\n"
    )


ALLOW_WEB_FROM_CLIENT = np(
    "a",
    "web-in",
    """  selector: app == 'web'
  ingress:
    - action: Allow
      protocol: TCP
      source: {selector: app == 'client'}
      destination: {ports: [80]}""",
)


# --- workload endpoints ------------------------------------------------------------------


def test_a_pod_no_policy_selects_is_open_through_its_namespace_profile() -> None:
    # doc "After all tiers": a pod has its namespace profile kns.<ns>, which allows all.
    w = world("")
    result = check(w, "pod:a/client", "pod:a/web", "tcp/1234")
    assert result.verdict is ALLOW
    assert [s.by for s in result.path] == [By.PROFILE, By.PROFILE]
    assert verdict(world(ALLOW_WEB_FROM_CLIENT), "pod:b/db", "pod:a/web", "tcp/1234") is DENY


def test_end_of_tier_drop_only_for_the_direction_the_policy_governs() -> None:
    # doc "End of tier" + "Per direction": the v3 policy above defaults to [Ingress].
    w = world(ALLOW_WEB_FROM_CLIENT)
    assert verdict(w, "pod:a/client", "pod:a/web", "tcp/80") is ALLOW
    assert verdict(w, "pod:a/client", "pod:a/web", "tcp/81") is DENY
    assert verdict(w, "pod:a/web", "pod:a/client", "tcp/81") is ALLOW  # egress not governed
    denied = check(w, "pod:a/client", "pod:a/web", "tcp/81")
    assert denied.path[-1].by is By.END_OF_TIER


def test_v3_types_default_from_rules_but_crd_v1_without_types_is_both() -> None:
    # doc "Types defaulting": v3 ingress-only -> [Ingress]; crd v1 empty types -> Ingress+Egress
    # (policy_sorter.go ExtractPolicyMetadata).
    body = """  selector: app == 'web'
  ingress: [{action: Allow}]"""
    v3 = world(np("a", "p", body))
    v1 = world(np("a", "p", body, api="crd.projectcalico.org/v1"))
    assert verdict(v3, "pod:a/web", "pod:a/client", "tcp/5") is ALLOW
    assert verdict(v1, "pod:a/web", "pod:a/client", "tcp/5") is DENY
    assert verdict(v1, "pod:a/client", "pod:a/web", "tcp/5") is ALLOW


def test_v3_egress_only_rules_default_to_egress() -> None:
    # doc "Types defaulting": only egress rules give [Egress].
    w = world(np("a", "p", "  selector: app == 'web'\n  egress: [{action: Deny}]"))
    assert verdict(w, "pod:a/web", "pod:a/client", "tcp/5") is DENY
    assert verdict(w, "pod:a/client", "pod:a/web", "tcp/5") is ALLOW


def test_k8s_policy_without_policy_types_gets_egress_when_it_has_egress_rules() -> None:
    # doc "Types defaulting": K8s NP: Ingress, plus Egress when an egress section exists.
    body = (
        "  podSelector: {matchLabels: {app: web}}\n"
        "  egress: [{to: [{ipBlock: {cidr: 10.9.0.0/16}}]}]"
    )
    w = world(knp("a", "p", body))
    assert verdict(w, "pod:a/client", "pod:a/web", "tcp/5") is DENY  # ingress closed too
    assert verdict(w, "pod:a/web", "cidr:10.9.1.1", "tcp/5") is ALLOW
    assert verdict(w, "pod:a/web", "cidr:10.8.1.1", "tcp/5") is DENY


def test_k8s_no_match_falls_through_to_a_later_calico_allow() -> None:
    # doc "K8s NetworkPolicy in Calico": K8s isolation is not a Deny; order 1000 then later ones.
    isolate = knp("a", "iso", "  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Ingress]")
    later = gnp(
        "later",
        (
            "  order: 2000\n"
            "  selector: app == 'web'\n"
            "  ingress: [{action: Allow, protocol: TCP, "
            "destination: {ports: [443]}}]"
        ),
    )
    w = world(isolate, later)
    assert verdict(w, "pod:a/client", "pod:a/web", "tcp/443") is ALLOW
    assert verdict(w, "pod:a/client", "pod:a/web", "tcp/444") is DENY


def test_pass_skips_to_the_next_tier_and_tier_order_decides() -> None:
    # doc "Evaluation order": tiers by order; Pass skips the rest of the tier.
    tiers = """apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: security}
spec: {order: 100}
---
"""
    pass_all = gnp(
        "sec-pass",
        (
            "  tier: security\n"
            "  selector: app == 'web'\n"
            "  ingress: [{action: Pass, protocol: TCP, "
            "destination: {ports: [80]}}, {action: Deny}]"
        ),
    )
    w = world(tiers, pass_all)
    assert (
        verdict(w, "pod:a/client", "pod:a/web", "tcp/80") is ALLOW
    )  # default tier: none -> profile
    assert verdict(w, "pod:a/client", "pod:a/web", "tcp/81") is DENY
    result = check(w, "pod:a/client", "pod:a/web", "tcp/80")
    assert [s.by for s in result.path][-2:] == [By.PASS, By.PROFILE]


def test_tier_default_action_pass_is_honoured_from_3_29_only() -> None:
    # doc "End of tier": no drop when defaultAction is Pass since v3.29 (absent on 3.28).
    tiers = (
        "apiVersion: projectcalico.org/v3\n"
        "kind: Tier\n"
        "metadata: {name: t}\n"
        "spec: {order: 10, defaultAction: Pass}\n"
        "---\n"
    )
    only = gnp(
        "t-only", "  tier: t\n  selector: app == 'web'\n  ingress: [{action: Allow, protocol: UDP}]"
    )
    assert (
        verdict(world(tiers, only, calico=(3, 29)), "pod:a/client", "pod:a/web", "tcp/1") is ALLOW
    )
    assert verdict(world(tiers, only, calico=(3, 28)), "pod:a/client", "pod:a/web", "tcp/1") is DENY


def test_policy_order_ties_break_by_name() -> None:
    # doc "Policies sort by order, then by name" (policy_sorter.go PolKVLess).
    deny = "  order: 5\n  selector: app == 'web'\n  ingress: [{action: Deny}]"
    allow = "  order: 5\n  selector: app == 'web'\n  ingress: [{action: Allow}]"
    assert (
        verdict(
            world(gnp("a-deny", deny), gnp("b-allow", allow)), "pod:a/client", "pod:a/web", "tcp/1"
        )
        is DENY
    )
    assert (
        verdict(
            world(gnp("b-deny", deny), gnp("a-allow", allow)), "pod:a/client", "pod:a/web", "tcp/1"
        )
        is ALLOW
    )


def test_k8s_policy_names_sort_differently_from_3_32() -> None:
    # doc "K8s NetworkPolicy in Calico": knp.default.<name> through v3.31, the bare name from 3.32.
    deny = gnp("zz-deny", "  order: 1000\n  selector: app == 'web'\n  ingress: [{action: Deny}]")
    allow = knp("a", "allow", "  podSelector: {}\n  ingress: [{}]")
    # 3.31: "default.zz-deny" < "knp.default.allow"; 3.32: "allow" < "zz-deny".
    assert verdict(world(deny, allow, calico=(3, 31)), "pod:a/client", "pod:a/web", "tcp/1") is DENY
    assert (
        verdict(world(deny, allow, calico=(3, 32)), "pod:a/client", "pod:a/web", "tcp/1") is ALLOW
    )


def test_missing_order_sorts_last() -> None:
    # doc "A missing order is +Inf".
    deny = gnp("a-deny", "  selector: app == 'web'\n  ingress: [{action: Deny}]")
    allow = gnp("z-allow", "  order: 99999\n  selector: app == 'web'\n  ingress: [{action: Allow}]")
    assert verdict(world(deny, allow), "pod:a/client", "pod:a/web", "tcp/1") is ALLOW
    assert verdict(world(deny), "pod:a/client", "pod:a/web", "tcp/1") is DENY


def test_log_continues() -> None:
    # doc "Rules run in order ... Log continues".
    body = "  selector: app == 'web'\n  ingress: [{action: Log}, {action: Allow, protocol: TCP}]"
    w = world(gnp("log", body))
    assert verdict(w, "pod:a/client", "pod:a/web", "tcp/1") is ALLOW
    assert verdict(w, "pod:a/client", "pod:a/web", "udp/1") is DENY


# --- rule matching -----------------------------------------------------------------------


def test_a_selector_is_not_any_source() -> None:
    # doc "A selector is not 'any source'": selector all() resolves to endpoint and set IPs.
    w = world(
        gnp(
            "p", "  selector: app == 'web'\n  ingress: [{action: Allow, source: {selector: all()}}]"
        )
    )
    assert verdict(w, "pod:b/db", "pod:a/web", "tcp/1") is ALLOW
    assert verdict(w, "cidr:198.51.100.1", "pod:a/web", "tcp/1") is DENY


def test_namespaced_rule_selectors_stay_in_the_policy_namespace() -> None:
    # doc "Rule selectors": in a namespaced policy limited to the policy's namespace.
    w = world(
        np(
            "a",
            "p",
            "  selector: app == 'web'\n  ingress: [{action: Allow, source: {selector: has(app)}}]",
        )
    )
    assert verdict(w, "pod:a/client", "pod:a/web", "tcp/1") is ALLOW
    assert verdict(w, "pod:b/db", "pod:a/web", "tcp/1") is DENY


def test_rule_namespace_selector_and_namespace_labels() -> None:
    # doc "Rule selectors": namespace labels only through namespaceSelector (pcns. labels).
    via_ns = np(
        "a",
        "p",
        (
            "  selector: app == 'web'\n"
            "  ingress: [{action: Allow, source: {namespaceSelector: team == 'b'}}]"
        ),
    )
    via_pod_selector = np(
        "a",
        "p",
        "  selector: app == 'web'\n  ingress: [{action: Allow, source: {selector: team == 'b'}}]",
    )
    assert verdict(world(via_ns), "pod:b/db", "pod:a/web", "tcp/1") is ALLOW
    assert verdict(world(via_ns), "pod:a/client", "pod:a/web", "tcp/1") is DENY
    assert verdict(world(via_pod_selector), "pod:b/db", "pod:a/web", "tcp/1") is DENY


def test_global_namespace_selector_matches_host_endpoints_and_global_sets_only() -> None:
    # doc "Rule selectors": global() means !has(projectcalico.org/namespace).
    body = (
        "  selector: app == 'web'\n"
        "  ingress: [{action: Allow, source: {namespaceSelector: global(), "
        "selector: all()}}]"
    )
    w = world(OPEN_HEPS, gnp("p", body))
    assert verdict(w, "node:n2", "pod:a/web", "tcp/1") is ALLOW  # n2-hep's expectedIPs
    assert verdict(w, "pod:b/db", "pod:a/web", "tcp/1") is DENY


def test_host_endpoint_without_expected_ips_matches_no_source() -> None:
    # doc "Host endpoints as rule peers": selectors reach host endpoints through expectedIPs only.
    bare = OPEN_HEPS.replace("expectedIPs: [10.0.0.2]", "expectedIPs: []")
    body = (
        "  selector: app == 'web'\n"
        "  ingress: [{action: Allow, source: {selector: has(host-endpoint)}}]"
    )
    assert verdict(world(OPEN_HEPS, gnp("p", body)), "node:n2", "pod:a/web", "tcp/1") is ALLOW
    assert verdict(world(bare, gnp("p", body)), "node:n2", "pod:a/web", "tcp/1") is DENY


def test_service_accounts_names_and_selector() -> None:
    # doc "Service accounts": names match the pod's SA; selector matches SA labels.
    names = gnp(
        "p",
        (
            "  selector: app == 'web'\n"
            "  ingress: [{action: Allow, "
            "source: {serviceAccounts: {names: [db-sa]}}}]"
        ),
    )
    labels = gnp(
        "p",
        (
            "  selector: app == 'web'\n"
            "  ingress: [{action: Allow, "
            "source: {serviceAccounts: {selector: tier == 'data'}}}]"
        ),
    )
    for w in (world(names), world(labels)):
        assert verdict(w, "pod:b/db", "pod:a/web", "tcp/1") is ALLOW
        assert verdict(w, "pod:b/other", "pod:a/web", "tcp/1") is DENY


def test_nets_not_nets_ports_not_ports() -> None:
    # calico.md "Rule fields": nets/notNets CIDRs, ports ints or "lo:hi" ranges, notPorts.
    rule = (
        "{action: Allow, protocol: TCP, source: {nets: [198.51.100.0/24], "
        "notNets: [198.51.100.128/25]}, destination: {ports: ['8000:8100'], "
        "notPorts: [8080]}}"
    )
    w = world(gnp("p", f"  selector: app == 'web'\n  ingress: [{rule}]"))
    assert verdict(w, "cidr:198.51.100.7", "pod:a/web", "tcp/8000") is ALLOW
    assert verdict(w, "cidr:198.51.100.7", "pod:a/web", "tcp/8080") is DENY
    assert verdict(w, "cidr:198.51.100.200", "pod:a/web", "tcp/8000") is DENY
    assert verdict(w, "cidr:198.51.100.7", "pod:a/web", "udp/8000") is DENY


def test_named_ports_resolve_against_the_destination_pod() -> None:
    # doc "K8s NetworkPolicy in Calico": named ports resolve against the destination's ports.
    w = world(knp("a", "p", "  podSelector: {}\n  ingress: [{ports: [{port: http}]}]"))
    assert verdict(w, "pod:b/db", "pod:a/web", "tcp/8080") is ALLOW  # web: http=8080
    assert verdict(w, "pod:b/db", "pod:a/web", "tcp/80") is DENY
    assert verdict(w, "pod:b/db", "pod:a/client", "tcp/8080") is DENY  # client has no "http"


def test_k8s_port_without_protocol_is_tcp_and_never_icmp() -> None:
    # doc "Rule conversion": a port without protocol is TCP; a rule with ports never matches ICMP.
    w = world(knp("a", "p", "  podSelector: {}\n  ingress: [{ports: [{port: 53, endPort: 54}]}]"))
    assert verdict(w, "pod:b/db", "pod:a/web", "tcp/54") is ALLOW
    assert verdict(w, "pod:b/db", "pod:a/web", "udp/53") is DENY
    assert verdict(w, "pod:b/db", "pod:a/web", "icmp") is DENY


def test_k8s_ip_block_except_and_peer_and_or() -> None:
    # doc "Rule conversion": ipBlock.except -> notNets; namespace+pod selector in one peer: AND.
    body = """  podSelector: {}
  ingress:
    - from:
        - ipBlock: {cidr: 10.0.0.0/8, except: [10.2.0.0/16]}
        - namespaceSelector: {matchLabels: {team: b}}
          podSelector: {matchLabels: {app: other}}"""
    w = world(knp("a", "p", body))
    assert verdict(w, "pod:a/client", "pod:a/web", "tcp/1") is ALLOW  # 10.1.0.2 in 10/8
    assert verdict(w, "pod:b/db", "pod:a/web", "tcp/1") is DENY  # excepted, not app=other
    assert verdict(w, "pod:b/other", "pod:a/web", "tcp/1") is ALLOW  # the AND peer


def test_icmp_type_and_code() -> None:
    # calico.md "Rule fields": icmp.type 0-254, code 0-255.
    w = world(
        gnp(
            "p",
            (
                "  selector: app == 'web'\n"
                "  ingress: [{action: Allow, protocol: ICMP, icmp: {type: 3, code: 4}}]"
            ),
        )
    )
    assert verdict(w, "pod:b/db", "pod:a/web", "icmp/3/4") is ALLOW
    assert verdict(w, "pod:b/db", "pod:a/web", "icmp/3/1") is DENY
    assert verdict(w, "pod:b/db", "pod:a/web", "icmp") is DENY


def test_gnp_namespace_selector_and_network_sets() -> None:
    # doc "Rule selectors": a GNP selector without namespaceSelector matches sets everywhere;
    # network sets stand for their nets.
    sets = (
        "apiVersion: projectcalico.org/v3\n"
        "kind: GlobalNetworkSet\n"
        "metadata: {name: office, labels: {net: office}}\n"
        "spec: {nets: [203.0.113.0/24]}\n"
        "---\n"
    )
    w = world(
        sets,
        gnp(
            "p",
            (
                "  namespaceSelector: all()\n"
                "  ingress: [{action: Allow, source: {selector: net == 'office'}}]"
            ),
        ),
    )
    assert verdict(w, "cidr:203.0.113.9", "pod:b/db", "tcp/1") is ALLOW
    assert verdict(w, "cidr:203.0.114.9", "pod:b/db", "tcp/1") is DENY


# --- host endpoints ----------------------------------------------------------------------


def test_host_endpoint_default_deny_failsafe_and_unpoliced_node() -> None:
    # doc "Host endpoints": no policy, no profile: drop; failsafe first; a node without HEP is open.
    w = world(HEPS)
    assert verdict(w, "cidr:198.51.100.1", "node:n1", "tcp/8080") is DENY
    assert verdict(w, "cidr:198.51.100.1", "node:n1", "tcp/22") is ALLOW
    assert check(w, "cidr:198.51.100.1", "node:n1", "tcp/22").path[0].by is By.FAILSAFE
    assert verdict(w, "cidr:198.51.100.1", "node:n1", "udp/68") is ALLOW
    assert verdict(w, "cidr:198.51.100.1", "node:n3", "tcp/8080") is ALLOW  # no HEP
    assert verdict(w, "node:n1", "cidr:198.51.100.1", "udp/53") is ALLOW  # outbound failsafe
    assert verdict(w, "node:n1", "cidr:198.51.100.1", "udp/68") is DENY  # 68 is inbound only


def test_default_allow_profile_opens_a_host_endpoint_until_a_policy_selects_it() -> None:
    # doc "After all tiers": projectcalico-default-allow allows all.
    allow = HEPS.replace(
        "spec: {node: n1,", "spec: {profiles: [projectcalico-default-allow], node: n1,"
    )
    w = world(allow)
    assert verdict(w, "cidr:198.51.100.1", "node:n1", "tcp/8080") is ALLOW
    only = gnp(
        "p",
        (
            "  selector: node == 'n1'\n"
            "  ingress: [{action: Allow, protocol: TCP, "
            "destination: {ports: [443]}}]"
        ),
    )
    assert verdict(world(allow, only), "cidr:198.51.100.1", "node:n1", "tcp/8080") is DENY


def test_gnp_with_namespace_selector_never_selects_host_endpoints() -> None:
    # doc "GNP namespaceSelector": all() becomes has(projectcalico.org/namespace).
    allow = HEPS.replace(
        "spec: {node: n1,", "spec: {profiles: [projectcalico-default-allow], node: n1,"
    )
    with_ns = gnp("deny", "  namespaceSelector: all()\n  ingress: [{action: Deny}]")
    without = gnp("deny", "  selector: all()\n  ingress: [{action: Deny}]")
    assert verdict(world(allow, with_ns), "cidr:198.51.100.1", "node:n1", "tcp/8080") is ALLOW
    assert verdict(world(allow, without), "cidr:198.51.100.1", "node:n1", "tcp/8080") is DENY
    null_v1 = gnp("deny", "  ingress: [{action: Deny}]", api="crd.projectcalico.org/v1")
    assert verdict(world(allow, null_v1), "cidr:198.51.100.1", "node:n1", "tcp/8080") is DENY


def test_pre_dnat_allow_skips_normal_policy_and_has_no_default_drop() -> None:
    # doc "Traffic to a host process"; calico-real-parts.md: a preDNAT Allow let tcp/22 in with no
    # normal policy, tcp/8080 was dropped by the host endpoint's default drop.
    pre = gnp(
        "pre",
        (
            "  selector: has(host-endpoint)\n"
            "  preDNAT: true\n"
            "  applyOnForward: true\n"
            "  ingress: [{action: Allow, protocol: TCP, "
            "destination: {ports: [8080]}}]"
        ),
    )
    w = world(HEPS, pre)
    assert verdict(w, "cidr:198.51.100.1", "node:n1", "tcp/8080") is ALLOW
    assert verdict(w, "cidr:198.51.100.1", "node:n1", "tcp/8081") is DENY
    normal = gnp(
        "norm",
        (
            "  selector: has(host-endpoint)\n"
            "  ingress: [{action: Allow, protocol: TCP, "
            "destination: {ports: [9090]}}]"
        ),
    )
    assert verdict(world(HEPS, pre, normal), "cidr:198.51.100.1", "node:n1", "tcp/9090") is ALLOW


def test_pre_dnat_deny_beats_a_normal_allow_whatever_the_order() -> None:
    # doc "Order only ranks policies within a stage".
    pre = gnp(
        "pre",
        (
            "  order: 1000\n"
            "  selector: has(host-endpoint)\n"
            "  preDNAT: true\n"
            "  applyOnForward: true\n"
            "  ingress: [{action: Deny, protocol: TCP}]"
        ),
    )
    normal = gnp("norm", "  order: 1\n  selector: has(host-endpoint)\n  ingress: [{action: Allow}]")
    w = world(HEPS, pre, normal)
    assert verdict(w, "cidr:198.51.100.1", "node:n1", "tcp/8080") is DENY
    assert verdict(w, "cidr:198.51.100.1", "node:n1", "udp/8080") is ALLOW


def test_untracked_allow_skips_the_rest() -> None:
    # doc "An untracked allow skips the rest".
    raw = gnp(
        "raw",
        (
            "  selector: has(host-endpoint)\n"
            "  doNotTrack: true\n"
            "  applyOnForward: true\n"
            "  ingress: [{action: Allow, protocol: UDP}]"
        ),
    )
    pre = gnp(
        "pre",
        (
            "  selector: has(host-endpoint)\n"
            "  preDNAT: true\n"
            "  applyOnForward: true\n"
            "  ingress: [{action: Deny}]"
        ),
    )
    w = world(HEPS, raw, pre)
    assert verdict(w, "cidr:198.51.100.1", "node:n1", "udp/5000") is ALLOW
    assert verdict(w, "cidr:198.51.100.1", "node:n1", "tcp/5000") is DENY


def test_forwarded_traffic_meets_only_apply_on_forward_policy() -> None:
    # doc "Traffic forwarded to a local pod": pre-DNAT, then applyOnForward normal, then the pod.
    plain = gnp("plain", "  selector: has(host-endpoint)\n  ingress: [{action: Deny}]")
    forward = gnp(
        "fwd",
        (
            "  selector: has(host-endpoint)\n"
            "  applyOnForward: true\n"
            "  ingress: [{action: Deny, protocol: TCP}]"
        ),
    )
    assert verdict(world(HEPS, plain), "cidr:198.51.100.1", "pod:a/web", "tcp/80") is ALLOW
    assert verdict(world(HEPS, forward), "cidr:198.51.100.1", "pod:a/web", "tcp/80") is DENY


def test_forwarded_failsafe_port_skips_pre_dnat_but_not_forward_policy() -> None:
    # doc "The mangle chain has [a failsafe] and it matches port only ... skips pre-DNAT policy".
    pre = gnp(
        "pre",
        (
            "  selector: has(host-endpoint)\n"
            "  preDNAT: true\n"
            "  applyOnForward: true\n"
            "  ingress: [{action: Deny}]"
        ),
    )
    w = world(HEPS, pre)
    assert verdict(w, "cidr:198.51.100.1", "pod:a/web", "tcp/22") is ALLOW
    assert verdict(w, "cidr:198.51.100.1", "pod:a/web", "tcp/23") is DENY


def test_forward_default_is_undetermined_when_only_the_other_direction_has_policy() -> None:
    # doc "Implementation nuance": no default-allow when some forward tier exists (endpoints.go).
    ingress_only = gnp(
        "fwd",
        (
            "  selector: has(host-endpoint)\n"
            "  applyOnForward: true\n"
            "  types: [Ingress]\n"
            "  ingress: [{action: Allow}]"
        ),
    )
    w = world(HEPS, ingress_only)
    assert verdict(w, "pod:a/web", "cidr:198.51.100.1", "tcp/80") is UNKNOWN
    assert verdict(w, "cidr:198.51.100.1", "pod:a/web", "tcp/80") is ALLOW


def test_host_to_local_pod_is_not_policed_and_pod_to_own_node_is_not_determined() -> None:
    # doc "Host to local pod is not policed"; "Pod to its own node ... DefaultEndpointToHostAction".
    deny_in = gnp("p", "  selector: app == 'web'\n  ingress: [{action: Deny}]")
    w = world(OPEN_HEPS, deny_in)
    assert verdict(w, "node:n1", "pod:a/web", "tcp/80") is ALLOW
    assert verdict(w, "node:n2", "pod:a/web", "tcp/80") is DENY
    result = check(w, "pod:a/web", "node:n1", "tcp/80")
    assert result.verdict is UNKNOWN
    assert "DefaultEndpointToHostAction" in result.missing[0]
    deny_out = gnp("q", "  selector: app == 'web'\n  egress: [{action: Deny}]")
    assert verdict(world(HEPS, deny_out), "pod:a/web", "node:n1", "tcp/80") is DENY


def test_encapsulation_is_named_when_node_policy_decides_pod_traffic() -> None:
    # Issue 15 "SNAT/overlay": the answer depends on it when a forward policy would decide.
    body = (
        "  selector: has(host-endpoint)\n"
        "  applyOnForward: true\n"
        "  ingress: [{action: Deny}]\n"
        "  egress: [{action: Allow}]"
    )
    w = world(HEPS, gnp("fwd", body))
    result = check(w, "pod:b/db", "pod:a/web", "tcp/80")  # n2 -> n1
    assert result.verdict is UNKNOWN
    assert "encapsulated" in result.missing[0]
    assert verdict(w, "pod:a/client", "pod:a/web", "tcp/80") is ALLOW  # same node


def test_interface_specific_host_endpoints_are_not_determined() -> None:
    # doc "Unprotected interfaces": Calico polices only the interfaces it has been told about.
    eth0 = HEPS.replace('interfaceName: "*"', "interfaceName: eth0", 1)
    w = world(eth0)
    assert verdict(w, "cidr:198.51.100.1", "node:n1", "tcp/8080") is UNKNOWN
    assert verdict(w, "cidr:198.51.100.1", "node:n2", "tcp/8080") is DENY


def test_automatic_host_endpoints_carry_node_labels_and_default_allow() -> None:
    # doc "Auto host endpoints": <node>-auto-hep, interface *, Node labels, default-allow profile.
    auto = AutoHostEndpoints("test", every_node=True)
    workers = gnp(
        "workers",
        (
            "  selector: role == 'worker'\n"
            "  ingress: [{action: Allow, protocol: TCP, "
            "destination: {ports: [10250]}}]"
        ),
    )
    w = world(workers, auto=auto)
    assert verdict(w, "cidr:198.51.100.1", "node:n1", "tcp/8080") is ALLOW  # control: default-allow
    assert verdict(w, "cidr:198.51.100.1", "node:n2", "tcp/10250") is ALLOW
    assert verdict(w, "cidr:198.51.100.1", "node:n2", "tcp/8080") is DENY


def test_source_ports_are_an_assumption() -> None:
    # The flow names no source port: a rule on source ports cannot decide it.
    w = world(
        gnp(
            "p",
            (
                "  selector: app == 'web'\n"
                "  ingress: [{action: Allow, protocol: TCP, source: {ports: [1024]}}]"
            ),
        )
    )
    assert verdict(w, "pod:b/db", "pod:a/web", "tcp/80") is UNKNOWN
    assert verdict(w, "pod:b/db", "pod:a/web", "udp/80") is DENY
