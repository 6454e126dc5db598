"""Real connectivity checks between the local dataplane's network namespaces.

`probe(src_netns, dst_addr, proto, port, timeout)` answers "does a connection from this
namespace get through?" with a real socket: the probing thread enters the source
namespace (setns(2) moves only the calling thread) and connects (TCP) or sends and
waits for the echo (UDP). A `Listener` answers on the other side. No subprocess per
probe, so a loop can probe every 100 ms with sub-second timeouts.
"""

from __future__ import annotations

import ctypes
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

NETNS_DIR = Path("/var/run/netns")
_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
T = TypeVar("T")


class NetnsError(RuntimeError):
    """A network namespace is missing or cannot be entered."""


def in_netns(netns: str, fn: Callable[[], T]) -> T:
    """Run fn in a fresh thread that has entered `netns` ("" = this namespace)."""
    result: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            if netns:
                _enter(netns)
            result.append(fn())
        except BaseException as exc:  # handed to the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=run, name=f"netns-{netns}", daemon=True)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


def _enter(netns: str) -> None:
    try:
        fd = os.open(NETNS_DIR / netns, os.O_RDONLY)
    except OSError as exc:
        raise NetnsError(f"network namespace {netns!r} not found ({exc})") from exc
    try:
        if _libc.setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise NetnsError(f"cannot enter network namespace {netns!r}: {os.strerror(err)}")
    finally:
        os.close(fd)


def probe(
    src_netns: str, dst_addr: str, proto: str = "tcp", port: int = 22, timeout: float = 0.5
) -> bool:
    """True if a TCP connection (or a UDP echo) from src_netns to dst_addr:port succeeds."""
    if proto == "tcp":
        return in_netns(src_netns, lambda: _tcp(dst_addr, port, timeout))
    if proto == "udp":
        return in_netns(src_netns, lambda: _udp(dst_addr, port, timeout))
    raise ValueError(f"probe: unsupported protocol {proto!r} (tcp or udp)")


def _tcp(addr: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((addr, port), timeout=timeout):
            return True
    except OSError:  # refused, reset, timed out (dropped), unreachable
        return False


def _udp(addr: str, port: int, timeout: float) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(b"probe", (addr, port))
            return s.recvfrom(64)[0] == b"probe"
        except OSError:
            return False


Flow = tuple[str, str, str, int]  # (src_netns, dst_addr, proto, port)


def verdicts(flows: list[Flow], timeout: float = 0.5) -> dict[Flow, bool]:
    """Probe many flows at once (denied ones each cost `timeout`, so in parallel): the
    real dataplane's answer, to set beside a model's (e.g. the connectivity engine's)."""
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = pool.map(lambda f: probe(f[0], f[1], f[2], f[3], timeout), flows)
        return dict(zip(flows, results, strict=True))


def wait_verdict(
    src_netns: str,
    dst_addr: str,
    port: int,
    *,
    allowed: bool,
    proto: str = "tcp",
    timeout: float = 30,
) -> float:
    """Poll until the probe gives `allowed`; return the seconds it took.

    This is "policy programmed" as a user sees it: Felix has rendered the change.
    """
    start = time.monotonic()
    while probe(src_netns, dst_addr, proto, port, timeout=0.3) != allowed:
        if time.monotonic() - start > timeout:
            verdict = "allowed" if allowed else "denied"
            raise TimeoutError(
                f"{proto}/{port} from {src_netns} to {dst_addr} not {verdict} after {timeout:.0f}s"
            )
        time.sleep(0.1)
    return time.monotonic() - start


@dataclass
class Listener:
    """Accepts TCP connections (and closes them) or echoes UDP, in a network namespace."""

    netns: str
    addr: str
    port: int
    proto: str = "tcp"
    _sock: socket.socket | None = field(default=None, repr=False)

    def start(self) -> Listener:
        kind = socket.SOCK_STREAM if self.proto == "tcp" else socket.SOCK_DGRAM
        self._sock = in_netns(self.netns, lambda: _bound(kind, self.addr, self.port))
        threading.Thread(target=self._serve, name=f"listen-{self.port}", daemon=True).start()
        return self

    def _serve(self) -> None:
        sock = self._sock
        while sock is not None and sock.fileno() != -1:
            try:
                if self.proto == "tcp":
                    sock.accept()[0].close()
                else:
                    data, peer = sock.recvfrom(64)
                    sock.sendto(data, peer)
            except OSError:
                return  # closed by stop()

    def stop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _bound(kind: int, addr: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((addr, port))
    if kind == socket.SOCK_STREAM:
        sock.listen(128)
    return sock


@contextmanager
def listening(netns: str, addr: str, port: int, proto: str = "tcp") -> Iterator[Listener]:
    listener = Listener(netns, addr, port, proto).start()
    try:
        yield listener
    finally:
        listener.stop()


@dataclass(frozen=True, slots=True)
class Sample:
    at: float  # seconds since the loop started
    target: str  # "addr:port/proto"
    ok: bool


class ProbeLoop:
    """Probes targets from one namespace every `interval` s in the background."""

    def __init__(
        self,
        src_netns: str,
        targets: list[tuple[str, int]],
        *,
        interval: float = 0.1,
        timeout: float = 0.3,
    ) -> None:
        self.src_netns = src_netns
        self.targets = targets
        self.interval = interval
        self.timeout = timeout
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="probe-loop", daemon=True)

    def __enter__(self) -> ProbeLoop:
        self._start = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            for addr, port in self.targets:
                ok = probe(self.src_netns, addr, "tcp", port, self.timeout)
                at = time.monotonic() - self._start
                self.samples.append(Sample(at, f"{addr}:{port}/tcp", ok))
            self._stop.wait(self.interval)

    def failures(self) -> list[Sample]:
        return [s for s in self.samples if not s.ok]
