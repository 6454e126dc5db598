"""NamespacePolicyTemplate x Namespaces -> one policy per matching Namespace."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from reconciler.generate.common import TEMPLATE_ANNOTATION, generated_origin, named
from reconciler.generate.inventory import Namespace
from reconciler.manifests.templates import NamespacePolicyTemplate, stamp
from reconciler.model import Finding, Resource, Severity


def namespace_policies(
    template: NamespacePolicyTemplate, namespaces: Iterable[Namespace]
) -> tuple[list[Resource], list[Finding]]:
    """A namespace being deleted gets nothing new (the API server would refuse it). One
    lacking a label the substitutions read is skipped with a warning, not an error: one
    namespace someone else labels must not stop the firewall of the whole cluster."""
    selector = template.namespace_selector
    matching = [ns for ns in namespaces if not ns.terminating and selector.matches(ns.labels)]
    ready = [ns for ns in matching if not _missing(template, ns)]
    lacking = [ns for ns in matching if _missing(template, ns)]
    findings = [_lacking(template, lacking)] if lacking else []
    return [namespace_policy(template, ns) for ns in ready], findings


def namespace_policy(template: NamespacePolicyTemplate, namespace: Namespace) -> Resource:
    origin = generated_origin(template.origin, template.ref, f"Namespace/{namespace.name}")
    res = stamp(template.body, namespace=namespace.name, labels=namespace.labels, origin=origin)
    meta = dict(res.body["metadata"])
    annotations = {**(meta.get("annotations") or {}), TEMPLATE_ANNOTATION: str(template.ref)}
    meta["annotations"] = annotations
    return Resource(res.ref, {**res.body, "metadata": meta}, origin)


def _missing(template: NamespacePolicyTemplate, namespace: Namespace) -> tuple[str, ...]:
    return tuple(k for k in template.labels_used if k not in namespace.labels)


def _lacking(template: NamespacePolicyTemplate, namespaces: Sequence[Namespace]) -> Finding:
    keys = sorted({k for ns in namespaces for k in _missing(template, ns)})
    has = " && ".join(f"has({k})" for k in keys)
    message = (
        f"{len(namespaces)} matching namespace(s) lack the label(s) {', '.join(keys)} that "
        f"the template reads, so they get no object: {named([ns.name for ns in namespaces])}; "
        f"add {has} to namespaceSelector to skip them on purpose"
    )
    return Finding(Severity.WARNING, message, template.origin, template.ref)
