"""Calico API flavours: projectcalico.org/v3 (what users write) <-> crd.projectcalico.org/v1."""

from reconciler.calico.flavour import Flavour, crd_flavour, v3_flavour
from reconciler.calico.metadata import METADATA_ANNOTATION
from reconciler.calico.rules import RULES, TIER_LABEL, StorageRules, rules_for

__all__ = [
    "METADATA_ANNOTATION",
    "RULES",
    "TIER_LABEL",
    "Flavour",
    "StorageRules",
    "crd_flavour",
    "rules_for",
    "v3_flavour",
]
