"""`policy-reconciler connectivity eval|diff|map`: what the firewall allows.

Exit codes: eval 0 allowed, 1 denied, 2 error or not determined; diff 0 no change,
1 changes, 2 error; map 0, or 2 on error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from reconciler.cli.errors import Group, explain
from reconciler.cli.options import parse_calico_version
from reconciler.cluster import errors
from reconciler.cluster.client import Cluster, Connection
from reconciler.connectivity import (
    CompileError,
    Facts,
    Flavour,
    PeerError,
    Verdict,
    World,
    evaluate,
    parse_packet,
    parse_peer,
    render,
)
from reconciler.connectivity.diff import diff
from reconciler.connectivity.reach import reach_map
from reconciler.model import Resource
from reconciler.observe.connectivity import read_cluster
from reconciler.observe.inventory_file import InventoryError, read_inventory
from reconciler.pipeline.connectivity import InputError, world_of

EXIT = {Verdict.ALLOW: 0, Verdict.DENY: 1, Verdict.UNKNOWN: 2}
F = TypeVar("F", bound=Callable[..., Any])
_DIR = click.Path(exists=True, file_okay=False, path_type=Path)
_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_INVENTORY_HELP = (
    "What `kubectl get nodes,namespaces,pods,serviceaccounts -o yaml` prints. "
    "Without it, the live cluster is read (and its firewall objects the repo does not manage)."
)
_CALICO_HELP = "Calico release (tier defaultAction from 3.29, K8s policy names in 3.32)."
_OUTPUT = click.Choice(["text", "json", "markdown"])


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


@dataclass(frozen=True, slots=True)
class Source:
    """Where the facts come from: an inventory file, or the live cluster."""

    inventory: Path | None
    kubeconfig: str
    context: str
    calico: tuple[int, int]

    def read(self) -> tuple[Facts, tuple[Resource, ...]]:
        if self.inventory is not None:
            found = read_inventory(self.inventory)
            facts = Facts(found.nodes, found.namespaces, found.pods, found.service_accounts)
            return facts, ()
        try:
            cluster = Cluster.connect(Connection(kubeconfig=self.kubeconfig, context=self.context))
        except errors.KubeError:
            raise
        except Exception as err:  # the client's config loader raises its own types
            raise InputError(f"no cluster (pass --inventory FILE for offline use): {err}") from None
        try:
            live = read_cluster(cluster, calico=self.calico)
        finally:
            cluster.close()
        return live.facts, live.objects

    def worlds(self, *directories: Path) -> list[World]:
        facts, live = self.read()
        flavour = Flavour(self.calico)
        return [world_of(d, facts, flavour=flavour, live=live) for d in directories]


def source_options(fn: F) -> F:
    """--inventory (offline) or --kubeconfig/--context (online), and --calico-version."""
    options = [
        click.option("--inventory", type=_FILE, help=_INVENTORY_HELP),
        click.option("--kubeconfig", default="", help="Online mode: which cluster ($KUBECONFIG)."),
        click.option("--context", default="", help="Online mode: kubeconfig context."),
        click.option("--calico-version", default="3.31", show_default=True, help=_CALICO_HELP),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _source(options: dict[str, Any]) -> Source:
    return Source(
        inventory=options["inventory"],
        kubeconfig=options["kubeconfig"],
        context=options["context"],
        calico=parse_calico_version(options["calico_version"]),
    )


@contextmanager
def _guarded() -> Iterator[None]:
    """Every expected failure is one line on stderr and exit 2, never a traceback."""
    try:
        yield
    except (ValueError, InventoryError, InputError, CompileError, PeerError) as err:
        _fail(str(err))
    except errors.KubeError as err:  # CalicoMissing included
        _fail(explain(err))


@click.group("connectivity", cls=Group)
def connectivity() -> None:
    """What the firewall allows, exactly as Calico's Felix evaluates it."""


@connectivity.command("eval")
@click.argument("directory", type=_DIR)
@click.option("--from", "src", required=True, help="cidr:ADDRESS, node:NAME or pod:NAMESPACE/NAME")
@click.option("--to", "dst", required=True, help="cidr:ADDRESS, node:NAME or pod:NAMESPACE/NAME")
@click.option("--port", required=True, help="tcp/N, udp/N, sctp/N, icmp, icmp/TYPE[/CODE], proto/N")
@click.option(
    "-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@source_options
def eval_command(
    directory: Path, src: str, dst: str, port: str, output: str, **options: Any
) -> None:
    """Is one flow allowed? Exit 0 allowed, 1 denied, 2 error or not determined."""
    with _guarded():
        packet = parse_packet(port)
        source, destination = parse_peer(src), parse_peer(dst)
        (world,) = _source(options).worlds(directory)
        result = evaluate(world, source, destination, packet)
    click.echo(
        json.dumps(result.as_json(), indent=2) if output == "json" else render.eval_text(result)
    )
    sys.exit(EXIT[result.verdict])


@connectivity.command("diff")
@click.option("--base", type=_DIR, required=True, help="The repo before the change.")
@click.option("--head", type=_DIR, required=True, help="The repo after the change.")
@click.option("-o", "--output", type=_OUTPUT, default="text", show_default=True)
@source_options
def diff_command(base: Path, head: Path, output: str, **options: Any) -> None:
    """Flows whose verdict changes from BASE to HEAD, exactly, with the policies that cause it.

    Exit 0 no change, 1 changes, 2 error (as `plan`)."""
    with _guarded():
        before, after = _source(options).worlds(base, head)
        result = diff(before, after)
    shown = {
        "json": lambda: json.dumps(result.as_json(), indent=2),
        "markdown": lambda: render.diff_markdown(result),
    }
    click.echo(shown.get(output, lambda: render.diff_text(result))())
    sys.exit(1 if result.changes else 0)


@connectivity.command("map")
@click.argument("directory", type=_DIR)
@click.option("-o", "--output", type=_OUTPUT, default="text", show_default=True)
@source_options
def map_command(directory: Path, output: str, **options: Any) -> None:
    """Who can reach whom, grouped into classes of peers the policies treat alike."""
    with _guarded():
        (world,) = _source(options).worlds(directory)
        result = reach_map(world)
    shown = {
        "json": lambda: json.dumps(result.as_json(), indent=2),
        "markdown": lambda: render.map_markdown(result),
    }
    click.echo(shown.get(output, lambda: render.map_text(result))())
