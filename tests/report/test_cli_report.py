"""`policy-reconciler report` end to end without a cluster: a real git repo, --offline,
and publishing to the local forge stand-ins."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from reconciler.cli import main
from reconciler.cli.report import report_command
from tests.report.forges import GiteaServer, GitHubServer, GitLabServer
from tests.report.test_pr import LEGACY, example_base

EXAMPLE_REPO = Path(__file__).parents[2] / "example-repo"
TOKEN = "ghp_example0123456789abcdefTOKEN"


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    base_env = {"GITHUB_TOKEN": "", "GITLAB_TOKEN": "", "GITEA_TOKEN": "", "GITHUB_API_URL": ""}
    return CliRunner().invoke(main, ["report", *args], env={**base_env, **(env or {})})


def offline(base: Path, *more: str) -> list[str]:
    return ["--head", str(EXAMPLE_REPO), "--base", str(base), "--offline", *more]


def test_publishes_once_then_leaves_the_comment_alone(tmp_path: Path) -> None:
    base = example_base(tmp_path)
    with GitHubServer(token=TOKEN) as gh:
        args = offline(base, "--publish", "github", "--api-url", gh.url, "--repo", "acme/policies")
        first = run(*args, "--pr", "7", env={"GITHUB_TOKEN": TOKEN})
        assert first.exit_code == 1, first.output  # this PR changes the cluster
        assert "GitHub: created comment" in first.stderr
        (comment,) = gh.comments[7]
        assert comment["body"].startswith("<!-- policy-reconciler:report target=offline -->")
        assert "legacy-allow-all" in comment["body"]
        assert first.stdout == comment["body"]  # the job log shows the report too

        second = run(*args, "--pr", "7", env={"GITHUB_TOKEN": TOKEN})
        assert second.exit_code == 1
        assert "comment already up to date (nothing sent)" in second.stderr
        assert [r.method for r in gh.writes()] == ["POST"]
        for result in (first, second):
            assert TOKEN not in result.output


def test_dry_run_prints_the_body_and_sends_nothing(tmp_path: Path) -> None:
    with GitHubServer() as gh:
        args = offline(example_base(tmp_path), "--publish", "github", "--api-url", gh.url)
        result = run(*args, "--repo", "acme/policies", "--pr", "7", "--dry-run")
        assert result.exit_code == 1, result.output
        assert result.stdout.startswith("<!-- policy-reconciler:report target=offline -->")
        assert "dry run: nothing sent to GitHub" in result.stderr
        assert gh.requests == []


def test_gitlab_with_a_token_file_and_a_project_path(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("glpat-0123456789abcdef\n")
    with GitLabServer(token="glpat-0123456789abcdef") as gl:
        args = offline(example_base(tmp_path), "--publish", "gitlab", "--api-url", gl.api_url)
        more = ["--project", "platform/policies", "--pr", "7", "--token-file", str(token_file)]
        result = run(*args, *more, "--target", "prod-eu")
        assert result.exit_code == 1, result.output
        (note,) = gl.comments[7]
        assert note["body"].startswith("<!-- policy-reconciler:report target=prod-eu -->")
        assert "glpat-" not in result.output


def test_gitea_needs_an_api_url(tmp_path: Path) -> None:
    result = run(*offline(tmp_path), "--publish", "gitea", "--repo", "a/b", "--pr", "1")
    assert result.exit_code == 2
    assert "--api-url is required for Gitea" in result.stderr


def test_gitea_publish(tmp_path: Path) -> None:
    with GiteaServer() as gt:
        args = offline(example_base(tmp_path), "--publish", "gitea", "--api-url", gt.api_url)
        result = run(*args, "--repo", "acme/policies", "--pr", "7", env={"GITEA_TOKEN": gt.token})
        assert result.exit_code == 1, result.output
        assert len(gt.comments[7]) == 1


def test_missing_token_fails_before_any_work(tmp_path: Path) -> None:
    result = run(*offline(tmp_path), "--publish", "github", "--repo", "a/b", "--pr", "1")
    assert result.exit_code == 2
    assert (
        result.stderr == "error: no token: $GITHUB_TOKEN is unset or empty (or pass --token-file)\n"
    )
    assert result.stdout == ""


def test_refused_token_is_exit_2_and_never_printed(tmp_path: Path) -> None:
    wrong = "ghp_wrong_wrong_wrong_0123"
    with GitHubServer(token=TOKEN) as gh:
        args = offline(example_base(tmp_path), "--publish", "github", "--api-url", gh.url)
        result = run(*args, "--repo", "acme/policies", "--pr", "7", env={"GITHUB_TOKEN": wrong})
    assert result.exit_code == 2
    assert (
        "error: GitHub answered 401 to GET /repos/acme/policies/issues/7/comments" in result.stderr
    )
    assert wrong not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give exactly one of --base DIR and --base-ref REF"),
        (
            ["--base", ".", "--base-ref", "main"],
            "give exactly one of --base DIR and --base-ref REF",
        ),
        (["--base", ".", "--publish", "github", "--pr", "1"], "--publish github needs --repo"),
        (["--base", ".", "--publish", "gitlab", "--repo", "a/b", "--pr", "1"], "needs --project"),
        (["--base", ".", "--publish", "github", "--repo", "a/b"], "needs --pr NUMBER"),
    ],
)
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    result = run("--head", str(EXAMPLE_REPO), "--offline", *args)
    assert result.exit_code == 2
    assert message in result.stderr


# --- --base-ref: the base exported from the local git checkout -------------------------


def git(cwd: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env |= {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
    env |= {"GIT_AUTHOR_NAME": "Alice", "GIT_AUTHOR_EMAIL": "a@example.com"}
    env |= {"GIT_COMMITTER_NAME": "Alice", "GIT_COMMITTER_EMAIL": "a@example.com"}
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_base_ref_exports_the_same_subdirectory_from_git(tmp_path: Path) -> None:
    repo = tmp_path / "checkout"
    policies = repo / "clusters" / "prod"
    policies.parent.mkdir(parents=True)
    # main holds the base; the PR branch holds example-repo as it is today
    (tmp_path / "scratch").mkdir()
    base = example_base(tmp_path / "scratch")
    (repo / "README").parent.mkdir(exist_ok=True)
    (repo / "README").write_text("policies\n")
    subprocess.run(["cp", "-r", str(base), str(policies)], check=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    base_sha = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "-b", "pr")
    subprocess.run(["rm", "-r", str(policies)], check=True)
    subprocess.run(["cp", "-r", str(EXAMPLE_REPO), str(policies)], check=True)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "tighten ping, add redis egress, drop legacy allow-all")
    head_sha = git(repo, "rev-parse", "HEAD")

    args = ["--head", str(policies), "--base-ref", "main", "--repo-dir", str(repo), "--offline"]
    result = run(*args)
    assert result.exit_code == 1, result.output
    assert f"Head `{head_sha[:12]}`" in result.stdout
    assert f"base `{base_sha[:12]}` (`main`)" in result.stdout
    assert "(`main`)" in result.stdout and "with local changes" not in result.stdout
    prune_row = "| prune | NetworkPolicy.networking.k8s.io | shop | legacy-allow-all | "
    assert f"{prune_row}apps/shop/legacy-allow-all.yaml:2 (base) |" in result.stdout
    assert "| update | GlobalNetworkPolicy.projectcalico.org |  | allow-ping-in-cluster |" in (
        result.stdout
    )
    assert LEGACY.splitlines()[0] not in result.stdout

    # an untracked file: the head is still its commit, said to carry local changes
    (policies / "global" / "extra.yaml").write_text("")
    dirty = run(*args)
    assert f"Head `{head_sha[:12]}` with local changes" in dirty.stdout

    missing = run("--head", str(policies), "--base-ref", "nope", "--repo-dir", str(repo))
    assert missing.exit_code == 2
    assert "no commit 'nope'" in missing.stderr


# --- the README's CI snippets -----------------------------------------------------------

README = Path(__file__).parents[2] / "README.md"


def readme_yaml(containing: str) -> dict[Any, Any]:
    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(), flags=re.S)
    (block,) = [b for b in blocks if containing in b]
    loaded: dict[Any, Any] = yaml.safe_load(block)
    return loaded


def report_options(script: str) -> set[str]:
    command = script[script.index("policy-reconciler report") :]
    return set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", command))


KNOWN = {opt for param in report_command.params for opt in param.opts}


def test_readme_github_actions_workflow() -> None:
    workflow = readme_yaml("runs-on")
    assert workflow["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert "pull_request" in workflow[True]  # YAML 1.1 reads the key `on` as true
    steps = workflow["jobs"]["report"]["steps"]
    assert steps[0]["with"]["fetch-depth"] == 0
    assert any(s.get("run", "").startswith("pip install policy-reconciler") for s in steps)
    run_step = steps[-1]
    assert run_step["env"]["GITHUB_TOKEN"] == "${{ secrets.GITHUB_TOKEN }}"
    used = report_options(run_step["run"])
    assert {"--publish", "--repo", "--pr", "--base-ref", "--kubeconfig"} <= used <= KNOWN
    assert "|| [ $? -eq 1 ]" in run_step["run"]


def test_readme_gitlab_job() -> None:
    job = readme_yaml("merge_request_event")["policy-report"]
    script = "\n".join(job["script"])
    used = report_options(script)
    assert {"--publish", "--project", "--pr", "--base-ref", "--kubeconfig"} <= used <= KNOWN
    assert "$CI_MERGE_REQUEST_IID" in script and "|| [ $? -eq 1 ]" in script


# --- cluster errors are exit 2, never 1 ---------------------------------------------------

UNREACHABLE_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: nowhere
  cluster: {server: "https://127.0.0.1:9", insecure-skip-tls-verify: true}
users:
- name: someone
  user: {token: not-a-real-token}
contexts:
- name: nowhere
  context: {cluster: nowhere, user: someone}
current-context: nowhere
"""


def test_unusable_kubeconfig_is_exit_2(tmp_path: Path) -> None:
    args = ["--head", str(EXAMPLE_REPO), "--base", str(EXAMPLE_REPO)]
    missing = run(*args, "--kubeconfig", str(tmp_path / "none"))
    assert missing.exit_code == 2
    assert missing.stderr.startswith("error: cannot use the kubeconfig:")

    config = tmp_path / "kubeconfig"
    config.write_text(UNREACHABLE_KUBECONFIG)
    unreachable = run(*args, "--kubeconfig", str(config))
    assert unreachable.exit_code == 2
    assert "cannot reach the Kubernetes API server" in unreachable.stderr
    assert "not-a-real-token" not in unreachable.output


def test_offline_report_expands_templates_over_an_inventory(tmp_path: Path) -> None:
    base = example_base(tmp_path)
    inventory = EXAMPLE_REPO.parent / "examples" / "inventory.yaml"

    without = run(*offline(base))
    result = run(*offline(base, "--inventory", str(inventory)))

    assert "not expanded" in without.output  # the negative: no inventory, no expansion
    assert result.exit_code == 1, result.output
    assert "not expanded" not in result.output  # expanded alike on both sides: no change
