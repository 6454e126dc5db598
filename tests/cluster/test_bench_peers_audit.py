"""`make bench-peers` counts every tool's requests from the API server's audit log: on a
real control plane's log, a window counts one client's requests, by verb, exactly."""

from __future__ import annotations

from pathlib import Path

from bench.peers.audit import AuditLog
from reconciler import localcluster
from reconciler.cluster.client import Cluster, Connection, ResourceType

CONFIGMAPS = ResourceType("", "v1", "ConfigMap", "configmaps", True)


def _client(info: localcluster.ClusterInfo, agent: str) -> Cluster:
    return Cluster.connect(Connection(kubeconfig=info.kubeconfig, user_agent=agent))


def test_a_window_counts_one_clients_requests_by_verb(
    control_plane: localcluster.ClusterInfo, uid: str
) -> None:
    log = AuditLog(Path(control_plane.audit_log), control_plane.kubeconfig)
    tool, other = _client(control_plane, f"bench-tool/{uid}"), _client(control_plane, "bench-other")
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": uid, "namespace": "default"},
    }
    tool.get(CONFIGMAPS, uid, "default")  # before the mark: not counted
    mark = log.mark()
    tool.get(CONFIGMAPS, uid, "default")  # a 404 is a request too
    tool.list(CONFIGMAPS, namespace="default")
    tool.apply(CONFIGMAPS, body, dry_run=True, field_manager="bench")
    tool.apply(CONFIGMAPS, body, field_manager="bench")
    with tool.watch(
        CONFIGMAPS.path("default"), query={"watch": "true", "timeoutSeconds": "1"}, timeout=1
    ) as w:
        for _ in w:  # a watch logs two stages (started, complete): one request
            pass
    other.get(CONFIGMAPS, uid, "default")  # another user agent: not counted

    counts = log.since(mark, user_agent=f"bench-tool/{uid}")

    assert dict(counts.verbs) == {"get": 1, "list": 1, "dry-run": 1, "patch": 1, "watch": 1}
    assert (counts.total, counts.writes) == (5, 1)
    assert log.since(mark, user_agent="bench-other").total == 1
