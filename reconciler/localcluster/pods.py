"""Pods on the local dataplane: what kubelet and Calico's CNI plugin would set up.

No kubelet or container runtime runs here, so a pod is three things made by hand:
- a Pod object with `spec.nodeName` and Calico's `cni.projectcalico.org/podIP`
  annotation (Calico reads the pod's IP from it when status has none);
- a network namespace with eth0 = the pod IP/32, default route via 169.254.1.1;
- on the node side, a veth named as Calico's CNI names it (`cali` + 11 hex digits of
  sha1("<namespace>.<pod>")) and a /32 route to the pod IP over it.
Felix then sees a workload endpoint on its node and enforces Kubernetes and Calico
policy for it. Pod IPs come from 192.168.<node number>.0/24; the router routes each
node's /24 to the node.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.localcluster import launcher
from reconciler.localcluster.dataplane import Dataplane, DataplaneError, ip, load, netns_add, sh

if TYPE_CHECKING:
    from collections.abc import Mapping

    from reconciler.localcluster.launcher import ClusterInfo

POD_GATEWAY = "169.254.1.1"  # as Calico's CNI: any address, answered by proxy ARP


@dataclass(frozen=True, slots=True)
class Pod:
    namespace: str
    name: str
    node: str
    ip: str
    netns: str


def veth_name(namespace: str, pod: str) -> str:
    """Calico's VethNameForWorkload (libcalico-go conversion/workload_endpoint_default.go)."""
    return "cali" + hashlib.sha1(f"{namespace}.{pod}".encode()).hexdigest()[:11]  # noqa: S324


def pod_cidr(dp: Dataplane, node: str) -> str:
    return f"192.168.{_index(dp, node)}.0/24"


def _index(dp: Dataplane, node: str) -> int:
    return next(i for i, n in enumerate(dp.nodes, 1) if n.name == node)


def add_pod(
    info: ClusterInfo,
    *,
    namespace: str,
    name: str,
    node: str,
    host: int,
    labels: Mapping[str, str] | None = None,
) -> Pod:
    """A running pod `name` on `node` with IP 192.168.<node number>.<host>."""
    dp = _dataplane(info)
    pod = Pod(
        namespace, name, node, f"192.168.{_index(dp, node)}.{host}", _netns(dp, namespace, name)
    )
    _wire(dp, pod)
    launcher.kubectl(info, "apply", "-f", "-", stdin=json.dumps(_manifest(pod, labels or {})))
    return pod


def _dataplane(info: ClusterInfo) -> Dataplane:
    dp = load(Path(info.state_dir))
    if dp is None:
        raise DataplaneError("pods need the dataplane: local-cluster up --dataplane")
    return dp


def _netns(dp: Dataplane, namespace: str, name: str) -> str:
    """Under the dataplane's prefix, so `down` deletes it with the rest."""
    return f"{dp.prefix}-p" + hashlib.sha256(f"{namespace}/{name}".encode()).hexdigest()[:8]


def _wire(dp: Dataplane, pod: Pod) -> None:
    node_ns, veth = dp.node(pod.node).netns, veth_name(pod.namespace, pod.name)
    netns_add(pod.netns)
    ip("link", "add", veth, "netns", node_ns, "type", "veth", "peer", "name", "eth0",
           "netns", pod.netns)  # fmt: skip
    ip("-n", pod.netns, "addr", "add", f"{pod.ip}/32", "dev", "eth0")
    ip("-n", pod.netns, "link", "set", "eth0", "up")
    ip("-n", pod.netns, "route", "add", POD_GATEWAY, "dev", "eth0", "scope", "link")
    ip("-n", pod.netns, "route", "add", "default", "via", POD_GATEWAY, "dev", "eth0")
    ip("-n", node_ns, "link", "set", veth, "up")
    ip("-n", node_ns, "route", "add", f"{pod.ip}/32", "dev", veth)
    sh("ip", "netns", "exec", node_ns, "sysctl", "-qw", f"net.ipv4.conf.{veth}.proxy_arp=1")


def _manifest(pod: Pod, labels: Mapping[str, str]) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod.name,
            "namespace": pod.namespace,
            "labels": dict(labels),
            "annotations": {"cni.projectcalico.org/podIP": f"{pod.ip}/32"},
        },
        "spec": {
            "nodeName": pod.node,
            "containers": [{"name": "app", "image": "none.invalid/app"}],
        },
    }
