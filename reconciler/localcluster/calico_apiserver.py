"""Calico's own API server (projectcalico.org/v3) as an aggregated API of the local cluster.

calico-apiserver runs as a plain loopback process. kube-apiserver reaches it through an
APIService whose Service is an ExternalName for localhost (no kube-proxy, no endpoints
needed) and checks its serving cert against the APIService's caBundle. It validates v3
objects with Calico's own code and stores them as crd.projectcalico.org/v1 objects.

calico-apiserver exits on purpose whenever the extension-apiserver-authentication
ConfigMap appears or changes, so it is started only after that ConfigMap exists and is
started again if it exits before the APIService is Available.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.localcluster import build, certs, procs

if TYPE_CHECKING:
    from reconciler.localcluster.launcher import ClusterInfo, Progress

BINARY = "calico-apiserver"
NAMESPACE = "calico-apiserver"
SERVICE = "calico-api"
APISERVICE = "v3.projectcalico.org"
_SAN = f"DNS:{SERVICE}.{NAMESPACE}.svc,DNS:localhost,IP:127.0.0.1"


class CalicoApiServerError(RuntimeError):
    """calico-apiserver did not become Available; the message says where to look."""


def running(info: ClusterInfo) -> bool:
    return procs.alive(info.calico_apiserver_pid, BINARY)


def start(info: ClusterInfo, progress: Progress, timeout: float = 90) -> int:
    """Start calico-apiserver, register it, wait until Available; return its pid."""
    binary = build.ensure_calico_binaries((BINARY,), progress) / BINARY
    _wait_for_authentication_configmap(info)
    port = procs.free_ports(1)[0]
    ca, serving = certs.serving(Path(info.state_dir) / "aggregation", SERVICE, _SAN)
    progress(f"Starting Calico's API server on https://127.0.0.1:{port} (projectcalico.org/v3)")
    argv = _argv(binary, info, port, serving)
    proc = procs.spawn(argv, _log(info), env=_env(info))
    _register(info, port, ca.cert)
    deadline = time.monotonic() + timeout
    while not _available(info):
        if time.monotonic() > deadline:
            raise CalicoApiServerError(f"{APISERVICE} not Available: {procs.tail(_log(info))}")
        if proc.poll() is not None:  # it exits when the auth ConfigMap changes: start again
            proc = procs.spawn(argv, _log(info), env=_env(info))
        time.sleep(0.25)
    return proc.pid


def _argv(binary: Path, info: ClusterInfo, port: int, serving: certs.Pair) -> list[str | Path]:
    kc = info.kubeconfig
    return [
        binary,
        f"--secure-port={port}",
        "--bind-address=127.0.0.1",
        f"--tls-cert-file={serving.cert}",
        f"--tls-private-key-file={serving.key}",
        f"--kubeconfig={kc}",
        f"--authentication-kubeconfig={kc}",
        f"--authorization-kubeconfig={kc}",
        "-v=1",
    ]


def _env(info: ClusterInfo) -> dict[str, str]:
    return {"DATASTORE_TYPE": "kubernetes", "KUBECONFIG": info.kubeconfig, "PATH": "/usr/bin:/bin"}


def _log(info: ClusterInfo) -> Path:
    return Path(info.state_dir) / "calico-apiserver.log"


def _wait_for_authentication_configmap(info: ClusterInfo, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not _kubectl_ok(info, "get", "-n", "kube-system", "configmap",
                          "extension-apiserver-authentication"):  # fmt: skip
        if time.monotonic() > deadline:
            raise CalicoApiServerError(
                "kube-apiserver never published kube-system/extension-apiserver-authentication "
                "(it needs the --requestheader-* flags)"
            )
        time.sleep(0.2)


def _register(info: ClusterInfo, port: int, ca: Path) -> None:
    objects = {"apiVersion": "v1", "kind": "List", "items": _registration(port, ca)}
    applied = _kubectl_out(info, "apply", "--server-side", "--force-conflicts",
                           "--field-manager=policy-reconciler-local", "-f", "-",
                           stdin=json.dumps(objects))  # fmt: skip
    if applied is None:
        raise CalicoApiServerError(f"registering {APISERVICE} failed")


def _registration(port: int, ca: Path) -> list[dict[str, Any]]:
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": SERVICE, "namespace": NAMESPACE},
            # The aggregator dials localhost:<port> itself: no kube-proxy or endpoints.
            "spec": {
                "type": "ExternalName",
                "externalName": "localhost",
                "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
            },
        },
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": APISERVICE},
            "spec": {
                "group": "projectcalico.org",
                "version": "v3",
                "groupPriorityMinimum": 1500,
                "versionPriority": 200,
                "caBundle": base64.b64encode(ca.read_bytes()).decode(),
                "service": {"namespace": NAMESPACE, "name": SERVICE, "port": port},
            },
        },
    ]


def _available(info: ClusterInfo) -> bool:
    out = _kubectl_out(info, "get", "apiservice", APISERVICE, "-o", "json")
    conditions = json.loads(out or "{}").get("status", {}).get("conditions", [])
    return any(c["type"] == "Available" and c["status"] == "True" for c in conditions)


def _kubectl_ok(info: ClusterInfo, *args: str) -> bool:
    return _kubectl_out(info, *args) is not None


def _kubectl_out(info: ClusterInfo, *args: str, stdin: str = "") -> str | None:
    """kubectl's stdout, or None when it failed (polling tolerates failures)."""
    proc = procs.kubectl_run(info, *args, stdin=stdin)
    return proc.stdout if proc.returncode == 0 else None
