"""--inventory FILE: kubectl's output in, frozen facts out; hostile input -> file:line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.observe.inventory_file import InventoryError, parse_inventory, read_inventory

EXAMPLE = Path(__file__).parents[2] / "examples" / "inventory.yaml"

POD = """apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: shop
  labels: {app: web}
spec:
  nodeName: node-1
  serviceAccountName: web-sa
  containers:
    - name: main
      ports:
        - {name: http, containerPort: 8080}
        - {containerPort: 53, protocol: UDP}
status:
  podIP: 192.168.1.5
  podIPs: [{ip: 192.168.1.5}, {ip: "fd00::5"}]
"""


def test_the_example_inventory_reads() -> None:
    found = read_inventory(EXAMPLE)
    assert {n.name for n in found.nodes} == {"node-1", "node-2", "node-3"}
    assert any(p.name == "nginx-1" and p.ips == ("192.168.2.20",) for p in found.pods)


def test_a_list_and_multi_document_yaml_give_the_same_facts() -> None:
    node = (
        "apiVersion: v1\n"
        "kind: Node\n"
        "metadata: {name: n1}\n"
        "status: {addresses: [{type: InternalIP, address: 10.0.0.1}]}\n"
    )
    listed = "kind: List\nitems:\n" + "".join(
        f"  - {line}\n" if i == 0 else f"    {line}\n"
        for i, line in enumerate((POD + "---\n").splitlines())
        if line != "---"
    )
    docs = parse_inventory(POD + "---\n" + node, "inv.yaml")
    assert docs.pods[0].ports[0].name == "http" and docs.pods[0].ports[1].protocol == "UDP"
    assert docs.pods[0].ips == ("192.168.1.5", "fd00::5")
    assert docs.pods[0].service_account == "web-sa"
    assert docs.nodes[0].addresses == (("InternalIP", "10.0.0.1"),)
    assert parse_inventory(listed, "inv.yaml").pods == docs.pods


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("kind: Node\nmetadata: {name: n1}\nstatus:\n  addresses: 5\n", 4, "expected a list"),
        (
            (
                "kind: Node\n"
                "metadata: {name: n1}\n"
                "status:\n"
                "  addresses:\n"
                "    - {type: InternalIP, address: nope}\n"
            ),
            5,
            "not an IP",
        ),
        ("kind: Pod\nmetadata: {name: p}\n", 2, "namespace"),
        (
            "kind: Pod\nmetadata: {name: p, namespace: a}\nstatus:\n  podIP: 300.1.1.1\n",
            4,
            "not an IP",
        ),
        (
            "kind: Pod\nmetadata:\n  name: p\n  namespace: a\n  labels:\n    app: [x]\n",
            6,
            "label value",
        ),
        (
            (
                "kind: Pod\n"
                "metadata: {name: p, namespace: a}\n"
                "spec:\n"
                "  containers:\n"
                "    - ports:\n"
                "        - containerPort: 70000\n"
            ),
            6,
            "1-65535",
        ),
        (
            "kind: Pod\nmetadata: {name: p, namespace: a}\nspec:\n  hostNetwork: yes please\n",
            4,
            "true or false",
        ),
        ("kind: Secret\nmetadata: {name: s}\n", 1, "expected one of"),
        ("- just\n- a list\n", 1, "expected a mapping"),
        ("kind: Node\nmetadata: {name: n1}\nmetadata: {name: n2}\n", 3, "duplicate"),
    ],
)
def test_malformed_fields_name_the_file_and_line(text: str, line: int, words: str) -> None:
    with pytest.raises(InventoryError) as err:
        parse_inventory(text, "inv.yaml")
    assert f"inv.yaml:{line}" in str(err.value)
    assert words in str(err.value)


def test_non_utf8_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "inv.yaml"
    path.write_bytes(b"kind: Node\nmetadata: {name: \xff}\n")
    with pytest.raises(InventoryError, match="not UTF-8"):
        read_inventory(path)
