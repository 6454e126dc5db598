"""Importing the CLI never needs git (an image without it can still say `--version`), and a
git operation without git is one clear error, not GitPython's import-time refusal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.source import SourceError
from reconciler.source.auth import Scrubber
from reconciler.source.run import Runner


def test_the_cli_imports_and_answers_without_git(tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path)}  # no git anywhere on PATH
    proc = subprocess.run(
        [sys.executable, "-m", "reconciler", "--version"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "policy-reconciler" in proc.stdout


def test_a_git_operation_without_git_is_a_clear_error(tmp_path: Path) -> None:
    runner = Runner(tmp_path, {"PATH": str(tmp_path)}, Scrubber("", ""), timeout=5)
    with pytest.raises(SourceError, match="git is not installed"):
        runner.run("--version", what="checking git")
