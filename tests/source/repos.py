"""Real upstream repositories for tests: a bare repo plus a working clone that pushes to it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

AUTHOR = {
    "GIT_AUTHOR_NAME": "Alice Example",
    "GIT_AUTHOR_EMAIL": "alice@example.com",
    "GIT_COMMITTER_NAME": "Alice Example",
    "GIT_COMMITTER_EMAIL": "alice@example.com",
}


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Hermetic: no user or system git config, a fixed author."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, **AUTHOR)
    env.update(extra or {})
    return env


def git(cwd: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=git_env(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {done.stderr}")
    return done.stdout.strip()


@dataclass(frozen=True)
class Signer:
    """How git signs: `-c` options (format, key) and environment (GNUPGHOME)."""

    config: tuple[str, ...]
    env: Mapping[str, str]


@dataclass
class Upstream:
    """`bare` is what the source fetches from; `work` is where the test commits."""

    bare: Path
    work: Path
    branch: str = "main"

    @classmethod
    def create(cls, base: Path, name: str = "policies.git") -> Upstream:
        bare, work = base / "srv" / name, base / "work"
        bare.parent.mkdir(parents=True, exist_ok=True)
        git(base, "init", "--quiet", "--bare", "-b", "main", str(bare))
        git(base, "init", "--quiet", "-b", "main", str(work))
        git(work, "remote", "add", "origin", str(bare))
        return cls(bare, work)

    def commit(
        self,
        files: Mapping[str, str] | None = None,
        *,
        message: str = "change",
        links: Mapping[str, str] | None = None,
        remove: Sequence[str] = (),
        signer: Signer | None = None,
        push: bool = True,
    ) -> str:
        """Write files and symlinks, commit (signed when a signer is given), push."""
        for rel, text in (files or {}).items():
            (self.work / rel).parent.mkdir(parents=True, exist_ok=True)
            (self.work / rel).write_text(text)
        for rel, target in (links or {}).items():
            (self.work / rel).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(target, self.work / rel)
        for rel in remove:
            git(self.work, "rm", "-q", "-r", rel)
        git(self.work, "add", "-A")
        config, opts, env = _signing(signer, "-S")
        git(self.work, *config, "commit", "-q", *opts, "--allow-empty", "-m", message, env=env)
        if push:
            self.push()
        return git(self.work, "rev-parse", "HEAD")

    def push(self, *, force: bool = False) -> None:
        git(self.work, "push", "-q", *(["--force"] if force else []), "origin", self.branch)

    def tag(
        self,
        name: str,
        *,
        annotated: bool = False,
        signer: Signer | None = None,
        force: bool = False,
    ) -> None:
        config, opts, env = _signing(signer, "-s")
        if opts or annotated:
            opts = [*(opts or ["-a"]), "-m", f"release {name}"]
        opts += ["-f"] if force else []
        git(self.work, *config, "tag", *opts, name, env=env)
        git(self.work, "push", "-q", *(["--force"] if force else []), "origin", f"refs/tags/{name}")

    def reset_hard(self, sha: str) -> None:
        git(self.work, "reset", "-q", "--hard", sha)


def _signing(
    signer: Signer | None, flag: str
) -> tuple[tuple[str, ...], list[str], Mapping[str, str] | None]:
    if signer is None:
        return (), [], None
    return signer.config, [flag], signer.env
