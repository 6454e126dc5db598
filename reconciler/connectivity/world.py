"""The world the evaluator reads: compiled policies in Felix order, tiers, endpoints, sets.

Built from rendered Resources (repo, and in online mode the cluster's unmanaged objects)
and inventory facts (generate.inventory values). Pure: no I/O.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from reconciler.connectivity import addresses as addr
from reconciler.connectivity import compile as comp
from reconciler.connectivity.intervals import IntervalSet
from reconciler.connectivity.packets import protocol_number
from reconciler.connectivity.rules import BUILTIN_TIERS, Policy, Tier
from reconciler.connectivity.views import (
    NAME_LABEL,
    NAMESPACE_LABEL,
    ORCHESTRATOR_LABEL,
    SERVICE_ACCOUNT_LABEL,
    Kind,
    NamedPort,
    View,
)
from reconciler.generate.autohep import AutoHostEndpoints
from reconciler.generate.inventory import Namespace, Node, Pod, ServiceAccount
from reconciler.model import Resource

_POLICY_KINDS = ("GlobalNetworkPolicy", "NetworkPolicy")
_SET_KINDS = ("GlobalNetworkSet", "NetworkSet")
METADATA_NAME = "kubernetes.io/metadata.name"  # set on every Namespace since Kubernetes 1.21


@dataclass(frozen=True, slots=True)
class NodeInfo:
    name: str
    address: int | None  # the address node traffic carries: InternalIP, else the first known
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class World:
    policies: tuple[Policy, ...]  # Felix order: tier order, tier name, order, name (PolKVLess)
    tiers: Mapping[str, Tier]
    pods: tuple[View, ...]
    hosts: tuple[View, ...]
    sets: tuple[View, ...]
    nodes: Mapping[str, NodeInfo]
    flavour: comp.Flavour = comp.DEFAULT_FLAVOUR
    notes: tuple[str, ...] = ()

    @property
    def views(self) -> tuple[View, ...]:
        return (*self.pods, *self.hosts, *self.sets)

    def owners(self, address: int) -> tuple[View, ...]:
        """Everything a rule selector could match this address through."""
        return tuple(v for v in self.views if address in v.addresses)

    def pod(self, namespace: str, name: str) -> View | None:
        return next((p for p in self.pods if p.name == f"{namespace}/{name}"), None)

    def hosts_of(self, node: str) -> tuple[View, ...]:
        return tuple(h for h in self.hosts if h.node == node)


@dataclass(frozen=True, slots=True)
class Facts:
    """Inventory facts: what `kubectl get nodes,namespaces,pods,serviceaccounts` shows."""

    nodes: tuple[Node, ...] = ()
    namespaces: tuple[Namespace, ...] = ()
    pods: tuple[Pod, ...] = ()
    service_accounts: tuple[ServiceAccount, ...] = ()


def build_world(
    resources: Iterable[Resource],
    facts: Facts,
    *,
    flavour: comp.Flavour = comp.DEFAULT_FLAVOUR,
    auto: AutoHostEndpoints | None = None,
) -> World:
    """Raises CompileError (with the object's file:line) on a value Calico would not take."""
    return WorldBuilder(facts, flavour=flavour).build(resources, auto=auto)


class WorldBuilder:
    """Builds the worlds of many states over the same facts (the states an apply passes
    through): each object is compiled once, the pods' views are made once."""

    def __init__(self, facts: Facts, *, flavour: comp.Flavour = comp.DEFAULT_FLAVOUR) -> None:
        self.facts = facts
        self.flavour = flavour
        self.namespaces = _namespace_labels(facts.namespaces)
        self.pods = tuple(_pods(facts, self.namespaces))
        # id(resource) -> (the resource, kept alive so the id stays its own; compiled value)
        self._compiled: dict[int, tuple[Resource, object]] = {}
        self._policies: tuple[Policy, ...] = ()  # the last build's, reused while unchanged

    def compiled(self, resource: Resource) -> object:
        """The object as the world holds it: a Policy, Tier, host endpoint or set View."""
        found = self._compiled.get(id(resource))
        if found is None or found[0] is not resource:
            found = (resource, self._compile(resource))
            self._compiled[id(resource)] = found
        return found[1]

    def _compile(self, resource: Resource) -> object:
        kind = resource.ref.kind
        if kind == "Tier":
            return comp.tier(resource)
        if kind in _POLICY_KINDS:
            return _policy(resource, self.flavour)
        if kind == "HostEndpoint":
            return comp.host_endpoint(resource)
        if kind in _SET_KINDS:
            return comp.network_set(resource, self.namespaces)
        return None

    def build(self, resources: Iterable[Resource], *, auto: AutoHostEndpoints | None) -> World:
        found = list(resources)
        tiers = {**BUILTIN_TIERS, **{r.ref.name: self._tier(r) for r in _kind(found, ("Tier",))}}
        policies = [self._policy(r) for r in _kind(found, _POLICY_KINDS)]
        policies.sort(key=lambda p: p.sort_key(tiers))
        same = len(policies) == len(self._policies) and all(
            a is b for a, b in zip(policies, self._policies, strict=True)
        )
        self._policies = self._policies if same else tuple(policies)
        hosts = [self._view(r) for r in _kind(found, ("HostEndpoint",))]
        hosts += _auto_hosts(self.facts.nodes, auto, {h.name for h in hosts})
        return World(
            policies=self._policies,
            tiers=tiers,
            pods=self.pods,
            hosts=tuple(sorted(hosts, key=lambda h: h.name)),
            sets=tuple(self._view(r) for r in _kind(found, _SET_KINDS)),
            nodes={n.name: _node_info(n, hosts) for n in self.facts.nodes},
            flavour=self.flavour,
            notes=tuple(_unknown_tiers(policies, tiers)),
        )

    def _tier(self, resource: Resource) -> Tier:
        found = self.compiled(resource)
        assert isinstance(found, Tier)
        return found

    def _policy(self, resource: Resource) -> Policy:
        found = self.compiled(resource)
        assert isinstance(found, Policy)
        return found

    def _view(self, resource: Resource) -> View:
        found = self.compiled(resource)
        assert isinstance(found, View)
        return found


def _kind(resources: Sequence[Resource], kinds: tuple[str, ...]) -> list[Resource]:
    return [r for r in resources if r.ref.kind in kinds]


def _policy(resource: Resource, flavour: comp.Flavour) -> Policy:
    if comp.is_k8s(resource):
        return comp.k8s_policy(resource, flavour)
    return comp.calico_policy(resource, flavour)


def _unknown_tiers(policies: Sequence[Policy], tiers: Mapping[str, Tier]) -> Iterable[str]:
    for name in sorted({p.tier for p in policies} - set(tiers)):
        yield f"tier {name!r} is not defined: its policies sort after every known tier"


def _namespace_labels(namespaces: Iterable[Namespace]) -> dict[str, dict[str, str]]:
    """Namespace labels as profile labels see them (conversion.go NamespaceToProfile adds the
    name); kubernetes.io/metadata.name is added as the API server does since 1.21."""
    return {n.name: {METADATA_NAME: n.name, **n.labels, NAME_LABEL: n.name} for n in namespaces}


def _pods(facts: Facts, namespaces: Mapping[str, Mapping[str, str]]) -> Iterable[View]:
    accounts = {(a.namespace, a.name): a.labels for a in facts.service_accounts}
    for pod in sorted(facts.pods, key=lambda p: (p.namespace, p.name)):
        if pod.host_network or not pod.ips:
            continue  # a host-network pod is its node; a pod without IP has no endpoint yet
        ns_labels = namespaces.get(pod.namespace, {NAME_LABEL: pod.namespace})
        sa_labels = {**accounts.get((pod.namespace, pod.service_account), {})}
        sa_labels[NAME_LABEL] = pod.service_account
        yield _pod_view(pod, ns_labels, sa_labels)


def _pod_view(pod: Pod, ns_labels: Mapping[str, str], sa_labels: Mapping[str, str]) -> View:
    """A workload endpoint's labels: the pod's, Calico's own, and the inherited pcns./pcsa.
    profile labels (conversion.go)."""
    labels = {
        **{f"pcns.{k}": v for k, v in ns_labels.items()},
        **{f"pcsa.{k}": v for k, v in sa_labels.items()},
        **pod.labels,
        NAMESPACE_LABEL: pod.namespace,
        ORCHESTRATOR_LABEL: "k8s",
        SERVICE_ACCOUNT_LABEL: pod.service_account,
    }
    return View(
        kind=Kind.POD,
        name=f"{pod.namespace}/{pod.name}",
        namespace=pod.namespace,
        labels=labels,
        addresses=addr.networks(pod.ips),
        ns_labels=ns_labels,
        service_account=pod.service_account,
        sa_labels=sa_labels,
        node=pod.node,
        named_ports=tuple(_named_ports(pod)),
        profiles=(f"kns.{pod.namespace}", f"ksa.{pod.namespace}.{pod.service_account}"),
        origin="inventory",
    )


def _named_ports(pod: Pod) -> Iterable[NamedPort]:
    for port in pod.ports:
        if port.name:
            yield NamedPort(port.name, protocol_number(port.protocol), port.port)


def _auto_hosts(
    nodes: Iterable[Node], auto: AutoHostEndpoints | None, existing: set[str]
) -> list[View]:
    if auto is None:
        return []
    made = (
        comp.auto_host_endpoint(n.name, n.labels, _node_ips(n)) for n in nodes if auto.covers(n)
    )
    return [h for h in made if h.name not in existing]


def _node_ips(node: Node) -> list[str]:
    return [a for t, a in node.addresses if t == "InternalIP"]


def _node_info(node: Node, hosts: Sequence[View]) -> NodeInfo:
    ordered = sorted(node.addresses, key=lambda ta: ta[0] != "InternalIP")
    for _, text in ordered:
        try:
            return NodeInfo(node.name, addr.address(text), node.labels)
        except ValueError:
            continue  # a Hostname entry
    mine = [h.addresses for h in hosts if h.node == node.name and h.addresses]
    return NodeInfo(node.name, mine[0].first() if mine else None, node.labels)


def all_addresses(world: World) -> IntervalSet:
    """Every address some endpoint or set stands for."""
    out = IntervalSet()
    for view in itertools.chain(world.views):
        out = out | view.addresses
    return out
