"""The last good revision stays in force for every trigger mix: while the newest commit
is refused, or the repo cannot be fetched, an out-of-band edit is healed by whatever run
comes next (interval, webhook, retry, resume, alone or merged with a watch's drift), and
a hung git server never delays a heal.

The watch's own debounced heal is pushed out of the way (debounce 60 s), so each test
shows what the triggered run itself does; before the fix each of them left the edit in
place. A run is driven as the worker drives it (`Controller._work`), in this thread."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest

from reconciler import pipeline
from reconciler.applyset import ApplySet
from reconciler.cluster.client import Cluster
from reconciler.controller.status import read_status
from tests.cluster.engine import gnp
from tests.controller.conftest import StartController
from tests.controller.helpers import edit_order, events_for, eventually, get, order_of, policy_yaml
from tests.controller.tcpproxy import TcpProxy
from tests.source.gitserver import GitServer
from tests.source.repos import Upstream

pytestmark = pytest.mark.cluster

BROKEN = "apiVersion: projectcalico.org/v3\nkind: [unclosed\n"


@pytest.mark.parametrize(
    "triggers",
    [
        {"interval"},
        {"webhook"},
        {"retry"},
        {"resumed"},
        {"interval", "drift"},
        {"webhook", "drift"},
    ],
    ids=lambda t: "+".join(sorted(t)),
)
def test_drift_is_healed_by_any_run_while_the_head_is_refused(
    start_controller: StartController,
    upstream: Upstream,
    cluster: Cluster,
    uid: str,
    applyset: ApplySet,
    triggers: set[str],
) -> None:
    upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh"))})
    controller = start_controller(interval=3600, debounce=60)
    assert controller.runner.wait_idle(runs=1, timeout=30)
    upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh", order=50)), "zz.yaml": BROKEN})
    controller._work(frozenset({"webhook"}))  # the head is refused
    edit_order(cluster, f"{uid}-ssh")

    controller._work(frozenset(triggers))

    assert order_of(cluster, f"{uid}-ssh") == 10  # the last good revision, not 99 nor 50
    assert controller.last_run is not None


def test_with_self_heal_off_a_refused_head_heals_nothing(
    start_controller: StartController, upstream: Upstream, cluster: Cluster, uid: str
) -> None:
    """`--no-self-heal` is the user's word: the fallback heal honours it too."""
    upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh"))})
    controller = start_controller(interval=3600, debounce=60)
    controller.config = replace(controller.config, self_heal=False)
    assert controller.runner.wait_idle(runs=1, timeout=30)
    upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh", order=50)), "zz.yaml": BROKEN})
    edit_order(cluster, f"{uid}-ssh")

    controller._work(frozenset({"interval"}))

    assert order_of(cluster, f"{uid}-ssh") == 99


def test_an_unreachable_repo_does_not_stop_the_heal(
    start_controller: StartController, upstream: Upstream, cluster: Cluster, uid: str
) -> None:
    upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh"))})
    with GitServer(upstream.bare.parent) as server:
        controller = start_controller(
            interval=3600, debounce=60, url=f"{server.url}/{upstream.bare.name}"
        )
        assert controller.runner.wait_idle(runs=1, timeout=30)
    edit_order(cluster, f"{uid}-ssh")

    controller._work(frozenset({"interval"}))  # connection refused

    assert order_of(cluster, f"{uid}-ssh") == 10


def test_a_hung_git_server_never_delays_a_heal(
    start_controller: StartController, upstream: Upstream, cluster: Cluster, uid: str
) -> None:
    upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh"))})
    with (
        GitServer(upstream.bare.parent) as server,
        TcpProxy(("127.0.0.1", _port(server.url))) as proxy,
    ):
        controller = start_controller(
            interval=3600,
            debounce=60,
            git_timeout=20,
            url=f"http://127.0.0.1:{proxy.port}/{upstream.bare.name}",
        )
        assert controller.runner.wait_idle(runs=1, timeout=30)
        proxy.hanging = True  # accepts, never answers: the fetch waits for its 20 s timeout
        edit_order(cluster, f"{uid}-ssh")
        work = threading.Thread(
            target=controller._work, args=(frozenset({"interval", "drift"}),), daemon=True
        )
        start = time.monotonic()
        work.start()

        while order_of(cluster, f"{uid}-ssh") != 10 and time.monotonic() - start < 15:
            time.sleep(0.1)
        healed_after = time.monotonic() - start

        assert healed_after < 5, f"healed only after {healed_after:.1f}s (behind the fetch)"
        assert work.is_alive()  # the fetch is still hanging
        proxy.cut()
        work.join(30)


def _port(url: str) -> int:
    return int(url.rpartition(":")[2].partition("/")[0])


def test_a_watch_event_during_a_hung_fetch_is_healed_without_waiting_for_it(
    start_controller: StartController, upstream: Upstream, cluster: Cluster, uid: str
) -> None:
    """The fetch runs on a thread of its own; the worker heals what drifts meanwhile."""
    upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh"))})
    with (
        GitServer(upstream.bare.parent) as server,
        TcpProxy(("127.0.0.1", _port(server.url))) as proxy,
    ):
        controller = start_controller(
            interval=3600, git_timeout=20, url=f"http://127.0.0.1:{proxy.port}/{upstream.bare.name}"
        )
        assert controller.runner.wait_idle(runs=1, timeout=30)
        eventually(controller.watches.listening, timeout=10, what="watches started")
        proxy.hanging = True
        controller.runner.trigger("interval")  # the worker now waits on a hung fetch
        time.sleep(1)
        assert controller.runner.busy_for() > 0.5

        start = time.monotonic()
        edit_order(cluster, f"{uid}-ssh")  # the watch sees it alone, after the fetch began
        eventually(lambda: order_of(cluster, f"{uid}-ssh") == 10, timeout=10, what="healed")

        assert time.monotonic() - start < 5
        assert controller.runner.busy_for() > 0  # still fetching
        proxy.cut()


def test_a_bug_in_a_run_is_recorded_reported_and_retried(
    start_controller: StartController,
    upstream: Upstream,
    cluster: Cluster,
    uid: str,
    applyset: ApplySet,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Any unexpected exception is a failed run like any other (status, Warning Event,
    metric, readiness), never a silent 'reconcile crashed' on every run."""
    upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh"))})
    controller = start_controller(interval=3600, debounce=60)
    assert controller.runner.wait_idle(runs=1, timeout=30)

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(pipeline, "plan", broken)
    controller._work(frozenset({"interval"}))

    record = read_status(cluster, applyset).runs[0]
    assert (record.reason.value, "a bug" in record.message) == ("InternalError", True)
    warning = [e for e in events_for(cluster, applyset.name) if e["type"] == "Warning"]
    assert warning and warning[-1]["reason"] == "InternalError"
    metrics = get(f"http://127.0.0.1:{controller.metrics_port}/metrics")[1]
    assert "policy_reconciler_last_run_failed 1.0" in metrics
    assert get(f"http://127.0.0.1:{controller.metrics_port}/readyz")[0] == 503
    monkeypatch.undo()
    upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh", order=40))})
    eventually(lambda: order_of(cluster, f"{uid}-ssh") == 40, timeout=15, what="the retry")
