"""Field paths inside a document, and the line each one was written on."""

from __future__ import annotations

import re
from collections.abc import Mapping

FieldPath = tuple[str | int, ...]
LineMap = Mapping[FieldPath, int]  # field path -> 1-based line of its key or list item

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def format_path(path: FieldPath) -> str:
    """`spec.ingress[0].destination.ports[1]`; odd keys (label keys) as `labels["a.b/c"]`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f'["{part}"]'
    return out


def line_for(lines: LineMap, path: FieldPath) -> int:
    """Line of `path`, or of its nearest written ancestor (a missing field points at its parent)."""
    for end in range(len(path), 0, -1):
        line = lines.get(path[:end])
        if line:
            return line
    return 0


def split_list(lines: LineMap, key: str) -> dict[int, dict[FieldPath, int]]:
    """The lines under each `key[i]`, re-rooted at the item (items of a `kind: List`)."""
    out: dict[int, dict[FieldPath, int]] = {}
    for path, line in lines.items():
        if len(path) > 2 and path[0] == key and isinstance(path[1], int):
            out.setdefault(path[1], {})[path[2:]] = line
    return out
