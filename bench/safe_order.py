"""`python -m bench.safe_order`: what the connectivity-checked apply order costs a plan.

On the cluster `bench.connectivity` generates (head = base with 10 policies edited, 2
added, 2 removed: 14 firewall writes), prints the wall time of `plan.safe.safe_order`,
the method it chose and the states it evaluated on the model; then the same plan bridged
without the search, and a first apply of the whole head onto an empty firewall (the
allow-all bridge, no model evaluation). Figures, not assertions.

    python -m bench.safe_order [--sizes 100:300,300:1000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.connectivity import write_cluster
from reconciler.connectivity import Facts
from reconciler.model import Action, Change, Resource
from reconciler.observe.inventory_file import read_inventory
from reconciler.pipeline.connectivity import render_repo
from reconciler.plan.safe import Ordered, Surroundings, safe_order


def changes(base: Sequence[Resource], head: Sequence[Resource]) -> list[Change]:
    old = {r.ref.key: r for r in base}
    out = []
    for r in head:
        live = old.pop(r.ref.key, None)
        if live is None:
            out.append(Change(r.ref, Action.CREATE, r, None))
        elif live.body != r.body:
            out.append(Change(r.ref, Action.UPDATE, r, dict(live.body)))
    out += [Change(r.ref, Action.PRUNE, None, dict(r.body)) for r in old.values()]
    return out


def timed(label: str, run: object) -> None:
    assert callable(run)
    start = time.perf_counter()
    found: Ordered = run()
    took = time.perf_counter() - start
    writes = sum(1 for c in found.changes if c.action.writes)
    print(
        f"  {label:<34} {took:7.2f} s  {found.method:<10} {found.states:>3} states  "
        f"{writes:>5} writes  {len(found.blinks)} blinks"
    )


def run(pods: int, policies: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_cluster(root, pods=pods, policies=policies)
        facts: Facts = read_inventory(root / "inventory.yaml")
        base = render_repo(root / "base", facts).resources
        head = render_repo(root / "head", facts).resources
    plan = changes(base, head)
    print(f"{pods} pods, {policies} policies, {len(plan)} firewall writes:")
    around = Surroundings(tuple(base), facts)
    small = [c for c in plan if c.action is Action.UPDATE][:3]
    timed("a small PR: 3 policies edited", lambda: safe_order(small, around))
    timed("a PR (search, else bridge)", lambda: safe_order(plan, around))
    timed("the same, bridged (no search)", lambda: safe_order(plan, around, reorder=False))
    first = changes((), head)
    timed("first apply onto an empty firewall", lambda: safe_order(first, Surroundings((), facts)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100:300,300:1000", help="pods:policies,...")
    args = parser.parse_args()
    for size in args.sizes.split(","):
        pods, policies = (int(x) for x in size.split(":"))
        run(pods, policies)


if __name__ == "__main__":
    main()
