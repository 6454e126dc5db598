"""The real node's names and addresses (`local-cluster up --node`): valid, per state dir."""

from __future__ import annotations

from pathlib import Path

from reconciler.localcluster.launcher import ClusterInfo
from reconciler.localcluster.node import plan_for


def _info(state_dir: Path) -> ClusterInfo:
    return ClusterInfo(str(state_dir), "", "https://127.0.0.1:6443", "", "", "", 1, 2)


def test_interface_names_fit_linux_and_addresses_are_private(tmp_path: Path) -> None:
    plan = plan_for(_info(tmp_path))
    assert len(plan.host_veth) <= 15  # IFNAMSIZ - 1: a longer name fails `ip link add`
    assert 20 <= plan.index < 250
    assert plan.node_ip == f"10.99.{plan.index}.1" == plan.name
    assert plan.host_ip == f"10.99.{plan.index}.254"
    assert plan.api_port == 6443
    assert "127.0.0.1:6443" in plan.dnat_host()


def test_two_state_dirs_get_two_namespaces(tmp_path: Path) -> None:
    one, two = plan_for(_info(tmp_path / "a")), plan_for(_info(tmp_path / "b"))
    assert one.netns != two.netns
    assert one.host_veth != two.host_veth
