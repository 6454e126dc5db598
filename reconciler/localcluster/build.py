"""Build the local control plane's binaries from the Go module proxy, cached by version.

Nothing can be downloaded from release pages here, so etcd, kube-apiserver, kubectl
and Helm are compiled from pinned Go modules (go.mod + go.sum ship in `gomod/`).
The binaries land in a cache directory keyed by the pinned versions, so the cold
build (minutes) happens once per machine and version, and a warm start takes seconds.
Calico's own API server and Felix (opt-ins) have their own module and cache key, so
building them never invalidates the control plane's cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

GOMOD = Path(__file__).parent / "gomod"
KUBERNETES_VERSION = "v1.34.4"
ETCD_VERSION = "v3.6.9"
HELM_VERSION = "v3.19.5"
CALICO_VERSION = "v3.31.0"

Progress = Callable[[str], None]


class BuildError(RuntimeError):
    """The toolchain is missing or a build failed; the message says what to do."""


@dataclass(frozen=True, slots=True)
class Target:
    binary: str
    module: str  # the Go module dir under gomod/
    package: str
    ldflags: str = ""
    # Calico's parts build static (felix's libbpf stays a stub). Not in repr: the control
    # plane's targets, and so any key derived from their repr, stay as they were.
    cgo: bool = field(default=True, repr=False)


_K8S_LDFLAGS = " ".join(
    f"-X k8s.io/component-base/version.{k}={v}"
    for k, v in (
        ("gitVersion", KUBERNETES_VERSION),
        ("gitMajor", "1"),
        ("gitMinor", KUBERNETES_VERSION.split(".")[1]),
        ("gitTreeState", "clean"),
    )
)
# What Helm's own Makefile stamps: its version, and the Kubernetes version of its client-go
# (v0.34 -> 1.34), which `helm template` uses as the default `.Capabilities.KubeVersion`.
HELM_KUBE_MINOR = "34"
_HELM_LDFLAGS = " ".join(
    f"-X helm.sh/helm/v3/{var}={value}"
    for var, value in (
        ("internal/version.version", HELM_VERSION),
        ("internal/version.gitTreeState", "clean"),
        ("pkg/lint/rules.k8sVersionMajor", "1"),
        ("pkg/lint/rules.k8sVersionMinor", HELM_KUBE_MINOR),
        ("pkg/chartutil.k8sVersionMajor", "1"),
        ("pkg/chartutil.k8sVersionMinor", HELM_KUBE_MINOR),
    )
)
TARGETS = (
    Target("etcd", "controlplane", "go.etcd.io/etcd/server/v3"),
    Target("kube-apiserver", "controlplane", "k8s.io/kubernetes/cmd/kube-apiserver", _K8S_LDFLAGS),
    Target("kubectl", "controlplane", "k8s.io/kubernetes/cmd/kubectl", _K8S_LDFLAGS),
    Target("helm", "helm", "helm.sh/helm/v3/cmd/helm", _HELM_LDFLAGS),
)
# The real node (`local-cluster up --node`): built from the same pinned k8s.io/kubernetes as the
# control plane. Its own module (the control plane's go.mod plus these three tools, no pin
# moved) and its own cache key, so adding it never invalidated the control plane's cache.
NODE_MODULE = "node"
NODE_TARGETS = tuple(
    Target(name, NODE_MODULE, f"k8s.io/kubernetes/cmd/{name}", _K8S_LDFLAGS)
    for name in ("kubelet", "kube-scheduler", "kube-controller-manager")
)
CALICO_MODULE = "calicobin"
CALICO_TARGETS = (
    Target(
        "calico-apiserver",
        CALICO_MODULE,
        "github.com/projectcalico/calico/apiserver/cmd/apiserver",
        cgo=False,
    ),
    Target(
        "calico-felix",
        CALICO_MODULE,
        "github.com/projectcalico/calico/felix/cmd/calico-felix",
        cgo=False,
    ),
)


def cache_root() -> Path:
    home = os.environ.get("POLICY_RECONCILER_HOME")
    if home:
        return Path(home)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "policy-reconciler"


def bin_dir() -> Path:
    """Cache dir for this exact set of pins (go.sum contents and build flags)."""
    digest = hashlib.sha256(repr(TARGETS).encode())
    for sum_file in sorted(GOMOD.glob("*/go.sum")):
        if sum_file.parent.name not in (CALICO_MODULE, NODE_MODULE):  # they have their own key
            digest.update(sum_file.read_bytes())
    return cache_root() / "bin" / f"k8s-{KUBERNETES_VERSION}-{digest.hexdigest()[:12]}"


def calico_bin_dir() -> Path:
    """Cache dir for calico-apiserver and calico-felix at the pinned Calico commit."""
    digest = hashlib.sha256((GOMOD / CALICO_MODULE / "go.sum").read_bytes()).hexdigest()[:12]
    return cache_root() / "bin" / f"calico-{CALICO_VERSION}-{digest}"


def node_bin_dir() -> Path:
    """Cache dir for kubelet, kube-scheduler and kube-controller-manager at the pinned version."""
    digest = hashlib.sha256(repr(NODE_TARGETS).encode())
    digest.update((GOMOD / NODE_MODULE / "go.sum").read_bytes())
    return cache_root() / "bin" / f"node-{KUBERNETES_VERSION}-{digest.hexdigest()[:12]}"


def go_binary() -> str:
    go = shutil.which("go")
    if not go:
        raise BuildError(
            "Go is not installed or not on PATH. The local control plane is built from Go "
            "modules; install Go >= 1.24 (e.g. `apt-get install golang` or from go.dev) "
            "and try again."
        )
    return go


def ensure_binaries(progress: Progress = print) -> Path:
    """Return the dir holding all binaries, building what is missing."""
    pins = f"Kubernetes {KUBERNETES_VERSION}, etcd {ETCD_VERSION}, Helm {HELM_VERSION}"
    return _ensure(TARGETS, bin_dir(), f"{pins}; the first build takes 5-15 minutes", progress)


def ensure_calico_binaries(binaries: tuple[str, ...], progress: Progress = print) -> Path:
    """The dir holding the named Calico binaries (calico-apiserver, calico-felix)."""
    targets = tuple(t for t in CALICO_TARGETS if t.binary in binaries)
    note = f"Calico {CALICO_VERSION}; the first build takes about 4-6 minutes"
    return _ensure(targets, calico_bin_dir(), note, progress)


def ensure_node_binaries(progress: Progress = print) -> Path:
    """The dir holding kubelet, kube-scheduler and kube-controller-manager."""
    note = f"Kubernetes {KUBERNETES_VERSION} node; the first build takes about 4-10 minutes"
    return _ensure(NODE_TARGETS, node_bin_dir(), note, progress)


def _ensure(targets: tuple[Target, ...], out: Path, note: str, progress: Progress) -> Path:
    missing = [t for t in targets if not (out / t.binary).exists()]
    if not missing:
        return out
    go = go_binary()
    out.mkdir(parents=True, exist_ok=True)
    progress(
        f"Building {', '.join(t.binary for t in missing)} from Go modules ({note} on 2 cores, "
        f"later starts reuse {out})"
    )
    for target in missing:
        _build(go, target, out, progress)
    return out


def _build(go: str, target: Target, out: Path, progress: Progress) -> None:
    progress(f"  go build {target.package} ...")
    tmp = out / f".{target.binary}.tmp"
    cmd = [go, "build", "-trimpath", "-o", str(tmp), "-ldflags", f"-s -w {target.ldflags}"]
    proc = subprocess.run(
        [*cmd, target.package],
        cwd=GOMOD / target.module,
        env={**_go_env(), **({} if target.cgo else {"CGO_ENABLED": "0"})},
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise BuildError(
            f"building {target.binary} failed (go build {target.package} in "
            f"{GOMOD / target.module}):\n{tail}\n"
            "Check that the Go module proxy is reachable (GOPROXY) and that Go is >= 1.24."
        )
    tmp.rename(out / target.binary)  # atomic: a half-built binary never looks cached


def _go_env() -> dict[str, str]:
    """Build only what go.sum pins, with the installed toolchain, no VCS stamping."""
    return {**os.environ, "GOFLAGS": "-mod=readonly -buildvcs=false", "GOTOOLCHAIN": "local"}


def module_dir(module: str, path: str) -> Path:
    """Download a module pinned by gomod/<module> (verified by its go.sum); its source dir."""
    proc = subprocess.run(
        [go_binary(), "mod", "download", "-json", path],
        cwd=GOMOD / module,
        env=_go_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    info = json.loads(proc.stdout or "{}")
    if proc.returncode != 0 or "Dir" not in info:
        raise BuildError(f"downloading {path} failed: {info or proc.stderr}")
    return Path(info["Dir"])


def calico_crd_dir(progress: Progress = print) -> Path:
    """Download the pinned Calico module (verified by go.sum) and return its CRD folder."""
    try:
        found = module_dir("calico", "github.com/projectcalico/calico")
    except BuildError as exc:
        raise BuildError(f"Calico {CALICO_VERSION} CRDs: {exc}") from None
    return found / "libcalico-go" / "config" / "crd"
