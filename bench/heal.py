"""`python -m bench.heal`: how fast the running controller heals an out-of-band edit.

The controller runs in this process (its own threads, as in the pod) against the local
control plane, on a generated repo of N objects (bench/generate.py). Once it has applied
the repo and gone quiet, the edits come one at a time: a merge patch of one random managed
object's spec under the field manager `kubectl-patch` (as `kubectl patch` makes it), then a
GET every 20 ms until the object's spec is Git's again. Printed per size: the seconds from
the patch to that first GET (p50 / p95 / max), and the controller's API requests per heal
by verb (its status write and Event included, its watches not).

    python -m bench.heal [--sizes 1000,10000] [--edits 50] [--full 10] [--interval 3600]
                         [--pause 0] [--state-dir DIR]

--full N then makes N more edits with targeted heals off (each heal waits the 1 s debounce,
then re-plans all N objects, as before issue 17), on the same objects, for the comparison.
The interval is an hour by default: a full re-plan in progress delays a heal (one worker
writes), and this measures the heal, not the interval; `--interval 60 --pause 6` (the
controller's default interval; edits a random 0-12 s apart, so that they land anywhere in
the interval, during its full runs too) shows what the interval's runs add.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.generate import write_repo
from reconciler import localcluster, pipeline
from reconciler.applyset import ApplySet
from reconciler.cluster.client import Cluster, Connection, ResourceType
from reconciler.controller.runtime import Controller, ControllerConfig
from reconciler.controller.schedule import Timing
from reconciler.localcluster import kubectl
from reconciler.model import GroupKind, Revision
from reconciler.observe import detect_flavour, discover

POLL = 0.02  # seconds between GETs while waiting for the heal
TIMEOUT = 120.0  # an edit not healed by then is reported as a failure
# One owned field per kind, set to a value Git never has.
EDITS: Mapping[str, Mapping[str, Any]] = {
    "HostEndpoint": {"spec": {"expectedIPs": ["192.0.2.1"]}},
    "GlobalNetworkPolicy": {"spec": {"order": 1}},
    "NetworkPolicy": {"spec": {"selector": "app == 'edited'"}},
    "networking.k8s.io/NetworkPolicy": {"spec": {"podSelector": {"matchLabels": {"app": "x"}}}},
}


@dataclass(frozen=True, slots=True)
class DirSource:
    """The generated repo as the controller's source: one revision, never a new one."""

    path: Path

    def fetch(self) -> Revision:
        return Revision("dir:bench-heal", str(self.path))

    def descends(self, old: str, new: str) -> bool | None:
        return None

    def redacted_url(self) -> str:
        return str(self.path)


@dataclass(frozen=True, slots=True)
class Target:
    rtype: ResourceType
    name: str
    namespace: str
    spec: Mapping[str, Any]  # Git's, as applied

    def edit(self) -> Mapping[str, Any]:
        kind = self.rtype.kind
        key = f"{self.rtype.group}/{kind}" if self.rtype.group == "networking.k8s.io" else kind
        return EDITS[key]


def main() -> None:
    args = _args()
    state = Path(args.state_dir or tempfile.mkdtemp(prefix="bench-heal-cp-"))
    info = localcluster.up(state, nodes=3, progress=lambda m: print(m, file=sys.stderr))
    try:
        rows = [row for n in args.sizes for row in _measure(info, n, args)]
    finally:
        if not (args.keep or args.state_dir):
            localcluster.down(state)
    _print(rows)


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.heal")
    parser.add_argument(
        "--sizes", default="1000,10000", type=lambda t: [int(x) for x in t.split(",")]
    )
    parser.add_argument("--edits", default=50, type=int)
    parser.add_argument("--full", default=0, type=int, help="edits healed the old way, after")
    parser.add_argument("--interval", default=3600.0, type=float, help="seconds")
    parser.add_argument(
        "--pause", default=0.0, type=float, help="mean seconds between edits (uniform 0-2x)"
    )
    parser.add_argument("--seed", default=17, type=int)
    parser.add_argument("--keep", action="store_true", help="leave the control plane running")
    parser.add_argument("--state-dir", default="", help="use (or start) the cluster there")
    return parser.parse_args()


def _measure(
    info: localcluster.ClusterInfo, n: int, args: argparse.Namespace
) -> list[dict[str, Any]]:
    name = f"h{n}-{int(time.time()) % 100000}"
    repo = _repo(info, n, name)
    settings = pipeline.Settings(ApplySet(name, "policy-reconciler"))
    controller = _controller(info, repo, settings, interval=args.interval)
    rows = []
    try:
        started = time.perf_counter()
        controller.start()
        if not controller.runner.wait_idle(runs=1, timeout=1800):
            raise SystemExit(f"the first apply of {n} objects did not finish in 30 minutes")
        print(f"   applied {n} objects in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        _quiet(controller)
        me = Cluster.connect(Connection(kubeconfig=info.kubeconfig, user_agent="bench-heal"))
        targets = random.Random(args.seed).sample(_managed(me, settings), args.edits + args.full)
        pause = _pauses(args.pause, args.seed)
        rows.append(
            _edits(me, controller, targets[: args.edits], n=n, mode="targeted", pause=pause)
        )
        if args.full:
            controller.config = replace(controller.config, targeted_heal=False)
            rows.append(
                _edits(me, controller, targets[args.edits :], n=n, mode="full", pause=pause)
            )
        me.close()
    finally:
        controller.stop()
    return rows


def _pauses(mean: float, seed: int) -> Callable[[], None]:
    """Sleeps a random 0 to 2x `mean` seconds: edits land anywhere in the interval."""
    draw = random.Random(seed + 1)
    return lambda: time.sleep(draw.uniform(0, 2 * mean)) if mean > 0 else None


def _edits(
    me: Cluster,
    controller: Controller,
    targets: list[Target],
    *,
    n: int,
    mode: str,
    pause: Callable[[], None],
) -> dict[str, Any]:
    loads = [os.getloadavg()[0]]
    healed = []
    for target in targets:
        pause()
        healed.append(_heal(me, controller, target))
    loads.append(os.getloadavg()[0])
    requests: Counter[str] = Counter()
    for _, asked in healed:
        requests.update(asked)
    seconds = sorted(s for s, _ in healed)
    return {"objects": n, "mode": mode, "seconds": seconds, "requests": requests, "loads": loads}


def _repo(info: localcluster.ClusterInfo, n: int, name: str) -> Path:
    repo = Path(tempfile.mkdtemp(prefix=f"bench-heal-repo-{n}-"))
    namespaces = write_repo(repo, n, prefix=name)
    manifest = "".join(
        f"---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n"
        for ns in ["policy-reconciler", *namespaces]
    )
    kubectl(info, "apply", "-f", "-", stdin=manifest)
    print(f"-- {n} objects ({name})", file=sys.stderr)
    return repo


def _controller(
    info: localcluster.ClusterInfo, repo: Path, settings: pipeline.Settings, *, interval: float
) -> Controller:
    config = ControllerConfig(
        settings=settings,
        identity="bench-heal",
        timing=Timing(interval=interval),  # the default debounce: 1 s
    )
    connection = Connection(kubeconfig=info.kubeconfig, user_agent="bench-heal-controller")
    return Controller(config, source=DirSource(repo), connection=connection)


def _quiet(controller: Controller, quiet: float = 3.0) -> None:
    """Until the watches listen and no run has started for `quiet` seconds."""
    while not controller.watches.listening():
        time.sleep(0.1)
    seen, since = controller.runner.runs, time.monotonic()
    while time.monotonic() - since < quiet:
        if controller.runner.runs != seen or controller.runner.busy_for():
            seen, since = controller.runner.runs, time.monotonic()
        time.sleep(0.1)


def _managed(cluster: Cluster, settings: pipeline.Settings) -> list[Target]:
    flavour = detect_flavour(cluster, settings.calico)
    types = discover(cluster, flavour)
    kinds = [
        GroupKind(flavour.group, "HostEndpoint"),
        GroupKind(flavour.group, "GlobalNetworkPolicy"),
        GroupKind(flavour.group, "NetworkPolicy"),
        GroupKind("networking.k8s.io", "NetworkPolicy"),
    ]
    found = []
    for gk in kinds:
        rtype = types.of(gk)
        for body in cluster.list(rtype, label_selector=settings.applyset.selector):
            meta = body["metadata"]
            found.append(Target(rtype, meta["name"], meta.get("namespace", ""), body["spec"]))
    return found


def _heal(me: Cluster, controller: Controller, target: Target) -> tuple[float, Counter[str]]:
    """Seconds from the patch to the first GET that sees Git's spec; the controller's
    requests for it, counted once it is idle again (its status write and Event too)."""
    before = Counter(controller.cluster.request_counts())
    runs = controller.runner.runs
    start = time.perf_counter()
    me.request(
        "PATCH",
        target.rtype.path(target.namespace, target.name),
        verb="patch",
        query={"fieldManager": "kubectl-patch"},
        body=dict(target.edit()),
        content_type="application/merge-patch+json",
    )
    while True:
        live = me.get(target.rtype, target.name, target.namespace)
        took = time.perf_counter() - start
        if live is not None and live["spec"] == target.spec:
            break
        if took > TIMEOUT:
            raise SystemExit(f"{target.rtype.kind}/{target.name} not healed in {TIMEOUT:.0f} s")
        time.sleep(POLL)
    controller.runner.wait_idle(runs=runs + 1, timeout=TIMEOUT)
    time.sleep(0.2)  # the status write and Event follow the heal
    asked = Counter(controller.cluster.request_counts())
    asked.subtract(before)
    return took, +asked


def _percentile(values: list[float], q: float) -> float:
    return values[max(0, math.ceil(q * len(values)) - 1)]


def _print(rows: list[dict[str, Any]]) -> None:
    print("drift heal by the running controller: patch -> first GET that sees Git's value")
    print("(targeted: from the watch event; full: debounce, then re-plan every object)")
    head = f"{'objects':>7} {'mode':<8} {'edits':>5} {'p50 s':>6} {'p95 s':>6} {'max s':>6}"
    print(f"{head} {'load':>9}  requests/heal")
    for r in rows:
        s = r["seconds"]
        per = " ".join(f"{k}={v / len(s):.2f}" for k, v in sorted(r["requests"].items()))
        load = "-".join(f"{x:.1f}" for x in r["loads"])
        print(
            f"{r['objects']:>7} {r['mode']:<8} {len(s):>5} {_percentile(s, 0.5):>6.2f} "
            f"{_percentile(s, 0.95):>6.2f} {s[-1]:>6.2f} {load:>9}  {per}"
        )


if __name__ == "__main__":
    main()
