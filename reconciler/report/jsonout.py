"""Machine-readable report: one stable JSON document per plan (and apply result).

Schema, `schemaVersion` 1. Keys are camelCase like Kubernetes. Within a schema
version keys are only ever added, never renamed or removed; every key below is
always present (null or empty when it does not apply).

    {
      "schemaVersion": 1,
      "target": str,                  # cluster/context name, "" when unknown
      "revision": {"id", "path", "author", "subject"},
      "valid": bool,                  # false if any finding is an error: nothing is applied
      "hasChanges": bool,             # some change writes to the cluster
      "counts": {"create", "update", "drift", "unchanged", "prune", "conflict", "adopt",
                 "pruneRefused": int},   # pruneRefused: prunes the prune guard refused
      "changes": [Change],            # every change in apply order, unchanged included
      "findings": [Finding],          # errors first
      "order": {"method", "states": int, "note", "blinks": [str], "kept": [str]},  # (3)
      "checks": [Check],              # every ConnectivityCheck of the repo
      "result": Result | null         # only after an apply
    }
    Ref     = {"ref": "Kind/ns/name", "qualifiedRef": "Kind.group/ns/name", "apiVersion",
               "group", "version", "kind", "namespace", "name"}
               # namespace "" for cluster-scoped kinds; qualifiedRef is how every report
               # names the object (a Calico and a Kubernetes NetworkPolicy differ there)
    Origin  = {"text": "path:line", "path", "line": int, "template", "target"}
    Change  = Ref + {"action", "writes": bool, "transient": bool, "reason",
                     "origin": Origin | null,
                     "diff": [{"path", "before", "after"}],   # null = field absent (1)
                     "patch": [RFC 6902 operation] | null,    # (2)
                     "driftedBy": [{"manager", "operation", "time"}]}
    Finding = {"severity": "error" | "warning", "text", "message", "field",
               "origin": Origin | null, "ref": Ref | null}
    Check   = {"name", "holds": bool, "state", "counterexample", "origin", "skipped": bool,
               "note"}                # state: where it breaks ("after create Kind/name")
    Result  = {"ok": bool, "counts": {"done", "failed", "skipped": int},
               "done": [Ref + {"action"}], "failed": [Ref + {"action", "message"}],
               "skipped": [Ref + {"action"}], "notes": [str]}

(1) A create or prune that the planner gave no field diff lists the object's own
fields instead (labels, annotations, each `spec` field), so every consumer sees
what appears or disappears.
(2) The JSON Patch (RFC 6902, made by `jsonpatch`) that turns the live object's
compared fields, in the planner's normal form, into what Git wants: `[]` when
unchanged, every field added for a create, null for a prune (a deletion is no patch).
Scripts can apply it with any RFC 6902 library.
(3) How the apply order keeps every flow that both the live state and Git allow
(plan/safe.py): "kind order", "reordered", "bridged" (a temporary policy written
first and removed last) or "unchecked"; `blinks` lists what some state would deny,
`kept` what the bridge keeps open.

Diff values never include `metadata.managedFields`, and the value of the
`kubectl.kubernetes.io/last-applied-configuration` annotation is replaced by
"(hidden, sha256:<12 hex digits>)": both are bookkeeping, and the annotation can
hold a whole old object; the digest still shows whether it changed.
This module also owns that scrubbing, and the choice of entries, for the text
and Markdown renderers, so all three formats show the same fields.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

import jsonpatch

from reconciler import FIELD_MANAGER
from reconciler.model import (
    JSON,
    Action,
    ApplyResult,
    Body,
    Change,
    DiffEntry,
    Failure,
    Finding,
    ObjectRef,
    Origin,
    Plan,
    Severity,
)
from reconciler.plan.diff import projections
from reconciler.plan.fields import applied_by, managed_fields
from reconciler.report.checks import checks_json

SCHEMA_VERSION = 1
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")
_MANAGED_FIELDS = re.compile(r"metadata\.managedFields(?![\w-])")


def render_json(plan: Plan, *, result: ApplyResult | None = None) -> str:
    doc = {
        "schemaVersion": SCHEMA_VERSION,
        "target": plan.target,
        "revision": _revision(plan),
        "valid": not plan.errors,
        "hasChanges": plan.has_changes,
        "counts": {**{a.value: plan.count(a) for a in Action}, "pruneRefused": plan.refused_prunes},
        "changes": [_change(c) for c in plan.changes],
        "findings": [_finding(f) for f in errors_first(plan.findings)],
        "order": {
            "method": plan.order.method,
            "states": plan.order.states,
            "note": plan.order.note,
            "blinks": list(plan.order.blinks),
            "kept": list(plan.order.kept),
        },
        "checks": checks_json(plan),
        "result": _result(result) if result else None,
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


# --- scrubbing shared by every renderer -------------------------------------------------


def visible(entries: Iterable[DiffEntry]) -> tuple[DiffEntry, ...]:
    """Entries safe to print: managedFields dropped, last-applied values hidden."""
    shown = (_scrub_entry(e) for e in entries if not _MANAGED_FIELDS.match(e.path))
    return tuple(e for e in shown if not same_json(e.before, e.after))


def same_json(a: JSON, b: JSON) -> bool:
    """Equal as JSON: `0` and `false`, `1` and `1.0`... 1 and true stay apart, as they do
    to the planner (Python's `==` would hide such a change)."""
    return json.dumps(jsonable(a), sort_keys=True) == json.dumps(jsonable(b), sort_keys=True)


def _scrub_entry(entry: DiffEntry) -> DiffEntry:
    if LAST_APPLIED in entry.path:
        return DiffEntry(entry.path, _hide(entry.before), _hide(entry.after))
    return DiffEntry(entry.path, _scrub(entry.before), _scrub(entry.after))


def _hide(value: JSON) -> JSON:
    """A stand-in that still shows whether the value changed, never what it holds."""
    if value is None:
        return None
    digest = hashlib.sha256(json.dumps(jsonable(value), sort_keys=True).encode()).hexdigest()
    return f"(hidden, sha256:{digest[:12]})"


def _scrub(value: JSON) -> JSON:
    """Drop managedFields and hide last-applied wherever a whole mapping is shown."""
    if isinstance(value, Mapping):
        return {
            k: _hide(v) if k == LAST_APPLIED else _scrub(v)
            for k, v in value.items()
            if k != "managedFields"
        }
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


# Our own bookkeeping on every object: noise when a whole object is created or
# pruned, but still shown on update/drift, where tampering with it matters.
BOOKKEEPING = (
    'metadata.labels["applyset.kubernetes.io/part-of"]',
    'metadata.annotations["projectcalico.org/metadata"]',
)


def change_entries(change: Change) -> tuple[DiffEntry, ...]:
    """The change's diff; for a create or prune without one, the object's own fields."""
    shown = visible(change.diff)
    if change.action not in (Action.CREATE, Action.PRUNE):
        return shown
    if not shown:
        adding = change.action is Action.CREATE
        body = change.desired.body if adding and change.desired else change.live
        shown = visible(_body_entries(body or {}, adding=adding))
    return tuple(e for e in shown if e.path not in BOOKKEEPING)


def _body_entries(body: Body, *, adding: bool) -> list[DiffEntry]:
    """One entry per spec field (and per label/annotation block) of a whole object."""
    fields: list[tuple[str, JSON]] = []
    meta = body.get("metadata") or {}
    fields += [(f"metadata.{k}", meta[k]) for k in ("labels", "annotations") if meta.get(k)]
    for key, value in body.items():
        if key in ("apiVersion", "kind", "metadata", "status"):
            continue
        if isinstance(value, Mapping):
            fields += [(join_path(key, k), v) for k, v in value.items()]
        else:
            fields.append((key, value))
    return [DiffEntry(p, None, v) if adding else DiffEntry(p, v, None) for p, v in fields]


def join_path(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if not _PLAIN_KEY.fullmatch(key):
        return f"{path}[{json.dumps(key)}]"  # label keys hold dots and slashes
    return f"{path}.{key}" if path else key


def jsonable(value: Any) -> JSON:
    """Plain JSON types: tuples become lists, mappings dicts, anything else odd a string."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((jsonable(v) for v in value), key=str)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def errors_first(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: f.severity is not Severity.ERROR)


# --- document parts ---------------------------------------------------------------------


def _revision(plan: Plan) -> dict[str, str]:
    rev = plan.revision
    return {"id": rev.id, "path": rev.path, "author": rev.author, "subject": rev.subject}


def _ref(ref: ObjectRef) -> dict[str, str]:
    return {
        "ref": str(ref),
        "qualifiedRef": ref.qualified,
        "apiVersion": ref.api_version,
        "group": ref.group,
        "version": ref.version,
        "kind": ref.kind,
        "namespace": ref.namespace,
        "name": ref.name,
    }


def _origin(origin: Origin | None) -> dict[str, JSON] | None:
    if origin is None:
        return None
    return {
        "text": str(origin),
        "path": origin.path,
        "line": origin.line,
        "template": origin.template,
        "target": origin.target,
    }


def _change(change: Change) -> dict[str, JSON]:
    return {
        **_ref(change.ref),
        "action": change.action.value,
        "writes": change.action.writes,
        "transient": change.transient,
        "reason": change.reason,
        "origin": _origin(change.desired.origin if change.desired else None),
        "diff": [
            {"path": e.path, "before": jsonable(e.before), "after": jsonable(e.after)}
            for e in change_entries(change)
        ],
        "patch": change_patch(change),
        "driftedBy": [
            {"manager": f.manager, "operation": f.operation, "time": f.time}
            for f in change.drifted_by
        ],
    }


def change_patch(change: Change) -> list[dict[str, JSON]] | None:
    """RFC 6902 operations from the live object's compared fields to Git's."""
    if change.desired is None:
        return None
    if change.action is Action.UNCHANGED:
        return []
    # The planner compares an owned object on the fields we applied, a foreign one on ours.
    owned = frozenset[tuple[str | int, ...]]()
    if change.live is not None and change.action in (Action.UPDATE, Action.DRIFT):
        owned = applied_by(managed_fields(change.live), FIELD_MANAGER)
    before, after = projections(desired=change.desired.body, live=change.live, owned=owned)
    ops: list[dict[str, JSON]] = jsonpatch.make_patch(before or {}, after).patch
    return [_scrub_op(op) for op in ops]


def _scrub_op(op: dict[str, JSON]) -> dict[str, JSON]:
    if "value" not in op:
        return op
    hidden = LAST_APPLIED.replace("/", "~1") in str(op["path"])
    return {**op, "value": _hide(op["value"]) if hidden else jsonable(_scrub(op["value"]))}


def _finding(finding: Finding) -> dict[str, JSON]:
    return {
        "severity": finding.severity.value,
        "text": str(finding),
        "message": finding.message,
        "field": finding.field,
        "origin": _origin(finding.origin),
        "ref": _ref(finding.ref) if finding.ref else None,
    }


def _result(result: ApplyResult) -> dict[str, JSON]:
    return {
        "ok": result.ok,
        "counts": {
            "done": len(result.done),
            "failed": len(result.failed),
            "skipped": len(result.skipped),
        },
        "done": [_outcome(c) for c in result.done],
        "failed": [_failure(f) for f in result.failed],
        "skipped": [_outcome(c) for c in result.skipped],
        "notes": list(result.notes),
    }


def _outcome(change: Change) -> dict[str, JSON]:
    return {**_ref(change.ref), "action": change.action.value}


def _failure(failure: Failure) -> dict[str, JSON]:
    return {**_outcome(failure.change), "message": failure.message}
