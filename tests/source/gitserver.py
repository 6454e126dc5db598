"""A loopback git server that really demands auth, for tests of any suite.

`git http-backend` (the CGI that ships with git) behind `http.server` on 127.0.0.1. With a
token, every request must carry `Authorization: Bearer <token>` or Basic auth whose
password is the token; anything else gets 401. Smart HTTP, protocol v2, shallow fetches.

    with serve(repo_root, token="s3cret") as url:      # url = "http://127.0.0.1:PORT"
        clone f"{url}/policies.git"

`GitServer` exposes the request log; `closed_port()` and `silent_server()` give the two
ways a server can be unreachable.
"""

from __future__ import annotations

import base64
import hmac
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True, slots=True)
class Logged:
    method: str
    path: str
    authorized: bool
    scheme: str  # "basic", "bearer" or "" (no Authorization header)


@dataclass
class GitServer:
    root: Path
    token: str | None = None
    username: str | None = None  # None: any user name with the right password
    protocol_v2: bool = True  # False: speak v0, which refuses to serve a bare commit sha
    requests: list[Logged] = field(default_factory=list)
    url: str = ""
    _httpd: ThreadingHTTPServer | None = None

    def __enter__(self) -> GitServer:
        handler = type("Handler", (_Handler,), {"server_info": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._httpd is not None
        self._httpd.shutdown()
        self._httpd.server_close()

    def authorized(self, header: str) -> bool:
        if self.token is None:
            return True
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            return hmac.compare_digest(value.strip(), self.token)
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except ValueError:
            return False
        return hmac.compare_digest(password, self.token) and self.username in (None, user)


@contextmanager
def serve(repo_root: Path, *, token: str | None = None) -> Iterator[str]:
    """Serve every repository under `repo_root`; yields the base URL."""
    with GitServer(repo_root, token) as server:
        yield server.url


def closed_port() -> int:
    """A loopback port nobody listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def silent_server() -> Iterator[str]:
    """A URL whose server accepts connections and never answers (a hung server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


class _Handler(BaseHTTPRequestHandler):
    server_info: GitServer

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: object) -> None:  # quiet: we keep our own log
        pass

    def _handle(self) -> None:
        header = self.headers.get("Authorization", "")
        ok = self.server_info.authorized(header)
        scheme = header.partition(" ")[0].lower()
        self.server_info.requests.append(Logged(self.command, self.path, ok, scheme))
        if not ok:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._cgi(self._body())

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _cgi(self, body: bytes) -> None:
        parts, info = urlsplit(self.path), self.server_info
        env = {
            "GIT_PROJECT_ROOT": str(info.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "PATH": "/usr/bin:/bin:/usr/local/bin",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": unquote(parts.path),
            "QUERY_STRING": parts.query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": "127.0.0.1",
            "REMOTE_USER": "git",
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", "") if info.protocol_v2 else "",
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
        }
        done = subprocess.run(
            ["git", "http-backend"],
            check=False,
            input=body,
            env=env,
            capture_output=True,
            timeout=60,
        )
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = done.stdout.partition(b"\n\n")
        self._reply(head.decode("latin-1"), payload)

    def _reply(self, head: str, payload: bytes) -> None:
        headers = [line.partition(":") for line in head.splitlines() if ":" in line]
        status = next((v.strip() for k, _, v in headers if k.lower() == "status"), "200 OK")
        self.send_response(int(status.split()[0]))
        for key, _, value in headers:
            if key.lower() not in ("status", "content-length"):
                self.send_header(key, value.strip())
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
