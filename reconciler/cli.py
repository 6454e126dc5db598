"""The command line: an outer layer over the pipeline stages."""

from __future__ import annotations

import click

from reconciler import __version__
from reconciler.cli_localcluster import local_cluster


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="policy-reconciler")
def main() -> None:
    """GitOps reconciler for Kubernetes firewall policy (Calico and NetworkPolicy)."""


main.add_command(local_cluster)
