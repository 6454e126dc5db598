"""`make bench-peers`: the same objects through our CLI, Flux's apply engine and kubectl.

    python -m bench.peers [--sizes 1000] [--runs 1] [--tools ours,flux,kubectl,kubectl-prune]

Each tool, in each run, gets a fresh local control plane (its own temporary state dir)
and four phases: the first apply, a no-op, the heal of one object edited out of band
(`kubectl patch` of a GlobalNetworkPolicy's order, by another field manager), and a
change of 1% of the objects (a new label). Requests come from the API server's audit
log; wall seconds and peak RSS are those of the tool's own process. With --runs N the
tools take turns N times and the table shows medians.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from bench.peers import objects, tools
from bench.peers.audit import AuditLog, Counts
from reconciler import localcluster
from reconciler.localcluster import build

TIMEOUT = 3600  # one phase, seconds: 10,000 objects at one request at a time on a busy box
DRIFTER = "bench-drifter"


@dataclass(frozen=True, slots=True)
class Measured:
    tool: str
    phase: str
    counts: Counts
    wall: float
    rss_mib: float
    note: str = ""


def main() -> None:
    args = _args()
    print(f"load average at start: {_load()}")
    chosen, skipped = _tools(args.tools)
    for n in args.sizes:
        runs = [_run(chosen, n, r, args.keep) for r in range(args.runs)]
        print(table(n, runs, [t.column for t in chosen], skipped))
    print(f"load average at the end: {_load()}")


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__)
    parser.add_argument("--sizes", default="1000", type=_counts, help="objects, e.g. 1000,10000")
    parser.add_argument("--runs", default=1, type=_count, help="interleaved runs (median)")
    parser.add_argument("--tools", default="ours,flux,kubectl,kubectl-prune")
    parser.add_argument("--keep", action="store_true", help="leave each control plane running")
    return parser.parse_args()


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def _counts(text: str) -> list[int]:
    return [_count(x) for x in text.split(",")]


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _tools(names: str) -> tuple[list[tools.Tool], dict[str, str]]:
    """The tools asked for; a driver that cannot be built is reported, never fatal."""
    kubectl = str(build.ensure_binaries(_progress) / "kubectl")
    chosen: list[tools.Tool] = []
    skipped = {"Argo engine": "not run (optional in issue 17; its build takes minutes)"}
    for name in names.split(","):
        if name == "ours":
            chosen.append(tools.ours())
        elif name == "flux":
            flux, why = tools.flux_or_why(_progress)
            chosen.extend([flux] if flux else [])
            skipped.update({"Flux ssa": why} if why else {})
        elif name in ("kubectl", "kubectl-prune"):
            chosen.append(tools.kubectl(kubectl, prune=name == "kubectl-prune"))
        else:
            raise SystemExit(f"--tools: unknown tool {name!r} (ours, flux, kubectl, kubectl-prune)")
    return chosen, skipped


def _progress(message: str) -> None:
    print(message, file=sys.stderr)


def _run(chosen: list[tools.Tool], n: int, run: int, keep: bool) -> list[Measured]:
    rows: list[Measured] = []
    root = Path(tempfile.mkdtemp(prefix=f"bench-peers-{n}-"))
    repos = objects.write(root / "repos", n, prefix=f"p{n}")
    for i, tool in enumerate(chosen):
        state = root / f"cp-{run}-{i}"
        _progress(f"-- run {run + 1}, {n} objects: {tool.column} on a fresh control plane")
        info = localcluster.up(state, nodes=3, progress=_progress)
        try:
            rows.extend(_phases(info, tool, repos))
            if tool.ours:
                rows.append(_bare_list(info, repos))
        finally:
            if not keep:
                localcluster.down(state)
    if not keep:
        shutil.rmtree(root)  # 10,000 objects leave tens of MB of repos and audit logs
    return rows


def _phases(
    info: localcluster.ClusterInfo, tool: tools.Tool, repos: objects.Repos
) -> list[Measured]:
    _namespaces(info, repos.namespaces)
    if tool.setup:
        tool.setup(info)
    base, changed = (
        (repos.ours, repos.ours_changed) if tool.ours else (repos.peers, repos.peers_changed)
    )
    log = AuditLog(Path(info.audit_log), info.kubeconfig)
    rows = [
        _measure(log, info, tool, "first apply", base),
        _measure(log, info, tool, "no-op", base),
    ]
    before = _drift(info, repos.drift)
    healed = _measure(log, info, tool, "drift heal", base)
    after = _order(info, repos.drift)
    note = "" if after == before else f"NOT healed: spec.order {after}, Git says {before}"
    rows.append(replace(healed, note=note))
    rows.append(_measure(log, info, tool, "1% change", changed))
    return rows


def _namespaces(info: localcluster.ClusterInfo, names: tuple[str, ...]) -> None:
    manifest = "".join(
        f"---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n"
        for ns in ("policy-reconciler", *names)
    )
    localcluster.kubectl(info, "apply", "-f", "-", stdin=manifest)


def _drift(info: localcluster.ClusterInfo, target: tuple[str, str, str]) -> int:
    """Edit one object out of band (another field manager); return Git's value."""
    git = _order(info, target)
    resource, _, name = target
    patch = json.dumps({"spec": {"order": git + 1}})
    localcluster.kubectl(
        info, "patch", resource, name, "--type=merge", f"--field-manager={DRIFTER}", "-p", patch
    )
    return git


def _order(info: localcluster.ClusterInfo, target: tuple[str, str, str]) -> int:
    resource, _, name = target
    return int(localcluster.kubectl(info, "get", resource, name, "-o", "jsonpath={.spec.order}"))


def _measure(
    log: AuditLog, info: localcluster.ClusterInfo, tool: tools.Tool, phase: str, folder: Path
) -> Measured:
    argv = tool.command(folder, info.kubeconfig)
    mark = log.mark()
    wall, rss, code, err = _spawn(argv, dict(tool.env))
    if code != 0:
        raise SystemExit(f"{tool.column}, {phase}: exit {code}: {' '.join(argv)}\n{err[-3000:]}")
    counts = log.since(mark, user_agent=tool.user_agent)
    _progress(f"   {phase}: {counts.total} requests, {wall:.2f} s, {rss:.0f} MiB")
    return Measured(tool.column, phase, counts, wall, rss)


def _spawn(argv: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    """Run argv; its wall seconds, peak RSS (MiB, its own process), exit code and stderr."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env={**os.environ, **env})
        _, status, usage = _wait4(proc, TIMEOUT)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not
        err.seek(0)
        return wall, usage.ru_maxrss / 1024, proc.returncode, err.read().decode(errors="replace")


def _wait4(
    proc: subprocess.Popen[bytes], timeout: float
) -> tuple[int, int, resource.struct_rusage]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            return pid, status, usage
        time.sleep(0.02)
    proc.kill()
    return os.wait4(proc.pid, 0)


def _bare_list(info: localcluster.ClusterInfo, repos: objects.Repos) -> Measured:
    """The floor: the same label-selected LISTs of our objects, nothing around them."""
    log = AuditLog(Path(info.audit_log), info.kubeconfig)
    argv = [sys.executable, "-m", "bench.phase", "bare-list", str(repos.ours), info.kubeconfig]
    mark = log.mark()
    wall, rss, code, err = _spawn([*argv, "policy-reconciler"], {})
    if code != 0:
        raise SystemExit(f"bare LIST failed:\n{err[-3000:]}")
    return Measured(
        "bare LIST", "no-op", log.since(mark, user_agent="policy-reconciler/"), wall, rss
    )


Format = Callable[[list[Measured]], str]


def table(n: int, runs: list[list[Measured]], columns: list[str], skipped: dict[str, str]) -> str:
    """The issue's table (medians over runs; requests are the stable figures), then notes
    and the requests by verb of the last run."""
    rows = [m for run in runs for m in run]
    cols = [*columns, "bare LIST"]

    def line(label: str, phase: str, fmt: Format) -> str:
        found = [[m for m in rows if m.tool == c and m.phase == phase] for c in cols]
        return f"| {label} | " + " | ".join(fmt(f) if f else "" for f in found) + " |"

    rss = [max((m.rss_mib for m in rows if m.tool == c), default=0.0) for c in cols]
    lines = [
        f"| {n:,} objects | " + " | ".join(cols) + " |",
        "|---" * (len(cols) + 1) + "|",
        line("no-op: requests", "no-op", _requests_writes),
        line("no-op: wall", "no-op", _wall),
        line("drift heal (one object): requests / wall", "drift heal", _both),
        line("1% change: requests / wall", "1% change", _both),
        line("first apply: requests / wall", "first apply", _both),
        "| peak RSS | " + " | ".join(f"{r:.0f} MiB" if r else "" for r in rss) + " |",
        "",
        *[f"- {m.tool}, {m.phase}: {m.note}" for m in rows if m.note],
        *[f"- {tool}: {why}" for tool, why in skipped.items()],
        f"Requests by verb (run {len(runs)} of {len(runs)}):",
        *[f"- {m.tool}, {m.phase}: {m.counts}" for m in runs[-1]],
    ]
    return "\n".join(lines)


def _median_requests(found: list[Measured]) -> int:
    return int(statistics.median(m.counts.total for m in found))


def _requests_writes(found: list[Measured]) -> str:
    writes = int(statistics.median(m.counts.writes for m in found))
    total = f"{_median_requests(found):,}"
    return f"{total} ({writes:,} writes)" if writes else total


def _wall(found: list[Measured]) -> str:
    return f"{statistics.median(m.wall for m in found):.2f} s"


def _both(found: list[Measured]) -> str:
    return f"{_median_requests(found):,} / {_wall(found)}"


if __name__ == "__main__":
    main()
