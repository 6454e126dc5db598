"""Local stand-ins for GitHub, GitLab and Gitea's comment APIs, on 127.0.0.1.

Built from each forge's published API description, for the endpoints we use:

GitHub REST (docs.github.com/rest/issues/comments, API version 2022-11-28)
  GET/POST /repos/{owner}/{repo}/issues/{number}/comments, PATCH .../issues/comments/{id}.
  `per_page` (default 30, max 100) and `page`; a `Link` header with rel="next"/"last"
  whose URLs use /repositories/{repo_id}/..., as GitHub's do. Bearer auth; 401
  "Bad credentials"; 403 without a User-Agent; 400 for an unsupported
  X-GitHub-Api-Version; 404 "Not Found"; 422 "Validation Failed" with errors[] for a
  body over 65,536 characters; x-ratelimit-* headers on every answer.
GitLab REST v4 (docs.gitlab.com/api/notes)
  GET/POST /api/v4/projects/:id/merge_requests/:iid/notes, PUT .../notes/:note_id.
  `:id` numeric or URL-encoded path. `sort` (default desc) and `order_by`; `page` and
  `per_page` (default 20, max 100) with x-page, x-per-page, x-next-page (empty on the
  last page), x-total, x-total-pages. PRIVATE-TOKEN auth; "401 Unauthorized";
  "404 Project Not Found"; 400 for a note over 1,000,000 characters; system notes.
Gitea / Forgejo API v1 (routers/api/v1/repo/issue_comment.go, swagger)
  GET/POST /api/v1/repos/{owner}/{repo}/issues/{index}/comments, PATCH
  .../issues/comments/{id}. The list has no pagination: every comment at once, with
  X-Total-Count. `paginate=True` makes it honour `page`/`limit` with Link and
  X-Total-Count, as Gitea's paginated list endpoints do. `Authorization: token`; 401;
  404 "The target couldn't be found."; 422 "[Body]: Required"; 403 with an empty body
  for editing another user's comment.

Tests can queue canned answers (`fail_next`) to exercise error paths and rate limits, and
connection resets (`reset_next`: a TCP RST instead of an answer, before or after the
request took effect, as a load balancer or a restarting forge sends them); every request
is logged with its headers.
"""

from __future__ import annotations

import json
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

Headers = dict[str, str]
Answer = tuple[int, Headers, Any]


@dataclass(frozen=True)
class Logged:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # lower-case names
    body: Any

    @property
    def writes(self) -> bool:
        return self.method in ("POST", "PUT", "PATCH", "DELETE")


@dataclass
class Canned:
    status: int
    headers: Headers
    body: Any
    method: str = ""  # "" = any


@dataclass
class ForgeServer:
    """Shared machinery: a threaded HTTP server, the request log, canned answers."""

    token: str = "s3cret-token-value"
    read_only: bool = False  # the token may read but not write (403 on writes)
    user: str = "ci-bot"
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[Logged] = field(default_factory=list)
    canned: list[Canned] = field(default_factory=list)
    resets: list[tuple[str, bool]] = field(default_factory=list)  # (method or "", after)
    url: str = ""
    _next_id: int = 1000
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _httpd: ThreadingHTTPServer | None = None

    api_prefix = ""

    def __enter__(self) -> ForgeServer:
        handler = type("Handler", (_Handler,), {"forge": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._httpd is not None
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def api_url(self) -> str:
        return self.url + self.api_prefix

    # -- test helpers --------------------------------------------------------------------

    def fail_next(
        self, status: int, body: Any = None, *, headers: Headers | None = None, method: str = ""
    ) -> None:
        self.canned.append(Canned(status, headers or {}, body, method))

    def reset_next(self, *, method: str = "", after: bool = False) -> None:
        """The next request (of `method`) gets a TCP reset and no answer; `after`: only once
        it took effect, so the client cannot know whether it did."""
        self.resets.append((method, after))

    def take_reset(self, method: str) -> tuple[bool, bool]:
        """(reset this request, after it took effect)."""
        with self._lock:
            found = next((r for r in self.resets if r[0] in ("", method)), None)
            if found is None:
                return False, False
            self.resets.remove(found)
            return True, found[1]

    def seed(self, number: int, bodies: list[str], *, user: str = "someone") -> None:
        for text in bodies:
            self.add(number, text, user=user)

    def add(self, number: int, body: str, *, user: str = "", **extra: Any) -> dict[str, Any]:
        with self._lock:
            self._next_id += 1
            comment = self.shape(self._next_id, number, body, user or self.user, extra)
            self.comments.setdefault(number, []).append(comment)
            return comment

    def writes(self) -> list[Logged]:
        return [r for r in self.requests if r.writes]

    # -- per forge -----------------------------------------------------------------------

    def shape(
        self, cid: int, number: int, body: str, user: str, extra: Mapping[str, Any]
    ) -> dict[str, Any]:
        raise NotImplementedError

    def authorized(self, headers: Mapping[str, str]) -> bool:
        raise NotImplementedError

    def route(self, method: str, path: str, query: Mapping[str, str], body: Any) -> Answer:
        raise NotImplementedError

    def unauthorized(self) -> Answer:
        raise NotImplementedError

    def checks(self, headers: Mapping[str, str]) -> Answer | None:
        """Forge-specific header requirements, before auth."""
        return None

    def common_headers(self) -> Headers:
        return {}

    # -- dispatch ------------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: Mapping[str, str], body: Any) -> Answer:
        parts = urlsplit(raw_path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.requests.append(Logged(method, parts.path, query, headers, body))
        canned = next((c for c in self.canned if c.method in ("", method)), None)
        if canned is not None:
            self.canned.remove(canned)
            return canned.status, canned.headers, canned.body
        if (problem := self.checks(headers)) is not None:
            return problem
        if not self.authorized(headers):
            return self.unauthorized()
        return self.route(method, parts.path, query, body)

    def find(self, cid: int) -> tuple[int, dict[str, Any]] | None:
        for number, items in self.comments.items():
            for comment in items:
                if comment["id"] == cid:
                    return number, comment
        return None


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# --- GitHub -----------------------------------------------------------------------------


@dataclass
class GitHubServer(ForgeServer):
    owner: str = "acme"
    repo: str = "policies"
    repo_id: int = 1300192
    pulls: tuple[int, ...] = (7,)
    max_body: int = 65_536
    api_versions: tuple[str, ...] = ("2022-11-28",)

    def shape(
        self, cid: int, number: int, body: str, user: str, extra: Mapping[str, Any]
    ) -> dict[str, Any]:
        base = f"{self.url}/repos/{self.owner}/{self.repo}"
        return {
            "id": cid,
            "node_id": f"IC_kwDO{cid}",
            "url": f"{base}/issues/comments/{cid}",
            "html_url": f"https://github.com/{self.owner}/{self.repo}/pull/{number}#issuecomment-{cid}",
            "issue_url": f"{base}/issues/{number}",
            "body": body,
            "user": {"login": user, "id": 41898282, "type": "Bot"},
            "created_at": _now(),
            "updated_at": _now(),
            "author_association": "NONE",
            "performed_via_github_app": None,
            **extra,
        }

    def common_headers(self) -> Headers:
        reset = str(int(time.time()) + 3600)
        return {
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": "4999",
            "x-ratelimit-reset": reset,
            "x-ratelimit-used": "1",
            "x-ratelimit-resource": "core",
            "x-github-api-version-selected": self.api_versions[0],
        }

    def checks(self, headers: Mapping[str, str]) -> Answer | None:
        if not headers.get("user-agent"):
            message = (
                "Request forbidden by administrative rules. "
                "Please make sure your request has a User-Agent header"
            )
            return 403, {"content-type": "text/plain"}, message
        version = headers.get("x-github-api-version", self.api_versions[0])
        if version not in self.api_versions:
            return 400, {}, _gh(f"API version '{version}' is not supported.")
        return None

    def authorized(self, headers: Mapping[str, str]) -> bool:
        return headers.get("authorization", "") in (f"Bearer {self.token}", f"token {self.token}")

    def unauthorized(self) -> Answer:
        return 401, {}, _gh("Bad credentials")

    def route(self, method: str, path: str, query: Mapping[str, str], body: Any) -> Answer:
        repo = f"/repos/{self.owner}/{self.repo}"
        by_id = f"/repositories/{self.repo_id}"
        if m := re.fullmatch(rf"(?:{re.escape(repo)}|{by_id})/issues/(\d+)/comments", path):
            return self._issue_comments(method, int(m[1]), query, body)
        if (
            m := re.fullmatch(rf"{re.escape(repo)}/issues/comments/(\d+)", path)
        ) and method == "PATCH":
            return self._edit(int(m[1]), body)
        return 404, {}, _gh("Not Found")

    def _issue_comments(
        self, method: str, number: int, query: Mapping[str, str], body: Any
    ) -> Answer:
        if number not in self.pulls:
            return 404, {}, _gh("Not Found")
        if method == "GET":
            return self._list(number, query)
        if method == "POST":
            if (problem := self._write_problem(body)) is not None:
                return problem
            return 201, {}, self.add(number, body["body"])
        return 404, {}, _gh("Not Found")

    def _list(self, number: int, query: Mapping[str, str]) -> Answer:
        per_page = min(int(query.get("per_page", "30")), 100)
        page = int(query.get("page", "1"))
        items = sorted(self.comments.get(number, []), key=lambda c: c["id"])
        pages = max((len(items) + per_page - 1) // per_page, 1)
        chunk = items[(page - 1) * per_page : page * per_page]
        link = (
            f"{self.url}/repositories/{self.repo_id}/issues/{number}/comments?per_page={per_page}"
        )
        rels = []
        if page < pages:
            rels += [f'<{link}&page={page + 1}>; rel="next"', f'<{link}&page={pages}>; rel="last"']
        if page > 1:
            rels = [f'<{link}&page={page - 1}>; rel="prev"', f'<{link}&page=1>; rel="first"', *rels]
        return 200, ({"link": ", ".join(rels)} if rels else {}), chunk

    def _edit(self, cid: int, body: Any) -> Answer:
        found = self.find(cid)
        if found is None:
            return 404, {}, _gh("Not Found")
        if (problem := self._write_problem(body)) is not None:
            return problem
        comment = found[1]
        comment.update(body=body["body"], updated_at=_now())
        return 200, {}, comment

    def _write_problem(self, body: Any) -> Answer | None:
        if self.read_only:
            return 403, {}, _gh("Resource not accessible by integration")
        if not isinstance(body, dict) or "body" not in body:
            return 422, {}, _gh('Invalid request.\n\n"body" wasn\'t supplied.')
        if len(body["body"]) > self.max_body:
            error = {
                "resource": "IssueComment",
                "code": "custom",
                "field": "body",
                "message": f"body is too long (maximum is {self.max_body} characters)",
            }
            return 422, {}, {**_gh("Validation Failed"), "errors": [error]}
        return None


def _gh(message: str) -> dict[str, Any]:
    return {"message": message, "documentation_url": "https://docs.github.com/rest", "status": ""}


# --- GitLab -----------------------------------------------------------------------------


@dataclass
class GitLabServer(ForgeServer):
    project_id: int = 42
    project_path: str = "platform/policies"
    merge_requests: tuple[int, ...] = (7,)
    max_body: int = 1_000_000
    api_prefix = "/api/v4"

    def shape(
        self, cid: int, number: int, body: str, user: str, extra: Mapping[str, Any]
    ) -> dict[str, Any]:
        return {
            "id": cid,
            "type": None,
            "body": body,
            "attachment": None,
            "author": {
                "id": 7,
                "username": user,
                "name": user,
                "state": "active",
                "web_url": f"https://gitlab.example/{user}",
            },
            "created_at": _now(),
            "updated_at": _now(),
            "system": False,
            "noteable_id": 9000 + number,
            "noteable_type": "MergeRequest",
            "project_id": self.project_id,
            "resolvable": False,
            "confidential": False,
            "internal": False,
            "noteable_iid": number,
            "commands_changes": {},
            **extra,
        }

    def authorized(self, headers: Mapping[str, str]) -> bool:
        return headers.get("private-token") == self.token

    def unauthorized(self) -> Answer:
        return 401, {}, {"message": "401 Unauthorized"}

    def route(self, method: str, path: str, query: Mapping[str, str], body: Any) -> Answer:
        m = re.fullmatch(r"/api/v4/projects/([^/]+)/merge_requests/(\d+)/notes(?:/(\d+))?", path)
        if m is None or m[1] not in (str(self.project_id), self.project_path.replace("/", "%2F")):
            return 404, {}, {"message": "404 Project Not Found"}
        iid = int(m[2])
        if iid not in self.merge_requests:
            return 404, {}, {"message": "404 Not found"}
        if m[3] is None and method == "GET":
            return self._list(iid, query)
        if m[3] is None and method == "POST":
            return self._write(body) or (201, {}, self.add(iid, body["body"]))
        if m[3] is not None and method == "PUT":
            return self._edit(iid, int(m[3]), body)
        return 405, {}, {"message": "405 Method Not Allowed"}

    def _list(self, iid: int, query: Mapping[str, str]) -> Answer:
        key = "updated_at" if query.get("order_by") == "updated_at" else "created_at"
        items = sorted(
            self.comments.get(iid, []),
            key=lambda n: (n[key], n["id"]),
            reverse=query.get("sort", "desc") != "asc",
        )
        per_page = min(int(query.get("per_page", "20")), 100)
        page = int(query.get("page", "1"))
        pages = max((len(items) + per_page - 1) // per_page, 1)
        headers = {
            "x-page": str(page),
            "x-per-page": str(per_page),
            "x-next-page": str(page + 1) if page < pages else "",
            "x-prev-page": str(page - 1) if page > 1 else "",
            "x-total": str(len(items)),
            "x-total-pages": str(pages),
        }
        return 200, headers, items[(page - 1) * per_page : page * per_page]

    def _edit(self, iid: int, nid: int, body: Any) -> Answer:
        found = self.find(nid)
        if found is None or found[0] != iid:
            return 404, {}, {"message": "404 Not found"}
        if (problem := self._write(body)) is not None:
            return problem
        found[1].update(body=body["body"], updated_at=_now())
        return 200, {}, found[1]

    def _write(self, body: Any) -> Answer | None:
        if self.read_only:
            return 403, {}, {"message": "403 Forbidden"}
        if not isinstance(body, dict) or not body.get("body"):
            return 400, {}, {"error": "body is missing"}
        if len(body["body"]) > self.max_body:
            note = f"is too long (maximum is {self.max_body} characters)"
            return 400, {}, {"message": f'400 Bad request - Note {{:note=>["{note}"]}}'}
        return None


# --- Gitea ------------------------------------------------------------------------------


@dataclass
class GiteaServer(ForgeServer):
    owner: str = "acme"
    repo: str = "policies"
    issues: tuple[int, ...] = (7,)
    paginate: bool = False  # today's Gitea/Forgejo: False (all comments at once)
    api_prefix = "/api/v1"

    def shape(
        self, cid: int, number: int, body: str, user: str, extra: Mapping[str, Any]
    ) -> dict[str, Any]:
        web = f"https://gitea.example/{self.owner}/{self.repo}"
        return {
            "id": cid,
            "html_url": f"{web}/pulls/{number}#issuecomment-{cid}",
            "pull_request_url": f"{web}/pulls/{number}",
            "issue_url": "",
            "user": {"id": 3, "login": user, "username": user},
            "original_author": "",
            "original_author_id": 0,
            "body": body,
            "assets": [],
            "created_at": _now(),
            "updated_at": _now(),
            **extra,
        }

    def authorized(self, headers: Mapping[str, str]) -> bool:
        return headers.get("authorization", "") in (f"token {self.token}", f"Bearer {self.token}")

    def unauthorized(self) -> Answer:
        return 401, {}, _gitea("invalid username, password or token")

    def route(self, method: str, path: str, query: Mapping[str, str], body: Any) -> Answer:
        repo = re.escape(f"/api/v1/repos/{self.owner}/{self.repo}/issues")
        if m := re.fullmatch(rf"{repo}/(\d+)/comments", path):
            if int(m[1]) not in self.issues:
                return 404, {}, _gitea("The target couldn't be found.")
            if method == "GET":
                return self._list(int(m[1]), query)
            if method == "POST":
                return self._write(body) or (201, {}, self.add(int(m[1]), body["body"]))
        if (m := re.fullmatch(rf"{repo}/comments/(\d+)", path)) and method == "PATCH":
            return self._edit(int(m[1]), body)
        return 404, {}, _gitea("The target couldn't be found.")

    def _list(self, number: int, query: Mapping[str, str]) -> Answer:
        items = self.comments.get(number, [])
        total = {
            "x-total-count": str(len(items)),
            "access-control-expose-headers": "X-Total-Count, Link",
        }
        if not self.paginate:
            return 200, total, items
        limit, page = int(query.get("limit", "30")), int(query.get("page", "1"))
        pages = max((len(items) + limit - 1) // limit, 1)
        base = f"{self.url}/api/v1/repos/{self.owner}/{self.repo}/issues/{number}/comments"
        links = [f'<{base}?limit={limit}&page={page + 1}>; rel="next"'] if page < pages else []
        links += [f'<{base}?limit={limit}&page={pages}>; rel="last"'] if page < pages else []
        headers = {**total, **({"link": ",".join(links)} if links else {})}
        return 200, headers, items[(page - 1) * limit : page * limit]

    def _edit(self, cid: int, body: Any) -> Answer:
        found = self.find(cid)
        if found is None:
            return 404, {}, _gitea("The target couldn't be found.")
        if found[1]["user"]["login"] != self.user:
            return 403, {}, None  # ctx.Status(http.StatusForbidden): no body at all
        if (problem := self._write(body)) is not None:
            return problem
        found[1].update(body=body["body"], updated_at=_now())
        return 200, {}, found[1]

    def _write(self, body: Any) -> Answer | None:
        if self.read_only:
            return (
                403,
                {},
                _gitea("token does not have at least one of required scope(s): [write:issue]"),
            )
        if not isinstance(body, dict) or not body.get("body"):
            return 422, {}, {**_gitea("[Body]: Required"), "errors": ["[Body]: Required"]}
        return None


def _gitea(message: str) -> dict[str, Any]:
    return {"message": message, "url": "https://gitea.example/api/swagger", "errors": []}


# --- the HTTP side ----------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    forge: ForgeServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        headers = {k.lower(): v for k, v in self.headers.items()}
        reset, after = self.forge.take_reset(self.command)
        if reset and not after:
            return self._reset()
        status, extra, payload = self.forge.handle(self.command, self.path, headers, body)
        if reset:
            return self._reset()
        self._reply(status, {**self.forge.common_headers(), **extra}, payload)

    def _reset(self) -> None:
        """Close with SO_LINGER 0: the kernel sends RST, the client reads ECONNRESET."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()  # now: the server's own shutdown would send a FIN first
        self.close_connection = True

    def _reply(self, status: int, headers: Mapping[str, str], payload: Any) -> None:
        data = b"" if payload is None else _encode(payload)
        self.send_response(status)
        if payload is not None and "content-type" not in headers:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve


def _encode(payload: Any) -> bytes:
    return payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()


SERVERS: Mapping[str, Callable[..., ForgeServer]] = {
    "github": GitHubServer,
    "gitlab": GitLabServer,
    "gitea": GiteaServer,
}
