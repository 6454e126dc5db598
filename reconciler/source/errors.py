"""Typed source errors. Callers branch on the type (or on `transient`), never on text.

Every message is safe to print: it names the repository by its redacted URL and never
carries a token, a key or URL userinfo.
"""

from __future__ import annotations

from typing import ClassVar


class SourceError(RuntimeError):
    """The source stage could not produce a revision. Permanent unless `transient`."""

    transient: ClassVar[bool] = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unreachable(SourceError):
    """No answer, a timeout or a server error: retry with backoff, keep the last good state."""

    transient = True


class CacheBusy(SourceError):
    """Another fetch held the cache directory for longer than the timeout."""

    transient = True


class AuthFailed(SourceError):
    """Credentials missing or refused, or the SSH host key is not the one we trust."""


class RepositoryNotFound(SourceError):
    pass


class RefNotFound(SourceError):
    """The branch, tag or commit does not exist in the repository."""


class PathError(SourceError):
    """`--path` is missing, not a directory, or escapes the checkout."""


class ConfigError(SourceError):
    """The source spec itself is wrong: bad ref name, unreadable secret file, no keys."""


class SignatureError(SourceError):
    """The revision is unsigned, signed by an untrusted key, or its signature is bad."""
