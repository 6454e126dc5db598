"""`policy-reconciler run` and `status` from the outside: exit codes, output, usage errors."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.applyset import ApplySet
from reconciler.cli import main
from reconciler.cli.options import parse_duration
from reconciler.controller import logs
from reconciler.localcluster import ClusterInfo
from tests.cluster.engine import gnp
from tests.controller.helpers import policy_yaml
from tests.source.repos import Upstream


def _once(
    info: ClusterInfo, upstream: Upstream, applyset: ApplySet, tmp: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    argv = [
        sys.executable,
        "-m",
        "reconciler",
        "run",
        "--once",
        "--repo",
        str(upstream.bare),
        "--kubeconfig",
        info.kubeconfig,
        "--namespace",
        applyset.namespace,
        "--applyset",
        applyset.name,
        "--cache-dir",
        str(tmp / "cache"),
        *extra,
    ]
    return subprocess.run(
        argv,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
    )


@pytest.mark.cluster
def test_once_exit_codes_and_the_status_command(
    control_plane: ClusterInfo,
    upstream: Upstream,
    applyset: ApplySet,
    tmp_path: Path,
    uid: str,
) -> None:
    upstream.commit({"p.yaml": policy_yaml(gnp(f"{uid}-ssh"))})
    done = _once(control_plane, upstream, applyset, tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"GlobalNetworkPolicy.projectcalico.org/{uid}-ssh create (done)" in done.stdout
    line = json.loads(done.stderr.strip().splitlines()[-1])  # JSON logs when not a terminal
    assert (line["msg"].startswith("reconcile applied"), line["result"]) == (True, "applied")
    assert {"revision", "duration_s", "planned", "written", "trigger"} <= set(line)

    upstream.commit({"p.yaml": "kind: [broken\n"})
    refused = _once(control_plane, upstream, applyset, tmp_path)
    assert refused.returncode == 2
    assert "InvalidRevision" in refused.stderr

    runner = CliRunner()
    common = [
        "--kubeconfig",
        control_plane.kubeconfig,
        "--namespace",
        applyset.namespace,
        "--applyset",
        applyset.name,
    ]
    text = runner.invoke(main, ["status", *common])
    assert text.exit_code == 0, text.output
    assert "InvalidRevision" in text.output and "Applied" in text.output
    assert text.output.index("InvalidRevision") < text.output.index("Applied")  # newest first
    as_json = runner.invoke(main, ["status", *common, "-o", "json"])
    view = json.loads(as_json.output)
    assert [r["reason"] for r in view["runs"]] == ["InvalidRevision", "Applied"]
    assert view["suspended"] is False and len(view["lastAppliedRevision"]) == 40
    # A wrong name is an error, not "no runs recorded yet" with exit 0.
    wrong = [*common[:-1], f"{applyset.name}-typo"]
    typo = runner.invoke(main, ["status", *wrong])
    assert typo.exit_code == 2 and "check --namespace and --applyset" in typo.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--webhook-port", "9000"], "--webhook-port needs --webhook-secret-file"),
        (["--verify-signatures", "ssh"], "--verify-signatures needs --signing-keys"),
        (["--once", "--leader-elect"], "takes no --leader-elect"),
        (["--interval", "soon"], "is not a duration"),
        (["--branch", "bad..name"], "branch 'bad..name'"),
    ],
)
def test_usage_errors(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["run", "--repo", "/nonexistent.git", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_an_empty_webhook_secret_is_refused_and_never_echoed(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    result = CliRunner().invoke(
        main,
        ["run", "--repo", "/r.git", "--webhook-port", "0", "--webhook-secret-file", str(empty)],
    )
    assert result.exit_code == 2 and "is empty" in result.output


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("30s", 30), ("1m", 60), ("1h30m", 5400), ("500ms", 0.5), ("1.5s", 1.5)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_logs_are_json_off_a_terminal_and_text_on_one() -> None:
    out = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    logs.setup(fmt="auto", level="info", stream=out)  # a StringIO is not a terminal
    try:
        logging.getLogger("reconciler.test").warning(
            "reconcile failed: x", extra={"revision": "abc", "planned": {"create": 2}}
        )
        line = json.loads(out.getvalue())
        assert line["level"] == "warning" and line["revision"] == "abc"
        assert line["planned"] == {"create": 2} and line["msg"] == "reconcile failed: x"
        record = logging.LogRecord("r", logging.INFO, "", 0, "run done", (), None)
        record.__dict__.update(revision="abc", written={"create": 1})
        text = logs.TextFormatter().format(record)
        assert text.endswith('run done  revision=abc written={"create":1}')
    finally:
        root.handlers[:], root.level = saved
