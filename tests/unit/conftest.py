"""Fixtures for the unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reconciler.manifests import yamlsafe

# Both YAML loaders: libyaml's composer (used when libyaml bounds nesting) and PyYAML's
# Python one (the fallback). Module-scoped so hypothesis' tests may run under it too.
LOADERS: dict[str, type[yamlsafe._Loader] | type[yamlsafe._CLoader]] = {
    "libyaml": yamlsafe._CLoader,
    "python": yamlsafe._Loader,
}


@pytest.fixture(scope="module", params=sorted(LOADERS))
def yaml_loader(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run a module's tests once per loader: every file:line must come out the same."""
    kept = yamlsafe._LOADER
    yamlsafe._LOADER = LOADERS[request.param]
    yield request.param
    yamlsafe._LOADER = kept
