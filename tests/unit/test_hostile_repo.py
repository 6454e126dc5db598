"""Values of the wrong YAML type are refused at load with file:line and go no further, so
`plan --offline` answers exit 2 with a clear error (never a traceback and exit 1); nulls
where Calico's docs write them mean "absent", as calicoctl reads them."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import main

# Every case once per YAML loader (libyaml's composer and PyYAML's): the same findings.
pytestmark = pytest.mark.usefixtures("yaml_loader")

GNP = """\
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: a
  labels: {tier: edge}
spec:
  selector: all()
  ingress:
    - action: Allow
"""


def _plan(tmp_path: Path, text: str) -> tuple[int, str]:
    (tmp_path / "a.yaml").write_text(text)
    result = CliRunner().invoke(main, ["plan", "--offline", str(tmp_path)])
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("old", "new", "line"),
    [
        ("labels: {tier: edge}", "labels: {tier: 1}", 5),
        ("labels: {tier: edge}", "annotations: x", 5),
        ("labels: {tier: edge}", "labels: [x]", 5),
        (GNP[GNP.index("spec:") :], "spec: x\n", 6),
        (GNP[GNP.index("spec:") :], "spec: 1\n", 6),
        ("selector: all()", "types: 53", 7),
        ("ingress:\n    - action: Allow", "ingress: -1", 8),
        ("- action: Allow", "- action: Allow\n      source: {selector: 1}", 10),
        ("- action: Allow", "- null", 9),
    ],
)
def test_wrong_types_are_refused_with_file_and_line(
    tmp_path: Path, old: str, new: str, line: int
) -> None:
    code, output = _plan(tmp_path, GNP.replace(old, new))

    assert (code, "Traceback" in output) == (2, False), output
    assert f"a.yaml:{line}:" in output


def test_a_mis_indented_spec_key_is_refused_not_crashed(tmp_path: Path) -> None:
    code, output = _plan(tmp_path, GNP.replace("  selector: all()", "selector: all()"))

    assert (code, "Traceback" in output) == (2, False), output
    assert "a.yaml:" in output


def test_nulls_where_calicos_docs_write_them_mean_absent(tmp_path: Path) -> None:
    """Rancher's project-isolation articles write crd.projectcalico.org/v1 policies with
    `selector:` and `ingress:` left empty; calicoctl reads them as all() and no rules."""
    text = """\
apiVersion: crd.projectcalico.org/v1
kind: GlobalNetworkPolicy
metadata:
  name: default.deny-all
spec:
  selector:
  types: [Ingress]
  ingress:
"""
    code, output = _plan(tmp_path, text)

    assert code == 1, output  # a clean create
    assert "a.yaml:6" in output and "read as absent: spec.selector, spec.ingress" in output
    assert "Traceback" not in output
