"""Source stage: Git fetch + checkout + signature check -> a Revision (sha, tree path).

    source = GitSource(SourceSpec(url="https://git.example/policies.git", path="prod",
                                  auth=GitAuth(token_file=Path("/secrets/git/token"))))
    revision = source.fetch()  # Revision(id=<sha>, path=<dir of prod/>, author, subject)

Errors are SourceError subclasses with secret-free messages; `error.transient` tells a
retry-worthy failure (Unreachable, CacheBusy) from one that needs a human.
"""

import os
from typing import TYPE_CHECKING, Any

# GitPython refuses to import without a git executable; importing the CLI (or
# `--version` in an image built without git) must not need one. A git operation without
# git is a clear SourceError where it runs (source/run.py).
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

from reconciler.source.auth import GitAuth
from reconciler.source.errors import (
    AuthFailed,
    CacheBusy,
    ConfigError,
    PathError,
    RefNotFound,
    RepositoryNotFound,
    SignatureError,
    SourceError,
    Unreachable,
)
from reconciler.source.verify import Verification

if TYPE_CHECKING:
    from reconciler.source.git import GitSource, SourceSpec


def __getattr__(name: str) -> Any:
    """GitSource and SourceSpec on first use: their module imports GitPython, which a
    command that reads no Git (plan, apply: a directory) should not pay for at start."""
    if name in ("GitSource", "SourceSpec"):
        from reconciler.source import git  # noqa: PLC0415 (lazy on purpose, see above)

        return getattr(git, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AuthFailed",
    "CacheBusy",
    "ConfigError",
    "GitAuth",
    "GitSource",
    "PathError",
    "RefNotFound",
    "RepositoryNotFound",
    "SignatureError",
    "SourceError",
    "SourceSpec",
    "Unreachable",
    "Verification",
]
