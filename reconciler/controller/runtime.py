"""The running controller: wires the runner, scheduler, watches, webhook, metrics,
leader election and status around the reconcile loop.

Threads: one reconcile worker (the only one that writes managed objects), the
APScheduler thread, one per watch, one per HTTP server, one for the Lease. Every
write is gated on `may_write()`: leader, and not shutting down.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from reconciler import generate, pipeline
from reconciler.applyset import ID_LABEL, BadAnnotation, Inventory, is_suspended, requests
from reconciler.cluster import errors
from reconciler.cluster.client import (
    CONFIGMAPS,
    NAMESPACES,
    NODES,
    Cluster,
    Connection,
    ResourceType,
)
from reconciler.controller.leader import Elector, LeaseConfig
from reconciler.controller.loop import (
    DRIFT,
    WATCH,
    Fetched,
    Recall,
    Reconciler,
    Run,
    Source,
    check_line,
)
from reconciler.controller.metrics import Metrics, Probes, metrics_server
from reconciler.controller.record import Reason, Result, RunRecord
from reconciler.controller.schedule import Runner, Scheduler, Timing
from reconciler.controller.serve import Server
from reconciler.controller.status import StatusStore, now_rfc3339
from reconciler.controller.watch import (
    RESYNC,
    Watches,
    WatchEvent,
    WatchSpec,
    WatchTiming,
    is_own_write,
)
from reconciler.controller.webhook import Receiver, webhook_server
from reconciler.generate.inventory import namespace_from_api, node_from_api
from reconciler.model import Revision
from reconciler.pipeline.heal import ClusterKey, cluster_key

log = logging.getLogger(__name__)

# What templates read of each inventory kind; a change to anything else is ignored.
_INVENTORY: dict[ResourceType, Callable[[Mapping[str, Any]], Any]] = {
    NODES: node_from_api,
    NAMESPACES: namespace_from_api,
}
FETCH_REASONS = frozenset(
    {Reason.UNREACHABLE, Reason.AUTH, Reason.REF, Reason.NOT_FOUND, Reason.FETCH}
)
HEAL = frozenset({DRIFT})
FETCH_POLL = 0.2  # seconds between looks for drift to heal while a fetch runs


def _head_unusable(record: RunRecord) -> bool:
    """The newest revision was refused, could not be fetched, or met a bug (not: the
    cluster failed us, which a heal would meet too)."""
    return (
        record.result is Result.REFUSED
        or record.reason in FETCH_REASONS
        or record.reason is Reason.INTERNAL
    )


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    port: int
    ref: str  # the pushed ref that triggers: "refs/heads/main"; "" when pinned to a commit
    secret: bytes = field(repr=False)  # never printed, not even in a debug dump
    address: str = "0.0.0.0"  # noqa: S104 - in a pod, the Service decides who can reach it


@dataclass(frozen=True, slots=True)
class ControllerConfig:
    settings: pipeline.Settings
    identity: str
    timing: Timing = field(default_factory=Timing)
    suspend: bool = False  # --suspend: run, serve, but never fetch or write
    webhook: WebhookConfig | None = None
    metrics_port: int | None = None
    metrics_address: str = "0.0.0.0"  # noqa: S104
    lease: LeaseConfig | None = None  # None: no election, always the leader
    self_heal: bool = True
    # Heal an edit the watch reported from its event alone (False: every heal re-plans
    # every object after the debounce, as before; the benchmark's comparison).
    targeted_heal: bool = True
    watch: WatchTiming = field(default_factory=WatchTiming)
    stuck_after: float = 900.0  # /healthz fails when one run takes longer than this
    shutdown_timeout: float = 20.0


class Controller:
    def __init__(
        self,
        config: ControllerConfig,
        *,
        source: Source,
        connection: Connection,
        recall: Recall | None = None,
    ) -> None:
        self.config = config
        self.cluster = Cluster.connect(connection)
        self._watch_cluster = Cluster.connect(connection)  # long polls never queue our writes
        self._lease_cluster = Cluster.connect(connection) if config.lease else None
        self._stopping = threading.Event()
        self._seen: dict[tuple[str, str], object] = {}  # inventory as templates last saw it
        # Edits the watches reported and no run has looked at since: the newest body of each.
        self._reported: dict[ClusterKey, Mapping[str, Any]] = {}
        self._reported_lock = threading.Lock()
        # Reconcile requests last seen; an old one seen first after a start costs one run.
        self._requests: tuple[str, str] = ("", "")
        self.reconciler = Reconciler(
            cluster=self.cluster, source=source, settings=config.settings,
            may_write=self.may_write, recall=recall,
        )  # fmt: skip
        self.store = StatusStore(self.cluster, config.settings.applyset, identity=config.identity)
        self.runner = Runner(self._work)
        self._fetcher = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="fetch")
        self.scheduler = Scheduler(self.runner, config.timing)
        self.watches = Watches(self._watch_cluster, self._on_watch_event, timing=config.watch)
        self.metrics = Metrics(
            clusters=self._clusters, watch_restarts=lambda: self.watches.restarts
        )
        self.elector = (
            Elector(self._lease_cluster, config.lease, self._on_leadership)
            if self._lease_cluster and config.lease
            else None
        )
        self.attempts = 0
        self.last_run: Run | None = None
        self._fetched_run: Run | None = None  # the last run that looked at the newest commit
        self._servers = self._make_servers()

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        self.reconciler.applied = self._recorded_revision()
        log.info("controller starting", extra=self._describe())
        for server in self._servers:
            server.start()
        self.runner.start()
        self.scheduler.start()
        if self.elector:
            self.elector.start()  # triggers the first run when it wins
        else:
            self.metrics.leader.set(1)
            self.runner.trigger("startup")

    def stop(self) -> None:
        """Graceful: finish the object being written, stop everything, release the lease."""
        log.info("shutting down", extra={"identity": self.config.identity})
        self._stopping.set()
        self.scheduler.stop()
        for server in self._servers:
            server.stop()
        if not self.runner.stop(timeout=self.config.shutdown_timeout):
            log.warning("the current run did not stop in time; exiting anyway")
        self._fetcher.shutdown(wait=False, cancel_futures=True)  # a hung fetch times out alone
        self.watches.stop_all()
        if self.elector:
            self.elector.stop()
        for cluster in self._clusters():
            cluster.close()
        log.info("stopped", extra={"identity": self.config.identity})

    def run_once(self) -> Run:
        """One reconcile in the calling thread, recorded like any other (`run --once`)."""
        self.reconciler.applied = self._recorded_revision()
        run = self._reconcile(frozenset({"once"}))
        assert run is not None, "a run always records itself"
        return run

    def may_write(self) -> bool:
        return not self._stopping.is_set() and self.is_leader

    @property
    def is_leader(self) -> bool:
        return self.elector.leading.is_set() if self.elector else True

    @property
    def webhook_port(self) -> int:
        return next(s.port for s in self._servers if s.name == "webhook")

    @property
    def metrics_port(self) -> int:
        return next(s.port for s in self._servers if s.name == "metrics")

    # -- one run and what follows it -------------------------------------------------

    def _work(self, triggers: frozenset[str]) -> None:
        self._reconcile(triggers)

    def _reconcile(self, triggers: frozenset[str]) -> Run | None:
        """The run the triggers asked for (None on a standby), with the heals around it."""
        if not self.may_write():
            return None  # a standby, or shutting down: the trigger is the leader's business
        if self.config.suspend:
            self._after(_suspended_by_flag(triggers))
            return self.last_run
        triggers = self._heal_watched(triggers)
        if not triggers:
            return self.last_run
        if DRIFT in triggers and triggers != {DRIFT}:
            # Self-heal never waits behind a fetch: the last good revision first.
            self._after(self._full(HEAL))
            triggers = triggers - HEAL
        fetched = self._fetch_healing(triggers)
        if not self.may_write():
            return None  # shut down, or lost the lease, while fetching: nothing to report
        run = self._full(triggers, fetched=fetched)
        self._after(run)
        if run.fetched and _head_unusable(run.record) and self._heals():
            # Whatever triggered the run, the last good revision stays enforced: drift
            # that arrived while the head was refused (or unreachable) is healed now.
            self._after(self._full(HEAL))
        return run

    def _full(self, triggers: frozenset[str], *, fetched: Fetched | None = None) -> Run:
        """A run that plans every object: it sees every edit reported so far."""
        self._take_reported()
        return self.reconciler.reconcile(triggers, fetched=fetched)

    def _fetch_healing(self, triggers: frozenset[str]) -> Fetched | None:
        """Fetch the head on the fetch thread, healing whatever drifts meanwhile: a hung or
        slow git server never delays a heal (only this worker writes, so heals run here)."""
        if triggers <= HEAL:
            return None  # a heal needs no fetch
        future = self._fetcher.submit(self._fetch_head)
        while True:
            try:
                return future.result(timeout=FETCH_POLL)
            except concurrent.futures.TimeoutError:
                if not self.may_write():
                    return None  # a hung fetch must not hold up a shutdown
                if self.runner.take(WATCH) and self._heals() and not self._heal_reported():
                    self._after(self._full(HEAL))
                if self.runner.take(DRIFT) and self._heals():
                    self._after(self._full(HEAL))
            except Exception as exc:  # the run reports it (a SourceError, or a bug)
                return exc

    def _fetch_head(self) -> Revision:
        """The head, marked when a force-push rewound history past the applied commit."""
        source, applied = self.reconciler.source, self.reconciler.applied
        revision = source.fetch()
        if applied and applied != revision.id and source.descends(applied, revision.id) is False:
            return replace(revision, rewound_from=applied)
        return revision

    def _heals(self) -> bool:
        return self.config.self_heal and self.may_write()

    def _after(self, run: Run) -> None:
        self.attempts += 1
        self.last_run = run
        if run.rewound:
            self._event("Warning", "HistoryRewritten", run.rewound)
        if run.fetched:
            self._fetched_run = run
        record = run.record
        _log(record)
        self.metrics.observe(
            record,
            drifted=run.drifted,
            fetch_failed=record.reason in FETCH_REASONS,
            fetched=run.fetched,
        )
        self.metrics.suspended.set(1 if record.reason is Reason.SUSPENDED else 0)
        if record.result in (Result.APPLIED, Result.UNCHANGED) and self.reconciler.applied:
            self.metrics.applied(self.reconciler.applied)
        if run.fetched or record.result is not Result.UNCHANGED:
            # A self-heal run that found nothing to do is no news, and must not hide
            # (in status, or by cancelling its retry) a fetch failure before it.
            self._report(record)
            self._reschedule(record, fetched=run.fetched)
        self._watch_managed(run)

    def _report(self, record: RunRecord) -> None:
        """Status and Event, unless this run only repeats the last recorded one."""
        if not self.is_leader:
            return
        try:
            if not record.is_news(self.store.last):
                return
            self.store.record(record, applied_revision=self.reconciler.applied)
        except errors.KubeError as exc:
            log.warning("could not record the run's status", extra={"error": exc.message})
            return
        if record.event_type:
            self._event(record.event_type, record.reason.value, record.message)
        self._skipped_checks()

    def _skipped_checks(self) -> None:
        """--skip-checks is for emergencies, and says so: a Warning Event for each skipped
        check that fails (or names the check when it would pass)."""
        run = self.last_run
        skipped = [c for c in run.plan.checks if c.skipped] if run and run.plan else []
        for check in skipped:
            verdict = f"fails: {check_line(check)}" if not check.holds else "holds"
            message = f"ConnectivityCheck {check.name} is skipped (--skip-checks); it {verdict}"
            self._event("Warning", "ConnectivityCheckSkipped", message)

    def _reschedule(self, record: RunRecord, *, fetched: bool) -> None:
        """Failures retry with backoff; only a fetched success ends the backoff."""
        if record.result in (Result.FAILED, Result.REFUSED) and not self._stopping.is_set():
            delay = self.scheduler.failed()
            log.info("retry scheduled", extra={"retry_in_s": delay, "reason": record.reason})
        elif fetched:
            self.scheduler.succeeded()

    # -- self-heal -------------------------------------------------------------------

    def _watch_managed(self, run: Run) -> None:
        """Watch what the parent says we own, plus what the revision in force adds (a
        refused revision adds nothing), and the parent, whose suspend annotation acts now."""
        planned = self.reconciler.planned
        if not self.config.self_heal or planned is None or not self.may_write():
            return
        owned = planned.inventories.recorded or Inventory()
        kinds = owned.union(planned.inventories.final) if run.accepted else owned
        applyset = self.config.settings.applyset
        specs = [
            WatchSpec(planned.types.by_group_kind[gk], label_selector=applyset.selector)
            for gk in sorted(kinds.group_kinds)
            if gk in planned.types.by_group_kind
        ]
        parent = WatchSpec(
            CONFIGMAPS, applyset.namespace, label_selector=f"{ID_LABEL}={applyset.id}"
        )
        self.watches.ensure([*specs, parent, *self._inventory_watches()])

    def _inventory_watches(self) -> list[WatchSpec]:
        """Nodes and/or Namespaces, when the revision in force has templates over them."""
        rendered = self.reconciler.last_good
        need = generate.needs(rendered.templates if rendered else ())
        return [
            WatchSpec(rtype)
            for rtype, wanted in ((NODES, need.nodes), (NAMESPACES, need.namespaces))
            if wanted
        ]

    def _on_watch_event(self, event: WatchEvent) -> None:
        if event.spec.rtype == CONFIGMAPS:
            self._on_parent(event)
        elif event.spec.rtype in _INVENTORY:
            self._on_inventory(event)
        elif event.type == RESYNC:
            # A watch (re)listed: changes between its LIST and the last run are unseen, so
            # a self-heal re-checks. Not a change anyone made: debug, not an info line each.
            log.debug("watch listed; self-heal re-checks", extra={"kind": str(event.spec)})
            self.scheduler.drift()
        elif is_own_write(event, self.config.settings.options.field_manager):
            self._forget(event)  # our write came after any edit reported before it
        else:
            log.info(
                "change seen outside a run; self-heal scheduled",
                extra={
                    "kind": str(event.spec),
                    "event": event.type,
                    "object": event.object.get("metadata", {}).get("name", ""),
                },
            )
            self._drifted(event)

    # -- heal what a watch event reported --------------------------------------------

    def _drifted(self, event: WatchEvent) -> None:
        """An edit is healed from its event at once (no debounce: it reads nothing); a
        deletion, or with targeted heals off, by the debounced full re-plan."""
        if not self.config.targeted_heal or event.type not in ("ADDED", "MODIFIED"):
            self._forget(event)
            self.scheduler.drift()
            return
        with self._reported_lock:
            self._reported[cluster_key(event.object)] = event.object
        self.runner.trigger(WATCH)

    def _forget(self, event: WatchEvent) -> None:
        with self._reported_lock:
            self._reported.pop(cluster_key(event.object), None)

    def _take_reported(self) -> dict[ClusterKey, Mapping[str, Any]]:
        with self._reported_lock:
            reported, self._reported = self._reported, {}
        return reported

    def _heal_watched(self, triggers: frozenset[str]) -> frozenset[str]:
        """Heal what the watches reported first, one object from its event; what that
        cannot decide goes to the full re-plan: in this run when it has other triggers,
        else after the debounce. Returns the triggers left to run."""
        if WATCH not in triggers:
            return triggers
        rest = triggers - {WATCH}
        if self._heal_reported():
            return rest
        if rest:
            return rest | HEAL
        self.scheduler.drift()
        return rest

    def _heal_reported(self) -> bool:
        """True when every reported edit was dealt with (healed, or nothing to heal)."""
        reported = self._take_reported()
        if not reported:
            return True
        if len(reported) > 1 or not self._heals():
            return False  # several objects at once: one full plan, in the safe order
        (body,) = reported.values()
        run = self.reconciler.heal_reported(body)
        if run is None:
            log.info("the watch event alone cannot decide; a full re-plan heals it")
            return False
        if run.result is not None and run.result.done:
            log.info(f"healed {run.result.done[0].ref} from watch event")
        self._after(run)
        return True

    def _on_inventory(self, event: WatchEvent) -> None:
        """A Node or Namespace that templates expand over changed what they see.

        Only what templates read counts (name, labels, addresses, terminating), so
        node status heartbeats never cause a re-plan.
        """
        view = _INVENTORY[event.spec.rtype](event.object)
        key = (event.spec.rtype.kind, view.name)
        before = self._seen.pop(key, None)
        if event.type != "DELETED":
            self._seen[key] = view
        if event.type in ("DELETED", RESYNC) or before != view:
            log.info(
                "inventory changed; templates re-expand now",
                extra={"kind": event.spec.rtype.kind, "object": view.name, "event": event.type},
            )
            self.reconciler.invalidate()  # a heal from the old expansion could undo it
            self.scheduler.drift()

    def _on_parent(self, event: WatchEvent) -> None:
        """The operator's annotations act now: suspend (or its removal), and requests to
        reconcile (`policy-reconciler reconcile [--with-source]`)."""
        if event.type == RESYNC:
            return  # the next run reads the parent anyway
        parent = event.object if event.type != "DELETED" else {}
        self._on_requests(requests(parent))
        try:
            suspended = is_suspended(parent)
        except BadAnnotation:
            self.reconciler.invalidate()
            self.runner.trigger("annotation")  # the run says what is wrong, loudly
            return
        if suspended or not parent:
            self.reconciler.invalidate()  # only a full run may say what is in force now
        planned = self.reconciler.planned  # what the last run saw
        if planned is not None and planned.suspended != suspended:
            if not suspended:
                self._event(
                    "Normal", "Resumed", "reconciling resumed: the suspend annotation is off"
                )
            self.runner.trigger("suspended" if suspended else "resumed")

    def _on_requests(self, asked: tuple[str, str]) -> None:
        """A changed request time triggers a run."""
        before, self._requests = self._requests, asked
        if asked[1] and asked[1] != before[1]:
            self.runner.trigger("requested-with-source")
        elif asked[0] and asked[0] != before[0]:
            self.runner.trigger(DRIFT)  # re-apply the revision in force, no fetch

    def _event(self, kind: str, reason: str, message: str) -> None:
        if not self.is_leader:
            return
        try:
            self.store.event(kind=kind, reason=reason, message=message)
        except errors.KubeError as exc:
            log.warning("could not record an Event", extra={"error": exc.message})

    def _on_leadership(self, leading: bool) -> None:
        self.metrics.leader.set(1 if leading else 0)
        if leading:
            self.runner.trigger("leader")
        else:
            self.watches.stop_all()

    # -- plumbing --------------------------------------------------------------------

    def _clusters(self) -> Iterable[Cluster]:
        return [c for c in (self.cluster, self._watch_cluster, self._lease_cluster) if c]

    def _recorded_revision(self) -> str:
        try:
            return self.store.applied_revision
        except errors.KubeError as exc:
            log.warning("could not read the status ConfigMap", extra={"error": exc.message})
            return ""

    def _make_servers(self) -> list[Server]:
        servers = []
        hook = self.config.webhook
        if hook is not None:
            receiver = Receiver(
                hook.secret,
                hook.ref,
                lambda: self.runner.trigger("webhook"),
                accepting=self.may_write,
            )
            servers.append(webhook_server(receiver, address=hook.address, port=hook.port))
        if self.config.metrics_port is not None:
            probes = Probes(healthy=self._healthy, ready=self._ready)
            servers.append(
                metrics_server(
                    self.metrics,
                    probes,
                    address=self.config.metrics_address,
                    port=self.config.metrics_port,
                )
            )
        return servers

    def _describe(self) -> dict[str, object]:
        c = self.config
        return {
            "identity": c.identity,
            "repo": self.reconciler.source.redacted_url(),
            "applyset": f"{c.settings.applyset.namespace}/{c.settings.applyset.name}",
            "interval_s": c.timing.interval,
            "leader_elect": c.lease is not None,
            "suspended": c.suspend,
            "self_heal": c.self_heal,
            "applied_revision": self.reconciler.applied,
        }

    def _healthy(self) -> tuple[bool, str]:
        if not self.runner.alive and not self._stopping.is_set():
            return False, "the reconcile worker has died"
        busy = self.runner.busy_for()
        if busy > self.config.stuck_after:
            return False, f"the current run has taken {busy:.0f}s"
        return True, "alive"

    def _ready(self) -> dict[str, str]:
        """Each readiness check and why it fails. The chart's kubelet probe excludes
        `revision` and `suspended`: the pod still serves webhooks and self-heal then."""
        if self.elector and not self.is_leader:
            return {}  # a ready standby
        run = self._fetched_run
        return {
            "started": "" if self.attempts else "no reconcile attempt has completed yet",
            "suspended": _suspended_why(run),
            "revision": _refused_why(run),
        }


def _suspended_why(run: Run | None) -> str:
    if run is None or run.record.result is not Result.SUSPENDED:
        return ""
    return run.record.message


def _refused_why(run: Run | None) -> str:
    if run is None or run.record.result not in (Result.REFUSED, Result.FAILED):
        return ""
    return f"{run.record.reason.value}: {run.record.message}"


def _suspended_by_flag(triggers: frozenset[str]) -> Run:
    now = now_rfc3339()
    trigger = "+".join(sorted(triggers))
    return Run(
        RunRecord(trigger, Reason.SUSPENDED, "suspended by --suspend", started=now, finished=now),
        fetched=True,
    )


def _log(record: RunRecord) -> None:
    failing = record.result in (Result.FAILED, Result.REFUSED)
    fields: dict[str, object] = {
        "revision": record.revision,
        "trigger": record.trigger,
        "result": record.result.value,
        "reason": record.reason.value,
        "duration_s": record.duration,
        "planned": dict(record.planned),
        "written": dict(record.written),
    }
    if record.errors:
        fields["errors"] = list(record.errors[:5])
    if record.drift:
        fields["drift"] = list(record.drift)
    level = logging.WARNING if failing else logging.INFO
    log.log(level, f"reconcile {record.result.value}: {record.message}", extra=fields)


__all__ = ["DRIFT", "Controller", "ControllerConfig", "LeaseConfig", "WebhookConfig"]
