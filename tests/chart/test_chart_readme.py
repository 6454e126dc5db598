"""The chart README's values table is generated from values.yaml and must not go stale."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from types import ModuleType

import yaml

from tests.chart.helm import CHART, ROOT

SCRIPT = ROOT / "scripts" / "chart_readme.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("chart_readme", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_table_is_what_values_yaml_generates() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr


def test_a_stale_table_is_caught() -> None:
    script = _script()
    readme = (CHART / "README.md").read_text()
    stale = readme.replace("| `extraVolumes` |", "| `extraVolumesOld` |")
    assert stale != readme
    assert script.render(stale) == readme


def test_every_leaf_value_has_a_row_with_its_default() -> None:
    readme = (CHART / "README.md").read_text()
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert '| `git.repo` | string | `""` | Required.' in readme
    assert "| `extraVolumeMounts` | list | `[]` |" in readme
    assert "| `metrics.port` | int | `9090` |" in readme
    rows = [line for line in readme.splitlines() if line.startswith("| `")]
    assert len(rows) == _leaves(values)


def _leaves(value: object) -> int:
    if isinstance(value, dict) and value:
        return sum(_leaves(v) for v in value.values())
    return 1
