"""The cycle collector is paused inside a stage and comes back as it was."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from reconciler.pipeline.heap import collector_paused, pausing_collector


@pytest.fixture
def collector_restored() -> Iterator[None]:
    was = gc.isenabled()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


@pytest.mark.usefixtures("collector_restored")
@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_is_paused_inside_and_restored_after(enabled: bool) -> None:
    if enabled:
        gc.enable()
    else:
        gc.disable()
    with collector_paused():
        inside = gc.isenabled()

    assert (inside, gc.isenabled()) == (False, enabled)


@pytest.mark.usefixtures("collector_restored")
def test_a_stage_that_raises_still_restores_the_collector() -> None:
    gc.enable()

    @pausing_collector
    def stage() -> None:
        assert not gc.isenabled()
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        stage()
    assert gc.isenabled()
