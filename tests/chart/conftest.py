"""Chart tests use the Helm built from Go modules with the local control plane."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import yaml

from reconciler import localcluster
from reconciler.applyset import ApplySet
from reconciler.localcluster import ClusterInfo, kubectl
from tests.chart.helm import CHART, Release, run, value_args


@pytest.fixture(scope="session")
def helm() -> str:
    """The helm binary alone: rendering needs no API server."""
    bins = localcluster.ensure_binaries(lambda m: print(m, file=sys.stderr))
    return str(Path(bins) / "helm")


Install = Callable[..., Release]


@pytest.fixture(scope="session")
def install(control_plane: ClusterInfo) -> Install:
    """`helm upgrade --install` a release `<prefix>-policy-reconciler` in namespace
    `<prefix>-fw` (labelled for Pod Security `restricted`), ApplySet `<prefix>-set`."""

    def install(prefix: str, *values: str, sets: Sequence[str] = ()) -> Release:
        namespace, name = f"{prefix}-fw", f"{prefix}-policy-reconciler"
        applyset = ApplySet(f"{prefix}-set", namespace)
        kubectl(control_plane, "apply", "-f", "-", stdin=_namespace(namespace))
        proc = run(
            control_plane.helm, "upgrade", "--install", name, str(CHART),
            "--namespace", namespace, "--kubeconfig", control_plane.kubeconfig,
            *value_args(values, [f"applySet.name={applyset.name}", *sets]),
        )  # fmt: skip
        return Release(namespace, name, applyset, proc.stdout + proc.stderr)

    return install


@pytest.fixture(scope="session")
def release(install: Install) -> Release:
    """The HA install (two replicas: leader election and its Lease) most tests share."""
    return install("cha", "ha-values.yaml")


def _namespace(name: str) -> str:
    labels = {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/warn": "restricted",
    }
    return yaml.safe_dump(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}
    )
