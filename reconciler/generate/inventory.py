"""What templates expand over: Nodes and Namespaces, reduced to the facts templates read.

Built from raw API objects (a LIST, or a file for `plan --offline`). Two values compare
equal exactly when expanding over them gives the same objects, so a watcher can compare
them to decide whether an event is worth a re-plan (a Node's status heartbeat is not).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.manifests.templates import HostEndpointTemplate, NamespacePolicyTemplate, Template


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    labels: Mapping[str, str]
    addresses: tuple[tuple[str, str], ...] = ()  # (type, address) in status.addresses order


@dataclass(frozen=True, slots=True)
class Namespace:
    name: str
    labels: Mapping[str, str]
    terminating: bool = False  # being deleted: no new object can be created in it


@dataclass(frozen=True, slots=True)
class Needs:
    """Which live lists the templates need: nothing is read for a kind no template uses."""

    nodes: bool = False
    namespaces: bool = False


def needs(templates: Iterable[Template]) -> Needs:
    found = list(templates)
    return Needs(
        nodes=any(isinstance(t, HostEndpointTemplate) for t in found),
        namespaces=any(isinstance(t, NamespacePolicyTemplate) for t in found),
    )


def node_from_api(obj: Mapping[str, Any]) -> Node:
    meta = obj.get("metadata") or {}
    addresses = (obj.get("status") or {}).get("addresses") or []
    return Node(
        name=str(meta.get("name", "")),
        labels=dict(meta.get("labels") or {}),
        addresses=tuple(
            (str(a.get("type", "")), str(a.get("address", "")))
            for a in addresses
            if isinstance(a, Mapping)
        ),
    )


def namespace_from_api(obj: Mapping[str, Any]) -> Namespace:
    meta = obj.get("metadata") or {}
    phase = (obj.get("status") or {}).get("phase")
    return Namespace(
        name=str(meta.get("name", "")),
        labels=dict(meta.get("labels") or {}),
        terminating=bool(meta.get("deletionTimestamp")) or phase == "Terminating",
    )


# Pods and ServiceAccounts: what the connectivity engine needs to place workload endpoints
# (Calico gives every pod a workload endpoint with its labels, IPs, namespace and
# service account; named ports resolve against its container ports).


@dataclass(frozen=True, slots=True)
class ContainerPort:
    name: str  # "" when unnamed
    protocol: str  # TCP, UDP or SCTP
    port: int


@dataclass(frozen=True, slots=True)
class Pod:
    namespace: str
    name: str
    labels: Mapping[str, str]
    node: str  # spec.nodeName, "" while unscheduled
    ips: tuple[str, ...]  # status.podIPs (or podIP), in order
    service_account: str = "default"
    ports: tuple[ContainerPort, ...] = ()
    host_network: bool = False  # such a pod is the node's host, not a workload endpoint


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    namespace: str
    name: str
    labels: Mapping[str, str]


CALICO_POD_IPS = "cni.projectcalico.org/podIPs"
CALICO_POD_IP = "cni.projectcalico.org/podIP"


def pod_from_api(obj: Mapping[str, Any]) -> Pod:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    return Pod(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        labels=dict(meta.get("labels") or {}),
        node=str(spec.get("nodeName") or ""),
        ips=tuple(_pod_ips(meta, obj.get("status") or {})),
        service_account=str(spec.get("serviceAccountName") or "default"),
        ports=tuple(_container_ports(spec)),
        host_network=bool(spec.get("hostNetwork")),
    )


def _pod_ips(meta: Mapping[str, Any], status: Mapping[str, Any]) -> list[str]:
    """As Calico reads them (libcalico-go k8s conversion `getPodIPs`): the CNI plugin's
    annotations first, then the status the kubelet reports."""
    notes = meta.get("annotations") or {}
    noted = str(notes.get(CALICO_POD_IPS) or notes.get(CALICO_POD_IP) or "")
    if noted:  # free text anyone may write: what is not an address is not one
        return [ip for ip in (n.strip().split("/")[0] for n in noted.split(",")) if _is_ip(ip)]
    ips = [str(p.get("ip")) for p in status.get("podIPs") or [] if isinstance(p, Mapping)]
    if not ips and status.get("podIP"):
        ips = [str(status["podIP"])]
    return ips


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _container_ports(spec: Mapping[str, Any]) -> list[ContainerPort]:
    return [
        ContainerPort(
            name=str(p.get("name") or ""),
            protocol=str(p.get("protocol") or "TCP"),
            port=int(p.get("containerPort") or 0),
        )
        for c in spec.get("containers") or []
        if isinstance(c, Mapping)
        for p in c.get("ports") or []
        if isinstance(p, Mapping)
    ]


def service_account_from_api(obj: Mapping[str, Any]) -> ServiceAccount:
    meta = obj.get("metadata") or {}
    return ServiceAccount(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        labels=dict(meta.get("labels") or {}),
    )
