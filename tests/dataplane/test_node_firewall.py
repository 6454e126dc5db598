"""The example repo's node firewall on the real dataplane, and the firewall-safe order.

The repo's hosts/ and global/network-sets.yaml are applied as they are, except that the
admin network (a documentation range in the example) becomes the admin namespace's
private range, 172.30.0.0/24.
"""

from __future__ import annotations

from dataclasses import replace

from reconciler import pipeline
from reconciler.cluster.client import Cluster
from reconciler.localcluster.probe import ProbeLoop, probe, verdicts, wait_verdict
from reconciler.model import ApplyResult, Revision
from tests.cluster.engine import Repo
from tests.dataplane.helpers import Net, apply_settled

# A connection that gets through answers in milliseconds; the slack is for a busy test
# machine, so that only a dropped SYN counts as a failure.
PROBE_TIMEOUT = 1.0
# The safe order's probes wait longer: a SYN that a blink drops is sent again after 1 s, so
# a cut of a second or more still fails them, while one answer late on a loaded 2-core
# machine (seen once in CI, 19.7 s into a run) does not.
SAFE_PROBE_TIMEOUT = 2.0


def _apply(cluster: Cluster, repo: Repo, net: Net, *, hosts_first: bool = False) -> ApplyResult:
    """Apply the repo one write at a time, waiting after each until Felix has rendered it,
    so every intermediate state is really in force for a while. `hosts_first` is the
    naive order (host endpoints before their policies), as a kind-blind tool applies."""
    settings = repo.settings()
    rendered = pipeline.render(repo.root, Revision("dir:test", str(repo.root)), settings)
    planned = pipeline.plan(cluster, rendered, settings)
    if hosts_first:
        changes = sorted(planned.plan.changes, key=lambda c: c.ref.kind != "HostEndpoint")
        planned = replace(planned, plan=replace(planned.plan, changes=tuple(changes)))
    return apply_settled(net, cluster, planned, settings)


def _targets(net: Net) -> list[tuple[str, int]]:
    return [(node.ip, port) for node in net.dp.nodes for port in (22, 6443)]


def test_node_firewall_does_what_its_comments_say(
    net: Net, dp_cluster: Cluster, repo: Repo
) -> None:
    result = _apply(dp_cluster, repo, net)
    assert result.ok, result.failed
    admin, outside = net.dp.admin, net.dp.outside
    node1, node2 = net.dp.node("node-1"), net.dp.node("node-2")
    wait_verdict(outside, node1.ip, 22, allowed=False)  # enforced now
    flows = {
        "SSH from the admin network": (admin, node1.ip, "tcp", 22),
        "API server from anywhere": (outside, node1.ip, "tcp", 6443),
        "SSH from outside": (outside, node1.ip, "tcp", 22),
        "any other port from outside": (outside, node1.ip, "tcp", 8080),
        "any other port from the admin network": (admin, node1.ip, "tcp", 8080),
        "node to node, any port": (node2.netns, node1.ip, "tcp", 8080),
    }
    seen = verdicts(list(flows.values()))
    assert {name: seen[flow] for name, flow in flows.items()} == {
        "SSH from the admin network": True,
        "API server from anywhere": True,
        "SSH from outside": False,
        "any other port from outside": False,
        "any other port from the admin network": False,
        "node to node, any port": True,
    }


def test_firewall_safe_order_never_cuts_ssh_or_the_api_server(
    net: Net, dp_cluster: Cluster, repo: Repo
) -> None:
    with ProbeLoop(net.dp.admin, _targets(net), interval=0.1, timeout=SAFE_PROBE_TIMEOUT) as loop:
        result = _apply(dp_cluster, repo, net)
    assert result.ok, result.failed
    assert len(loop.samples) > 50, "the probe loop must cover the whole apply"
    assert loop.failures() == []
    assert not probe(net.dp.outside, net.dp.node("node-1").ip, "tcp", 22)  # it is enforced


def test_negative_control_hosts_first_does_cut_ssh(
    net: Net, dp_cluster: Cluster, repo: Repo
) -> None:
    """The same objects with host endpoints first: the probe sees the cut, so the test
    above can fail."""
    with ProbeLoop(net.dp.admin, _targets(net), interval=0.1, timeout=PROBE_TIMEOUT) as loop:
        result = _apply(dp_cluster, repo, net, hosts_first=True)
    assert result.ok, result.failed
    cut = {s.target for s in loop.failures()}
    assert {f"{n.ip}:22/tcp" for n in net.dp.nodes} <= cut
    assert probe(net.dp.admin, net.dp.node("node-1").ip, "tcp", 22)  # open again at the end
