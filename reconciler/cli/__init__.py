"""The command line: an outer layer over the pipeline stages (as httpx's `_main.py`).

options.py   every shared flag once, and the frozen arguments of each command
errors.py    exit codes; every error one line on stderr and exit 2
plan.py      plan, apply        report.py  report        run.py  run
status.py    status             localcluster.py  local-cluster up|down|status|build
operate.py   suspend, resume, reconcile: annotations the running controller acts on
connectivity.py  connectivity eval|diff|map: what the firewall allows
"""

from __future__ import annotations

import click

from reconciler import __version__
from reconciler.cli.connectivity import connectivity
from reconciler.cli.errors import DEBUG_ENV, Group
from reconciler.cli.localcluster import local_cluster
from reconciler.cli.operate import reconcile_command, resume_command, suspend_command
from reconciler.cli.plan import apply_command, plan_command
from reconciler.cli.report import report_command
from reconciler.cli.run import run_command
from reconciler.cli.status import status_command


@click.group(
    cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
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


main.add_command(plan_command)
main.add_command(apply_command)
main.add_command(local_cluster)
main.add_command(run_command)
main.add_command(status_command)
main.add_command(report_command)
main.add_command(suspend_command)
main.add_command(resume_command)
main.add_command(reconcile_command)
main.add_command(connectivity)

__all__ = ["main"]
