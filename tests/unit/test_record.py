"""Which runs are news (a status write and an Event): a retry of the same failure is not,
however git words it this time; a different failure or a new refusal is."""

from __future__ import annotations

from reconciler.controller.record import Reason, RunRecord

REFUSED_AT = "connect to 127.0.0.1 port 9 after {} ms: Connection refused"


def _run(reason: Reason, message: str, revision: str = "abc") -> RunRecord:
    return RunRecord("retry", reason, message, revision=revision)


def test_a_retry_of_the_same_failure_is_not_news_whatever_its_words() -> None:
    first = _run(Reason.UNREACHABLE, REFUSED_AT.format(0))

    assert not _run(Reason.UNREACHABLE, REFUSED_AT.format(3)).is_news(first)
    assert _run(Reason.AUTH, "401").is_news(first)
    assert _run(Reason.UNREACHABLE, REFUSED_AT.format(3), revision="def").is_news(first)


def test_a_refusal_with_other_errors_is_news() -> None:
    first = _run(Reason.INVALID, "a.yaml:3: bad selector")

    assert _run(Reason.INVALID, "b.yaml:9: bad port").is_news(first)
    assert not _run(Reason.INVALID, "a.yaml:3: bad selector").is_news(first)
