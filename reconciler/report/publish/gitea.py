"""Gitea and Forgejo: issue comments on a pull request, REST API v1.

    GET   /repos/{owner}/{repo}/issues/{index}/comments            -> every comment
    POST  /repos/{owner}/{repo}/issues/{index}/comments   body      -> 201
    PATCH /repos/{owner}/{repo}/issues/comments/{id}      body      -> 200

Gitea (1.2x) and Forgejo answer the list with *all* of an issue's comments and their
number in `X-Total-Count`; the endpoint takes `since`/`before` but no `page`/`limit`
(routers/api/v1/repo/issue_comment.go). We still send `page` and `limit`, as Gitea's
paginated list endpoints take them, and follow `Link: rel="next"` or the next page
number while fewer than `X-Total-Count` comments have arrived, so a server that does
page is read to the end. Neither declares a body size limit (the column is LONGTEXT);
we cap the report at 1,000,000 characters, as GitLab does, so the page stays usable.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from reconciler.report.publish.base import Comment, Secret
from reconciler.report.publish.github import split_repo
from reconciler.report.publish.transport import Response, Transport, next_link

LIMIT = 1_000_000
PAGE_SIZE = 50  # Gitea's default MAX_RESPONSE_ITEMS
MAX_PAGES = 1_000
_FORBIDDEN = "the token may not comment here: it needs the write:issue scope"


@dataclass(frozen=True, slots=True)
class Gitea:
    transport: Transport
    owner: str
    repo: str
    index: int
    forge: str = "Gitea"
    limit: int = LIMIT

    @classmethod
    def connect(
        cls, *, api_url: str, repo: str, number: int, secret: Secret, **options: Any
    ) -> Gitea:
        owner, name = split_repo(repo)
        transport = Transport(
            "Gitea",
            api_url,
            secret,
            auth=("Authorization", "token {}"),
            headers={"Accept": "application/json"},
            forbidden_hint=_FORBIDDEN,
            **options,
        )
        return cls(transport, owner, name, number)

    @property
    def where(self) -> str:
        return f"{self.owner}/{self.repo}#{self.index}"

    def comments(self) -> Iterator[Comment]:
        seen, page = 0, 1
        url = self._list_url(page)
        while url and page <= MAX_PAGES:
            answer = self.transport.request("GET", url)
            items = answer.data or []
            yield from (_comment(c) for c in items)
            seen, page = seen + len(items), page + 1
            url = self._next(answer, seen=seen, page=page, got=len(items))

    def create(self, body: str) -> Comment:
        url = self.transport.url(self._base(f"/{self.index}/comments"))
        return _comment(self.transport.request("POST", url, body={"body": body}).data)

    def edit(self, comment: Comment, body: str) -> Comment:
        url = self.transport.url(self._base(f"/comments/{comment.id}"))
        return _comment(self.transport.request("PATCH", url, body={"body": body}).data)

    def _next(self, answer: Response, *, seen: int, page: int, got: int) -> str:
        if link := next_link(answer.headers.get("link", "")):
            return link
        total = answer.headers.get("x-total-count", "")
        more = total.isdigit() and seen < int(total) and got > 0
        return self._list_url(page) if more else ""

    def _list_url(self, page: int) -> str:
        query = {"page": str(page), "limit": str(PAGE_SIZE)}
        return self.transport.url(self._base(f"/{self.index}/comments"), query)

    def _base(self, tail: str) -> str:
        return f"/repos/{quote(self.owner, safe='')}/{quote(self.repo, safe='')}/issues{tail}"


def _comment(data: Any) -> Comment:
    return Comment(int(data["id"]), str(data.get("body") or ""), str(data.get("html_url", "")))
