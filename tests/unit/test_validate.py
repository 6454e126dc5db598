"""Validation of what users write: each rule with a passing and a failing example.

Failing examples assert the exact file:line and field path of the finding. Most specs are
one flow-style line (line 6 of the document) so the field path carries the detail; the
block-style tests pin lines deeper in a document.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import kinds
from reconciler.manifests import load_text, validate_resource
from reconciler.manifests.schema import Dict, Node, Obj, Seq
from reconciler.manifests.specs import SPECS, family_of
from reconciler.model import Finding, ObjectRef, Origin, Resource, Severity

# Every case once per YAML loader (libyaml's composer and PyYAML's): the same findings.
pytestmark = pytest.mark.usefixtures("yaml_loader")

SPEC_LINE = 6  # apiVersion, kind, metadata, name, spec:, then the spec's first line


def doc(kind: str, spec: str, *, name: str = "p", api: str = "projectcalico.org/v3") -> str:
    head = f"apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: {name}\nspec:\n"
    return head + textwrap.indent(textwrap.dedent(spec), "  ")


def gnp(spec: str) -> str:
    return doc("GlobalNetworkPolicy", spec)


def findings(text: str, severity: Severity = Severity.ERROR) -> list[Finding]:
    result = load_text(text, path="p.yaml", default_namespace="ns")
    return [f for f in result.findings if f.severity is severity]


def place(finding: Finding) -> tuple[str, str]:
    assert finding.origin is not None
    return f"{finding.origin.path}:{finding.origin.line}", finding.field


def assert_clean(text: str) -> None:
    result = load_text(text, path="p.yaml", default_namespace="ns")
    assert result.findings == (), [str(f) for f in result.findings]
    assert len(result.resources) >= 1


def assert_one_error(text: str, line: int, field: str, message: str) -> Finding:
    found = findings(text)
    assert len(found) == 1, [str(f) for f in found]
    assert place(found[0]) == (f"p.yaml:{line}", field)
    assert message in found[0].message
    return found[0]


# --- Calico policies: passing ------------------------------------------------------------

GOOD_GNP_SPECS = [
    # scenario 1: host endpoint firewall
    """\
    order: 10
    preDNAT: true
    applyOnForward: true
    selector: has(host-endpoint)
    ingress:
      - action: Allow
        source: {nets: [10.240.0.0/16, 192.168.0.0/16]}
    """,
    "order: 20\npreDNAT: true\napplyOnForward: true\nselector: has(host-endpoint)\n"
    "ingress: [{action: Deny}]\n",
    "order: 10\nselector: has(host-endpoint)\ntypes: [Egress]\negress: [{action: Allow}]\n",
    # scenario 2: automatic host endpoints on masters
    """\
    selector: has(node-role.kubernetes.io/master)
    ingress:
      - action: Allow
        protocol: TCP
        destination: {ports: [6443]}
      - action: Allow
        destination: {nets: [127.0.0.0/8]}
      - action: Allow
        protocol: TCP
        source: {selector: has(node-role.kubernetes.io/master)}
        destination: {ports: [2380, 10250]}
    """,
    # scenario 4: cluster-wide defaults
    """\
    selector: all()
    ingress:
      - {action: Allow, protocol: ICMP, icmp: {type: 8}, source: {selector: all()}}
      - {action: Allow, protocol: ICMPv6, icmp: {type: 128}, source: {selector: all()}}
    """,
    "selector: all()\ntypes: [Ingress]\n",
    """\
    types: [Egress]
    egress:
      - {action: Allow, protocol: TCP, destination: {ports: [53]}}
      - {action: Allow, protocol: UDP, destination: {ports: [53]}}
      - {action: Allow, source: {serviceAccounts: {names: [cattle]}}}
    """,
    # port and protocol forms
    "ingress: [{action: Allow, protocol: TCP, destination: {ports: [http, '6040:6050', 1]}}]",
    "ingress: [{action: Allow, protocol: 6, destination: {notPorts: [65535]}}]",
    "ingress: [{action: Allow, protocol: '17', source: {ports: [53]}}]",
    "ingress: [{action: Allow, protocol: SCTP, destination: {ports: [9]}}]",
    "ingress: [{action: Deny, notProtocol: UDPLite}]",
    "ingress: [{action: Allow, protocol: 132}]",
    "ingress: [{action: Allow, protocol: ICMP, icmp: {type: 3, code: 1}}]",
    "ingress: [{action: Allow, protocol: ICMP, notICMP: {type: 8}, ipVersion: 4}]",
    "ingress: [{action: Allow, protocol: ICMPv6, ipVersion: 6, icmp: {type: 0}}]",
    "ingress: [{action: Allow, protocol: ICMP, icmp: {type: 254, code: 255}}]",
    # nets, selectors
    "ingress: [{action: Allow, source: {nets: ['fd00::/8'], notNets: ['fd00:1::/32']}}]",
    "ingress: [{action: Allow, ipVersion: 4, source: {nets: [0.0.0.0/0]}}]",
    "ingress: [{action: Pass, source: {namespaceSelector: global(), selector: x == 'y'}}]",
    "ingress: [{action: Allow, source: {notSelector: \"!has(a)\", namespaceSelector: ''}}]",
    "ingress: [{action: Log}, {action: Allow}]",
    "namespaceSelector: ''\nserviceAccountSelector: ''\nselector: ''\n",
    # other fields
    "tier: security\norder: 10.5\ndoNotTrack: true\napplyOnForward: true\n",
    "performanceHints: [AssumeNeededOnEveryNode]\n",
    """\
    ingress:
      - action: Allow
        protocol: TCP
        source: {services: {name: api, namespace: default}}
        http: {methods: [GET], paths: [{exact: /healthz}, {prefix: /api/}]}
        metadata: {annotations: {why: probes}}
    egress:
      - action: Allow
        destination: {services: {name: kube-dns, namespace: kube-system}}
    """,
]


@pytest.mark.parametrize("spec", GOOD_GNP_SPECS)
def test_good_global_policies_pass(spec: str) -> None:
    assert_clean(gnp(spec))


def test_good_namespaced_calico_policies_pass() -> None:
    spec = """\
    tier: security
    order: 1
    selector: app == 'db'
    serviceAccountSelector: role == 'x'
    types: [Ingress, Egress]
    ingress: [{action: Allow, protocol: TCP, destination: {ports: [5432]}}]
    egress: [{action: Allow, destination: {services: {name: api}}}]
    """
    assert_clean(doc("NetworkPolicy", spec, name="security.db"))
    assert_clean(doc("StagedNetworkPolicy", spec + "stagedAction: Set\n", name="db"))
    staged_global = "stagedAction: Learn\nselector: all()\npreDNAT: true\napplyOnForward: true\n"
    assert_clean(doc("StagedGlobalNetworkPolicy", staged_global))
    assert_clean(doc("StagedGlobalNetworkPolicy", "stagedAction: Delete\ntier: security\n"))


# --- Calico policies: failing ------------------------------------------------------------

BAD_GNP_SPECS = [
    # unknown fields (the v1 CRDs would silently drop them)
    ("ingres: []", "spec.ingres", "unknown field 'ingres' (did you mean 'ingress'?)"),
    ("selectro: all()", "spec.selectro", "did you mean 'selector'?"),
    ("ingress: [{action: Allow, sorce: {}}]", "spec.ingress[0].sorce", "did you mean 'source'"),
    ("ingress: [{action: Allow, source: {net: []}}]", "spec.ingress[0].source.net", "'nets'"),
    # selectors
    ("selector: has(a", "spec.selector", "invalid selector 'has(a'"),
    ("namespaceSelector: global()", "spec.namespaceSelector", "global()"),
    ("serviceAccountSelector: a ==", "spec.serviceAccountSelector", "invalid selector"),
    (
        "ingress: [{action: Allow, source: {selector: global()}}]",
        "spec.ingress[0].source.selector",
        "global()",
    ),
    (
        "ingress: [{action: Allow, source: {notSelector: \"a = 'b'\"}}]",
        "spec.ingress[0].source.notSelector",
        "invalid selector",
    ),
    (
        "ingress: [{action: Allow, destination: {namespaceSelector: global() && all()}}]",
        "spec.ingress[0].destination.namespaceSelector",
        "invalid selector",
    ),
    (
        "egress: [{action: Allow, destination: {serviceAccounts: {selector: (a}}}]",
        "spec.egress[0].destination.serviceAccounts.selector",
        "invalid selector",
    ),
    # nets
    (
        "ingress: [{action: Allow, source: {nets: [10.0.0.1/8]}}]",
        "spec.ingress[0].source.nets[0]",
        "host bits set: Calico needs the masked network 10.0.0.0/8",
    ),
    (
        "ingress: [{action: Allow, source: {nets: [10.1.2.3]}}]",
        "spec.ingress[0].source.nets[0]",
        "need a CIDR such as 10.1.2.3/32",
    ),
    (
        "ingress: [{action: Allow, source: {notNets: [10.0.0.0/255.0.0.0]}}]",
        "spec.ingress[0].source.notNets[0]",
        "not a valid CIDR",
    ),
    (
        "ingress: [{action: Allow, destination: {nets: [10.0.0.0/8, 10.0.0.0/8]}}]",
        "spec.ingress[0].destination.nets[1]",
        "duplicate entry",
    ),
    (
        "ingress: [{action: Allow, source: {nets: [10.0.0.0/8]}, destination: {nets: ['::/0']}}]",
        "spec.ingress[0].destination.nets",
        "cannot mix IPv4 and IPv6 CIDRs (IPv4 in source.nets, IPv6 in destination.nets)",
    ),
    (
        "ingress: [{action: Allow, source: {notNets: [10.0.0.0/8, 'fd00::/8']}}]",
        "spec.ingress[0].source.notNets",
        "source.notNets has both",
    ),
    (
        "ingress: [{action: Allow, ipVersion: 6, source: {nets: [10.0.0.0/8]}}]",
        "spec.ingress[0].source.nets",
        "IPv4 CIDR in a rule with ipVersion 6",
    ),
    # ports
    (
        "ingress: [{action: Allow, protocol: TCP, destination: {ports: [0]}}]",
        "spec.ingress[0].destination.ports[0]",
        "port 0 is out of range 1-65535",
    ),
    (
        "ingress: [{action: Allow, protocol: TCP, destination: {ports: [65536]}}]",
        "spec.ingress[0].destination.ports[0]",
        "port 65536 is out of range",
    ),
    (
        "ingress: [{action: Allow, protocol: TCP, destination: {ports: ['20:10']}}]",
        "spec.ingress[0].destination.ports[0]",
        "port range '20:10' is reversed",
    ),
    (
        "ingress: [{action: Allow, protocol: UDP, source: {notPorts: [Bad_Name]}}]",
        "spec.ingress[0].source.notPorts[0]",
        "not a valid port name",
    ),
    (
        "ingress: [{action: Allow, protocol: TCP, destination: {ports: [true]}}]",
        "spec.ingress[0].destination.ports[0]",
        "must be an integer or a string, not boolean",
    ),
    (
        "ingress: [{action: Allow, destination: {ports: [443]}}]",
        "spec.ingress[0].destination.ports",
        "ports need protocol TCP, UDP or SCTP in the same rule (no protocol is set)",
    ),
    (
        "ingress: [{action: Allow, protocol: UDPLite, destination: {ports: [http]}}]",
        "spec.ingress[0].destination.ports",
        "(protocol is 'UDPLite')",
    ),
    (
        "egress: [{action: Allow, protocol: ICMP, source: {ports: [1]}}]",
        "spec.egress[0].source.ports",
        "ports need protocol TCP, UDP or SCTP",
    ),
    # protocols and actions
    (
        "ingress: [{action: Allow, protocol: tcp}]",
        "spec.ingress[0].protocol",
        "case-sensitive: write 'TCP'",
    ),
    ("ingress: [{action: Allow, protocol: 0}]", "spec.ingress[0].protocol", "out of range 1-255"),
    ("ingress: [{action: Allow, notProtocol: 256}]", "spec.ingress[0].notProtocol", "1-255"),
    ("ingress: [{action: Allow, protocol: GRE}]", "spec.ingress[0].protocol", "unknown protocol"),
    ("ingress: [{protocol: TCP}]", "spec.ingress[0].action", "required field is missing"),
    ("ingress: [{action: allow}]", "spec.ingress[0].action", "write 'Allow'"),
    ("egress: [{action: Reject}]", "spec.egress[0].action", "'Reject' is not one of Allow"),
    ("ingress: [{action: Allow, ipVersion: 5}]", "spec.ingress[0].ipVersion", "not one of 4, 6"),
    # ICMP
    (
        "ingress: [{action: Allow, protocol: ICMP, icmp: {type: 255}}]",
        "spec.ingress[0].icmp.type",
        "ICMP type 255 is out of range 0-254",
    ),
    (
        "ingress: [{action: Allow, protocol: ICMP, icmp: {type: 3, code: 256}}]",
        "spec.ingress[0].icmp.code",
        "ICMP code 256 is out of range 0-255",
    ),
    (
        "ingress: [{action: Allow, protocol: ICMP, icmp: {code: 1}}]",
        "spec.ingress[0].icmp.code",
        "an ICMP code needs an ICMP type",
    ),
    (
        "ingress: [{action: Allow, icmp: {type: 8}}]",
        "spec.ingress[0].icmp",
        "icmp needs protocol ICMP or ICMPv6",
    ),
    (
        "ingress: [{action: Allow, protocol: TCP, notICMP: {type: 8}}]",
        "spec.ingress[0].notICMP",
        "notICMP needs protocol ICMP or ICMPv6",
    ),
    (
        "ingress: [{action: Allow, protocol: ICMP, ipVersion: 6}]",
        "spec.ingress[0].ipVersion",
        "protocol ICMP needs ipVersion 4",
    ),
    # host stages (validateGlobalNetworkPolicySpec)
    (
        "{preDNAT: true, doNotTrack: true, applyOnForward: true}",
        "spec.preDNAT",
        "preDNAT and doNotTrack cannot both be true",
    ),
    (
        "{preDNAT: true, applyOnForward: true, egress: [{action: Allow}]}",
        "spec.egress",
        "a preDNAT policy cannot have egress rules",
    ),
    (
        "{preDNAT: true, applyOnForward: true, types: [Ingress, Egress]}",
        "spec.types",
        "a preDNAT policy cannot have type Egress",
    ),
    ("{doNotTrack: true, applyOnForward: false}", "spec.applyOnForward", "need applyOnForward"),
    (
        "{preDNAT: 'true', applyOnForward: true}",
        "spec.preDNAT",
        "must be true or false, not string",
    ),
    # types, order, tier
    ("types: [ingress]", "spec.types[0]", "policy type 'ingress' is not one of Ingress, Egress"),
    ("types: [Ingress, Ingress]", "spec.types[1]", "duplicate entry 'Ingress'"),
    ("types: Ingress", "spec.types", "must be a list, not string"),
    ("order: '10'", "spec.order", "must be a number, not string"),
    ("order: true", "spec.order", "must be a number, not boolean"),
    ("tier: Security", "spec.tier", "not a valid DNS-1123 label"),
    ("tier: a.b", "spec.tier", "not a valid DNS-1123 label"),
    ("performanceHints: [Fast]", "spec.performanceHints[0]", "not one of AssumeNeededOnEveryNode"),
    # HTTP and services
    (
        "ingress: [{action: Deny, http: {methods: [GET]}}]",
        "spec.ingress[0].http",
        "only valid on Allow rules",
    ),
    (
        "egress: [{action: Allow, http: {methods: [GET]}}]",
        "spec.egress[0].http",
        "not allowed in egress rules",
    ),
    (
        "ingress: [{action: Allow, protocol: UDP, http: {methods: [GET]}}]",
        "spec.ingress[0].protocol",
        "needs protocol TCP",
    ),
    (
        "ingress: [{action: Allow, http: {paths: [{exact: /a, prefix: /b}]}}]",
        "spec.ingress[0].http.paths[0]",
        "exactly one of exact or prefix",
    ),
    (
        "ingress: [{action: Allow, http: {paths: [{prefix: 'api?x'}]}}]",
        "spec.ingress[0].http.paths[0].prefix",
        "must start with '/'",
    ),
    (
        "ingress: [{action: Allow, source: {services: {name: a, namespace: b}, selector: all()}}]",
        "spec.ingress[0].source.selector",
        "cannot be combined with services",
    ),
    (
        "ingress: [{action: Allow, destination: {services: {name: a, namespace: b}}}]",
        "spec.ingress[0].destination.services",
        "not allowed in the destination of ingress rules",
    ),
    (
        "egress: [{action: Allow, destination: {services: {name: a}}}]",
        "spec.egress[0].destination.services.namespace",
        "a global policy must name the namespace",
    ),
    (
        "egress: [{action: Allow, source: {services: {name: a, namespace: b}}}]",
        "spec.egress[0].source.services",
        "not allowed in the source of egress rules",
    ),
    (
        "egress: [{action: Allow, protocol: TCP, destination: "
        "{ports: [80], services: {name: a, namespace: b}}}]",
        "spec.egress[0].destination.ports",
        "ports cannot be used with destination services",
    ),
    (
        "egress: [{action: Allow, destination: {services: {namespace: b}}}]",
        "spec.egress[0].destination.services.name",
        "required field is missing",
    ),
]


@pytest.mark.parametrize(("spec", "field", "message"), BAD_GNP_SPECS)
def test_bad_global_policies_fail_at_the_field(spec: str, field: str, message: str) -> None:
    assert_one_error(gnp(spec), SPEC_LINE, field, message)


def test_a_missing_field_points_at_its_parent() -> None:
    assert_one_error(gnp("preDNAT: true\n"), 5, "spec.applyOnForward", "need applyOnForward: true")


def test_global_only_fields_are_unknown_on_namespaced_policies() -> None:
    spec = "preDNAT: true\nnamespaceSelector: all()\n"
    found = findings(doc("NetworkPolicy", spec))

    assert [(place(f), f.message) for f in found] == [
        (("p.yaml:6", "spec.preDNAT"), "unknown field 'preDNAT'"),
        (
            ("p.yaml:7", "spec.namespaceSelector"),
            "unknown field 'namespaceSelector' (did you mean 'selector'?)",
        ),
    ]


def test_staged_delete_must_name_the_policy_only() -> None:
    spec = "stagedAction: Delete\ntier: security\nselector: all()\n"
    assert_one_error(doc("StagedNetworkPolicy", spec), 8, "spec.selector", "stagedAction is Delete")
    assert_one_error(
        doc("StagedGlobalNetworkPolicy", "stagedAction: delete"),
        6,
        "spec.stagedAction",
        "write 'Delete'",
    )


def test_rule_errors_point_at_their_own_lines() -> None:
    text = gnp(
        """\
        selector: has(host-endpoint)
        ingress:
          - action: Allow
            protocol: TCP
            destination:
              ports:
                - 22
                - 0
          - action: Allow
            source:
              nets:
                - 10.0.0.0/8
              notNets:
                - fd00::/8
        """
    )

    found = findings(text)

    assert [(place(f), f.message) for f in found] == [
        (("p.yaml:13", "spec.ingress[0].destination.ports[1]"), "port 0 is out of range 1-65535"),
        (
            ("p.yaml:18", "spec.ingress[1].source.notNets"),
            "a rule cannot mix IPv4 and IPv6 CIDRs (IPv4 in source.nets, IPv6 in source.notNets)",
        ),
    ]


def test_every_problem_of_one_rule_is_reported() -> None:
    spec = "egress: [{action: deny, protocol: tcp, icmp: {code: 1}, destination: {ports: [0]}}]"

    fields = [f.field for f in findings(gnp(spec))]

    assert fields == [
        "spec.egress[0].action",
        "spec.egress[0].protocol",
        "spec.egress[0].icmp.code",
        "spec.egress[0].destination.ports[0]",
        "spec.egress[0].destination.ports",
        "spec.egress[0].icmp",
    ]


# --- names, labels, metadata -------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("GlobalNetworkPolicy", "allow-ping"),
        ("GlobalNetworkPolicy", "security.allow-ping"),
        ("NetworkPolicy", "knp.default.some.k8s-policy"),
        ("Tier", "security"),
        ("GlobalNetworkSet", "threat.feed.v1"),
        ("HostEndpoint", "node-1.eth0"),
    ],
)
def test_good_names_pass(kind: str, name: str) -> None:
    spec = {"HostEndpoint": "node: n1\ninterfaceName: eth0\n"}.get(kind, "{}\n")
    assert_clean(doc(kind, spec, name=name))


@pytest.mark.parametrize(
    ("kind", "name", "message"),
    [
        ("GlobalNetworkPolicy", "Allow_Ping", "not a valid global policy name"),
        ("GlobalNetworkPolicy", "a.b.c", "not a valid global policy name"),
        ("NetworkPolicy", "a.b.c", "not a valid policy name"),
        ("Tier", "sec.urity", "not a valid DNS-1123 label"),
        ("GlobalNetworkSet", "-feed", "not a valid DNS-1123 subdomain"),
        ("GlobalNetworkSet", "a" * 254, "longer than 253 characters"),
        ("Tier", "t" * 64, "longer than 63 characters"),
    ],
)
def test_bad_names_fail(kind: str, name: str, message: str) -> None:
    assert_one_error(doc(kind, "{}\n", name=name), 4, "metadata.name", message)


def test_k8s_network_policy_names_are_subdomains() -> None:
    api = "networking.k8s.io/v1"
    assert_clean(doc("NetworkPolicy", "podSelector: {}\n", name="a.b.c", api=api))
    bad = doc("NetworkPolicy", "podSelector: {}\n", name="A", api=api)
    assert_one_error(bad, 4, "metadata.name", "not a valid DNS-1123 subdomain")


def test_namespace_must_be_a_dns_label() -> None:
    text = "apiVersion: projectcalico.org/v3\nkind: NetworkSet\nmetadata:\n  name: s\n"
    assert_clean(text + "  namespace: team-a\n")
    assert_one_error(text + "  namespace: Team.A\n", 5, "metadata.namespace", "DNS-1123 label")


META = "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata:\n  name: s\n"


def test_labels_and_annotations_pass() -> None:
    assert_clean(
        META + "  labels: {app.kubernetes.io/name: web, a: '', b_c: 'true'}\n"
        "  annotations: {Example.com/Note: any text at all}\n"
    )


@pytest.mark.parametrize(
    ("line", "field", "message"),
    [
        ("  labels: {-a: b}", 'metadata.labels["-a"]', "not a valid key"),
        ("  labels: {a/b/c: b}", 'metadata.labels["a/b/c"]', "prefix before '/'"),
        ("  labels: {a: -b}", "metadata.labels.a", "not a valid label value"),
        ("  labels: {a: " + "x" * 64 + "}", "metadata.labels.a", "not a valid label value"),
        ("  labels: {access: true}", "metadata.labels.access", "(quote it: 'true')"),
        ("  labels: {port: 80}", "metadata.labels.port", "not integer (quote it: '80')"),
        ("  labels: [a]", "metadata.labels", "must be a map, not array"),
        ("  annotations: {'bad key': x}", 'metadata.annotations["bad key"]', "not a valid key"),
        ("  annotations: {a: 1}", "metadata.annotations.a", "must be a string"),
        (
            "  labels: {projectcalico.org/namespace: x}",
            'metadata.labels["projectcalico.org/namespace"]',
            "reserved for Calico",
        ),
        ("  generateName: s-", "metadata.generateName", "needs a fixed name"),
        ("  ownerReferences: []", "metadata.ownerReferences", "delete the firewall object"),
        ("  finalizers: [x]", "metadata.finalizers", "can block"),
        ("  resourceVersion: '1'", "metadata.resourceVersion", "set by the API server"),
        ("  uid: x", "metadata.uid", "set by the API server"),
        ("  managedFields: []", "metadata.managedFields", "set by the API server"),
    ],
)
def test_bad_metadata_fails(line: str, field: str, message: str) -> None:
    assert_one_error(META + line + "\n", 5, field, message)


def test_annotations_have_a_total_size_limit() -> None:
    big = "x" * (256 * 1024)
    assert_one_error(META + f"  annotations: {{a: {big}}}\n", 5, "metadata.annotations", "limit")


def test_status_and_unknown_top_level_fields_are_refused() -> None:
    text = META + "sepc: {}\nstatus: {}\n"

    found = findings(text)

    assert [(place(f), f.message) for f in found] == [
        (("p.yaml:5", "sepc"), "unknown field 'sepc' (did you mean 'spec'?)"),
        (("p.yaml:6", "status"), "status is written by the cluster, not by Git: remove it"),
    ]


# --- network sets, host endpoints, tiers, kube-controllers -------------------------------


def test_network_sets_take_ips_and_unmasked_cidrs() -> None:
    nets = "nets: [10.0.0.1, 11.0.0.0/8, 10.1.2.3/24, 'dead:beef::', 'dead:beef::/96']\n"
    assert_clean(doc("GlobalNetworkSet", nets))
    assert_clean(doc("NetworkSet", nets).replace("  name: p", "  name: p\n  namespace: x"))


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        ("nets: [garbage]", "spec.nets[0]", "not a valid CIDR or IP address"),
        ("nets: [10.0.0.0/33]", "spec.nets[0]", "not a valid CIDR"),
        ("nets: ['fe80::1%eth0']", "spec.nets[0]", "not a valid CIDR"),
        ("nets: [1.1.1.1, 1.1.1.1]", "spec.nets[1]", "duplicate entry"),
        ("nets: 10.0.0.0/8", "spec.nets", "must be a list, not string"),
        ("selector: all()", "spec.selector", "unknown field 'selector'"),
    ],
)
def test_bad_network_sets_fail(spec: str, field: str, message: str) -> None:
    assert_one_error(doc("GlobalNetworkSet", spec), SPEC_LINE, field, message)


def test_good_host_endpoints_pass() -> None:
    assert_clean(
        doc(
            "HostEndpoint",
            """\
            node: worker-1
            interfaceName: "*"
            expectedIPs: [10.0.0.5, 'fd00::5']
            profiles: [projectcalico-default-allow]
            ports: [{name: ssh, protocol: TCP, port: 2222}, {name: dns, protocol: 17, port: 53}]
            """,
        )
    )
    assert_clean(doc("HostEndpoint", "node: worker-1\nexpectedIPs: [10.0.0.5]\n"))


@pytest.mark.parametrize(
    ("spec", "line", "field", "message"),
    [
        ("interfaceName: eth0", 5, "spec.node", "required field is missing"),
        ("node: n1", 5, "spec.interfaceName", "needs interfaceName or expectedIPs"),
        ("node: n1\nexpectedIPs: []", 5, "spec.interfaceName", "needs interfaceName or"),
        ("node: N_1\ninterfaceName: eth0", 6, "spec.node", "DNS-1123 subdomain"),
        ("node: n1\ninterfaceName: eth0:1", 7, "spec.interfaceName", "not an interface name"),
        ("node: n1\nexpectedIPs: [10.0.0.0/24]", 7, "spec.expectedIPs[0]", "not a valid IP"),
        ("node: n1\ninterfaceName: eth0\nselector: x", 8, "spec.selector", "unknown field"),
        (
            "node: n1\ninterfaceName: eth0\nports: [{name: ssh, protocol: ICMP, port: 22}]",
            8,
            "spec.ports[0].protocol",
            "has no ports",
        ),
        (
            "node: n1\ninterfaceName: eth0\nports: [{name: SSH, protocol: TCP, port: 22}]",
            8,
            "spec.ports[0].name",
            "not a valid port name",
        ),
        (
            "node: n1\ninterfaceName: eth0\nports: [{name: ssh, protocol: TCP}]",
            8,
            "spec.ports[0].port",
            "required field is missing",
        ),
    ],
)
def test_bad_host_endpoints_fail(spec: str, line: int, field: str, message: str) -> None:
    assert_one_error(doc("HostEndpoint", spec), line, field, message)


def test_tiers() -> None:
    assert_clean(doc("Tier", "order: 100\ndefaultAction: Pass\n", name="security"))
    assert_clean(doc("Tier", "order: 1000000\n", name="default"))
    assert_one_error(doc("Tier", "defaultAction: Allow\n"), 6, "spec.defaultAction", "Deny, Pass")
    assert_one_error(doc("Tier", "order: 5\n", name="default"), 6, "spec.order", "must be 1000000")
    assert_one_error(doc("Tier", "{}\n", name="default"), 5, "spec.order", "must be 1000000")


KCC = """\
    controllers:
      node:
        hostEndpoint:
          autoCreate: Enabled
          templates:
            - generateName: edge
              nodeSelector: has(edge)
              interfaceCIDRs: [10.0.0.0/8]
              labels: {zone: a}
        reconcilerPeriod: 5m
      policy: {reconcilerPeriod: 1h30m}
    """


def test_kube_controllers_configuration() -> None:
    assert_clean(doc("KubeControllersConfiguration", KCC, name="default"))
    bad = KCC.replace("autoCreate: Enabled", "autoCreate: enabled")
    assert_one_error(
        doc("KubeControllersConfiguration", bad, name="default"),
        9,
        "spec.controllers.node.hostEndpoint.autoCreate",
        "write 'Enabled'",
    )
    typo = KCC.replace("hostEndpoint:", "hostEndpoints:")
    assert_one_error(
        doc("KubeControllersConfiguration", typo, name="default"),
        8,
        "spec.controllers.node.hostEndpoints",
        "did you mean 'hostEndpoint'?",
    )
    period = KCC.replace("5m", "5 minutes")
    assert_one_error(
        doc("KubeControllersConfiguration", period, name="default"),
        15,
        "spec.controllers.node.reconcilerPeriod",
        "not a duration",
    )
    selector = KCC.replace("has(edge)", "has(edge")
    assert_one_error(
        doc("KubeControllersConfiguration", selector, name="default"),
        12,
        "spec.controllers.node.hostEndpoint.templates[0].nodeSelector",
        "invalid selector",
    )


# --- Kubernetes NetworkPolicy ------------------------------------------------------------


def netpol(spec: str, *, name: str = "p") -> str:
    head = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n"
    return f"{head}  name: {name}\n  namespace: ns\nspec:\n" + textwrap.indent(
        textwrap.dedent(spec), "  "
    )


NP_LINE = 7

GOOD_NETPOLS = [
    # scenario 3
    """\
    podSelector: {matchLabels: {run: nginx}}
    ingress:
      - from:
          - podSelector: {matchLabels: {access: "true"}}
          - ipBlock: {cidr: 100.64.0.0/10}
          - ipBlock: {cidr: 203.0.113.0/24, except: [203.0.113.7/32]}
    """,
    """\
    podSelector: {matchLabels: {run: busybox}}
    policyTypes: [Egress]
    egress:
      - to: [{ipBlock: {cidr: 1.1.1.1/32}}, {ipBlock: {cidr: 8.8.8.8/32}}]
      - to: [{ipBlock: {cidr: 0.0.0.0/0}}]
        ports: [{protocol: UDP, port: 53}]
    """,
    "podSelector: {}\npolicyTypes: [Ingress, Egress]\n",
    "podSelector: {}\ningress: [{}]\n",
    """\
    podSelector: {}
    ingress:
      - from:
          - namespaceSelector:
              matchLabels: {kubernetes.io/metadata.name: default}
        ports: [{protocol: TCP, port: 80}, {port: http}, {port: 8000, endPort: 8080}]
    """,
    """\
    podSelector:
      matchExpressions:
        - {key: tier, operator: In, values: [web, api]}
        - {key: legacy, operator: DoesNotExist}
    ingress:
      - from: [{podSelector: {}, namespaceSelector: {matchLabels: {team: a}}}]
    """,
]


@pytest.mark.parametrize("spec", GOOD_NETPOLS)
def test_good_k8s_network_policies_pass(spec: str) -> None:
    assert_clean(netpol(spec))


BAD_NETPOLS = [
    ("policyTypes: [Ingress]", "spec.podSelector", "required field is missing"),  # spec: line
    ("podSelector: {}\ningres: []", "spec.ingres", "did you mean 'ingress'?"),
    (
        "podSelector: {matchExpressions: [{key: a, operator: Equals, values: [b]}]}",
        "spec.podSelector.matchExpressions[0].operator",
        "operator 'Equals' is not one of In, NotIn, Exists, DoesNotExist",
    ),
    (
        "podSelector: {matchExpressions: [{key: a, operator: In}]}",
        "spec.podSelector.matchExpressions[0].values",
        "operator In needs at least one value",
    ),
    (
        "podSelector: {matchExpressions: [{key: a, operator: Exists, values: [b]}]}",
        "spec.podSelector.matchExpressions[0].values",
        "operator Exists takes no values",
    ),
    (
        "podSelector: {matchExpressions: [{key: -a, operator: Exists}]}",
        "spec.podSelector.matchExpressions[0].key",
        "not a valid key",
    ),
    (
        "podSelector: {matchLabels: {access: true}}",
        "spec.podSelector.matchLabels.access",
        "must be a string, not boolean (quote it: 'true')",
    ),
    (
        "podSelector: {}\ningress: [{from: [{ipBlock: {cidr: 10.0.0.1}}]}]",
        "spec.ingress[0].from[0].ipBlock.cidr",
        "not a valid CIDR",
    ),
    (
        "podSelector: {}\ningress: [{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [11.0.0.0/9]}}]}]",
        "spec.ingress[0].from[0].ipBlock.except[0]",
        "must be a strict subset of cidr",
    ),
    (
        "podSelector: {}\negress: [{to: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.0.0.0/8]}}]}]",
        "spec.egress[0].to[0].ipBlock.except[0]",
        "must be a strict subset of cidr",
    ),
    (
        "podSelector: {}\negress: [{to: [{ipBlock: {cidr: 10.0.0.0/8, except: ['fd00::/16']}}]}]",
        "spec.egress[0].to[0].ipBlock.except[0]",
        "must be a strict subset of cidr",
    ),
    (
        "podSelector: {}\negress: [{to: [{ipBlock: {except: [10.0.0.0/16]}}]}]",
        "spec.egress[0].to[0].ipBlock.cidr",
        "required field is missing",
    ),
    (
        "podSelector: {}\ningress: [{from: [{ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}]}]",
        "spec.ingress[0].from[0].ipBlock",
        "ipBlock cannot be combined with a selector",
    ),
    (
        "podSelector: {}\ningress: [{from: [{}]}]",
        "spec.ingress[0].from[0]",
        "a peer needs podSelector, namespaceSelector or ipBlock",
    ),
    (
        "podSelector: {}\ningress: [{from: [{ipBlock: {cidr: 10.0.0.0/8, expect: []}}]}]",
        "spec.ingress[0].from[0].ipBlock.expect",
        "did you mean 'except'?",
    ),
    (
        "podSelector: {}\ningress: [{ports: [{protocol: tcp, port: 80}]}]",
        "spec.ingress[0].ports[0].protocol",
        "write 'TCP'",
    ),
    (
        "podSelector: {}\ningress: [{ports: [{protocol: ICMP}]}]",
        "spec.ingress[0].ports[0].protocol",
        "not one of TCP, UDP, SCTP",
    ),
    (
        "podSelector: {}\ningress: [{ports: [{port: '80'}]}]",
        "spec.ingress[0].ports[0].port",
        "'80' is not a valid port name: must contain a letter",
    ),
    (
        "podSelector: {}\ningress: [{ports: [{port: 0}]}]",
        "spec.ingress[0].ports[0].port",
        "port 0 is out of range",
    ),
    (
        "podSelector: {}\ningress: [{ports: [{endPort: 90}]}]",
        "spec.ingress[0].ports[0].endPort",
        "endPort needs port",
    ),
    (
        "podSelector: {}\ningress: [{ports: [{port: http, endPort: 90}]}]",
        "spec.ingress[0].ports[0].endPort",
        "endPort needs a numeric port",
    ),
    (
        "podSelector: {}\ningress: [{ports: [{port: 90, endPort: 80}]}]",
        "spec.ingress[0].ports[0].endPort",
        "endPort 80 is below port 90",
    ),
    ("podSelector: {}\npolicyTypes: [ingress]", "spec.policyTypes[0]", "not one of Ingress"),
    ("podSelector: {}\npolicyTypes: [Egress, Egress]", "spec.policyTypes[1]", "duplicate entry"),
]


@pytest.mark.parametrize(("spec", "field", "message"), BAD_NETPOLS)
def test_bad_k8s_network_policies_fail(spec: str, field: str, message: str) -> None:
    found = findings(netpol(spec))

    # The offending field is on the spec's last line; a missing one points at `spec:`.
    line = NP_LINE - 1 if field == "spec.podSelector" else NP_LINE + spec.count("\n")
    assert len(found) == 1, [str(f) for f in found]
    assert place(found[0]) == (f"p.yaml:{line}", field)
    assert message in found[0].message


def test_k8s_network_policy_without_spec_points_at_the_document() -> None:
    text = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\n"

    assert_one_error(text, 1, "spec.podSelector", "required field is missing")


# --- warnings ----------------------------------------------------------------------------


def test_host_only_flags_with_a_pod_only_selector_warn() -> None:
    text = gnp(
        "namespaceSelector: team == 'a'\nserviceAccountSelector: all()\n"
        "preDNAT: true\napplyOnForward: true\n"
    )

    warnings = findings(text, Severity.WARNING)

    assert findings(text) == []
    assert [(place(w), w.message) for w in warnings] == [
        (
            ("p.yaml:6", "spec.namespaceSelector"),
            "a top-level namespaceSelector means this policy never selects a host endpoint, "
            "so preDNAT, applyOnForward (host endpoints only) has no effect",
        ),
        (
            ("p.yaml:7", "spec.serviceAccountSelector"),
            "a top-level serviceAccountSelector means this policy never selects a host "
            "endpoint, so preDNAT, applyOnForward (host endpoints only) has no effect",
        ),
    ]


def test_a_pod_only_selector_alone_does_not_warn() -> None:
    # Keeping a pod policy off the nodes this way is deliberate (example-repo does it).
    assert findings(gnp("namespaceSelector: all()\ntypes: [Ingress]\n"), Severity.WARNING) == []
    assert findings(gnp("preDNAT: true\napplyOnForward: true\n"), Severity.WARNING) == []


def test_a_policy_whose_only_action_is_log_warns() -> None:
    log_only = gnp("ingress: [{action: Log}]\negress: [{action: Log}]\n")
    calico_np = doc("NetworkPolicy", "ingress: [{action: Log}]\n")

    for text in (log_only, calico_np):
        (warning,) = findings(text, Severity.WARNING)
        assert place(warning) == ("p.yaml:5", "spec")
        assert "allows nothing" in warning.message
    assert findings(gnp("ingress: [{action: Log}, {action: Allow}]"), Severity.WARNING) == []
    assert findings(gnp("types: [Ingress]"), Severity.WARNING) == []


def test_a_kube_controllers_configuration_not_named_default_warns() -> None:
    (warning,) = findings(
        doc("KubeControllersConfiguration", "{}\n", name="mine"), Severity.WARNING
    )

    assert place(warning) == ("p.yaml:4", "metadata.name")
    assert "has no effect" in warning.message


def test_warnings_alone_leave_the_load_ok() -> None:
    result = load_text(gnp("ingress: [{action: Log}]\n"), path="p.yaml")

    assert result.ok
    assert len(result.findings) == 1


# --- validate_resource on generated objects ----------------------------------------------


def generated(body: Mapping[str, object], *, namespace: str = "") -> Resource:
    ref = ObjectRef("projectcalico.org", "v3", str(body["kind"]), namespace, "worker-1")
    origin = Origin("templates/hep.yaml", 3, "HostEndpointTemplate/nodes", "Node/worker-1")
    return Resource(ref, body, origin)


def test_generated_objects_are_valid_or_point_at_their_template() -> None:
    body: dict[str, object] = {
        "apiVersion": "projectcalico.org/v3",
        "kind": "HostEndpoint",
        "metadata": {"name": "worker-1", "labels": {"host-endpoint": "ingress"}},
        "spec": {"node": "worker-1", "interfaceName": "*", "expectedIPs": ["10.0.0.5"]},
    }
    assert validate_resource(generated(body)) == []

    body["spec"] = {"node": "worker-1", "interfaceName": "*", "expectedIPs": ["10.0.0.5/32"]}
    (finding,) = validate_resource(generated(body))

    template = "(HostEndpointTemplate/nodes for Node/worker-1)"
    assert str(finding.origin) == f"templates/hep.yaml:3 {template}"
    assert finding.ref == generated(body).ref
    assert finding.field == "spec.expectedIPs[0]"


def test_validate_resource_checks_kind_and_scope() -> None:
    body: dict[str, object] = {
        "apiVersion": "projectcalico.org/v3",
        "kind": "BGPPeer",
        "metadata": {"name": "worker-1"},
    }
    (finding,) = validate_resource(generated(body))
    assert "BGPPeer (projectcalico.org/v3) is not allowed" in finding.message

    body["kind"] = "NetworkSet"
    (finding,) = validate_resource(generated(body))
    assert (finding.field, "namespaced" in finding.message) == ("metadata.namespace", True)


def test_a_lines_map_moves_findings_to_their_field() -> None:
    body = {
        "apiVersion": "projectcalico.org/v3",
        "kind": "GlobalNetworkSet",
        "metadata": {"name": "s"},
        "spec": {"nets": ["bad"]},
    }
    res = generated(body)
    lines = {("spec",): 10, ("spec", "nets"): 11, ("spec", "nets", 0): 12}

    (finding,) = validate_resource(res, lines=lines)

    assert (finding.origin, finding.field) == (
        Origin("templates/hep.yaml", 12, "HostEndpointTemplate/nodes", "Node/worker-1"),
        "spec.nets[0]",
    )


# --- never raise -------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


def shaped(node: Node, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values shaped like the schema, with any JSON (right type or not) at every level."""
    if depth > 8:
        return json_values
    if isinstance(node, Obj):
        fields = {k: shaped(n, depth + 1) for k, n in node.fields.items()}
        return st.fixed_dictionaries({}, optional=fields) | json_values
    if isinstance(node, Seq):
        return st.lists(shaped(node.item, depth + 1), max_size=3) | json_values
    if isinstance(node, Dict):
        return st.dictionaries(st.text(max_size=5), shaped(node.value, depth + 1), max_size=2)
    return json_values


KINDS = [(av, kind) for av, by_kind in kinds.ALLOWED.items() for kind in by_kind]
SHAPED = {(av, kind): shaped(SPECS[(family_of(kinds.group_of(av)), kind)]) for av, kind in KINDS}


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(KINDS).flatmap(lambda k: st.tuples(st.just(k), SHAPED[k])))
def test_any_spec_gives_findings_not_exceptions(case: tuple[tuple[str, str], Any]) -> None:
    (api_version, kind), spec = case
    metadata = {"name": "x", "namespace": "ns"}
    body = {"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": spec}
    group, version = kinds.group_of(api_version), kinds.version_of(api_version)
    res = Resource(ObjectRef(group, version, kind, "ns", "x"), body, Origin("fuzz.yaml"))

    found = validate_resource(res)  # raising would fail the test

    assert all(f.ref == res.ref for f in found)
