"""HostEndpointTemplate x Nodes -> one HostEndpoint per matching Node."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from reconciler import kinds
from reconciler.generate.common import TEMPLATE_ANNOTATION, generated_origin, named
from reconciler.generate.inventory import Node
from reconciler.generate.naming import joined_name
from reconciler.manifests.templates import HostEndpointTemplate
from reconciler.model import Finding, ObjectRef, Resource, Severity


def host_endpoints(
    template: HostEndpointTemplate, nodes: Iterable[Node]
) -> tuple[list[Resource], list[Finding]]:
    matching = [n for n in nodes if template.node_selector.matches(n.labels)]
    resources = [host_endpoint(template, n) for n in matching]
    bare = [n.name for n in matching if template.address_types and not expected_ips(template, n)]
    return resources, [_no_addresses(template, bare)] if bare else []


def host_endpoint(template: HostEndpointTemplate, node: Node) -> Resource:
    name = joined_name(node.name, template.ref.name)
    spec: dict[str, Any] = {"node": node.name, "interfaceName": template.interface_name}
    ips = expected_ips(template, node)
    if ips:
        spec["expectedIPs"] = ips
    if template.profiles:
        spec["profiles"] = list(template.profiles)
    metadata: dict[str, Any] = {
        "name": name,
        "annotations": {TEMPLATE_ANNOTATION: str(template.ref)},
    }
    labels = endpoint_labels(template, node.labels)
    if labels:
        metadata["labels"] = labels
    body = {"apiVersion": f"{kinds.CALICO_V3}/v3", "kind": "HostEndpoint", "metadata": metadata}
    ref = ObjectRef(kinds.CALICO_V3, "v3", "HostEndpoint", "", name)
    origin = generated_origin(template.origin, template.ref, f"Node/{node.name}")
    return Resource(ref, {**body, "spec": spec}, origin)


def endpoint_labels(
    template: HostEndpointTemplate, node_labels: Mapping[str, str]
) -> dict[str, str]:
    """Node labels copied by key or prefix, then the template's own (which win: policies
    select on them, and whoever may label a Node must not be able to unset them)."""
    prefixes = template.copy_label_prefixes
    copied = {
        k: v for k, v in node_labels.items() if k in template.copy_labels or k.startswith(prefixes)
    }
    return {**copied, **template.labels}


def expected_ips(template: HostEndpointTemplate, node: Node) -> list[str]:
    """The node's addresses of the template's types, in the template's type order."""
    found = [a for t in template.address_types for kind, a in node.addresses if kind == t]
    return list(dict.fromkeys(found))


def _no_addresses(template: HostEndpointTemplate, nodes: Sequence[str]) -> Finding:
    types = ", ".join(template.address_types)
    message = (
        f"{len(nodes)} matching node(s) report no {types} address yet, so their host "
        f"endpoints have no expectedIPs: {named(nodes)}"
    )
    return Finding(Severity.WARNING, message, template.origin, template.ref)
