"""Template kinds (policy-reconciler.io/v1alpha1): repo-only objects expanded over live Nodes
and Namespaces by `generate/`. They are never installed in the cluster.

Everything that can be checked without the cluster is checked here, at load: the schema, the
selectors, the kind a NamespacePolicyTemplate stamps out, its substitutions, and the stamped
object itself (validated with sample values). So a bad template is an error with file:line
even when nothing matches it yet, and even offline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler import kinds
from reconciler.manifests import checks as c
from reconciler.manifests.fieldpath import FieldPath, LineMap, format_path, line_for
from reconciler.manifests.schema import STRING, Dict, Issue, Node, Obj, Scalar, Seq, unique_items
from reconciler.manifests.schema import walk as walk_schema
from reconciler.manifests.selector import Selector, parse_selector
from reconciler.manifests.specs import ANNOTATIONS, LABELS
from reconciler.manifests.substitution import (
    Placeholder,
    SubstitutionError,
    fill_body,
    placeholders,
)
from reconciler.manifests.validate import resource_issues
from reconciler.model import Finding, ObjectRef, Origin, Resource, Severity

HOST_ENDPOINT_TEMPLATE, NAMESPACE_POLICY_TEMPLATE = kinds.TEMPLATE_KINDS
ADDRESS_TYPES = ("InternalIP", "ExternalIP")  # the Node address types that hold an IP
DEFAULT_ADDRESS_TYPES = ("InternalIP",)
# What a NamespacePolicyTemplate may stamp out, as (apiVersion, kind).
POLICY_KINDS = frozenset(
    {
        (f"{kinds.K8S_NETWORKING}/v1", "NetworkPolicy"),
        (f"{kinds.CALICO_V3}/v3", "NetworkPolicy"),
    }
)
TEMPLATE_ROOT: FieldPath = ("spec", "template")
_PROBE_NAMESPACE = "namespace"  # sample values for validating a template before expansion
_PROBE_LABEL = "value"


@dataclass(frozen=True, slots=True)
class HostEndpointTemplate:
    """One HostEndpoint per matching Node, named `<node>-<template>`."""

    ref: ObjectRef  # policy-reconciler.io/v1alpha1 HostEndpointTemplate/<name>
    origin: Origin
    node_selector: Selector
    interface_name: str = "*"
    address_types: tuple[str, ...] = DEFAULT_ADDRESS_TYPES
    labels: Mapping[str, str] = field(default_factory=dict)
    copy_labels: frozenset[str] = frozenset()
    copy_label_prefixes: tuple[str, ...] = ()
    profiles: tuple[str, ...] = ()
    lines: LineMap = field(default_factory=dict)  # generated object's field -> template line


@dataclass(frozen=True, slots=True)
class NamespacePolicyTemplate:
    """One policy per matching Namespace: `body` with its substitutions filled in."""

    ref: ObjectRef
    origin: Origin
    namespace_selector: Selector
    body: Mapping[str, Any]  # spec.template as written
    labels_used: tuple[str, ...]  # label keys its substitutions read, sorted
    lines: LineMap = field(default_factory=dict)


Template = HostEndpointTemplate | NamespacePolicyTemplate


def is_template(value: Any) -> bool:
    return isinstance(value, dict) and value.get("apiVersion") == kinds.TEMPLATE_API_VERSION


def parse_template(
    value: Mapping[str, Any], *, path: str, line: int, lines: LineMap
) -> tuple[Template | None, list[Finding]]:
    """The typed template, or None when it has errors; every problem as a Finding."""
    origin = Origin(path, line)
    kind, meta = value.get("kind"), value.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else ""
    ref = ObjectRef("policy-reconciler.io", "v1alpha1", str(kind), "", str(name or ""))
    build = _BUILDERS.get(str(kind))
    if build is None:
        issue = Issue(("kind",), f"{kind!r} is not a template kind; templates: {_known()}")
        return None, [_finding(issue, ref, origin, lines)]
    issues = list(walk_schema(_DOCUMENTS[str(kind)], dict(value)))
    template = None
    if not _has_error(issues):
        template, more = build(value, ref, origin, lines)
        issues += more
    findings = [_finding(i, ref, origin, lines) for i in issues]
    return (None if _has_error(issues) else template), findings


def _known() -> str:
    return f"{kinds.TEMPLATE_API_VERSION} {', '.join(kinds.TEMPLATE_KINDS)}"


def _has_error(issues: list[Issue]) -> bool:
    return any(i.severity is Severity.ERROR for i in issues)


def _finding(issue: Issue, ref: ObjectRef, origin: Origin, lines: LineMap) -> Finding:
    at = Origin(origin.path, line_for(lines, issue.path) or origin.line)
    return Finding(issue.severity, issue.message, at, ref, format_path(issue.path))


# --- schema ------------------------------------------------------------------------------


def _str(check: Callable[[Any], str | None] | None = None) -> Scalar:
    return Scalar(STRING, check)


def _prefix(value: str) -> str | None:
    return None if value else "a label key prefix cannot be empty"


_ANY = Scalar(frozenset({"string", "integer", "number", "boolean", "object", "array"}))
_METADATA = Obj(
    {"name": _str(c.dns_subdomain), "labels": LABELS, "annotations": ANNOTATIONS},
    required=frozenset({"name"}),
)
_HOST_ENDPOINT_SPEC = Obj(
    {
        "nodeSelector": _str(c.selector),
        "interfaceName": _str(c.interface_name),
        "addressTypes": Seq(_str(c.one_of(*ADDRESS_TYPES, what="address type")), unique_items),
        "labels": LABELS,
        "copyLabels": Seq(_str(c.qualified_name), unique_items),
        "copyLabelPrefixes": Seq(_str(_prefix), unique_items),
        "profiles": Seq(_str(c.dns_subdomain), unique_items),
    }
)
_STAMPED = Obj(  # the object a NamespacePolicyTemplate stamps out; its body is checked apart
    {
        "apiVersion": _str(),
        "kind": _str(),
        "metadata": Dict(None, _ANY),
        "spec": Dict(None, _ANY),
    },
    required=frozenset({"apiVersion", "kind", "metadata"}),
)
_NAMESPACE_POLICY_SPEC = Obj(
    {"namespaceSelector": _str(c.selector), "template": _STAMPED},
    required=frozenset({"template"}),
)


def _document(spec: Node) -> Obj:
    return Obj(
        {"apiVersion": _str(), "kind": _str(), "metadata": _METADATA, "spec": spec},
        required=frozenset({"metadata", "spec"}),
    )


_DOCUMENTS = {
    HOST_ENDPOINT_TEMPLATE: _document(_HOST_ENDPOINT_SPEC),
    NAMESPACE_POLICY_TEMPLATE: _document(_NAMESPACE_POLICY_SPEC),
}


# --- HostEndpointTemplate ----------------------------------------------------------------

# generated HostEndpoint field -> the template field it comes from (for file:line)
_HOST_ENDPOINT_SOURCES: Mapping[FieldPath, FieldPath] = {
    ("metadata", "name"): ("metadata", "name"),
    ("metadata", "labels"): ("spec", "labels"),
    ("spec", "interfaceName"): ("spec", "interfaceName"),
    ("spec", "expectedIPs"): ("spec", "addressTypes"),
    ("spec", "profiles"): ("spec", "profiles"),
}


def _host_endpoint(
    value: Mapping[str, Any], ref: ObjectRef, origin: Origin, lines: LineMap
) -> tuple[Template, list[Issue]]:
    spec = value["spec"]
    template = HostEndpointTemplate(
        ref=ref,
        origin=origin,
        node_selector=parse_selector(spec.get("nodeSelector") or ""),
        interface_name=spec.get("interfaceName") or "*",
        address_types=_address_types(spec.get("addressTypes")),
        labels=dict(spec.get("labels") or {}),
        copy_labels=frozenset(spec.get("copyLabels") or ()),
        copy_label_prefixes=tuple(spec.get("copyLabelPrefixes") or ()),
        profiles=tuple(spec.get("profiles") or ()),
        lines={k: line_for(lines, v) or origin.line for k, v in _HOST_ENDPOINT_SOURCES.items()},
    )
    return template, list(_unselectable(spec))


def _address_types(value: list[str] | None) -> tuple[str, ...]:
    return DEFAULT_ADDRESS_TYPES if value is None else tuple(value)  # [] means none


def _unselectable(spec: Mapping[str, Any]) -> Iterator[Issue]:
    """calico.md: a host endpoint no policy selects denies all but the failsafe ports."""
    if not any(spec.get(k) for k in ("labels", "copyLabels", "copyLabelPrefixes", "profiles")):
        yield Issue(
            ("spec",),
            "no labels and no profiles: only policies selecting all() apply to these host "
            "endpoints, and without one each node denies all but Calico's failsafe ports",
            Severity.WARNING,
        )


# --- NamespacePolicyTemplate -------------------------------------------------------------


def _namespace_policy(
    value: Mapping[str, Any], ref: ObjectRef, origin: Origin, lines: LineMap
) -> tuple[Template, list[Issue]]:
    spec = value["spec"]
    body = spec["template"]
    found, issues = _substitutions(body)
    issues += [*_stamped_kind(body), *_stamped_namespace(body)]
    if not _has_error(issues):
        issues += _probe(body, found, origin)
    used = sorted({p.label for ps in found.values() for p in ps if p.label})
    template = NamespacePolicyTemplate(
        ref=ref,
        origin=origin,
        namespace_selector=parse_selector(spec.get("namespaceSelector") or ""),
        body=body,
        labels_used=tuple(used),
        lines=subtree(lines, TEMPLATE_ROOT),
    )
    return template, [Issue((*TEMPLATE_ROOT, *i.path), i.message, i.severity) for i in issues]


def subtree(lines: LineMap, root: FieldPath) -> dict[FieldPath, int]:
    """The lines under `root`, with paths relative to it."""
    size = len(root)
    return {p[size:]: n for p, n in lines.items() if p[:size] == root}


def _stamped_kind(body: Mapping[str, Any]) -> Iterator[Issue]:
    if (body.get("apiVersion"), body.get("kind")) not in POLICY_KINDS:
        allowed = " or ".join(sorted(f"{a} {k}" for a, k in POLICY_KINDS))
        what = f"{body.get('apiVersion')} {body.get('kind')}"
        yield Issue(("kind",), f"a NamespacePolicyTemplate stamps out {allowed}, not {what}")


def _stamped_namespace(body: Mapping[str, Any]) -> Iterator[Issue]:
    namespace = (body.get("metadata") or {}).get("namespace")
    if namespace not in (None, "", "${namespace}"):
        message = "the namespace is filled in for each matching namespace: remove it"
        yield Issue(("metadata", "namespace"), message)


def _substitutions(body: Any) -> tuple[dict[FieldPath, tuple[Placeholder, ...]], list[Issue]]:
    """Every string value's substitutions by path, and an error for each bad one."""
    found: dict[FieldPath, tuple[Placeholder, ...]] = {}
    issues: list[Issue] = []
    for at, text, is_key in _strings(body, ()):
        if is_key:
            issues.append(Issue(at, "substitutions go in values, never in keys"))
            continue
        try:
            found_here = placeholders(text)
        except SubstitutionError as err:
            issues.append(Issue(at, str(err)))
            continue
        if found_here:
            found[at] = found_here
    return found, issues


def _strings(value: Any, at: FieldPath) -> Iterator[tuple[FieldPath, str, bool]]:
    """(path, text, is a key) for every string value, and every key that looks templated."""
    if isinstance(value, str):
        yield at, value, False
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and "${" in key:
                yield (*at, key), key, True
            yield from _strings(item, (*at, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*at, index))


def _probe(
    body: Mapping[str, Any], found: Mapping[FieldPath, tuple[Placeholder, ...]], origin: Origin
) -> list[Issue]:
    """Validate the stamped object with sample values, except the fields substitutions fill
    (those are checked for each namespace on expansion)."""
    labels = {p.label: _PROBE_LABEL for ps in found.values() for p in ps if p.label}
    probe = stamp(body, namespace=_PROBE_NAMESPACE, labels=labels, origin=origin)
    return [i for i in resource_issues(probe) if not _filled(i.path, found)]


def _filled(path: FieldPath, found: Mapping[FieldPath, Any]) -> bool:
    return any(path[: len(at)] == at for at in found)


def stamp(
    body: Mapping[str, Any], *, namespace: str, labels: Mapping[str, str], origin: Origin
) -> Resource:
    """The object for one namespace: substitutions filled in, metadata.namespace set."""
    filled = fill_body(dict(body), namespace=namespace, labels=labels)
    meta = filled.get("metadata")
    filled["metadata"] = {**(meta if isinstance(meta, dict) else {}), "namespace": namespace}
    api_version = str(filled.get("apiVersion", ""))
    ref = ObjectRef(
        kinds.group_of(api_version),
        kinds.version_of(api_version),
        str(filled.get("kind", "")),
        namespace,
        str(filled["metadata"].get("name", "")),
    )
    return Resource(ref, filled, origin)


_BUILDERS: Mapping[
    str,
    Callable[[Mapping[str, Any], ObjectRef, Origin, LineMap], tuple[Template, list[Issue]]],
] = {
    HOST_ENDPOINT_TEMPLATE: _host_endpoint,
    NAMESPACE_POLICY_TEMPLATE: _namespace_policy,
}
