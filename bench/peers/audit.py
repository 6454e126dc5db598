"""Count a tool's requests from the local control plane's audit log.

The log is the witness every tool answers to alike: a Go client, kubectl and our CLI
are counted the same way. A window is the bytes the log grew by while the tool ran;
only whole lines count, and a sentinel request proves every earlier line is written
(the API server writes an event after it answers).
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.cluster.client import Cluster, Connection

WRITES = frozenset({"create", "update", "patch", "delete", "deletecollection"})
SENTINEL = "audit-sentinel/"


@dataclass(frozen=True, slots=True)
class Counts:
    """Requests in a window by verb; a server-side dry-run counts as `dry-run`."""

    verbs: Counter[str]

    @property
    def total(self) -> int:
        return sum(self.verbs.values())

    @property
    def writes(self) -> int:
        return sum(n for verb, n in self.verbs.items() if verb in WRITES)

    def __str__(self) -> str:
        return " ".join(f"{verb}={n}" for verb, n in sorted(self.verbs.items()))


class AuditLog:
    def __init__(self, path: Path, kubeconfig: str) -> None:
        self.path = path
        self.kubeconfig = kubeconfig

    def mark(self) -> int:
        """Where the next window starts: the log's size now."""
        self.flush()
        return self.path.stat().st_size if self.path.exists() else 0

    def since(self, mark: int, *, user_agent: str) -> Counts:
        """The requests logged after `mark` whose user agent starts with `user_agent`."""
        self.flush()
        with self.path.open("rb") as f:
            f.seek(mark)
            return count(f.read(), user_agent=user_agent)

    def flush(self, timeout: float = 30) -> None:
        """Return once a request sent now is in the log, and so every earlier one."""
        sentinel = f"{SENTINEL}{uuid.uuid4().hex}"
        cluster = Cluster.connect(Connection(kubeconfig=self.kubeconfig, user_agent=sentinel))
        try:
            cluster.request("GET", "/api/v1/namespaces/default", verb="get")
        finally:
            cluster.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.path.exists() and sentinel.encode() in self.path.read_bytes()[-262144:]:
                return
            time.sleep(0.05)
        raise RuntimeError(f"the audit log {self.path} never showed the sentinel request")


def count(log: bytes, *, user_agent: str) -> Counts:
    """Count the audit events of whole lines in `log` from one user agent (a prefix)."""
    verbs: Counter[str] = Counter()
    for line in log.split(b"\n")[:-1]:  # the last piece has no newline yet: not whole
        if line.strip():
            event: dict[str, Any] = json.loads(line)
            agent = str(event.get("userAgent", ""))
            # A watch logs ResponseStarted then ResponseComplete: one request, counted once.
            started = event.get("stage") == "ResponseStarted"
            if agent.startswith(user_agent) and not agent.startswith(SENTINEL) and not started:
                verbs[_verb(event)] += 1
    return Counts(verbs)


def _verb(event: dict[str, Any]) -> str:
    uri = str(event.get("requestURI", ""))
    return "dry-run" if "dryRun=All" in uri else str(event.get("verb", ""))
