"""A real node for the local cluster (`local-cluster up --node`): pods really run.

kubelet, kube-scheduler and kube-controller-manager (built from the control plane's pinned
Kubernetes module), Debian's containerd, runc and CNI bridge plugin, and a pause image
compiled from Kubernetes' own pause.c, all in one network namespace with no uplink:

    host                                   netns <ns> (no default route)
    kube-apiserver 127.0.0.1:P  <-DNAT--   <hv> 10.99.N.254 ==veth== eth0 10.99.N.1 (the node)
                                                                     cni bridge 10.98.N.1/24 -> pods

Pods reach the API server at the `kubernetes` Service's 10.0.0.1:443, DNAT'ed in the netns
to the host end of the veth, and there (route_localnet on that one interface only) to the
loopback API server, whose certificate already lists 10.0.0.1. The host routes the pod
range to the node, so the API server's service proxy reaches pods (no kube-proxy). What is
needed to undo everything is recorded in node.json before it is made, so `down` cleans up
after a half-started node too. The paths below (findings in shared/reference/real-pod.md)
are why the configs look the way they do.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.localcluster import build, procs

if TYPE_CHECKING:
    from reconciler.localcluster.launcher import ClusterInfo

Progress = Callable[[str], None]
CNI_BIN = Path("/usr/lib/cni")
PAUSE_IMAGE = f"localhost/policy-reconciler-pause:{build.KUBERNETES_VERSION}"
SERVICE_CIDR = "10.0.0.0/24"  # the API server's --service-cluster-ip-range
SERVICE_IP = "10.0.0.1"  # the `kubernetes` Service (its first IP)
# Host paths the kubelet and containerd use whatever their config says; removed by `down`
# only when this node created them.
_HOST_PATHS = ("/run/containerd", "/var/lib/kubelet", "/var/log/containers", "/var/log/pods")
_TOOLS = ("containerd", "runc", "ctr", "podman", "gcc", "nsenter", "iptables", "ip")
_KCM_CONTROLLERS = "*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller"


class NodeError(RuntimeError):
    """The node failed to start or the host lacks what it needs; the message says what to do."""


@dataclass(frozen=True, slots=True)
class NodePlan:
    netns: str
    host_veth: str
    index: int  # N in 10.99.N.0/24 and 10.98.N.0/24
    api_port: int
    created_paths: tuple[str, ...] = ()
    netns_before: tuple[str, ...] = ()
    pids: dict[str, int] = field(default_factory=dict)

    @property
    def node_ip(self) -> str:
        return f"10.99.{self.index}.1"

    @property
    def host_ip(self) -> str:
        return f"10.99.{self.index}.254"

    @property
    def pod_cidr(self) -> str:
        return f"10.98.{self.index}.0/24"

    @property
    def name(self) -> str:
        return self.node_ip  # the API server dials kubelets by address; no DNS here

    def dnat_host(self) -> list[str]:
        return ["PREROUTING", "-i", self.host_veth, "-d", self.host_ip, "-p", "tcp",
                "--dport", str(self.api_port), "-j", "DNAT",
                "--to-destination", f"127.0.0.1:{self.api_port}"]  # fmt: skip


def plan_for(info: ClusterInfo) -> NodePlan:
    """Names and addresses from the state dir, so parallel clusters do not collide."""
    digest = hashlib.sha256(str(Path(info.state_dir).resolve()).encode()).hexdigest()
    return NodePlan(
        netns=f"prnode-{digest[:8]}",
        host_veth=f"prh-{digest[:8]}",
        index=20 + int(digest[8:12], 16) % 230,
        api_port=int(info.server.rsplit(":", 1)[1]),
    )


def check_host() -> None:
    if os.geteuid() != 0:
        raise NodeError("a real node needs root (network namespaces, mounts, cgroups)")
    missing = [t for t in _TOOLS if not _which(t)]
    if not (CNI_BIN / "bridge").exists():
        missing.append(f"{CNI_BIN}/bridge")
    if missing:
        raise NodeError(
            f"a real node needs {', '.join(missing)}: run `bash scripts/node-deps.sh` "
            "(Debian's podman, containerd, runc, containernetworking-plugins, gcc)"
        )


def _which(tool: str) -> str | None:
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")


def _dir(info: ClusterInfo) -> Path:
    return Path(info.state_dir) / "node"


def load(state_dir: Path) -> NodePlan | None:
    path = state_dir / "node" / "node.json"
    if not path.exists():
        return None
    raw = json.loads(path.read_text())
    raw["created_paths"] = tuple(raw["created_paths"])
    raw["netns_before"] = tuple(raw["netns_before"])
    return NodePlan(**raw)


def _save(state_dir: Path, plan: NodePlan) -> NodePlan:
    (state_dir / "node").mkdir(parents=True, exist_ok=True)
    (state_dir / "node" / "node.json").write_text(json.dumps(asdict(plan), indent=2))
    return plan


def start(info: ClusterInfo, images: tuple[str, ...], progress: Progress) -> NodePlan:
    """Start the node, load `images` (podman references) into it, wait until it is Ready."""
    check_host()
    bins = build.ensure_node_binaries(progress)
    pause = ensure_pause_archive(progress)
    plan = plan_for(info)
    if Path(f"/run/netns/{plan.netns}").exists():
        raise NodeError(f"network namespace {plan.netns} exists: run `local-cluster down` first")
    state_dir = Path(info.state_dir)
    plan = _save(state_dir, _with_host_state(plan))  # before anything is made: down undoes it
    progress(f"Starting a real node {plan.name} in network namespace {plan.netns}")
    _network(plan)
    root = _dir(info)
    _write_configs(info, plan, root)
    argv = ["containerd", "--config", str(root / "containerd.toml")]
    pids = {"containerd": _spawn(plan, root, "containerd", argv).pid}
    plan = _save(state_dir, _with_pids(plan, pids))
    sock = root / "containerd" / "containerd.sock"
    _wait_for(sock.exists, 30, "containerd", root / "containerd.log")
    _import(root, pause)
    for image in images:
        load_image(info, image)
    for name, argv in _components(info, plan, bins, root).items():
        pids[name] = _spawn(plan, root, name, argv).pid
        plan = _save(state_dir, _with_pids(plan, pids))
    _wait_node_ready(info, plan, root)
    return plan


def _with_host_state(plan: NodePlan) -> NodePlan:
    before = tuple(sorted(os.listdir("/run/netns"))) if Path("/run/netns").exists() else ()
    created = tuple(p for p in _HOST_PATHS if not Path(p).exists())
    return replace(plan, created_paths=created, netns_before=before, pids={})


def _with_pids(plan: NodePlan, pids: dict[str, int]) -> NodePlan:
    return replace(plan, pids=dict(pids))


def _network(plan: NodePlan) -> None:
    ns = plan.netns
    _sh("ip", "netns", "add", ns)
    _sh("ip", "-n", ns, "link", "set", "lo", "up")
    _sh("ip", "link", "add", plan.host_veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
    _sh("ip", "addr", "add", f"{plan.host_ip}/24", "dev", plan.host_veth)
    _sh("ip", "link", "set", plan.host_veth, "up")
    _sh("ip", "-n", ns, "addr", "add", f"{plan.node_ip}/24", "dev", "eth0")
    _sh("ip", "-n", ns, "link", "set", "eth0", "up")
    # The host reaches pods (API server proxy to a Service, kubectl logs via the kubelet).
    _sh("ip", "route", "add", plan.pod_cidr, "via", plan.node_ip, "dev", plan.host_veth)
    _sh("sysctl", "-qw", f"net.ipv4.conf.{plan.host_veth}.route_localnet=1")
    _sh("iptables", "-t", "nat", "-A", *plan.dnat_host())
    # Only the Service range leads out (to the host end, DNAT'ed below): no default route,
    # so nothing in the netns reaches beyond the host.
    _sh("ip", "-n", ns, "route", "add", SERVICE_CIDR, "via", plan.host_ip, "dev", "eth0")
    nsx = ["nsenter", f"--net=/run/netns/{ns}"]
    _sh(*nsx, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    for chain in ("PREROUTING", "OUTPUT"):  # pods, and the node's own components
        to = f"{plan.host_ip}:{plan.api_port}"
        _sh(*nsx, "iptables", "-t", "nat", "-A", chain, "-d", SERVICE_IP, "-p", "tcp",
            "--dport", "443", "-j", "DNAT", "--to-destination", to)  # fmt: skip


def _write_configs(info: ClusterInfo, plan: NodePlan, root: Path) -> None:
    for sub in ("containerd", "cni/net.d", "cni/ipam", "kubelet", "pod-logs"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "containerd.toml").write_text(_containerd_toml(root))
    (root / "cni/net.d/10-node.conflist").write_text(json.dumps(_cni(plan, root), indent=2))
    (root / "kubelet.yaml").write_text(json.dumps(_kubelet_config(plan, root), indent=2))
    ca = Path(info.state_dir) / "pki" / "apiserver.crt"
    kubeconfig = json.loads(Path(info.kubeconfig).read_text())
    kubeconfig["clusters"][0]["cluster"] = {
        "server": f"https://{SERVICE_IP}:443",
        "certificate-authority": str(ca),
    }
    (root / "kubeconfig").write_text(json.dumps(kubeconfig, indent=2))
    (root / "kubeconfig").chmod(0o600)


def _containerd_toml(root: Path) -> str:
    # restrict_oom_score_adj: lowering a sandbox's oom_score_adj needs CAP_SYS_RESOURCE,
    # which containers (CI runners included) often lack; without it every sandbox fails.
    return f"""version = 2
root = "{root}/containerd/root"
state = "{root}/containerd/state"
[grpc]
  address = "{root}/containerd/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  disable_apparmor = true
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{root}/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
"""


def _cni(plan: NodePlan, root: Path) -> dict[str, Any]:
    gateway = f"10.98.{plan.index}.1"
    bridge = {
        "type": "bridge",
        "bridge": f"prcni{plan.index}",
        "isGateway": True,
        "ipMasq": True,  # pods reach the host end (git server in tests) as the node's IP
        "hairpinMode": True,
        "ipam": {
            "type": "host-local",
            "ranges": [[{"subnet": plan.pod_cidr, "gateway": gateway}]],
            "routes": [{"dst": "0.0.0.0/0"}],
            "dataDir": str(root / "cni" / "ipam"),
        },
    }
    return {"cniVersion": "0.4.0", "name": "policy-reconciler-node", "plugins": [bridge]}


def _kubelet_config(plan: NodePlan, root: Path) -> dict[str, Any]:
    sock = f"unix://{root}/containerd/containerd.sock"
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "cgroupDriver": "cgroupfs",
        "containerRuntimeEndpoint": sock,
        "imageServiceEndpoint": sock,
        "address": plan.node_ip,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
        "authorization": {"mode": "AlwaysAllow"},
        "failSwapOn": False,
        "resolvConf": "",
        "podLogsDir": str(root / "pod-logs"),
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "2%",
            "imagefs.available": "2%",
        },
        "imageGCHighThresholdPercent": 100,  # the images cannot be pulled again: keep them
        "podPidsLimit": 4096,
    }


def _components(info: ClusterInfo, plan: NodePlan, bins: Path, root: Path) -> dict[str, list[str]]:
    kubeconfig = f"--kubeconfig={root / 'kubeconfig'}"
    state = Path(info.state_dir)
    return {
        "kubelet": [str(bins / "kubelet"), f"--config={root / 'kubelet.yaml'}", kubeconfig,
                    f"--root-dir={root / 'kubelet'}", f"--cert-dir={root / 'kubelet' / 'pki'}",
                    f"--hostname-override={plan.name}", f"--node-ip={plan.node_ip}"],
        "kube-controller-manager": [
            str(bins / "kube-controller-manager"), kubeconfig, "--leader-elect=false",
            "--secure-port=0", f"--root-ca-file={state / 'pki' / 'apiserver.crt'}",
            f"--service-account-private-key-file={state / 'sa.key'}",
            "--use-service-account-credentials=false", f"--controllers={_KCM_CONTROLLERS}"],
        "kube-scheduler": [str(bins / "kube-scheduler"), kubeconfig, "--leader-elect=false",
                           "--secure-port=0"],
    }  # fmt: skip


def _spawn(plan: NodePlan, root: Path, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
    # nsenter --net only (not `ip netns exec`): the kubelet's volume mounts must be in the
    # mount namespace containerd and runc see. nsenter execs, so the pid is the component's.
    cmd = ["nsenter", f"--net=/run/netns/{plan.netns}", *argv]
    return procs.spawn(cmd, root / f"{name}.log")


def _wait_for(check: Callable[[], bool], timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise NodeError(f"{what} not ready after {timeout:.0f}s: {procs.tail(log)}")


def _wait_node_ready(info: ClusterInfo, plan: NodePlan, root: Path) -> None:
    def ready() -> bool:
        proc = procs.kubectl_run(info, "get", "node", plan.name, "-o", "json")
        if proc.returncode != 0:
            return False
        node = json.loads(proc.stdout)
        conditions = {c["type"]: c["status"] for c in node["status"].get("conditions", [])}
        return conditions.get("Ready") == "True" and not node["spec"].get("taints")

    _wait_for(ready, 120, f"node {plan.name} (Ready, untainted)", root / "kubelet.log")


def ensure_pause_archive(progress: Progress) -> Path:
    """Kubernetes' own pause.c, built static, as a one-file image archive (cached)."""
    out = build.cache_root() / "image" / f"pause-{build.KUBERNETES_VERSION}.tar"
    if out.exists():
        return out
    progress("Building the pause image from Kubernetes' pause.c")
    out.parent.mkdir(parents=True, exist_ok=True)
    kubernetes = build.module_dir(build.NODE_MODULE, "k8s.io/kubernetes")
    source = kubernetes / "build" / "pause" / "linux" / "pause.c"
    work = out.parent / ".pause"
    work.mkdir(exist_ok=True)
    _sh("gcc", "-Os", "-static", "-o", str(work / "pause"), str(source))
    tar = subprocess.run(
        ["tar", "-C", str(work), "-c", "pause"], capture_output=True, check=True
    ).stdout
    _sh_in(tar, "podman", "import", "-q", "--change", 'ENTRYPOINT ["/pause"]', "-", PAUSE_IMAGE)
    tmp = out.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)  # podman save refuses to overwrite an archive
    _sh("podman", "save", "-q", "--format", "docker-archive", "-o", str(tmp), PAUSE_IMAGE)
    tmp.rename(out)
    shutil.rmtree(work, ignore_errors=True)
    return out


def load_image(info: ClusterInfo, image: str) -> None:
    """Copy a podman image into the node's containerd (nothing is ever pulled)."""
    root = _dir(info)
    archive = root / "image.tar"
    archive.unlink(missing_ok=True)
    _sh("podman", "save", "-q", "--format", "docker-archive", "-o", str(archive), image)
    _import(root, archive)
    archive.unlink()


def _import(root: Path, archive: Path) -> None:
    sock = root / "containerd" / "containerd.sock"
    _sh("ctr", f"--address={sock}", "-n", "k8s.io", "images", "import", str(archive))


def stop(state_dir: Path, info: ClusterInfo | None) -> None:
    """Undo everything start did, in reverse; safe on a half-started or absent node."""
    plan = load(state_dir)
    if plan is None:
        return
    root = state_dir / "node"
    for name in ("kube-controller-manager", "kube-scheduler"):
        procs.stop(plan.pids.get(name, 0), name)
    if info is not None and procs.alive(plan.pids.get("kubelet", 0), "kubelet"):
        _drain(info)  # the kubelet stops the pods, so CNI releases their addresses
    procs.stop(plan.pids.get("kubelet", 0), "kubelet")
    _kill_containers(root)
    procs.stop(plan.pids.get("containerd", 0), "containerd")
    _kill_shims(root)
    _unmount_under(root)
    _teardown_network(plan)
    _remove_cgroups()
    for path in plan.created_paths:
        shutil.rmtree(path, ignore_errors=True)
    _unmount_under(root)
    shutil.rmtree(root, ignore_errors=True)


def _drain(info: ClusterInfo) -> None:
    procs.kubectl_run(info, "delete", "pods", "--all", "--all-namespaces", "--grace-period=1",
                      "--wait=true", "--timeout=60s")  # fmt: skip


def _kill_containers(root: Path) -> None:
    sock = root / "containerd" / "containerd.sock"
    if not sock.exists():
        return
    ctr = ["ctr", f"--address={sock}", "-n", "k8s.io"]
    listed = subprocess.run(
        [*ctr, "tasks", "ls", "-q"], capture_output=True, text=True, check=False
    )
    for task in listed.stdout.split():
        for verb in (["kill", "-s", "SIGKILL"], ["delete", "-f"]):
            subprocess.run([*ctr, "tasks", *verb, task], capture_output=True, check=False)


def _kill_shims(root: Path) -> None:
    """containerd-shim processes outlive containerd; ours are the ones naming our state dir."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if b"containerd-shim" in argv[0] and str(root).encode() in b" ".join(argv):
                procs.stop(int(proc.name), "containerd-shim")


def _unmount_under(root: Path) -> None:
    prefix = str(root.resolve()) + "/"
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True, check=False)


def _teardown_network(plan: NodePlan) -> None:
    for argv in (["iptables", "-t", "nat", "-D", *plan.dnat_host()],
                 ["ip", "route", "del", plan.pod_cidr]):  # fmt: skip
        subprocess.run(argv, capture_output=True, check=False)
    run_netns = Path("/run/netns")
    names = os.listdir(run_netns) if run_netns.exists() else []
    leftovers = [n for n in names if n.startswith("cni-") and n not in plan.netns_before]
    for name in [*leftovers, plan.netns]:  # deleting the node's netns drops the veth too
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


def _remove_cgroups() -> None:
    """The kubelet's cgroupfs hierarchy (`kubepods` under every controller), bottom-up."""
    for controller in Path("/sys/fs/cgroup").iterdir():
        top = controller / "kubepods"
        if not top.is_dir():
            continue
        for dirpath, _, _ in sorted(os.walk(top), key=lambda w: len(w[0]), reverse=True):
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)


def _sh(*argv: str) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise NodeError(f"{' '.join(argv)} failed: {proc.stderr.strip() or proc.stdout.strip()}")


def _sh_in(data: bytes, *argv: str) -> None:
    proc = subprocess.run(argv, input=data, capture_output=True, check=False)
    if proc.returncode != 0:
        raise NodeError(f"{' '.join(argv)} failed: {proc.stderr.decode(errors='replace').strip()}")
