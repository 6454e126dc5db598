"""Write the values table of charts/policy-reconciler/README.md from values.yaml (helm-docs style).

Every leaf of values.yaml becomes a row: key, type, default, and the comment lines right above
the key as its description. Only the part between the two markers is rewritten.

    python scripts/chart_readme.py          # rewrite the table
    python scripts/chart_readme.py --check  # exit 1 if the README's table is stale (tests run this)
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parents[1] / "charts" / "policy-reconciler"
START, END = "<!-- values-table:start -->", "<!-- values-table:end -->"
_KEY = re.compile(r"^(\s*)([A-Za-z0-9_]+):(.*)$")


def comments(text: str) -> dict[str, str]:
    """Key path -> the comment block directly above that key (a blank line ends a block)."""
    found: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    block: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            block.append(stripped.lstrip("#").strip())
            continue
        match = _KEY.match(line)
        if not stripped or not match:
            block = [] if not stripped else block
            continue
        indent, key = len(match.group(1)), match.group(2)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = ".".join([*(k for _, k in stack), key])
        if block:
            found[path] = " ".join(block)
        block = []
        stack.append((indent, key))
    return found


def rows(values: dict[str, Any], notes: dict[str, str], prefix: str = "") -> list[str]:
    """One row per leaf. A leaf without a comment of its own shows the comment of the nearest
    section above it, once (on the section's first row), as helm-docs' readers expect."""
    out: list[str] = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out += rows(value, notes, f"{path}.")
            continue
        default = json.dumps(value).replace("|", "\\|")
        note = notes.get(path) or _section_note(path, notes)
        out.append(f"| `{path}` | {_type(value)} | `{default}` | {_escape(note)} |")
    return out


def _section_note(path: str, notes: dict[str, str]) -> str:
    parts = path.split(".")
    for depth in range(len(parts) - 1, 0, -1):
        section = ".".join(parts[:depth])
        if section in notes:
            return notes.pop(section)  # shown once
    return ""


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _type(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    return {int: "int", float: "float", str: "string", list: "list", dict: "object"}.get(
        type(value), "string"
    )


def table() -> str:
    text = (CHART / "values.yaml").read_text()
    head = ["| Key | Type | Default | Description |", "|-----|------|---------|-------------|"]
    return "\n".join([*head, *rows(yaml.safe_load(text), comments(text))])


def render(readme: str) -> str:
    before, _, rest = readme.partition(START)
    _, _, after = rest.partition(END)
    return f"{before}{START}\n{table()}\n{END}{after}"


def main(argv: list[str]) -> int:
    path = CHART / "README.md"
    current = path.read_text()
    if START not in current or END not in current:
        print(f"{path}: the {START} / {END} markers are missing", file=sys.stderr)
        return 1
    wanted = render(current)
    if "--check" in argv:
        if wanted != current:
            print(f"{path} is stale: run `python scripts/chart_readme.py`", file=sys.stderr)
            return 1
        return 0
    path.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
