"""No traceback reaches a user: every command, every setup mistake, one line and exit 2.

Exit 1 means "changes pending", so a broken setup must never exit 1. This walks each
command with a missing kubeconfig, an unknown context, an unreachable API server, and
each malformed option value. No control plane: the server is a closed port.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from reconciler.cli import main
from tests.source.repos import Upstream

EXAMPLE_REPO = str(Path(__file__).parents[2] / "example-repo")
TOKEN = "not-a-real-token-0123"
UNREACHABLE = f"""\
apiVersion: v1
kind: Config
clusters:
- name: nowhere
  cluster: {{server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}
users:
- name: someone
  user: {{token: {TOKEN}}}
contexts:
- name: nowhere
  context: {{cluster: nowhere, user: someone}}
current-context: nowhere
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    tmp = tmp_path_factory.mktemp("cli-errors")
    kubeconfig = tmp / "kubeconfig"
    kubeconfig.write_text(UNREACHABLE)
    upstream = Upstream.create(tmp)
    upstream.commit({"p.yaml": Path(EXAMPLE_REPO, "hosts", "node-firewall.yaml").read_text()})
    yield {"kubeconfig": str(kubeconfig), "repo": str(upstream.bare), "cache": str(tmp / "c")}


def commands(s: dict[str, str]) -> dict[str, list[str]]:
    """Each command that talks to a cluster, with what it needs besides the cluster."""
    return {
        "plan": ["plan", EXAMPLE_REPO],
        "apply": ["apply", EXAMPLE_REPO],
        "apply --dry-run": ["apply", EXAMPLE_REPO, "--dry-run"],
        "report": ["report", "--head", EXAMPLE_REPO, "--base", EXAMPLE_REPO],
        "status": ["status"],
        "suspend": ["suspend"],
        "resume": ["resume"],
        "reconcile": ["reconcile", "--with-source"],
        "run --once": ["run", "--once", "--repo", s["repo"], "--cache-dir", s["cache"]],
    }


CLUSTER_MISTAKES: dict[str, Callable[[dict[str, str]], list[str]]] = {
    "missing kubeconfig": lambda s: ["--kubeconfig", "/nonexistent/kubeconfig"],
    "unknown context": lambda s: ["--kubeconfig", s["kubeconfig"], "--context", "nope"],
    "unreachable server": lambda s: ["--kubeconfig", s["kubeconfig"]],
}

PLAN_VALUES = [
    ["--max-prune", "abc"],
    ["--max-prune", "150%"],
    ["--max-prune", ""],
    ["--calico-version", "x"],
    ["--calico-version", "3"],
    ["--skip-checks", "Not A Name"],
]
MALFORMED = {
    "plan": [
        *PLAN_VALUES,
        ["-o", "yaml"],
        ["--offline", "--nodes-file", "/nonexistent"],
        ["--diff", "side-by-side"],
        ["--offline", "--base", "/nonexistent"],
    ],
    "apply": [*PLAN_VALUES, ["-o", "yaml"], ["--diff", "side-by-side"]],
    "report": [
        *PLAN_VALUES,
        ["--diff", "side-by-side"],
        ["--pr", "abc"],
        ["--pr", "0"],
        ["--max-chars", "5"],
        ["--publish", "nope"],
        ["--publish", "gitea"],
        ["--publish", "github", "--repo", "a/b"],
        ["--publish", "github", "--repo", "a/b", "--pr", "1", "--token-file", "/nonexistent"],
        ["--base-ref", "main"],
    ],
    "status": [["-n", "abc"], ["-n", "0"], ["-o", "yaml"]],
    "run --once": [
        *PLAN_VALUES,
        ["--interval", "soon"],
        ["--retry-interval", "-"],
        ["--git-timeout", "1x"],
        ["--leader-lease-duration", "x"],
        ["--webhook-port", "abc"],
        ["--webhook-port", "70000"],
        ["--metrics-port", "-1"],
        ["--log-format", "xml"],
        ["--log-level", "loud"],
        ["--verify-signatures", "gpg"],
        ["--signing-keys", "/nonexistent"],
        ["--branch", "bad..name"],
    ],
    "local-cluster up": [
        ["--nodes", "abc"],
        ["--nodes", "-1"],
        ["--nodes", "999999"],
        ["--image", "localhost/x:1"],  # needs --node
    ],
    # a state dir that is a file
    "local-cluster down": [["--state-dir", __file__]],
    "local-cluster status": [["--state-dir", __file__]],
}


def invoke(argv: list[str]) -> Result:
    env = {"KUBECONFIG": "", "GITHUB_TOKEN": "", "GITEA_TOKEN": "", "NO_COLOR": "1"}
    return CliRunner().invoke(main, argv, env=env)


def assert_one_line_exit_2(result: Result, argv: list[str]) -> None:
    shown = f"{argv}: exit {result.exit_code}\n{result.output}"
    assert result.exit_code == 2, shown
    assert result.exception is None or isinstance(result.exception, SystemExit), shown
    assert "Traceback" not in result.output, shown
    assert TOKEN not in result.output, shown
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(("error: ", "Error: ")), shown


@pytest.mark.parametrize("mistake", sorted(CLUSTER_MISTAKES))
@pytest.mark.parametrize(
    "command",
    ["plan", "apply", "apply --dry-run", "report", "status", "suspend", "resume", "reconcile"],
)
def test_cluster_mistakes_are_one_line_and_exit_2(
    setup: dict[str, str], command: str, mistake: str
) -> None:
    argv = [*commands(setup)[command], *CLUSTER_MISTAKES[mistake](setup)]
    result = invoke(argv)
    assert_one_line_exit_2(result, argv)
    assert result.stderr.count("\n") == 1, result.stderr  # exactly one line


@pytest.mark.parametrize("mistake", sorted(CLUSTER_MISTAKES))
def test_run_once_cluster_mistakes_exit_2(setup: dict[str, str], mistake: str) -> None:
    argv = [*commands(setup)["run --once"], *CLUSTER_MISTAKES[mistake](setup)]
    result = invoke(argv)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert TOKEN not in result.output


@pytest.mark.parametrize(
    ("command", "values"),
    [(command, values) for command, cases in MALFORMED.items() for values in cases],
    ids=lambda v: " ".join(v) if isinstance(v, list) else v,
)
def test_malformed_option_values_are_usage_errors(
    setup: dict[str, str], command: str, values: list[str]
) -> None:
    base = commands(setup).get(command) or command.split()
    argv = [*base, "--kubeconfig", setup["kubeconfig"], *values]
    if command.startswith("local-cluster"):
        argv = [*base, *values]
    assert_one_line_exit_2(invoke(argv), argv)


def test_an_unexpected_bug_is_one_line_and_its_traceback_needs_debug(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*_args: object, **_kw: object) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("reconciler.pipeline.render", broken)
    argv = ["plan", EXAMPLE_REPO, "--offline"]
    quiet = invoke(argv)
    assert_one_line_exit_2(quiet, argv)
    assert "internal error: ZeroDivisionError: a bug" in quiet.stderr
    loud = invoke(["--debug", *argv])
    assert loud.exit_code == 2
    assert "Traceback" in loud.stderr and "ZeroDivisionError" in loud.stderr


def test_the_installed_command_prints_no_traceback(setup: dict[str, str]) -> None:
    """The console script as a user runs it (not CliRunner): a real process, exit 2."""
    argv = [sys.executable, "-m", "reconciler", "plan", EXAMPLE_REPO, "--max-prune", "abc"]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60,
                          env={**os.environ, "KUBECONFIG": setup["kubeconfig"]})  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
