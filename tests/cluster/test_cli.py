"""`policy-reconciler plan|apply` as a user runs them: exit codes, output, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.localcluster import ClusterInfo, kubectl
from tests.cluster.engine import NAMESPACE, Repo, gnp, k8s_np


def _cli(*args: str, kubeconfig: str = "") -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "KUBECONFIG": kubeconfig, "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )


@pytest.fixture
def repo(tmp_path: Path, uid: str) -> Repo:
    return Repo(tmp_path / "repo", uid)


def test_plan_apply_plan_exit_codes_and_flux_style_output(
    control_plane: ClusterInfo, repo: Repo, uid: str
) -> None:
    repo.write("p.yaml", gnp(f"{uid}-ssh"))
    common = [str(repo.root), "--namespace", NAMESPACE, "--applyset", f"{uid}-cli"]

    planned = _cli("plan", *common, kubeconfig=control_plane.kubeconfig)
    assert planned.returncode == 1, planned.stderr
    assert f"► GlobalNetworkPolicy.projectcalico.org/{uid}-ssh create" in planned.stdout
    assert "Plan: 1 to create" in planned.stdout
    assert "\x1b[" not in planned.stdout  # colour only on a terminal

    applied = _cli("apply", *common, kubeconfig=control_plane.kubeconfig)
    assert applied.returncode == 0, applied.stderr + applied.stdout

    again = _cli("plan", *common, "-o", "json", kubeconfig=control_plane.kubeconfig)
    assert again.returncode == 0, again.stderr
    doc = json.loads(again.stdout)
    assert [c["action"] for c in doc["changes"]] == ["unchanged"]


def test_invalid_input_exits_2_naming_file_and_line(
    control_plane: ClusterInfo, repo: Repo, uid: str
) -> None:
    repo.text(
        "bad.yaml",
        f"apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\n"
        f"metadata: {{name: {uid}-x}}\nspec:\n  selector: has(\n",
    )
    result = _cli(
        "apply", str(repo.root), "--namespace", NAMESPACE, kubeconfig=control_plane.kubeconfig
    )
    assert result.returncode == 2
    assert "bad.yaml:5" in result.stdout
    assert "spec.selector" in result.stdout


def test_offline_plan_needs_no_cluster(repo: Repo, uid: str) -> None:
    repo.write("p.yaml", gnp(f"{uid}-ssh"))
    result = _cli("plan", str(repo.root), "--offline", kubeconfig="/nonexistent")
    assert result.returncode == 1, result.stderr
    assert f"► GlobalNetworkPolicy.projectcalico.org/{uid}-ssh create" in result.stdout


def test_unreachable_cluster_is_one_clear_line_and_exit_2(
    tmp_path: Path, repo: Repo, uid: str
) -> None:
    repo.write("p.yaml", gnp(f"{uid}-ssh"))
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "c",
                "clusters": [
                    {
                        "name": "c",
                        "cluster": {
                            "server": "https://127.0.0.1:1",
                            "insecure-skip-tls-verify": True,
                        },
                    }
                ],
                "users": [{"name": "u", "user": {"token": "secret-token-value"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
            }
        )
    )
    result = _cli("plan", str(repo.root), kubeconfig=str(kubeconfig))
    assert result.returncode == 2
    assert result.stderr.startswith("error: cannot reach the Kubernetes API server")
    assert "Traceback" not in result.stderr
    assert "secret-token-value" not in result.stderr + result.stdout


def test_the_cli_on_calicos_api_server_plans_applies_and_is_then_clean(
    v3_control_plane: ClusterInfo, repo: Repo, uid: str
) -> None:
    repo.write("p.yaml", gnp(f"{uid}-ssh"))
    common = [str(repo.root), "--namespace", NAMESPACE, "--applyset", f"{uid}-cli"]
    kubeconfig = v3_control_plane.kubeconfig

    assert _cli("plan", *common, kubeconfig=kubeconfig).returncode == 1
    applied = _cli("apply", *common, kubeconfig=kubeconfig)
    assert applied.returncode == 0, applied.stderr + applied.stdout
    again = _cli("plan", *common, "-o", "json", kubeconfig=kubeconfig)
    assert again.returncode == 0, again.stderr
    assert [c["action"] for c in json.loads(again.stdout)["changes"]] == ["unchanged"]
    served = kubectl(v3_control_plane, "get", "globalnetworkpolicies.projectcalico.org", "-o",
                     "name")  # fmt: skip
    assert f"globalnetworkpolicy.projectcalico.org/{uid}-ssh" in served.splitlines()


def test_a_write_only_calicos_api_server_refuses_stops_at_its_stage_and_exits_2(
    v3_control_plane: ClusterInfo, repo: Repo, uid: str
) -> None:
    """A policy in a tier that does not exist passes offline validation (tiers live in the
    cluster) and even Calico's dry-run; the write itself is refused. The run stops at the
    end of that stage's batch: exit 2, Calico's words shown, nothing of a later stage
    (here a deny policy, written after every allow) is written."""
    orphan = gnp(f"nosuchtier-{uid}.p1", tier=f"nosuchtier-{uid}")
    repo.write("p.yaml", gnp(f"{uid}-fine", action="Deny"), orphan)
    common = [str(repo.root), "--namespace", NAMESPACE, "--applyset", f"{uid}-cli"]

    offline = _cli("plan", *common, "--offline")
    assert offline.returncode == 1, offline.stdout + offline.stderr  # valid as far as we know
    applied = _cli("apply", *common, kubeconfig=v3_control_plane.kubeconfig)
    assert applied.returncode == 2, applied.stdout
    # Calico's own words: the tier must exist before its policies
    assert f"resource does not exist: Tier(nosuchtier-{uid})" in applied.stdout
    served = kubectl(v3_control_plane, "get", "globalnetworkpolicies.projectcalico.org", "-o",
                     "name")  # fmt: skip
    assert f"{uid}-fine" not in served  # the later stage never started


def test_plan_names_missing_namespaces_and_apply_creates_them_when_asked(
    control_plane: ClusterInfo, repo: Repo, uid: str
) -> None:
    """The issue's fresh cluster: `plan` says what `apply` would be refused (file:line),
    and `apply --create-namespace` makes them, as `helm install --create-namespace` does."""
    absent, ours = f"{uid}-shop", f"{uid}-ours"
    repo.write("ok.yaml", gnp(f"{uid}-ssh"))
    repo.write("shop.yaml", k8s_np("web", absent))
    common = [str(repo.root), "--namespace", ours, "--applyset", f"{uid}-cli"]
    kubeconfig = control_plane.kubeconfig

    planned = _cli("plan", *common, kubeconfig=kubeconfig)
    assert planned.returncode == 2, planned.stdout + planned.stderr
    assert f"shop.yaml:1: NetworkPolicy/{absent}/web: namespace '{absent}' does not exist" in (
        planned.stdout
    )
    assert f"namespace '{ours}' of the ApplySet parent ConfigMap" in planned.stdout
    assert "apply --create-namespace" in planned.stdout

    refused = _cli("apply", *common, kubeconfig=kubeconfig)
    assert refused.returncode == 2 and "[ dry-run ]" not in refused.stderr
    names = kubectl(control_plane, "get", "namespaces", "-o", "name").split()
    assert f"namespace/{absent}" not in names and f"namespace/{ours}" not in names

    applied = _cli("apply", *common, "--create-namespace", kubeconfig=kubeconfig)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    progress = applied.stderr.splitlines()
    assert f"[ namespaces ] creating {ours}, {absent}" in progress
    assert "[ dry-run ] 2 objects sent to the API server" in progress[1]
    assert f"[ 1/2 ] create GlobalNetworkPolicy.projectcalico.org/{uid}-ssh" in progress
    assert f"[ 2/2 ] create NetworkPolicy.networking.k8s.io/{absent}/web" in progress
    # The summary, not the whole diff again (that is what `plan` and `-v` are for).
    assert "►" not in applied.stdout and "Apply: 2 done, 0 failed, 0 skipped" in applied.stdout
    assert _cli("plan", *common, kubeconfig=kubeconfig).returncode == 0


def test_apply_verbose_prints_the_diff_after_applying(
    control_plane: ClusterInfo, repo: Repo, uid: str
) -> None:
    repo.write("p.yaml", gnp(f"{uid}-ssh"))
    common = [str(repo.root), "--namespace", NAMESPACE, "--applyset", f"{uid}-cli"]
    verbose = _cli("apply", *common, "-v", kubeconfig=control_plane.kubeconfig)
    assert verbose.returncode == 0, verbose.stderr
    assert f"► GlobalNetworkPolicy.projectcalico.org/{uid}-ssh create (done)" in verbose.stdout
    assert "+ spec:" in verbose.stdout
