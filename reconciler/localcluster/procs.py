"""Background processes of the local cluster: start detached, find again by pid, stop.

Every process is started in its own session so it outlives the CLI call that started
it, and is stopped only by the pid we recorded (checked against its command line, so
a recycled pid is never signalled).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reconciler.localcluster.launcher import ClusterInfo


def kubectl_run(info: ClusterInfo, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """kubectl against the local cluster; the caller decides what a failure means."""
    return subprocess.run(
        [info.kubectl, f"--kubeconfig={info.kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )


def spawn(
    argv: Sequence[str | Path], log: Path, *, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(a) for a in argv],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            start_new_session=True,  # survive the CLI process that started it
        )


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def alive(pid: int, name: str) -> bool:
    """True if pid runs program `name` and has not exited (guards against a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z" and name.encode() in cmdline.split(b"\0", 1)[0]


def stop(pid: int, name: str, timeout: float = 15) -> None:
    if pid <= 0:  # never recorded (0 would mean our whole process group)
        return
    if not alive(pid, name):
        _reap(pid)
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(pid, name) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.05)
    if alive(pid, name):
        os.kill(pid, signal.SIGKILL)
    _reap(pid)


def _reap(pid: int) -> None:
    """Collect our own exited child so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def tail(log: Path, lines: int = 10) -> str:
    text = log.read_text(errors="replace").splitlines()[-lines:] if log.exists() else []
    return f"see {log}\n" + "\n".join(text)
