"""The controller: `policy-reconciler run`.

    controller = Controller(config, source=GitSource(spec), connection=Connection(...))
    controller.start()   # runner, scheduler, watches, webhook, metrics, leader election
    ...
    controller.stop()    # at a safe point between two writes; releases the Lease

Modules by concern: `loop` (one reconcile: fetch -> render -> plan -> apply -> judge,
and the last good revision), `schedule` (the single worker and APScheduler), `watch`
(self-heal), `webhook`, `leader` (Lease), `status` (history ConfigMap and Events),
`record` (the run record and its reasons, as data), `metrics` (+ /healthz, /readyz),
`logs`, `serve` (HTTP), `runtime` (wires them together).
"""

from reconciler.controller.leader import LeaseConfig
from reconciler.controller.loop import Reconciler, Run
from reconciler.controller.record import Reason, Result, RunRecord
from reconciler.controller.runtime import Controller, ControllerConfig, WebhookConfig
from reconciler.controller.schedule import Timing
from reconciler.controller.watch import WatchTiming

__all__ = [
    "Controller",
    "ControllerConfig",
    "LeaseConfig",
    "Reason",
    "Reconciler",
    "Result",
    "Run",
    "RunRecord",
    "Timing",
    "WatchTiming",
    "WebhookConfig",
]
