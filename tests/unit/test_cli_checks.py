"""`plan --offline` with ConnectivityChecks: exit codes, text, JSON, --skip-checks, --base."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

from click.testing import CliRunner, Result

from reconciler import pipeline
from reconciler.cli import main
from reconciler.model import Revision
from reconciler.observe import Observed
from reconciler.observe.inventory_file import read_inventory

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "example-repo"
INVENTORY = str(ROOT / "examples" / "inventory.yaml")
SSH_RULE = """      source:
        selector: network-set == 'admin-networks'
      destination:
        ports:
          - 22"""
NODES_NET = "          - 10.240.0.0/16 # nodes\n"


def plan(*args: str) -> Result:
    return CliRunner().invoke(main, ["plan", *args, "--offline", "--inventory", INVENTORY])


def edited(tmp_path: Path, old: str, new: str) -> Path:
    """example-repo with one edit to hosts/node-firewall.yaml."""
    head = tmp_path / "head"
    shutil.copytree(EXAMPLE, head)
    path = head / "hosts" / "node-firewall.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    return head


def cut_kubelet(tmp_path: Path) -> Path:
    """A commit that drops the node network from the cluster-internal allow: the nodes'
    kubelet, etcd, BGP and VXLAN traffic between them is cut."""
    return edited(tmp_path, NODES_NET, "")


def test_cutting_ssh_from_the_admins_cannot_lock_them_out_failsafe_keeps_it(
    tmp_path: Path,
) -> None:
    """Calico's failsafe ports (tcp/22, tcp/6443) are allowed before any policy, and the
    repo cannot change them (FelixConfiguration is not a repo kind): the check holds."""
    head = edited(tmp_path, SSH_RULE, SSH_RULE.replace("- 22", "- 2222"))
    result = plan(str(head), "--base", str(EXAMPLE), "-o", "json")
    checks = {c["name"]: c for c in json.loads(result.output)["checks"]}
    assert checks["admins-reach-every-node"]["holds"] is True
    assert result.exit_code == 1


def test_example_repo_against_itself_holds_every_check_exit_0() -> None:
    result = plan(str(EXAMPLE), "--base", str(EXAMPLE), "-o", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert len(doc["checks"]) == 10
    assert all(c["holds"] for c in doc["checks"]), doc["checks"]


def test_a_commit_cutting_the_kubelet_between_nodes_exits_2_with_the_counterexample(
    tmp_path: Path,
) -> None:
    result = plan(str(cut_kubelet(tmp_path)), "--base", str(EXAMPLE))
    assert result.exit_code == 2
    assert "Connectivity checks failing (1)" in result.output
    line = next(x for x in result.output.splitlines() if "nodes-reach-each-other" in x)
    assert "node node-1 -> node node-2 tcp/10250 denied by GlobalNetworkPolicy" in line
    assert "drop-other-ingress" in line and "hosts/node-firewall.yaml:" in line
    assert "after update GlobalNetworkPolicy/allow-cluster-internal-ingress" in line


def test_json_carries_name_holds_state_counterexample(tmp_path: Path) -> None:
    result = plan(str(cut_kubelet(tmp_path)), "--base", str(EXAMPLE), "-o", "json")
    assert result.exit_code == 2
    checks = {c["name"]: c for c in json.loads(result.output)["checks"]}
    broken = checks["nodes-reach-each-other"]
    assert broken["holds"] is False
    assert broken["state"] == (
        "desired state (after update GlobalNetworkPolicy/allow-cluster-internal-ingress)"
    )
    assert broken["counterexample"].startswith("node node-1 -> node node-2 tcp/10250 denied")
    assert broken["origin"] == "checks/nodes.yaml:19"
    assert checks["admins-reach-every-node"]["holds"] is True


def test_skip_checks_unblocks_loudly(tmp_path: Path) -> None:
    head = cut_kubelet(tmp_path)
    result = CliRunner().invoke(
        main,
        [
            "plan",
            str(head),
            "--offline",
            "--inventory",
            INVENTORY,
            "--base",
            str(EXAMPLE),
            "--skip-checks",
            "nodes-reach-each-other",
        ],
    )
    assert result.exit_code == 1  # changes pending, nothing blocks
    warning = next(x for x in result.stderr.splitlines() if x.startswith("warning:"))
    assert "nodes-reach-each-other is skipped (--skip-checks)" in warning
    assert "tcp/10250 denied" in warning


def test_without_a_base_checks_start_from_an_empty_cluster_and_the_order_keeps_them() -> None:
    """From nothing, the kind order isolates pods before their allows exist; the plan's
    order bridges those flows (make-before-break), so every check holds in every state."""
    doc = json.loads(plan(str(EXAMPLE), "-o", "json").output)
    assert doc["order"]["method"] == "bridged"
    assert [c["name"] for c in doc["checks"] if not c["holds"]] == []
    # Negative control: the same plan without its bridge (the kind order) breaks DNS.
    settings = pipeline.Settings()
    rendered = pipeline.render(EXAMPLE, Revision("dir:x", str(EXAMPLE)), settings)
    found = read_inventory(Path(INVENTORY))
    given = pipeline.Inventory(found.nodes, found.namespaces, found.pods, found.service_accounts)
    bridged = pipeline.plan_offline(rendered, settings, **given.kwargs())
    naive = replace(bridged, changes=tuple(c for c in bridged.changes if not c.transient))
    facts = given.facts(settings.calico)
    observed = Observed(facts, firewall=pipeline.offline_firewall(facts, ()))
    checked = {c.name: c for c in pipeline.check(naive, rendered.checks, observed, settings).checks}
    dns = checked["every-pod-resolves-names"]
    assert not dns.holds and dns.state.startswith("after create ")
    assert dns.note == "holds in the desired state: only the apply order breaks it"


def test_without_an_inventory_checks_are_not_evaluated_and_say_so() -> None:
    result = CliRunner().invoke(main, ["plan", str(EXAMPLE), "--offline", "-o", "json"])
    checks = json.loads(result.output)["checks"]
    assert checks and all("not evaluated" in c["note"] for c in checks)


def test_base_goes_with_offline() -> None:
    result = CliRunner().invoke(main, ["plan", str(EXAMPLE), "--base", str(EXAMPLE)])
    assert result.exit_code == 2 and "--offline" in result.output
