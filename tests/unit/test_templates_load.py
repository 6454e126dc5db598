"""Templates at load: kept apart from Resources, and every mistake an error at file:line."""

from __future__ import annotations

import textwrap

import pytest

from reconciler.manifests import LoadResult, load_text
from reconciler.manifests.substitution import (
    SubstitutionError,
    fill,
    fill_body,
    placeholders,
)
from reconciler.manifests.templates import HostEndpointTemplate, NamespacePolicyTemplate
from reconciler.model import Finding, Severity

HEP = """\
apiVersion: policy-reconciler.io/v1alpha1
kind: HostEndpointTemplate
metadata:
  name: node-firewall
spec:
  nodeSelector: has(kubernetes-host)
  labels:
    host-endpoint: ingress
"""

ISOLATION = """\
apiVersion: policy-reconciler.io/v1alpha1
kind: NamespacePolicyTemplate
metadata:
  name: project-isolation
spec:
  namespaceSelector: has(field.cattle.io/projectId)
  template:
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata:
      name: np-default
    spec:
      podSelector: {}
      policyTypes: [Ingress]
      ingress:
        - from:
            - namespaceSelector:
                matchLabels:
                  field.cattle.io/projectId: "${labels['field.cattle.io/projectId']}"
"""
ISOLATION_VALUE_LINE = 19


def load(text: str) -> LoadResult:
    return load_text(textwrap.dedent(text), path="t.yaml")


def errors(result: LoadResult) -> list[Finding]:
    return [f for f in result.findings if f.severity is Severity.ERROR]


def only_error(text: str) -> tuple[str, str, str]:
    result = load(text)
    found = errors(result)
    assert len(found) == 1, [str(f) for f in found]
    assert result.templates == (), "a template with errors is never expanded"
    finding = found[0]
    assert finding.origin is not None
    return f"{finding.origin.path}:{finding.origin.line}", finding.field, finding.message


def test_templates_are_returned_apart_from_resources() -> None:
    result = load(HEP + "---\n" + ISOLATION)
    assert result.findings == (), [str(f) for f in result.findings]
    assert result.resources == ()
    hep, isolation = result.templates
    assert isinstance(hep, HostEndpointTemplate) and isinstance(isolation, NamespacePolicyTemplate)
    assert str(hep.ref) == "HostEndpointTemplate/node-firewall"
    assert (hep.origin.path, hep.origin.line) == ("t.yaml", 1)
    assert (isolation.origin.path, isolation.origin.line) == ("t.yaml", 10)
    assert (hep.interface_name, hep.address_types) == ("*", ("InternalIP",))
    assert hep.node_selector.matches({"kubernetes-host": ""})
    assert not hep.node_selector.matches({})
    assert isolation.labels_used == ("field.cattle.io/projectId",)


def test_an_empty_node_selector_selects_every_node() -> None:
    (template,) = load(HEP.replace("  nodeSelector: has(kubernetes-host)\n", "")).templates
    assert isinstance(template, HostEndpointTemplate)
    assert template.node_selector.matches({})


@pytest.mark.parametrize(
    ("text", "where", "field", "message"),
    [
        (
            HEP.replace("has(kubernetes-host)", "has(kubernetes-host"),
            "t.yaml:6",
            "spec.nodeSelector",
            "invalid selector",
        ),
        (HEP.replace("HostEndpointTemplate", "ClusterRoleTemplate"), "t.yaml:2", "kind", "not a"),
        (HEP + "  addressTypes: [Hostname]\n", "t.yaml:9", "spec.addressTypes[0]", "Hostname"),
        (HEP + "  interfaceNme: eth0\n", "t.yaml:9", "spec.interfaceNme", "interfaceName"),
        (
            HEP.replace("  name: node-firewall\n", "  - node-firewall\n"),
            "t.yaml:3",
            "metadata",
            "map",
        ),
        (HEP + "  copyLabels: ['bad key!']\n", "t.yaml:9", "spec.copyLabels[0]", "valid key"),
        (
            HEP.replace("name: node-firewall", "name: Node_Firewall"),
            "t.yaml:4",
            "metadata.name",
            "",
        ),
        (
            ISOLATION.replace("has(field.cattle.io/projectId)", "a =="),
            "t.yaml:6",
            "spec.namespaceSelector",
            "invalid selector",
        ),
        (
            ISOLATION.replace("networking.k8s.io/v1", "rbac.authorization.k8s.io/v1").replace(
                "kind: NetworkPolicy", "kind: RoleBinding"
            ),
            "t.yaml:9",
            "spec.template.kind",
            "stamps out",
        ),
        (
            ISOLATION.replace("['field.cattle.io/projectId']}", "['x']} ${namespaces}"),
            f"t.yaml:{ISOLATION_VALUE_LINE}",
            'spec.template.spec.ingress[0].from[0].namespaceSelector.matchLabels["field.cattle.io/projectId"]',
            "unknown substitution '${namespaces}'",
        ),
        (
            ISOLATION.replace('}"', '"'),
            f"t.yaml:{ISOLATION_VALUE_LINE}",
            'spec.template.spec.ingress[0].from[0].namespaceSelector.matchLabels["field.cattle.io/projectId"]',
            "never closes",
        ),
        (
            ISOLATION.replace('field.cattle.io/projectId: "$', '${namespace}: "$'),
            f"t.yaml:{ISOLATION_VALUE_LINE}",
            'spec.template.spec.ingress[0].from[0].namespaceSelector.matchLabels["${namespace}"]',
            "never in keys",
        ),
        (
            ISOLATION.replace("      name: np-default\n", "      name: np\n      namespace: x\n"),
            "t.yaml:12",
            "spec.template.metadata.namespace",
            "filled in",
        ),
        (
            ISOLATION.replace("policyTypes: [Ingress]", "policyTypes: [Ingres]"),
            "t.yaml:14",
            "spec.template.spec.policyTypes[0]",
            "Ingres",
        ),
        (
            ISOLATION.replace("    spec:\n", "    spec:\n      podSelectr: {}\n"),
            "t.yaml:13",
            "spec.template.spec.podSelectr",
            "unknown field",
        ),
    ],
)
def test_mistakes_are_errors_at_file_and_line(
    text: str, where: str, field: str, message: str
) -> None:
    found_where, found_field, found_message = only_error(text)
    assert (found_where, found_field) == (where, field)
    assert message in found_message


def test_a_template_defined_twice_is_an_error() -> None:
    result = load(HEP + "---\n" + HEP)
    (error,) = errors(result)
    assert error.origin is not None and error.origin.line == 10
    assert "defined twice: also at t.yaml:1" in error.message
    assert len(result.templates) == 1


def test_a_template_without_labels_or_profiles_warns() -> None:
    result = load(HEP.replace("  labels:\n    host-endpoint: ingress\n", ""))
    (warning,) = result.findings
    assert warning.severity is Severity.WARNING and "failsafe" in warning.message
    assert len(result.templates) == 1


def test_substituted_fields_are_left_for_expansion_and_the_rest_checked_now() -> None:
    """A name made from a label cannot be judged before the label is known."""
    text = ISOLATION.replace("name: np-default", "name: \"np-${labels['team']}\"")
    result = load(text)
    assert errors(result) == []
    (template,) = result.templates
    assert isinstance(template, NamespacePolicyTemplate)
    assert template.labels_used == ("field.cattle.io/projectId", "team")


# --- the substitution language -----------------------------------------------------------


def test_placeholders_and_fill() -> None:
    text = "ns=${namespace} p=${labels['field.cattle.io/projectId']} q=${ labels[\"a\"] }"
    assert [p.label for p in placeholders(text)] == ["", "field.cattle.io/projectId", "a"]
    labels = {"field.cattle.io/projectId": "p-1", "a": "b"}
    assert fill(text, namespace="shop", labels=labels) == "ns=shop p=p-1 q=b"
    assert fill("$ {no} $5", namespace="x", labels={}) == "$ {no} $5"


@pytest.mark.parametrize(
    "text", ["${labels}", "${labels[a]}", "${Namespace}", "${env.HOME}", "${", "${labels['']}"]
)
def test_unknown_or_malformed_substitutions_raise(text: str) -> None:
    with pytest.raises(SubstitutionError):
        placeholders(text)


def test_fill_body_fills_values_and_never_keys() -> None:
    body = {"${namespace}": ["${namespace}", 3, {"k": "${labels['a']}"}]}
    assert fill_body(body, namespace="n", labels={"a": "v"}) == {
        "${namespace}": ["n", 3, {"k": "v"}]
    }
