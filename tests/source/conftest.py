"""Fixtures for the source stage: a real upstream repository and sources that fetch it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler.source import GitSource, SourceSpec
from tests.source.repos import Upstream

MakeSource = Callable[..., GitSource]


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    return Upstream.create(tmp_path)


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def make_source(upstream: Upstream, cache: Path) -> MakeSource:
    """GitSource for the upstream (a plain path unless `url` is given)."""

    def make(**spec: Any) -> GitSource:
        spec.setdefault("url", str(upstream.bare))
        spec.setdefault("timeout", 20)
        return GitSource(SourceSpec(cache_dir=cache, **spec))

    return make
