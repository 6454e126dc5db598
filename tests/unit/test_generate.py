"""Expansion of templates over Nodes and Namespaces: pure, so plain values in and out."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from reconciler import generate, pipeline
from reconciler.cli import main
from reconciler.generate import Namespace, Node, joined_name
from reconciler.generate.inventory import pod_from_api
from reconciler.manifests import checks, load_text
from reconciler.manifests.templates import Template
from reconciler.model import Action, Finding, Origin, Revision, Severity
from tests.unit.test_templates_load import HEP, ISOLATION

CONTROL = Node(
    "node-1",
    {"kubernetes-host": "", "node-role.kubernetes.io/master": "", "zone": "a"},
    (("Hostname", "node-1"), ("InternalIP", "10.240.0.11"), ("ExternalIP", "203.0.113.1")),
)
WORKER = Node(
    "node-2", {"kubernetes-host": "", "kubernetes-worker": ""}, (("InternalIP", "10.240.0.12"),)
)
OTHER = Node("bastion", {}, (("InternalIP", "10.240.0.99"),))


def templates(text: str) -> tuple[Template, ...]:
    result = load_text(textwrap.dedent(text), path="t.yaml")
    assert not [f for f in result.findings if f.severity is Severity.ERROR], result.findings
    return result.templates


def errors(findings: tuple[Finding, ...]) -> list[Finding]:
    return [f for f in findings if f.severity is Severity.ERROR]


# --- host endpoints ----------------------------------------------------------------------


def test_one_host_endpoint_per_matching_node() -> None:
    out = generate.expand(templates(HEP), nodes=[CONTROL, WORKER, OTHER])
    assert out.findings == ()
    assert [r.ref.name for r in out.resources] == ["node-1-node-firewall", "node-2-node-firewall"]
    first = out.resources[0]
    assert first.body["spec"] == {
        "node": "node-1",
        "interfaceName": "*",
        "expectedIPs": ["10.240.0.11"],
    }
    assert first.body["metadata"]["labels"] == {"host-endpoint": "ingress"}
    assert first.body["metadata"]["annotations"] == {
        generate.TEMPLATE_ANNOTATION: "HostEndpointTemplate/node-firewall"
    }
    assert first.origin == Origin(
        "t.yaml", 1, template="HostEndpointTemplate/node-firewall", target="Node/node-1"
    )
    assert str(first.origin) == "t.yaml:1 (HostEndpointTemplate/node-firewall for Node/node-1)"


def test_labels_are_copied_by_key_and_prefix_and_the_templates_own_win() -> None:
    text = HEP + (
        "  copyLabels: [zone]\n"
        "  copyLabelPrefixes: [node-role.kubernetes.io/]\n"
        "  addressTypes: [ExternalIP, InternalIP]\n"
        "  interfaceName: eth0\n"
        "  profiles: [projectcalico-default-allow]\n"
    )
    node = Node(CONTROL.name, {**CONTROL.labels, "host-endpoint": "none"}, CONTROL.addresses)
    (hep,) = generate.expand(templates(text), nodes=[node]).resources
    assert hep.body["metadata"]["labels"] == {
        "zone": "a",
        "node-role.kubernetes.io/master": "",
        "host-endpoint": "ingress",  # the Node's own value cannot override the template's
    }
    assert hep.body["spec"]["expectedIPs"] == ["203.0.113.1", "10.240.0.11"]
    assert hep.body["spec"]["interfaceName"] == "eth0"
    assert hep.body["spec"]["profiles"] == ["projectcalico-default-allow"]


def test_a_node_without_addresses_gets_an_endpoint_without_ips_and_a_warning() -> None:
    fresh = Node("node-9", {"kubernetes-host": ""})
    out = generate.expand(templates(HEP), nodes=[fresh])
    (hep,) = out.resources
    assert "expectedIPs" not in hep.body["spec"]
    (warning,) = out.findings
    assert warning.severity is Severity.WARNING and "node-9" in warning.message


def test_a_long_node_name_is_shortened_with_a_stable_hash() -> None:
    long_node = Node("n" * 250, {"kubernetes-host": ""}, (("InternalIP", "10.0.0.1"),))
    out = generate.expand(templates(HEP), nodes=[long_node])
    assert errors(out.findings) == []
    (hep,) = out.resources
    name = hep.ref.name
    assert len(name) == 253 and checks.dns_subdomain(name) is None
    assert name == generate.expand(templates(HEP), nodes=[long_node]).resources[0].ref.name
    assert hep.body["spec"]["node"] == long_node.name


def test_joined_name_keeps_short_valid_names() -> None:
    assert joined_name("node-1", "node-firewall") == "node-1-node-firewall"


@given(st.lists(st.text(min_size=1, max_size=200), min_size=1, max_size=4))
def test_joined_names_are_always_valid_and_only_hashed_when_needed(parts: list[str]) -> None:
    name = joined_name(*parts)
    assert checks.dns_subdomain(name) is None
    plain = "-".join(parts)
    assert (name == plain) == (len(plain) <= 253 and checks.dns_subdomain(plain) is None)


def test_distinct_overlong_names_stay_distinct() -> None:
    assert joined_name("a" * 300, "x") != joined_name("a" * 300, "y")


# --- namespace policies ------------------------------------------------------------------

SHOP = Namespace("shop", {"field.cattle.io/projectId": "p-apps"})
CACHE = Namespace("cache", {"field.cattle.io/projectId": "p-data"})
PLAIN = Namespace("default", {"kubernetes.io/metadata.name": "default"})


def test_one_policy_per_matching_namespace_with_its_labels_filled_in() -> None:
    out = generate.expand(templates(ISOLATION), namespaces=[SHOP, CACHE, PLAIN])
    assert out.findings == ()
    assert [str(r.ref) for r in out.resources] == [
        "NetworkPolicy/shop/np-default",
        "NetworkPolicy/cache/np-default",
    ]
    shop = out.resources[0]
    assert shop.ref.group == "networking.k8s.io"
    assert shop.body["metadata"]["namespace"] == "shop"
    peer = shop.body["spec"]["ingress"][0]["from"][0]
    assert peer == {"namespaceSelector": {"matchLabels": {"field.cattle.io/projectId": "p-apps"}}}
    assert shop.origin.target == "Namespace/shop"
    assert shop.origin.template == "NamespacePolicyTemplate/project-isolation"


def test_namespace_name_substitution_in_a_calico_policy() -> None:
    text = """\
    apiVersion: policy-reconciler.io/v1alpha1
    kind: NamespacePolicyTemplate
    metadata:
      name: own-namespace
    spec:
      template:
        apiVersion: projectcalico.org/v3
        kind: NetworkPolicy
        metadata:
          name: allow-${namespace}
        spec:
          selector: all()
          ingress:
            - action: Allow
              source:
                namespaceSelector: kubernetes.io/metadata.name == '${namespace}'
    """
    out = generate.expand(templates(text), namespaces=[SHOP])
    (policy,) = out.resources
    assert str(policy.ref) == "NetworkPolicy/shop/allow-shop"
    rule = policy.body["spec"]["ingress"][0]
    assert rule["source"]["namespaceSelector"] == "kubernetes.io/metadata.name == 'shop'"


def test_a_namespace_lacking_a_label_is_skipped_with_one_warning() -> None:
    text = ISOLATION.replace("has(field.cattle.io/projectId)", "")  # every namespace
    out = generate.expand(templates(text), namespaces=[SHOP, PLAIN])
    assert [r.ref.namespace for r in out.resources] == ["shop"]
    (warning,) = out.findings
    assert warning.severity is Severity.WARNING
    assert "default" in warning.message and "has(field.cattle.io/projectId)" in warning.message
    assert warning.origin is not None and warning.origin.line == 1


def test_a_terminating_namespace_gets_nothing_new() -> None:
    gone = Namespace("old", {"field.cattle.io/projectId": "p-apps"}, terminating=True)
    assert generate.expand(templates(ISOLATION), namespaces=[gone]).resources == ()


def test_namespace_from_api_reads_deletion() -> None:
    obj = {"metadata": {"name": "x", "deletionTimestamp": "2026-01-01T00:00:00Z"}}
    assert generate.namespace_from_api(obj) == Namespace("x", {}, terminating=True)


def test_a_bad_value_from_a_label_is_an_error_at_the_template_line_for_that_namespace() -> None:
    text = ISOLATION.replace("name: np-default", "name: \"np-${labels['team']}\"")
    bad = Namespace("web", {"field.cattle.io/projectId": "p", "team": "Web_Team"})
    out = generate.expand(templates(text), namespaces=[bad])
    (error,) = errors(out.findings)
    assert error.origin is not None
    assert (error.origin.path, error.origin.line) == ("t.yaml", 11)
    assert error.origin.target == "Namespace/web"
    assert error.field == "metadata.name" and "np-Web_Team" in error.message


# --- collisions, automatic host endpoints, offline ---------------------------------------


def test_a_generated_object_colliding_with_a_file_object_is_an_error_naming_both() -> None:
    file_text = """\
    apiVersion: crd.projectcalico.org/v1
    kind: HostEndpoint
    metadata:
      name: node-1-node-firewall
    spec:
      node: node-1
      interfaceName: "*"
    """
    files = load_text(textwrap.dedent(file_text), path="hosts/h.yaml").resources
    generated = generate.expand(templates(HEP), nodes=[CONTROL]).resources
    merged, clashes = generate.merge(files, generated)
    assert merged == files
    (clash,) = clashes
    assert clash.severity is Severity.ERROR
    assert str(clash.origin) == "t.yaml:1 (HostEndpointTemplate/node-firewall for Node/node-1)"
    assert "hosts/h.yaml:1" in clash.message


def test_two_templates_making_the_same_object_collide() -> None:
    twin = ISOLATION.replace("name: project-isolation", "name: twin")
    generated = generate.expand(templates(ISOLATION + "---\n" + twin), namespaces=[SHOP]).resources
    _, clashes = generate.merge((), generated)
    (clash,) = clashes
    assert "NamespacePolicyTemplate/twin for Namespace/shop" in str(clash.origin)
    assert "NamespacePolicyTemplate/project-isolation" in clash.message


@pytest.mark.parametrize(
    ("host_endpoint", "warns"),
    [
        ({"autoCreate": "Enabled"}, True),
        ({"autoCreate": "Disabled"}, False),
        ({"autoCreate": "Enabled", "createDefaultHostEndpoint": "Disabled"}, False),
        (
            {
                "autoCreate": "Enabled",
                "createDefaultHostEndpoint": "Disabled",
                "templates": [{"generateName": "w", "nodeSelector": "has(kubernetes-worker)"}],
            },
            True,
        ),
    ],
)
def test_automatic_host_endpoints_for_the_same_nodes_warn(
    host_endpoint: dict[str, object], warns: bool
) -> None:
    body = {"spec": {"controllers": {"node": {"hostEndpoint": host_endpoint}}}}
    auto = generate.auto_host_endpoints(body, source="KubeControllersConfiguration/default")
    out = generate.expand(templates(HEP), nodes=[CONTROL, WORKER], auto=auto)
    found = [f for f in out.findings if "automatic host endpoints" in f.message]
    assert bool(found) == warns
    if warns:
        assert "node-2" in found[0].message and found[0].severity is Severity.WARNING


def test_an_interface_specific_template_does_not_warn() -> None:
    body = {"spec": {"controllers": {"node": {"hostEndpoint": {"autoCreate": "Enabled"}}}}}
    auto = generate.auto_host_endpoints(body, source="x")
    out = generate.expand(templates(HEP + "  interfaceName: eth0\n"), nodes=[CONTROL], auto=auto)
    assert out.findings == ()


def _rendered(root: Path, text: str) -> pipeline.Rendered:
    (root / "t.yaml").write_text(textwrap.dedent(text))
    return pipeline.render(root, Revision("dir:x", str(root)), pipeline.Settings())


def test_offline_plan_says_templates_need_a_cluster(tmp_path: Path) -> None:
    plan = pipeline.plan_offline(
        _rendered(tmp_path, HEP + "---\n" + ISOLATION), pipeline.Settings()
    )
    assert plan.changes == () and plan.errors == ()
    notes = sorted(f.message for f in plan.findings)
    assert len(notes) == 2
    assert all("--inventory" in note for note in notes)  # an option plan and report both take
    assert "Namespaces" in notes[0] and "Nodes" in notes[1]


def test_offline_plan_expands_over_given_nodes(tmp_path: Path) -> None:
    rendered = _rendered(tmp_path, HEP + "---\n" + ISOLATION)
    plan = pipeline.plan_offline(rendered, pipeline.Settings(), nodes=[CONTROL, WORKER])
    assert {str(c.ref): c.action for c in plan.changes} == {
        "HostEndpoint/node-1-node-firewall": Action.CREATE,
        "HostEndpoint/node-2-node-firewall": Action.CREATE,
    }
    (note,) = plan.findings
    assert "NamespacePolicyTemplate/project-isolation" in str(note) and "Namespaces" in note.message


NODES_LIST = """\
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Node
    metadata: {name: node-7, labels: {kubernetes-host: ""}}
    status: {addresses: [{type: InternalIP, address: 10.240.0.17}]}
"""


def test_plan_offline_cli_reads_a_kubectl_node_list(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "t.yaml").write_text(HEP + "---\n" + ISOLATION)
    nodes = tmp_path / "nodes.yaml"
    nodes.write_text(NODES_LIST)
    args = ["plan", str(repo), "--offline", "-o", "json", "--nodes-file", str(nodes)]
    result = CliRunner().invoke(main, args, env={"NO_COLOR": "1"})
    assert result.exit_code == 1, result.output  # changes pending
    report = json.loads(result.output)
    assert [c["ref"] for c in report["changes"]] == ["HostEndpoint/node-7-node-firewall"]
    assert report["changes"][0]["origin"]["target"] == "Node/node-7"

    nodes.write_text("items: [unclosed\n")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "nodes.yaml" in result.output
    result = CliRunner().invoke(main, ["plan", str(repo), "--nodes-file", str(nodes)])
    assert result.exit_code == 2 and "--offline" in result.output


def test_plan_offline_expands_over_an_inventory_file(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "t.yaml").write_text(HEP + "---\n" + ISOLATION)
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        NODES_LIST + "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n"
    )
    args = ["plan", str(repo), "--offline", "-o", "json", "--inventory", str(inventory)]

    result = CliRunner().invoke(main, args, env={"NO_COLOR": "1"})

    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    assert "HostEndpoint/node-7-node-firewall" in [c["ref"] for c in report["changes"]]
    assert not [f for f in report["findings"] if "not expanded" in f["message"]]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (NODES_LIST.replace("{addresses: [{type: InternalIP, address: 10.240.0.17}]}", "x"), ":7:"),
        (NODES_LIST.replace("[{type: InternalIP, address: 10.240.0.17}]", "5"), ":7:"),
        (NODES_LIST.replace('{kubernetes-host: ""}', "[x]"), ":6:"),
        (NODES_LIST.replace('{kubernetes-host: ""}', "{a: 1}"), ":6:"),
    ],
    ids=["status-string", "addresses-int", "labels-list", "label-int"],
)
def test_a_hostile_inventory_file_is_one_line_with_file_and_line(
    tmp_path: Path, text: str, where: str
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "t.yaml").write_text(HEP)
    nodes = tmp_path / "nodes.yaml"
    nodes.write_text(text)
    for flag in ("--nodes-file", "--inventory"):
        result = CliRunner().invoke(main, ["plan", str(repo), "--offline", flag, str(nodes)])
        assert result.exit_code == 2, result.output
        assert f"nodes.yaml{where}" in result.output and "Traceback" not in result.output


def test_a_non_utf8_inventory_file_is_one_line(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "t.yaml").write_text(HEP)
    nodes = tmp_path / "nodes.yaml"
    nodes.write_bytes(b"kind: Node\nmetadata: {name: \xff\xfe}\n")
    result = CliRunner().invoke(main, ["plan", str(repo), "--offline", "--nodes-file", str(nodes)])
    assert result.exit_code == 2 and "not UTF-8" in result.output


def test_pod_addresses_are_read_as_calico_reads_them() -> None:
    """The CNI plugin's annotations first (libcalico-go getPodIPs), then the status; an
    annotation that is no address is no address."""
    status = {"podIPs": [{"ip": "10.9.0.1"}]}
    annotated = {"name": "p", "namespace": "n"}
    plain = pod_from_api({"metadata": annotated, "status": status})
    assert plain.ips == ("10.9.0.1",)
    notes = {"cni.projectcalico.org/podIPs": "10.1.0.5/32,fd00::5/128"}
    both = pod_from_api({"metadata": {**annotated, "annotations": notes}, "status": status})
    assert both.ips == ("10.1.0.5", "fd00::5")
    bad = {"cni.projectcalico.org/podIP": "not-an-ip"}
    hostile = pod_from_api({"metadata": {**annotated, "annotations": bad}, "status": status})
    assert hostile.ips == ()
