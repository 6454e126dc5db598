"""What policies and rules select: endpoints (pods, host endpoints) and network sets.

Calico's selectors see an endpoint's own labels plus labels inherited from its profiles
(conversion.go NamespaceToProfile / ServiceAccountToProfile: `pcns.` and `pcsa.` prefixes).
We keep the three label sets apart and let the match say which one it reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from reconciler.connectivity.intervals import IntervalSet
from reconciler.manifests.selector import Selector

NAME_LABEL = "projectcalico.org/name"
NAMESPACE_LABEL = "projectcalico.org/namespace"
ORCHESTRATOR_LABEL = "projectcalico.org/orchestrator"
SERVICE_ACCOUNT_LABEL = "projectcalico.org/serviceaccount"
DEFAULT_ALLOW_PROFILE = "projectcalico-default-allow"


class Kind(StrEnum):
    POD = "pod"
    HOST = "host endpoint"
    SET = "network set"


@dataclass(frozen=True, slots=True)
class NamedPort:
    name: str
    protocol: int
    port: int


@dataclass(frozen=True, slots=True)
class View:
    """An endpoint or network set as selectors see it, and the addresses it stands for.

    `addresses` is what a rule selector matching it resolves to: pod IPs, a host
    endpoint's expectedIPs (hostendpoint.go ExpectedIPs; none means it matches no
    address), a network set's nets.
    """

    kind: Kind
    name: str  # "shop/nginx-1", "node-1-node-firewall", "admin-networks"
    namespace: str  # "" when not namespaced
    labels: Mapping[str, str]
    addresses: IntervalSet
    ns_labels: Mapping[str, str] | None = None  # None: not namespaced (global() side)
    service_account: str = ""
    sa_labels: Mapping[str, str] = field(default_factory=dict)
    node: str = ""
    named_ports: tuple[NamedPort, ...] = ()
    interface: str = ""  # host endpoints: interfaceName
    profiles: tuple[str, ...] = ()
    origin: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


@dataclass(frozen=True, slots=True)
class Match:
    """A selector scoped as Calico scopes it (updateprocessors/rules.go getEndpointSelector,
    globalnetworkpolicyprocessor.go). Every present part must hold."""

    selector: Selector | None = None
    namespace: str | None = None  # exactly this namespace (a namespaced policy's scope)
    ns_selector: Selector | None = None  # on the namespace's labels; implies namespaced
    global_only: bool = False  # global(): host endpoints and global network sets only
    pods_only: bool = False  # K8s podSelector: projectcalico.org/orchestrator == 'k8s'
    endpoints_only: bool = False  # policy selection: never a network set
    sa_names: frozenset[str] | None = None
    sa_selector: Selector | None = None

    def matches(self, view: View) -> bool:
        return (
            self._scope(view)
            and (self.selector is None or self.selector.matches(view.labels))
            and self._service_account(view)
        )

    def _scope(self, view: View) -> bool:
        if self.endpoints_only and view.kind is Kind.SET:
            return False
        if self.pods_only and view.kind is not Kind.POD:
            return False
        if self.global_only:
            return view.ns_labels is None
        if self.namespace is not None and view.namespace != self.namespace:
            return False
        if self.ns_selector is not None:
            return view.ns_labels is not None and self.ns_selector.matches(view.ns_labels)
        return True

    def _service_account(self, view: View) -> bool:
        if self.sa_names is None and self.sa_selector is None:
            return True
        if view.kind is not Kind.POD:
            return False
        if self.sa_names is not None and view.service_account not in self.sa_names:
            return False
        return self.sa_selector is None or self.sa_selector.matches(view.sa_labels)
