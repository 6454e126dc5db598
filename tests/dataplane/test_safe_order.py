"""The connectivity-checked apply order on real packets: two Kubernetes NetworkPolicies
that allow web's clients only together. Either one alone isolates web, so in the kind
order the first write cuts the flow the second allows; the plan bridges it instead.

Every write is held until Felix has rendered it (tests/dataplane/test_node_firewall.py's
`settle`), so each intermediate state is really in force while the probes run.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import pytest

from reconciler import pipeline
from reconciler.cluster.client import Cluster
from reconciler.localcluster import kubectl
from reconciler.localcluster.pods import Pod, add_pod
from reconciler.localcluster.probe import ProbeLoop, listening, wait_verdict
from reconciler.model import ApplyResult, Revision
from reconciler.plan import bridge
from tests.cluster.engine import Repo, k8s_np
from tests.dataplane.helpers import Net, apply_settled

PROBE_TIMEOUT = 1.0
_HOSTS = itertools.count()


@pytest.fixture
def pods(net: Net, uid: str) -> Iterator[dict[str, Pod]]:
    """web (listening on 80) and client in namespace <uid>-a; other in <uid>-b (team=b)."""
    for ns, labels in ((f"{uid}-a", {}), (f"{uid}-b", {"team": "b"})):
        body = {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns, "labels": labels}}  # fmt: skip
        kubectl(net.info, "apply", "-f", "-", stdin=json.dumps(body))
    base = 200 + 2 * next(_HOSTS)  # taken for the whole session; test_pods uses 10-21
    layout = {"web": (f"{uid}-a", "node-2", base), "client": (f"{uid}-a", "node-3", base),
              "other": (f"{uid}-b", "node-3", base + 1)}  # fmt: skip
    made = {
        name: add_pod(net.info, namespace=ns, name=name, node=node, host=host, labels={"app": name})
        for name, (ns, node, host) in layout.items()
    }
    with ExitStack() as stack:
        stack.enter_context(listening(made["web"].netns, made["web"].ip, 80))
        yield made


@pytest.fixture
def policies(tmp_path: Path, uid: str) -> Repo:
    repo = Repo(tmp_path / "repo", uid)
    ns = f"{uid}-a"
    web = {"matchLabels": {"app": "web"}}
    repo.write(
        "web.yaml",
        k8s_np(f"{uid}-from-b", ns, podSelector=web,
               ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"team": "b"}}}]}]),
        k8s_np(f"{uid}-from-client", ns, podSelector=web,
               ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}]}]),
    )  # fmt: skip
    return repo


def _apply(cluster: Cluster, repo: Repo, net: Net) -> ApplyResult:
    """Apply one write at a time, each held until Felix renders it."""
    settings = repo.settings()
    rendered = pipeline.render(repo.root, Revision("dir:test", str(repo.root)), settings)
    planned = pipeline.plan(cluster, rendered, settings)
    assert planned.plan.order.method == "bridged", planned.plan.order
    return apply_settled(net, cluster, planned, settings)


def test_the_bridge_keeps_the_flow_both_states_allow(
    net: Net, dp_cluster: Cluster, pods: dict[str, Pod], policies: Repo
) -> None:
    client, web, other = pods["client"], pods["web"], pods["other"]
    wait_verdict(client.netns, web.ip, 80, allowed=True)  # open: no policy selects web yet
    with ProbeLoop(client.netns, [(web.ip, 80)], interval=0.1, timeout=PROBE_TIMEOUT) as loop:
        result = _apply(dp_cluster, policies, net)
    assert result.ok, result.failed
    assert len(loop.samples) > 10, "the probe loop must cover the whole apply"
    assert loop.failures() == []
    wait_verdict(other.netns, web.ip, 80, allowed=True)  # from-b, in force
    assert [bridge.is_bridge(c.ref) for c in result.done] == [True, True, False, False, True, True]
    settings = policies.settings()
    rendered = pipeline.render(policies.root, Revision("dir:test", "."), settings)
    assert not pipeline.plan(dp_cluster, rendered, settings).plan.has_changes  # bridge gone


def test_negative_control_the_kind_order_cuts_it(
    net: Net, dp_cluster: Cluster, pods: dict[str, Pod], policies: Repo
) -> None:
    """The state the kind order passes through after its first write, held: Felix cuts
    client -> web there (deterministic, where a probe loop over a whole apply could land
    between probes), so the test above can fail. Then the rest of the plan restores it."""
    client, web = pods["client"], pods["web"]
    wait_verdict(client.netns, web.ip, 80, allowed=True)
    settings = policies.settings()
    rendered = pipeline.render(policies.root, Revision("dir:test", str(policies.root)), settings)
    planned = pipeline.plan(dp_cluster, rendered, settings)
    assert planned.plan.order.method == "bridged", planned.plan.order
    naive = [c for c in planned.plan.changes if not bridge.is_bridge(c.ref)]
    first = replace(planned, plan=replace(planned.plan, changes=tuple(naive[:1])))
    assert pipeline.apply(dp_cluster, first, settings).ok
    wait_verdict(client.netns, web.ip, 80, allowed=False)  # the blink, in force
    rest = replace(planned, plan=replace(planned.plan, changes=tuple(naive[1:])))
    assert pipeline.apply(dp_cluster, rest, settings).ok
    wait_verdict(client.netns, web.ip, 80, allowed=True)  # and back at the end
