"""Calico's automatic host endpoints next to a HostEndpointTemplate: warn about doubles.

calico.md: with KubeControllersConfiguration `default` `spec.controllers.node.hostEndpoint.
autoCreate: Enabled`, kube-controllers gives every Node `<node>-auto-hep` (interface `*`,
profile projectcalico-default-allow, all Node labels) unless `createDefaultHostEndpoint` is
Disabled; from 3.30 its `templates` add endpoints for the nodes their nodeSelector matches.
A node with two all-interfaces endpoints carrying different labels gets the union of two
sets of policies, and which traffic that allows is not something to find out in production.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.generate.common import named
from reconciler.generate.inventory import Node
from reconciler.manifests.selector import Selector, SelectorError, parse_selector
from reconciler.manifests.templates import HostEndpointTemplate
from reconciler.model import Finding, Severity

ENABLED = "Enabled"
DISABLED = "Disabled"


@dataclass(frozen=True, slots=True)
class AutoHostEndpoints:
    """Which nodes kube-controllers gives an automatic host endpoint, and who said so."""

    source: str  # "KubeControllersConfiguration/default in the cluster", or a file:line
    every_node: bool  # the default <node>-auto-hep
    selectors: tuple[Selector, ...] = ()  # nodeSelectors of its templates (3.30+)

    def covers(self, node: Node) -> bool:
        return self.every_node or any(s.matches(node.labels) for s in self.selectors)


def auto_host_endpoints(body: Mapping[str, Any] | None, *, source: str) -> AutoHostEndpoints | None:
    """From a KubeControllersConfiguration body (either Calico flavour); None when off."""
    settings = _dig(body or {}, "spec", "controllers", "node", "hostEndpoint")
    if settings.get("autoCreate") != ENABLED:
        return None
    every = settings.get("createDefaultHostEndpoint", ENABLED) != DISABLED
    templates = [t for t in settings.get("templates") or () if isinstance(t, Mapping)]
    return AutoHostEndpoints(source, every, tuple(_selector(t) for t in templates))


def _dig(value: Mapping[str, Any], *path: str) -> Mapping[str, Any]:
    for key in path:
        found = value.get(key)
        value = found if isinstance(found, Mapping) else {}
    return value


def _selector(template: Mapping[str, Any]) -> Selector:
    try:
        return parse_selector(str(template.get("nodeSelector") or ""))
    except SelectorError:
        return parse_selector("")  # kube-controllers' own problem; assume the worst: all


def doubled(
    templates: Iterable[HostEndpointTemplate], nodes: Sequence[Node], auto: AutoHostEndpoints
) -> list[Finding]:
    """A warning per all-interfaces template that shares nodes with automatic endpoints."""
    findings = []
    for template in templates:
        if template.interface_name != "*":
            continue
        mine = (n for n in nodes if template.node_selector.matches(n.labels))
        both = [n.name for n in mine if auto.covers(n)]
        if both:
            findings.append(_warning(template, both, auto))
    return findings


def _warning(
    template: HostEndpointTemplate, nodes: Sequence[str], auto: AutoHostEndpoints
) -> Finding:
    message = (
        f"Calico's automatic host endpoints are enabled ({auto.source}) for {len(nodes)} "
        f"node(s) this template also gives an all-interfaces endpoint, so each gets two with "
        f"different labels and policies: {named(nodes)}; use one or the other"
    )
    return Finding(Severity.WARNING, message, template.origin, template.ref)
