"""Calico's Felix as the dataplane of the local cluster, one network namespace per node.

Layout (all inside namespaces this module creates; the host's own namespace gains no
interface, address, route or rule):

    <id>-fab   a router: bridge br0 with 10.240.255.254/16 (nodes), 172.30.0.254/24
               (admin) and 172.31.0.254/24 (outside), IPv4 forwarding on
    <id>-n1..  one per Node: eth0 = the Node's InternalIP (10.240.0.x/16), default via
               the router; Felix runs here as if this were the node's host
    <id>-adm   an admin workstation, 172.30.0.10
    <id>-out   somewhere outside the cluster, 172.31.0.10

Felix reaches kube-apiserver (127.0.0.1 on the host, not reachable from a namespace)
through a Unix socket: socat on the host forwards the socket to the API server, and a
socat in each node namespace listens on 127.0.0.1:16443 and forwards to the socket.
Felix's own failsafe ports cover only that bridge and its health port, so that policy
alone decides what reaches SSH (22) or the API server port (6443) in tests; Calico's
default failsafe list can be given instead (`failsafe=CALICO_FAILSAFE`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.localcluster import build, launcher, procs
from reconciler.localcluster.probe import in_netns

if TYPE_CHECKING:
    from reconciler.localcluster.launcher import ClusterInfo, Progress

FELIX = "calico-felix"
ROUTER_IPS = ("10.240.255.254/16", "172.30.0.254/24", "172.31.0.254/24")
NODE_GATEWAY = "10.240.255.254"
ADMIN_IP = "172.30.0.10"
OUTSIDE_IP = "172.31.0.10"
BRIDGE_PORT = 16443  # the API server as Felix sees it, inside each node namespace
HEALTH_PORT = 9099
MAX_NODES = 16
LISTEN_PORTS = (22, 6443, 8080)  # stand-in services on every node (SSH, API server, other)
_LOCAL_FAILSAFE = f"tcp:127.0.0.0/8:{BRIDGE_PORT},tcp:127.0.0.0/8:{HEALTH_PORT}"
CALICO_FAILSAFE_IN = "tcp:22,udp:68,tcp:179,tcp:2379,tcp:2380,tcp:5473,tcp:6443,tcp:6666,tcp:6667"
CALICO_FAILSAFE_OUT = "udp:53,udp:67,tcp:179,tcp:2379,tcp:2380,tcp:5473,tcp:6443,tcp:6666,tcp:6667"
_TOOLS = ("ip", "iptables", "iptables-nft-restore", "ipset", "conntrack", "socat")


class DataplaneError(RuntimeError):
    """The host cannot run the dataplane, or Felix did not start; says what to do."""


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    ip: str
    netns: str


@dataclass(frozen=True, slots=True)
class Dataplane:
    """What `start` made, recorded in <state>/dataplane/dataplane.json."""

    prefix: str
    router: str
    admin: str
    outside: str
    nodes: tuple[Node, ...]
    pids: tuple[tuple[int, str], ...] = field(default=())  # (pid, program)

    @property
    def namespaces(self) -> tuple[str, ...]:
        return (*(n.netns for n in self.nodes), self.admin, self.outside, self.router)

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def place(self, name: str) -> tuple[str, str]:
        """(netns, address) of "admin", "outside" or a node by name: a probe's two ends."""
        fixed = {"admin": (self.admin, ADMIN_IP), "outside": (self.outside, OUTSIDE_IP)}
        if name in fixed:
            return fixed[name]
        node = self.node(name)
        return node.netns, node.ip


def check_host() -> None:
    """Root (network namespaces, iptables) and the tools Felix execs; else a clear error."""
    if os.geteuid() != 0:
        raise DataplaneError(
            "the Calico dataplane needs root: it creates network namespaces and runs Felix, "
            "which programs iptables in them. Run as root (e.g. in the CI container)."
        )
    missing = [t for t in _TOOLS if not _which(t)]
    if missing:
        raise DataplaneError(
            f"the Calico dataplane needs {', '.join(missing)}: run scripts/system-deps.sh "
            "(Debian: apt-get install iproute2 iptables nftables ipset conntrack socat)"
        )


def _which(tool: str) -> str | None:
    return shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin")


def state_dir_of(info: ClusterInfo) -> Path:
    return Path(info.state_dir) / "dataplane"


def load(state_dir: Path) -> Dataplane | None:
    path = state_dir / "dataplane" / "dataplane.json"
    if not path.exists():
        return None
    raw = json.loads(path.read_text())
    nodes = tuple(Node(**n) for n in raw.pop("nodes"))
    pids = tuple((int(p), str(n)) for p, n in raw.pop("pids"))
    return Dataplane(**raw, nodes=nodes, pids=pids)


def start(
    info: ClusterInfo, progress: Progress, *, failsafe: tuple[str, str] = ("", "")
) -> Dataplane:
    """Namespaces, Felix per Node, stand-in services; returns when every Felix is ready."""
    check_host()
    felix = build.ensure_calico_binaries((FELIX,), progress) / FELIX
    plan = _layout(info)
    progress(f"Starting Felix in {len(plan.nodes)} node network namespaces ({plan.prefix}-*)")
    _record(info, plan)  # before anything exists, so `down` cleans up a failed start
    _network(plan)
    _calico_defaults(info)
    pids = _processes(info, plan, felix, failsafe)
    dataplane = Dataplane(**{**_fields(plan), "pids": pids})
    _record(info, dataplane)
    _wait_felix_ready(info, dataplane)
    return dataplane


def _fields(plan: Dataplane) -> dict[str, Any]:
    return {k: getattr(plan, k) for k in ("prefix", "router", "admin", "outside", "nodes")}


def _record(info: ClusterInfo, dataplane: Dataplane) -> None:
    out = state_dir_of(info)
    out.mkdir(parents=True, exist_ok=True)
    (out / "dataplane.json").write_text(json.dumps(asdict(dataplane), indent=2))


def _layout(info: ClusterInfo) -> Dataplane:
    prefix = "prc" + hashlib.sha256(str(Path(info.state_dir).resolve()).encode()).hexdigest()[:5]
    found = _node_ips(info)
    if len(found) > MAX_NODES:
        raise DataplaneError(
            f"{len(found)} Nodes: the dataplane runs one Felix (about 80 MiB) per Node and "
            f"takes at most {MAX_NODES}; start the cluster with --nodes {MAX_NODES} or fewer"
        )
    nodes = tuple(Node(name, ip, f"{prefix}-n{i}") for i, (name, ip) in enumerate(found, 1))
    return Dataplane(prefix, f"{prefix}-fab", f"{prefix}-adm", f"{prefix}-out", nodes)


def _node_ips(info: ClusterInfo) -> list[tuple[str, str]]:
    listed = json.loads(launcher.kubectl(info, "get", "nodes", "-o", "json"))["items"]
    found = []
    for node in listed:
        ips = [a["address"] for a in node.get("status", {}).get("addresses", [])
               if a["type"] == "InternalIP" and a["address"].startswith("10.240.")]  # fmt: skip
        if ips:
            found.append((node["metadata"]["name"], ips[0]))
    return sorted(found)


# --- namespaces and links -----------------------------------------------------------------


def _network(dp: Dataplane) -> None:
    netns_add(dp.router)
    ip("-n", dp.router, "link", "add", "br0", "type", "bridge")
    for cidr in ROUTER_IPS:
        ip("-n", dp.router, "addr", "add", cidr, "dev", "br0")
    ip("-n", dp.router, "link", "set", "br0", "up")
    sh("ip", "netns", "exec", dp.router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    for i, node in enumerate(dp.nodes, 1):
        _attach(dp, node.netns, f"n{i}", f"{node.ip}/16", NODE_GATEWAY)
        # Pods (pods.py) on node i get 192.168.i.0/24; the node forwards to them.
        ip("-n", dp.router, "route", "add", f"192.168.{i}.0/24", "via", node.ip)
        sh("ip", "netns", "exec", node.netns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    _attach(dp, dp.admin, "adm", f"{ADMIN_IP}/24", "172.30.0.254")
    _attach(dp, dp.outside, "out", f"{OUTSIDE_IP}/24", "172.31.0.254")


def _attach(dp: Dataplane, netns: str, port: str, cidr: str, gateway: str) -> None:
    """netns gets eth0 (cidr, default route via the router); its peer joins br0."""
    netns_add(netns)
    ip("link", "add", "eth0", "netns", netns, "type", "veth", "peer", "name", port,
        "netns", dp.router)  # fmt: skip
    ip("-n", dp.router, "link", "set", port, "master", "br0", "up")
    ip("-n", netns, "addr", "add", cidr, "dev", "eth0")
    ip("-n", netns, "link", "set", "eth0", "up")
    ip("-n", netns, "route", "add", "default", "via", gateway)


def netns_add(name: str) -> None:
    sh("ip", "netns", "add", name)
    ip("-n", name, "link", "set", "lo", "up")


def ip(*args: str) -> None:
    sh("ip", *args)


def sh(*argv: str) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise DataplaneError(f"{' '.join(argv)} failed: {proc.stderr.strip()}")
    return proc.stdout


# --- cluster objects Felix expects (calico-node or the operator would make them) ---------


def _calico_defaults(info: ClusterInfo) -> None:
    objects = [
        {"apiVersion": "crd.projectcalico.org/v1", "kind": "ClusterInformation",
         "metadata": {"name": "default"},
         "spec": {"datastoreReady": True}},
        {"apiVersion": "crd.projectcalico.org/v1", "kind": "Tier",
         "metadata": {"name": "default"}, "spec": {"order": 1000000}},
    ]  # fmt: skip
    body = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    # Calico's API server may have made them already: share the fields, same values.
    launcher.kubectl(info, "apply", "--server-side", "--force-conflicts",
                     "--field-manager=policy-reconciler-local", "-f", "-", stdin=body)  # fmt: skip


# --- processes ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _FelixRun:
    """What every node's processes share."""

    binary: Path
    out: Path  # logs, sockets, kubeconfig
    sock: Path  # the host end of the API server bridge
    kubeconfig: Path
    failsafe: tuple[str, str]


def _processes(
    info: ClusterInfo, dp: Dataplane, felix: Path, failsafe: tuple[str, str]
) -> tuple[tuple[int, str], ...]:
    out = state_dir_of(info)
    sock = out / "api.sock"
    sock.unlink(missing_ok=True)
    port = info.server.rsplit(":", 1)[1]
    host_bridge = procs.spawn(
        ["socat", f"UNIX-LISTEN:{sock},fork,mode=600", f"TCP:127.0.0.1:{port}"],
        out / "socat-host.log",
    )
    run = _felix_run(info, felix, failsafe)
    pids = [(host_bridge.pid, "socat")]
    for node in dp.nodes:
        pids += _node_processes(node, run)
    return tuple(pids)


def _felix_run(info: ClusterInfo, felix: Path, failsafe: tuple[str, str]) -> _FelixRun:
    out = state_dir_of(info)
    return _FelixRun(felix, out, out / "api.sock", _felix_kubeconfig(info, out), failsafe)


def restart_felix(info: ClusterInfo, node: str, *, failsafe: tuple[str, str]) -> None:
    """Run one node's Felix again with other failsafe ports (extra inbound, outbound), as
    an operator changing FelixConfiguration would; returns once it is ready."""
    dp = load(Path(info.state_dir))
    assert dp is not None, "no dataplane recorded for this cluster"
    old = next((pid, prog) for pid, prog in dp.pids if prog.endswith(FELIX) and
               f"FELIX_FELIXHOSTNAME={node}".encode() in _environ(pid))  # fmt: skip
    procs.stop(*old, timeout=10)
    run = _felix_run(info, Path(old[1]), failsafe)
    target = dp.node(node)
    proc = _spawn_felix(target, run)
    pids = (*(p for p in dp.pids if p != old), (proc.pid, str(run.binary)))
    restarted = Dataplane(**{**_fields(dp), "pids": pids})
    _record(info, restarted)
    _wait_felix_ready(info, Dataplane(**{**_fields(dp), "nodes": (target,)}))


def _environ(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return b""


def _spawn_felix(node: Node, run: _FelixRun) -> subprocess.Popen[bytes]:
    (run.out / f"status-{node.name}" / "endpoint-status").mkdir(parents=True, exist_ok=True)
    netns = ["ip", "netns", "exec", node.netns]
    log = run.out / f"felix-{node.name}.log"
    return procs.spawn([*netns, "env", "-i", *_felix_env(node, run), run.binary], log)


def _node_processes(node: Node, run: _FelixRun) -> list[tuple[int, str]]:
    netns = ["ip", "netns", "exec", node.netns]
    bridge = procs.spawn(
        [*netns, "socat", f"TCP-LISTEN:{BRIDGE_PORT},bind=127.0.0.1,fork,reuseaddr",
         f"UNIX-CONNECT:{run.sock}"],
        run.out / f"socat-{node.name}.log",
    )  # fmt: skip
    listen = [*netns, _python(), "-m", "reconciler.localcluster.listen", node.ip]
    services = procs.spawn(
        [*listen, *map(str, LISTEN_PORTS)], run.out / f"listen-{node.name}.log", env=_py_env()
    )
    felix = _spawn_felix(node, run)
    return [(bridge.pid, "socat"), (services.pid, _python()), (felix.pid, str(run.binary))]


def _python() -> str:
    return sys.executable


def _py_env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[2])  # so `-m reconciler...` imports this tree
    return {**os.environ, "PYTHONPATH": root}


def _felix_kubeconfig(info: ClusterInfo, out: Path) -> Path:
    config = json.loads(Path(info.kubeconfig).read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{BRIDGE_PORT}"
    path = out / "felix.kubeconfig"
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return path


def _felix_env(node: Node, run: _FelixRun) -> list[str]:
    inbound = ",".join(p for p in (_LOCAL_FAILSAFE, run.failsafe[0]) if p)
    outbound = ",".join(p for p in (_LOCAL_FAILSAFE, run.failsafe[1]) if p)
    settings = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "KUBECONFIG": str(run.kubeconfig),
        "FELIX_DATASTORETYPE": "kubernetes",
        "FELIX_FELIXHOSTNAME": node.name,
        # CGO_ENABLED=0 build: the libbpf stub panics in the BPF cleanup run at start.
        "FELIX_DebugSkipCTLBCleanup": "true",
        "FELIX_BPFENABLED": "false",
        "FELIX_XDPENABLED": "false",
        "FELIX_NFTABLESMODE": "Disabled",
        "FELIX_IPTABLESBACKEND": "nft",
        "FELIX_IPV6SUPPORT": "false",
        "FELIX_FAILSAFEINBOUNDHOSTPORTS": inbound,
        "FELIX_FAILSAFEOUTBOUNDHOSTPORTS": outbound,
        "FELIX_HEALTHENABLED": "true",
        "FELIX_HEALTHHOST": "127.0.0.1",
        "FELIX_HEALTHPORT": str(HEALTH_PORT),
        "FELIX_USAGEREPORTINGENABLED": "false",
        "FELIX_REPORTINGINTERVALSECS": "0",
        "FELIX_ROUTESYNCDISABLED": "true",
        "FELIX_REMOVEEXTERNALROUTES": "false",
        "FELIX_PROMETHEUSMETRICSENABLED": "false",
        "FELIX_ENDPOINTSTATUSPATHPREFIX": str(run.out / f"status-{node.name}"),
        "FELIX_LOGFILEPATH": "none",
        "FELIX_LOGSEVERITYSYS": "none",
        "FELIX_LOGSEVERITYSCREEN": "Info",
    }
    return [f"{k}={v}" for k, v in settings.items()]


def _wait_felix_ready(info: ClusterInfo, dp: Dataplane, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    for node in dp.nodes:
        while not _felix_ready(node):
            if time.monotonic() > deadline:
                log = state_dir_of(info) / f"felix-{node.name}.log"
                raise DataplaneError(f"Felix on {node.name} not ready: {procs.tail(log)}")
            time.sleep(0.2)


def _felix_ready(node: Node) -> bool:
    url = f"http://127.0.0.1:{HEALTH_PORT}/readiness"

    def get() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    return in_netns(node.netns, get)


# --- stop -----------------------------------------------------------------------------------


def stop(state_dir: Path) -> None:
    """Stop what `start` recorded for this state dir, then delete its namespaces."""
    dp = load(state_dir)
    if dp is None:
        return
    for pid, program in dp.pids:
        procs.stop(pid, program, timeout=5)
    for name in _ours(dp):
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
    (state_dir / "dataplane" / "dataplane.json").unlink()


def _ours(dp: Dataplane) -> list[str]:
    """The namespaces start made, and the pods' (pods.py), all under this cluster's prefix."""
    netns = Path("/var/run/netns")
    made = [p.name for p in netns.glob(f"{dp.prefix}-*")] if netns.exists() else []
    return sorted(made, key=lambda name: name == dp.router)  # the router last


# --- observing the dataplane ----------------------------------------------------------------


def ruleset(netns: str) -> str:
    """Felix's iptables rules in a node namespace, without counters and timestamps."""
    saved = sh("ip", "netns", "exec", netns, "iptables-save")
    return "\n".join(line.split(" [", 1)[0] for line in saved.splitlines() if line[:1] != "#")


def wait_settled(
    namespaces: Iterable[str], before: dict[str, str], *, change: float = 2, quiet: float = 0.5
) -> None:
    """After a write: wait until a namespace's rules changed (at most `change` s: a write
    Felix does not render changes nothing), then until no rules changed for `quiet` s."""
    names = list(namespaces)
    deadline = time.monotonic() + change
    while time.monotonic() < deadline and all(ruleset(n) == before.get(n) for n in names):
        time.sleep(0.05)
    last = {n: ruleset(n) for n in names}
    stable_since = time.monotonic()
    while time.monotonic() - stable_since < quiet:
        time.sleep(0.05)
        now = {n: ruleset(n) for n in names}
        if now != last:
            last, stable_since = now, time.monotonic()
