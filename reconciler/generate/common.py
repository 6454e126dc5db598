"""Small pieces every template kind shares: provenance and how findings list names."""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.model import ObjectRef, Origin

TEMPLATE_ANNOTATION = "policy-reconciler.io/template"  # which template made the object
_NAMED = 10  # names listed in one finding; the rest are counted


def generated_origin(origin: Origin, template: ObjectRef, target: str) -> Origin:
    """The template's file:line, the template, and the Node/Namespace it was expanded for."""
    return Origin(origin.path, origin.line, template=str(template), target=target)


def named(names: Sequence[str]) -> str:
    more = len(names) - _NAMED
    return ", ".join(sorted(names)[:_NAMED]) + (f" and {more} more" if more > 0 else "")
