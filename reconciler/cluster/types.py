"""The resource types a cluster serves for the kinds we may manage, from discovery."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from reconciler.cluster import errors
from reconciler.cluster.client import ResourceType
from reconciler.model import GroupKind


@dataclass(frozen=True, slots=True)
class Types:
    """Resource types of the group-kinds we may manage, from (cached) discovery."""

    by_group_kind: Mapping[GroupKind, ResourceType] = field(default_factory=dict)

    def of(self, gk: GroupKind) -> ResourceType:
        try:
            return self.by_group_kind[gk]
        except KeyError:
            raise errors.NotFound(f"{gk} is not served by this cluster") from None
