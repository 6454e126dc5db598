"""The thin request path honours everything the kubeconfig says: against a real loopback
HTTPS server that requires a client certificate, with a real exec credential plugin, a
real CONNECT proxy, a path prefix in the server URL and impersonation. It keeps its
connections alive (one TLS handshake per worker, never one per request), counts every
request and answer, and turns what comes back into our typed errors.
"""

from __future__ import annotations

import json
import socket
import ssl
import sys
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import BaseRequestHandler, ThreadingTCPServer
from typing import Any

import pytest

from reconciler.cluster import errors
from reconciler.cluster.client import Cluster, Connection, Payload, ResourceType
from reconciler.localcluster import certs

GNPS = ResourceType(
    "crd.projectcalico.org", "v1", "GlobalNetworkPolicy", "globalnetworkpolicies", False
)
PREFIX = "/k8s/clusters/c-1"  # as behind Rancher's proxy: every path goes under it


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_cn: str


@dataclass
class Server:
    """What the API server stand-in received, and on how many connections."""

    url: str
    requests: list[Seen] = field(default_factory=list)
    connections: set[tuple[str, int]] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _lower(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Header names are case-insensitive: compare them in lower case."""
    return {k.lower(): v for k, v in headers}


def _handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as kube-apiserver

        def do_GET(self) -> None:
            self._answer()

        def do_PATCH(self) -> None:
            self._answer()

        def _answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            peer = (
                self.connection.getpeercert()
                if isinstance(self.connection, ssl.SSLSocket)
                else None
            )
            cn = str(peer["subject"]) if peer else ""  # the client certificate's subject
            with server.lock:
                server.connections.add(self.client_address)
                server.requests.append(
                    Seen(self.command, self.path, _lower(self.headers.items()), body, cn)
                )
            answer: dict[str, Any] = {"kind": "GlobalNetworkPolicy", "metadata": {"name": "x"}}
            status = 404 if "/missing" in self.path else 200
            if status == 404:
                answer = {"kind": "Status", "message": "thing not found", "reason": "NotFound"}
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pki")


@pytest.fixture
def server(pki: Path) -> Iterator[Server]:
    """HTTPS on loopback that refuses any client without a certificate from our CA."""
    _, serving = certs.serving(pki, "api", "IP:127.0.0.1")
    client_ca, _ = certs.front_proxy(pki)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(serving.cert, serving.key)
    context.load_verify_locations(client_ca.cert)
    context.verify_mode = ssl.CERT_REQUIRED
    state = Server(url="")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    state.url = f"https://127.0.0.1:{httpd.server_address[1]}"
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield state
    httpd.shutdown()
    httpd.server_close()


@dataclass
class Proxy:
    url: str
    tunnels: list[str] = field(default_factory=list)


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    """An HTTP CONNECT proxy: tunnels each connection and records where to."""
    state = Proxy(url="")

    class Tunnel(BaseRequestHandler):
        def handle(self) -> None:
            head = b""
            while b"\r\n\r\n" not in head:
                head += self.request.recv(4096)
            target = head.split(b" ")[1].decode()
            state.tunnels.append(target)
            host, port = target.rsplit(":", 1)
            upstream = socket.create_connection((host, int(port)))
            self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            threading.Thread(target=_pipe, args=(upstream, self.request), daemon=True).start()
            _pipe(self.request, upstream)

    tcp = ThreadingTCPServer(("127.0.0.1", 0), Tunnel)
    tcp.daemon_threads = True
    state.url = f"http://127.0.0.1:{tcp.server_address[1]}"
    threading.Thread(target=tcp.serve_forever, daemon=True).start()
    yield state
    tcp.shutdown()
    tcp.server_close()


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        dst.close()


def _kubeconfig(path: Path, pki: Path, url: str, user: dict[str, Any], **cluster: str) -> str:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "c",
                "cluster": {
                    "server": url,
                    "certificate-authority": str(pki / "api-ca.crt"),
                    **cluster,
                },
            }
        ],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    path.write_text(json.dumps(config))
    return str(path)


def _exec_plugin(tmp_path: Path, token: str) -> dict[str, Any]:
    """A real client-go credential plugin: a program that prints an ExecCredential."""
    script = tmp_path / "credential.py"
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {"token": token},
    }
    script.write_text(f"import json\nprint(json.dumps({credential!r}))\n")
    return {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": sys.executable,
            "args": [str(script)],
            "interactiveMode": "Never",
        }
    }


def _client_cert(pki: Path) -> dict[str, str]:
    return {
        "client-certificate": str(pki / "front-proxy-client.crt"),
        "client-key": str(pki / "front-proxy-client.key"),
    }


def _gnp(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "crd.projectcalico.org/v1",
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": name},
        "spec": {"selector": "app == 'a b'", "order": 10.5},
    }


def test_a_client_certificate_an_exec_token_impersonation_and_a_path_prefix_all_arrive(
    server: Server, pki: Path, tmp_path: Path
) -> None:
    user = {**_client_cert(pki), **_exec_plugin(tmp_path, "exec-token-1")}
    kubeconfig = _kubeconfig(tmp_path / "kubeconfig", pki, server.url + PREFIX, user)
    cluster = Cluster.connect(
        Connection(kubeconfig=kubeconfig, user_agent="ua/1", impersonate="someone")
    )
    answer = cluster.apply(GNPS, _gnp("p-1"), dry_run=True)
    assert answer["metadata"]["name"] == "x"  # decoded when asked for
    (seen,) = server.requests
    assert "'commonName', 'front-proxy-client'" in seen.client_cn
    assert seen.method == "PATCH"
    assert seen.path == (
        f"{PREFIX}/apis/crd.projectcalico.org/v1/globalnetworkpolicies/p-1"
        "?fieldManager=policy-reconciler&force=false&dryRun=All"
    )
    assert seen.headers["authorization"] == "Bearer exec-token-1"
    assert seen.headers["impersonate-user"] == "someone"
    assert seen.headers["user-agent"] == "ua/1"
    assert seen.headers["content-type"] == "application/apply-patch+yaml"
    assert json.loads(seen.body) == _gnp("p-1")
    assert b'": ' not in seen.body and b", " not in seen.body  # compact separators


def test_a_static_token_and_no_client_certificate_is_refused_by_tls(
    server: Server, pki: Path, tmp_path: Path
) -> None:
    with_cert = _kubeconfig(
        tmp_path / "a", pki, server.url, {"token": "static", **_client_cert(pki)}
    )
    cluster = Cluster.connect(Connection(kubeconfig=with_cert))
    assert cluster.get(GNPS, "p-2") is not None
    assert server.requests[0].headers["authorization"] == "Bearer static"
    assert "impersonate-user" not in server.requests[0].headers
    # The negative control: the same server refuses a client that shows no certificate.
    without = Cluster.connect(
        Connection(kubeconfig=_kubeconfig(tmp_path / "b", pki, server.url, {"token": "x"}))
    )
    with pytest.raises(errors.Unreachable):
        without.get(GNPS, "p-2")
    assert without.response_counts() == {("get", "error"): 1}


def test_the_kubeconfigs_proxy_is_used(
    server: Server, proxy: Proxy, pki: Path, tmp_path: Path
) -> None:
    kubeconfig = _kubeconfig(
        tmp_path / "k", pki, server.url, _client_cert(pki), **{"proxy-url": proxy.url}
    )
    cluster = Cluster.connect(Connection(kubeconfig=kubeconfig))
    cluster.apply(GNPS, _gnp("p-3"))
    assert proxy.tunnels == [server.url.removeprefix("https://")]
    assert len(server.requests) == 1


def test_concurrent_requests_reuse_one_connection_per_worker_and_are_counted(
    server: Server, pki: Path, tmp_path: Path
) -> None:
    cluster = Cluster.connect(
        Connection(kubeconfig=_kubeconfig(tmp_path / "k", pki, server.url, _client_cert(pki)))
    )
    payloads = [Payload.of(_gnp(f"p-{i}")) for i in range(200)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda p: cluster.submit(GNPS, p, dry_run=True), payloads))
        list(pool.map(lambda p: cluster.submit(GNPS, p), payloads))
    assert len(server.requests) == 400
    assert cluster.request_counts() == {"dry-run": 200, "apply": 200}
    assert cluster.response_counts() == {("dry-run", "200"): 200, ("apply", "200"): 200}
    # Keep-alive: at most one connection (one TLS handshake) per worker, on both sides.
    assert 1 <= cluster.connections_opened() <= 8
    assert len(server.connections) == cluster.connections_opened()


def test_an_error_answer_is_typed_and_counted(server: Server, pki: Path, tmp_path: Path) -> None:
    cluster = Cluster.connect(
        Connection(kubeconfig=_kubeconfig(tmp_path / "k", pki, server.url, _client_cert(pki)))
    )
    with pytest.raises(errors.NotFound, match="thing not found"):
        cluster.submit(GNPS, Payload.of(_gnp("missing")))
    assert cluster.get(GNPS, "missing") is None
    assert cluster.response_counts() == {("apply", "404"): 1, ("get", "404"): 1}
    # Nothing listens here any more: no answer at all is Unreachable, counted as "error".
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    closed = Cluster.connect(
        Connection(
            kubeconfig=_kubeconfig(
                tmp_path / "c", pki, f"https://127.0.0.1:{port}", _client_cert(pki)
            )
        )
    )
    with pytest.raises(errors.Unreachable):
        closed.submit(GNPS, Payload.of(_gnp("p-4")), dry_run=True)
    assert closed.response_counts() == {("dry-run", "error"): 1}
