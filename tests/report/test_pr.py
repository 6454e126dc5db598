"""The pull-request report: the split rule, the layout, truncation, exit codes, golden."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import pipeline
from reconciler.cli.plan import inventory_of
from reconciler.model import (
    Action,
    Change,
    DiffEntry,
    FieldChange,
    Finding,
    ObjectRef,
    Origin,
    Plan,
    Resource,
    Revision,
    Severity,
)
from reconciler.pipeline.review import offline_report
from reconciler.plan.planner import REASONS
from reconciler.report.pr import (
    Kept,
    PrReport,
    compare,
    exit_code,
    render_report,
)
from reconciler.report.publish import marker_for
from tests.factories import gnp_ref as gnp

EXAMPLE_REPO = Path(__file__).parents[2] / "example-repo"
GOLDEN = Path(__file__).parent / "golden" / "example-repo.md"
HEAD_REV = Revision("4f1c2a9be07d3355aa1100ccddeeff0011223344", "head")
BASE_REV = Revision("9a8b7c6d5e4f00112233445566778899aabbccdd", "base")
PATCHED = FieldChange("kubectl-patch", "Update", "2026-11-21T05:45:09Z")


def change(ref: ObjectRef, action: Action, *diff: DiffEntry, **kw: Any) -> Change:
    desired = None if action is Action.PRUNE else Resource(ref, {}, Origin("p.yaml", 3))
    reason = kw.pop("reason", REASONS.get(action, ""))
    return Change(ref, action, desired, {}, tuple(diff), reason=reason, **kw)


def plans(head: list[Change], base: list[Change], **kw: Any) -> PrReport:
    return compare(
        Plan(HEAD_REV, tuple(head), target="prod"),
        Plan(BASE_REV, tuple(base), findings=kw.pop("base_findings", ())),
        target="prod",
        base_ref="main",
    )


ORDER = DiffEntry("spec.order", 999, 10)  # kubectl-patch set 999; Git says 10
DRIFTED_B = change(gnp("b"), Action.DRIFT, ORDER, drifted_by=(PATCHED,))


# --- the split rule ---------------------------------------------------------------------


def test_identical_drift_in_both_plans_is_drift_not_this_prs() -> None:
    report = plans([DRIFTED_B], [DRIFTED_B])
    assert report.changes == () and report.kept == ()
    assert report.drift == (DRIFTED_B,)
    assert exit_code(report) == 0
    assert exit_code(report, fail_on_drift=True) == 1


def test_pr_change_elsewhere_is_kept_apart_from_drift() -> None:
    update_a = change(gnp("a"), Action.UPDATE, DiffEntry("spec.selector", "x", "y"))
    report = plans([update_a, DRIFTED_B], [change(gnp("a"), Action.UNCHANGED), DRIFTED_B])
    assert report.changes == (update_a,)
    assert report.drift == (DRIFTED_B,)
    assert exit_code(report) == 1


def test_pr_changing_another_field_of_a_drifted_object_shows_only_its_field() -> None:
    selector = DiffEntry("spec.selector", "all()", "has(web)")
    head = change(gnp("b"), Action.DRIFT, ORDER, selector, drifted_by=(PATCHED,))
    report = plans([head], [DRIFTED_B])
    (mine,) = report.changes
    assert mine.action is Action.UPDATE and mine.diff == (selector,)
    assert mine.drifted_by == ()
    assert "1 other field differs from the base branch already" in mine.reason
    assert report.drift == (DRIFTED_B,) and report.kept == ()


def test_pr_writing_the_drifted_value_into_git_keeps_it() -> None:
    report = plans([change(gnp("b"), Action.UNCHANGED)], [DRIFTED_B])
    assert report.changes == ()
    assert report.kept == (Kept(gnp("b"), Action.DRIFT, ("spec.order",)),)
    assert exit_code(report) == 1  # the PR changes what Git says the firewall is
    body = render_report(report)
    assert "**Kept as the cluster has it (1):**" in body
    assert "- `GlobalNetworkPolicy.projectcalico.org/b`: keeps `spec.order`" in body


def test_partly_kept_drift() -> None:
    drift = DiffEntry("spec.types", ["Ingress"], ["Ingress", "Egress"])
    base = change(gnp("b"), Action.DRIFT, ORDER, drift, drifted_by=(PATCHED,))
    head = change(gnp("b"), Action.DRIFT, drift, drifted_by=(PATCHED,))  # order now 999 in Git
    report = plans([head], [base])
    assert report.changes == ()
    assert report.kept == (Kept(gnp("b"), Action.DRIFT, ("spec.order",)),)


def test_pr_moving_a_drifted_field_to_a_third_value_is_an_update() -> None:
    third = DiffEntry("spec.order", 999, 20)
    head = change(gnp("b"), Action.DRIFT, third, drifted_by=(PATCHED,))
    report = plans([head], [DRIFTED_B])
    (mine,) = report.changes
    assert (mine.action, mine.diff, mine.reason) == (Action.UPDATE, (third,), "changed in Git")
    assert report.drift == (DRIFTED_B,)


def test_base_not_applied_yet_is_out_of_sync_unless_the_pr_changes_it() -> None:
    create = change(gnp("n"), Action.CREATE, DiffEntry("spec.order", None, 5))
    same = plans([create], [create])
    assert same.changes == () and same.drift == (create,)
    other = change(gnp("n"), Action.CREATE, DiffEntry("spec.order", None, 6))
    differs = plans([other], [create])
    assert differs.changes == (other,)


def test_pr_deleting_a_file_is_a_prune_and_a_dropped_create_is_kept_absent() -> None:
    prune = change(gnp("old"), Action.PRUNE, reason="no longer in Git")
    never = change(gnp("never-applied"), Action.CREATE, DiffEntry("spec.order", None, 1))
    report = plans([prune], [change(gnp("old"), Action.UNCHANGED), never])
    assert report.changes == (prune,)
    assert report.kept == (Kept(gnp("never-applied"), Action.CREATE, ()),)
    assert "stays absent: this PR drops it from Git" in render_report(report)


def test_invalid_base_counts_everything_as_this_prs() -> None:
    error = Finding(Severity.ERROR, "bad", Origin("x.yaml", 1))
    report = plans([DRIFTED_B], [DRIFTED_B], base_findings=(error,))
    assert [c.action for c in report.changes] == [Action.UPDATE]
    assert report.drift == ()
    body = render_report(report)
    assert "The base branch has 1 validation errors" in body
    assert "Unknown: the base branch does not validate." in body


def test_invalid_head_exits_2_and_shows_path_and_line() -> None:
    error = Finding(
        Severity.ERROR, "not a CIDR", Origin("hosts/a.yaml", 12), gnp("a"), "spec.nets[0]"
    )
    report = compare(Plan(HEAD_REV, (), (error,)), Plan(BASE_REV, ()), target="prod")
    assert exit_code(report) == 2
    body = render_report(report)
    assert "##### Validation errors (1)" in body
    assert "- `hosts/a.yaml:12`: GlobalNetworkPolicy/a: spec.nets\\[0\\]: not a CIDR" in body


# --- layout -----------------------------------------------------------------------------


def test_live_layout_title_sections_and_drift_table() -> None:
    update_a = change(gnp("a"), Action.UPDATE, DiffEntry("spec.selector", "x", "y"))
    report = plans([update_a, DRIFTED_B], [change(gnp("a"), Action.UNCHANGED), DRIFTED_B])
    body = render_report(report, marker=marker_for("prod"))
    lines = body.splitlines()
    assert lines[0] == "<!-- policy-reconciler:report target=prod -->"
    assert "### policy-reconciler report for prod" in lines
    assert (
        "Head `4f1c2a9be07d` planned against the live cluster; drift is measured against base "
        "`9a8b7c6d5e4f` (`main`). Read-only: nothing was applied."
    ) in lines
    assert "**This PR:** 0 to create · 1 to update · 0 to prune" in lines
    assert "| update | GlobalNetworkPolicy.projectcalico.org |  | a | p.yaml:3 |" in lines
    assert "**Out of sync:** 1 drifted" in lines
    assert (
        "| drift | GlobalNetworkPolicy.projectcalico.org |  | b | "
        "changed by `kubectl-patch` (Update) at "
        "2026-11-21T05:45:09Z |"
    ) in lines
    pr_part, drift_part = body.split("#### Already out of sync (not from this pull request)")
    assert (
        "<code>GlobalNetworkPolicy.projectcalico.org/a</code>" in pr_part
        and "/b</code>" not in pr_part
    )
    assert "- Drifted: changed by `kubectl-patch` (Update)" in drift_part


def test_no_changes_and_no_drift() -> None:
    report = plans([change(gnp("a"), Action.UNCHANGED)], [change(gnp("a"), Action.UNCHANGED)])
    body = render_report(report)
    assert "No changes: this pull request writes nothing to the cluster." in body
    assert "None: the cluster matches the base branch." in body
    assert exit_code(report, fail_on_drift=True) == 0


def test_manager_names_cannot_break_the_drift_table() -> None:
    odd = FieldChange("evil|manager", "Update", "t")
    report = plans([], [change(gnp("b"), Action.DRIFT, ORDER, drifted_by=(odd,))])
    row = next(line for line in render_report(report).splitlines() if line.startswith("| drift"))
    assert len(re.split(r"(?<!\\)\|", row)) == 7  # five cells, no more


def test_truncates_drift_diffs_first_and_says_so_under_the_forges_limit() -> None:
    def update(i: int, prefix: str) -> Change:
        before = [{"action": "Allow", "ports": list(range(i, i + 60))}]
        after = [{"action": "Deny", "ports": list(range(i, i + 61))}]
        return change(
            gnp(f"{prefix}-{i:03d}"), Action.UPDATE, DiffEntry("spec.ingress", before, after)
        )

    mine = [update(i, "pr") for i in range(60)]
    theirs = [replace_action(update(i, "drift"), Action.DRIFT) for i in range(120)]
    report = plans(mine + theirs, theirs)
    body = render_report(report, marker=marker_for("prod"), max_chars=65_536, forge="GitHub")
    assert len(body) <= 65_536
    assert "pr-000</code>" in body  # this PR's diffs go last
    assert "drift-119</code>" not in body
    assert re.search(
        r"_\d+ object diffs omitted to stay under GitHub's comment size limit "
        r"\(65,536 characters\); the CI job's log has the full report\._\n$",
        body,
    )
    assert body.count("<details>") == body.count("</details>")


def replace_action(c: Change, action: Action) -> Change:
    return Change(c.ref, action, c.desired, c.live, c.diff, drifted_by=(PATCHED,))


# --- offline, and the golden copy -------------------------------------------------------

LEGACY = """\
# Left over from before the namespace defaults: lets anything in.
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: legacy-allow-all
  namespace: shop
spec:
  podSelector: {}
  ingress:
    - {}
"""


def example_base(tmp_path: Path) -> Path:
    """example-repo as the base branch had it: ping ordered later, no redis client
    egress yet, and a legacy allow-all that this pull request removes."""
    base = tmp_path / "base"
    shutil.copytree(EXAMPLE_REPO, base)
    defaults = base / "global" / "cluster-defaults.yaml"
    text = defaults.read_text()
    ping = "  name: allow-ping-in-cluster\nspec:\n  order: 100\n"
    assert ping in text
    defaults.write_text(text.replace(ping, ping.replace("100", "200")))
    (base / "apps" / "shop" / "redis-client.yaml").unlink()
    (base / "apps" / "shop" / "legacy-allow-all.yaml").write_text(LEGACY)
    return base


def example_report(tmp_path: Path) -> PrReport:
    settings = pipeline.Settings()
    head = pipeline.render(EXAMPLE_REPO, HEAD_REV, settings)
    base = pipeline.render(example_base(tmp_path), BASE_REV, settings)
    inventory = inventory_of(EXAMPLE_REPO.parent / "examples" / "inventory.yaml")
    return offline_report(
        head=head, base=base, settings=settings, base_ref="main", inventory=inventory
    )


def test_connectivity_section_comes_before_the_field_diffs(tmp_path: Path) -> None:
    """The flows this PR opens (redis client egress) and closes (the legacy allow-all),
    each with the policy that causes it, above the object table."""
    body = render_report(example_report(tmp_path))
    flows, table = body.index("#### Connectivity changes"), body.index("| Action | Kind |")
    assert flows < table
    section = body[flows:table]
    opens, closes = section.index("**Opens"), section.index("**Closes")
    assert "`tcp/6379`" in section[opens:closes] and "allow-redis-egress" in section[opens:closes]
    assert "legacy-allow-all" in section[closes:]
    assert ":no_entry:" not in body  # every check holds


def test_failing_checks_come_first_and_fail_the_report(tmp_path: Path) -> None:
    head_dir = tmp_path / "head"
    shutil.copytree(EXAMPLE_REPO, head_dir)
    firewall = head_dir / "hosts" / "node-firewall.yaml"
    firewall.write_text(firewall.read_text().replace("          - 10.240.0.0/16 # nodes\n", ""))
    settings = pipeline.Settings()
    head = pipeline.render(head_dir, HEAD_REV, settings)
    base = pipeline.render(EXAMPLE_REPO, BASE_REV, settings)
    inventory = inventory_of(EXAMPLE_REPO.parent / "examples" / "inventory.yaml")
    report = offline_report(head=head, base=base, settings=settings, inventory=inventory)
    body = render_report(report)
    failing = body.index("Connectivity checks failing (1)")
    assert failing < body.index("#### Connectivity changes") < body.index("| Action | Kind |")
    assert "**nodes-reach-each-other**: `node node-1 -> node node-2 tcp/10250 denied" in body
    assert exit_code(report) == 2
    skipped = offline_report(
        head=head,
        base=base,
        settings=replace(settings, skip_checks=frozenset({"nodes-reach-each-other"})),
        inventory=inventory,
    )
    body = render_report(skipped)
    assert "> :warning: ConnectivityCheck nodes-reach-each-other is skipped (--skip-checks)" in body
    assert exit_code(skipped) == 1


def test_offline_example_repo_against_its_base(tmp_path: Path) -> None:
    report = example_report(tmp_path)
    assert report.offline and report.target == "offline"
    assert {(str(c.ref), c.action) for c in report.changes} == {
        ("GlobalNetworkPolicy/allow-ping-in-cluster", Action.UPDATE),
        ("NetworkPolicy/shop/allow-redis-egress", Action.CREATE),
        ("NetworkPolicy/shop/legacy-allow-all", Action.PRUNE),
    }
    assert exit_code(report) == 1
    assert "Not checked: this report ran `--offline`." in render_report(report)


def test_golden_example_repo(tmp_path: Path) -> None:
    body = render_report(example_report(tmp_path), marker=marker_for("offline"))
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(body, encoding="utf-8")
    assert body == GOLDEN.read_text(encoding="utf-8")


@settings(max_examples=30, deadline=None)
@given(
    mine=st.integers(0, 40),
    theirs=st.integers(0, 40),
    max_chars=st.integers(1000, 30000),
)
def test_never_exceeds_max_chars(mine: int, theirs: int, max_chars: int) -> None:
    def one(i: int, action: Action, **kw: Any) -> Change:
        entry = DiffEntry("spec.ingress", [{"ports": list(range(i, i + 30))}], None)
        return change(gnp(f"{action.value}-{i}"), action, entry, **kw)

    drift = [one(i, Action.DRIFT, drifted_by=(PATCHED,)) for i in range(theirs)]
    report = plans([one(i, Action.UPDATE) for i in range(mine)] + drift, drift)
    body = render_report(report, marker=marker_for("prod"), max_chars=max_chars)
    assert len(body) <= max_chars
    assert body.startswith(marker_for("prod"))
    assert body.count("<details>") == body.count("</details>")
