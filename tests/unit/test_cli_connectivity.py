"""`policy-reconciler connectivity eval` on example-repo/ with examples/inventory.yaml:
the exit codes and JSON shape scripts depend on (issue 15), and what the repo really allows."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import main

ROOT = Path(__file__).parents[2]
REPO, INVENTORY = str(ROOT / "example-repo"), str(ROOT / "examples" / "inventory.yaml")


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["connectivity", *args])
    return result.exit_code, result.output


def evaluate(src: str, dst: str, port: str, *extra: str) -> tuple[int, str]:
    base = ["eval", REPO, "--from", src, "--to", dst, "--port", port, "--inventory", INVENTORY]
    return run(*base, *extra)


@pytest.mark.parametrize(
    ("src", "dst", "port", "code"),
    [
        # SSH and the API server are open to anyone through the failsafe ports,
        # not just to admin-networks (hosts/node-firewall.yaml).
        ("cidr:198.18.0.1", "node:node-1", "tcp/22", 0),
        ("cidr:198.18.0.1", "node:node-1", "tcp/6443", 0),
        ("cidr:198.18.0.1", "node:node-1", "tcp/10250", 1),  # dropped by drop-other-ingress
        ("pod:shop/busybox-1", "node:node-1", "tcp/10250", 1),  # busybox egress policy
        # The promises of checks/pods.yaml (the allows in global/ select only the namespaces
        # their default denies cover, so CoreDNS and the ingress controller stay open):
        ("pod:default/curl-1", "pod:shop/nginx-1", "tcp/80", 0),
        ("pod:default/curl-1", "pod:shop/web-1", "tcp/80", 1),  # curl's egress: nginx only
        ("pod:ingress-nginx/controller-1", "pod:shop/nginx-1", "tcp/80", 0),
        ("pod:shop/busybox-1", "pod:kube-system/coredns-1", "udp/53", 0),
        ("pod:shop/web-1", "pod:cache/redis-1", "tcp/6379", 0),  # same node n3: both halves allow
        ("pod:shop/web-1", "pod:cache/redis-1", "tcp/6380", 1),
        ("pod:cattle-system/cattle-agent-1", "cidr:198.18.0.1", "tcp/443", 0),  # SA cattle
        ("pod:shop/web-1", "node:node-3", "tcp/80", 1),  # egress already denies: determined
    ],
)
def test_example_repo_verdicts_and_exit_codes(src: str, dst: str, port: str, code: int) -> None:
    exit_code, output = evaluate(src, dst, port)
    assert exit_code == code, output


def test_json_has_verdict_path_and_assumptions() -> None:
    code, output = evaluate("cidr:198.18.0.1", "node:node-1", "tcp/10250", "-o", "json")
    data = json.loads(output)
    assert code == 1 and data["verdict"] == "deny"
    step = data["path"][-1]
    assert step["policy"] == "GlobalNetworkPolicy drop-other-ingress"
    assert step["origin"].startswith("hosts/node-firewall.yaml:")
    assert isinstance(data["assumptions"], list)


def test_not_determined_exits_2_and_names_the_assumption() -> None:
    # pod -> its own node: DefaultEndpointToHostAction is not in the repository.
    code, output = evaluate("pod:cattle-system/cattle-agent-1", "node:node-2", "tcp/10250")
    assert code == 2
    assert "NOT DETERMINED" in output and "DefaultEndpointToHostAction" in output


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--from", "pod:nope", "--to", "node:node-1", "--port", "tcp/1"), "pod:NAMESPACE/NAME"),
        (("--from", "pod:a/b", "--to", "node:node-1", "--port", "tcp/1"), "no such pod"),
        (("--from", "cidr:10.0.0.0/8", "--to", "node:node-1", "--port", "tcp/1"), "one address"),
        (("--from", "cidr:1.2.3.4", "--to", "node:node-1", "--port", "tcp/99999"), "PORT"),
        (("--from", "cidr:1.2.3.4", "--to", "cidr:1.2.3.5", "--port", "tcp/1"), "pod or a node"),
    ],
)
def test_bad_input_is_a_clear_error(args: tuple[str, ...], words: str) -> None:
    code, output = run("eval", REPO, *args, "--inventory", INVENTORY)
    assert code == 2
    assert words in output and "Traceback" not in output


def test_a_broken_inventory_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "inv.yaml"
    bad.write_text("kind: Node\nmetadata: {name: n1}\nstatus:\n  addresses: 5\n")
    code, output = run(
        "eval",
        REPO,
        "--from",
        "cidr:1.2.3.4",
        "--to",
        "node:n1",
        "--port",
        "tcp/1",
        "--inventory",
        str(bad),
    )
    assert code == 2 and f"{bad}:4" in output


DENY_ALL = (
    '  name: default-deny-all\nspec:\n  namespaceSelector: "kubernetes.io/metadata.name not in '
    "{'kube-system', 'calico-system', 'calico-apiserver', 'tigera-operator', 'ingress-nginx', "
    "'cattle-system'}\""
)


def _copy(tmp_path: Path, old: str, new: str) -> str:
    head = tmp_path / "head"
    shutil.copytree(REPO, head)
    path = head / "global" / "cluster-defaults.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return str(head)


def test_diff_of_a_repo_with_itself_exits_0() -> None:
    code, output = run("diff", "--base", REPO, "--head", REPO, "--inventory", INVENTORY)
    assert code == 0 and "No flow changes" in output


def test_exempting_shop_from_the_default_deny_changes_no_flow(tmp_path: Path) -> None:
    # The issue-15 example: plan shows a field change, yet allow-ping-in-cluster still selects
    # every pod in shop, so its tier still ends in a drop (calico-semantics.md "End of tier").
    head = _copy(
        tmp_path, DENY_ALL, DENY_ALL.replace("'cattle-system'}", "'cattle-system', 'shop'}")
    )
    code, output = run("diff", "--base", REPO, "--head", head, "--inventory", INVENTORY)
    assert code == 0, output


def test_diff_names_the_flows_and_the_policy_that_changed_them(tmp_path: Path) -> None:
    # Negative control of the test above: allowing tcp/8080 in allow-platform-egress opens
    # it from every pod it selects to every pod that accepts it (unpoliced namespaces).
    dns = (
        "          - 6443\n"
        "    - action: Allow\n      protocol: TCP\n      destination:\n        ports: [8080]"
    )
    head = _copy(tmp_path, "          - 6443", dns)
    args = ("diff", "--base", REPO, "--head", head, "--inventory", INVENTORY)
    code, output = run(*args, "-o", "json")
    assert code == 1
    changes = json.loads(output)["changes"]
    opened = [c for c in changes if c["after"] == "allow"]
    assert opened and all(c["ports"] == "tcp/8080" for c in opened)
    assert all(any("allow-platform-egress" in b for b in c["because"]) for c in opened)
    code, markdown = run(*args, "-o", "markdown")
    assert code == 1 and markdown.startswith("**Connectivity:**") and "| tcp/8080 |" not in markdown
    assert "`tcp/8080`" in markdown


def test_map_shows_failsafe_ports_open_to_the_world() -> None:
    code, output = run("map", REPO, "--inventory", INVENTORY, "-o", "json")
    assert code == 0
    rows = json.loads(output)["reach"]
    to_nodes = [
        r for r in rows if r["from"].startswith("addresses 0.0.0.0/5") and "node" in r["to"]
    ]
    assert to_nodes and "tcp/22" in to_nodes[0]["allowed"] and "6443" in to_nodes[0]["allowed"]


def test_seed_automatic_host_endpoints_with_master_and_worker_policies(tmp_path: Path) -> None:
    # Scenario 2 (scenarios.md), switched on as hosts/automatic-host-endpoints.yaml describes:
    # drop the template endpoints and their firewall, set autoCreate: Enabled. Auto host
    # endpoints carry the Node labels and projectcalico-default-allow (calico-semantics.md).
    repo = tmp_path / "repo"
    shutil.copytree(REPO, repo)
    (repo / "hosts" / "host-endpoints.yaml").unlink()
    (repo / "hosts" / "node-firewall.yaml").unlink()
    kcc = repo / "hosts" / "automatic-host-endpoints.yaml"
    kcc.write_text(kcc.read_text().replace("autoCreate: Disabled", "autoCreate: Enabled"))

    def check(src: str, dst: str, port: str) -> int:
        args = ("eval", str(repo), "--from", src, "--to", dst, "--port", port)
        return run(*args, "--inventory", INVENTORY)[0]

    assert check("node:node-1", "node:node-2", "tcp/10250") == 0  # from a master
    assert check("node:node-3", "node:node-2", "tcp/10250") == 1  # a worker is no master
    assert check("cidr:198.18.0.1", "node:node-2", "tcp/10250") == 1
    assert check("cidr:198.18.0.1", "node:node-1", "tcp/8443") == 1  # governed ingress
    assert check("node:node-2", "cidr:198.18.0.1", "tcp/443") == 0  # egress: default-allow
