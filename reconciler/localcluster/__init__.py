"""A real, local Kubernetes control plane (etcd + kube-apiserver) for tests and the demo."""

from reconciler.localcluster.build import BuildError, ensure_binaries
from reconciler.localcluster.launcher import (
    ClusterError,
    ClusterInfo,
    current,
    default_state_dir,
    down,
    kubectl,
    up,
)

__all__ = [
    "BuildError",
    "ClusterError",
    "ClusterInfo",
    "current",
    "default_state_dir",
    "down",
    "ensure_binaries",
    "kubectl",
    "up",
]
