"""The chart's own NetworkPolicy, rendered by `helm template` and enforced by Felix on real
packets: the reconciler's pod reaches DNS, the API server and the git host on their ports
and nothing else; only the webhook port (from anywhere) and the metrics port (from the
monitoring namespace) reach it.

The pods are Felix workload endpoints in network namespaces (localcluster/pods.py) standing
in for the reconciler, the API server, the git host and CoreDNS; the real pod on a real node
(tests/e2e) runs on the bridge CNI, which enforces no policy.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from reconciler.localcluster import kubectl
from reconciler.localcluster.pods import Pod, add_pod
from reconciler.localcluster.probe import listening, verdicts
from tests.chart import helm
from tests.dataplane.helpers import Net

GIT_PORT, API_PORTS, WEBHOOK, METRICS, OTHER = 8443, (443, 6443), 9292, 9090, 8080
# (namespace suffix or a namespace, node, host, labels, TCP ports it listens on)
LAYOUT: dict[str, tuple[str, str, int, dict[str, str], tuple[int, ...]]] = {
    "reconciler": ("pr", "node-2", 100, {}, (WEBHOOK, METRICS, OTHER)),
    "api": ("infra", "node-1", 100, {}, (*API_PORTS, 80)),
    "git": ("infra", "node-3", 100, {}, (GIT_PORT, 443)),
    "other": ("infra", "node-3", 101, {}, (GIT_PORT, 443)),
    "dns": ("kube-system", "node-1", 101, {"k8s-app": "kube-dns"}, (53,)),
    "fake-dns": ("infra", "node-1", 102, {"k8s-app": "kube-dns"}, (53,)),
    "monitoring": ("monitoring", "node-3", 102, {}, ()),
    "client": ("infra", "node-1", 103, {}, ()),
}


def _namespace(layout_ns: str, uid: str) -> str:
    return layout_ns if layout_ns == "kube-system" else f"{uid}-{layout_ns}"


def _policy(net: Net, tmp_path: Path, pods: dict[str, Pod], uid: str) -> dict[str, Any]:
    values = tmp_path / "values.yaml"
    values.write_text(json.dumps({
        "git": {"repo": "https://git.example/policy.git"},
        "webhook": {"enabled": True, "port": WEBHOOK, "secret": {"existingSecret": "webhook"}},
        "metrics": {"port": METRICS},
        "networkPolicy": {
            "metricsFrom": [{"namespaceSelector": {"matchLabels": {
                "kubernetes.io/metadata.name": f"{uid}-monitoring"}}}],
            "apiServer": {"cidrs": [f"{pods['api'].ip}/32"], "ports": list(API_PORTS)},
            "git": {"cidrs": [f"{pods['git'].ip}/32"], "ports": [GIT_PORT]},
        },
    }))  # fmt: skip
    rendered = helm.template(net.info.helm, values, namespace=f"{uid}-pr")
    return rendered.one("NetworkPolicy")


@pytest.fixture
def pods(net: Net, uid: str, tmp_path: Path) -> Iterator[dict[str, Pod]]:
    labels = _selector_labels(net, tmp_path)
    for ns in {_namespace(n, uid) for n, *_ in LAYOUT.values()}:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
        kubectl(net.info, "apply", "-f", "-", stdin=json.dumps(body))
    made = {}
    for name, (ns, node, host, extra, _) in LAYOUT.items():
        own = labels if name == "reconciler" else extra
        namespace = _namespace(ns, uid)
        made[name] = add_pod(
            net.info, namespace=namespace, name=f"{uid}-{name}", node=node, host=host, labels=own
        )
    with ExitStack() as stack:
        for name, (*_, ports) in LAYOUT.items():
            pod = made[name]
            for port in ports:
                stack.enter_context(listening(pod.netns, pod.ip, port))
            if name == "dns":
                stack.enter_context(listening(pod.netns, pod.ip, 53, "udp"))
        yield made


def _selector_labels(net: Net, tmp_path: Path) -> dict[str, str]:
    """The labels the chart's Deployment gives its pod (what the policy must select)."""
    rendered = helm.template(net.info.helm, sets=["git.repo=https://git.example/policy.git"])
    template = rendered.one("Deployment")["spec"]["template"]["metadata"]["labels"]
    return dict(template)


def _flows(pods: dict[str, Pod]) -> dict[tuple[str, str, str, int], bool]:
    """Every probe, and what the chart's policy must answer."""
    out = {
        ("reconciler", "api", "tcp", 443): True,
        ("reconciler", "api", "tcp", 6443): True,
        ("reconciler", "api", "tcp", 80): False,  # an API server address, another port
        ("reconciler", "git", "tcp", GIT_PORT): True,
        ("reconciler", "git", "tcp", 443): False,  # the git host, not its configured port
        ("reconciler", "other", "tcp", GIT_PORT): False,  # the git port, outside its CIDRs
        ("reconciler", "other", "tcp", 443): False,  # an API port, outside its CIDRs
        ("reconciler", "dns", "tcp", 53): True,
        ("reconciler", "dns", "udp", 53): True,
        ("reconciler", "fake-dns", "tcp", 53): False,  # kube-dns label, not in kube-system
        ("client", "reconciler", "tcp", WEBHOOK): True,
        ("client", "reconciler", "tcp", METRICS): False,  # metrics: from monitoring only
        ("monitoring", "reconciler", "tcp", METRICS): True,
        ("client", "reconciler", "tcp", OTHER): False,
        ("monitoring", "reconciler", "tcp", OTHER): False,
    }
    assert {name for flow in out for name in flow[:2]} <= set(pods)  # pods of the layout
    return out


def _probe(pods: dict[str, Pod], flows: dict[tuple[str, str, str, int], bool]) -> dict[Any, bool]:
    real = [(pods[src].netns, pods[dst].ip, proto, port) for src, dst, proto, port in flows]
    answers = verdicts(real, timeout=1.0)
    return {flow: answers[r] for flow, r in zip(flows, real, strict=True)}


def _settled(pods: dict[str, Pod], want: dict[tuple[str, str, str, int], bool]) -> dict[Any, bool]:
    """Probe until the answers are `want` (Felix programs new pods and policies a moment
    after they are written, later under load) or 60 s pass; the last answers."""
    deadline = time.monotonic() + 60
    while (got := _probe(pods, want)) != want and time.monotonic() < deadline:
        time.sleep(0.5)
    return got


def test_the_charts_networkpolicy_allows_what_the_pod_needs_and_nothing_else(
    net: Net, pods: dict[str, Pod], tmp_path: Path, uid: str
) -> None:
    flows = _flows(pods)
    # Negative control: with no policy every probe answers, so each denial below is the
    # policy's, not a missing listener or route.
    everything = dict.fromkeys(flows, True)
    assert _settled(pods, everything) == everything

    policy = _policy(net, tmp_path, pods, uid)
    kubectl(net.info, "apply", "-f", "-", stdin=json.dumps(policy))
    try:
        assert _settled(pods, flows) == flows
    finally:
        kubectl(net.info, "delete", "-f", "-", stdin=json.dumps(policy))
