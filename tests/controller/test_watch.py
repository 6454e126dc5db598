"""Watches against the real API server: events, prompt stop, our writes told apart, and
recovery across an API server restart (connection errors, then 410 Gone and a relist)."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.cluster.client import CONFIGMAPS, Cluster
from reconciler.controller.watch import (
    RESYNC,
    KindWatch,
    WatchEvent,
    WatchSpec,
    WatchTiming,
    is_own_write,
)
from reconciler.localcluster import ClusterInfo
from tests.cluster.engine import gnp
from tests.controller.conftest import StartController
from tests.controller.helpers import (
    GNP,
    NAMESPACE,
    eventually,
    get,
    order_of,
    policy_yaml,
    timed,
)
from tests.controller.tcpproxy import TcpProxy
from tests.source.repos import Upstream

pytestmark = pytest.mark.cluster


class Seen:
    def __init__(self) -> None:
        self.events: list[WatchEvent] = []

    def __call__(self, event: WatchEvent) -> None:
        self.events.append(event)

    def names(self, kind: str) -> list[str]:
        return [e.object["metadata"]["name"] for e in self.events if e.type == kind]


def _cm(name: str, label: str, data: str = "1") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"watch-test": label}},
        "data": {"v": data},
    }


@pytest.fixture
def watch(
    cluster: Cluster, uid: str, reconciler_namespace: str
) -> Iterator[tuple[KindWatch, Seen]]:
    seen = Seen()
    spec = WatchSpec(CONFIGMAPS, reconciler_namespace, label_selector=f"watch-test={uid}")
    w = KindWatch(cluster, spec, seen, timing=WatchTiming(timeout=30), restarts=Counter())
    w.start()
    eventually(w.listed.is_set, timeout=10, what="the first LIST")
    yield w, seen
    w.stop()


def test_events_arrive_label_selected_and_stop_is_prompt(
    watch: tuple[KindWatch, Seen], cluster: Cluster, uid: str
) -> None:
    w, seen = watch
    cluster.apply(CONFIGMAPS, _cm(f"{uid}-a", uid))
    cluster.apply(CONFIGMAPS, _cm(f"{uid}-other", "someone-else"))
    cluster.apply(CONFIGMAPS, _cm(f"{uid}-a", uid, data="2"))
    cluster.delete(CONFIGMAPS, f"{uid}-a", NAMESPACE)
    eventually(lambda: seen.names("DELETED"), timeout=10, what="the delete event")
    assert seen.events[0].type == RESYNC  # the first LIST asks for one look
    assert seen.names("ADDED") == [f"{uid}-a"]
    assert seen.names("MODIFIED") == [f"{uid}-a"]
    assert f"{uid}-other" not in seen.names("ADDED")
    start = time.monotonic()
    w.stop()  # the thread is blocked reading the stream: stop must cut it
    w.join(5)
    assert time.monotonic() - start < 2.0
    assert not w._thread.is_alive()


def test_our_own_apply_is_told_apart_from_an_edit(
    watch: tuple[KindWatch, Seen], cluster: Cluster, uid: str
) -> None:
    _, seen = watch
    cluster.apply(CONFIGMAPS, _cm(f"{uid}-b", uid))
    cluster.request(
        "PATCH",
        CONFIGMAPS.path(NAMESPACE, f"{uid}-b"),
        verb="patch",
        query={"fieldManager": "kubectl-edit"},
        body={"data": {"v": "edited"}},
        content_type="application/merge-patch+json",
    )
    eventually(lambda: len(seen.names("MODIFIED")) == 1, timeout=10, what="the edit")
    added, modified = (e for e in seen.events if e.type != RESYNC)
    assert is_own_write(added, "policy-reconciler")
    assert not is_own_write(modified, "policy-reconciler")


def test_a_too_old_resource_version_is_a_410_then_a_relist_and_a_resync(
    cluster: Cluster, uid: str
) -> None:
    seen = Seen()
    restarts: Counter[str] = Counter()
    spec = WatchSpec(GNP, label_selector=f"watch-test={uid}")
    # Calico's CRDs were installed long after resourceVersion 1: the watch cache says 410.
    w = KindWatch(
        cluster, spec, seen, timing=WatchTiming(timeout=30), restarts=restarts, resume_from="1"
    )
    w.start()
    try:
        eventually(
            lambda: restarts["expired"] == 1 and w.listed.is_set(),
            timeout=10,
            what="410 Gone, then a relist",
        )
        assert [e.type for e in seen.events] == [RESYNC]  # events may have been missed
        body = {**gnp(f"{uid}-w"), "apiVersion": "crd.projectcalico.org/v1"}
        body["metadata"] = {"name": f"default.{uid}-w", "labels": {"watch-test": uid}}
        body["spec"] = {**body["spec"], "types": ["Ingress"]}
        cluster.apply(GNP, body)
        eventually(
            lambda: seen.names("ADDED") == [f"default.{uid}-w"],
            timeout=10,
            what="events flow after the relist",
        )
        assert restarts["error"] == 0
    finally:
        w.stop()


def test_self_heal_survives_the_api_server_going_away_and_coming_back(
    start_controller: StartController,
    upstream: Upstream,
    cluster: Cluster,
    control_plane: ClusterInfo,
    uid: str,
    tmp_path: Path,
) -> None:
    upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh"))})
    host, _, port = control_plane.server.removeprefix("https://").rpartition(":")
    with TcpProxy((host, int(port))) as proxy:
        config = json.loads(Path(control_plane.kubeconfig).read_text())
        config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{proxy.port}"
        kubeconfig = tmp_path / "kubeconfig-via-proxy"
        kubeconfig.write_text(json.dumps(config))
        controller = start_controller(interval=3600, kubeconfig=str(kubeconfig))
        assert controller.runner.wait_idle(runs=1, timeout=30)
        eventually(controller.watches.listening, timeout=10, what="watches started")

        proxy.cut()  # streams reset, new connections refused
        eventually(
            lambda: controller.watches.restarts["error"] >= 2,
            timeout=10,
            what="both watches noticed",
        )
        patch_order(cluster, f"default.{uid}-ssh", 99)  # made while it cannot see
        proxy.restore()
        eventually(
            lambda: order_of(cluster, f"{uid}-ssh") == 10,
            timeout=15,
            what="the edit made during the outage healed",
        )
        eventually(controller.watches.listening, timeout=10, what="watches back")
        patch_order(cluster, f"default.{uid}-ssh", 98)
        _, took = timed(
            lambda: order_of(cluster, f"{uid}-ssh") == 10,
            timeout=15,
            what="healed again, by the watch",
        )
        assert took <= 5.0
        assert controller.last_run is not None
        assert controller.last_run.record.trigger == "watch"  # healed from the event alone
    metrics = get(f"http://127.0.0.1:{controller.metrics_port}/metrics")[1]
    assert 'policy_reconciler_watch_restarts_total{cause="error"}' in metrics


def patch_order(cluster: Cluster, name: str, order: int) -> None:
    cluster.request(
        "PATCH",
        GNP.path("", name),
        verb="patch",
        query={"fieldManager": "kubectl-edit"},
        body={"spec": {"order": order}},
        content_type="application/merge-patch+json",
    )
