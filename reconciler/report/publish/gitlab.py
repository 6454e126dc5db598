"""GitLab: notes (comments) on a merge request, REST API v4.

    GET /projects/:id/merge_requests/:iid/notes?sort=asc&order_by=created_at&per_page=100&page=N
        (next page number in `X-Next-Page`, empty on the last page)
    POST /projects/:id/merge_requests/:iid/notes             body  -> 201
    PUT  /projects/:id/merge_requests/:iid/notes/:note_id    body  -> 200

`:id` is the numeric project ID or the URL-encoded path ("group%2Fproject"). System
notes ("added 1 commit") are skipped. A note body holds at most 1,000,000 characters;
validation errors come back as 400 with {"message": {"note": [...]}}.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from reconciler.report.publish.base import Comment, Rejected, Secret
from reconciler.report.publish.transport import Transport

API_URL = "https://gitlab.com/api/v4"
LIMIT = 1_000_000
_FORBIDDEN = (
    "the token may not comment here: it needs the `api` scope and at least the Reporter role "
    "(a CI_JOB_TOKEN cannot write notes)"
)


@dataclass(frozen=True, slots=True)
class GitLab:
    transport: Transport
    project: str
    iid: int
    forge: str = "GitLab"
    limit: int = LIMIT

    @classmethod
    def connect(
        cls, *, api_url: str, project: str, number: int, secret: Secret, **options: Any
    ) -> GitLab:
        if not project.strip():
            raise Rejected("--project must be a project ID or path (group/project)")
        transport = Transport(
            "GitLab",
            api_url,
            secret,
            auth=("PRIVATE-TOKEN", "{}"),
            headers={"Accept": "application/json"},
            forbidden_hint=_FORBIDDEN,
            **options,
        )
        return cls(transport, project.strip(), number)

    @property
    def where(self) -> str:
        return f"{self.project}!{self.iid}"

    def comments(self) -> Iterator[Comment]:
        query = {"sort": "asc", "order_by": "created_at", "per_page": "100"}
        page = "1"
        while page:
            url = self.transport.url(self._notes(), {**query, "page": page})
            answer = self.transport.request("GET", url)
            notes = answer.data or ()
            yield from (_comment(n) for n in notes if not n.get("system"))
            page = answer.headers.get("x-next-page", "").strip()

    def create(self, body: str) -> Comment:
        url = self.transport.url(self._notes())
        return _comment(self.transport.request("POST", url, body={"body": body}).data)

    def edit(self, comment: Comment, body: str) -> Comment:
        url = self.transport.url(f"{self._notes()}/{comment.id}")
        return _comment(self.transport.request("PUT", url, body={"body": body}).data)

    def _notes(self) -> str:
        return f"/projects/{quote(self.project, safe='')}/merge_requests/{self.iid}/notes"


def _comment(data: Any) -> Comment:
    return Comment(int(data["id"]), str(data.get("body") or ""))
