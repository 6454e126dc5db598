"""`python -m reconciler.localcluster.watch`: probe a node's ports every 100 ms until
interrupted, then print when each flow opened or closed (for `make demo`).

    python -m reconciler.localcluster.watch --state-dir DIR --to node-1 --port 22 \
        --from node-2 --from outside
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from contextlib import ExitStack
from pathlib import Path

from reconciler.localcluster import dataplane
from reconciler.localcluster.launcher import default_state_dir
from reconciler.localcluster.probe import ProbeLoop, Sample


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    dp = dataplane.load(args.state_dir)
    if dp is None:
        print("no dataplane here: run `local-cluster up --dataplane`", file=sys.stderr)
        return 2
    target = dp.node(args.to)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    loops = [
        ProbeLoop(dp.place(name)[0], [(target.ip, p) for p in args.port]) for name in args.sources
    ]
    with ExitStack() as running:
        for loop in loops:
            running.enter_context(loop)
        stop.wait()
    for name, loop in zip(args.sources, loops, strict=True):
        print(_timeline(name, args.to, loop.samples))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reconciler.localcluster.watch")
    parser.add_argument("--state-dir", type=Path, default=default_state_dir())
    parser.add_argument("--to", default="node-1", help="the node probed")
    parser.add_argument("--port", type=int, action="append", default=[])
    parser.add_argument(
        "--from", dest="sources", action="append", default=[], help="admin, outside or a node"
    )
    return parser


def _timeline(source: str, node: str, samples: list[Sample]) -> str:
    """One line per target: the probe count and each change of verdict with its time."""
    lines = []
    for target in sorted({s.target for s in samples}):
        mine = [s for s in samples if s.target == target]
        changes = [s for i, s in enumerate(mine) if i == 0 or s.ok != mine[i - 1].ok]
        steps = ", ".join(f"{'open' if s.ok else 'CLOSED'} at {s.at:.1f}s" for s in changes)
        failed = sum(1 for s in mine if not s.ok)
        port = target.split(":")[1]
        lines.append(f"{source} -> {node}:{port}: {len(mine)} probes, {failed} failed ({steps})")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
