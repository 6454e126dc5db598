"""Substitutions in NamespacePolicyTemplate values: `${namespace}` and `${labels['<key>']}`.

Only string values carry them (never map keys), and they are the whole language: anything
else inside `${...}` is an error, as is a `${` that is never closed. What they insert is a
namespace name (a DNS-1123 label) or a label value (letters, digits, `-`, `_`, `.`): neither
can hold a quote, so a substitution inside a quoted Calico selector cannot change its shape.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.manifests import checks as c

_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
_LABEL = re.compile(r"""labels\[\s*(['"])(.*?)\1\s*\]""")
NAMESPACE = "namespace"
KNOWN = "${namespace} or ${labels['<label key>']}"


class SubstitutionError(ValueError):
    """A `${...}` we do not know, or a malformed one."""


@dataclass(frozen=True, slots=True)
class Placeholder:
    text: str  # as written, "${labels['field.cattle.io/projectId']}"
    label: str  # the label key, or "" for ${namespace}


def placeholders(text: str) -> tuple[Placeholder, ...]:
    """Every substitution in `text`, in order; raises SubstitutionError on a bad one."""
    found = tuple(_placeholder(m) for m in _PLACEHOLDER.finditer(text))
    if "${" in _PLACEHOLDER.sub("", text):
        raise SubstitutionError(f"{text!r} opens a substitution with '${{' and never closes it")
    return found


def _placeholder(match: re.Match[str]) -> Placeholder:
    inner = match.group(1).strip()
    if inner == NAMESPACE:
        return Placeholder(match.group(0), "")
    label = _LABEL.fullmatch(inner)
    if label is None:
        raise SubstitutionError(f"unknown substitution {match.group(0)!r}: use {KNOWN}")
    problem = c.qualified_name(label.group(2))
    if problem:
        raise SubstitutionError(f"in {match.group(0)!r}: {problem}")
    return Placeholder(match.group(0), label.group(2))


def fill(text: str, *, namespace: str, labels: Mapping[str, str]) -> str:
    """`text` with every substitution replaced; each referenced label must be in `labels`."""
    if "${" not in text:
        return text
    return _PLACEHOLDER.sub(lambda m: _value(_placeholder(m), namespace, labels), text)


def _value(placeholder: Placeholder, namespace: str, labels: Mapping[str, str]) -> str:
    return labels[placeholder.label] if placeholder.label else namespace


def fill_body(value: Any, *, namespace: str, labels: Mapping[str, str]) -> Any:
    """A copy of a JSON-like value with `fill` applied to every string in it (keys untouched)."""
    if isinstance(value, str):
        return fill(value, namespace=namespace, labels=labels)
    if isinstance(value, dict):
        return {k: fill_body(v, namespace=namespace, labels=labels) for k, v in value.items()}
    if isinstance(value, list):
        return [fill_body(v, namespace=namespace, labels=labels) for v in value]
    return value
