"""Repo directory -> typed Resources, with every problem as a Finding (never an exception).

Order is stable: files by relative path, then documents in file order. A `kind: List` is
unpacked into its items (what `kubectl get -o yaml` writes). Resources that fail validation
are still returned, so reports can show them; `LoadResult.ok` says whether to use them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler import kinds
from reconciler.manifests.conncheck import ConnectivityCheck, is_check, parse_check
from reconciler.manifests.fieldpath import FieldPath, format_path, line_for, split_list
from reconciler.manifests.files import SourceFile, find_yaml_files, read_text
from reconciler.manifests.templates import Template, is_template, parse_template
from reconciler.manifests.validate import validate_resource
from reconciler.manifests.yamlsafe import DEFAULT_LIMITS, Document, Limits, Parsed, parse_yaml
from reconciler.model import Finding, ObjectRef, Origin, Resource, Severity

_LIST_KIND = "List"


@dataclass(frozen=True, slots=True)
class LoadResult:
    resources: tuple[Resource, ...]  # sorted path, then document order; duplicates dropped
    findings: tuple[Finding, ...]  # every error and warning, in the same order
    templates: tuple[Template, ...] = ()  # valid templates only; expanded later (generate/)
    checks: tuple[ConnectivityCheck, ...] = ()  # valid ConnectivityChecks only

    @property
    def ok(self) -> bool:
        return not any(f.severity is Severity.ERROR for f in self.findings)


@dataclass(slots=True)
class _Collected:
    resources: list[Resource] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    templates: list[Template] = field(default_factory=list)
    checks: list[ConnectivityCheck] = field(default_factory=list)


def load_dir(
    root: Path, *, default_namespace: str = "", limits: Limits = DEFAULT_LIMITS
) -> LoadResult:
    """Every object in every `*.yaml`/`*.yml` under `root`. No YAML at all is no error."""
    try:
        found = find_yaml_files(root)
    except Exception as err:  # e.g. an entry vanishing mid-walk: a finding, never a raise
        return LoadResult((), (_error(Origin(str(root)), f"cannot walk the repo: {err!r}"),))
    out = _Collected(findings=list(found.findings))
    for source in found.files:
        try:
            _load_file(source, out, default_namespace=default_namespace, limits=limits)
        except Exception as err:  # a bug here must not take the reconciler down
            out.findings.append(_error(Origin(source.rel), f"internal error reading file: {err!r}"))
    return _result(out)


def load_text(
    text: str, *, path: str, default_namespace: str = "", limits: Limits = DEFAULT_LIMITS
) -> LoadResult:
    """The same rules on one file's text (tests, stdin); `path` names it in findings."""
    out = _Collected()
    try:
        _load_parsed(parse_yaml(text, path=path, limits=limits), path, out, default_namespace)
    except Exception as err:  # as in load_dir: a finding, never an exception
        out.findings.append(_error(Origin(path), f"internal error reading text: {err!r}"))
    return _result(out)


def _load_file(
    source: SourceFile, out: _Collected, *, default_namespace: str, limits: Limits
) -> None:
    text, problem = read_text(source, max_bytes=limits.max_bytes)
    if problem:
        out.findings.append(problem)
        return
    parsed = parse_yaml(text, path=source.rel, limits=limits)
    _load_parsed(parsed, source.rel, out, default_namespace)


def _load_parsed(parsed: Parsed, path: str, out: _Collected, default_namespace: str) -> None:
    out.findings.extend(parsed.findings)
    for found in _objects(parsed.documents, path, out.findings):
        doc = _nulls_absent(found, path, out.findings)
        if is_check(doc.value):
            _load_check(doc, path, out)
            continue
        if is_template(doc.value):
            _load_template(doc, path, out)
            continue
        res = _to_resource(doc, path, out.findings, default_namespace)
        if res is not None:
            out.resources.append(res)
            out.findings.extend(validate_resource(res, lines=doc.lines))


def _nulls_absent(doc: Document, path: str, findings: list[Finding]) -> Document:
    """`key:` left empty (null) means absent, as calicoctl and the API server read it: the
    Calico docs and Rancher's isolation articles write `selector:` and `ingress:` so."""
    if not isinstance(doc.value, dict) or not doc.has_null:
        return doc
    nulls: list[FieldPath] = []
    value = _drop_nulls(doc.value, (), nulls)
    if nulls:
        fields = ", ".join(format_path(p) for p in nulls)
        message = f"empty (null) fields read as absent: {fields}"
        findings.append(Finding(Severity.WARNING, message, Origin(path, _line_of(doc, nulls[0]))))
    return Document(value, doc.line, doc.lines, has_null=False)


def _drop_nulls(value: Any, at: FieldPath, nulls: list[FieldPath]) -> Any:
    if isinstance(value, dict):
        kept = {}
        for key, child in value.items():
            if child is None:
                nulls.append((*at, key))
            else:
                kept[key] = _drop_nulls(child, (*at, key), nulls)
        return kept
    if isinstance(value, list):
        return [_drop_nulls(child, (*at, i), nulls) for i, child in enumerate(value)]
    return value


def _line_of(doc: Document, at: FieldPath) -> int:
    return line_for(doc.lines, at) or doc.line


def _load_template(doc: Document, path: str, out: _Collected) -> None:
    template, findings = parse_template(doc.value, path=path, line=doc.line, lines=doc.lines)
    out.findings.extend(findings)
    if template is not None:
        out.templates.append(template)


def _load_check(doc: Document, path: str, out: _Collected) -> None:
    check, findings = parse_check(doc.value, path=path, line=doc.line, lines=doc.lines)
    out.findings.extend(findings)
    if check is not None:
        out.checks.append(check)


def _objects(docs: Iterable[Document], path: str, findings: list[Finding]) -> Iterator[Document]:
    """Non-empty documents, with each `kind: List` replaced by its items."""
    for doc in docs:
        if doc.value is None:
            continue
        if not isinstance(doc.value, dict) or doc.value.get("kind") != _LIST_KIND:
            yield doc
            continue
        items = doc.value.get("items")
        if not isinstance(items, list):
            findings.append(_at(doc, path, ("items",), "a List needs a list of items"))
            continue
        lines = split_list(doc.lines, "items")
        for index, item in enumerate(items):
            line = line_for(doc.lines, ("items", index))
            yield Document(item, line, lines.get(index, {}))


def _at(doc: Document, path: str, at: FieldPath, message: str) -> Finding:
    return _error(Origin(path, line_for(doc.lines, at) or doc.line), message)


def _error(origin: Origin, message: str) -> Finding:
    return Finding(Severity.ERROR, message, origin)


def _to_resource(
    doc: Document, path: str, findings: list[Finding], default_namespace: str
) -> Resource | None:
    """The document as a Resource, or None (and a finding) when it names no allowed object."""
    body = doc.value
    if not isinstance(body, dict):
        findings.append(_at(doc, path, (), "a document must be a Kubernetes object (a map)"))
        return None
    kind = _allowed_kind(doc, path, findings)
    if kind is None:
        return None
    name = _meta(body, "name")
    if not isinstance(name, str) or not name:
        findings.append(_at(doc, path, ("metadata", "name"), "metadata.name is missing"))
        return None
    body = _with_namespace(body, kind, default_namespace)
    namespace = _meta(body, "namespace")
    scoped = namespace if kind.namespaced and isinstance(namespace, str) else ""
    api_version = body["apiVersion"]
    group, version = kinds.group_of(api_version), kinds.version_of(api_version)
    return Resource(
        ObjectRef(group, version, kind.kind, scoped, name), body, Origin(path, doc.line)
    )


def _allowed_kind(doc: Document, path: str, findings: list[Finding]) -> kinds.KindSpec | None:
    api_version, kind = doc.value.get("apiVersion"), doc.value.get("kind")
    for field_name, value in (("apiVersion", api_version), ("kind", kind)):
        if not isinstance(value, str) or not value:
            findings.append(_at(doc, path, (field_name,), f"{field_name} is missing"))
    if not isinstance(api_version, str) or not isinstance(kind, str) or not kind:
        return None
    spec = kinds.spec_for(api_version, kind)
    if spec is None:
        what = f"{kind} ({api_version}) is not allowed in a policy repo"
        findings.append(_at(doc, path, ("kind",), f"{what}; allowed: {kinds.allowed_list()}"))
    return spec


def _with_namespace(body: dict[str, Any], kind: kinds.KindSpec, default: str) -> dict[str, Any]:
    """A namespaced object without a namespace gets the default one, if there is one."""
    if kind.namespaced and not _meta(body, "namespace") and default:
        return {**body, "metadata": {**body["metadata"], "namespace": default}}
    return body


def _meta(body: dict[str, Any], key: str) -> Any:
    meta = body.get("metadata")
    return meta.get(key) if isinstance(meta, dict) else None


def _deduplicated(resources: list[Resource], findings: list[Finding]) -> list[Resource]:
    first: dict[tuple[str, str, str, str], Resource] = {}
    for res in resources:
        other = first.setdefault(kinds.identity(res.ref), res)
        if other is res:
            continue
        same = other.ref.api_version == res.ref.api_version
        note = "" if same else f" ({other.ref.api_version} and {res.ref.api_version} alike)"
        message = f"{res.ref} is defined twice{note}: also at {other.origin}"
        findings.append(Finding(Severity.ERROR, message, res.origin, res.ref))
    return list(first.values())


def _unique_templates(
    templates: list[Template] | list[ConnectivityCheck], findings: list[Finding]
) -> list[Any]:
    first: dict[ObjectRef, Template | ConnectivityCheck] = {}
    for template in templates:
        other = first.setdefault(template.ref, template)
        if other is not template:
            message = f"{template.ref} is defined twice: also at {other.origin}"
            findings.append(Finding(Severity.ERROR, message, template.origin, template.ref))
    return list(first.values())


def _result(out: _Collected) -> LoadResult:
    resources = _deduplicated(out.resources, out.findings)
    templates = _unique_templates(out.templates, out.findings)
    checks = _unique_templates(out.checks, out.findings)
    findings = sorted(out.findings, key=_place)  # stable: same place keeps walk order
    return LoadResult(tuple(resources), tuple(findings), tuple(templates), tuple(checks))


def _place(finding: Finding) -> tuple[str, int]:
    origin = finding.origin
    return (origin.path, origin.line) if origin else ("", 0)
