"""The tools compared, each as the command line one phase runs, and the Flux driver's build.

Every tool gets the same folder (ours the v3 YAML, the peers its CRD form) and is run
as a fresh process per phase, so its wall time includes its start and its peak RSS is
its own. Client-side rate limits are off for the Flux driver: kustomize-controller's
defaults (`--kube-api-qps=50 --kube-api-burst=300`) would make a 20,000-request no-op
take about 400 s waiting on its own limiter, which measures the limiter, not the engine.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler import localcluster
from reconciler.localcluster import build
from reconciler.localcluster.build import KUBERNETES_VERSION

FLUX_DIR = Path(__file__).parent / "flux"
FLUX_SSA_VERSION = "v0.78.0"
KUBECTL_FIELD_MANAGER = "kubectl"  # kubectl's default for --server-side
# kubectl's ApplySet parent: a ConfigMap or Secret parent must sit in one namespace and then
# every namespaced object must too (kubectl refuses objects of other namespaces under -n), so
# the objects' ten namespaces need a cluster-scoped custom parent, which kubectl does not
# create: the setup makes its CRD (labelled as a parent type) and the parent, as kubectl's
# ApplySet KEP describes.
PARENT_GROUP = "bench.policy-reconciler.io"
PARENT_KIND = "ApplySetParent"
APPLYSET = f"applysetparents.{PARENT_GROUP}/bench-peers"

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Tool:
    column: str
    user_agent: str  # the prefix its requests carry in the audit log
    command: Callable[[Path, str], list[str]]  # (folder, kubeconfig) -> argv
    ours: bool = False  # reads the v3 repo, not the CRD bodies
    env: tuple[tuple[str, str], ...] = ()
    setup: Callable[[localcluster.ClusterInfo], None] | None = None  # before the first phase


def ours() -> Tool:
    cli = Path(sys.executable).parent / "policy-reconciler"

    def command(folder: Path, kubeconfig: str) -> list[str]:
        return [str(cli), "apply", str(folder), "--kubeconfig", kubeconfig, "-o", "json"]

    return Tool("ours (CLI)", "policy-reconciler/", command, ours=True)


def flux(binary: Path) -> Tool:
    def command(folder: Path, kubeconfig: str) -> list[str]:
        return [str(binary), "-kubeconfig", kubeconfig, "-dir", str(folder)]

    return Tool("Flux ssa", "kustomize-controller/", command)


def kubectl(binary: str, *, prune: bool) -> Tool:
    """`kubectl apply --server-side --force-conflicts`: without --force-conflicts it refuses
    to take back a field another manager changed, so it could never heal drift."""

    def command(folder: Path, kubeconfig: str) -> list[str]:
        argv = [binary, "--kubeconfig", kubeconfig, "apply", "--server-side", "--force-conflicts"]
        argv += [f"--field-manager={KUBECTL_FIELD_MANAGER}", "-f", str(folder)]
        return argv + (["--prune", f"--applyset={APPLYSET}"] if prune else [])

    if prune:  # ApplySets are still behind kubectl's alpha switch
        env = (("KUBECTL_APPLYSET", "true"),)
        return Tool("kubectl SSA + prune", "kubectl/", command, env=env, setup=applyset_parent)
    return Tool("kubectl SSA", "kubectl/", command)


def applyset_parent(info: localcluster.ClusterInfo) -> None:
    """A cluster-scoped ApplySet parent type and the parent kubectl then adopts."""
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"applysetparents.{PARENT_GROUP}",
            "labels": {"applyset.kubernetes.io/is-parent-type": "true"},
        },
        "spec": {
            "group": PARENT_GROUP,
            "scope": "Cluster",
            "names": {"plural": "applysetparents", "kind": PARENT_KIND},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }
    localcluster.kubectl(info, "apply", "-f", "-", stdin=json.dumps(crd))
    localcluster.kubectl(info, "wait", "--for=condition=Established", "crd", crd_name(crd))
    parent = {
        "apiVersion": f"{PARENT_GROUP}/v1",
        "kind": PARENT_KIND,
        "metadata": {
            "name": "bench-peers",
            "labels": {"applyset.kubernetes.io/id": applyset_id("bench-peers")},
            "annotations": {
                "applyset.kubernetes.io/tooling": f"kubectl/{KUBERNETES_VERSION}",
                "applyset.kubernetes.io/contains-group-kinds": "",  # no members yet
            },
        },
    }
    localcluster.kubectl(info, "create", "-f", "-", stdin=json.dumps(parent))


def crd_name(crd: dict[str, Any]) -> str:
    return str(crd["metadata"]["name"])


def applyset_id(name: str, namespace: str = "") -> str:
    """kubectl's ApplySet ID: base64url(sha256("<name>.<namespace>.<kind>.<group>"))."""
    raw = f"{name}.{namespace}.{PARENT_KIND}.{PARENT_GROUP}".encode()
    digest = base64.urlsafe_b64encode(hashlib.sha256(raw).digest()).decode().rstrip("=")
    return f"applyset-{digest}-v1"


def flux_bin_dir() -> Path:
    """The driver's cache dir, keyed by its source and pins like the control plane's."""
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum", "main.go"):
        digest.update((FLUX_DIR / name).read_bytes())
    return build.cache_root() / "bin" / f"flux-ssa-{FLUX_SSA_VERSION}-{digest.hexdigest()[:12]}"


def ensure_flux(progress: Progress) -> Path:
    """The built driver, building it on first use; BuildError names the failing module."""
    out = flux_bin_dir()
    binary = out / "flux-ssa"
    if binary.exists():
        return binary
    progress(f"Building the Flux ssa {FLUX_SSA_VERSION} driver (a few minutes, once) into {out}")
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".flux-ssa.tmp"
    proc = subprocess.run(
        [build.go_binary(), "build", "-trimpath", "-ldflags", "-s -w", "-o", str(tmp), "."],
        cwd=FLUX_DIR,
        env={**os.environ, "GOFLAGS": "-mod=readonly -buildvcs=false", "GOTOOLCHAIN": "local"},
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-10:])
        raise build.BuildError(f"go build in {FLUX_DIR} failed:\n{tail}")
    tmp.rename(binary)  # atomic: a half-built driver never looks cached
    return binary


def flux_or_why(progress: Progress) -> tuple[Tool | None, str]:
    """The Flux tool, or why it cannot run: a failed build leaves the other tools running."""
    try:
        return flux(ensure_flux(progress)), ""
    except build.BuildError as exc:
        progress(f"Flux ssa driver not built: {exc}")
        lines = str(exc).splitlines()  # the first line of Go's own error names the module
        return None, f"not built: {lines[min(1, len(lines) - 1)].strip()}"
