"""Validation of one Resource as the user wrote it: envelope, metadata, spec, and warnings.

Used by the loader (with the line of every field) and for objects generated from templates
(without lines: findings then point at the template's origin).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from reconciler import kinds
from reconciler.manifests import checks as c
from reconciler.manifests.fieldpath import LineMap, format_path, line_for
from reconciler.manifests.schema import Issue, unknown_field, walk
from reconciler.manifests.specs import ANNOTATIONS, CALICO, LABELS, NAME_CHECKS, SPECS, family_of
from reconciler.model import Body, Finding, Resource, Severity

_TOP_LEVEL = ("apiVersion", "kind", "metadata", "spec")
_METADATA = ("name", "namespace", "labels", "annotations")
_WHY_NOT_IN_METADATA = {
    "generateName": "an object needs a fixed name to be updated and pruned",
    "ownerReferences": "Kubernetes would delete the firewall object with its owner",
    "finalizers": "a finalizer can block the object's deletion",
}
_SET_BY_SERVER = "it is set by the API server (copied from `kubectl get -o yaml`?)"
_ANNOTATIONS_MAX_BYTES = 256 * 1024  # ValidateAnnotationsSize, and Calico's own limit
_NAMESPACE_LABEL = "projectcalico.org/namespace"  # reserved on network sets (validator.go)
_DEFAULT_TIER_ORDER = 1_000_000  # validateTier: the default tier must keep this order


def validate_resource(res: Resource, *, lines: LineMap | None = None) -> list[Finding]:
    """Every error and warning for `res`; `lines` maps field paths to lines of its file."""
    return [_finding(res, issue, lines) for issue in resource_issues(res)]


def _finding(res: Resource, issue: Issue, lines: LineMap | None) -> Finding:
    line = line_for(lines, issue.path) if lines else 0
    origin = dataclasses.replace(res.origin, line=line) if line else res.origin
    return Finding(issue.severity, issue.message, origin, res.ref, format_path(issue.path))


def resource_issues(res: Resource) -> Iterator[Issue]:
    ref = res.ref
    kind = kinds.spec_for(ref.api_version, ref.kind)
    if kind is None:
        allowed = kinds.allowed_list()
        yield Issue(("kind",), f"{ref.kind} ({ref.api_version}) is not allowed; allowed: {allowed}")
        return
    key = (family_of(ref.group), ref.kind)
    yield from _top_level(res.body)
    yield from _metadata(res.body.get("metadata"), kind, key)
    spec = res.body.get("spec")
    yield from walk(SPECS[key], {} if spec is None else spec, ("spec",))
    for check in _RESOURCE_CHECKS.get(key, ()):
        yield from check(res.body)


def _top_level(body: Body) -> Iterator[Issue]:
    for key in body:
        if key == "status":
            yield Issue(("status",), "status is written by the cluster, not by Git: remove it")
        elif key not in _TOP_LEVEL:
            yield Issue((key,), unknown_field(key, _TOP_LEVEL))


def _metadata(meta: Any, kind: kinds.KindSpec, key: tuple[str, str]) -> Iterator[Issue]:
    if not isinstance(meta, Mapping):
        yield Issue(("metadata",), "metadata must be a map holding at least name")
        return
    for field in meta:
        if field not in _METADATA:
            why = _WHY_NOT_IN_METADATA.get(field, _SET_BY_SERVER)
            only = ", ".join(_METADATA)
            yield Issue(("metadata", field), f"not allowed here ({why}); metadata holds {only}")
    yield from _name(meta.get("name"), NAME_CHECKS.get(key, c.dns_subdomain))
    yield from _namespace(meta.get("namespace"), kind)
    yield from walk(LABELS, meta.get("labels"), ("metadata", "labels"))
    yield from walk(ANNOTATIONS, meta.get("annotations"), ("metadata", "annotations"))
    yield from _annotations_size(meta.get("annotations"))


def _name(name: Any, check: Callable[[str], str | None]) -> Iterator[Issue]:
    at = ("metadata", "name")
    if not isinstance(name, str) or not name:
        yield Issue(at, "metadata.name must be a non-empty string")
        return
    problem = check(name)
    if problem:
        yield Issue(at, problem)


def _namespace(namespace: Any, kind: kinds.KindSpec) -> Iterator[Issue]:
    at = ("metadata", "namespace")
    if not kind.namespaced:
        if namespace not in (None, ""):
            yield Issue(at, f"{kind.kind} is cluster-scoped: remove metadata.namespace")
    elif namespace in (None, ""):
        yield Issue(at, f"{kind.kind} is namespaced: set metadata.namespace")
    elif not isinstance(namespace, str):
        yield Issue(at, "metadata.namespace must be a string")
    else:
        problem = c.dns_label(namespace)
        if problem:
            yield Issue(at, problem)


def _annotations_size(annotations: Any) -> Iterator[Issue]:
    if not isinstance(annotations, Mapping):
        return
    size = sum(len(str(k)) + len(str(v)) for k, v in annotations.items())
    if size > _ANNOTATIONS_MAX_BYTES:
        message = f"annotations hold {size} bytes; the limit is {_ANNOTATIONS_MAX_BYTES}"
        yield Issue(("metadata", "annotations"), message)


# --- checks that need more than the spec -------------------------------------------------


def _spec(body: Body) -> Mapping[str, Any]:
    spec = body.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def _meta(body: Body, field: str) -> Any:
    meta = body.get("metadata")
    return meta.get(field) if isinstance(meta, Mapping) else None


def _default_tier_order(body: Body) -> Iterator[Issue]:
    # An unset order is "infinite": through the v1 CRDs the default tier would go last.
    order = _spec(body).get("order")
    if _meta(body, "name") == "default" and order != _DEFAULT_TIER_ORDER:
        message = f"the default tier's order must be {_DEFAULT_TIER_ORDER}"
        yield Issue(("spec", "order"), message)


def _no_namespace_label(body: Body) -> Iterator[Issue]:
    labels = _meta(body, "labels")
    if isinstance(labels, Mapping) and _NAMESPACE_LABEL in labels:
        message = f"label {_NAMESPACE_LABEL} is reserved for Calico"
        yield Issue(("metadata", "labels", _NAMESPACE_LABEL), message)


def _warning(path: tuple[str, ...], message: str) -> Issue:
    return Issue(path, message, Severity.WARNING)


_HOST_ONLY = ("preDNAT", "doNotTrack", "applyOnForward")  # they act on host endpoints only


def _host_flags_on_pods(body: Body) -> Iterator[Issue]:
    """calico.md: a top-level namespace or service-account selector never matches a host.

    That is a fine way to keep a pod policy off the nodes (example-repo does), so it only
    warns when the policy also asks for host-only behaviour, which then never happens.
    """
    spec = _spec(body)
    flags = [flag for flag in _HOST_ONLY if spec.get(flag) is True]
    for field in ("namespaceSelector", "serviceAccountSelector"):
        if flags and spec.get(field):
            message = (
                f"a top-level {field} means this policy never selects a host endpoint, "
                f"so {', '.join(flags)} (host endpoints only) has no effect"
            )
            yield _warning(("spec", field), message)


def _log_only(body: Body) -> Iterator[Issue]:
    """Calico issue #4673: a policy whose only rules are Log locked out an API server."""
    spec = _spec(body)
    rules = [r for d in ("ingress", "egress") for r in _list(spec.get(d)) if isinstance(r, Mapping)]
    if rules and all(r.get("action") == "Log" for r in rules):
        yield _warning(
            ("spec",),
            "every rule is Log, so this policy allows nothing: what it selects gets the "
            "tier's default deny unless another policy in the tier allows it",
        )


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _named_default(body: Body) -> Iterator[Issue]:
    if _meta(body, "name") != "default":
        message = "kube-controllers reads only the KubeControllersConfiguration named 'default'"
        yield _warning(("metadata", "name"), message + ": this one has no effect")


_RESOURCE_CHECKS: dict[tuple[str, str], tuple[Callable[[Body], Iterator[Issue]], ...]] = {
    (CALICO, "Tier"): (_default_tier_order,),
    (CALICO, "GlobalNetworkSet"): (_no_namespace_label,),
    (CALICO, "NetworkSet"): (_no_namespace_label,),
    (CALICO, "GlobalNetworkPolicy"): (_host_flags_on_pods, _log_only),
    (CALICO, "NetworkPolicy"): (_log_only,),
    (CALICO, "KubeControllersConfiguration"): (_named_default,),
}
