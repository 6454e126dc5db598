"""`make bench`: first apply and no-op reconcile of generated repos on the local control plane.

Prints API requests by verb (stable across machines, unlike seconds), wall time and
peak RSS for each phase, and compares the no-op reconcile with bare LISTs of the same
objects. Each phase runs in a fresh process so its peak RSS is its own.

    python -m bench [--sizes 1000,5000] [--keep] [--calico-apiserver]

With --calico-apiserver the cluster also runs Calico's API server, so the reconciler
writes and reads projectcalico.org/v3 through the aggregation layer (the v3 path).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.generate import write_repo
from reconciler import localcluster
from reconciler.localcluster import kubectl

PHASES = ("apply", "noop", "bare-list")


def main() -> None:
    args = _args()
    state = Path(tempfile.mkdtemp(prefix="bench-cp-"))
    info = localcluster.up(
        state,
        nodes=3,
        calico_apiserver=args.calico_apiserver,
        progress=lambda m: print(m, file=sys.stderr),
    )
    try:
        rows = [row for n in args.sizes for row in _measure(info, n)]
    finally:
        if not args.keep:
            localcluster.down(state)
    _print(rows)


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument(
        "--sizes", default="1000,5000", type=lambda s: [int(x) for x in s.split(",")]
    )
    parser.add_argument("--keep", action="store_true", help="leave the control plane running")
    parser.add_argument(
        "--calico-apiserver", action="store_true", help="the v3 path: Calico's API server"
    )
    return parser.parse_args()


def _measure(info: localcluster.ClusterInfo, n: int) -> list[dict[str, object]]:
    repo = Path(tempfile.mkdtemp(prefix=f"bench-repo-{n}-"))
    namespaces = write_repo(repo, n, prefix=f"b{n}")
    manifest = "".join(
        f"---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n"
        for ns in ["policy-reconciler", *namespaces]
    )
    kubectl(info, "apply", "-f", "-", stdin=manifest)
    print(f"-- {n} objects", file=sys.stderr)
    return [_phase(info, phase, repo, n) for phase in PHASES]


def _phase(info: localcluster.ClusterInfo, phase: str, repo: Path, n: int) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.phase", phase, str(repo), info.kubeconfig, f"b{n}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"phase {phase} ({n}) failed:\n{proc.stderr}")
    row: dict[str, object] = json.loads(proc.stdout)
    return {"objects": n, "phase": phase, **row}


def _print(rows: list[dict[str, object]]) -> None:
    print(
        f"{'objects':>7} {'phase':<9} {'seconds':>8} {'render':>7} {'RSS MiB':>8} {'req/obj':>8}"
        "  requests"
    )
    for r in rows:
        requests = r["requests"]
        assert isinstance(requests, dict)
        total = sum(requests.values())
        per = total / int(str(r["objects"]))
        verbs = " ".join(f"{k}={v}" for k, v in sorted(requests.items()))
        print(
            f"{r['objects']:>7} {r['phase']:<9} {r['seconds']:>8.2f} {r['render_s']:>7.2f} "
            f"{r['rss_mib']:>8.0f} "
            f"{per:>8.3f}  {verbs}  writes={r['writes']} kinds={r['kinds']}"
        )
    for n in sorted({int(str(r["objects"])) for r in rows}):
        by = {r["phase"]: r for r in rows if r["objects"] == n}
        noop, floor = float(str(by["noop"]["seconds"])), float(str(by["bare-list"]["seconds"]))
        cached = noop - float(str(by["noop"]["render_s"]))
        print(
            f"{n} objects: no-op reconcile / bare LISTs = {noop / floor:.2f}x with render, "
            f"{cached / floor:.2f}x with the revision's render cached (target <= 1.5x)"
        )


if __name__ == "__main__":
    main()
