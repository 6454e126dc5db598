"""Run history in a ConfigMap beside the ApplySet parent, and Kubernetes Events on it.

`<applyset>-status` keeps the last runs as JSON (newest first) plus the last
applied revision, so `policy-reconciler status` and `kubectl get cm -o yaml`
answer "what did it do, and when" without access to the controller's logs.
Events go to the reconciler's namespace, about the parent ConfigMap, so
`kubectl describe configmap <applyset>` shows them. A repeat of the same Event (type,
reason and message: the same refused revision, say) raises the first one's count, as
client-go's recorder does, instead of piling up copies.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from reconciler.applyset import ApplySet
from reconciler.cluster import errors
from reconciler.cluster.client import CONFIGMAPS, EVENTS, Cluster, JSONDict
from reconciler.controller.record import RunRecord

KEEP = 10
RUNS_KEY = "runs.json"
APPLIED_KEY = "lastAppliedRevision"
COMPONENT = "policy-reconciler"
EVENT_MESSAGE_MAX = 1024


def status_name(applyset: ApplySet) -> str:
    return f"{applyset.name}-status"


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Status:
    runs: tuple[RunRecord, ...]  # newest first
    applied_revision: str = ""


def read_status(cluster: Cluster, applyset: ApplySet) -> Status:
    body = cluster.get(CONFIGMAPS, status_name(applyset), applyset.namespace)
    data = (body or {}).get("data") or {}
    runs = tuple(RunRecord.from_json(r) for r in json.loads(data.get(RUNS_KEY, "[]")))
    return Status(runs, data.get(APPLIED_KEY, ""))


class StatusStore:
    """Writes the history; the caller decides which runs are worth a write."""

    def __init__(self, cluster: Cluster, applyset: ApplySet, *, identity: str) -> None:
        self._cluster = cluster
        self._applyset = applyset
        self._identity = identity
        self._status: Status | None = None
        self._sent: dict[tuple[str, str, str], tuple[str, int]] = {}  # key -> (name, count)

    @property
    def last(self) -> RunRecord | None:
        status = self._load()
        return status.runs[0] if status.runs else None

    @property
    def applied_revision(self) -> str:
        return self._load().applied_revision

    def record(self, run: RunRecord, *, applied_revision: str) -> None:
        runs = (run, *self._load().runs)[:KEEP]
        self._cluster.apply(CONFIGMAPS, self._body(runs, applied_revision), force=True)
        self._status = Status(runs, applied_revision)

    def event(self, *, kind: str, reason: str, message: str) -> None:
        key = (kind, reason, message[:EVENT_MESSAGE_MAX])
        if key in self._sent and self._counted(*self._sent[key]):
            name, count = self._sent[key]
            self._sent[key] = (name, count + 1)
            return
        self._sent[key] = (self._create_event(kind=kind, reason=reason, message=message), 1)

    def _counted(self, name: str, count: int) -> bool:
        """Raise a sent Event's count; False when it is gone (Events expire after an hour)."""
        patch = {"count": count + 1, "lastTimestamp": now_rfc3339()}
        try:
            self._cluster.request(
                "PATCH",
                EVENTS.path(self._applyset.namespace, name),
                verb="patch",
                body=patch,
                content_type="application/merge-patch+json",
            )
        except errors.NotFound:
            return False
        return True

    def _create_event(self, *, kind: str, reason: str, message: str) -> str:
        parent = self._cluster.get(CONFIGMAPS, self._applyset.name, self._applyset.namespace)
        body = event_body(
            self._applyset,
            parent_uid=str((parent or {}).get("metadata", {}).get("uid", "")),
            kind=kind,
            reason=reason,
            message=message,
            instance=self._identity,
        )
        self._cluster.create(EVENTS, body)
        return str(body["metadata"]["name"])

    def _load(self) -> Status:
        if self._status is None:  # once: carry on the history a previous process left
            self._status = read_status(self._cluster, self._applyset)
        return self._status

    def _body(self, runs: tuple[RunRecord, ...], applied_revision: str) -> JSONDict:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": status_name(self._applyset),
                "namespace": self._applyset.namespace,
                "labels": {"app.kubernetes.io/managed-by": COMPONENT},
            },
            "data": {
                RUNS_KEY: json.dumps([r.to_json() for r in runs], indent=1),
                APPLIED_KEY: applied_revision,
            },
        }


def event_body(
    applyset: ApplySet, *, parent_uid: str, kind: str, reason: str, message: str, instance: str
) -> dict[str, Any]:
    stamp = now_rfc3339()
    involved = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": applyset.name,
        "namespace": applyset.namespace,
    }
    if parent_uid:  # kubectl describe matches events by uid
        involved["uid"] = parent_uid
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{applyset.name}.{secrets.token_hex(8)}",
            "namespace": applyset.namespace,
        },
        "involvedObject": involved,
        "type": kind,
        "reason": reason,
        "message": message[:EVENT_MESSAGE_MAX],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": instance,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }
