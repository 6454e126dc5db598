"""GitHub (and GitHub Enterprise Server): issue comments on a pull request, REST API.

    GET   /repos/{owner}/{repo}/issues/{number}/comments?per_page=100   (Link: rel="next")
    POST  /repos/{owner}/{repo}/issues/{number}/comments                 -> 201
    PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}             -> 200

Every pull request is an issue, so its conversation comments live under /issues.
Comments come in ascending id order. A body holds at most 65,536 characters.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from reconciler.report.publish.base import Comment, Rejected, Secret
from reconciler.report.publish.transport import Transport, next_link

API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
LIMIT = 65_536
_FORBIDDEN = (
    "the token may not comment here: give the workflow `permissions: pull-requests: write` "
    "(a fine-grained token needs Pull requests or Issues: write); pull requests from forks "
    "only get a read-only GITHUB_TOKEN"
)


@dataclass(frozen=True, slots=True)
class GitHub:
    transport: Transport
    owner: str
    repo: str
    number: int
    forge: str = "GitHub"
    limit: int = LIMIT

    @classmethod
    def connect(
        cls, *, api_url: str, repo: str, number: int, secret: Secret, **options: Any
    ) -> GitHub:
        owner, name = split_repo(repo)
        transport = Transport(
            "GitHub",
            api_url,
            secret,
            auth=("Authorization", "Bearer {}"),
            headers={
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
            },
            forbidden_hint=_FORBIDDEN,
            **options,
        )
        return cls(transport, owner, name, number)

    @property
    def where(self) -> str:
        return f"{self.owner}/{self.repo}#{self.number}"

    def comments(self) -> Iterator[Comment]:
        url = self.transport.url(self._issue("comments"), {"per_page": "100"})
        while url:
            page = self.transport.request("GET", url)
            yield from (_comment(c) for c in page.data or ())
            url = next_link(page.headers.get("link", ""))

    def create(self, body: str) -> Comment:
        url = self.transport.url(self._issue("comments"))
        return _comment(self.transport.request("POST", url, body={"body": body}).data)

    def edit(self, comment: Comment, body: str) -> Comment:
        path = f"/repos/{_seg(self.owner)}/{_seg(self.repo)}/issues/comments/{comment.id}"
        url = self.transport.url(path)
        return _comment(self.transport.request("PATCH", url, body={"body": body}).data)

    def _issue(self, tail: str) -> str:
        return f"/repos/{_seg(self.owner)}/{_seg(self.repo)}/issues/{self.number}/{tail}"


def split_repo(repo: str) -> tuple[str, str]:
    """ "owner/name" -> ("owner", "name"); anything else is a usage error."""
    owner, _, name = repo.strip().strip("/").partition("/")
    if not owner or not name or "/" in name:
        raise Rejected(f"--repo must be owner/name, not {repo!r}")
    return owner, name


def _seg(text: str) -> str:
    return quote(text, safe="")


def _comment(data: Any) -> Comment:
    return Comment(int(data["id"]), str(data.get("body") or ""), str(data.get("html_url", "")))
