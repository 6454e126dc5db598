"""Run git with a deadline and turn its failures into typed, secret-free errors.

Each command runs in its own process group, so a timeout also ends the remote helper or
ssh that git started (killing git alone would leave them holding our pipes).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from reconciler.source.auth import Scrubber
from reconciler.source.errors import (
    AuthFailed,
    RefNotFound,
    RepositoryNotFound,
    SourceError,
    Unreachable,
)

log = logging.getLogger("reconciler.source")

# (text in git's stderr, lower case) -> (error type, reason). First match wins, so the
# specific causes come before the generic "could not read from remote repository".
RULES: tuple[tuple[str, type[SourceError], str], ...] = (
    ("host key verification failed", AuthFailed,
     "the server's SSH host key is not in known_hosts_file"),
    ("permission denied (publickey", AuthFailed, "the server refused the SSH key"),
    ("authentication failed", AuthFailed, "authentication failed"),
    ("could not read username", AuthFailed, "credentials missing or refused"),
    ("could not read password", AuthFailed, "credentials missing or refused"),
    ("returned error: 401", AuthFailed, "authentication failed (HTTP 401)"),
    ("returned error: 403", AuthFailed, "access denied (HTTP 403)"),
    ("couldn't find remote ref", RefNotFound, "no such ref"),
    ("not our ref", RefNotFound, "no such commit"),
    ("unadvertised object", RefNotFound, "the server does not serve this commit directly"),
    ("repository not found", RepositoryNotFound, "repository not found"),
    ("does not appear to be a git repository", RepositoryNotFound, "repository not found"),
    ("returned error: 404", RepositoryNotFound, "repository not found (HTTP 404)"),
    ("returned error: 429", Unreachable, "rate limited (HTTP 429)"),
    ("returned error: 5", Unreachable, "server error"),
    ("could not resolve host", Unreachable, "cannot resolve the host name"),
    ("connection refused", Unreachable, "connection refused"),
    ("timed out", Unreachable, "connection timed out"),
    ("failed to connect", Unreachable, "cannot connect"),
    ("couldn't connect", Unreachable, "cannot connect"),
    ("no route to host", Unreachable, "no route to host"),
    ("network is unreachable", Unreachable, "network is unreachable"),
    ("connection reset", Unreachable, "connection reset"),
    ("connection closed", Unreachable, "connection closed"),
    ("early eof", Unreachable, "connection closed early"),
    ("hung up unexpectedly", Unreachable, "connection closed early"),
    ("could not read from remote repository", Unreachable, "cannot read from the server"),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Runner:
    """git in one directory, with one environment, one deadline and one scrubber."""

    cwd: Path
    env: Mapping[str, str]
    scrub: Scrubber
    timeout: float

    def run(self, *args: str, what: str) -> str:
        """stdout of `git args`; on failure a SourceError that starts with `what`."""
        log.debug("git %s", self.scrub(" ".join(args)))
        code, out, err = self.call(*args, what=what)
        if code != 0:
            raise classify(what=what, stderr=self.scrub(err))
        return out

    def ok(self, *args: str, what: str) -> str | None:
        """Like run, but None when git fails (a local probe such as rev-parse --verify)."""
        code, out, _ = self.call(*args, what=what)
        return out if code == 0 else None

    def call(self, *args: str, what: str) -> tuple[int, str, str]:
        """Exit code, stdout, stderr of `git args`. The texts are not scrubbed yet."""
        try:
            return self._call(args, what=what)
        except FileNotFoundError:
            if shutil.which("git", path=self.env.get("PATH")):
                raise  # a missing working directory: a bug, not the user's setup
            raise SourceError(
                f"{what}: git is not installed (or not on PATH); install git to fetch"
            ) from None

    def _call(self, args: tuple[str, ...], *, what: str) -> tuple[int, str, str]:
        with subprocess.Popen(
            ["git", *args],
            cwd=self.cwd,
            env=dict(self.env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        ) as proc:
            try:
                out, err = proc.communicate(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
                raise Unreachable(f"{what}: no answer within {self.timeout:g}s") from None
        return proc.returncode, out, err


def classify(*, what: str, stderr: str) -> SourceError:
    detail = _last_message(stderr)
    text = stderr.lower()
    for needle, kind, reason in RULES:
        if needle in text:
            return kind(f"{what}: {reason} (git: {detail})")
    return SourceError(f"{what}: git failed: {detail}")


def _last_message(stderr: str) -> str:
    """git's own verdict: the last fatal/error line, else the last line."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    verdicts = [ln for ln in lines if ln.startswith(("fatal:", "error:"))]
    return (verdicts or lines or ["no output"])[-1]
