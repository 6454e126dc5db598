"""The kubeconfig's credential refresh runs at most once per interval, not per request."""

from __future__ import annotations

from typing import Any

from reconciler.cluster.client import _throttled


class _Configuration:
    """Stands for the client's Configuration: the loader's hook replaces itself on every run,
    as kubernetes.config.kube_config's `_set_config` does."""

    def __init__(self) -> None:
        self.runs = 0
        self.refresh_api_key_hook: Any = self.loader_hook()

    def loader_hook(self) -> Any:
        def hook(configuration: _Configuration) -> None:
            configuration.runs += 1
            configuration.refresh_api_key_hook = configuration.loader_hook()

        return hook


def test_refresh_runs_once_per_interval_and_stays_throttled() -> None:
    config = _Configuration()
    config.refresh_api_key_hook = _throttled(config.refresh_api_key_hook, every=3600)
    throttle = config.refresh_api_key_hook
    for _ in range(100):
        config.refresh_api_key_hook(config)
    assert config.runs == 1
    assert config.refresh_api_key_hook is throttle  # the loader's new hook went inside it


def test_refresh_runs_again_once_the_interval_passed() -> None:
    config = _Configuration()
    config.refresh_api_key_hook = _throttled(config.refresh_api_key_hook, every=0)
    for _ in range(5):
        config.refresh_api_key_hook(config)
    assert config.runs == 5
