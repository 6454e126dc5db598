"""`report` against the real local control plane, from a real git repo with two branches.

The base branch is applied with the engine; then someone drifts one object with another
field manager; the PR branch changes something else. The report must show the PR's
change under "this pull request" and the drift, with its manager, under "already out of
sync", and it must only read: no write, not even a dry-run, in the audit log.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from reconciler import pipeline
from reconciler.cli import main
from reconciler.cluster.client import Cluster, Connection, ResourceType
from reconciler.localcluster import ClusterInfo, kubectl
from reconciler.model import Revision
from reconciler.pipeline.review import live_report
from reconciler.report.pr import render_report
from reconciler.report.publish import marker_for
from tests.audit import AuditLog, by_verb
from tests.cluster.engine import NAMESPACE, Repo, gnp, reconcile
from tests.report.test_cli_report import git

README = Path(__file__).parents[2] / "README.md"
GNP = ResourceType(
    "crd.projectcalico.org", "v1", "GlobalNetworkPolicy", "globalnetworkpolicies", False
)


@pytest.fixture(scope="module", autouse=True)
def _namespace(control_plane: ClusterInfo) -> None:
    """The reconciler's own namespace, where ApplySet parents live."""
    manifest = f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NAMESPACE}\n"
    kubectl(control_plane, "apply", "-f", "-", stdin=manifest)


def write(path: Path, *docs: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))


def test_report_separates_this_prs_changes_from_drift(
    cluster: Cluster,
    control_plane: ClusterInfo,
    audit: AuditLog,
    user_agent: str,
    tmp_path: Path,
    uid: str,
) -> None:
    checkout = tmp_path / "checkout"
    policies = checkout / "policies"
    ssh, web, new = f"{uid}-allow-ssh", f"{uid}-allow-web", f"{uid}-allow-dns"
    write(policies / "ssh.yaml", gnp(ssh, order=10))
    write(policies / "web.yaml", gnp(web, order=20))
    git(checkout, "init", "-q", "-b", "main")
    git(checkout, "add", "-A")
    git(checkout, "commit", "-q", "-m", "base")
    base_sha = git(checkout, "rev-parse", "HEAD")

    # main is what the cluster runs
    plan, result = reconcile(cluster, Repo(policies, uid))
    assert result.ok and not plan.errors

    # someone edits allow-web by hand, as `kubectl patch` does
    cluster.request(
        "PATCH",
        GNP.path("", f"default.{web}"),
        verb="patch",
        query={"fieldManager": "kubectl-patch"},
        body={"spec": {"order": 999}},
        content_type="application/merge-patch+json",
    )

    # the pull request changes allow-ssh and adds allow-dns; it does not touch allow-web
    git(checkout, "checkout", "-q", "-b", "pr")
    write(policies / "ssh.yaml", gnp(ssh, order=15))
    write(policies / "dns.yaml", gnp(new, order=30))
    git(checkout, "add", "-A")
    git(checkout, "commit", "-q", "-m", "ssh earlier, allow dns")
    head_sha = git(checkout, "rev-parse", "HEAD")

    args = ["report", "--head", str(policies), "--base-ref", "main", "--repo-dir", str(checkout)]
    args += ["--kubeconfig", control_plane.kubeconfig, "--applyset", f"{uid}-set"]
    args += ["--namespace", NAMESPACE]
    outcome = CliRunner().invoke(main, args)
    assert outcome.exit_code == 1, outcome.output
    body = outcome.stdout

    assert body.startswith(f"{marker_for(cluster.name)}\n")
    assert f"### policy-reconciler report for {cluster.name}" in body
    assert f"Head `{head_sha[:12]}` planned against the live cluster" in body
    assert f"base `{base_sha[:12]}` (`main`)" in body
    mine, drift = body.split("#### Already out of sync (not from this pull request)")
    assert "**This PR:** 1 to create · 1 to update · 0 to prune" in mine
    assert f"| update | GlobalNetworkPolicy.projectcalico.org |  | {ssh} | ssh.yaml:" in mine
    assert f"| create | GlobalNetworkPolicy.projectcalico.org |  | {new} | dns.yaml:" in mine
    assert "-   order: 10\n+   order: 15" in mine
    assert web not in mine  # the drift is not this PR's
    assert "**Out of sync:** 1 drifted" in drift
    assert (
        f"| drift | GlobalNetworkPolicy.projectcalico.org |  | {web} | "
        "changed by `kubectl-patch` (Update) at " in (drift)
    )
    assert "-   order: 999\n+   order: 20" in drift
    assert ssh not in drift and new not in drift

    # the same report through the audited client: reads only
    start = audit.mark()
    settings = Repo(policies, uid).settings()
    head = pipeline.render(policies, Revision(head_sha, str(policies)), settings)
    base = pipeline.render(_exported(checkout, tmp_path), Revision(base_sha, "base"), settings)
    report = live_report(cluster, head=head, base=base, settings=settings, base_ref="main")
    assert render_report(report, marker=marker_for(cluster.name), max_chars=10**9) == body
    verbs = by_verb(audit.requests(user_agent=user_agent, since=start))
    assert set(verbs) <= {"get", "list"}, verbs  # no create/patch/update/delete, no dry-run

    # and as the README's read-only ServiceAccount: its RBAC is enough for the whole report
    kubectl(control_plane, "apply", "-f", "-", stdin=readme_rbac())
    connection = Connection(
        kubeconfig=control_plane.kubeconfig,
        user_agent=user_agent,
        impersonate=f"system:serviceaccount:{NAMESPACE}:policy-reconciler-report",
    )
    reader = Cluster.connect(connection)
    try:
        as_reader = live_report(
            reader, head=head, base=base, settings=settings, target=cluster.name, base_ref="main"
        )
    finally:
        reader.close()
    assert render_report(as_reader, marker=marker_for(cluster.name), max_chars=10**9) == body


def readme_rbac() -> str:
    """The README's read-only RBAC block, exactly as a user would copy it."""
    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(), flags=re.S)
    (rbac,) = [str(b) for b in blocks if "name: policy-reconciler-report" in b]
    return rbac


def _exported(checkout: Path, tmp_path: Path) -> Path:
    """main's policies as plain files, as --base-ref exports them."""
    out = tmp_path / "main-export"
    git(checkout, "worktree", "add", "-q", str(out), "main")
    return out / "policies"
