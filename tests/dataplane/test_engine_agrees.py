"""The connectivity engine agrees with Calico's real dataplane: the example repo's node
firewall is applied to Felix (nodes running Calico's default failsafe ports, which the
engine assumes), each flow is probed for real, and `connectivity eval`'s verdict, read
online from the same cluster, must be the probe's for every flow."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reconciler.cluster.client import Cluster
from reconciler.connectivity import Flavour, Verdict, evaluate, parse_packet, parse_peer
from reconciler.localcluster.probe import listening, verdicts, wait_verdict
from reconciler.observe.connectivity import read_cluster
from reconciler.pipeline.connectivity import world_of
from tests.cluster.engine import Repo, reconcile
from tests.dataplane.helpers import Net, default_failsafe

NODES = ("node-1", "node-2", "node-3")
CALICO = (3, 31)


@pytest.fixture
def failsafe(net: Net) -> Iterator[None]:
    with default_failsafe(net, NODES):
        yield


def test_eval_agrees_with_real_probes_on_every_flow(
    net: Net, dp_cluster: Cluster, repo: Repo, failsafe: None
) -> None:
    assert reconcile(dp_cluster, repo)[1].ok
    admin, outside = net.dp.admin, net.dp.outside
    node1, node2 = net.dp.node("node-1"), net.dp.node("node-2")
    wait_verdict(outside, node1.ip, 8080, allowed=False)  # the host endpoints are enforced
    flows = {  # (probe source netns, engine peer) -> (address, port)
        (admin, "cidr:172.30.0.10"): [(node1.ip, 22), (node1.ip, 6443), (node1.ip, 8080)],
        (outside, "cidr:172.31.0.10"): [(node1.ip, 22), (node1.ip, 6443), (node1.ip, 8080),
                                        (node2.ip, 2379), (node2.ip, 9100)],
        (node2.netns, "node:node-2"): [(node1.ip, 8080), (node1.ip, 22)],
    }  # fmt: skip
    names = {n.ip: n.name for n in net.dp.nodes}
    probes = [(src, ip, "tcp", port) for (src, _), dsts in flows.items() for ip, port in dsts]
    with listening(node2.netns, node2.ip, 2379), listening(node2.netns, node2.ip, 9100):
        real = verdicts(probes)  # (22, 6443 and 8080 listen on every node already)
    live = read_cluster(dp_cluster, calico=CALICO)
    world = world_of(repo.root, live.facts, flavour=Flavour(CALICO), live=live.objects)

    def engine(peer: str, ip: str, port: int) -> bool:
        found = evaluate(
            world, parse_peer(peer), parse_peer(f"node:{names[ip]}"), parse_packet(f"tcp/{port}")
        )
        assert found.verdict is not Verdict.UNKNOWN, found.as_json()
        return found.verdict is Verdict.ALLOW

    model = {
        (src, ip, "tcp", port): engine(peer, ip, port)
        for (src, peer), dsts in flows.items()
        for ip, port in dsts
    }
    assert model == real
    assert any(real.values()) and not all(real.values())  # both verdicts are exercised
