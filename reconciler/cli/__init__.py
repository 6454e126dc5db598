"""The command line: an outer layer over the pipeline stages (as httpx's `_main.py`).

options.py   every shared flag once, and the frozen arguments of each command
errors.py    exit codes; every error one line on stderr and exit 2
plan.py      plan, apply        report.py  report        run.py  run
status.py    status             localcluster.py  local-cluster up|down|status|build
operate.py   suspend, resume, reconcile: annotations the running controller acts on
connectivity.py  connectivity eval|diff|map: what the firewall allows
"""

from __future__ import annotations

import importlib

import click

from reconciler import __version__
from reconciler.cli.errors import DEBUG_ENV, Group

# Each command's module is imported when the command runs, not when the CLI starts:
# `plan` and `apply` never load the controller, GitPython or the local cluster's code.
_COMMANDS = {
    "apply": ("reconciler.cli.plan", "apply_command"),
    "connectivity": ("reconciler.cli.connectivity", "connectivity"),
    "local-cluster": ("reconciler.cli.localcluster", "local_cluster"),
    "plan": ("reconciler.cli.plan", "plan_command"),
    "reconcile": ("reconciler.cli.operate", "reconcile_command"),
    "report": ("reconciler.cli.report", "report_command"),
    "resume": ("reconciler.cli.operate", "resume_command"),
    "run": ("reconciler.cli.run", "run_command"),
    "status": ("reconciler.cli.status", "status_command"),
    "suspend": ("reconciler.cli.operate", "suspend_command"),
}


class _LazyGroup(Group):
    """The commands of `_COMMANDS`, each imported on first use (click's lazy group)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in _COMMANDS:
            return None
        module, name = _COMMANDS[cmd_name]
        command: click.Command = getattr(importlib.import_module(module), name)
        return command


@click.group(
    cls=_LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="policy-reconciler")
@click.option(
    "--debug",
    is_flag=True,
    envvar=DEBUG_ENV,
    help="Print the traceback of an unexpected error (errors are one line otherwise).",
)
def main(debug: bool) -> None:
    """GitOps reconciler for Kubernetes firewall policy (Calico and NetworkPolicy)."""


def command(name: str) -> click.Command:
    """One command by name (tests parse a command's arguments with it)."""
    found = main.get_command(click.Context(main), name)
    assert found is not None, name
    return found


__all__ = ["command", "main"]
