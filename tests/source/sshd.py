"""A real OpenSSH server on loopback for tests: key-only login as the current user, so
`git-upload-pack` runs over SSH exactly as against a Git host."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.source.gitserver import closed_port

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


@dataclass(frozen=True)
class SSHServer:
    port: int
    user: str
    host_key_pub: str  # "ssh-ed25519 AAAA..."

    def url(self, repo: Path) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}{repo}"

    def known_hosts_line(self) -> str:
        return f"[127.0.0.1]:{self.port} {self.host_key_pub}\n"


def keygen(path: Path, comment: str = "test") -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True, timeout=30,
    )  # fmt: skip
    return path


@contextmanager
def sshd(workdir: Path, *, authorized_keys: str) -> Iterator[SSHServer]:
    if not Path(SSHD).is_file():
        pytest.fail("sshd is needed for the SSH tests: apt-get install -y openssh-server")
    workdir.mkdir(parents=True, exist_ok=True)
    host = keygen(workdir / "host_ed25519", "host")
    (workdir / "authorized_keys").write_text(authorized_keys)
    port = closed_port()
    config = workdir / "sshd_config"
    config.write_text(_config(workdir, port))
    if os.getuid() == 0:  # root's sshd insists on its privilege separation directory
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    log = (workdir / "sshd.log").open("w")
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=log)
    try:
        _wait_for_banner(port, proc)
        pub = " ".join(Path(f"{host}.pub").read_text().split()[:2])
        yield SSHServer(port, getpass.getuser(), pub)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def _config(workdir: Path, port: int) -> str:
    return "\n".join([
        f"Port {port}",
        "ListenAddress 127.0.0.1",
        f"HostKey {workdir}/host_ed25519",
        f"AuthorizedKeysFile {workdir}/authorized_keys",
        f"PidFile {workdir}/sshd.pid",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        "StrictModes no",
        "UsePAM no",
        "LogLevel VERBOSE",
        "",
    ])  # fmt: skip


def _wait_for_banner(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"sshd exited with {proc.returncode}; see its log")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(64).startswith(b"SSH-"):
                    return
        except OSError:
            time.sleep(0.05)
    pytest.fail("sshd did not answer within 15s")
