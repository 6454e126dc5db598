"""Materialise one commit's `--path` subtree into its own directory, once.

A tree is written to a hidden temporary directory and renamed into place: a directory
named after a sha is complete and never changes afterwards. The newest KEEP trees stay,
so a revision being rendered is not removed by the next fetch. Files are written straight
from the git objects (no .gitattributes filters, no export-ignore): exactly the commit.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath

from git import Blob, Commit, Tree

from reconciler.source.errors import ConfigError, PathError

KEEP = 2  # the revision just fetched and the one before it
_LINK = 0o120000
_TMP = ".tmp-"


def normalize(path: str) -> str:
    """`--path` relative to the repository root, "" for the root; refuses escapes."""
    pure = PurePosixPath(path.strip() or ".")
    if pure.is_absolute() or "\\" in path:
        raise ConfigError(f"path {path!r} must be relative to the repository root")
    if ".." in pure.parts:
        raise ConfigError(f"path {path!r} must not contain '..'")
    return "" if str(pure) == "." else str(pure)


def checkout(*, commit: Commit, path: str, trees: Path) -> Path:
    """The directory holding `path` of `commit`; written on first use."""
    final = trees / commit.hexsha
    if not final.is_dir():
        _materialise(_subtree(commit, path), path=path, final=final)
    os.utime(final)  # the newest stay: see prune
    prune(trees, keep=KEEP)
    return final


def prune(trees: Path, *, keep: int) -> None:
    """Remove all but the `keep` most recently used trees, and leftovers of a crash."""
    entries = [p for p in trees.iterdir() if p.is_dir()]
    stale = [p for p in entries if p.name.startswith(_TMP)]
    done = sorted((p for p in entries if p not in stale), key=_mtime, reverse=True)
    for old in (*stale, *done[keep:]):
        shutil.rmtree(old, ignore_errors=True)


def _mtime(path: Path) -> int:
    return path.stat().st_mtime_ns


def _subtree(commit: Commit, path: str) -> Tree:
    node: Tree | Blob = commit.tree
    walked = PurePosixPath()
    for part in PurePosixPath(path).parts if path else ():
        walked /= part
        try:
            node = node / part
        except KeyError:
            raise PathError(f"path {path!r} does not exist in commit {commit.hexsha[:7]}") from None
        if node.mode == _LINK:
            raise PathError(f"path {path!r}: {walked} is a symlink in commit {commit.hexsha[:7]}")
        if not isinstance(node, Tree):
            raise PathError(f"path {path!r}: {walked} is a file in commit {commit.hexsha[:7]}")
    assert isinstance(node, Tree)
    return node


def _materialise(tree: Tree, *, path: str, final: Path) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=_TMP, dir=final.parent))
    try:
        links = _write(tree, scratch)
        for rel, target in links:  # last: no file is ever written through a link
            os.symlink(target, scratch / rel)
        _check_links(scratch, links=[rel for rel, _ in links], path=path)
        scratch.chmod(0o755)
        scratch.rename(final)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


def _write(tree: Tree, dest: Path) -> list[tuple[str, str]]:
    """Directories and files; returns the symlinks (relative path, target) still to make."""
    links: list[tuple[str, str]] = []
    base = str(tree.path)
    skip = len(base) + 1 if base else 0
    for item in tree.traverse():
        rel = str(item.path)[skip:]  # type: ignore[union-attr]
        if isinstance(item, Tree):
            (dest / rel).mkdir()
        elif isinstance(item, Blob) and item.mode == _LINK:
            links.append((rel, os.fsdecode(item.data_stream.read())))
        elif isinstance(item, Blob):
            (dest / rel).write_bytes(item.data_stream.read())
            (dest / rel).chmod(0o555 if item.mode & 0o111 else 0o444)  # read-only revision
        # submodules (commit entries) are not followed
    return links


def _check_links(root: Path, *, links: list[str], path: str) -> None:
    """Every symlink must resolve inside the checked-out path (after all links exist)."""
    top = root.resolve()
    for rel in links:
        real = Path(os.path.realpath(root / rel))
        if real != top and top not in real.parents:
            shown = PurePosixPath(path or ".") / rel
            raise PathError(f"symlink {shown} points outside {path or 'the repository'}")
