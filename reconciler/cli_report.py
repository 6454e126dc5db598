"""`policy-reconciler report`: a pull request's plan and the drift already present, for CI.

Plans the PR head and the base branch against the live cluster (reads only: never an
apply, not even a dry-run), tells this PR's changes from drift already present (see
`reconciler.report.pr`), renders Markdown for reviewers and, with `--publish`, keeps
one sticky comment per pull request and target up to date.

Exit codes as `plan`: 0 this PR changes nothing, 1 it does (or drift, with
--fail-on-drift), 2 error (invalid head, API or forge error, bad options).
"""

from __future__ import annotations

import sys
import tempfile
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import click
import git
from kubernetes.config.config_exception import ConfigException

from reconciler import pipeline
from reconciler.cli_plan import explain, plan_options, settings_of
from reconciler.cluster import errors
from reconciler.cluster.client import Cluster, Connection
from reconciler.model import Revision
from reconciler.report import pr
from reconciler.report.publish import (
    FORGES,
    Forge,
    Outcome,
    Publisher,
    PublishError,
    api_url_of,
    connect,
    load_token,
    marker_for,
    publish,
)
from reconciler.source import SourceError
from reconciler.source.tree import checkout, normalize

_DIR = click.Path(exists=True, file_okay=False, path_type=Path)
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


@click.command("report")
@click.option(
    "--head", "head_dir", type=_DIR, required=True, help="The PR head's policy directory."
)
@click.option("--base", "base_dir", type=_DIR, help="The base branch's policy directory.")
@click.option(
    "--base-ref",
    default="",
    help="Instead of --base: export the base from this git ref (e.g. origin/main) of --repo-dir.",
)
@click.option("--repo-dir", type=_DIR, default=".", show_default=True, help="Git checkout.")
@plan_options
@click.option("--offline", is_flag=True, help="No cluster: compare the head with the base render.")
@click.option("--target", default="", help="Name in the title and marker [default: the context].")
@click.option("--publish", "forge_name", type=click.Choice(sorted(FORGES)), help="Post to a forge.")
@click.option("--api-url", default="", help="Forge API URL [default: per forge].")
@click.option("--repo", default="", help="owner/name (GitHub, Gitea).")
@click.option("--project", default="", help="GitLab project ID or path.")
@click.option("--pr", "number", type=click.IntRange(min=1), help="Pull/merge request number.")
@click.option("--token-env", default="", help="Variable holding the token [default: per forge].")
@click.option(
    "--token-file", type=click.Path(dir_okay=False, path_type=Path), help="File with the token."
)
@click.option("--dry-run", is_flag=True, help="Print the comment body; send nothing.")
@click.option("--fail-on-drift", is_flag=True, help="Exit 1 on drift already present, too.")
@click.option(
    "--max-chars",
    type=click.IntRange(min=1000),
    help="Cut the report to this size [default: the forge's limit; none without --publish].",
)
def report_command(**kw: Any) -> None:
    """Plan a pull request against the cluster, apart from drift already there. Writes nothing."""
    try:
        code = _run(**kw)
    except Exception:  # a crash must never exit 1, which CI reads as "changes"
        click.echo(traceback.format_exc(), err=True)
        _fail("internal error (traceback above)")
    sys.exit(code)


def _run(**kw: Any) -> int:
    destination = _destination(**kw)
    if destination and not kw["dry_run"]:
        _check_token(destination)  # before any cluster work: fail fast on a CI setup mistake
    report = _report(**kw)
    marker = marker_for(report.target)
    limit = kw["max_chars"] or (destination.forge.limit if destination else _UNLIMITED)
    forge = destination.forge.title if destination else ""
    body = pr.render_report(report, marker=marker, max_chars=limit, forge=forge)
    if destination and not kw["dry_run"]:
        click.echo(pr.render_report(report, marker=marker, max_chars=_UNLIMITED), nl=False)
        _publish(destination, body=body, marker=marker)
    else:
        click.echo(body, nl=False)
        if destination:
            click.echo(f"dry run: nothing sent to {forge} ({len(body):,} characters)", err=True)
    return pr.exit_code(report, fail_on_drift=kw["fail_on_drift"])


# --- inputs -----------------------------------------------------------------------------


def _report(**kw: Any) -> pr.PrReport:
    settings = settings_of(**kw)
    head = pipeline.render(kw["head_dir"], _head_revision(kw["head_dir"]), settings)
    with _base_tree(**kw) as (base_dir, base_revision):
        base = pipeline.render(base_dir, base_revision, settings)
    common = {"head": head, "base": base, "settings": settings, "base_ref": kw["base_ref"]}
    if kw["offline"]:
        return pr.offline_report(**common, target=kw["target"])
    try:
        connection = Connection(kubeconfig=kw["kubeconfig"], context=kw["context"])
        cluster = Cluster.connect(connection)
        return pr.live_report(cluster, **common, target=kw["target"])
    except errors.KubeError as exc:
        _fail(explain(exc))
    except ConfigException as exc:
        _fail(f"cannot use the kubeconfig: {exc}")


@contextmanager
def _base_tree(**kw: Any) -> Iterator[tuple[Path, Revision]]:
    """The base directory as given, or the head's path exported from --base-ref."""
    if bool(kw["base_dir"]) == bool(kw["base_ref"]):
        _fail("give exactly one of --base DIR and --base-ref REF")
    if kw["base_dir"]:
        yield kw["base_dir"], Revision(id=f"dir:{kw['base_dir']}", path=str(kw["base_dir"]))
        return
    with tempfile.TemporaryDirectory(prefix="policy-reconciler-base-") as scratch:
        yield _export(kw["base_ref"], repo_dir=kw["repo_dir"], head=kw["head_dir"], into=scratch)


def _export(ref: str, *, repo_dir: Path, head: Path, into: str) -> tuple[Path, Revision]:
    """The tree of `ref` at the head directory's place in the repository (GitPython)."""
    try:
        repo = git.Repo(repo_dir, search_parent_directories=True)
    except git.exc.GitError as exc:
        _fail(f"--repo-dir {repo_dir} is not a git checkout: {type(exc).__name__}")
    root = Path(repo.working_tree_dir or repo_dir).resolve()
    if not head.resolve().is_relative_to(root):
        _fail(f"--head {head} is not inside the git checkout {root}; use --base DIR instead")
    try:
        commit = repo.commit(ref)
    except (git.BadName, git.BadObject, ValueError):
        _fail(f"no commit {ref!r} in {root} (in CI, fetch the base branch first)")
    try:
        rel = normalize(head.resolve().relative_to(root).as_posix())
        tree = checkout(commit=commit, path=rel, trees=Path(into))
    except (git.exc.GitError, SourceError) as exc:
        _fail(f"cannot export {ref!r}: {exc}")
    revision = Revision(
        id=commit.hexsha,
        path=str(tree),
        author=str(commit.author.name),
        subject=str(commit.summary),
    )
    return tree, revision


def _head_revision(head: Path) -> Revision:
    """The commit when the head directory is a clean git checkout, else the directory."""
    plain = Revision(id=f"dir:{head}", path=str(head))
    try:
        repo = git.Repo(head, search_parent_directories=True)
        if repo.is_dirty(untracked_files=True, path=str(head.resolve())):
            return plain
        commit = repo.head.commit
    except (git.exc.GitError, ValueError):
        return plain
    return Revision(id=commit.hexsha, path=str(head), subject=str(commit.summary))


# --- publishing -------------------------------------------------------------------------


def _destination(**kw: Any) -> Destination | None:
    name = kw["forge_name"]
    if not name:
        return None
    forge = FORGES[name]
    repo = kw["project"] if forge.by_project else kw["repo"]
    if not repo:
        _fail(f"--publish {name} needs {'--project' if forge.by_project else '--repo owner/name'}")
    if not kw["number"]:
        _fail(f"--publish {name} needs --pr NUMBER")
    try:
        api_url = api_url_of(forge, kw["api_url"])
    except PublishError as exc:
        _fail(exc.message)
    token_env = kw["token_env"] or forge.token_env
    return Destination(forge, api_url, repo, kw["number"], token_env, kw["token_file"])


def _check_token(destination: Destination) -> None:
    try:
        load_token(env=destination.token_env, file=destination.token_file)
    except PublishError as exc:
        _fail(exc.message)


def _publish(destination: Destination, *, body: str, marker: str) -> None:
    try:
        publisher = _publisher(destination)
        done = publish(publisher, body=body, marker=marker)
    except PublishError as exc:
        _fail(exc.message)
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


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(pr.EXIT_ERROR)


__all__ = ["report_command"]
