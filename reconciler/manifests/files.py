"""Finding and reading the YAML files of a repo, refusing anything that leads outside it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from reconciler.model import Finding, Origin, Severity

YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class SourceFile:
    rel: str  # POSIX path relative to the root, as the user sees it in the repo
    path: Path


@dataclass(frozen=True, slots=True)
class Found:
    files: tuple[SourceFile, ...]  # sorted by relative path, as plain strings
    findings: tuple[Finding, ...]


@dataclass(frozen=True, slots=True)
class _Dir:
    rel: str
    path: Path


def find_yaml_files(root: Path) -> Found:
    """Every `*.yaml`/`*.yml` under `root`, recursively; hidden files and dirs are skipped.

    A symlink (file or dir) resolving outside `root` is an error. Inside `root`, file links
    are read; directory links are not descended, as their target is read where it really is
    (no loops, no subtree loaded twice).
    """
    try:
        real_root = root.resolve(strict=True)
    except OSError as err:
        return Found((), (_error(str(root), f"cannot read the repo: {err.strerror or err}"),))
    if not real_root.is_dir():
        return Found((), (_error(str(root), "not a directory"),))
    files: list[SourceFile] = []
    findings: list[Finding] = []
    pending = [_Dir("", real_root)]
    while pending:
        here = pending.pop()
        for entry in _entries(here, findings):
            rel = f"{here.rel}/{entry.name}" if here.rel else entry.name
            _visit(entry, rel, real_root, pending=pending, files=files, found=findings)
    files.sort(key=lambda f: f.rel)
    return Found(tuple(files), tuple(findings))


def _entries(here: _Dir, findings: list[Finding]) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(here.path) as it:
            return sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
    except OSError as err:
        findings.append(_error(here.rel or ".", f"cannot list directory: {err.strerror or err}"))
        return []


def _visit(
    entry: os.DirEntry[str],
    rel: str,
    root: Path,
    *,
    pending: list[_Dir],
    files: list[SourceFile],
    found: list[Finding],
) -> None:
    is_yaml = entry.name.lower().endswith(YAML_SUFFIXES)
    path = Path(entry.path)
    link = entry.is_symlink()
    if link:
        problem = _symlink_problem(path, root, is_yaml=is_yaml)
        if problem:
            found.append(_error(rel, problem))
            return
    if entry.is_dir():
        if not link:
            pending.append(_Dir(rel, path))
    elif is_yaml and entry.is_file():  # regular files only: a FIFO would block the read
        files.append(SourceFile(rel, path))


def _symlink_problem(path: Path, root: Path, *, is_yaml: bool) -> str:
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError):  # dangling, or a loop of links
        return "broken symlink" if is_yaml else ""
    if target.is_relative_to(root):
        return ""
    if is_yaml or target.is_dir():
        return f"symlink resolves outside the repo ({target}): refused"
    return ""  # e.g. LICENSE -> ../LICENSE: never read, so harmless


def read_text(source: SourceFile, *, max_bytes: int) -> tuple[str, Finding | None]:
    """The file's text (UTF-8, BOM dropped), or an error finding. Reads at most max_bytes + 1."""
    try:
        with source.path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as err:
        return "", _error(source.rel, f"cannot read file: {err.strerror or err}")
    if len(data) > max_bytes:
        return "", _error(source.rel, f"file is larger than {max_bytes} bytes: refused")
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as err:
        return "", _error(source.rel, f"not UTF-8 text (byte {err.start}): {err.reason}")


def _error(path: str, message: str) -> Finding:
    return Finding(Severity.ERROR, message, Origin(path))
