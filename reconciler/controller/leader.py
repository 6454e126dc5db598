"""Leader election with a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it.

Candidates GET the Lease every `retry` seconds and only write it when it is free
or expired. Expiry is judged by *our* clock: a lease is expired when its record
has not changed for `leaseDurationSeconds` since we first saw it, so clock skew
between replicas does not matter. The leader renews every `renew` seconds and
steps down if it could not renew for `deadline` (< duration), so it stops writing
before anyone else may take over. Every write carries the resourceVersion read
(optimistic concurrency): two candidates cannot both win.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from reconciler.cluster import errors
from reconciler.cluster.client import LEASES, Cluster, JSONDict

log = logging.getLogger(__name__)
OnChange = Callable[[bool], None]


@dataclass(frozen=True, slots=True)
class LeaseConfig:
    name: str
    namespace: str
    identity: str
    duration: float = 15.0  # how long a lease stays valid without renewal
    renew: float = 5.0  # the leader renews this often
    retry: float = 2.0  # candidates (and a leader whose renewal failed) retry this often

    @property
    def deadline(self) -> float:
        """Give up leadership this long after the last successful renewal."""
        return max(self.duration - 2 * self.retry, self.duration / 2)


@dataclass(frozen=True, slots=True)
class _Seen:
    record: tuple[str, str, str]  # holder, renewTime, resourceVersion
    at: float  # our monotonic clock when this record was first seen


def micro_time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Elector:
    """Runs in its own thread; `leading` says whether we may write right now."""

    def __init__(self, cluster: Cluster, config: LeaseConfig, on_change: OnChange) -> None:
        self._cluster, self.config, self._on_change = cluster, config, on_change
        self.leading = threading.Event()
        self._stopped = threading.Event()
        self._seen: _Seen | None = None
        self._renewed = 0.0  # monotonic time of our last successful acquire/renew
        self._thread = threading.Thread(target=self._run, name="leader-election", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop campaigning and release the lease if we hold it."""
        self._stopped.set()
        self._thread.join(timeout)

    @property
    def holder(self) -> str:
        return self._seen.record[0] if self._seen else ""

    def _run(self) -> None:
        while not self._stopped.is_set():
            won = self._attempt()
            self._set_leading(won or self._within_deadline())
            wait = self.config.renew if won else self.config.retry
            self._stopped.wait(wait)
        if self.leading.is_set():
            self._set_leading(False)
            self._release()

    def _attempt(self) -> bool:
        try:
            return self._try_acquire_or_renew()
        except errors.KubeError as exc:
            log.warning("leader election: lease request failed", extra={"error": exc.message})
            return False

    def _within_deadline(self) -> bool:
        """A leader keeps leading through brief API trouble, never past the deadline."""
        held = self.leading.is_set() and self.holder == self.config.identity
        return held and time.monotonic() - self._renewed < self.config.deadline

    def _try_acquire_or_renew(self) -> bool:
        lease = self._cluster.get(LEASES, self.config.name, self.config.namespace)
        if lease is None:
            return self._write(self._cluster.create, self._new_lease())
        spec = lease.get("spec", {})
        self._observe(lease)
        holder = spec.get("holderIdentity") or ""
        if holder == self.config.identity:
            return self._write(self._cluster.replace, _with_spec(lease, renewTime=micro_time()))
        if holder and not self._expired(spec):
            return False
        transitions = int(spec.get("leaseTransitions") or 0) + 1
        return self._write(self._cluster.replace, _with_spec(lease, **self._claim(transitions)))

    def _write(self, verb: Callable[..., JSONDict], body: JSONDict) -> bool:
        try:
            written = verb(LEASES, body)
        except errors.Conflict:  # someone else wrote it first: they won this round
            return False
        self._observe(written)
        self._renewed = time.monotonic()
        return True

    def _observe(self, lease: JSONDict) -> None:
        spec, meta = lease.get("spec", {}), lease.get("metadata", {})
        record = (
            spec.get("holderIdentity") or "",
            str(spec.get("renewTime")),
            str(meta.get("resourceVersion")),
        )
        if self._seen is None or self._seen.record != record:
            self._seen = _Seen(record, time.monotonic())

    def _expired(self, spec: dict[str, Any]) -> bool:
        duration = float(spec.get("leaseDurationSeconds") or self.config.duration)
        return self._seen is None or time.monotonic() - self._seen.at > duration

    def _claim(self, transitions: int) -> dict[str, Any]:
        now = micro_time()
        return {
            "holderIdentity": self.config.identity,
            "leaseDurationSeconds": round(self.config.duration),
            "acquireTime": now,
            "renewTime": now,
            "leaseTransitions": transitions,
        }

    def _new_lease(self) -> JSONDict:
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.config.name, "namespace": self.config.namespace},
            "spec": self._claim(0),
        }

    def _release(self) -> None:
        """Hand over at once: an empty holder is free for the taking (client-go's
        ReleaseOnCancel), so the standby need not wait out the lease."""
        try:
            lease = self._cluster.get(LEASES, self.config.name, self.config.namespace)
            if lease and lease.get("spec", {}).get("holderIdentity") == self.config.identity:
                released = _with_spec(
                    lease, holderIdentity=None, leaseDurationSeconds=1, renewTime=micro_time()
                )
                self._cluster.replace(LEASES, released)
                log.info("leader election: released the lease", extra=self._fields())
        except errors.KubeError as exc:
            log.warning(
                "leader election: could not release the lease", extra={"error": exc.message}
            )

    def _set_leading(self, leading: bool) -> None:
        if leading == self.leading.is_set():
            return
        if leading:
            self.leading.set()
            log.info("leader election: became the leader", extra=self._fields())
        else:
            self.leading.clear()
            log.warning("leader election: no longer the leader", extra=self._fields())
        self._on_change(leading)

    def _fields(self) -> dict[str, str]:
        return {
            "lease": f"{self.config.namespace}/{self.config.name}",
            "identity": self.config.identity,
        }


def _with_spec(lease: JSONDict, **changes: Any) -> JSONDict:
    return {**lease, "spec": {**lease.get("spec", {}), **changes}}
