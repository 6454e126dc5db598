"""`policy-reconciler report`: a pull request's plan and the drift already present, for CI.

Plans the PR head and the base branch against one read of the live cluster (reads only:
never an apply, not even a dry-run), tells this PR's changes from drift already present
(see `reconciler.report.pr`), renders Markdown for reviewers and, with `--publish`, keeps
one sticky comment per pull request and target up to date.

Exit codes as `plan`: 0 this PR changes nothing, 1 it does (or drift, with
--fail-on-drift), 2 error (invalid head, API or forge error, bad options).
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from reconciler import pipeline
from reconciler.cli import options as opt
from reconciler.cli.errors import Command, fail
from reconciler.cli.plan import inventory_of
from reconciler.cluster.client import Cluster
from reconciler.model import Revision
from reconciler.pipeline import review
from reconciler.report import pr
from reconciler.report.publish import (
    FORGES,
    Forge,
    Outcome,
    Publisher,
    api_url_of,
    connect,
    load_token,
    marker_for,
    publish,
)
from reconciler.report.text import DiffStyle
from reconciler.source.export import export_ref, head_revision

_UNLIMITED = 10**9


@dataclass(frozen=True, slots=True)
class Destination:
    """Where the comment goes: a forge, a repository (or GitLab project), a PR number."""

    forge: Forge
    api_url: str
    repo: str
    number: int
    token_env: str
    token_file: Path | None


@click.command("report", cls=Command)
@click.option(
    "--head", "head_dir", type=opt.DIRECTORY, required=True, help="The PR head's policy directory."
)
@click.option("--base", "base_dir", type=opt.DIRECTORY, help="The base branch's policy directory.")
@click.option(
    "--base-ref",
    default="",
    help="Instead of --base: export the base from this git ref (e.g. origin/main) of --repo-dir.",
)
@click.option(
    "--repo-dir", type=opt.DIRECTORY, default=".", show_default=True, help="Git checkout."
)
@opt.plan_options
@opt.diff_options
@click.option("--offline", is_flag=True, help="No cluster: compare the head with the base render.")
@opt.INVENTORY
@click.option("--target", default="", help="Name in the title and marker [default: the context].")
@click.option("--publish", "forge_name", type=click.Choice(sorted(FORGES)), help="Post to a forge.")
@click.option("--api-url", default="", help="Forge API URL [default: per forge].")
@click.option("--repo", default="", help="owner/name (GitHub, Gitea).")
@click.option("--project", default="", help="GitLab project ID or path.")
@click.option("--pr", "number", type=click.IntRange(min=1), help="Pull/merge request number.")
@click.option("--token-env", default="", help="Variable holding the token [default: per forge].")
@click.option("--token-file", type=opt.FILE, help="File with the token.")
@click.option("--dry-run", is_flag=True, help="Print the comment body; send nothing.")
@opt.RUN_URL
@click.option("--fail-on-drift", is_flag=True, help="Exit 1 on drift already present, too.")
@click.option(
    "--max-chars",
    type=click.IntRange(min=1000),
    help="Cut the report to this size [default: the forge's limit; none without --publish].",
)
def report_command(**kw: Any) -> None:
    """Plan a pull request against the cluster, apart from drift already there. Writes nothing."""
    args = opt.report_args(kw)
    destination = _destination(args.publish)
    if destination and not args.publish.dry_run:
        # Before any cluster work: fail fast on a CI setup mistake.
        load_token(env=destination.token_env, file=destination.token_file)
    report = _report(args)
    marker = marker_for(report.target)
    limit = args.max_chars or (destination.forge.limit if destination else _UNLIMITED)
    forge = destination.forge.title if destination else ""
    style = DiffStyle(show_managed=args.show_managed, fields=args.diff_style == "fields")
    run_url = args.run_url or ci_run_url(os.environ)
    body = pr.render_report(
        report, marker=marker, max_chars=limit, forge=forge, run_url=run_url, style=style
    )
    if destination and not args.publish.dry_run:
        full = pr.render_report(
            report, marker=marker, max_chars=_UNLIMITED, run_url=run_url, style=style
        )
        click.echo(full, nl=False)
        _publish(destination, body=body, marker=marker)
    else:
        click.echo(body, nl=False)
        if destination:
            click.echo(f"dry run: nothing sent to {forge} ({len(body):,} characters)", err=True)
    sys.exit(pr.exit_code(report, fail_on_drift=args.fail_on_drift))


def ci_run_url(env: Mapping[str, str]) -> str:
    """The CI run's page: GitHub Actions' run, or GitLab CI's job; "" elsewhere."""
    if env.get("GITHUB_RUN_ID") and env.get("GITHUB_REPOSITORY"):
        server = env.get("GITHUB_SERVER_URL") or "https://github.com"
        return f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
    return env.get("CI_JOB_URL", "")


# --- inputs -----------------------------------------------------------------------------


def _report(args: opt.ReportArgs) -> pr.PrReport:
    head = pipeline.render(args.head_dir, head_revision(args.head_dir), args.settings)
    with _base_tree(args) as (base_dir, base_revision):
        base = pipeline.render(base_dir, base_revision, args.settings)
    settings, base_ref, target = args.settings, args.base_ref, args.target
    if args.offline:
        return review.offline_report(
            head=head,
            base=base,
            settings=settings,
            base_ref=base_ref,
            target=target,
            inventory=inventory_of(args.inventory),
        )
    if args.inventory:
        fail("--inventory goes with --offline")
    cluster = Cluster.connect(args.cluster.connection())
    return review.live_report(
        cluster, head=head, base=base, settings=settings, base_ref=base_ref, target=target
    )


@contextmanager
def _base_tree(args: opt.ReportArgs) -> Iterator[tuple[Path, Revision]]:
    """The base directory as given, or the head's path exported from --base-ref."""
    if bool(args.base_dir) == bool(args.base_ref):
        fail("give exactly one of --base DIR and --base-ref REF")
    if args.base_dir:
        yield args.base_dir, Revision(id=f"dir:{args.base_dir}", path=str(args.base_dir))
        return
    with tempfile.TemporaryDirectory(prefix="policy-reconciler-base-") as scratch:
        yield export_ref(
            args.base_ref, repo_dir=args.repo_dir, head=args.head_dir, into=Path(scratch)
        )


# --- publishing -------------------------------------------------------------------------


def _destination(args: opt.PublishArgs) -> Destination | None:
    if not args.forge_name:
        return None
    forge = FORGES[args.forge_name]
    repo = args.project if forge.by_project else args.repo
    if not repo:
        needed = "--project" if forge.by_project else "--repo owner/name"
        fail(f"--publish {forge.name} needs {needed}")
    if not args.number:
        fail(f"--publish {forge.name} needs --pr NUMBER")
    api_url = api_url_of(forge, args.api_url)
    token_env = args.token_env or forge.token_env
    return Destination(forge, api_url, repo, args.number, token_env, args.token_file)


def _publish(destination: Destination, *, body: str, marker: str) -> None:
    publisher = _publisher(destination)
    done = publish(publisher, body=body, marker=marker)
    what = {
        Outcome.CREATED: "created comment",
        Outcome.UPDATED: "updated comment",
        Outcome.UNCHANGED: "comment already up to date (nothing sent):",
    }[done.outcome]
    where = done.comment.url or publisher.where
    click.echo(f"{publisher.forge}: {what} {done.comment.id} on {where}", err=True)


def _publisher(destination: Destination) -> Publisher:
    secret = load_token(env=destination.token_env, file=destination.token_file)
    return connect(
        destination.forge,
        api_url=destination.api_url,
        repo=destination.repo,
        number=destination.number,
        secret=secret,
    )


__all__ = ["report_command"]
