"""JSON over HTTPS with the standard library, for the forge publishers.

- Redirects are never followed: urllib would carry the Authorization header to
  wherever the Location points. A redirect is an error that names the new address.
- Pagination links are followed only to the API's own origin, for the same reason.
- HTTP errors become typed PublishErrors with the forge's own message plus a hint.
- A rate limit (429, or 403 with Retry-After or an exhausted x-ratelimit-remaining)
  is waited out once, when the wait it asks for is at most `max_wait` seconds.
- Every message is scrubbed of the token, in case a server ever echoes it.
- A lost connection is a ConnectionLost; `base.publish` retries the whole publish.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from email.utils import parsedate_to_datetime
from typing import Any

from reconciler import __version__
from reconciler.report.publish.base import (
    AuthFailed,
    ConnectionLost,
    Forbidden,
    NotFound,
    PublishError,
    RateLimited,
    Rejected,
    Secret,
    Unreachable,
)

USER_AGENT = f"policy-reconciler/{__version__}"
_ERRORS: Mapping[int, type[PublishError]] = {
    400: Rejected,
    401: AuthFailed,
    403: Forbidden,
    404: NotFound,
    422: Rejected,
}
_HINTS: Mapping[int, str] = {
    401: "the token was not accepted (expired, revoked or mistyped?)",
    404: "check the repository/project and pull request number, and that the token can see them",
    400: "the forge refused the request",
    422: "the forge refused the request",
}
_DEFAULT_WAIT = 60.0  # GitHub: wait at least a minute when a limit names no time


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Mapping[str, str]  # lower-case names
    data: Any


@dataclass(frozen=True, slots=True)
class Transport:
    """One forge API: its base URL, its auth headers, and how long a rate limit may hold us."""

    forge: str
    base_url: str
    secret: Secret
    auth: tuple[str, str]  # header name and value template: ("Authorization", "Bearer {}")
    headers: Mapping[str, str] = field(default_factory=dict)
    forbidden_hint: str = "the token lacks permission to write comments here"
    max_wait: float = 60.0
    timeout: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time
    _opener: urllib.request.OpenerDirector = field(
        default_factory=lambda: urllib.request.build_opener(_NoRedirect), repr=False
    )

    def url(self, path: str, query: Mapping[str, str] | None = None) -> str:
        tail = f"?{urllib.parse.urlencode(query)}" if query else ""
        return f"{self.base_url.rstrip('/')}{path}{tail}"

    def request(self, method: str, url: str, *, body: Mapping[str, Any] | None = None) -> Response:
        """One call, retried once after a rate limit; raises a PublishError on failure."""
        self._check_origin(url)
        response = self._send(method, url, body)
        wait = rate_limit_wait(response, now=self.clock())
        if wait is not None:
            self._wait_once(wait, method=method, url=url)
            response = self._send(method, url, body)
            if rate_limit_wait(response, now=self.clock()) is not None:
                raise RateLimited(self._scrub(self._limited(method, url, retried=True)), status=429)
        if response.status >= 300:
            raise self._error(response, method=method, url=url)
        return response

    # -- sending -----------------------------------------------------------------------

    def _send(self, method: str, url: str, body: Mapping[str, Any] | None) -> Response:
        data = json.dumps(body).encode() if body is not None else None
        name, template = self.auth  # the token goes in here only: never into a field's repr
        headers = {
            "User-Agent": USER_AGENT,
            **self.headers,
            name: template.format(self.secret.value),
        }
        if data is not None:
            headers["Content-Type"] = "application/json"
        # S310: _check_origin admitted only the API's own http(s) origin.
        request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
        try:
            with self._opener.open(request, timeout=self.timeout) as resp:
                return _response(resp.status, resp.headers, resp.read())
        except urllib.error.HTTPError as err:
            with err:
                return _response(err.code, err.headers, err.read())
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            text = f"cannot reach {self.forge} at {_origin(url)}: {reason}"
            raise ConnectionLost(self._scrub(text)) from None

    def _check_origin(self, url: str) -> None:
        """Only ever send the token to the API's own scheme, host and port."""
        if urllib.parse.urlsplit(self.base_url).scheme not in ("http", "https"):
            raise Rejected(f"the {self.forge} API URL must start with https:// (or http://)")
        if _origin(url) != _origin(self.base_url):
            raise Unreachable(
                f"{self.forge} pointed us to {_origin(url)}, outside {_origin(self.base_url)}; "
                "not following it with the token"
            )

    def _wait_once(self, wait: float, *, method: str, url: str) -> None:
        if wait > self.max_wait:
            raise RateLimited(self._scrub(self._limited(method, url, wait=wait)), status=429)
        self.sleep(max(wait, 0.0))

    # -- errors ------------------------------------------------------------------------

    def _limited(self, method: str, url: str, *, wait: float = 0, retried: bool = False) -> str:
        head = f"{self.forge} rate limit on {method} {_path(url)}"
        if retried:
            return f"{head}: still limited after waiting once; try again later"
        return f"{head}: it lifts in {wait:.0f} s, longer than the {self.max_wait:.0f} s we wait"

    def _error(self, response: Response, *, method: str, url: str) -> PublishError:
        status = response.status
        said = server_message(response.data)
        if 300 <= status < 400:
            where = response.headers.get("location", "?")
            text = f"redirected to {where}; pass the final API address as --api-url"
        else:
            hint = self.forbidden_hint if status == 403 else _HINTS.get(status, "")
            text = "; ".join(p for p in (said, hint) if p) or "no message"
        full = f"{self.forge} answered {status} to {method} {_path(url)}: {text}"
        cls = _ERRORS.get(status, PublishError)
        return cls(self._scrub(full), status=status)

    def _scrub(self, text: str) -> str:
        token = self.secret.value
        return text.replace(token, "***") if len(token) >= 4 else text


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises the 3xx as an HTTPError, which we report


def rate_limit_wait(response: Response, *, now: float) -> float | None:
    """Seconds a rate-limit answer asks us to wait; None when it is no rate limit.

    GitHub: 429, or 403 with `retry-after` or `x-ratelimit-remaining: 0` plus
    `x-ratelimit-reset` (epoch seconds). GitLab: 429 with `Retry-After` and
    `RateLimit-Reset`. A 403 without those is a real permission error.
    """
    headers, status = response.headers, response.status
    remaining = headers.get("x-ratelimit-remaining", headers.get("ratelimit-remaining"))
    limited = status == 429 or (status == 403 and ("retry-after" in headers or remaining == "0"))
    if not limited:
        return None
    if after := _retry_after(headers.get("retry-after", ""), now=now):
        return after
    reset = headers.get("x-ratelimit-reset", headers.get("ratelimit-reset", ""))
    if reset.isdigit():
        return max(int(reset) - now, 0.0)
    return _DEFAULT_WAIT


def _retry_after(value: str, *, now: float) -> float | None:
    """`Retry-After` in seconds or as an HTTP date."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    if not value:
        return None
    try:
        return max(parsedate_to_datetime(value).timestamp() - now, 0.0)
    except (TypeError, ValueError):
        return None


def server_message(data: Any) -> str:
    """The forge's own words: `message` (GitHub, Gitea, GitLab), `error`, `errors[].message`."""
    if not isinstance(data, Mapping):
        return str(data)[:300] if data else ""
    parts = [_flatten(data.get("message")), _flatten(data.get("error"))]
    errors = data.get("errors")
    if isinstance(errors, list):
        parts += [_flatten(e.get("message") if isinstance(e, Mapping) else e) for e in errors]
    return "; ".join(p for p in parts if p)[:500]


def _flatten(value: Any) -> str:
    """GitLab nests validation messages: {"note": ["is too long (maximum is ...)"]}."""
    if isinstance(value, Mapping):
        return "; ".join(f"{k} {_flatten(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_flatten(v) for v in value)
    return "" if value is None else str(value)


def _response(status: int, headers: Message, raw: bytes) -> Response:
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        data = json.loads(raw) if raw.strip() else None
    except ValueError:
        data = raw.decode(errors="replace")[:300]
    if 200 <= status < 300 and isinstance(data, str):
        raise Unreachable(f"the answer (HTTP {status}) is not JSON: is the API URL right?")
    return Response(status, lowered, data)


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _path(url: str) -> str:
    return urllib.parse.urlsplit(url).path


def next_link(header: str) -> str:
    """The rel="next" target of an RFC 8288 `Link` header, "" when there is none."""
    for part in header.split(","):
        target, _, params = part.partition(";")
        rels = [p.strip() for p in params.split(";")]
        if any(r.replace(" ", "") in ('rel="next"', "rel=next") for r in rels):
            return target.strip().strip("<>")
    return ""
