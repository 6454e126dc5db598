"""Fixtures for controller tests: a real upstream repo and in-process controllers (threads)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from reconciler import pipeline
from reconciler.applyset import ApplySet
from reconciler.cluster.client import Connection
from reconciler.controller.leader import LeaseConfig
from reconciler.controller.runtime import Controller, ControllerConfig, WebhookConfig
from reconciler.controller.schedule import Timing
from reconciler.controller.watch import WatchTiming
from reconciler.localcluster import ClusterInfo
from reconciler.plan import PlanOptions
from reconciler.source import GitSource, SourceSpec, Verification
from tests.source.repos import Upstream

SECRET = b"hunter2-webhook-secret"  # a test secret: it must never show up in logs or replies
StartController = Callable[..., Controller]


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    return Upstream.create(tmp_path)


@pytest.fixture
def applyset(uid: str, reconciler_namespace: str) -> ApplySet:
    return ApplySet(f"{uid}-set", reconciler_namespace)


@pytest.fixture
def start_controller(
    control_plane: ClusterInfo,
    upstream: Upstream,
    applyset: ApplySet,
    tmp_path: Path,
    uid: str,
    user_agent: str,
) -> Iterator[StartController]:
    """Start a controller thread set on the upstream repo; stopped at teardown."""
    started: list[Controller] = []

    def start(
        *,
        interval: float = 3600,
        verify: Verification | None = None,
        url: str = "",
        lease: bool = False,
        suspend: bool = False,
        agent: str = user_agent,
        identity: str = "",
        kubeconfig: str = "",
        debounce: float = 0.3,
        git_timeout: float = 20,
        skip_checks: frozenset[str] = frozenset(),
        targeted_heal: bool = True,
        **options: Any,
    ) -> Controller:
        config = ControllerConfig(
            settings=pipeline.Settings(
                applyset=applyset, options=PlanOptions(**options), skip_checks=skip_checks
            ),
            identity=identity or f"{uid}-controller",
            timing=Timing(
                interval=interval, retry=0.5, debounce=debounce, debounce_max=max(1.0, debounce)
            ),
            suspend=suspend,
            targeted_heal=targeted_heal,
            webhook=WebhookConfig(port=0, ref="refs/heads/main", secret=SECRET,
                                  address="127.0.0.1"),
            metrics_port=0,
            metrics_address="127.0.0.1",
            lease=LeaseConfig(f"{applyset.name}-leader", applyset.namespace,
                              identity or f"{uid}-controller", duration=4, renew=1, retry=0.5)
            if lease else None,
            watch=WatchTiming(timeout=30, backoff_min=0.2, backoff_max=2),
            shutdown_timeout=10,
        )  # fmt: skip
        spec = SourceSpec(
            url=url or str(upstream.bare),
            cache_dir=tmp_path / "cache",
            verify=verify,
            timeout=git_timeout,
        )
        connection = Connection(kubeconfig=kubeconfig or control_plane.kubeconfig, user_agent=agent)
        controller = Controller(
            config, source=GitSource(spec), connection=connection,
            recall=lambda sha: GitSource(replace(spec, commit=sha)),
        )  # fmt: skip
        controller.start()
        started.append(controller)
        return controller

    yield start
    for controller in started:
        controller.stop()
