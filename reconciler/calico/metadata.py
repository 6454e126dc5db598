"""The `projectcalico.org/metadata` annotation: the v3 ObjectMeta kept on a v1 CRD object.

Facts from libcalico-go/lib/backend/k8s/resources/resources.go (Calico v3.31.0):
- ConvertCalicoResourceToK8sResource marshals the v3 ObjectMeta minus namespace,
  resourceVersion and uid (and minus name except for the four policy kinds) with
  libcalico-go/lib/json (jsoniter ConfigCompatibleWithStandardLibrary: compact, struct
  fields in Go declaration order, map keys sorted, `<`, `>`, `&`, U+2028, U+2029 escaped).
- The CRD object's own labels and annotations keep only keys "ours" to Calico (isOurs:
  the key contains `projectcalico.org/` or `operator.tigera.io/`); every label and
  annotation is in the JSON.
- ConvertK8sResourceToCalicoResource starts from the CRD object's labels and annotations
  (minus this one) and lays the JSON's over them: on read the annotation wins.

We carry only name, labels and annotations: the metadata a repo may set. calicoctl also
writes creationTimestamp (the time of its Create); leaving it out keeps our output
deterministic, and the reader then takes the CRD object's own creationTimestamp.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

METADATA_ANNOTATION = "projectcalico.org/metadata"

# resources.go isOurs: substring matches that Calico keeps on the CRD object itself.
_CALICO_OWNED = ("projectcalico.org/", "operator.tigera.io/")
# Our own control keys must also be on the CRD object: the ApplySet label so a
# label-selected LIST finds it, and `policy-reconciler.io/` annotations (prune:
# disabled) so the guard sees them where an operator's `kubectl annotate` puts them.
_OURS = ("applyset.kubernetes.io/", "policy-reconciler.io/")
_CR_LABEL_MARKERS = (*_CALICO_OWNED, *_OURS)

# Go's encoder (jsoniter, HTML escaping on) escapes these; other characters go through.
_GO_ESCAPES: dict[int, str] = {
    **{c: f"\\u{c:04x}" for c in range(0x20)},
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord("\t"): "\\t",
    ord('"'): '\\"',
    ord("\\"): "\\\\",
    ord("<"): "\\u003c",
    ord(">"): "\\u003e",
    ord("&"): "\\u0026",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def _go_string(s: str) -> str:
    return f'"{s.translate(_GO_ESCAPES)}"'


def _go_map(m: Mapping[str, str]) -> str:
    items = ",".join(f"{_go_string(k)}:{_go_string(m[k])}" for k in sorted(m))
    return f"{{{items}}}"


def encode(*, name: str, labels: Mapping[str, str], annotations: Mapping[str, str]) -> str:
    """The annotation value, byte for byte as Go marshals an ObjectMeta with these fields.

    ObjectMeta declares name, ..., labels, annotations in that order, all `omitempty`.
    """
    fields = []
    if name:
        fields.append(f'"name":{_go_string(name)}')
    if labels:
        fields.append(f'"labels":{_go_map(labels)}')
    if annotations:
        fields.append(f'"annotations":{_go_map(annotations)}')
    return f"{{{','.join(fields)}}}"


def decode(value: Any) -> dict[str, Any]:
    """The annotation's name, labels and annotations, keeping only well-typed parts.

    Live objects are input too: anyone who can edit the CR can write this annotation.
    What is malformed reads as absent, so the object shows as drift to heal (our next
    apply rewrites the annotation), never as a crash.
    """
    try:
        meta = json.loads(value) if isinstance(value, str) else None
    except (ValueError, RecursionError):
        meta = None
    if not isinstance(meta, dict):
        return {}
    out: dict[str, Any] = {}
    if isinstance(meta.get("name"), str):
        out["name"] = meta["name"]
    for key in ("labels", "annotations"):
        if _string_map(meta.get(key)):
            out[key] = meta[key]
    return out


def decoded_name(value: Any) -> str:
    """`decode(value).get("name", "")`, reading nothing else."""
    try:
        meta = json.loads(value) if isinstance(value, str) else None
    except (ValueError, RecursionError):
        return ""
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) else ""


def _string_map(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


def _kept(key: str, markers: tuple[str, ...]) -> bool:
    return any(m in key for m in markers)


def cr_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """Labels that stay on the CRD object: Calico's own, plus our ApplySet label."""
    return {k: v for k, v in labels.items() if _kept(k, _CR_LABEL_MARKERS)}


def cr_annotations(annotations: Mapping[str, str], encoded: str) -> dict[str, str]:
    """Annotations on the CRD object: Calico's own and ours, plus the metadata annotation.

    calicoctl lets a user-written `projectcalico.org/metadata` overwrite its own; we never do.
    """
    ours = {k: v for k, v in annotations.items() if _kept(k, _CR_LABEL_MARKERS)}
    return {**ours, METADATA_ANNOTATION: encoded}


def merged(on_object: Mapping[str, str], in_annotation: Mapping[str, str]) -> dict[str, str]:
    """Read side: the CRD object's own keys, with the annotation's winning."""
    return {**on_object, **in_annotation}
