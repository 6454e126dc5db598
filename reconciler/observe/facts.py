"""What planning knows of a cluster, as values: `Facts` and the managed objects.

Read from the API server (`observe.read`), or made offline from files (`offline_facts`):
the planner never tells the two apart. A field that is `None` was not read (no template
or engine needed it) or not given; an empty tuple means "read, and there are none".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from reconciler.applyset import Inventory, is_suspended, read_inventory
from reconciler.calico.flavour import Flavour, crd_flavour
from reconciler.cluster.types import Types
from reconciler.generate.inventory import Namespace, Node, Pod, ServiceAccount
from reconciler.kinds import group_kind_of
from reconciler.model import GroupKind, ObjectKey
from reconciler.plan import Desired, Live

if TYPE_CHECKING:
    from reconciler.observe.connectivity import Live as Firewall

OFFLINE_TARGET = "offline render (no cluster)"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Facts:
    """The cluster around the objects we manage: read once per plan (or per PR report)."""

    target: str  # the kubeconfig context, "in-cluster", or OFFLINE_TARGET
    flavour: Flavour  # which Calico API we write
    types: Types = field(default_factory=Types)
    parent: Mapping[str, Any] | None = None  # the ApplySet parent ConfigMap, if it exists
    nodes: tuple[Node, ...] | None = None
    namespaces: tuple[Namespace, ...] | None = None
    pods: tuple[Pod, ...] | None = None
    service_accounts: tuple[ServiceAccount, ...] | None = None
    kube_controllers: Mapping[str, Any] | None = None  # KubeControllersConfiguration/default
    # Before our first apply (no parent): whether the parent's namespace exists (one GET).
    parent_namespace: bool | None = None

    @property
    def recorded(self) -> Inventory | None:
        """What the parent says we own; None before our first apply."""
        return read_inventory(self.parent) if self.parent else None

    @property
    def suspended(self) -> bool:
        return is_suspended(self.parent)


@dataclass(frozen=True, slots=True)
class Objects:
    """The live objects planning compares with: ours of each listed kind, and namesakes."""

    owned: tuple[Live, ...] = ()  # every object with our label, of each kind in `listed`
    listed: frozenset[GroupKind] = frozenset()
    namesakes: Mapping[ObjectKey, Live] = field(default_factory=dict)  # by desired identity

    def for_plan(self, inventory: Inventory, desired: Sequence[Desired]) -> list[Live]:
        """What one plan sees: ours of its inventory's kinds, and its new objects' namesakes.

        Exactly what reading for that plan alone would return, so that several plans (the
        PR's head and base) can share one read."""
        owned = [lv for lv in self.owned if group_kind_of(lv.body) in inventory.group_kinds]
        seen = {lv.ref.key for lv in owned}
        every = {lv.ref.key: lv for lv in self.owned}
        unknown = (d.resource.ref.key for d in desired if d.resource.ref.key not in seen)
        return owned + list(_found(unknown, self.namesakes, every))


def _found(
    keys: Iterable[ObjectKey], namesakes: Mapping[ObjectKey, Live], owned: Mapping[ObjectKey, Live]
) -> Iterable[Live]:
    for key in keys:
        live = namesakes.get(key) or owned.get(key)
        if live is not None:
            yield live


@dataclass(frozen=True, slots=True)
class Observed:
    facts: Facts
    objects: Objects = field(default_factory=Objects)
    # What ConnectivityChecks start from: every firewall object in the cluster (ours or
    # not) and the pods, read only when the repo has checks; offline, the base render.
    firewall: Firewall | None = None


def offline_facts(
    calico: tuple[int, int],
    *,
    nodes: Sequence[Node] | None = None,
    namespaces: Sequence[Namespace] | None = None,
    pods: Sequence[Pod] | None = None,
    service_accounts: Sequence[ServiceAccount] | None = None,
) -> Facts:
    """No cluster: an empty one with Calico's CRDs, and the inventory given (from files)."""
    return Facts(
        target=OFFLINE_TARGET,
        flavour=crd_flavour(calico),
        nodes=_maybe(nodes),
        namespaces=_maybe(namespaces),
        pods=_maybe(pods),
        service_accounts=_maybe(service_accounts),
    )


def _maybe(items: Sequence[T] | None) -> tuple[T, ...] | None:
    return None if items is None else tuple(items)
