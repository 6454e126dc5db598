"""Read the local control plane's audit log: the witness of what a client really asked."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.cluster.client import Cluster, Connection

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


@dataclass(frozen=True, slots=True)
class Request:
    verb: str  # get list watch create update patch delete ...
    resource: str  # plural, e.g. globalnetworkpolicies
    namespace: str
    name: str
    code: int
    user_agent: str
    dry_run: bool
    uri: str

    @property
    def is_write(self) -> bool:
        return self.verb in WRITE_VERBS and not self.dry_run


class AuditLog:
    """Requests from one user agent, in the order the API server completed them."""

    def __init__(self, path: Path, kubeconfig: str) -> None:
        self.path = path
        self.kubeconfig = kubeconfig

    def mark(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def requests(self, *, user_agent: str, since: int = 0) -> list[Request]:
        self._flush()
        with self.path.open("rb") as f:
            f.seek(since)
            # The API server may be writing the last line as we read: only whole lines count.
            events = [json.loads(line) for line in f if line.endswith(b"\n") and line.strip()]
        return [_request(e) for e in events if e.get("userAgent", "").startswith(user_agent)]

    def _flush(self, timeout: float = 10) -> None:
        """Wait until a sentinel request shows up, so every earlier line is written."""
        sentinel = f"audit-sentinel/{uuid.uuid4().hex}"
        cluster = Cluster.connect(Connection(kubeconfig=self.kubeconfig, user_agent=sentinel))
        cluster.request("GET", "/api/v1/namespaces/default", verb="get")
        cluster.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sentinel.encode() in self.path.read_bytes()[-65536:]:
                return
            time.sleep(0.05)
        raise AssertionError("audit log never showed the sentinel request")


def _request(event: dict[str, Any]) -> Request:
    ref = event.get("objectRef", {})
    uri = event.get("requestURI", "")
    return Request(
        verb=event.get("verb", ""),
        resource=ref.get("resource", ""),
        namespace=ref.get("namespace", ""),
        name=ref.get("name", ""),
        code=event.get("responseStatus", {}).get("code", 0),
        user_agent=event.get("userAgent", ""),
        dry_run="dryRun=All" in uri,
        uri=uri,
    )


def by_verb(requests: list[Request]) -> Counter[str]:
    return Counter("dry-run" if r.dry_run else r.verb for r in requests)
