"""A git ref's tree exported beside a working copy, for `report --base-ref` (GitPython).

CI checks out the pull request; the base branch comes from the same clone. The tree of
`ref` at the head directory's place in the repository is written to a scratch directory,
as the source stage writes a fetched revision (`tree.checkout`).
"""

from __future__ import annotations

from pathlib import Path

import git

from reconciler.model import Revision
from reconciler.source.errors import ConfigError, RefNotFound, SourceError
from reconciler.source.tree import checkout, normalize


def export_ref(ref: str, *, repo_dir: Path, head: Path, into: Path) -> tuple[Path, Revision]:
    """The tree of `ref` at `head`'s path in the checkout holding `repo_dir`."""
    repo = _repo(repo_dir)
    root = Path(repo.working_tree_dir or repo_dir).resolve()
    if not head.resolve().is_relative_to(root):
        raise ConfigError(
            f"--head {head} is not inside the git checkout {root}; use --base DIR instead"
        )
    commit = _commit(repo, ref, root)
    try:
        rel = normalize(head.resolve().relative_to(root).as_posix())
        tree = checkout(commit=commit, path=rel, trees=into)
    except (git.exc.GitError, SourceError) as exc:
        raise SourceError(f"cannot export {ref!r}: {exc}") from exc
    revision = Revision(
        id=commit.hexsha,
        path=str(tree),
        author=str(commit.author.name),
        subject=str(commit.summary),
    )
    return tree, revision


def head_revision(head: Path) -> Revision:
    """The head's commit, marked `dirty` when the directory has local changes (untracked
    files too); the directory itself when it is not in a git checkout."""
    plain = Revision(id=f"dir:{head}", path=str(head))
    try:
        repo = git.Repo(head, search_parent_directories=True)
        dirty = repo.is_dirty(untracked_files=True, path=str(head.resolve()))
        commit = repo.head.commit
    except (git.exc.GitError, ValueError):
        return plain
    return Revision(id=commit.hexsha, path=str(head), subject=str(commit.summary), dirty=dirty)


def _repo(repo_dir: Path) -> git.Repo:
    try:
        return git.Repo(repo_dir, search_parent_directories=True)
    except git.exc.GitError as exc:
        raise ConfigError(
            f"--repo-dir {repo_dir} is not a git checkout: {type(exc).__name__}"
        ) from exc


def _commit(repo: git.Repo, ref: str, root: Path) -> git.Commit:
    try:
        return repo.commit(ref)
    except (git.BadName, git.BadObject, ValueError) as exc:
        raise RefNotFound(
            f"no commit {ref!r} in {root} (in CI, fetch the base branch first)"
        ) from exc
