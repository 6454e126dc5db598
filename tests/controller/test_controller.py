"""The controller against a real API server and real git: interval, webhook, self-heal,
last good revision, suspend, status, Events and metrics. Controllers run as threads."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest

from reconciler.applyset import ApplySet
from reconciler.cluster.client import Cluster
from reconciler.controller.record import Reason
from reconciler.controller.status import read_status
from reconciler.source import Verification
from tests.audit import AuditLog
from tests.cluster.engine import gnp
from tests.controller.conftest import SECRET, StartController
from tests.controller.helpers import (
    GNP,
    annotate_suspend,
    events_for,
    eventually,
    get,
    github_push,
    order_of,
    policy_yaml,
    reasons,
    settle,
    timed,
)
from tests.source.gitserver import GitServer
from tests.source.repos import Signer, Upstream
from tests.source.sshd import keygen

pytestmark = pytest.mark.cluster


def _hook(controller: Any) -> str:
    return f"http://127.0.0.1:{controller.webhook_port}/hook"


def _metrics(controller: Any) -> str:
    return get(f"http://127.0.0.1:{controller.metrics_port}/metrics")[1]


def _first_run(controller: Any) -> None:
    assert controller.runner.wait_idle(runs=1, timeout=30), "the startup run never finished"


def test_a_commit_is_applied_within_one_interval(
    start_controller: StartController,
    upstream: Upstream,
    cluster: Cluster,
    uid: str,
    applyset: ApplySet,
) -> None:
    upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh"))}, message="first")
    interval = 3.0
    start_controller(interval=interval)
    eventually(lambda: order_of(cluster, f"{uid}-ssh") == 10, timeout=30, what="startup apply")

    upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh", order=20))}, message="second")
    _, took = timed(
        lambda: order_of(cluster, f"{uid}-ssh") == 20,
        timeout=4 * interval,
        what="the new commit applied by the interval",
    )
    assert took <= interval * 1.1 + 2.0  # one interval plus its jitter, plus the run itself
    # The run that wrote the update was the interval's (a drift run after it, say from a
    # watch restart, may be the last one, and writes nothing). Its record is written after
    # the apply: wait for it.
    writers = eventually(
        lambda: [r for r in read_status(cluster, applyset).runs if r.written.get("update")],
        timeout=10,
        what="the writing run recorded",
    )
    assert [r.trigger for r in writers] == ["interval"]


def test_signed_webhook_push_applies_within_two_seconds_and_bad_signatures_get_401(
    start_controller: StartController,
    upstream: Upstream,
    cluster: Cluster,
    uid: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh"))})
    controller = start_controller(interval=3600)
    _first_run(controller)
    caplog.set_level(logging.INFO)
    upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh", order=30))})
    runs = controller.runner.runs

    status, body = github_push(_hook(controller), b"not-the-secret")
    assert status == 401 and body["result"] == "unauthorized"
    status, _ = github_push(_hook(controller), None)  # no signature at all
    assert status == 401
    status, body = github_push(_hook(controller), SECRET, ref="refs/heads/feature")
    assert status == 202 and "refs/heads/feature" in body["reason"]
    assert controller.runner.runs == runs and order_of(cluster, f"{uid}-ssh") == 10

    status, body = github_push(_hook(controller), SECRET)
    assert status == 200 and body["result"] == "triggered"
    _, took = timed(
        lambda: order_of(cluster, f"{uid}-ssh") == 30, timeout=10, what="the pushed commit applied"
    )
    assert took <= 2.0
    assert SECRET.decode() not in caplog.text
    assert "refused: bad or missing signature" in caplog.text


def test_out_of_band_edit_is_reverted_within_5s_with_an_event_naming_the_manager(
    start_controller: StartController,
    upstream: Upstream,
    cluster: Cluster,
    uid: str,
    applyset: ApplySet,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="reconciler")
    upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh"), gnp(f"{uid}-web", order=11))})
    controller = start_controller(interval=3600)
    _first_run(controller)
    eventually(controller.watches.listening, timeout=10, what="watches started")
    settle(controller)
    outside = "change seen outside a run"
    assert not [r for r in caplog.records if outside in r.getMessage()]  # startup is quiet

    cluster.request(
        "PATCH",
        GNP.path("", f"default.{uid}-ssh"),
        verb="patch",
        query={"fieldManager": "kubectl-edit"},
        body={"spec": {"order": 99}},
        content_type="application/merge-patch+json",
    )
    _, took = timed(
        lambda: order_of(cluster, f"{uid}-ssh") == 10, timeout=15, what="the edit reverted"
    )
    assert took <= 5.0
    assert [r for r in caplog.records if outside in r.getMessage()]  # a real edit is logged

    def healed_event() -> dict[str, Any] | None:
        found = [e for e in events_for(cluster, applyset.name) if e["reason"] == "DriftHealed"]
        return found[-1] if found else None

    event = eventually(healed_event, timeout=10, what="a DriftHealed event")
    assert event["type"] == "Normal"
    assert (
        f"healed drift on GlobalNetworkPolicy/{uid}-ssh made by kubectl-edit at 20"
        in (event["message"])
    )
    assert event["involvedObject"]["kind"] == "ConfigMap"
    assert event["involvedObject"]["uid"]  # so `kubectl describe configmap` shows it
    assert 'policy_reconciler_drift_detected_total{kind="GlobalNetworkPolicy"} 1.0' in (
        _metrics(controller)
    )
    # A deletion is healed too, and named as such.
    cluster.delete(GNP, f"default.{uid}-web")
    eventually(lambda: order_of(cluster, f"{uid}-web") == 11, timeout=15, what="recreated")
    eventually(
        lambda: any(
            "deleted outside Git" in e["message"] for e in events_for(cluster, applyset.name)
        ),
        timeout=10,
        what="an event about the deletion",
    )


def test_self_heal_does_not_loop_and_steady_state_writes_nothing(
    start_controller: StartController,
    upstream: Upstream,
    cluster: Cluster,
    uid: str,
    audit: AuditLog,
    user_agent: str,
) -> None:
    upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-a"), gnp(f"{uid}-b", order=12))})
    controller = start_controller(interval=3600)
    _first_run(controller)
    eventually(controller.watches.listening, timeout=10, what="watches started")
    # Our own writes and the watches' first LIST cause at most a few follow-up runs...
    settled = settle(controller)
    assert settled <= 3
    assert controller.last_run is not None
    assert controller.last_run.record.reason is Reason.UP_TO_DATE
    # ...and a no-op run writes nothing at all (status included), and causes no further run.
    start = audit.mark()
    github_push(_hook(controller), SECRET)
    assert controller.runner.wait_idle(runs=settled + 1, timeout=20)
    requests = audit.requests(user_agent=user_agent, since=start)
    assert [r for r in requests if r.is_write or r.dry_run] == []
    assert settle(controller) == settled + 1


def test_a_bad_commit_is_refused_and_the_last_good_revision_stays_in_force(
    start_controller: StartController,
    upstream: Upstream,
    cluster: Cluster,
    uid: str,
    applyset: ApplySet,
    audit: AuditLog,
    user_agent: str,
) -> None:
    good = upstream.commit(
        {"keep.yaml": policy_yaml(gnp(f"{uid}-keep")), "gone.yaml": policy_yaml(gnp(f"{uid}-gone"))}
    )
    controller = start_controller(interval=3600)
    _first_run(controller)
    runs = controller.runner.runs
    bad = upstream.commit(
        {"keep.yaml": policy_yaml(gnp(f"{uid}-keep", order=50)),
         "zz-bad.yaml": "apiVersion: projectcalico.org/v3\nkind: [unclosed\n"},
        remove=["gone.yaml"],
    )  # fmt: skip
    start = audit.mark()
    github_push(_hook(controller), SECRET)
    assert controller.runner.wait_idle(runs=runs + 1, timeout=20)

    writes = [
        r
        for r in audit.requests(user_agent=user_agent, since=start)
        if r.is_write and r.resource not in ("configmaps", "events")
    ]
    assert writes == []  # nothing written, nothing pruned
    assert order_of(cluster, f"{uid}-keep") == 10 and order_of(cluster, f"{uid}-gone") == 10
    record = read_status(cluster, applyset).runs[0]
    assert record.reason is Reason.INVALID and record.revision == bad
    assert "zz-bad.yaml" in " ".join(record.errors)
    assert good[:12] in record.message  # names the revision that stays in force
    warning = events_for(cluster, applyset.name)[-1]
    assert (warning["type"], warning["reason"]) == ("Warning", "InvalidRevision")
    base = f"http://127.0.0.1:{controller.metrics_port}"
    status, body = get(f"{base}/readyz")
    assert (status, "[-]revision failed: InvalidRevision" in body) == (503, True), body
    assert get(f"{base}/readyz?exclude=revision&exclude=suspended")[0] == 200  # the kubelet's
    refused = _metrics(controller)
    assert 'policy_reconciler_reconcile_runs_total{reason="InvalidRevision",result="refused"}' in (
        refused
    )
    assert "policy_reconciler_last_run_failed 1.0" in refused
    # Self-heal enforces the last good revision, not the refused one.
    cluster.request(
        "PATCH",
        GNP.path("", f"default.{uid}-keep"),
        verb="patch",
        query={"fieldManager": "kubectl-edit"},
        body={"spec": {"order": 77}},
        content_type="application/merge-patch+json",
    )
    eventually(
        lambda: order_of(cluster, f"{uid}-keep") == 10,
        timeout=15,
        what="healed back to the last good revision",
    )
    assert order_of(cluster, f"{uid}-gone") == 10


def test_after_a_restart_self_heal_enforces_the_applied_revision_not_a_refused_head(
    start_controller: StartController,
    upstream: Upstream,
    cluster: Cluster,
    uid: str,
    applyset: ApplySet,
) -> None:
    upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh"))})
    first = start_controller(interval=3600)
    _first_run(first)
    first.stop()
    upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh", order=50)),
                     "zz.yaml": "kind: [broken\n"})  # fmt: skip
    second = start_controller(interval=3600)  # a new process knows only the status record
    _first_run(second)
    assert reasons(cluster, applyset)[0] == "InvalidRevision"
    eventually(second.watches.listening, timeout=10, what="watches started")
    cluster.request("PATCH", GNP.path("", f"default.{uid}-ssh"), verb="patch",
                    query={"fieldManager": "kubectl-edit"}, body={"spec": {"order": 99}},
                    content_type="application/merge-patch+json")  # fmt: skip
    eventually(lambda: order_of(cluster, f"{uid}-ssh") == 10, timeout=10,
               what="healed to the applied revision")  # fmt: skip


def test_an_unreachable_repo_prunes_nothing_and_is_reported(
    start_controller: StartController,
    upstream: Upstream,
    cluster: Cluster,
    uid: str,
    applyset: ApplySet,
) -> None:
    upstream.commit({"a.yaml": policy_yaml(gnp(f"{uid}-a"), gnp(f"{uid}-b"))})
    with GitServer(upstream.bare.parent) as server:
        controller = start_controller(interval=3600, url=f"{server.url}/{upstream.bare.name}")
        _first_run(controller)
    upstream.commit({"a.yaml": policy_yaml(gnp(f"{uid}-a"))})  # would prune b, if fetched
    runs = controller.runner.runs
    github_push(_hook(controller), SECRET)  # the git server is gone: connection refused
    # The failure is retried with backoff (0.5 s, 1 s, 2 s ...) and reported once.
    eventually(lambda: controller.runner.runs >= runs + 3, timeout=15, what="retries")
    assert order_of(cluster, f"{uid}-a") == 10 and order_of(cluster, f"{uid}-b") == 10
    recorded = reasons(cluster, applyset)
    assert recorded[0] == "RepoUnreachable" and recorded.count("RepoUnreachable") == 1
    warnings = [e for e in events_for(cluster, applyset.name) if e["type"] == "Warning"]
    assert [e["reason"] for e in warnings] == ["RepoUnreachable"]
    assert server.url.rpartition(":")[2] in warnings[0]["message"]  # names the repo
    assert 'policy_reconciler_git_fetch_errors_total{reason="RepoUnreachable"}' in (
        _metrics(controller)
    )


def test_a_vanished_repo_recovers_when_it_returns(
    start_controller: StartController,
    upstream: Upstream,
    cluster: Cluster,
    uid: str,
    applyset: ApplySet,
) -> None:
    upstream.commit({"a.yaml": policy_yaml(gnp(f"{uid}-a"))})
    controller = start_controller(interval=3600)
    _first_run(controller)
    moved = upstream.bare.with_name("moved.git")
    upstream.bare.rename(moved)
    github_push(_hook(controller), SECRET)
    eventually(
        lambda: reasons(cluster, applyset)[0] == "RepoNotFound",
        timeout=10,
        what="the failure recorded",
    )
    upstream.commit({"a.yaml": policy_yaml(gnp(f"{uid}-a", order=60))}, push=False)
    moved.rename(upstream.bare)
    upstream.push()
    # No webhook, no interval: the retry (with backoff) finds it back.
    eventually(lambda: order_of(cluster, f"{uid}-a") == 60, timeout=15, what="recovered")


def test_suspend_by_annotation_pauses_and_resumes(
    start_controller: StartController,
    upstream: Upstream,
    cluster: Cluster,
    uid: str,
    applyset: ApplySet,
    audit: AuditLog,
    user_agent: str,
) -> None:
    upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh"))})
    controller = start_controller(interval=3600)
    _first_run(controller)
    annotate_suspend(cluster, applyset, "true")
    eventually(
        lambda: reasons(cluster, applyset)[0] == "Suspended",
        timeout=10,
        what="status shows suspended",
    )
    upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh", order=40))})
    start = audit.mark()
    runs = controller.runner.runs
    github_push(_hook(controller), SECRET)
    assert controller.runner.wait_idle(runs=runs + 1, timeout=20)
    assert order_of(cluster, f"{uid}-ssh") == 10
    writes = [r for r in audit.requests(user_agent=user_agent, since=start) if r.is_write]
    assert writes == []
    assert "policy_reconciler_suspended 1.0" in _metrics(controller)
    status, body = get(f"http://127.0.0.1:{controller.metrics_port}/readyz")
    assert (status, "[-]suspended failed" in body) == (503, True), body

    annotate_suspend(cluster, applyset, None)  # resumes at once, without waiting for the interval
    eventually(lambda: order_of(cluster, f"{uid}-ssh") == 40, timeout=10, what="resumed")


def test_suspend_flag_fetches_and_writes_nothing(
    start_controller: StartController,
    upstream: Upstream,
    cluster: Cluster,
    uid: str,
    audit: AuditLog,
    user_agent: str,
) -> None:
    upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh"))})
    start = audit.mark()
    controller = start_controller(interval=3600, suspend=True)
    _first_run(controller)
    assert controller.last_run is not None
    assert controller.last_run.record.reason is Reason.SUSPENDED
    assert order_of(cluster, f"{uid}-ssh") is None
    writes = [
        (r.resource, r.verb)
        for r in audit.requests(user_agent=user_agent, since=start)
        if r.is_write
    ]
    assert {resource for resource, _ in writes} <= {"configmaps", "events"}  # status only


def test_metrics_health_and_readiness(
    start_controller: StartController, upstream: Upstream, uid: str
) -> None:
    upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh"))})
    controller = start_controller(interval=3600)
    _first_run(controller)
    base = f"http://127.0.0.1:{controller.metrics_port}"
    assert get(f"{base}/healthz")[0] == 200
    assert get(f"{base}/readyz")[0] == 200
    eventually(controller.watches.listening, timeout=10, what="watches started")
    text = _metrics(controller)
    assert controller.last_run is not None
    revision = controller.last_run.record.revision
    for line in (
        'policy_reconciler_reconcile_runs_total{reason="Applied",result="applied"} 1.0',
        'policy_reconciler_objects_written_total{action="create"} 1.0',
        f'policy_reconciler_applied_revision_info{{revision="{revision}"}} 1.0',
        "policy_reconciler_leader 1.0",
        'policy_reconciler_reconcile_duration_seconds_count{result="applied"} 1.0',
    ):
        assert line in text
    assert re.search(r'policy_reconciler_api_requests_total\{code="20[01]",verb="apply"\}', text)
    assert re.search(r'policy_reconciler_api_requests_total\{code="200",verb="watch"\}', text)
    assert "policy_reconciler_applied_revision_timestamp_seconds" in text
    assert "policy_reconciler_last_run_failed 0.0" in text
    assert re.search(r"policy_reconciler_last_success_timestamp_seconds \d", text)
    assert 'policy_reconciler_build_info{python="' in text and 'version="0.1.0"' in text
    assert "_created" not in text  # one series per counter, not two


def test_an_unsigned_commit_is_refused_under_verification(
    start_controller: StartController,
    upstream: Upstream,
    cluster: Cluster,
    uid: str,
    applyset: ApplySet,
    tmp_path: Path,
) -> None:
    key = keygen(tmp_path / "signer", "signer")
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f"release@example.com {Path(f'{key}.pub').read_text()}")
    signer = Signer(("-c", "gpg.format=ssh", "-c", f"user.signingkey={key}"), {})
    upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh"))}, signer=signer)
    controller = start_controller(interval=3600, verify=Verification(mode="ssh", keys=allowed))
    eventually(lambda: order_of(cluster, f"{uid}-ssh") == 10, timeout=30, what="signed applied")

    unsigned = upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh", order=66))})
    runs = controller.runner.runs
    github_push(_hook(controller), SECRET)
    assert controller.runner.wait_idle(runs=runs + 1, timeout=20)
    assert order_of(cluster, f"{uid}-ssh") == 10
    record = read_status(cluster, applyset).runs[0]
    assert record.reason is Reason.SIGNATURE
    assert unsigned[:7] in record.message
    warning = events_for(cluster, applyset.name)[-1]
    assert (warning["type"], warning["reason"]) == ("Warning", "SignatureRefused")
