"""The three publishers against local stand-ins of GitHub, GitLab and Gitea (see forges.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from reconciler.report.publish import (
    FORGES,
    AuthFailed,
    ConnectionLost,
    Forbidden,
    NotFound,
    Outcome,
    Publisher,
    PublishError,
    RateLimited,
    Rejected,
    Secret,
    Unreachable,
    connect,
    marker_for,
    publish,
)
from tests.report.forges import ForgeServer, GiteaServer, GitHubServer, GitLabServer

MARKER = marker_for("prod")
BODY = f"{MARKER}\n\n### policy-reconciler report for prod\n\nfirst\n"
REPOS = {"github": "acme/policies", "gitlab": "platform/policies", "gitea": "acme/policies"}
LIST_PATHS = {
    "github": "/repos/acme/policies/issues/7/comments",
    "gitlab": "/api/v4/projects/platform%2Fpolicies/merge_requests/7/notes",
    "gitea": "/api/v1/repos/acme/policies/issues/7/comments",
}


@dataclass
class Sleeps:
    """Records waits instead of sleeping: the tests stay fast, the waits stay visible."""

    waits: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@dataclass
class Forge:
    name: str
    server: ForgeServer
    sleeps: Sleeps

    def publisher(self, *, token: str = "", number: int = 7, **options: Any) -> Publisher:
        secret = Secret(token or self.server.token, "test")
        options.setdefault("sleep", self.sleeps)
        return connect(
            FORGES[self.name],
            api_url=self.server.api_url,
            repo=REPOS[self.name],
            number=number,
            secret=secret,
            **options,
        )

    def comments(self) -> list[dict[str, Any]]:
        return self.server.comments.get(7, [])


@pytest.fixture(params=["github", "gitlab", "gitea"])
def forge(request: pytest.FixtureRequest) -> Iterator[Forge]:
    server = {"github": GitHubServer, "gitlab": GitLabServer, "gitea": GiteaServer}[request.param]()
    with server:
        yield Forge(request.param, server, Sleeps())


# --- sticky comments --------------------------------------------------------------------


def test_creates_then_edits_in_place(forge: Forge) -> None:
    first = publish(forge.publisher(), body=BODY, marker=MARKER)
    assert first.outcome is Outcome.CREATED
    second = publish(forge.publisher(), body=BODY.replace("first", "second"), marker=MARKER)
    assert second.outcome is Outcome.UPDATED
    assert second.comment.id == first.comment.id
    assert [c["body"] for c in forge.comments()] == [BODY.replace("first", "second")]
    methods = [r.method for r in forge.server.writes()]
    assert methods == ["POST", "PUT" if forge.name == "gitlab" else "PATCH"]


def test_unchanged_body_sends_no_write(forge: Forge) -> None:
    publish(forge.publisher(), body=BODY, marker=MARKER)
    before = len(forge.server.requests)
    again = publish(forge.publisher(), body=BODY + "\n", marker=MARKER)  # trailing space: same
    assert again.outcome is Outcome.UNCHANGED
    later = forge.server.requests[before:]
    assert later and all(r.method == "GET" for r in later)
    assert len(forge.server.writes()) == 1


def test_one_comment_per_target(forge: Forge) -> None:
    staging = marker_for("staging")
    publish(forge.publisher(), body=BODY, marker=MARKER)
    publish(forge.publisher(), body=f"{staging}\nstaging\n", marker=staging)
    publish(forge.publisher(), body=BODY.replace("first", "again"), marker=MARKER)
    bodies = [c["body"] for c in forge.comments()]
    assert len(bodies) == 2
    assert bodies[0].startswith(MARKER) and "again" in bodies[0]
    assert bodies[1].startswith(staging)


def test_finds_the_marker_on_a_later_page(forge: Forge) -> None:
    if isinstance(forge.server, GiteaServer):
        forge.server.paginate = True  # as Gitea's paginated endpoints do; see gitea.py
    forge.server.seed(7, [f"unrelated comment {i}" for i in range(230)])
    ours = forge.server.add(7, BODY)
    forge.server.seed(7, ["a later comment"])
    done = publish(forge.publisher(), body=BODY.replace("first", "second"), marker=MARKER)
    assert done.outcome is Outcome.UPDATED and done.comment.id == ours["id"]
    gets = [r for r in forge.server.requests if r.method == "GET"]
    expected_pages = 5 if forge.name == "gitea" else 3  # 50 a page on Gitea, else 100
    assert len(gets) == expected_pages
    assert len(forge.comments()) == 232


def test_gitea_without_pagination_reads_everything_in_one_request() -> None:
    with GiteaServer() as server:
        server.seed(7, [f"comment {i}" for i in range(120)])
        server.add(7, BODY)
        forge = Forge("gitea", server, Sleeps())
        assert publish(forge.publisher(), body=BODY, marker=MARKER).outcome is Outcome.UNCHANGED
        assert [r.method for r in server.requests] == ["GET"]


def test_gitlab_skips_system_notes_and_reads_oldest_first() -> None:
    with GitLabServer() as server:
        server.add(7, f"added 1 commit {MARKER}", system=True)  # never ours to edit
        forge = Forge("gitlab", server, Sleeps())
        assert publish(forge.publisher(), body=BODY, marker=MARKER).outcome is Outcome.CREATED
        listing = server.requests[0]
        assert listing.query["sort"] == "asc" and listing.query["order_by"] == "created_at"
        assert listing.query["per_page"] == "100"


def test_request_headers_follow_each_api(forge: Forge) -> None:
    publish(forge.publisher(), body=BODY, marker=MARKER)
    first = forge.server.requests[0]
    token = forge.server.token
    assert first.path == LIST_PATHS[forge.name]
    assert first.headers["user-agent"].startswith("policy-reconciler/")
    if forge.name == "github":
        assert first.headers["authorization"] == f"Bearer {token}"
        assert first.headers["accept"] == "application/vnd.github+json"
        assert first.headers["x-github-api-version"] == "2022-11-28"
        assert first.query["per_page"] == "100"
    elif forge.name == "gitlab":
        assert first.headers["private-token"] == token
        assert "authorization" not in first.headers
    else:
        assert first.headers["authorization"] == f"token {token}"
    post = forge.server.writes()[0]
    assert post.headers["content-type"] == "application/json" and post.body == {"body": BODY}


# --- errors -----------------------------------------------------------------------------


def test_401_names_the_problem_and_never_the_token(forge: Forge) -> None:
    wrong = "wrong-token-0123456789"
    publisher = forge.publisher(token=wrong)
    with pytest.raises(AuthFailed) as caught:
        publish(publisher, body=BODY, marker=MARKER)
    text = str(caught.value)
    assert "401" in text and "not accepted" in text
    for shown in (text, repr(caught.value), repr(publisher), str(publisher)):
        assert wrong not in shown and forge.server.token not in shown


def test_403_read_only_token_explains_the_permission(forge: Forge) -> None:
    forge.server.read_only = True
    with pytest.raises(Forbidden) as caught:
        publish(forge.publisher(), body=BODY, marker=MARKER)
    hint = {"github": "pull-requests: write", "gitlab": "Reporter", "gitea": "write:issue"}
    assert hint[forge.name] in str(caught.value)
    assert caught.value.status == 403


def test_gitea_403_with_empty_body_for_someone_elses_comment() -> None:
    with GiteaServer() as server:
        server.add(7, BODY, user="mallory")  # carries our marker, but is not ours
        forge = Forge("gitea", server, Sleeps())
        with pytest.raises(Forbidden) as caught:
            publish(forge.publisher(), body=BODY + "more", marker=MARKER)
        assert "Gitea answered 403 to PATCH" in str(caught.value)


def test_404_unknown_pull_request(forge: Forge) -> None:
    with pytest.raises(NotFound) as caught:
        publish(forge.publisher(number=999), body=BODY, marker=MARKER)
    assert "404" in str(caught.value) and "pull request number" in str(caught.value)


def test_422_rejected_body_carries_the_forges_words(forge: Forge) -> None:
    publisher = forge.publisher()
    too_long = "x" * (publisher.limit + 1)
    body = "" if forge.name == "gitea" else too_long  # Gitea has no size limit to break
    with pytest.raises(Rejected) as caught:
        publisher.create(body)
    words = {"github": "body is too long", "gitlab": "is too long", "gitea": "[Body]: Required"}
    assert words[forge.name] in str(caught.value)


def test_over_the_limit_is_refused_before_sending(forge: Forge) -> None:
    publisher = forge.publisher()
    with pytest.raises(Rejected, match=r"over .*'s limit"):
        publish(publisher, body=MARKER + "x" * publisher.limit, marker=MARKER)
    assert forge.server.requests == []


def test_rate_limit_waits_once_then_succeeds(forge: Forge) -> None:
    forge.server.fail_next(429, {"message": "Too Many Requests"}, headers={"retry-after": "7"})
    done = publish(forge.publisher(), body=BODY, marker=MARKER)
    assert done.outcome is Outcome.CREATED
    assert forge.sleeps.waits == [7.0]
    assert [r.method for r in forge.server.requests] == ["GET", "GET", "POST"]


def test_github_403_with_exhausted_quota_waits_until_reset() -> None:
    with GitHubServer() as server:
        reset = int(time.time()) + 20
        headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)}
        server.fail_next(403, {"message": "API rate limit exceeded"}, headers=headers)
        forge = Forge("github", server, Sleeps())
        publish(forge.publisher(), body=BODY, marker=MARKER)
        assert len(forge.sleeps.waits) == 1 and 15 <= forge.sleeps.waits[0] <= 20


def test_secondary_rate_limit_403_with_retry_after_on_a_write() -> None:
    with GitHubServer() as server:
        limited = {"message": "You have exceeded a secondary rate limit"}
        server.fail_next(403, limited, headers={"retry-after": "3"}, method="POST")
        forge = Forge("github", server, Sleeps())
        assert publish(forge.publisher(), body=BODY, marker=MARKER).outcome is Outcome.CREATED
        assert forge.sleeps.waits == [3.0]
        assert [r.method for r in server.writes()] == ["POST", "POST"]
        assert len(forge.comments()) == 1


def test_rate_limited_twice_gives_up(forge: Forge) -> None:
    for _ in range(2):
        forge.server.fail_next(429, {"message": "slow down"}, headers={"retry-after": "1"})
    with pytest.raises(RateLimited, match="still limited after waiting once"):
        publish(forge.publisher(), body=BODY, marker=MARKER)
    assert forge.sleeps.waits == [1.0]


def test_rate_limit_longer_than_the_cap_fails_without_waiting(forge: Forge) -> None:
    forge.server.fail_next(429, {"message": "slow down"}, headers={"retry-after": "3600"})
    with pytest.raises(RateLimited, match="lifts in 3600 s, longer than the 60 s"):
        publish(forge.publisher(), body=BODY, marker=MARKER)
    assert forge.sleeps.waits == []
    assert len(forge.server.requests) == 1


def test_plain_403_is_no_rate_limit(forge: Forge) -> None:
    forge.server.fail_next(403, {"message": "nope"})
    with pytest.raises(Forbidden):
        publish(forge.publisher(), body=BODY, marker=MARKER)
    assert forge.sleeps.waits == []


def test_a_token_echoed_by_the_server_is_scrubbed(forge: Forge) -> None:
    forge.server.fail_next(422, {"message": f"bad value {forge.server.token}"})
    with pytest.raises(Rejected) as caught:
        publish(forge.publisher(), body=BODY, marker=MARKER)
    assert forge.server.token not in str(caught.value)
    assert "bad value ***" in str(caught.value)


def test_redirects_are_not_followed_with_the_token(forge: Forge) -> None:
    with GitHubServer() as elsewhere:
        forge.server.fail_next(301, None, headers={"location": f"{elsewhere.url}/moved"})
        with pytest.raises(PublishError, match=r"redirected to .*--api-url"):
            publish(forge.publisher(), body=BODY, marker=MARKER)
        assert elsewhere.requests == []


def test_pagination_links_to_another_origin_are_refused() -> None:
    with GitHubServer() as server, GitHubServer() as elsewhere:
        link = f'<{elsewhere.url}/repositories/1/issues/7/comments?page=2>; rel="next"'
        server.fail_next(200, [], headers={"link": link})
        forge = Forge("github", server, Sleeps())
        with pytest.raises(Unreachable, match="not following it with the token"):
            publish(forge.publisher(), body=BODY, marker=MARKER)
        assert elsewhere.requests == []


def test_a_reset_connection_is_retried_and_the_comment_is_written_once(forge: Forge) -> None:
    forge.server.reset_next(method="GET")

    done = publish(forge.publisher(), body=BODY, marker=MARKER, sleep=forge.sleeps)

    assert done.outcome is Outcome.CREATED
    assert [c["body"] for c in forge.comments()] == [BODY]
    assert forge.sleeps.waits == [1.0]


def test_a_create_whose_answer_was_lost_is_found_again_not_repeated(forge: Forge) -> None:
    # The POST took effect and its answer was reset: the retry must find that comment.
    forge.server.reset_next(method="POST", after=True)

    done = publish(forge.publisher(), body=BODY, marker=MARKER, sleep=forge.sleeps)

    assert done.outcome is Outcome.UNCHANGED
    assert [c["body"] for c in forge.comments()] == [BODY]
    assert [r.method for r in forge.server.writes()] == ["POST"]


def test_a_connection_lost_every_time_is_a_clear_error_after_three_tries(forge: Forge) -> None:
    for _ in range(3):
        forge.server.reset_next()

    with pytest.raises(ConnectionLost, match=r"cannot reach .* at http://127\.0\.0\.1.*3 tries"):
        publish(forge.publisher(), body=BODY, marker=MARKER, sleep=forge.sleeps)

    assert forge.sleeps.waits == [1.0, 3.0]
    assert forge.comments() == []


def test_negative_control_an_answer_is_never_retried(forge: Forge) -> None:
    # An HTTP error is the forge's answer, not a lost connection: one try, no wait.
    forge.server.fail_next(400, {"message": "no"}, method="GET")
    with pytest.raises(Rejected):
        publish(forge.publisher(), body=BODY, marker=MARKER, sleep=forge.sleeps)
    assert forge.sleeps.waits == []


def test_unreachable_forge_is_a_clear_error() -> None:
    with GitHubServer() as server:
        url = server.api_url
    forge = FORGES["github"]
    publisher = connect(forge, api_url=url, repo="a/b", number=1, secret=Secret("tok-123", "t"))
    with pytest.raises(Unreachable, match=r"cannot reach GitHub at http://127\.0\.0\.1"):
        publish(publisher, body=BODY, marker=MARKER, sleep=Sleeps())


def test_not_json_from_a_wrong_api_url() -> None:
    with GitHubServer() as server:
        server.fail_next(200, "<html>a login page</html>", headers={"content-type": "text/html"})
        forge = Forge("github", server, Sleeps())
        with pytest.raises(Unreachable, match="not JSON: is the API URL right"):
            publish(forge.publisher(), body=BODY, marker=MARKER)


# --- markers ----------------------------------------------------------------------------


def test_marker_cannot_close_the_html_comment_early() -> None:
    marker = marker_for("prod --> <script>")
    assert marker.count("-->") == 1 and marker.endswith(" -->")
    assert "<script>" not in marker
    assert marker_for("prod") == "<!-- policy-reconciler:report target=prod -->"
    assert marker_for("prod") != marker_for("prod-eu")
