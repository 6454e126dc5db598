"""The command line: an outer layer over the pipeline stages."""

from __future__ import annotations

import click

from reconciler import __version__
from reconciler.cli_connectivity import connectivity
from reconciler.cli_localcluster import local_cluster
from reconciler.cli_plan import apply_command, plan_command
from reconciler.cli_report import report_command
from reconciler.cli_run import run_command, status_command


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="policy-reconciler")
def main() -> None:
    """GitOps reconciler for Kubernetes firewall policy (Calico and NetworkPolicy)."""


main.add_command(plan_command)
main.add_command(apply_command)
main.add_command(local_cluster)
main.add_command(run_command)
main.add_command(status_command)
main.add_command(report_command)
main.add_command(connectivity)
