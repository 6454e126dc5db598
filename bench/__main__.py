"""`make bench`: first apply and no-op reconcile of generated repos on the local control plane.

Prints API requests by verb (stable across machines, unlike seconds), wall time and
peak RSS for each phase, and compares the no-op reconcile with bare LISTs of the same
objects. Each phase runs in a fresh process so its peak RSS is its own; `process` is
that whole process's wall time (interpreter start and imports included: a fresh CLI).

    python -m bench [--sizes 1000,5000] [--workers 1,8] [--profile] [--keep]
                    [--state-dir DIR] [--calico-apiserver]

--workers runs the first apply once per worker count, each on its own fresh objects.
--profile adds a no-op run under cProfile and prints its top lines.
With --calico-apiserver the cluster also runs Calico's API server, so the reconciler
writes and reads projectcalico.org/v3 through the aggregation layer (the v3 path).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.generate import write_repo
from bench.phase import server_cpu
from reconciler import localcluster
from reconciler.apply.executor import WORKERS
from reconciler.localcluster import kubectl

STEADY = ("noop", "bare-list")
# A fresh CLI runs from compiled bytecode (the image compiles it: UV_COMPILE_BYTECODE);
# a shell with PYTHONDONTWRITEBYTECODE would make each phase compile the kubernetes
# client's thousand modules again, about 1 s of CPU that no installed CLI pays.
PHASE_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def main() -> None:
    args = _args()
    state = Path(args.state_dir or tempfile.mkdtemp(prefix="bench-cp-"))
    info = localcluster.up(
        state,
        nodes=3,
        calico_apiserver=args.calico_apiserver,
        progress=lambda m: print(m, file=sys.stderr),
    )
    subprocess.run([sys.executable, "-c", "import bench.phase"], env=PHASE_ENV, check=True)
    try:
        rows = [row for n in args.sizes for row in _measure(info, n, args)]
    finally:
        if not (args.keep or args.state_dir):
            localcluster.down(state)
    _print(rows)


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--sizes", default="1000,5000", type=_ints)
    parser.add_argument("--workers", default=str(WORKERS), type=_ints)
    parser.add_argument("--profile", action="store_true", help="profile a no-op run")
    parser.add_argument("--keep", action="store_true", help="leave the control plane running")
    parser.add_argument("--state-dir", default="", help="use (or start) the cluster there")
    parser.add_argument(
        "--calico-apiserver", action="store_true", help="the v3 path: Calico's API server"
    )
    return parser.parse_args()


def _measure(
    info: localcluster.ClusterInfo, n: int, args: argparse.Namespace
) -> list[dict[str, object]]:
    rows = []
    for workers in args.workers:
        name = f"b{n}w{workers}-{int(time.time()) % 100000}"
        repo = _repo(info, n, name)
        rows.append(_phase(info, "apply", repo, n, name, workers))
    phases = (*STEADY, "profile") if args.profile else STEADY
    rows.extend(_phase(info, phase, repo, n, name, workers) for phase in phases)
    return rows


def _repo(info: localcluster.ClusterInfo, n: int, name: str) -> Path:
    repo = Path(tempfile.mkdtemp(prefix=f"bench-repo-{n}-"))
    namespaces = write_repo(repo, n, prefix=name)
    manifest = "".join(
        f"---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n"
        for ns in ["policy-reconciler", *namespaces]
    )
    kubectl(info, "apply", "-f", "-", stdin=manifest)
    print(f"-- {n} objects ({name})", file=sys.stderr)
    return repo


def _phase(
    info: localcluster.ClusterInfo, phase: str, repo: Path, n: int, name: str, workers: int
) -> dict[str, object]:
    pids = _server_pids(info)
    server = server_cpu(pids)
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "bench.phase", phase, str(repo), info.kubeconfig, name],
        capture_output=True,
        text=True,
        check=False,
        env={
            **PHASE_ENV,
            "BENCH_WORKERS": str(workers),
            "BENCH_SERVER_PIDS": ",".join(map(str, pids)),
        },
    )
    process = time.perf_counter() - started
    server_cpu_s = server_cpu(pids) - server
    if proc.returncode != 0:
        raise SystemExit(f"phase {phase} ({n}) failed:\n{proc.stderr}")
    row: dict[str, object] = json.loads(proc.stdout)
    return {
        "objects": n,
        "phase": phase,
        "workers": workers,
        "process": process,
        "server_cpu_s": server_cpu_s,
        **row,
    }


def _server_pids(info: localcluster.ClusterInfo) -> tuple[int, ...]:
    """The control plane's processes: kube-apiserver, etcd, and Calico's API server when it
    runs. Their CPU is the other half of the cost of every request."""
    return tuple(p for p in (info.apiserver_pid, info.etcd_pid, info.calico_apiserver_pid) if p)


def _print(rows: list[dict[str, object]]) -> None:
    print(
        f"{'objects':>7} {'phase':<9} {'workers':>7} {'seconds':>8} {'process':>8} {'again':>6} "
        f"{'our CPU':>7} {'process CPU':>11} {'again CPU':>9} {'server CPU':>10} "
        f"{'render':>7} {'RSS MiB':>8} {'load':>5} {'req/obj':>8}  requests"
    )
    for r in rows:
        if r["phase"] == "profile":
            continue
        requests = r["requests"]
        assert isinstance(requests, dict)
        total = sum(requests.values())
        per = total / int(str(r["objects"]))
        verbs = " ".join(f"{k}={v}" for k, v in sorted(requests.items()))
        workers = r["workers"] if r["phase"] == "apply" else ""
        print(
            f"{r['objects']:>7} {r['phase']:<9} {workers:>7} {r['seconds']:>8.2f} "
            f"{r['process']:>8.2f} {r['controller_s']:>6.2f} {r['cpu_s']:>7.2f} "
            f"{r['process_cpu_s']:>11.2f} {r['controller_cpu_s']:>9.2f} {r['server_cpu_s']:>10.2f} "
            f"{r['render_s']:>7.2f} "
            f"{r['rss_mib']:>8.0f} {r['load']:>5.1f} "
            f"{per:>8.3f}  {verbs}  writes={r['writes']} kinds={r['kinds']}"
        )
    for r in rows:
        if r["phase"] == "apply":
            print(_write_path(r))
    for n in sorted({int(str(r["objects"])) for r in rows}):
        by = {r["phase"]: r for r in rows if r["objects"] == n}
        noop, floor = float(str(by["noop"]["seconds"])), float(str(by["bare-list"]["seconds"]))
        fresh = float(str(by["noop"]["process"]))
        cached = float(str(by["noop"]["controller_s"]))
        print(
            f"{n} objects: no-op / bare LISTs = {fresh / floor:.2f}x as a fresh process "
            f"(target <= 3x), {noop / floor:.2f}x in process with render, "
            f"{cached / floor:.2f}x as the controller, its render cached (target <= 1.5x)"
        )
        if "profile" in by:
            print(f"-- cProfile of the {n}-object no-op (process wall {noop:.2f} s):")
            print(by["profile"]["profile"])


def _write_path(r: dict[str, object]) -> str:
    """The first apply's write path alone (dry-runs, writes, the parent), per request:
    our CPU and the control plane's, the two halves of what 2 cores must serve."""
    sent = max(1, int(str(r["apply_requests"])))
    ours = float(str(r["apply_cpu_s"])) * 1000 / sent
    server = float(str(r["apply_server_cpu_s"])) * 1000 / sent
    return (
        f"{r['objects']} objects, {r['workers']} workers, write path: {sent} requests in "
        f"{float(str(r['apply_s'])):.2f} s (load {float(str(r['load'])):.1f}), "
        f"our CPU {ours:.2f} ms/request, the control plane's {server:.2f} ms/request"
    )


if __name__ == "__main__":
    main()
