"""`policy-reconciler run`: the controller.

`run --once` reconciles once and exits with the codes of `apply`: 0 applied or in
sync (or suspended), 2 refused or failed.
"""

from __future__ import annotations

import signal
import socket
import sys
import threading
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import Any, Literal, NoReturn

import click

from reconciler import pipeline
from reconciler.cli import options as opt
from reconciler.cli.errors import EXIT_CLEAN, EXIT_ERROR, Command
from reconciler.cli.plan import exit_code
from reconciler.cluster.client import USER_AGENT
from reconciler.controller import logs
from reconciler.controller.leader import LeaseConfig
from reconciler.controller.loop import Run
from reconciler.controller.record import Result
from reconciler.controller.runtime import Controller, ControllerConfig, WebhookConfig
from reconciler.controller.schedule import Timing
from reconciler.controller.watch import WatchTiming
from reconciler.report import render_text
from reconciler.source import ConfigError, GitAuth, GitSource, SourceSpec, Verification

RUN_OPTIONS = opt.stacked(
    click.option("--repo", required=True, help="Git URL: https://, ssh://, file:// or a path."),
    click.option("--branch", default="main", show_default=True),
    click.option("--tag", default="", help="Follow a tag instead of a branch."),
    click.option("--commit", default="", help="Pin a commit (over --tag and --branch)."),
    click.option("--path", "repo_path", default=".", show_default=True,
                 help="Directory in the repo to render."),
    click.option("--interval", type=opt.DURATION, default="1m", show_default=True,
                 help="How often to fetch and reconcile (plus up to 10% jitter)."),
    click.option("--retry-interval", type=opt.DURATION, default="10s", show_default=True,
                 help="First retry after a failure; doubles up to --interval."),
    click.option("--webhook-port", type=opt.PORT, default=None,
                 help="Serve the push webhook on this port (GitHub, GitLab, Gitea, Forgejo)."),
    click.option("--webhook-secret-file", type=opt.FILE,
                 help="File holding the webhook secret (required with --webhook-port)."),
    click.option("--metrics-port", type=opt.PORT, default=None,
                 help="Serve /metrics, /healthz and /readyz on this port."),
    click.option("--bind-address", default="0.0.0.0", show_default=True,  # noqa: S104 - a pod
                 help="Address the webhook and metrics servers listen on."),
    click.option("--verify-signatures", type=click.Choice(["openpgp", "ssh"]), default=None,
                 help="Refuse revisions whose commit (or tag) is not signed by a trusted key."),
    click.option("--signing-keys", type=click.Path(exists=True, path_type=Path),
                 help="Armored OpenPGP public keys (file or dir), or an ssh allowed_signers."),
    click.option("--git-token-file", type=opt.FILE,
                 help="HTTPS token file (sent as an Authorization header)."),
    click.option("--git-username", default="git", show_default=True,
                 help="User name sent with --git-token-file."),
    click.option("--git-ssh-key-file", type=opt.FILE),
    click.option("--git-known-hosts-file", type=opt.FILE),
    click.option("--git-timeout", type=opt.DURATION, default="60s", show_default=True),
    click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                 help="Where fetched revisions are kept [default: ~/.cache/policy-reconciler]."),
    click.option("--leader-elect", is_flag=True,
                 help="Run as one of several replicas: only the Lease holder writes."),
    click.option("--leader-lease-duration", type=opt.DURATION, default="15s", show_default=True),
    click.option("--leader-renew-interval", type=opt.DURATION, default="5s", show_default=True),
    click.option("--leader-retry-period", type=opt.DURATION, default="2s", show_default=True),
    click.option("--suspend", is_flag=True,
                 help="Start suspended: serve and report, fetch and write nothing."),
    click.option("--self-heal/--no-self-heal", default=True, show_default=True,
                 help="Watch managed objects and revert out-of-band changes within seconds."),
    click.option("--once", is_flag=True,
                 help="Reconcile once and exit with apply's exit codes (CI, jobs)."),
    click.option("--log-format", type=click.Choice(["auto", "json", "text"]), default="auto",
                 show_default=True, help="auto: text on a terminal, JSON lines otherwise."),
    click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
                 default="info", show_default=True),
    # For tests and debugging: tell replicas apart in the API server's audit log.
    click.option("--user-agent-suffix", envvar="POLICY_RECONCILER_USER_AGENT_SUFFIX",
                 default="", hidden=True),
    click.option("--identity", envvar="POD_NAME", default="", hidden=True),
    click.option("--debounce", type=opt.DURATION, default="1s", hidden=True),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class RunArgs:
    """`run`: the flags as values (durations in seconds); see RUN_OPTIONS."""

    repo: str
    branch: str
    tag: str
    commit: str
    repo_path: str
    interval: float
    retry_interval: float
    webhook_port: int | None
    webhook_secret_file: Path | None
    metrics_port: int | None
    bind_address: str
    verify_signatures: Literal["openpgp", "ssh"] | None
    signing_keys: Path | None
    git_token_file: Path | None
    git_username: str
    git_ssh_key_file: Path | None
    git_known_hosts_file: Path | None
    git_timeout: float
    cache_dir: Path | None
    leader_elect: bool
    leader_lease_duration: float
    leader_renew_interval: float
    leader_retry_period: float
    suspend: bool
    self_heal: bool
    once: bool
    log_format: str
    log_level: str
    user_agent_suffix: str
    identity: str
    debounce: float
    cluster: opt.ClusterArgs
    settings: pipeline.Settings


@click.command("run", cls=Command)
@RUN_OPTIONS
@opt.plan_options
def run_command(**kw: Any) -> None:
    """Run the controller: fetch the repo on an interval or on a push, apply it in
    firewall-safe order, heal drift, and report in status, Events, metrics and logs."""
    args = opt.args_of(RunArgs, kw, cluster=opt.cluster_args(kw), settings=opt.settings_of(kw))
    _check(args)
    spec = _source_spec(args)
    try:
        source = GitSource(spec)
    except ConfigError as exc:
        raise click.UsageError(exc.message) from None
    config = _config(args)
    logs.setup(fmt=args.log_format, level=args.log_level)
    controller = Controller(
        config,
        source=source,
        connection=args.cluster.connection(user_agent=_user_agent(args)),
        recall=lambda sha: GitSource(replace(spec, commit=sha, tag="")),
    )
    if args.once:
        sys.exit(_once(controller))
    _serve(controller)


def _check(args: RunArgs) -> None:
    if args.webhook_port is not None and not args.webhook_secret_file:
        raise click.UsageError("--webhook-port needs --webhook-secret-file")
    if args.verify_signatures and not args.signing_keys:
        raise click.UsageError("--verify-signatures needs --signing-keys")
    if args.once and args.leader_elect:
        raise click.UsageError("--once reconciles right away: it takes no --leader-elect")


def _source_spec(args: RunArgs) -> SourceSpec:
    auth = GitAuth(
        token_file=args.git_token_file,
        username=args.git_username,
        ssh_key_file=args.git_ssh_key_file,
        known_hosts_file=args.git_known_hosts_file,
    )
    verify = (
        Verification(mode=args.verify_signatures, keys=args.signing_keys)
        if args.verify_signatures and args.signing_keys
        else None
    )
    extra = {"cache_dir": args.cache_dir} if args.cache_dir else {}
    return SourceSpec(url=args.repo, branch=args.branch, tag=args.tag, commit=args.commit,
                      path=args.repo_path, auth=auth, verify=verify, timeout=args.git_timeout,
                      **extra)  # fmt: skip


def _config(args: RunArgs) -> ControllerConfig:
    identity = args.identity or f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"
    return ControllerConfig(
        settings=args.settings,
        identity=identity,
        timing=Timing(interval=args.interval, retry=args.retry_interval,
                      debounce=args.debounce, debounce_max=max(3 * args.debounce, 1.0)),
        suspend=args.suspend,
        webhook=_webhook(args),
        metrics_port=args.metrics_port,
        metrics_address=args.bind_address,
        lease=_lease(args, identity),
        self_heal=args.self_heal,
        watch=WatchTiming(),
    )  # fmt: skip


def _webhook(args: RunArgs) -> WebhookConfig | None:
    if args.webhook_port is None or args.webhook_secret_file is None:
        return None
    path = args.webhook_secret_file
    try:
        secret = path.read_bytes().strip()
    except OSError as exc:
        raise click.UsageError(
            f"cannot read --webhook-secret-file {path}: {exc.strerror}"
        ) from None
    if not secret:
        raise click.UsageError(f"--webhook-secret-file {path} is empty")
    return WebhookConfig(
        port=args.webhook_port, ref=_webhook_ref(args), secret=secret, address=args.bind_address
    )


def _webhook_ref(args: RunArgs) -> str:
    """The ref whose pushes trigger a run: none for a pinned commit."""
    if args.commit:
        return ""
    return f"refs/tags/{args.tag}" if args.tag else f"refs/heads/{args.branch}"


def _lease(args: RunArgs, identity: str) -> LeaseConfig | None:
    if not args.leader_elect:
        return None
    applyset = args.settings.applyset
    return LeaseConfig(
        name=f"{applyset.name}-leader",
        namespace=applyset.namespace,
        identity=identity,
        duration=args.leader_lease_duration,
        renew=args.leader_renew_interval,
        retry=args.leader_retry_period,
    )


def _user_agent(args: RunArgs) -> str:
    suffix = args.user_agent_suffix
    return f"{USER_AGENT} {suffix}" if suffix else USER_AGENT


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


def _serve(controller: Controller) -> NoReturn:
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


__all__ = ["RunArgs", "once_exit_code", "run_command"]
