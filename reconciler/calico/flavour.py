"""The API flavour a cluster serves Calico under, and conversion to and from it.

`projectcalico.org/v3` is what users write. With the Calico API server present it is
served directly and objects are applied as written (the server defaults them). Without
it we write `crd.projectcalico.org/v1` exactly as calicoctl (libcalico-go's KDD backend)
would store the object, and read it back into the user's v3 view, so plans and reports
speak in the user's names. Kubernetes NetworkPolicy passes through untouched.

Identity. `cluster_ref` maps any ref to the object as the cluster knows it; the planner
pairs desired and live objects by it. Under the CRD flavour a v3 policy `foo` and a repo
document written as v1 `default.foo` are the same stored object
`crd.projectcalico.org/v1 .../default.foo` (in Calico 3.28-3.31); under the v3 flavour
both are `projectcalico.org/v3 .../foo`, which is how the API server shows such a v1
object, and the v1 document is applied through v3 as that object (the CRDs are Calico's
storage there, and are not discovered). Two repo documents with one cluster ref are
duplicates.

Reading (`from_cluster`) goes by the body's own apiVersion, not by the flavour:
- a v1 object with the metadata annotation was written by calicoctl, the API server or
  us: it is read into the v3 view (name from the annotation where the release keeps it,
  else derived from the CRD name as that release does);
- a v1 object without it was written as v1 (a repo document, kubectl): it comes back
  unchanged with a v1 ref, the same ref the loader gives that document.

Labels. On write, every label goes into the metadata annotation; the CRD object keeps
Calico's own (`projectcalico.org/`, `operator.tigera.io/`) and our ApplySet
`applyset.kubernetes.io/` labels. On read, the object's labels are merged under the
annotation's (the annotation wins), so a label added to the v1 object out of band shows
up in the user view. A policy outside the default tier also gets
`projectcalico.org/tier: <tier>` (as calicoctl adds it); the user view drops that label
whenever it equals the policy's tier, in both flavours (the API server adds
`projectcalico.org/tier: default` on every read), so a manifest should not spell it out.

`spec.types` is set on write when empty, as calicoctl infers it (clientv3
globalnetworkpolicy.go defaultPolicyTypesField): Felix takes empty types as
Ingress+Egress (felix/calc/policy_sorter.go), silently default-denying egress. A
preDNAT policy has no egress rules (validation), so it gets [Ingress] by the same rule.
A staged policy with `stagedAction: Delete` has its types removed
(clientv3/stagednetworkpolicy.go). `spec.tier` is left as written: calicoctl does not
set it (clientv3 fills it in only on read). Tier `order`/`defaultAction` defaults are not
written: the backend's tier client applies them on every read
(backend/k8s/resources/tiers.go tierv1v3Converter), so Felix sees them either way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.calico import metadata
from reconciler.calico.rules import TIER_LABEL, StorageRules, rules_for, tier_of
from reconciler.kinds import (
    CALICO_CRD,
    CALICO_V3,
    K8S_NETWORKING,
    TIERED_KINDS,
    group_of,
    version_of,
)
from reconciler.model import ObjectRef, Resource

_VERSIONS = {CALICO_V3: "v3", CALICO_CRD: "v1"}

# (has ingress rules, has egress rules) -> types; clientv3 defaultPolicyTypesField.
_INFERRED_TYPES: dict[tuple[bool, bool], tuple[str, ...]] = {
    (False, False): ("Ingress",),
    (True, False): ("Ingress",),
    (False, True): ("Egress",),
    (True, True): ("Ingress", "Egress"),
}


@dataclass(frozen=True, slots=True)
class Flavour:
    """How this cluster serves Calico; see the module docstring for the rules."""

    group: str  # CALICO_V3 (API server present) or CALICO_CRD
    version: str  # "v3" or "v1"
    calico: tuple[int, int] = (3, 31)  # Calico minor release whose storage rules apply

    def __post_init__(self) -> None:
        if _VERSIONS.get(self.group) != self.version:
            raise ValueError(f"not a Calico API flavour: {self.group}/{self.version}")
        rules_for(self.calico)  # refuse unsupported releases up front

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    @property
    def is_crd(self) -> bool:
        return self.group == CALICO_CRD

    def cluster_ref(self, ref: ObjectRef) -> ObjectRef:
        """The ref of the object as the cluster stores (CRD) or serves (v3) it."""
        if ref.group not in _VERSIONS or ref.group == self.group:
            return ref
        rules = rules_for(self.calico)
        if self.is_crd:
            return _renamed(ref, CALICO_CRD, rules.stored_name(ref.name))
        return _renamed(ref, CALICO_V3, rules.read_name(ref.name, ""))

    def to_cluster(self, res: Resource) -> dict[str, Any]:
        """The body to server-side-apply for a desired Resource.

        A new map at the top and wherever a field is rewritten; the rest is the
        resource's own, shared, not copied (bodies are values, never mutated): at
        50,000 objects a deep copy of each was 2.6 KiB of every object's memory.
        """
        if self.is_crd and res.ref.group == CALICO_V3:
            return _to_crd(res, rules_for(self.calico))
        if not self.is_crd and res.ref.group == CALICO_CRD:
            return _to_v3(res, self.cluster_ref(res.ref).name)
        if res.ref.group == K8S_NETWORKING:
            return _with_policy_types(res.body)
        return dict(res.body)

    def ref_from_cluster(self, body: Mapping[str, Any]) -> ObjectRef:
        """`from_cluster(body)[0]` without the user view: what pairing a listed object
        with its desired one needs (the view's labels are never built, the annotation is
        read for a tiered policy's kept name only)."""
        meta = body["metadata"]
        annotations = meta.get("annotations") or {}
        if (
            group_of(body["apiVersion"]) != CALICO_CRD
            or metadata.METADATA_ANNOTATION not in annotations
        ):
            return _ref_of(body)
        kind, name = body["kind"], meta["name"]
        if kind in TIERED_KINDS:  # any other kind keeps its CR name (`_user_name`)
            stored = {"name": metadata.decoded_name(annotations[metadata.METADATA_ANNOTATION])}
            name = _user_name(name, stored, _spec_tier(body), rules_for(self.calico), kind=kind)
        return ObjectRef(CALICO_V3, "v3", kind, meta.get("namespace", ""), name)

    def from_cluster(self, body: Mapping[str, Any]) -> tuple[ObjectRef, dict[str, Any]]:
        """A live object -> (user ref, user-view body)."""
        group = group_of(body["apiVersion"])
        annotations = body.get("metadata", {}).get("annotations") or {}
        if group == CALICO_CRD and metadata.METADATA_ANNOTATION in annotations:
            return _from_crd(body, rules_for(self.calico))
        out = dict(body)  # shallow: only metadata is rebuilt, and bodies are never mutated
        if group == CALICO_V3:
            out["metadata"] = _without_implied_tier_label(out["metadata"], out)
        return _ref_of(out), out


def _with_policy_types(body: Mapping[str, Any]) -> dict[str, Any]:
    """Kubernetes NetworkPolicy with `policyTypes` written out as the API server defaults it.

    Left implicit, the field is not ours under server-side apply, so an out-of-band
    edit to it could never be healed; explicit, it is (and the intent is visible).
    """
    out = dict(body)
    spec = out.get("spec") or {}
    if not spec.get("policyTypes"):
        types = ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]
        out["spec"] = {**spec, "policyTypes": types}
    return out


def v3_flavour() -> Flavour:
    return Flavour(CALICO_V3, "v3")


def crd_flavour(calico: tuple[int, int] = (3, 31)) -> Flavour:
    return Flavour(CALICO_CRD, "v1", calico)


def _renamed(ref: ObjectRef, group: str, policy_name: str) -> ObjectRef:
    name = policy_name if ref.kind in TIERED_KINDS else ref.name
    return ObjectRef(group, _VERSIONS[group], ref.kind, ref.namespace, name)


def _ref_of(body: Mapping[str, Any]) -> ObjectRef:
    meta = body["metadata"]
    api_version = body["apiVersion"]
    return ObjectRef(
        group_of(api_version),
        version_of(api_version),
        body["kind"],
        meta.get("namespace", ""),
        meta["name"],
    )


def _spec_tier(body: Mapping[str, Any]) -> str:
    spec = body.get("spec") or {}
    return str(spec.get("tier") or "")


# --- write: v3 -> crd.projectcalico.org/v1 ----------------------------------------------


def _to_crd(res: Resource, rules: StorageRules) -> dict[str, Any]:
    body = {k: v for k, v in res.body.items() if k != "metadata"}
    if res.ref.kind in TIERED_KINDS and isinstance(body.get("spec"), Mapping):
        body["spec"] = _with_types(body["spec"])
    return {**body, "apiVersion": f"{CALICO_CRD}/v1", "metadata": _crd_metadata(res, rules)}


def _crd_metadata(res: Resource, rules: StorageRules) -> dict[str, Any]:
    """resources.go ConvertCalicoResourceToK8sResource, after clientv3's tier label."""
    meta = res.body.get("metadata") or {}
    tiered = res.ref.kind in TIERED_KINDS
    labels = _with_tier_label(meta.get("labels") or {}, _spec_tier(res.body), rules, tiered=tiered)
    annotations = meta.get("annotations") or {}
    kept_name = res.ref.name if tiered and rules.name_in_annotation else ""
    encoded = metadata.encode(name=kept_name, labels=labels, annotations=annotations)
    out: dict[str, Any] = {"name": rules.stored_name(res.ref.name) if tiered else res.ref.name}
    if res.ref.namespace:
        out["namespace"] = res.ref.namespace
    if on_object := metadata.cr_labels(labels):
        out["labels"] = on_object
    out["annotations"] = metadata.cr_annotations(annotations, encoded)
    return out


def _with_tier_label(
    labels: Mapping[str, str], spec_tier: str, rules: StorageRules, *, tiered: bool
) -> dict[str, str]:
    """clientv3 addTierLabel: set (overwriting) the tier label outside the default tier."""
    tier = tier_of(spec_tier)
    if tiered and rules.tier_label and tier != tier_of(""):
        return {**labels, TIER_LABEL: tier}
    return dict(labels)


def _with_types(spec: Mapping[str, Any]) -> dict[str, Any]:
    if spec.get("stagedAction") == "Delete":
        return {k: v for k, v in spec.items() if k != "types"}
    if spec.get("types"):
        return dict(spec)
    has = (bool(spec.get("ingress")), bool(spec.get("egress")))
    return {**spec, "types": list(_INFERRED_TYPES[has])}


def _to_v3(res: Resource, name: str) -> dict[str, Any]:
    """A document written as crd.projectcalico.org/v1 where Calico's API server runs: the
    CRDs are its storage and only v3 is discovered, so it goes through v3 (the same spec
    schema) under the name v3 shows that CR by; Calico then stores it as it stores v3."""
    body = dict(res.body)
    metadata = {**(body.get("metadata") or {}), "name": name}
    return {**body, "apiVersion": f"{CALICO_V3}/v3", "metadata": metadata}


# --- read: crd.projectcalico.org/v1 -> v3 -------------------------------------------------


def _from_crd(body: Mapping[str, Any], rules: StorageRules) -> tuple[ObjectRef, dict[str, Any]]:
    out = dict(body)  # shallow: metadata is rebuilt below, the rest is shared read-only
    out["apiVersion"] = f"{CALICO_V3}/v3"
    out["metadata"] = _without_implied_tier_label(_user_metadata(out, rules), out)
    return _ref_of(out), out


def _user_metadata(body: Mapping[str, Any], rules: StorageRules) -> dict[str, Any]:
    """resources.go ConvertK8sResourceToCalicoResource; server-set fields pass through."""
    meta = body["metadata"]
    on_object = dict(meta.get("annotations") or {})
    stored = metadata.decode(on_object.pop(metadata.METADATA_ANNOTATION))
    out = {k: v for k, v in meta.items() if k not in ("labels", "annotations")}
    out["name"] = _user_name(meta["name"], stored, _spec_tier(body), rules, kind=body["kind"])
    if labels := metadata.merged(meta.get("labels") or {}, stored.get("labels") or {}):
        out["labels"] = labels
    if annotations := metadata.merged(on_object, stored.get("annotations") or {}):
        out["annotations"] = annotations
    return out


def _user_name(
    cr_name: str, stored: Mapping[str, Any], spec_tier: str, rules: StorageRules, *, kind: str
) -> str:
    """resources.go ConvertK8sResourceToCalicoResource: the kept name, else derived.

    A kept name is honoured only when it is stored under this CR's name: an annotation
    edited to name another object must not rename (and so prune) this one.
    """
    derived = rules.read_name(cr_name, spec_tier) if kind in TIERED_KINDS else cr_name
    kept = str(stored.get("name") or "") if rules.name_in_annotation else ""
    stored_as = rules.stored_name(kept) if kind in TIERED_KINDS else kept
    return kept if kept and stored_as == cr_name else derived


def _without_implied_tier_label(meta: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(meta)
    labels = dict(out.get("labels") or {})
    if body["kind"] not in TIERED_KINDS or labels.get(TIER_LABEL) != tier_of(_spec_tier(body)):
        return out
    del labels[TIER_LABEL]
    if labels:
        out["labels"] = labels
    else:
        out.pop("labels", None)
    return out
