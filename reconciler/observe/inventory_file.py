"""`--inventory FILE`: the cluster facts `kubectl get nodes,namespaces,pods,serviceaccounts
-o yaml` prints (a `List`, or multi-document YAML), as frozen values.

Inputs are hostile: every malformed field is an InventoryError naming file:line and the
field, never a traceback. Self-contained on purpose (it only needs the safe YAML loader and
the generate.inventory values), so it can move into observe/ unchanged.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.generate.inventory import ContainerPort, Namespace, Node, Pod, ServiceAccount
from reconciler.manifests.fieldpath import FieldPath, LineMap, format_path, line_for
from reconciler.manifests.yamlsafe import Limits, parse_yaml

# A 5,000-pod cluster prints ~40 MB; aliases stay bounded by the node budget.
LIMITS = Limits(max_bytes=256 * 1024 * 1024, max_nodes=20_000_000, max_depth=64)
_PROTOCOLS = ("TCP", "UDP", "SCTP")


class InventoryError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Inventory:
    nodes: tuple[Node, ...] = ()
    namespaces: tuple[Namespace, ...] = ()
    pods: tuple[Pod, ...] = ()
    service_accounts: tuple[ServiceAccount, ...] = ()


def read_inventory(path: Path) -> Inventory:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InventoryError(f"{path}: cannot read: {err.strerror or err}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InventoryError(f"{path}: not UTF-8 text (byte {err.start})") from None
    return parse_inventory(text, str(path))


def parse_inventory(text: str, path: str) -> Inventory:
    parsed = parse_yaml(text, path=path, limits=LIMITS)
    if parsed.findings:
        raise InventoryError(str(parsed.findings[0]))
    found: dict[str, list[Any]] = {kind: [] for kind in _READERS}
    for doc in parsed.documents:
        if doc.value is None:
            continue
        for obj in _objects(_Doc(path, doc.lines), doc.value):
            found[obj[0]].append(obj[1])
    return Inventory(
        nodes=tuple(found["Node"]),
        namespaces=tuple(found["Namespace"]),
        pods=tuple(found["Pod"]),
        service_accounts=tuple(found["ServiceAccount"]),
    )


@dataclass(frozen=True, slots=True)
class _Doc:
    path: str
    lines: LineMap

    def fail(self, at: FieldPath, message: str) -> InventoryError:
        where = f"{self.path}:{line_for(self.lines, at) or 1}"
        field = format_path(at)
        return InventoryError(f"{where}: {field + ': ' if field else ''}{message}")


def _objects(doc: _Doc, value: Any) -> list[tuple[str, Any]]:
    top = _mapping(doc, (), value)
    if top.get("kind") == "List" or ("items" in top and "kind" not in top):
        items = _list(doc, ("items",), top.get("items"))
        return [_object(doc, ("items", i), item) for i, item in enumerate(items)]
    return [_object(doc, (), top)]


def _object(doc: _Doc, at: FieldPath, value: Any) -> tuple[str, Any]:
    obj = _mapping(doc, at, value)
    kind = obj.get("kind")
    if not isinstance(kind, str) or kind not in _READERS:
        known = ", ".join(_READERS)
        raise doc.fail(
            (*at, "kind"), f"expected one of {known} (kubectl get -o yaml), got {kind!r}"
        )
    return str(kind), _READERS[str(kind)](doc, at, obj)


# --- typed field access ----------------------------------------------------------------------


def _mapping(doc: _Doc, at: FieldPath, value: Any, *, optional: bool = False) -> Mapping[str, Any]:
    if value is None and optional:
        return {}
    if not isinstance(value, Mapping):
        raise doc.fail(at, f"expected a mapping, got {_type(value)}")
    return value


def _list(doc: _Doc, at: FieldPath, value: Any) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise doc.fail(at, f"expected a list, got {_type(value)}")
    return value


def _str(doc: _Doc, at: FieldPath, value: Any, *, default: str | None = None) -> str:
    if value is None and default is not None:
        return default
    if not isinstance(value, str) or (default is None and not value):
        raise doc.fail(at, f"expected a non-empty string, got {_type(value)}")
    return value


def _labels(doc: _Doc, at: FieldPath, value: Any) -> dict[str, str]:
    labels = _mapping(doc, at, value, optional=True)
    for key, item in labels.items():
        if not isinstance(item, str):
            raise doc.fail((*at, key), f"a label value must be a string, got {_type(item)}")
    return dict(labels)


def _ip(doc: _Doc, at: FieldPath, value: Any) -> str:
    text = _str(doc, at, value)
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise doc.fail(at, f"{text!r} is not an IP address") from None
    return text


def _type(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__


def _meta(doc: _Doc, at: FieldPath, obj: Mapping[str, Any]) -> tuple[str, str, dict[str, str]]:
    meta = _mapping(doc, (*at, "metadata"), obj.get("metadata"))
    name = _str(doc, (*at, "metadata", "name"), meta.get("name"))
    namespace = _str(doc, (*at, "metadata", "namespace"), meta.get("namespace"), default="")
    return name, namespace, _labels(doc, (*at, "metadata", "labels"), meta.get("labels"))


# --- kinds -----------------------------------------------------------------------------------


def _node(doc: _Doc, at: FieldPath, obj: Mapping[str, Any]) -> Node:
    name, _, labels = _meta(doc, at, obj)
    status = _mapping(doc, (*at, "status"), obj.get("status"), optional=True)
    where = (*at, "status", "addresses")
    addresses = []
    for i, item in enumerate(_list(doc, where, status.get("addresses"))):
        entry = _mapping(doc, (*where, i), item)
        kind = _str(doc, (*where, i, "type"), entry.get("type"))
        text = _str(doc, (*where, i, "address"), entry.get("address"))
        if kind in ("InternalIP", "ExternalIP"):
            text = _ip(doc, (*where, i, "address"), text)
        addresses.append((kind, text))
    return Node(name, labels, tuple(addresses))


def _namespace(doc: _Doc, at: FieldPath, obj: Mapping[str, Any]) -> Namespace:
    name, _, labels = _meta(doc, at, obj)
    return Namespace(name, labels)


def _service_account(doc: _Doc, at: FieldPath, obj: Mapping[str, Any]) -> ServiceAccount:
    name, namespace, labels = _meta(doc, at, obj)
    if not namespace:
        raise doc.fail((*at, "metadata"), "a ServiceAccount needs metadata.namespace")
    return ServiceAccount(namespace, name, labels)


def _pod(doc: _Doc, at: FieldPath, obj: Mapping[str, Any]) -> Pod:
    name, namespace, labels = _meta(doc, at, obj)
    if not namespace:
        raise doc.fail((*at, "metadata"), "a Pod needs metadata.namespace")
    spec = _mapping(doc, (*at, "spec"), obj.get("spec"), optional=True)
    host_network = spec.get("hostNetwork", False)
    if not isinstance(host_network, bool):
        raise doc.fail(
            (*at, "spec", "hostNetwork"), f"expected true or false, got {_type(host_network)}"
        )
    return Pod(
        namespace=namespace,
        name=name,
        labels=labels,
        node=_str(doc, (*at, "spec", "nodeName"), spec.get("nodeName"), default=""),
        ips=_pod_ips(doc, (*at, "status"), obj.get("status")),
        service_account=_str(
            doc,
            (*at, "spec", "serviceAccountName"),
            spec.get("serviceAccountName"),
            default="default",
        )
        or "default",
        ports=tuple(_container_ports(doc, (*at, "spec"), spec)),
        host_network=host_network,
    )


def _pod_ips(doc: _Doc, at: FieldPath, value: Any) -> tuple[str, ...]:
    status = _mapping(doc, at, value, optional=True)
    ips = [
        _ip(doc, (*at, "podIPs", i, "ip"), _mapping(doc, (*at, "podIPs", i), item).get("ip"))
        for i, item in enumerate(_list(doc, (*at, "podIPs"), status.get("podIPs")))
    ]
    if not ips and status.get("podIP") is not None:
        ips = [_ip(doc, (*at, "podIP"), status.get("podIP"))]
    return tuple(ips)


def _container_ports(doc: _Doc, at: FieldPath, spec: Mapping[str, Any]) -> list[ContainerPort]:
    out = []
    for i, item in enumerate(_list(doc, (*at, "containers"), spec.get("containers"))):
        container = _mapping(doc, (*at, "containers", i), item)
        where = (*at, "containers", i, "ports")
        for j, port in enumerate(_list(doc, where, container.get("ports"))):
            out.append(_container_port(doc, (*where, j), port))
    return out


def _container_port(doc: _Doc, at: FieldPath, value: Any) -> ContainerPort:
    port = _mapping(doc, at, value)
    number = port.get("containerPort")
    if not isinstance(number, int) or isinstance(number, bool) or not 1 <= number <= 65535:
        raise doc.fail((*at, "containerPort"), f"expected a port 1-65535, got {number!r}")
    protocol = _str(doc, (*at, "protocol"), port.get("protocol"), default="TCP") or "TCP"
    if protocol not in _PROTOCOLS:
        raise doc.fail((*at, "protocol"), f"expected TCP, UDP or SCTP, got {protocol!r}")
    name = _str(doc, (*at, "name"), port.get("name"), default="")
    return ContainerPort(name, protocol, number)


_READERS: dict[str, Callable[[_Doc, FieldPath, Mapping[str, Any]], Any]] = {
    "Node": _node,
    "Namespace": _namespace,
    "Pod": _pod,
    "ServiceAccount": _service_account,
}
