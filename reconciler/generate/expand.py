"""Templates x live Nodes/Namespaces -> Resources, validated like files from Git.

Pure: the caller reads the Nodes and Namespaces (one LIST each, only for kinds some
template needs) and hands them in. A generated object goes through the same validation,
plan, apply and prune as a file's; its Origin names the template's file:line and the
Node or Namespace it was made for. A generated object whose name another object (from a
file or another template) already has is an error naming both.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from reconciler import kinds
from reconciler.generate.autohep import AutoHostEndpoints, doubled
from reconciler.generate.hostendpoints import host_endpoints
from reconciler.generate.inventory import Namespace, Needs, Node, needs
from reconciler.generate.namespaced import namespace_policies
from reconciler.manifests.templates import HostEndpointTemplate, Template
from reconciler.manifests.validate import validate_resource
from reconciler.model import Finding, Resource, Severity


@dataclass(frozen=True, slots=True)
class Expanded:
    resources: tuple[Resource, ...]  # template order, then node/namespace order
    findings: tuple[Finding, ...]


def expand(
    templates: Iterable[Template],
    *,
    nodes: Sequence[Node] = (),
    namespaces: Sequence[Namespace] = (),
    auto: AutoHostEndpoints | None = None,
) -> Expanded:
    """Every template over the given inventory; `auto`: Calico's automatic host endpoints."""
    resources: list[Resource] = []
    findings: list[Finding] = []
    for template in templates:
        made, found = _one(template, nodes, namespaces)
        resources += made
        findings += found
        findings += (f for r in made for f in validate_resource(r, lines=template.lines))
    if auto is not None:
        heps = [t for t in templates if isinstance(t, HostEndpointTemplate)]
        findings += doubled(heps, nodes, auto)
    return Expanded(tuple(resources), tuple(findings))


def _one(
    template: Template, nodes: Sequence[Node], namespaces: Sequence[Namespace]
) -> tuple[list[Resource], list[Finding]]:
    if isinstance(template, HostEndpointTemplate):
        return host_endpoints(template, nodes)
    return namespace_policies(template, namespaces)


def merge(
    files: Sequence[Resource], generated: Sequence[Resource]
) -> tuple[tuple[Resource, ...], tuple[Finding, ...]]:
    """Files' objects, then the generated ones that name no object already taken."""
    taken = {kinds.identity(r.ref): r for r in files}
    kept: list[Resource] = []
    findings: list[Finding] = []
    for res in generated:
        other = taken.setdefault(kinds.identity(res.ref), res)
        if other is res:
            kept.append(res)
            continue
        message = f"generated {res.ref} collides with the same object from {other.origin}"
        findings.append(Finding(Severity.ERROR, message, res.origin, res.ref))
    return (*files, *kept), tuple(findings)


def unexpanded(templates: Iterable[Template], given: Needs) -> list[Finding]:
    """A note for each template whose inventory was not given (e.g. `plan --offline`)."""
    return [_unexpanded(t) for t in templates if not _given(t, given)]


def _given(template: Template, given: Needs) -> bool:
    want = needs([template])
    return (given.nodes or not want.nodes) and (given.namespaces or not want.namespaces)


def _unexpanded(template: Template) -> Finding:
    what = "Nodes" if isinstance(template, HostEndpointTemplate) else "Namespaces"
    message = (
        f"not expanded: a template needs the cluster's live {what}; plan against a cluster, "
        "or pass --inventory (the output of "
        "`kubectl get nodes,namespaces,pods,serviceaccounts -o yaml`)"
    )
    return Finding(Severity.WARNING, message, template.origin, template.ref)
