"""Hostile inventory files never crash: a seeded mutation fuzzer over examples/inventory.yaml
(one value replaced by another YAML type at a random place) either parses or raises our
InventoryError with file:line, never anything else."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.observe.inventory_file import InventoryError, parse_inventory
from tests.fuzz.test_repo_fuzz import HOSTILE, _places, _put

INVENTORY = Path(__file__).resolve().parents[2] / "examples" / "inventory.yaml"


@st.composite
def mutated(draw: st.DrawFn) -> str:
    docs = [d for d in yaml.safe_load_all(INVENTORY.read_text()) if d is not None]
    index = draw(st.integers(min_value=0, max_value=len(docs) - 1))
    docs[index] = _put(docs[index], draw(st.sampled_from(_places(docs[index]))), draw(HOSTILE))
    return yaml.safe_dump_all(docs, sort_keys=False)


@settings(max_examples=600)
@given(text=mutated())
def test_no_mutated_inventory_crashes(text: str) -> None:
    try:
        parse_inventory(text, "inventory.yaml")
    except InventoryError as err:
        assert re.match(r"inventory\.yaml(:\d+)?: ", str(err)), str(err)
