"""Sticky pull-request comments: the protocol every forge implements, errors, the token.

One comment per pull request and target, found again by a hidden marker in its body
(`<!-- policy-reconciler:report target=prod -->`), edited in place, and left alone
(no write request at all) when its body would not change.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol

_UNSAFE = re.compile(r"[^A-Za-z0-9._:/@+=-]+")
# Waits before the second and third try of a publish whose connection was lost: a reset
# by a load balancer or a forge's restart is common, and rarely lasts.
RETRY_DELAYS = (1.0, 3.0)


# --- errors -----------------------------------------------------------------------------


class PublishError(RuntimeError):
    """Publishing failed; the message is for humans and never holds the token."""

    def __init__(self, message: str, *, status: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class TokenMissing(PublishError):
    """No token in the environment variable or file we were told to read."""


class AuthFailed(PublishError):
    """401: the forge did not accept the token."""


class Forbidden(PublishError):
    """403: the token is valid but may not do this."""


class NotFound(PublishError):
    """404: no such repository or pull request, or the token cannot see it."""


class Rejected(PublishError):
    """400/422: the forge refused the request itself (e.g. a body over its size limit)."""


class RateLimited(PublishError):
    """Still rate limited after one wait, or the wait would be too long."""


class Unreachable(PublishError):
    """No HTTP answer (DNS, connection, TLS, timeout) or an answer that is not the API."""


class ConnectionLost(Unreachable):
    """No HTTP answer at all: refused, reset, timed out. `publish` tries again."""


# --- the token --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Secret:
    """A token that never shows up in repr() or str(); `source` names where it came from."""

    value: str = field(repr=False)
    source: str

    def __str__(self) -> str:
        return f"<token from {self.source}>"


def load_token(*, env: str, file: Path | None = None) -> Secret:
    """From `file` when given (CI secret files), else from the environment variable `env`."""
    if file is not None:
        try:
            value = file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise TokenMissing(f"cannot read the token file {file}: {exc.strerror}") from None
        if not value:
            raise TokenMissing(f"the token file {file} is empty")
        return Secret(value, f"file {file}")
    value = os.environ.get(env, "").strip()
    if not value:
        raise TokenMissing(f"no token: ${env} is unset or empty (or pass --token-file)")
    return Secret(value, f"${env}")


# --- the protocol -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Comment:
    id: int
    body: str
    url: str = ""


class Publisher(Protocol):
    """One pull request (merge request) on one forge."""

    @property
    def forge(self) -> str:
        """ "GitHub", "GitLab" or "Gitea": for messages."""
        ...

    @property
    def limit(self) -> int:
        """The most characters one comment body may hold."""
        ...

    @property
    def where(self) -> str:
        """ "owner/name#7": for messages."""
        ...

    def comments(self) -> Iterator[Comment]:
        """Every comment, oldest first, fetched page by page as it is iterated."""
        ...

    def create(self, body: str) -> Comment: ...

    def edit(self, comment: Comment, body: str) -> Comment: ...


# --- sticky logic -----------------------------------------------------------------------


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class Published:
    outcome: Outcome
    comment: Comment


def marker_for(target: str) -> str:
    """The hidden marker of one target's comment; the target is cleaned so it cannot end the
    HTML comment early (`-->`) or differ only in spacing."""
    cleaned = _UNSAFE.sub("_", target.strip()).replace("--", "-_") or "default"
    return f"<!-- policy-reconciler:report target={cleaned} -->"


def publish(
    publisher: Publisher,
    *,
    body: str,
    marker: str,
    sleep: Callable[[float], None] = time.sleep,
) -> Published:
    """Create the target's comment, or edit it in place; no write when nothing changed.

    A lost connection retries the whole find-then-write, not the one request: a POST whose
    answer was lost may have created the comment, and finding it first never makes two."""
    if marker not in body:
        raise ValueError("the body must carry the marker, or the comment is never found again")
    if len(body) > publisher.limit:
        raise Rejected(
            f"the report has {len(body):,} characters, over {publisher.forge}'s limit of "
            f"{publisher.limit:,}"
        )
    for delay in RETRY_DELAYS:
        try:
            return _publish_once(publisher, body=body, marker=marker)
        except ConnectionLost:
            sleep(delay)
    try:
        return _publish_once(publisher, body=body, marker=marker)
    except ConnectionLost as exc:
        tries = len(RETRY_DELAYS) + 1
        raise ConnectionLost(f"{exc.message} ({tries} tries)", status=exc.status) from None


def _publish_once(publisher: Publisher, *, body: str, marker: str) -> Published:
    existing = next((c for c in publisher.comments() if marker in c.body), None)
    if existing is None:
        return Published(Outcome.CREATED, publisher.create(body))
    if _normalised(existing.body) == _normalised(body):
        return Published(Outcome.UNCHANGED, existing)
    return Published(Outcome.UPDATED, publisher.edit(existing, body))


def _normalised(body: str) -> str:
    """Forges may store CRLF or trim the end; neither is a change worth a write."""
    return body.replace("\r\n", "\n").strip()
