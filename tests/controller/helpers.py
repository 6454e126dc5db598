"""Helpers for controller tests: polling with deadlines, repo content, webhook requests."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import yaml

from reconciler.applyset import SUSPEND, ApplySet
from reconciler.cluster.client import CONFIGMAPS, EVENTS, Cluster, ResourceType
from reconciler.controller.status import read_status

T = TypeVar("T")
GNP = ResourceType(
    "crd.projectcalico.org", "v1", "GlobalNetworkPolicy", "globalnetworkpolicies", False
)
HEP = ResourceType("crd.projectcalico.org", "v1", "HostEndpoint", "hostendpoints", False)
NAMESPACE = "policy-reconciler"


def eventually(
    probe: Callable[[], T | None], *, timeout: float, what: str, every: float = 0.05
) -> T:
    """Poll until `probe` returns something truthy; bounded by `timeout`."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"not within {timeout}s: {what} (last: {last!r})")


def settle(controller: Any, quiet: float = 2.0) -> int:
    """Wait until no run has started for `quiet` seconds (the debounce is 0.3-1 s)."""
    seen, since = controller.runner.runs, time.monotonic()

    def quiet_enough() -> bool:
        nonlocal seen, since
        runs = controller.runner.runs
        if runs != seen or controller.runner.busy_for():
            seen, since = runs, time.monotonic()
        return time.monotonic() - since >= quiet

    eventually(quiet_enough, timeout=30, what="the controller to go quiet")
    return int(seen)


def holds(probe: Callable[[], object], *, seconds: float, what: str) -> None:
    """Assert `probe` stays truthy for `seconds` (for "this must not happen" checks)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert probe(), f"no longer true: {what}"
        time.sleep(0.05)


def timed(probe: Callable[[], T | None], *, timeout: float, what: str) -> tuple[T, float]:
    start = time.monotonic()
    value = eventually(probe, timeout=timeout, what=what)
    return value, time.monotonic() - start


def policy_yaml(*docs: Mapping[str, Any]) -> str:
    return yaml.safe_dump_all([dict(d) for d in docs], sort_keys=False)


def reasons(cluster: Cluster, applyset: ApplySet) -> list[str]:
    """The recorded runs' reasons, newest first."""
    return [r.reason.value for r in read_status(cluster, applyset).runs]


def annotate_suspend(cluster: Cluster, applyset: ApplySet, value: str | None) -> None:
    """`kubectl annotate` of the suspend annotation on the ApplySet parent (None removes it)."""
    cluster.request(
        "PATCH",
        CONFIGMAPS.path(applyset.namespace, applyset.name),
        verb="patch",
        query={"fieldManager": "kubectl-annotate"},
        body={"metadata": {"annotations": {SUSPEND: value}}},
        content_type="application/merge-patch+json",
    )


def edit_order(cluster: Cluster, name: str, order: int = 99) -> None:
    """An out-of-band edit of GNP `default.<name>`, as `kubectl edit` makes it."""
    cluster.request(
        "PATCH",
        GNP.path("", f"default.{name}"),
        verb="patch",
        query={"fieldManager": "kubectl-edit"},
        body={"spec": {"order": order}},
        content_type="application/merge-patch+json",
    )


def order_of(cluster: Cluster, name: str) -> int | None:
    live = cluster.get(GNP, f"default.{name}")
    return None if live is None else int(live["spec"]["order"])


def events_for(cluster: Cluster, applyset_name: str) -> list[dict[str, Any]]:
    """Events about the ApplySet parent, oldest first."""
    page = cluster.request(
        "GET",
        EVENTS.path(NAMESPACE),
        verb="list",
        query={"fieldSelector": f"involvedObject.name={applyset_name}"},
    )
    return sorted(page.get("items", []), key=lambda e: int(e["metadata"]["resourceVersion"]))


def github_push(
    url: str,
    secret: bytes | None,
    *,
    ref: str = "refs/heads/main",
    event: str = "push",
    signature: str | None = None,
    after: str = "",
) -> tuple[int, dict[str, Any]]:
    """A push as GitHub sends it: every push has a new `after` sha and delivery id."""
    after = after or secrets.token_hex(20)
    body = json.dumps({"ref": ref, "after": after, "repository": {"name": "p"}}).encode()
    headers = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "Content-Type": "application/json",
    }
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    elif secret is not None:
        headers["X-Hub-Signature-256"] = (
            "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        )
    return post(url, body, headers)


def post(url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
