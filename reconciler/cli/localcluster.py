"""`policy-reconciler local-cluster up|down|status`: the built-in control plane."""

from __future__ import annotations

import time
from pathlib import Path

import click

from reconciler import localcluster
from reconciler.cli.errors import Group

_STATE_DIR = click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where the cluster keeps its data, logs and kubeconfig "
    "[default: ~/.cache/policy-reconciler/local-cluster].",
)


def _progress(message: str) -> None:
    click.echo(message, err=True)  # stdout stays clean for `eval "$(... up)"`


@click.group("local-cluster", cls=Group)
def local_cluster() -> None:
    """A real etcd + kube-apiserver on 127.0.0.1 with Calico CRDs, built from Go modules."""


@local_cluster.command()
@click.option(
    "--nodes",
    default=3,
    show_default=True,
    type=click.IntRange(0, 5000),
    help="Node objects to create (node-1 is the control plane).",
)
@click.option(
    "--calico-apiserver",
    is_flag=True,
    help="Also run Calico's API server (projectcalico.org/v3, aggregated).",
)
@click.option(
    "--dataplane",
    is_flag=True,
    help="Also run Felix per Node in its own network namespace (needs root).",
)
@click.option(
    "--node",
    is_flag=True,
    help="Also run a real node (kubelet, containerd, CNI) in its own network namespace, "
    "so pods run (needs root; scripts/node-deps.sh installs its Debian packages).",
)
@click.option(
    "--image",
    "images",
    multiple=True,
    metavar="REF",
    help="With --node: a podman image to load into the node (repeatable; nothing is pulled).",
)
@_STATE_DIR
def up(  # click passes every option by name
    *,
    nodes: int,
    calico_apiserver: bool,
    dataplane: bool,
    node: bool,
    images: tuple[str, ...],
    state_dir: Path | None,
) -> None:
    """Start it (idempotent). The last line is `export KUBECONFIG=...`."""
    if images and not node:
        raise click.UsageError("--image needs --node")
    started = time.monotonic()
    try:
        info = localcluster.up(
            state_dir or localcluster.default_state_dir(),
            nodes=nodes,
            calico_apiserver=calico_apiserver,
            dataplane=dataplane,
            node=node,
            images=images,
            progress=_progress,
        )
    except localcluster.ERRORS as exc:
        raise click.ClickException(str(exc)) from exc
    _progress(
        f"Local cluster ready at {info.server} in {time.monotonic() - started:.1f}s "
        f"(kubectl: {info.kubectl})"
    )
    click.echo(f"export KUBECONFIG={info.kubeconfig}")


@local_cluster.command()
@_STATE_DIR
def down(state_dir: Path | None) -> None:
    """Stop it and drop its data (the built binaries stay cached)."""
    stopped = localcluster.down(state_dir or localcluster.default_state_dir())
    _progress("Local cluster stopped" if stopped else "No local cluster was running")


@local_cluster.command()
@_STATE_DIR
def status(state_dir: Path | None) -> None:
    """Say whether it runs, where, and with which processes."""
    info = localcluster.current(state_dir or localcluster.default_state_dir())
    if info is None:
        click.echo("Local cluster: not running")
        raise SystemExit(1)
    click.echo(
        f"Local cluster: running\n"
        f"  kube-apiserver  {info.server}  (pid {info.apiserver_pid})\n"
        f"  etcd            {info.etcd_url}  (pid {info.etcd_pid})\n"
        f"  calico API      {_pid(info.calico_apiserver_pid)}\n"
        f"  dataplane       {'Felix per node' if info.dataplane else 'off'}\n"
        f"  real node       {'on' if info.node else 'off'}\n"
        f"  kubeconfig      {info.kubeconfig}\n"
        f"  audit log       {info.audit_log}\n"
        f"  binaries        {info.bin_dir}"
    )


def _pid(pid: int) -> str:
    return f"pid {pid}" if pid else "off"


@local_cluster.command("build")
def build_binaries() -> None:
    """Build (or find cached) etcd, kube-apiserver, kubectl and Helm; print their folder."""
    try:
        click.echo(localcluster.ensure_binaries(progress=_progress))
    except localcluster.BuildError as exc:
        raise click.ClickException(str(exc)) from exc
