"""Run a real etcd + kube-apiserver on loopback, with Calico CRDs and fake Nodes.

The processes outlive the CLI call that started them (own session), and their
pids, ports and paths are kept in `state.json` so `up` is idempotent and
`down`/`status` can find them. Tests use the same launcher with a private state dir.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from reconciler.localcluster import build, certs, procs
from reconciler.localcluster import calico_apiserver as calico_api
from reconciler.localcluster import dataplane as node_dataplane
from reconciler.localcluster import node as real_node
from reconciler.localcluster.nodes import node_manifests

# Loopback-only throwaway cluster; this token opens nothing anywhere else.
ADMIN_TOKEN = "admin-token"  # noqa: S105
AUDIT_POLICY = Path(__file__).parent / "audit-policy.yaml"
Progress = Callable[[str], None]


class ClusterError(RuntimeError):
    """The local control plane failed to start or respond; the message says where to look."""


@dataclass(frozen=True, slots=True)
class ClusterInfo:
    state_dir: str
    kubeconfig: str
    server: str
    etcd_url: str
    audit_log: str
    bin_dir: str
    etcd_pid: int
    apiserver_pid: int
    calico_apiserver_pid: int = 0  # 0: not started (opt-in)
    dataplane: bool = False  # Felix per node in network namespaces (opt-in)
    # A real node (kubelet, containerd) runs; the API server then admits ServiceAccounts
    # (pods get tokens), which is decided when it starts.
    node: bool = False

    @property
    def kubectl(self) -> str:
        return str(Path(self.bin_dir) / "kubectl")

    @property
    def helm(self) -> str:
        return str(Path(self.bin_dir) / "helm")


def default_state_dir() -> Path:
    return build.cache_root() / "local-cluster"


def up(
    state_dir: Path,
    *,
    nodes: int = 3,
    calico_apiserver: bool = False,
    dataplane: bool = False,
    node: bool = False,
    images: tuple[str, ...] = (),
    progress: Progress = print,
) -> ClusterInfo:
    """Start the control plane, or return the one already running there; then start the
    opt-ins asked for that are not running yet (Calico's API server, Felix per node, a
    real node with `images` loaded from podman)."""
    info = current(state_dir)
    if info:
        progress(f"Local cluster already running at {info.server}")
        if node and not info.node:
            raise ClusterError(
                f"the local cluster at {info.server} was started without --node (its API "
                "server gives pods no ServiceAccount tokens): run `local-cluster down` first"
            )
    else:
        real_node.stop(state_dir, None)  # a node left from a cluster that died (no-op if none)
        info = _fresh(state_dir, nodes, progress, node=node)
    if node and real_node.load(state_dir) is None:
        try:
            real_node.start(info, images, progress)
        except BaseException:
            real_node.stop(state_dir, info)  # nothing half-made stays behind
            raise
    if calico_apiserver and not calico_api.running(info):
        info = _record(replace(info, calico_apiserver_pid=calico_api.start(info, progress)))
    if dataplane and not info.dataplane:
        node_dataplane.start(info, progress)
        info = _record(replace(info, dataplane=True))
    return info


def _fresh(state_dir: Path, nodes: int, progress: Progress, *, node: bool) -> ClusterInfo:
    bins = build.ensure_binaries(progress)
    crds = build.calico_crd_dir(progress)
    info = _start(state_dir, bins, progress, node=node)
    progress(f"Installing Calico {build.CALICO_VERSION} CRDs and {nodes} Nodes")
    _install_crds(info, crds)
    if nodes:  # `kubectl apply` of an empty List is an error
        _create_nodes(info, nodes, unschedulable=node)
    return info


def current(state_dir: Path) -> ClusterInfo | None:
    """The cluster recorded in state_dir if its processes are alive and it is ready."""
    state = state_dir / "state.json"
    if not state.exists():
        return None
    info = ClusterInfo(**json.loads(state.read_text()))
    alive = procs.alive(info.etcd_pid, "etcd") and procs.alive(info.apiserver_pid, "kube-apiserver")
    return info if alive and _ready(info.server) else None


def down(state_dir: Path) -> bool:
    """Stop the processes and drop the cluster's data. True if something was running."""
    state = state_dir / "state.json"
    if not state.exists():
        return False
    info = ClusterInfo(**json.loads(state.read_text()))
    real_node.stop(state_dir, info)  # its pods go while the API server still runs
    node_dataplane.stop(state_dir)  # namespaces, veths and Felix go first, even if off
    procs.stop(info.calico_apiserver_pid, "calico-apiserver")
    procs.stop(info.apiserver_pid, "kube-apiserver")
    procs.stop(info.etcd_pid, "etcd")
    state.unlink()
    _wipe(state_dir / "etcd")
    return True


def _start(state_dir: Path, bins: Path, progress: Progress, *, node: bool) -> ClusterInfo:
    _wipe(state_dir / "etcd")
    state_dir.mkdir(parents=True, exist_ok=True)
    _write_credentials(state_dir)
    etcd_port, peer_port, api_port = procs.free_ports(3)
    etcd_url = f"http://127.0.0.1:{etcd_port}"
    progress(f"Starting etcd on {etcd_url} and kube-apiserver on https://127.0.0.1:{api_port}")
    etcd_args = _etcd_args(state_dir, etcd_port, peer_port)
    etcd = procs.spawn([bins / "etcd", *etcd_args], state_dir / "etcd.log")
    api_args = _apiserver_args(state_dir, etcd_url, api_port, node=node)
    api = procs.spawn([bins / "kube-apiserver", *api_args], state_dir / "kube-apiserver.log")
    info = ClusterInfo(
        state_dir=str(state_dir),
        kubeconfig=str(state_dir / "kubeconfig"),
        server=f"https://127.0.0.1:{api_port}",
        etcd_url=etcd_url,
        audit_log=str(state_dir / "audit.log"),
        bin_dir=str(bins),
        etcd_pid=etcd.pid,
        apiserver_pid=api.pid,
        node=node,
    )
    _wait_ready(info, api)
    _write_kubeconfig(info)
    return _record(info)


def _record(info: ClusterInfo) -> ClusterInfo:
    (Path(info.state_dir) / "state.json").write_text(json.dumps(asdict(info), indent=2))
    return info


def _etcd_args(state_dir: Path, port: int, peer: int) -> list[str]:
    return [
        f"--data-dir={state_dir / 'etcd'}",
        f"--listen-client-urls=http://127.0.0.1:{port}",
        f"--advertise-client-urls=http://127.0.0.1:{port}",
        f"--listen-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-cluster=default=http://127.0.0.1:{peer}",
        "--unsafe-no-fsync",  # test data: speed over durability
        "--log-level=warn",
    ]


def _apiserver_args(state_dir: Path, etcd_url: str, port: int, *, node: bool) -> list[str]:
    return [
        f"--etcd-servers={etcd_url}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={port}",
        f"--cert-dir={state_dir / 'pki'}",
        f"--service-account-issuer=https://127.0.0.1:{port}",
        f"--service-account-key-file={state_dir / 'sa.key'}",
        f"--service-account-signing-key-file={state_dir / 'sa.key'}",
        "--service-cluster-ip-range=10.0.0.0/24",
        "--authorization-mode=RBAC",
        f"--token-auth-file={state_dir / 'tokens.csv'}",
        # Without a kubelet no pod runs, so no pod needs a token (and no SA must exist first).
        *([] if node else ["--disable-admission-plugins=ServiceAccount"]),
        "--enable-priority-and-fairness=false",
        "--endpoint-reconciler-type=none",
        f"--audit-policy-file={AUDIT_POLICY}",
        f"--audit-log-path={state_dir / 'audit.log'}",
        "--audit-log-maxsize=0",  # never rotate: tests read the whole log
        *_front_proxy_args(state_dir),
        "-v=0",
    ]


def _front_proxy_args(state_dir: Path) -> list[str]:
    """The aggregation layer's flags: kube-apiserver then publishes the
    extension-apiserver-authentication ConfigMap that extension API servers (Calico's)
    read, and proxies to them as front-proxy-client. Always on: it costs two EC keys."""
    ca, client = certs.front_proxy(state_dir / "aggregation")
    return [
        f"--requestheader-client-ca-file={ca.cert}",
        f"--requestheader-allowed-names={certs.FRONT_PROXY_CLIENT}",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={client.cert}",
        f"--proxy-client-key-file={client.key}",
    ]


def _write_credentials(state_dir: Path) -> None:
    (state_dir / "tokens.csv").write_text(f"{ADMIN_TOKEN},admin,admin,system:masters\n")
    key = state_dir / "sa.key"
    if not key.exists():
        subprocess.run(
            ["openssl", "genrsa", "-out", str(key), "2048"], capture_output=True, check=True
        )


def _write_kubeconfig(info: ClusterInfo) -> None:
    ca = Path(info.state_dir) / "pki" / "apiserver.crt"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "local", "cluster": {"server": info.server, "certificate-authority": str(ca)}}
        ],
        "users": [{"name": "admin", "user": {"token": ADMIN_TOKEN}}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": "admin"}}],
        "current-context": "local",
    }
    path = Path(info.kubeconfig)
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o600)


def _wait_ready(info: ClusterInfo, api: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if api.poll() is not None:
            raise ClusterError(f"kube-apiserver exited: {_tail(Path(info.state_dir))}")
        if _ready(info.server):
            return
        time.sleep(0.25)
    raise ClusterError(
        f"kube-apiserver not ready after {timeout:.0f}s: {_tail(Path(info.state_dir))}"
    )


def _tail(state_dir: Path) -> str:
    log = state_dir / "kube-apiserver.log"
    lines = log.read_text(errors="replace").splitlines()[-10:] if log.exists() else []
    return f"see {log}\n" + "\n".join(lines)


def _ready(server: str) -> bool:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # polling readiness of our own loopback server only
    req = urllib.request.Request(  # noqa: S310 - https to loopback
        f"{server}/readyz", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=2) as resp:  # noqa: S310
            return bool(resp.status == 200)
    except OSError:
        return False


def kubectl(info: ClusterInfo, *args: str, stdin: str = "") -> str:
    proc = procs.kubectl_run(info, *args, stdin=stdin)
    if proc.returncode != 0:
        raise ClusterError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def _install_crds(info: ClusterInfo, crd_dir: Path) -> None:
    files = sorted(crd_dir.glob("crd.projectcalico.org_*.yaml"))
    args = [a for f in files for a in ("-f", str(f))]
    kubectl(info, "apply", "--server-side", "--field-manager=policy-reconciler-local", *args)
    kubectl(info, "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")


def _create_nodes(info: ClusterInfo, count: int, *, unschedulable: bool) -> None:
    items = node_manifests(count)
    for item in items:  # no kubelet behind them: with a real node, pods must not land here
        item["spec"] = {"unschedulable": unschedulable}
    body = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    kubectl(
        info,
        "apply",
        "--server-side",
        "--field-manager=policy-reconciler-local",
        "-f",
        "-",
        stdin=body,
    )


def _wipe(path: Path) -> None:
    if path.exists():
        subprocess.run(["rm", "-rf", str(path)], check=True)
