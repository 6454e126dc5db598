"""How calicoctl stores tiered policies as crd.projectcalico.org/v1, one row per Calico release.

Each row holds the latest patch release of that minor. Only the four policy kinds
(TIERED_KINDS) are renamed in storage; every other kind keeps its v3 name. Supporting a
new release is one more row; a release newer than the last row uses the last row.

Sources (projectcalico/calico at the tag named):
- v3.28: libcalico-go/lib/clientv3/globalnetworkpolicy.go convertPolicyNameForStorage
  ("default." + name, always: open-source 3.28 has no tiers) and
  convertPolicyNameFromStorage (drop up to the first dot); the v3 name is not kept.
- v3.29.4+, v3.30, v3.31: libcalico-go/lib/names/policy.go TieredPolicyName (a name
  without a dot gets "default.", a dotted name is kept), used by
  libcalico-go/lib/backend/k8s/resources/resources.go ConvertCalicoResourceToK8sResource,
  which also keeps the v3 name in the metadata annotation; on read, without that name,
  resources.go determinePolicyName drops "default." for default-tier policies
  (PR #10399/#10417). v3.29.0-3.29.3 showed users the "default." name instead
  (issue #9437); the row follows the fixed 3.29.4, which writes the same objects.
- v3.32: the CRD name equals the v3 name (PR #11232 drops the tier-prefix rule,
  PR #11493 makes kube-controllers migrate older objects).
- Tier label: clientv3/globalnetworkpolicy.go addTierLabel puts
  `projectcalico.org/tier: <tier>` on policies outside the default tier (3.29+); the
  backend's prefix LIST selects policies of a tier by it (customresource.go List).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_TIER = "default"
TIER_LABEL = "projectcalico.org/tier"


def tier_of(spec_tier: str) -> str:
    """names.TierOrDefault: an empty tier is the default tier."""
    return spec_tier or DEFAULT_TIER


def _always_default(name: str) -> str:
    return f"{DEFAULT_TIER}.{name}"


def _after_first_dot(name: str, _tier: str) -> str:
    return name.split(".", 1)[-1]


def _tier_prefixed(name: str) -> str:
    return name if "." in name else f"{DEFAULT_TIER}.{name}"


def _drop_default_prefix(name: str, tier: str) -> str:
    if tier_of(tier) == DEFAULT_TIER:
        return name.removeprefix(f"{DEFAULT_TIER}.")
    return name


def _same(name: str) -> str:
    return name


def _same_read(name: str, _tier: str) -> str:
    return name


@dataclass(frozen=True, slots=True)
class StorageRules:
    """Storage of the policy kinds for Calico releases from `since` on."""

    since: tuple[int, int]
    stored_name: Callable[[str], str]  # v3 name -> CRD object name
    # (CRD object name, spec.tier) -> v3 name, when the metadata annotation has no name
    read_name: Callable[[str, str], str]
    name_in_annotation: bool  # the v3 name is kept in the metadata annotation (and read)
    tier_label: bool  # non-default-tier policies carry TIER_LABEL


RULES: tuple[StorageRules, ...] = (
    StorageRules((3, 28), _always_default, _after_first_dot, False, False),
    StorageRules((3, 29), _tier_prefixed, _drop_default_prefix, True, True),
    StorageRules((3, 30), _tier_prefixed, _drop_default_prefix, True, True),
    StorageRules((3, 31), _tier_prefixed, _drop_default_prefix, True, True),
    StorageRules((3, 32), _same, _same_read, True, True),
)


def rules_for(calico: tuple[int, int]) -> StorageRules:
    """The row for a Calico (major, minor); releases before the first row are refused.

    Before 3.28 labels lived on the CRD object itself (PR #8740 moved them into the
    metadata annotation), a different format this module does not write.
    """
    rows = [r for r in RULES if r.since <= calico]
    if not rows:
        oldest = ".".join(map(str, RULES[0].since))
        raise ValueError(f"Calico {calico[0]}.{calico[1]} is not supported (oldest: {oldest})")
    return rows[-1]
