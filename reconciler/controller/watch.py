"""Self-heal's eyes: one watch per managed kind, label-selected by our ApplySet id.

Like client-go's reflector: LIST (one item is enough) for a resourceVersion,
WATCH from it with bookmarks, and on the server's normal timeout watch again from
the last version seen. A 410 Gone (the version fell out of the watch window)
means relist, and since events may have been missed, report a RESYNC. A
connection error (API server restart) means back off and watch again from the
last version; if that is too old by then, the 410 path takes over. The first LIST
reports a RESYNC too: a change made between the last run and the watch starting
would otherwise wait for the interval.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.cluster import errors
from reconciler.cluster.client import Cluster, JSONDict, ResourceType, WatchStream
from reconciler.plan import bridge

log = logging.getLogger(__name__)
RESYNC = "RESYNC"  # not an API event type: "we may have missed events, look again"


@dataclass(frozen=True, slots=True)
class WatchSpec:
    rtype: ResourceType
    namespace: str = ""
    label_selector: str = ""
    field_selector: str = ""

    def selectors(self) -> dict[str, str]:
        found = {"labelSelector": self.label_selector, "fieldSelector": self.field_selector}
        return {k: v for k, v in found.items() if v}

    def __str__(self) -> str:
        return f"{self.rtype.kind}.{self.rtype.group or 'core'}"


@dataclass(frozen=True, slots=True)
class WatchEvent:
    spec: WatchSpec
    type: str  # ADDED, MODIFIED, DELETED or RESYNC
    object: Mapping[str, Any]


OnEvent = Callable[[WatchEvent], None]


@dataclass(frozen=True, slots=True)
class WatchTiming:
    timeout: float = 300.0  # server-side timeoutSeconds, randomised +-20% per watch
    backoff_min: float = 0.5
    backoff_max: float = 30.0


class _Expired(Exception):
    """The resourceVersion is too old (410): relist."""


class KindWatch:
    """One kind, one thread; `stop()` ends it promptly, even in the middle of a read."""

    def __init__(
        self,
        cluster: Cluster,
        spec: WatchSpec,
        on_event: OnEvent,
        *,
        timing: WatchTiming,
        restarts: Counter[str],
        resume_from: str = "",
    ) -> None:
        """`resume_from`: a resourceVersion to watch from instead of a fresh LIST."""
        self._cluster, self.spec, self._on_event = cluster, spec, on_event
        self._timing, self._restarts, self._resume_from = timing, restarts, resume_from
        self._stopped = threading.Event()
        self.listed = threading.Event()  # has a resourceVersion to watch from
        self._lock = threading.Lock()
        self._stream: WatchStream | None = None
        self._rv = ""  # the last resourceVersion seen (only the watch thread touches it)
        self._thread = threading.Thread(target=self._run, name=f"watch-{spec}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        with self._lock:
            stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        self._rv, resync, delay = self._resume_from, not self._resume_from, self._timing.backoff_min
        while not self._stopped.is_set():
            try:
                if not self._rv:
                    self._rv = self._list()
                    self.listed.set()
                if resync:
                    resync = False
                    self._on_event(WatchEvent(self.spec, RESYNC, {}))
                self._follow()
                delay = self._timing.backoff_min
            except _Expired:
                self._rv, resync = "", True  # relist at once: events may have been missed
                self._restarts["expired"] += 1
            except Exception as exc:  # connection errors and anything else: back off
                if self._stopped.is_set():
                    return
                self._restarts["error"] += 1
                log.warning("watch interrupted; retrying", extra=_failure(self.spec, exc, delay))
                self._stopped.wait(delay)
                delay = min(delay * 2, self._timing.backoff_max)

    def _list(self) -> str:
        query = {**self.spec.selectors(), "limit": "1"}  # only its resourceVersion matters
        page = self._cluster.request(
            "GET", self.spec.rtype.path(self.spec.namespace), verb="list", query=query
        )
        return str(page.get("metadata", {}).get("resourceVersion", ""))

    def _follow(self) -> None:
        """Watch from the last version seen until the server ends the stream; every event
        moves that version on, so a broken stream resumes where it broke."""
        timeout = self._timing.timeout * random.uniform(0.8, 1.2)  # noqa: S311 - spreading
        query = {
            **self.spec.selectors(),
            "watch": "true",
            "resourceVersion": self._rv,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(int(timeout)),
        }
        stream = self._cluster.watch(
            self.spec.rtype.path(self.spec.namespace), query=query, timeout=timeout
        )
        with self._lock:
            self._stream = stream
        if self._stopped.is_set():
            stream.close()
        with stream:
            for event in stream:
                self._rv = self._handle(event) or self._rv

    def _handle(self, event: JSONDict) -> str:
        kind, obj = event.get("type", ""), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == errors.Gone.status:
                raise _Expired
            raise errors.KubeError(f"watch {self.spec}: {obj.get('message', obj)}")
        rv = str(obj.get("metadata", {}).get("resourceVersion", ""))
        if kind != "BOOKMARK":
            self._on_event(WatchEvent(self.spec, kind, obj))
        return rv


class Watches:
    """The set of running watches; `ensure` starts what is missing and stops the rest."""

    def __init__(self, cluster: Cluster, on_event: OnEvent, *, timing: WatchTiming) -> None:
        self._cluster, self._on_event, self._timing = cluster, on_event, timing
        self._running: dict[WatchSpec, KindWatch] = {}
        self._lock = threading.Lock()
        self.restarts: Counter[str] = Counter()

    def ensure(self, specs: Iterable[WatchSpec]) -> None:
        wanted = set(specs)
        with self._lock:
            for spec in set(self._running) - wanted:
                self._running.pop(spec).stop()
            for spec in wanted - set(self._running):
                watch = KindWatch(
                    self._cluster, spec, self._on_event, timing=self._timing, restarts=self.restarts
                )
                self._running[spec] = watch
                watch.start()

    @property
    def specs(self) -> frozenset[WatchSpec]:
        with self._lock:
            return frozenset(self._running)

    def listening(self) -> bool:
        """Every watch has its starting resourceVersion (tests wait for this)."""
        with self._lock:
            running = list(self._running.values())
        return bool(running) and all(w.listed.is_set() for w in running)

    def stop_all(self, *, timeout: float = 5.0) -> None:
        with self._lock:
            running, self._running = list(self._running.values()), {}
        for watch in running:
            watch.stop()
        for watch in running:
            watch.join(timeout)


def newest_managers(obj: Mapping[str, Any]) -> frozenset[str]:
    """Managers of the most recent managedFields entries (times have 1 s resolution)."""
    entries = obj.get("metadata", {}).get("managedFields") or []
    latest = max((e.get("time", "") for e in entries), default="")
    return frozenset(
        f"{e.get('manager')}/{e.get('operation')}" for e in entries if e.get("time", "") == latest
    )


def is_own_write(event: WatchEvent, field_manager: str) -> bool:
    """Our server-side apply is the newest write to this object: no drift to look at. The
    make-before-break bridge is removed by the very run that wrote it: not drift either."""
    if event.type == "DELETED":
        meta = event.object.get("metadata") or {}
        return bridge.is_bridge_object(str(event.object.get("kind", "")), str(meta.get("name")))
    if event.type not in ("ADDED", "MODIFIED"):
        return False
    return newest_managers(event.object) == {f"{field_manager}/Apply"}


def _failure(spec: WatchSpec, exc: Exception, delay: float) -> dict[str, Any]:
    return {"kind": str(spec), "error": str(exc)[:300], "retry_in_s": round(delay, 2)}
