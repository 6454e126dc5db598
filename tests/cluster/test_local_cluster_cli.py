"""`local-cluster up` edge cases through the CLI, each on its own control plane."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler import localcluster
from reconciler.cli import main


@pytest.mark.cluster  # its own control plane, not the shared fixture: marked by hand
def test_up_with_zero_nodes_exits_0_and_creates_none(tmp_path: Path) -> None:
    """Issue 18: `--nodes 0` started the cluster, then failed on an empty `kubectl apply`."""
    state = tmp_path / "cp"
    try:
        result = CliRunner().invoke(
            main, ["local-cluster", "up", "--nodes", "0", "--state-dir", str(state)]
        )
        assert result.exit_code == 0, result.output
        info = localcluster.current(state)
        assert info is not None
        assert json.loads(localcluster.kubectl(info, "get", "nodes", "-o", "json"))["items"] == []
        assert not info.node  # no real node asked for: the API server keeps tokens off
    finally:
        localcluster.down(state)
