"""Prometheus metrics, and the /metrics, /healthz and /readyz endpoints on one port.

Each controller has its own registry (several can live in one process, as in the
tests). API request counts are read from the Cluster counters at scrape time, so
they are exact and cost nothing between scrapes.
"""

from __future__ import annotations

import platform
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from reconciler import __version__
from reconciler.cluster.client import Cluster
from reconciler.controller.record import Result, RunRecord
from reconciler.controller.serve import QuietHandler, Reply, Server

# A `_created` series beside every counter doubles the series count and alerts on
# nothing: a restart is already visible as a counter reset.
disable_created_metrics()  # type: ignore[no-untyped-call]

PREFIX = "policy_reconciler"
FAILED_RESULTS = frozenset({Result.FAILED, Result.REFUSED})
BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
Probe = Callable[[], tuple[bool, str]]
Checks = Callable[[], dict[str, str]]  # readiness check -> why it fails ("" when it passes)


class _Requests(Collector):
    def __init__(self, clusters: Callable[[], Iterable[Cluster]]) -> None:
        self._clusters = clusters

    def collect(self) -> Iterator[Metric]:
        total: Tally[tuple[str, str]] = Tally()
        for cluster in self._clusters():
            total.update(cluster.response_counts())
        family = CounterMetricFamily(
            f"{PREFIX}_api_requests",
            "Requests to kube-apiserver, by verb and HTTP status code (error: no answer).",
            labels=["verb", "code"],
        )
        for (verb, code), count in sorted(total.items()):
            family.add_metric([verb, code], count)
        yield family


class _Watches(Collector):
    def __init__(self, restarts: Callable[[], Tally[str]]) -> None:
        self._restarts = restarts

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            f"{PREFIX}_watch_restarts", "Watch restarts, by cause.", labels=["cause"]
        )
        for cause, count in sorted(self._restarts().items()):
            family.add_metric([cause], count)
        yield family


class Metrics:
    def __init__(
        self,
        *,
        clusters: Callable[[], Iterable[Cluster]],
        watch_restarts: Callable[[], Tally[str]],
    ) -> None:
        r = self.registry = CollectorRegistry()
        self.duration = Histogram(
            f"{PREFIX}_reconcile_duration_seconds",
            "Duration of reconcile runs.",
            ["result"],
            registry=r,
            buckets=BUCKETS,
        )
        self.runs = Counter(
            f"{PREFIX}_reconcile_runs",
            "Reconcile runs, by result and reason.",
            ["result", "reason"],
            registry=r,
        )
        self.written = Counter(
            f"{PREFIX}_objects_written", "Objects written, by action.", ["action"], registry=r
        )
        self.planned = Gauge(
            f"{PREFIX}_objects", "Objects in the last plan, by action.", ["action"], registry=r
        )
        self.drift = Counter(
            f"{PREFIX}_drift_detected",
            "Objects found changed outside Git, by kind.",
            ["kind"],
            registry=r,
        )
        self.revision = Info(f"{PREFIX}_applied_revision", "The revision in force.", registry=r)
        self.revision_time = Gauge(
            f"{PREFIX}_applied_revision_timestamp_seconds",
            "When the revision in force was applied.",
            registry=r,
        )
        self.last_run = Gauge(
            f"{PREFIX}_last_run_timestamp_seconds", "When the last reconcile run ended.", registry=r
        )
        self.last_success = Gauge(
            f"{PREFIX}_last_success_timestamp_seconds",
            "When a reconcile run last ended applied or in sync (alert on its age).",
            registry=r,
        )
        self.last_failed = Gauge(
            f"{PREFIX}_last_run_failed",
            "1 while the last run failed or refused the revision, else 0.",
            registry=r,
        )
        Info(f"{PREFIX}_build", "The running build.", registry=r).info(
            {"version": __version__, "python": platform.python_version()}
        )
        self.git_errors = Counter(
            f"{PREFIX}_git_fetch_errors", "Failed git fetches, by reason.", ["reason"], registry=r
        )
        self.leader = Gauge(f"{PREFIX}_leader", "1 while this replica is the leader.", registry=r)
        self.suspended = Gauge(
            f"{PREFIX}_suspended", "1 while reconciling is suspended.", registry=r
        )
        self._revision = ""
        r.register(_Requests(clusters))
        r.register(_Watches(watch_restarts))

    def observe(
        self,
        record: RunRecord,
        *,
        drifted: Iterable[str],
        fetch_failed: bool,
        fetched: bool = True,
    ) -> None:
        result = record.result.value
        self.duration.labels(result).observe(record.duration)
        self.runs.labels(result, record.reason.value).inc()
        for action, count in record.written.items():
            self.written.labels(action).inc(count)
        if record.planned:
            for action in {*record.planned, *_known_actions()}:
                self.planned.labels(action).set(record.planned.get(action, 0))
        for kind in drifted:
            self.drift.labels(kind).inc()
        if fetch_failed:
            self.git_errors.labels(record.reason.value).inc()
        now = time.time()
        self.last_run.set(now)
        # A self-heal run re-plans the last good revision: it says nothing about whether
        # the newest one is refused, so only a failure of its own moves these two.
        if record.result in FAILED_RESULTS:
            self.last_failed.set(1)
        elif fetched and record.result in (Result.APPLIED, Result.UNCHANGED):
            self.last_failed.set(0)
            self.last_success.set(now)

    def applied(self, revision: str) -> None:
        """The revision in force; its timestamp moves only when the revision does."""
        if revision != self._revision:
            self._revision = revision
            self.revision.info({"revision": revision})
            self.revision_time.set(time.time())


def _known_actions() -> tuple[str, ...]:
    return ("create", "update", "drift", "unchanged", "prune", "conflict", "adopt")


@dataclass(frozen=True, slots=True)
class Probes:
    healthy: Probe  # alive and not stuck
    ready: Checks  # named checks, as kube-apiserver's /readyz (`?exclude=<name>` skips one)


class MetricsHandler(QuietHandler):
    metrics: Metrics
    probes: Probes

    def do_GET(self) -> None:
        path = self.path.partition("?")[0]
        if path == "/metrics":
            self.send(Reply(200, generate_latest(self.metrics.registry), CONTENT_TYPE_LATEST))
        elif path in ("/healthz", "/livez"):
            self.send(_probe(self.probes.healthy))
        elif path == "/readyz":
            excluded = parse_qs(self.path.partition("?")[2]).get("exclude", [])
            self.send(_readiness(self.probes.ready(), excluded))
        else:
            self.send(Reply(404, b"not found: try /metrics, /healthz or /readyz\n", "text/plain"))


def _probe(probe: Probe) -> Reply:
    ok, why = probe()
    return Reply(200 if ok else 503, f"{'ok' if ok else 'not ok'}: {why}\n".encode(), "text/plain")


def _readiness(checks: dict[str, str], excluded: list[str]) -> Reply:
    failing = {name: why for name, why in checks.items() if why and name not in excluded}
    if not failing:
        return Reply(200, b"ok\n", "text/plain")
    lines = "".join(f"[-]{name} failed: {why}\n" for name, why in sorted(failing.items()))
    return Reply(503, f"not ok\n{lines}".encode(), "text/plain")


def metrics_server(metrics: Metrics, probes: Probes, *, address: str, port: int) -> Server:
    handler = type("BoundMetricsHandler", (MetricsHandler,), {"metrics": metrics, "probes": probes})
    return Server("metrics", address, port, handler)
