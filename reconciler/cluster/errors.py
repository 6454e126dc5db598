"""Typed API errors: callers branch on the type, never on HTTP status numbers."""

from __future__ import annotations

import json


class KubeError(RuntimeError):
    status: int = 0

    def __init__(self, message: str, *, status: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status or self.status
        self.reason = reason


class Unreachable(KubeError):
    """No HTTP answer at all (connection refused, TLS, timeout)."""


class ConfigError(KubeError):
    """No usable kubeconfig, context or in-cluster configuration: nothing was sent."""


class BadRequest(KubeError):
    status = 400


class Unauthorized(KubeError):
    status = 401


class Forbidden(KubeError):
    status = 403


class NotFound(KubeError):
    status = 404


class Conflict(KubeError):
    """409: a field-manager conflict on apply, or a stale resourceVersion."""

    status = 409


class Gone(KubeError):
    """410: a watch or list continue token is too old; start again."""

    status = 410


class Invalid(KubeError):
    """422: the server (or a CRD schema) rejected the object."""

    status = 422


class TooManyRequests(KubeError):
    status = 429


_BY_STATUS: dict[int, type[KubeError]] = {
    cls.status: cls
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        Gone,
        Invalid,
        TooManyRequests,
    )
}


def from_response(status: int, body: bytes, *, what: str) -> KubeError:
    """Build the typed error from an API `Status` body (message and reason when present)."""
    message, reason = body.decode(errors="replace")[:2000], ""
    try:
        parsed = json.loads(body)
        message, reason = parsed.get("message", message), parsed.get("reason", "")
    except ValueError:
        pass
    cls = _BY_STATUS.get(status, KubeError)
    return cls(f"{what}: {message}", status=status, reason=reason)
