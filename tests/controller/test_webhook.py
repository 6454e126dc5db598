"""The push webhook receiver over real HTTP: each provider's signature scheme, refusals,
ignored events, size cap, and the secret never leaking. No cluster needed."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from reconciler.controller.runtime import WebhookConfig
from reconciler.controller.webhook import MAX_BODY, Receiver, Replays, webhook_server
from tests.controller.helpers import github_push, post

SECRET = b"s3cr3t-for-hooks"


@dataclass
class Hook:
    url: str
    port: int
    triggered: list[int]
    accepting: list[bool]


@pytest.fixture
def hook() -> Iterator[Hook]:
    triggered: list[int] = []
    accepting = [True]
    receiver = Receiver(
        SECRET, "refs/heads/main", lambda: triggered.append(1), accepting=lambda: accepting[0]
    )
    server = webhook_server(receiver, address="127.0.0.1", port=0)
    server.start()
    yield Hook(f"http://127.0.0.1:{server.port}/hook", server.port, triggered, accepting)
    server.stop()


def _sign(body: bytes, secret: bytes = SECRET) -> str:
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def _push(ref: str = "refs/heads/main") -> bytes:
    return json.dumps({"ref": ref, "commits": []}).encode()


def test_github_push_with_a_good_signature_triggers(hook: Hook) -> None:
    status, body = github_push(hook.url, SECRET)
    assert (status, body["result"]) == (200, "triggered")
    assert hook.triggered == [1]


@pytest.mark.parametrize(
    "signature",
    [
        "sha256=" + "0" * 64,
        "sha256=",
        "deadbeef",
        "sha1=ab",
        "sha256=" + _sign(_push(), b"other-secret"),
    ],
)
def test_github_bad_signatures_get_401(hook: Hook, signature: str) -> None:
    status, body = github_push(hook.url, None, signature=signature)
    assert (status, body["result"]) == (401, "unauthorized")
    assert hook.triggered == []


def test_missing_signature_or_unknown_sender_gets_401(hook: Hook) -> None:
    assert github_push(hook.url, None)[0] == 401
    assert post(hook.url, _push(), {"Content-Type": "application/json"})[0] == 401
    assert hook.triggered == []


def test_a_signature_over_a_different_body_is_refused(hook: Hook) -> None:
    body = _push()
    signed_for_other = _sign(_push("refs/heads/other"))
    headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": f"sha256={signed_for_other}"}
    assert post(hook.url, body, headers)[0] == 401


def test_gitlab_token(hook: Hook) -> None:
    ok = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": SECRET.decode()}
    assert post(hook.url, _push(), ok)[0] == 200
    wrong = {**ok, "X-Gitlab-Token": "guess"}
    assert post(hook.url, _push(), wrong)[0] == 401
    assert post(hook.url, _push(), {"X-Gitlab-Event": "Push Hook"})[0] == 401
    assert hook.triggered == [1]


@pytest.mark.parametrize("provider", ["Gitea", "Forgejo"])
def test_gitea_and_forgejo_hmac(hook: Hook, provider: str) -> None:
    body = _push()
    headers = {f"X-{provider}-Event": "push", f"X-{provider}-Signature": _sign(body)}
    if provider == "Forgejo":  # Forgejo also sends Gitea's headers, with the same signature
        headers |= {"X-Gitea-Event": "push", "X-Gitea-Signature": _sign(body)}
    assert post(hook.url, body, headers)[0] == 200
    headers[f"X-{provider}-Signature"] = _sign(body, b"wrong")
    assert post(hook.url, body, headers)[0] == 401
    assert hook.triggered == [1]


def test_other_branches_and_other_events_are_ignored_with_a_reason(hook: Hook) -> None:
    status, body = github_push(hook.url, SECRET, ref="refs/heads/feature")
    assert status == 202 and body["result"] == "ignored"
    assert "refs/heads/feature" in body["reason"] and "refs/heads/main" in body["reason"]
    status, body = github_push(hook.url, SECRET, event="issues")
    assert status == 202 and "not a push" in body["reason"]
    status, body = github_push(hook.url, SECRET, event="ping")
    assert status == 202
    assert hook.triggered == []


def test_a_standby_says_so(hook: Hook) -> None:
    hook.accepting[0] = False
    status, body = github_push(hook.url, SECRET)
    assert (status, body["result"]) == (503, "standby")
    assert hook.triggered == []


def _raw_status(port: int, request: bytes) -> int:
    """Send a request in one write (the server may answer before reading a body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        head = sock.recv(4096).decode("latin-1")
    return int(head.split(" ", 2)[1])


def test_body_size_is_capped_before_reading(hook: Hook) -> None:
    # Announces more than the cap, sends 2 bytes: the server must answer, not wait.
    request = (
        f"POST /hook HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: push\r\n"
        f"Content-Length: {MAX_BODY + 1}\r\n\r\n{{}}"
    ).encode()
    assert _raw_status(hook.port, request) == 413


def test_a_body_without_length_is_refused(hook: Hook) -> None:
    request = (
        b"POST /hook HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: push\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    )
    assert _raw_status(hook.port, request) == 411


def test_the_secret_never_appears_in_logs_or_replies(
    hook: Hook, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    replies = [
        github_push(hook.url, SECRET),
        github_push(hook.url, b"wrong"),
        post(hook.url, _push(), {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "nope"}),
        github_push(hook.url, SECRET, ref="refs/heads/x"),
    ]
    assert "webhook refused" in caplog.text and "webhook triggered" in caplog.text
    everything = caplog.text + json.dumps(replies)
    assert SECRET.decode() not in everything
    assert _sign(_push()) not in everything  # nor a signature made with it
    config = WebhookConfig(port=1, ref="refs/heads/main", secret=SECRET)
    assert SECRET.decode() not in repr(config)


# --- hostile requests -------------------------------------------------------------------


def _github_headers(body: bytes, delivery: str) -> dict[str, str]:
    return {
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": f"sha256={_sign(body)}",
    }


def test_a_replayed_delivery_is_refused_whatever_its_delivery_id(hook: Hook) -> None:
    body = _push()
    assert post(hook.url, body, _github_headers(body, "d-1"))[0] == 200

    same = post(hook.url, body, _github_headers(body, "d-1"))
    rewritten = post(hook.url, body, _github_headers(body, "d-2"))  # headers are not signed

    assert (same[0], same[1]["result"], rewritten[0]) == (409, "replay", 409)
    assert hook.triggered == [1]


def test_a_reused_delivery_id_is_a_replay_too(hook: Hook) -> None:
    first, second = _push(), json.dumps({"ref": "refs/heads/main", "after": "b" * 40}).encode()
    third = json.dumps({"ref": "refs/heads/main", "after": "c" * 40}).encode()
    assert post(hook.url, first, _github_headers(first, "d-9"))[0] == 200
    assert post(hook.url, second, _github_headers(second, "d-9"))[0] == 409
    assert post(hook.url, third, _github_headers(third, "d-10"))[0] == 200
    assert hook.triggered == [1, 1]


def test_unauthenticated_requests_are_not_remembered(hook: Hook) -> None:
    """A forged copy must not poison the real delivery that follows it."""
    body = _push()
    forged = {**_github_headers(body, "d-5"), "X-Hub-Signature-256": "sha256=" + "0" * 64}
    assert post(hook.url, body, forged)[0] == 401
    assert post(hook.url, body, _github_headers(body, "d-5"))[0] == 200


def test_replays_are_forgotten_after_the_window_and_memory_is_bounded() -> None:
    now = [0.0]
    replays = Replays(window=60, limit=3, clock=lambda: now[0])
    assert not replays.check_and_record(["a"])
    assert replays.check_and_record(["a"])
    now[0] = 61
    assert not replays.check_and_record(["a"])
    for key in "bcd":
        replays.check_and_record([key])
    assert not replays.check_and_record(["a"])  # evicted by the limit, oldest first


@pytest.mark.parametrize("length", ["\u00b2", "1e3", "-1", "0x10", " ", "9" * 20])
def test_a_malformed_content_length_is_400_without_a_traceback(
    hook: Hook, length: str, capfd: pytest.CaptureFixture[str]
) -> None:
    request = (
        f"POST /hook HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: push\r\n"
        f"Content-Length: {length}\r\n\r\n{{}}"
    ).encode("latin-1")

    assert _raw_status(hook.port, request) == 400
    assert "Traceback" not in capfd.readouterr().err
    assert hook.triggered == []


def test_a_signed_body_nested_deeper_than_json_can_recurse_is_a_400(
    hook: Hook, capfd: pytest.CaptureFixture[str]
) -> None:
    body = b'{"ref": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"

    status, reply = post(hook.url, body, _github_headers(body, "deep"))

    assert (status, reply["result"]) == (400, "error")
    assert "Traceback" not in capfd.readouterr().err
    assert hook.triggered == []
