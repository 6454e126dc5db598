"""The shipped artefacts for real: the image built from ./Dockerfile (`make image`), run as the
Helm chart's pod on a real node (`local-cluster up --node`). `make e2e` runs these tests; the
default `pytest` run leaves them out (pyproject's addopts ignore tests/e2e), because a cold
run builds the kubelet, a Debian base and the image (see README, Testing).

Needs root (network namespace, containerd) and the Debian packages of scripts/node-deps.sh;
without them the tests fail (never skip): a green `make e2e` means the pod really ran.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from reconciler import localcluster
from reconciler.localcluster import node as real_node
from tests.chart.helm import ROOT
from tests.source.gitserver import GitServer, _Handler


def _progress(message: str) -> None:
    print(message, file=sys.stderr)


@pytest.fixture(scope="session")
def image() -> str:
    """`make image`: exactly ./Dockerfile, built with podman; the last stdout line is its ref."""
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build-image.sh")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def node_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cp-node")


@pytest.fixture(scope="session")
def node_cluster(image: str, node_state: Path) -> Iterator[localcluster.ClusterInfo]:
    info = localcluster.up(node_state, nodes=0, node=True, images=(image,), progress=_progress)
    yield info
    localcluster.down(node_state)  # idempotent: the last test already took it down


class _BoundGitServer(GitServer):
    """tests/source's smart-HTTP git server, bound where the node's pods can reach it (the
    host end of the node's veth) instead of loopback."""

    bind = "127.0.0.1"

    def __enter__(self) -> GitServer:
        handler = type("Handler", (_Handler,), {"server_info": self})
        self._httpd = ThreadingHTTPServer((self.bind, 0), handler)
        self._httpd.daemon_threads = True
        self.url = f"http://{self.bind}:{self._httpd.server_address[1]}"
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self


@pytest.fixture(scope="session")
def git_server(
    node_cluster: localcluster.ClusterInfo, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GitServer]:
    plan = real_node.load(Path(node_cluster.state_dir))
    assert plan is not None
    server = type("Bound", (_BoundGitServer,), {"bind": plan.host_ip})
    with server(tmp_path_factory.mktemp("git")) as served:
        yield served
