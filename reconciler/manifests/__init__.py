"""YAML -> typed Resources: safe loading with lines, the kinds allowlist, and validation."""

from reconciler.manifests.fieldpath import FieldPath, LineMap, format_path
from reconciler.manifests.loader import LoadResult, load_dir, load_text
from reconciler.manifests.selector import Selector, SelectorError, parse_selector
from reconciler.manifests.validate import validate_resource
from reconciler.manifests.yamlsafe import DEFAULT_LIMITS, Limits

__all__ = [
    "DEFAULT_LIMITS",
    "FieldPath",
    "Limits",
    "LineMap",
    "LoadResult",
    "Selector",
    "SelectorError",
    "format_path",
    "load_dir",
    "load_text",
    "parse_selector",
    "validate_resource",
]
