"""One measured phase in its own process (so peak RSS is the phase's own)."""

from __future__ import annotations

import cProfile
import io
import json
import os
import pstats
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from reconciler import pipeline
from reconciler.apply.executor import WORKERS
from reconciler.applyset import ApplySet
from reconciler.cluster.client import Cluster, Connection
from reconciler.model import GroupKind, Revision
from reconciler.observe import detect_flavour, discover
from reconciler.plan import PlanOptions

WRITES = ("apply", "delete", "create")


def main(phase: str, repo: Path, kubeconfig: str, name: str) -> None:
    cluster = Cluster.connect(Connection(kubeconfig=kubeconfig))
    settings = pipeline.Settings(ApplySet(name, "policy-reconciler"), PlanOptions())
    profile = cProfile.Profile() if phase == "profile" else None
    cpu = time.process_time()
    started = time.perf_counter()
    if profile:
        profile.enable()
    split = Split()
    kinds, render_s, rendered = (
        (bare_lists(cluster, settings), 0.0, None)
        if phase == "bare-list"
        else reconcile(cluster, repo, settings, split=split)
    )
    if profile:
        profile.disable()
    seconds = time.perf_counter() - started
    cpu_s = time.process_time() - cpu  # ours alone: the API server and etcd are apart
    requests = cluster.request_counts()
    # The controller's no-op: the same process plans the revision it rendered before.
    usage = resource.getrusage(resource.RUSAGE_SELF)
    process_cpu_s = usage.ru_utime + usage.ru_stime  # interpreter start and imports too
    again, again_cpu = time.perf_counter(), time.process_time()
    if rendered is not None and phase != "apply":
        reconcile(cluster, repo, settings, rendered=rendered)
    controller_s = time.perf_counter() - again if rendered is not None else 0.0
    controller_cpu_s = time.process_time() - again_cpu if rendered is not None else 0.0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    writes = sum(requests.get(v, 0) for v in WRITES)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "render_s": render_s,
                "apply_s": split.apply_s,
                "apply_cpu_s": split.apply_cpu_s,
                "apply_server_cpu_s": split.apply_server_cpu_s,
                "apply_requests": split.apply_requests,
                "cpu_s": cpu_s,
                "controller_s": controller_s,
                "controller_cpu_s": controller_cpu_s,
                "process_cpu_s": process_cpu_s,
                "rss_mib": rss,
                "load": os.getloadavg()[0],  # the machine's, as the phase ends
                "requests": requests,
                "kinds": kinds,
                "writes": writes,
                "profile": top_lines(profile) if profile else "",
            }
        )
    )


def top_lines(profile: cProfile.Profile, n: int = 18) -> str:
    """The profile's heaviest functions by own time, then by cumulative time."""
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(n)
    stats.sort_stats("cumulative").print_stats(n)
    return "\n".join(line for line in out.getvalue().splitlines() if line.strip())


@dataclass
class Split:
    """The write path alone (`pipeline.apply`: dry-runs, writes, the parent): its wall, our
    CPU and its requests, apart from the render and the plan before it."""

    apply_s: float = 0.0
    apply_cpu_s: float = 0.0
    apply_server_cpu_s: float = 0.0
    apply_requests: int = 0


def server_cpu(pids: tuple[int, ...]) -> float:
    """CPU seconds used so far by these processes (the control plane's): utime + stime."""
    return sum(_cpu_of(pid) for pid in pids)


def _cpu_of(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # not Linux, or gone: counts as 0
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pids() -> tuple[int, ...]:
    return tuple(int(p) for p in os.environ.get("BENCH_SERVER_PIDS", "").split(",") if p)


def reconcile(
    cluster: Cluster,
    repo: Path,
    settings: pipeline.Settings,
    *,
    rendered: pipeline.Rendered | None = None,
    split: Split | None = None,
) -> tuple[int, float, pipeline.Rendered]:
    started = time.perf_counter()
    if rendered is None:
        rendered = pipeline.render(repo, Revision("dir:bench", str(repo)), settings)
    render_s = time.perf_counter() - started
    planned = pipeline.plan(cluster, rendered, settings)
    workers = int(os.environ.get("BENCH_WORKERS", "0")) or WORKERS
    split = split or Split()
    sent, cpu, server = (
        sum(cluster.request_counts().values()),
        time.process_time(),
        server_cpu(_pids()),
    )
    started = time.perf_counter()
    result = pipeline.apply(cluster, planned, settings, workers=workers)
    split.apply_s = time.perf_counter() - started
    split.apply_cpu_s = time.process_time() - cpu
    split.apply_server_cpu_s = server_cpu(_pids()) - server
    split.apply_requests = sum(cluster.request_counts().values()) - sent
    if not result.ok:
        raise SystemExit(f"apply failed: {result.failed[:3]} {result.notes}")
    return len(planned.inventories.final.group_kinds), render_s, rendered


def bare_lists(cluster: Cluster, settings: pipeline.Settings) -> int:
    """The floor: the same label-selected LISTs with nothing else around them."""
    flavour = detect_flavour(cluster, settings.calico)
    types = discover(cluster, flavour)
    kinds = [
        (flavour.group, "HostEndpoint"),
        (flavour.group, "GlobalNetworkPolicy"),
        (flavour.group, "NetworkPolicy"),
        ("networking.k8s.io", "NetworkPolicy"),
    ]
    for group, kind in kinds:
        cluster.list(types.of(GroupKind(group, kind)), label_selector=settings.applyset.selector)
    return len(kinds)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4])
