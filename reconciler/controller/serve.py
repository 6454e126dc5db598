"""A small threaded HTTP server (stdlib) for the webhook and the metrics/health endpoints."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger(__name__)
REQUEST_TIMEOUT = 10.0  # seconds a client may take to send its request (slowloris)


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"


class QuietHandler(BaseHTTPRequestHandler):
    """Our own access logging (structured, no secrets) instead of stderr lines."""

    timeout = REQUEST_TIMEOUT
    server_version = "policy-reconciler"
    sys_version = ""

    def log_message(self, format: str, *args: object) -> None:
        return

    def send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)


class Server:
    def __init__(self, name: str, address: str, port: int, handler: type[QuietHandler]) -> None:
        self.name = name
        self._httpd = ThreadingHTTPServer((address, port), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2}, name=name, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def start(self) -> None:
        self._thread.start()
        log.info("listening", extra={"server": self.name, "port": self.port})

    def stop(self) -> None:
        if self._thread.is_alive():
            self._httpd.shutdown()
        self._httpd.server_close()
