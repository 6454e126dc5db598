"""`policy-reconciler connectivity eval|diff|map`: what the firewall allows.

Exit codes: eval 0 allowed, 1 denied, 2 error or not determined.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from reconciler.cli_plan import parse_calico_version
from reconciler.connectivity import (
    CompileError,
    Facts,
    Flavour,
    PeerError,
    Verdict,
    evaluate,
    parse_packet,
    parse_peer,
    render,
)
from reconciler.connectivity.diff import diff
from reconciler.connectivity.reach import reach_map
from reconciler.connectivity_input import InputError, world_of
from reconciler.inventory_file import InventoryError, read_inventory

EXIT = {Verdict.ALLOW: 0, Verdict.DENY: 1, Verdict.UNKNOWN: 2}
_DIR = click.Path(exists=True, file_okay=False, path_type=Path)
_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_INVENTORY_HELP = "What `kubectl get nodes,namespaces,pods,serviceaccounts -o yaml` prints."
_CALICO_HELP = "Calico release (tier defaultAction from 3.29, K8s policy names in 3.32)."


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def _facts(inventory: Path | None) -> Facts:
    if inventory is None:
        _fail("online mode (reading the cluster) is not available yet: pass --inventory FILE")
        raise AssertionError
    found = read_inventory(inventory)
    return Facts(found.nodes, found.namespaces, found.pods, found.service_accounts)


@click.group("connectivity")
def connectivity() -> None:
    """What the firewall allows, exactly as Calico's Felix evaluates it."""


@connectivity.command("eval")
@click.argument("directory", type=_DIR)
@click.option("--from", "src", required=True, help="cidr:ADDRESS, node:NAME or pod:NAMESPACE/NAME")
@click.option("--to", "dst", required=True, help="cidr:ADDRESS, node:NAME or pod:NAMESPACE/NAME")
@click.option(
    "--port", "port", required=True, help="tcp/N, udp/N, sctp/N, icmp, icmp/TYPE[/CODE], proto/N"
)
@click.option(
    "--inventory", type=_FILE, help="kubectl get nodes,namespaces,pods,serviceaccounts -o yaml"
)
@click.option(
    "-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option(
    "--calico-version",
    default="3.31",
    show_default=True,
    help=_CALICO_HELP,
)
def eval_command(
    *,
    directory: Path,
    src: str,
    dst: str,
    port: str,
    inventory: Path | None,
    output: str,
    calico_version: str,
) -> None:
    """Is one flow allowed? Exit 0 allowed, 1 denied, 2 error or not determined."""
    try:
        packet = parse_packet(port)
        source, destination = parse_peer(src), parse_peer(dst)
        world = world_of(
            directory, _facts(inventory), flavour=Flavour(parse_calico_version(calico_version))
        )
        result = evaluate(world, source, destination, packet)
    except (ValueError, InventoryError, InputError, CompileError, PeerError) as err:
        _fail(str(err))
        return
    click.echo(
        json.dumps(result.as_json(), indent=2) if output == "json" else render.eval_text(result)
    )
    sys.exit(EXIT[result.verdict])


@connectivity.command("diff")
@click.option("--base", "base", type=_DIR, required=True, help="The repo before the change.")
@click.option("--head", "head", type=_DIR, required=True, help="The repo after the change.")
@click.option("--inventory", type=_FILE, help=_INVENTORY_HELP)
@click.option(
    "-o",
    "--output",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
)
@click.option("--calico-version", default="3.31", show_default=True, help=_CALICO_HELP)
def diff_command(
    *, base: Path, head: Path, inventory: Path | None, output: str, calico_version: str
) -> None:
    """Flows whose verdict changes from BASE to HEAD, exactly, with the policies that cause it.

    Exit 0 no change, 1 changes, 2 error (as `plan`)."""
    try:
        facts = _facts(inventory)
        flavour = Flavour(parse_calico_version(calico_version))
        result = diff(
            world_of(base, facts, flavour=flavour), world_of(head, facts, flavour=flavour)
        )
    except (ValueError, InventoryError, InputError, CompileError) as err:
        _fail(str(err))
        return
    shown = {
        "json": lambda: json.dumps(result.as_json(), indent=2),
        "markdown": lambda: render.diff_markdown(result),
    }
    click.echo(shown.get(output, lambda: render.diff_text(result))())
    sys.exit(1 if result.changes else 0)


@connectivity.command("map")
@click.argument("directory", type=_DIR)
@click.option("--inventory", type=_FILE, help=_INVENTORY_HELP)
@click.option(
    "-o",
    "--output",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
)
@click.option("--calico-version", default="3.31", show_default=True, help=_CALICO_HELP)
def map_command(
    *, directory: Path, inventory: Path | None, output: str, calico_version: str
) -> None:
    """Who can reach whom, grouped into classes of peers the policies treat alike."""
    try:
        flavour = Flavour(parse_calico_version(calico_version))
        result = reach_map(world_of(directory, _facts(inventory), flavour=flavour))
    except (ValueError, InventoryError, InputError, CompileError) as err:
        _fail(str(err))
        return
    shown = {
        "json": lambda: json.dumps(result.as_json(), indent=2),
        "markdown": lambda: render.map_markdown(result),
    }
    click.echo(shown.get(output, lambda: render.map_text(result))())
