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
    Evaluation,
    Facts,
    Flavour,
    PeerError,
    Verdict,
    evaluate,
    parse_packet,
    parse_peer,
    show_packet,
)
from reconciler.connectivity_input import InputError, world_of
from reconciler.inventory_file import InventoryError, read_inventory

EXIT = {Verdict.ALLOW: 0, Verdict.DENY: 1, Verdict.UNKNOWN: 2}
_DIR = click.Path(exists=True, file_okay=False, path_type=Path)
_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


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
    help="Calico release (tier defaultAction, policy names).",
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
    click.echo(json.dumps(result.as_json(), indent=2) if output == "json" else render_eval(result))
    sys.exit(EXIT[result.verdict])


def render_eval(result: Evaluation) -> str:
    head = {
        Verdict.ALLOW: "ALLOWED",
        Verdict.DENY: "DENIED",
        Verdict.UNKNOWN: "NOT DETERMINED by the repository",
    }[result.verdict]
    lines = [f"{result.src} -> {result.dst} {show_packet(result.packet)}: {head}", ""]
    for i, step in enumerate(result.path, 1):
        verdict = str(step.verdict) if step.verdict else "continue"
        lines.append(f"  {i}. {step.hop}")
        where = f"  ({step.origin})" if step.origin else ""
        lines.append(f"     {verdict}: {step.detail}{where}")
    if result.missing:
        lines += ["", "Missing assumptions (the answer depends on them):"]
        lines += [f"  - {m}" for m in result.missing]
    if result.assumptions:
        lines += ["", "Assumed:"] + [f"  - {a}" for a in result.assumptions]
    return "\n".join(lines)
