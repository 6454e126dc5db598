"""Hostile webhook requests never raise: hypothesis throws headers, bodies and signatures
(some of them valid) at the receiver, which must answer every one with a status code."""

from __future__ import annotations

import hashlib
import hmac
import json
from email.message import Message

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.controller.webhook import Receiver

SECRET = b"fuzz-secret"
EVENT_HEADERS = ["X-GitHub-Event", "X-Gitlab-Event", "X-Gitea-Event", "X-Forgejo-Event"]
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=20,
)
BODY = st.one_of(
    st.binary(max_size=300),
    JSONISH.map(lambda v: json.dumps(v).encode()),
    st.builds(lambda ref: json.dumps({"ref": ref}).encode(), st.text(max_size=30)),
    st.integers(0, 3000).map(lambda n: b'{"ref": ' + b"[" * n + b"]" * n + b"}"),
)


@st.composite
def requests(draw: st.DrawFn) -> tuple[Message, bytes]:
    body = draw(BODY)
    headers = Message()
    for name in draw(st.lists(st.sampled_from(EVENT_HEADERS), max_size=2)):
        headers[name] = draw(st.sampled_from(["push", "Push Hook", "ping", "", "\u00b2"]))
    if draw(st.booleans()):  # a valid signature half the time: the parser must hold too
        digest = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
        headers["X-Hub-Signature-256"] = "sha256=" + digest
        headers["X-Gitea-Signature"] = digest
        headers["X-Forgejo-Signature"] = digest
        headers["X-Gitlab-Token"] = SECRET.decode()
    else:
        headers["X-Hub-Signature-256"] = draw(st.text(max_size=80))
    headers["X-GitHub-Delivery"] = draw(st.text(max_size=40))
    return headers, body


@settings(max_examples=1500)
@given(request=requests())
def test_every_request_gets_an_answer(request: tuple[Message, bytes]) -> None:
    headers, body = request
    triggered: list[int] = []
    receiver = Receiver(SECRET, "refs/heads/main", lambda: triggered.append(1))

    reply = receiver.handle(headers, body, "127.0.0.1")

    assert reply.status in {200, 202, 400, 401, 409, 503}
    assert json.loads(reply.body)["result"]
    assert not triggered or reply.status == 200
