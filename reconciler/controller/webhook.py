"""Push webhook receiver: GitHub, GitLab, Gitea and Forgejo push events trigger a reconcile.

Order of checks, cheapest and safest first: body size (before reading it), the
sender's signature over the raw body (constant-time), a replay check, then the
event type and the pushed ref. Nothing in a request is trusted until its
signature is, and the secret never appears in a response or a log line.

Replays: forges sign the body only (GitLab not even that), and no signature carries
a time, so a captured delivery stays valid forever and its delivery-id header can
be rewritten. We therefore remember the digest of every authenticated body, and its
delivery id, for `REPLAY_WINDOW`: a push always has a new body (new `after` sha and
timestamps), so the same body again is a replay, whatever its headers say.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from reconciler.controller.serve import QuietHandler, Reply, Server

log = logging.getLogger(__name__)
MAX_BODY = 4 * 1024 * 1024  # GitHub caps payloads at 25 MB; a policy repo's pushes are small
MAX_JSON_DEPTH = 64  # a push payload nests about 5 deep; json.loads recurses per level
REPLAY_WINDOW = 24 * 3600.0  # seconds a delivery is remembered
REPLAY_LIMIT = 10_000  # deliveries remembered at most (oldest forgotten first)
_LENGTH = re.compile(r"[0-9]{1,12}")  # ASCII digits only: "²".isdigit() is True
_NOT_STRUCTURE = re.compile(rb'"(?:[^"\\]|\\.)*"|[^\[\]{}]')  # strings and scalars
Headers = Message  # http.server's case-insensitive header mapping


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    why: str = ""


def _hmac_sha256(header: str, prefix: str) -> Callable[[Headers, bytes, bytes], Verdict]:
    def verify(headers: Headers, body: bytes, secret: bytes) -> Verdict:
        given = headers.get(header)
        if not given:
            return Verdict(False, f"missing {header}")
        expected = prefix + hmac.new(secret, body, hashlib.sha256).hexdigest()
        same = hmac.compare_digest(expected.encode(), given.strip().encode("latin-1", "replace"))
        return Verdict(same, "" if same else f"{header} does not match the body")

    return verify


def _token(header: str) -> Callable[[Headers, bytes, bytes], Verdict]:
    def verify(headers: Headers, _body: bytes, secret: bytes) -> Verdict:
        given = headers.get(header)
        if not given:
            return Verdict(False, f"missing {header}")
        same = hmac.compare_digest(secret, given.strip().encode("latin-1", "replace"))
        return Verdict(same, "" if same else f"{header} is wrong")

    return verify


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    event_header: str
    push_events: frozenset[str]
    verify: Callable[[Headers, bytes, bytes], Verdict]
    delivery_header: str


# Forgejo also sends X-Gitea-*, and Gitea also sends X-GitHub-*: most specific first.
PROVIDERS = (
    Provider("forgejo", "X-Forgejo-Event", frozenset({"push"}),
             _hmac_sha256("X-Forgejo-Signature", ""), "X-Forgejo-Delivery"),
    Provider("gitea", "X-Gitea-Event", frozenset({"push"}),
             _hmac_sha256("X-Gitea-Signature", ""), "X-Gitea-Delivery"),
    Provider("gitlab", "X-Gitlab-Event", frozenset({"Push Hook", "Tag Push Hook"}),
             _token("X-Gitlab-Token"), "X-Gitlab-Event-UUID"),
    Provider("github", "X-GitHub-Event", frozenset({"push"}),
             _hmac_sha256("X-Hub-Signature-256", "sha256="), "X-GitHub-Delivery"),
)  # fmt: skip


class Replays:
    """Keys of authenticated deliveries seen within the window (thread-safe, bounded)."""

    def __init__(
        self,
        window: float = REPLAY_WINDOW,
        limit: int = REPLAY_LIMIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._window, self._limit, self._clock = window, limit, clock
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def check_and_record(self, keys: list[str]) -> bool:
        """True when any key was seen within the window; records all keys either way."""
        now = self._clock()
        with self._lock:
            self._forget(now)
            repeated = any(k in self._seen for k in keys)
            for key in keys:
                self._seen[key] = now
                self._seen.move_to_end(key)
            while len(self._seen) > self._limit:
                self._seen.popitem(last=False)
        return repeated

    def _forget(self, now: float) -> None:
        while self._seen and now - next(iter(self._seen.values())) > self._window:
            self._seen.popitem(last=False)


@dataclass(frozen=True, slots=True)
class Receiver:
    secret: bytes
    ref: str  # "refs/heads/main", "refs/tags/v1"; "" when pinned to a commit
    trigger: Callable[[], None]
    accepting: Callable[[], bool] = lambda: True  # False on a standby replica
    replays: Replays = field(default_factory=Replays)

    def handle(self, headers: Headers, body: bytes, remote: str) -> Reply:
        provider = next((p for p in PROVIDERS if headers.get(p.event_header)), None)
        if provider is None:
            return self._deny(remote, None, "no X-GitHub/X-Gitlab/X-Gitea/X-Forgejo event header")
        verdict = provider.verify(headers, body, self.secret)
        if not verdict.ok:
            return self._deny(remote, provider, verdict.why)
        delivery = str(headers.get(provider.delivery_header, ""))
        fields = {
            "provider": provider.name,
            "event": headers.get(provider.event_header),
            "delivery": delivery,
            "remote": remote,
        }
        if self.replays.check_and_record(_replay_keys(provider, delivery, body)):
            return _answer(409, "replay", "this delivery was already received", fields)
        return self._dispatch(provider, headers, body, fields)

    def _dispatch(
        self, provider: Provider, headers: Headers, body: bytes, fields: dict[str, Any]
    ) -> Reply:
        if headers.get(provider.event_header) not in provider.push_events:
            return _ignored(fields, f"{fields['event']} is not a push event")
        ref = _pushed_ref(body)
        fields["ref"] = ref
        if ref is None:
            return _answer(400, "error", "the payload is not JSON with a 'ref'", fields)
        if ref != self.ref:
            watching = self.ref or "a pinned commit"
            return _ignored(fields, f"push to {ref}; this reconciler follows {watching}")
        if not self.accepting():
            return _answer(
                503, "standby", "not the leader: the leader's interval applies it", fields
            )
        self.trigger()
        return _answer(200, "triggered", "reconcile triggered", fields)

    def _deny(self, remote: str, provider: Provider | None, why: str) -> Reply:
        name = provider.name if provider else "unknown"
        log.warning(
            "webhook refused: bad or missing signature",
            extra={"provider": name, "reason": why, "remote": remote},
        )
        return _reply(401, {"result": "unauthorized", "reason": why})


def _replay_keys(provider: Provider, delivery: str, body: bytes) -> list[str]:
    keys = [f"{provider.name}/body/{hashlib.sha256(body).hexdigest()}"]
    return [*keys, f"{provider.name}/delivery/{delivery}"] if delivery else keys


def _pushed_ref(body: bytes) -> str | None:
    if _depth(body) > MAX_JSON_DEPTH:
        return None
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return None
    ref = payload.get("ref") if isinstance(payload, dict) else None
    return ref if isinstance(ref, str) else None


def _depth(body: bytes) -> int:
    """Deepest bracket nesting outside strings, found without recursion."""
    depth = deepest = 0
    for byte in _NOT_STRUCTURE.sub(b"", body):
        depth += 1 if byte in b"[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _ignored(fields: Mapping[str, Any], reason: str) -> Reply:
    return _answer(202, "ignored", reason, fields)


def _answer(status: int, result: str, reason: str, fields: Mapping[str, Any]) -> Reply:
    log.info(f"webhook {result}", extra={**fields, "reason": reason})
    return _reply(status, {"result": result, "reason": reason})


def _reply(status: int, body: Mapping[str, str]) -> Reply:
    return Reply(status, (json.dumps(body) + "\n").encode())


class WebhookHandler(QuietHandler):
    receiver: Receiver  # set on the per-server subclass

    def do_POST(self) -> None:
        length = self.headers.get("Content-Length")
        if length is None or not _LENGTH.fullmatch(length.strip()):
            self.close_connection = True  # the body (if any) stays unread
            status, why = (411, "required") if length is None else (400, "is not a number")
            self.send(_reply(status, {"result": "error", "reason": f"Content-Length {why}"}))
            return
        if int(length.strip()) > MAX_BODY:
            self.close_connection = True  # do not read (or drain) an oversized body
            self.send(_reply(413, {"result": "error", "reason": f"body over {MAX_BODY} bytes"}))
            return
        body = self.rfile.read(int(length.strip()))
        self.send(self.receiver.handle(self.headers, body, self.client_address[0]))

    def do_GET(self) -> None:
        self.send(_reply(405, {"result": "error", "reason": "POST push events here"}))


def webhook_server(receiver: Receiver, *, address: str, port: int) -> Server:
    handler = type("BoundWebhookHandler", (WebhookHandler,), {"receiver": receiver})
    return Server("webhook", address, port, handler)
