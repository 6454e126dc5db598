"""Events are aggregated as client-go's recorder does: the same Event again raises the
first one's count instead of adding a copy (a refused revision retried five times is one
Event with count 5). Against the real API server."""

from __future__ import annotations

import pytest

from reconciler.applyset import ApplySet
from reconciler.cluster.client import EVENTS, Cluster
from reconciler.controller.status import StatusStore
from tests.controller.helpers import events_for

pytestmark = pytest.mark.cluster


def test_a_repeated_event_is_one_event_with_a_count(
    cluster: Cluster, uid: str, reconciler_namespace: str
) -> None:
    applyset = ApplySet(f"{uid}-set", reconciler_namespace)
    store = StatusStore(cluster, applyset, identity="test")
    refused = {"kind": "Warning", "reason": "InvalidRevision", "message": "abc123 refused"}

    for _ in range(5):
        store.event(**refused)
    store.event(kind="Normal", reason="Applied", message="def456 applied")

    seen = [(e["reason"], e["count"]) for e in events_for(cluster, applyset.name)]
    assert seen == [("InvalidRevision", 5), ("Applied", 1)]


def test_an_expired_event_is_created_again(
    cluster: Cluster, uid: str, reconciler_namespace: str
) -> None:
    applyset = ApplySet(f"{uid}-set", reconciler_namespace)
    store = StatusStore(cluster, applyset, identity="test")
    store.event(kind="Warning", reason="InvalidRevision", message="abc123 refused")
    (first,) = events_for(cluster, applyset.name)
    cluster.request(
        "DELETE", EVENTS.path(reconciler_namespace, first["metadata"]["name"]), verb="delete"
    )  # as the API server's one-hour Event TTL does

    store.event(kind="Warning", reason="InvalidRevision", message="abc123 refused")

    assert [(e["reason"], e["count"]) for e in events_for(cluster, applyset.name)] == [
        ("InvalidRevision", 1)
    ]
