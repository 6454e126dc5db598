"""Hostile repo YAML never crashes a run: a seeded mutation fuzzer over example-repo/.

Each example takes one of example-repo's files, puts a value of another YAML type (or a
null, or an odd string) at one place in one document, and runs what `plan --offline`
and the controller run on it: render, template expansion over an inventory, planning and
every renderer. The property: no exception ever, and a revision with errors plans no
writes it would apply (errors are findings with file:line, never tracebacks).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler import pipeline
from reconciler.generate import Namespace, Node
from reconciler.model import Revision, Severity
from reconciler.report import render_json, render_markdown, render_text

ROOT = Path(__file__).resolve().parents[2] / "example-repo"
FILES = sorted(p for p in ROOT.rglob("*.yaml"))
NODES = [
    Node("master-1", {"node-role.kubernetes.io/control-plane": ""}, (("InternalIP", "10.0.0.1"),)),
    Node("worker-1", {"kubernetes.io/os": "linux"}, (("InternalIP", "10.0.0.2"),)),
]
NAMESPACES = [
    Namespace("shop", {"field.cattle.io/projectId": "p-shop"}),
    Namespace("cache", {"field.cattle.io/projectId": "p-shop"}),
]

HOSTILE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "x", "all()", "!", "0.0.0.0/0", "tcp/22", "{", "-1", "${node.name}"]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.sampled_from(["a", "x", "1"]), st.integers(), max_size=2),
    st.recursive(st.integers(), lambda inner: st.lists(inner, max_size=2), max_leaves=8),
)


def _places(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a document, the root included."""
    out = [path]
    if isinstance(value, dict):
        for key, child in value.items():
            out += _places(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out += _places(child, (*path, index))
    return out


def _put(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    *outer, last = path
    holder = doc
    for step in outer:
        holder = holder[step]
    holder[last] = value
    return doc


@st.composite
def mutated_repo(draw: st.DrawFn) -> tuple[str, str]:
    source = draw(st.sampled_from(FILES))
    docs = [d for d in yaml.safe_load_all(source.read_text()) if d is not None]
    index = draw(st.integers(min_value=0, max_value=len(docs) - 1))
    place = draw(st.sampled_from(_places(docs[index])))
    docs[index] = _put(docs[index], place, draw(HOSTILE))
    return source.name, yaml.safe_dump_all(docs, sort_keys=False)


@settings(max_examples=1500, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(repo=mutated_repo())
def test_no_mutated_repo_crashes_a_plan(repo: tuple[str, str], tmp_path: Path) -> None:
    name, text = repo
    case = tmp_path / "case"
    case.mkdir(exist_ok=True)
    for old in case.iterdir():
        old.unlink()
    (case / name).write_text(text)
    settings_ = pipeline.Settings()

    rendered = pipeline.render(case, Revision("dir:case", str(case)), settings_)
    plan = pipeline.plan_offline(rendered, settings_, nodes=NODES, namespaces=NAMESPACES)
    for render in (render_text, render_json, render_markdown):
        render(plan)

    errors = [f for f in plan.findings if f.severity is Severity.ERROR]
    assert all(f.origin is not None for f in errors), errors
