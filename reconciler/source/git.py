"""The Git source: fetch a branch, a tag or a pinned commit into a cache, verify it, and
check its `--path` out into a directory that stays unchanged while it is rendered.

Cache layout, one directory per (URL, path):
    <cache_dir>/<repo>-<hash>/repo.git     bare repository, fetched into (depth 1)
    <cache_dir>/<repo>-<hash>/trees/<sha>  the checked-out `--path` of each revision
    <cache_dir>/<repo>-<hash>/.lock        one fetch at a time (threads and processes)

Precedence as Flux: `commit` over `tag` over `branch`. A pinned commit is fetched by its
sha (depth 1); when the server will not serve a bare sha (protocol v0) or a short sha is
given, the full history of `branch` is fetched and the commit looked up there.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from git import Commit, Repo, TagObject

from reconciler.model import Revision
from reconciler.source import auth, tree
from reconciler.source.errors import CacheBusy, ConfigError, RefNotFound
from reconciler.source.run import Runner
from reconciler.source.verify import Verification, signed_object, verify

log = logging.getLogger("reconciler.source")

# git check-ref-format's rules that matter for a name we put into a refspec.
_REF_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^$"), "is empty"),
    (re.compile(r"[\x00-\x20\x7f~^:?*\[\\]"), "holds a space, control character or ~^:?*[\\"),
    (re.compile(r"\.\.|@\{|//"), "holds '..', '@{' or '//'"),
    (re.compile(r"(^|/)\.|\.lock(/|$)|[./]$|^[/-]|^@$"), "is not a valid ref name"),
)
_COMMIT = re.compile(r"^[0-9a-f]{7,64}$")
_FULL_SHA = (40, 64)


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "policy-reconciler" / "git"


@dataclass(frozen=True, slots=True)
class SourceSpec:
    url: str
    branch: str = "main"
    tag: str = ""
    commit: str = ""
    path: str = "."
    auth: auth.GitAuth = field(default_factory=auth.GitAuth)
    verify: Verification | None = None
    cache_dir: Path = field(default_factory=_default_cache)
    timeout: float = 60  # seconds, for each git command (fetch, verify)


class GitSource:
    """Fetches one SourceSpec. `fetch()` may be called again and again (interval, webhook)."""

    def __init__(self, spec: SourceSpec) -> None:
        _validate(spec)
        self.spec = spec
        self._url = _absolute(spec.url)
        self._path = tree.normalize(spec.path)
        self._root = spec.cache_dir / _cache_name(auth.redact(self._url), self._path)

    def redacted_url(self) -> str:
        """The URL without userinfo, query or fragment: safe to print."""
        return auth.redact(self._url)

    def describe(self) -> str:
        s = self.spec
        if s.commit:
            return f"commit {s.commit}"
        return f"tag {s.tag!r}" if s.tag else f"branch {s.branch!r}"

    def fetch(self) -> Revision:
        """Network: fetch, verify, check out. Raises a SourceError; `.transient` ones
        (Unreachable, CacheBusy) are worth a retry while the last good revision stays."""
        self._root.mkdir(parents=True, exist_ok=True)
        with _locked(self._root / ".lock", timeout=self.spec.timeout):
            with auth.prepared(
                self.spec.auth, url=self._url, workdir=self._root, timeout=self.spec.timeout
            ) as creds:
                git = Runner(self._repo_dir(), creds.env, creds.scrub, self.spec.timeout)
                sha = self._fetch_target(git)
            revision = self._revision(sha)
        log.info("fetched %s of %s: %s", self.describe(), self.redacted_url(), sha[:12])
        return revision

    def descends(self, old: str, new: str) -> bool | None:
        """Whether `new` has `old` in its history (None: cannot tell, e.g. `old` is not
        held). The cache is shallow, so history back to `old`'s date is fetched first (a
        day of margin for clock skew): a force-push that rewound the branch says False."""
        if old == new:
            return True
        if self.spec.commit:
            return None  # a pinned commit moves only when its pin does
        with (
            _locked(self._root / ".lock", timeout=self.spec.timeout),
            auth.prepared(
                self.spec.auth, url=self._url, workdir=self._root, timeout=self.spec.timeout
            ) as creds,
        ):
            git = Runner(self._repo_dir(), creds.env, creds.scrub, self.spec.timeout)
            return _descends(git, self._url, self._refspec(), old, new)

    # -- fetching ------------------------------------------------------------------------

    def _fetch_target(self, git: Runner) -> str:
        if self.spec.commit:
            return self._fetch_commit(git)
        self._fetch(git, self._refspec())
        return self._resolve(git, self._refspec().rpartition(":")[2])

    def _refspec(self) -> str:
        s = self.spec
        if s.tag:
            return f"+refs/tags/{s.tag}:refs/tags/{s.tag}"
        return f"+refs/heads/{s.branch}:refs/remotes/origin/{s.branch}"

    def _fetch_commit(self, git: Runner) -> str:
        """A pinned commit never changes: once we hold it, no network is needed."""
        commit, branch = self.spec.commit, self.spec.branch
        held = _peel_commit(git, commit)
        if held:
            return held
        if len(commit) in _FULL_SHA:
            try:
                self._fetch(git, f"+{commit}:refs/pinned/{commit}")
                return self._resolve(git, commit)
            except RefNotFound:
                log.debug("the server does not serve %s by sha: fetching the branch", commit)
        self._fetch(git, f"+refs/heads/{branch}:refs/remotes/origin/{branch}", full=True)
        found = _peel_commit(git, commit)
        if found is None:
            raise RefNotFound(
                f"commit {commit} not found on branch {branch!r} of {self.redacted_url()}"
            )
        return found

    def _fetch(self, git: Runner, refspec: str, *, full: bool = False) -> None:
        shallow = (git.cwd / "shallow").exists()
        depth = ("--unshallow",) if full and shallow else () if full else ("--depth=1",)
        git.run(
            "fetch", "--quiet", "--no-tags", "--no-recurse-submodules", *depth,
            "--", self._url, refspec,
            what=f"cannot fetch {self.describe()} from {self.redacted_url()}",
        )  # fmt: skip

    def _resolve(self, git: Runner, ref: str) -> str:
        sha = _peel(git, ref)
        if sha is None:
            raise RefNotFound(f"{self.describe()} of {self.redacted_url()} is not a commit")
        return sha

    def _repo_dir(self) -> Path:
        """The bare cache repository, created whole or not at all."""
        repo = self._root / "repo.git"
        if (repo / "HEAD").is_file():
            return repo
        for leftover in self._root.glob(".init-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        scratch = Path(tempfile.mkdtemp(prefix=".init-", dir=self._root))
        init = Runner(scratch, auth.base_env(), auth.Scrubber("", ""), self.spec.timeout)
        init.run("init", "--quiet", "--bare", ".", what=f"cannot create {repo}")
        shutil.rmtree(repo, ignore_errors=True)
        scratch.rename(repo)
        return repo

    # -- the revision --------------------------------------------------------------------

    def _revision(self, sha: str) -> Revision:
        with Repo(self._root / "repo.git") as repo:
            commit = repo.commit(sha)
            if self.spec.verify is not None:
                signed = signed_object(commit=commit, tag=self._tag_object(repo))
                verify(
                    signed,
                    verification=self.spec.verify,
                    git_dir=Path(repo.git_dir),
                    timeout=self.spec.timeout,
                )
            path = tree.checkout(commit=commit, path=self._path, trees=self._root / "trees")
            return Revision(
                id=commit.hexsha,
                path=str(path.resolve()),
                author=f"{commit.author.name} <{commit.author.email}>",
                subject=_subject(commit),
            )

    def _tag_object(self, repo: Repo) -> TagObject | None:
        if self.spec.commit or not self.spec.tag:
            return None
        found: TagObject | None = repo.tag(f"refs/tags/{self.spec.tag}").tag
        return found


def _peel(git: Runner, ref: str) -> str | None:
    out = git.ok("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", what="rev-parse")
    return out.strip() if out else None


def _descends(git: Runner, url: str, refspec: str, old: str, new: str) -> bool | None:
    when = git.ok("show", "-s", "--format=%ct", f"{old}^{{commit}}", what="date")
    if not when or not when.strip().isdigit():
        return None
    since = int(when.strip()) - 86400
    git.call(
        "fetch", "--quiet", "--no-tags", f"--shallow-since={since}", "--", url, refspec,
        what="history back to the applied commit",
    )  # fmt: skip
    code, _, _ = git.call("merge-base", "--is-ancestor", old, new, what="ancestry")
    return {0: True, 1: False}.get(code)


def _peel_commit(git: Runner, commit: str) -> str | None:
    """The full sha of a (short) commit sha; a ref that happens to look like one is no match."""
    sha = _peel(git, commit)
    return sha if sha and sha.startswith(commit) else None


def _subject(commit: Commit) -> str:
    message = commit.message
    text = message if isinstance(message, str) else message.decode(errors="replace")
    return text.strip().partition("\n")[0].strip()


def _validate(spec: SourceSpec) -> None:
    if not spec.url or spec.url.startswith("-"):
        raise ConfigError(f"repository URL {auth.redact(spec.url)!r} is not valid")
    auth.transport(spec.url)  # raises on an unsupported scheme
    for what, name in (("branch", spec.branch), ("tag", spec.tag)):
        if name or what == "branch":
            _check_ref_name(what, name)
    if spec.commit and not _COMMIT.match(spec.commit):
        raise ConfigError(f"commit {spec.commit!r} is not a hex sha of 7 to 64 digits")
    if spec.timeout <= 0:
        raise ConfigError(f"timeout must be positive, not {spec.timeout}")
    if spec.verify is not None and spec.verify.mode not in ("openpgp", "ssh"):
        raise ConfigError(f"signature mode {spec.verify.mode!r} is not openpgp or ssh")


def _check_ref_name(what: str, name: str) -> None:
    for pattern, why in _REF_RULES:
        if pattern.search(name):
            raise ConfigError(f"{what} {name!r} {why}")


def _absolute(url: str) -> str:
    """A plain path is made absolute: git runs in the cache, not in our working directory."""
    if auth.transport(url) != "file" or "://" in url:
        return url
    return str(Path(url).expanduser().resolve())


def _cache_name(safe_url: str, path: str) -> str:
    digest = hashlib.sha256(f"{safe_url}\n{path}".encode()).hexdigest()[:16]
    last = safe_url.rstrip("/").rpartition("/")[2].rpartition(":")[2]
    slug = re.sub(r"[^A-Za-z0-9._-]", "_", last)[:40] or "repo"
    return f"{slug}-{digest}"


@contextmanager
def _locked(path: Path, *, timeout: float) -> Iterator[None]:
    """flock: one fetch per cache directory, across threads and processes."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise CacheBusy(f"{path.parent} is busy with another fetch") from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)
