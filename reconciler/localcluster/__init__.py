"""A real, local Kubernetes control plane (etcd + kube-apiserver) for tests and the demo,
optionally with Calico's API server and Felix (one network namespace per node)."""

from reconciler.localcluster.build import BuildError, ensure_binaries
from reconciler.localcluster.calico_apiserver import CalicoApiServerError
from reconciler.localcluster.dataplane import Dataplane, DataplaneError
from reconciler.localcluster.launcher import (
    ClusterError,
    ClusterInfo,
    current,
    default_state_dir,
    down,
    kubectl,
    up,
)
from reconciler.localcluster.node import NodeError

# Everything `up` can raise for a reason a user can act on.
ERRORS = (BuildError, ClusterError, CalicoApiServerError, DataplaneError, NodeError)

__all__ = [
    "ERRORS",
    "BuildError",
    "CalicoApiServerError",
    "ClusterError",
    "ClusterInfo",
    "Dataplane",
    "DataplaneError",
    "NodeError",
    "current",
    "default_state_dir",
    "down",
    "ensure_binaries",
    "kubectl",
    "up",
]
