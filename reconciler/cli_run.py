"""`policy-reconciler run` (the controller) and `policy-reconciler status` (its history).

`run --once` reconciles once and exits with the codes of `apply`: 0 applied or in
sync (or suspended), 2 refused or failed.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import click
from kubernetes.config import ConfigException

from reconciler.applyset import ApplySet, is_suspended
from reconciler.cli_plan import (
    EXIT_CLEAN,
    EXIT_ERROR,
    exit_code,
    explain,
    settings_of,
)
from reconciler.cluster import errors
from reconciler.cluster.client import CONFIGMAPS, LEASES, USER_AGENT, Cluster, Connection
from reconciler.controller import logs
from reconciler.controller.leader import LeaseConfig
from reconciler.controller.loop import Run
from reconciler.controller.record import Result, RunRecord
from reconciler.controller.runtime import Controller, ControllerConfig, WebhookConfig
from reconciler.controller.schedule import Timing
from reconciler.controller.status import read_status
from reconciler.controller.watch import WatchTiming
from reconciler.report import render_text
from reconciler.source import ConfigError, GitAuth, GitSource, SourceSpec, Verification

F = TypeVar("F", bound=Callable[..., Any])
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """ "90s", "1m30s", "500ms", "2h" or plain seconds -> seconds."""
    value = text.strip()
    try:
        return float(value)
    except ValueError:
        pass
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise click.BadParameter(f"{text!r} is not a duration like 30s, 1m or 1h30m")
    return sum(float(n) * _UNITS[u] for n, u in parts)


class Duration(click.ParamType[float, Any]):
    name = "duration"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        return value if isinstance(value, float) else parse_duration(str(value))


DURATION = Duration()


def _cluster_options(fn: F) -> F:
    options = [
        click.option("--kubeconfig", envvar="KUBECONFIG", default="",
                     help="Kubeconfig file [default: in-cluster config in a pod, else ~/.kube]."),
        click.option("--context", default="", help="Kubeconfig context [default: current]."),
        click.option("--namespace", "ns", envvar="POLICY_RECONCILER_NAMESPACE",
                     default="policy-reconciler", show_default=True,
                     help="The reconciler's namespace: ApplySet parent, status, Events, Lease."),
        click.option("--applyset", "applyset_name", default="policy-reconciler",
                     show_default=True, help="Name of the ApplySet parent ConfigMap."),
    ]  # fmt: skip
    for option in reversed(options):
        fn = option(fn)
    return fn


RUN_OPTIONS = [
    click.option("--repo", required=True, help="Git URL: https://, ssh://, file:// or a path."),
    click.option("--branch", default="main", show_default=True),
    click.option("--tag", default="", help="Follow a tag instead of a branch."),
    click.option("--commit", default="", help="Pin a commit (over --tag and --branch)."),
    click.option("--path", "repo_path", default=".", show_default=True,
                 help="Directory in the repo to render."),
    click.option("--interval", type=DURATION, default="1m", show_default=True,
                 help="How often to fetch and reconcile (plus up to 10% jitter)."),
    click.option("--retry-interval", type=DURATION, default="10s", show_default=True,
                 help="First retry after a failure; doubles up to --interval."),
    click.option("--webhook-port", type=int, default=None,
                 help="Serve the push webhook on this port (GitHub, GitLab, Gitea, Forgejo)."),
    click.option("--webhook-secret-file", type=click.Path(dir_okay=False, path_type=Path),
                 help="File holding the webhook secret (required with --webhook-port)."),
    click.option("--metrics-port", type=int, default=None,
                 help="Serve /metrics, /healthz and /readyz on this port."),
    click.option("--bind-address", default="0.0.0.0", show_default=True,  # noqa: S104 - a pod
                 help="Address the webhook and metrics servers listen on."),
    click.option("--verify-signatures", type=click.Choice(["openpgp", "ssh"]), default=None,
                 help="Refuse revisions whose commit (or tag) is not signed by a trusted key."),
    click.option("--signing-keys", type=click.Path(exists=True, path_type=Path),
                 help="Armored OpenPGP public keys (file or dir), or an ssh allowed_signers."),
    click.option("--git-token-file", type=click.Path(dir_okay=False, path_type=Path),
                 help="HTTPS token file (sent as an Authorization header)."),
    click.option("--git-username", default="git", show_default=True,
                 help="User name sent with --git-token-file."),
    click.option("--git-ssh-key-file", type=click.Path(dir_okay=False, path_type=Path)),
    click.option("--git-known-hosts-file", type=click.Path(dir_okay=False, path_type=Path)),
    click.option("--git-timeout", type=DURATION, default="60s", show_default=True),
    click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                 help="Where fetched revisions are kept [default: ~/.cache/policy-reconciler]."),
    click.option("--leader-elect", is_flag=True,
                 help="Run as one of several replicas: only the Lease holder writes."),
    click.option("--leader-lease-duration", type=DURATION, default="15s", show_default=True),
    click.option("--leader-renew-interval", type=DURATION, default="5s", show_default=True),
    click.option("--leader-retry-period", type=DURATION, default="2s", show_default=True),
    click.option("--suspend", is_flag=True,
                 help="Start suspended: serve and report, fetch and write nothing."),
    click.option("--self-heal/--no-self-heal", default=True, show_default=True,
                 help="Watch managed objects and revert out-of-band changes within seconds."),
    click.option("--once", is_flag=True,
                 help="Reconcile once and exit with apply's exit codes (CI, jobs)."),
    click.option("--prune/--no-prune", default=True, show_default=True),
    click.option("--max-prune", default="30%", show_default=True,
                 help="Refuse to delete more than this share of managed objects in one run."),
    click.option("--allow-empty", is_flag=True,
                 help="Allow an empty render to prune everything we manage."),
    click.option("--adopt", is_flag=True,
                 help="Take over existing objects of the same name that we do not manage."),
    click.option("--default-namespace", default=""),
    click.option("--calico-version", default="3.31", show_default=True),
    click.option("--log-format", type=click.Choice(["auto", "json", "text"]), default="auto",
                 show_default=True, help="auto: text on a terminal, JSON lines otherwise."),
    click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
                 default="info", show_default=True),
    # For tests and debugging: tell replicas apart in the API server's audit log.
    click.option("--user-agent-suffix", envvar="POLICY_RECONCILER_USER_AGENT_SUFFIX",
                 default="", hidden=True),
    click.option("--identity", envvar="POD_NAME", default="", hidden=True),
    click.option("--debounce", type=DURATION, default="1s", hidden=True),
]  # fmt: skip


def _run_options(fn: F) -> F:
    for option in reversed(RUN_OPTIONS):
        fn = option(fn)
    return fn


@click.command("run")
@_run_options
@_cluster_options
def run_command(**kw: Any) -> None:
    """Run the controller: fetch the repo on an interval or on a push, apply it in
    firewall-safe order, heal drift, and report in status, Events, metrics and logs."""
    _check(kw)
    spec = _source_spec(kw)
    try:
        source = GitSource(spec)
    except ConfigError as exc:
        raise click.UsageError(exc.message) from None
    config = _config(kw)
    logs.setup(fmt=kw["log_format"], level=kw["log_level"])
    try:
        controller = Controller(
            config,
            source=source,
            connection=_connection(kw),
            recall=lambda sha: GitSource(replace(spec, commit=sha, tag="")),
        )
    except ConfigException as exc:  # no usable kubeconfig or in-cluster configuration
        raise click.UsageError(f"cannot load the Kubernetes configuration: {exc}") from None
    if kw["once"]:
        sys.exit(_once(controller))
    _serve(controller)


def _check(kw: dict[str, Any]) -> None:
    if kw["webhook_port"] is not None and not kw["webhook_secret_file"]:
        raise click.UsageError("--webhook-port needs --webhook-secret-file")
    if kw["verify_signatures"] and not kw["signing_keys"]:
        raise click.UsageError("--verify-signatures needs --signing-keys")
    if kw["once"] and kw["leader_elect"]:
        raise click.UsageError("--once reconciles right away: it takes no --leader-elect")


def _source_spec(kw: dict[str, Any]) -> SourceSpec:
    auth = GitAuth(
        token_file=kw["git_token_file"],
        username=kw["git_username"],
        ssh_key_file=kw["git_ssh_key_file"],
        known_hosts_file=kw["git_known_hosts_file"],
    )
    verify = (
        Verification(mode=kw["verify_signatures"], keys=kw["signing_keys"])
        if kw["verify_signatures"]
        else None
    )
    extra = {"cache_dir": kw["cache_dir"]} if kw["cache_dir"] else {}
    return SourceSpec(url=kw["repo"], branch=kw["branch"], tag=kw["tag"], commit=kw["commit"],
                      path=kw["repo_path"], auth=auth, verify=verify, timeout=kw["git_timeout"],
                      **extra)  # fmt: skip


def _config(kw: dict[str, Any]) -> ControllerConfig:
    settings = settings_of(**kw)
    applyset = settings.applyset
    identity = kw["identity"] or f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"
    return ControllerConfig(
        settings=settings,
        identity=identity,
        timing=Timing(interval=kw["interval"], retry=kw["retry_interval"],
                      debounce=kw["debounce"], debounce_max=max(3 * kw["debounce"], 1.0)),
        suspend=kw["suspend"],
        webhook=_webhook(kw),
        metrics_port=kw["metrics_port"],
        metrics_address=kw["bind_address"],
        lease=_lease(kw, applyset, identity),
        self_heal=kw["self_heal"],
        watch=WatchTiming(),
    )  # fmt: skip


def _webhook(kw: dict[str, Any]) -> WebhookConfig | None:
    if kw["webhook_port"] is None:
        return None
    path: Path = kw["webhook_secret_file"]
    try:
        secret = path.read_bytes().strip()
    except OSError as exc:
        raise click.UsageError(
            f"cannot read --webhook-secret-file {path}: {exc.strerror}"
        ) from None
    if not secret:
        raise click.UsageError(f"--webhook-secret-file {path} is empty")
    ref = (
        ""
        if kw["commit"]
        else f"refs/tags/{kw['tag']}"
        if kw["tag"]
        else f"refs/heads/{kw['branch']}"
    )
    return WebhookConfig(
        port=kw["webhook_port"], ref=ref, secret=secret, address=kw["bind_address"]
    )


def _lease(kw: dict[str, Any], applyset: ApplySet, identity: str) -> LeaseConfig | None:
    if not kw["leader_elect"]:
        return None
    return LeaseConfig(
        name=f"{applyset.name}-leader",
        namespace=applyset.namespace,
        identity=identity,
        duration=kw["leader_lease_duration"],
        renew=kw["leader_renew_interval"],
        retry=kw["leader_retry_period"],
    )


def _connection(kw: dict[str, Any]) -> Connection:
    suffix = kw.get("user_agent_suffix") or ""
    agent = f"{USER_AGENT} {suffix}" if suffix else USER_AGENT
    return Connection(kubeconfig=kw["kubeconfig"], context=kw["context"], user_agent=agent)


def _once(controller: Controller) -> int:
    run = controller.run_once()
    if run.plan is not None:
        click.echo(render_text(run.plan, color=sys.stdout.isatty(), result=run.result), nl=False)
    return once_exit_code(run)


def once_exit_code(run: Run) -> int:
    if run.record.result in (Result.FAILED, Result.REFUSED):
        return EXIT_ERROR
    if run.plan is not None and run.result is not None:
        return exit_code(run.plan, run.result)
    return EXIT_CLEAN


def _serve(controller: Controller) -> None:
    """Until SIGTERM or SIGINT; then stop at a safe point and exit 0."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    controller.start()
    while not stop.wait(1.0):
        pass
    controller.stop()
    sys.exit(EXIT_CLEAN)


# -- status ------------------------------------------------------------------------------


@click.command("status")
@_cluster_options
@click.option(
    "-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option(
    "-n",
    "--last",
    "count",
    type=int,
    default=10,
    show_default=True,
    help="How many runs to show, newest first.",
)
def status_command(output: str, count: int, **kw: Any) -> None:
    """Show what the controller did lately: result, revision and counts of each run."""
    applyset = ApplySet(kw["applyset_name"], kw["ns"])
    try:
        cluster = Cluster.connect(Connection(kubeconfig=kw["kubeconfig"], context=kw["context"]))
        status = read_status(cluster, applyset)
        parent = cluster.get(CONFIGMAPS, applyset.name, applyset.namespace)
        lease = cluster.get(LEASES, f"{applyset.name}-leader", applyset.namespace)
    except errors.KubeError as exc:
        click.echo(f"error: {explain(exc)}", err=True)
        sys.exit(EXIT_ERROR)
    holder = str((lease or {}).get("spec", {}).get("holderIdentity") or "")
    view = {
        "applyset": f"{applyset.namespace}/{applyset.name}",
        "suspended": is_suspended(parent),
        "leader": holder,
        "lastAppliedRevision": status.applied_revision,
        "runs": [r.to_json() for r in status.runs[:count]],
    }
    if output == "json":
        click.echo(json.dumps(view, indent=2))
        return
    click.echo(render_status(view, status.runs[:count]))


def render_status(view: dict[str, Any], runs: tuple[RunRecord, ...]) -> str:
    lines = [
        f"ApplySet:   {view['applyset']}",
        f"Suspended:  {'yes (policy-reconciler.io/suspend)' if view['suspended'] else 'no'}",
        f"Revision:   {view['lastAppliedRevision'] or '(none applied yet)'}",
    ]
    if view["leader"]:
        lines.append(f"Leader:     {view['leader']}")
    if not runs:
        lines.append("\nNo runs recorded yet (is `policy-reconciler run` running?).")
        return "\n".join(lines)
    lines += ["", f"{'FINISHED':<21} {'RESULT':<10} {'REASON':<18} {'REVISION':<12} "
              f"{'TOOK':>7}  CHANGES"]  # fmt: skip
    for run in runs:
        written = ", ".join(f"{n} {a}" for a, n in sorted(run.written.items())) or "-"
        lines.append(
            f"{run.finished:<21} {run.result.value:<10} {run.reason.value:<18} "
            f"{run.revision[:12]:<12} {run.duration:>6.1f}s  {written}"
        )
        lines.append(f"    {run.message}")
        lines += [f"    ! {e}" for e in run.errors[1:4]]
    return "\n".join(lines)


__all__ = ["parse_duration", "run_command", "status_command"]
