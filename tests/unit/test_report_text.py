"""The terminal renderer: `►` blocks, field diffs, drift, findings, summary, colour."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from reconciler.model import (
    Action,
    ApplyResult,
    Change,
    DiffEntry,
    Failure,
    FieldChange,
    Finding,
    ObjectRef,
    Order,
    Origin,
    Resource,
    Revision,
    Severity,
)
from reconciler.plan import Desired, Live
from reconciler.report import render_markdown, render_text
from reconciler.report.text import KEPT_SHOWN, diff_lines, format_value, order_lines
from tests.factories import change, plan, planned
from tests.factories import gnp_ref as gnp
from tests.factories import knp_ref as knp

REV = Revision("4f1c2a9be07d3355aa1100ccddeeff0011223344", "/repo")


def unchanged(count: int) -> list[Change]:
    return [change(gnp(f"same-{i}"), Action.UNCHANGED) for i in range(count)]


ORDER = DiffEntry("spec.order", 10, 20)


def test_block_header_diff_and_origin() -> None:
    out = render_text(plan(change(gnp("drop-other-ingress"), Action.UPDATE, ORDER)))
    assert out.splitlines()[:5] == [
        "► GlobalNetworkPolicy.projectcalico.org/drop-other-ingress update",
        "    spec:",
        "  -   order: 10",
        "  +   order: 20",
        "  from policies/hosts.yaml:12",
    ]


def test_namespaced_header_uses_kind_namespace_name() -> None:
    out = render_text(plan(change(knp("shop", "allow-nginx"), Action.CREATE, ORDER)))
    assert out.startswith("► NetworkPolicy.networking.k8s.io/shop/allow-nginx create\n")


def test_unchanged_counted_not_listed_and_summary_line() -> None:
    changes = [
        change(gnp("a"), Action.CREATE, ORDER),
        change(gnp("b"), Action.CREATE, ORDER),
        change(gnp("c"), Action.UPDATE, ORDER),
        change(gnp("d"), Action.DRIFT, ORDER),
        *unchanged(14),
    ]
    out = render_text(plan(*changes))
    assert "same-" not in out
    assert out.count("►") == 4
    summary = "Plan: 2 to create, 1 to update, 1 drifted (will heal), 0 to prune, 14 unchanged"
    assert out.splitlines()[-1] == summary


def test_conflict_and_adopt_counted_only_when_present() -> None:
    out = render_text(
        plan(change(gnp("a"), Action.CONFLICT), change(gnp("b"), Action.ADOPT, ORDER))
    )
    assert out.splitlines()[-1] == (
        "Plan: 0 to create, 0 to update, 0 drifted (will heal), 1 to adopt, 0 to prune,"
        " 1 in conflict (left alone), 0 unchanged"
    )


def test_no_changes_says_so() -> None:
    out = render_text(plan(*unchanged(3)))
    assert "No changes: the cluster matches the repository." in out
    assert "►" not in out


def test_drift_names_manager_operation_and_time() -> None:
    who = FieldChange("kubectl-edit", "Update", "2026-11-21T06:01:02Z")
    out = render_text(plan(change(gnp("x"), Action.DRIFT, ORDER, drifted_by=(who,))))
    assert "  drifted: changed by kubectl-edit (Update) at 2026-11-21T06:01:02Z\n" in out


def test_conflict_explains_itself_without_a_reason() -> None:
    out = render_text(plan(change(gnp("x"), Action.CONFLICT)))
    assert "No changes" not in out  # a conflict needs attention even though nothing is written
    assert "  reason: exists but is not managed by policy-reconciler" in out


def test_reason_is_printed() -> None:
    out = render_text(plan(change(gnp("x"), Action.PRUNE, reason="no longer in the repository")))
    assert "  reason: no longer in the repository\n" in out


def test_generated_origin_names_template_and_target() -> None:
    origin = Origin("hosts/hep.yaml", 3, "HostEndpointTemplate/nodes", "Node/node-2")
    ref = ObjectRef("projectcalico.org", "v3", "HostEndpoint", "", "node-2")
    out = render_text(plan(change(ref, Action.CREATE, ORDER, origin=origin)))
    assert "  from hosts/hep.yaml:3 (HostEndpointTemplate/nodes for Node/node-2)\n" in out


def test_nested_values_are_compact_json_and_strings_plain() -> None:
    diff = (
        DiffEntry("spec.selector", None, "has(host-endpoint)"),
        DiffEntry("spec.types", ["Ingress"], ["Ingress", "Egress"]),
        DiffEntry("spec.name", None, "10"),  # a string that looks like a number stays quoted
    )
    lines = diff_lines(change(gnp("x"), Action.UPDATE, *diff))
    assert lines == [
        "+ spec.selector: has(host-endpoint)",
        '- spec.types: ["Ingress"]',
        '+ spec.types: ["Ingress", "Egress"]',
        '+ spec.name: "10"',
    ]


def test_long_nested_values_expand_to_the_fields_that_differ() -> None:
    rule = {"action": "Allow", "source": {"nets": [f"10.{i}.0.0/16" for i in range(12)]}}
    after = [{**rule, "action": "Deny"}]
    lines = diff_lines(change(gnp("x"), Action.UPDATE, DiffEntry("spec.ingress", [rule], after)))
    assert lines == ["- spec.ingress[0].action: Allow", "+ spec.ingress[0].action: Deny"]


def test_long_scalar_is_never_cut() -> None:
    assert format_value("x" * 500) == "x" * 500


def test_create_without_diff_shows_the_object_fields() -> None:
    body = {
        "apiVersion": "projectcalico.org/v3",
        "kind": "HostEndpoint",
        "metadata": {"name": "node-2", "labels": {"host-endpoint": "ingress"}},
        "spec": {"node": "node-2", "interfaceName": "*"},
    }
    ref = ObjectRef("projectcalico.org", "v3", "HostEndpoint", "", "node-2")
    assert diff_lines(change(ref, Action.CREATE, body=body)) == [
        '+ metadata.labels: {"host-endpoint": "ingress"}',
        "+ spec.node: node-2",
        "+ spec.interfaceName: *",
    ]


def test_managed_fields_and_last_applied_never_printed() -> None:
    secret = '{"apiVersion":"v1","kind":"Secret","data":{"password":"hunter2"}}'
    diff = (
        DiffEntry("metadata.managedFields", None, [{"manager": "kubectl-edit"}]),
        DiffEntry(
            'metadata.annotations["kubectl.kubernetes.io/last-applied-configuration"]',
            None,
            secret,
        ),
        DiffEntry("metadata", None, {"managedFields": [{"manager": "kubectl-edit"}]}),
    )
    for shown in (False, True):
        out = render_text(plan(change(gnp("x"), Action.UPDATE, *diff)), show_managed=shown)
        assert "hunter2" not in out
        assert "managedFields" not in out
    # Bookkeeping by default; with --show-managed-fields, only a digest of the value.
    assert "last-applied" not in render_text(plan(change(gnp("x"), Action.UPDATE, *diff)))
    out = render_text(plan(change(gnp("x"), Action.UPDATE, *diff)), show_managed=True)
    assert "last-applied-configuration" in out and "(hidden, sha256:" in out


def test_findings_errors_first_in_file_line_form() -> None:
    warning = Finding(Severity.WARNING, "matches nothing", Origin("a.yaml", 1), gnp("w"), "spec")
    error = Finding(Severity.ERROR, "must be a number", Origin("b.yaml", 7), gnp("e"), "spec.order")
    lines = render_text(plan(findings=(warning, error))).splitlines()
    error_line = "  b.yaml:7: GlobalNetworkPolicy/e: spec.order: must be a number"
    warning_line = "  a.yaml:1: GlobalNetworkPolicy/w: spec: matches nothing"
    assert lines.index("Validation errors (1):") < lines.index(error_line)
    assert lines.index(error_line) < lines.index("Warnings (1):") < lines.index(warning_line)
    assert "Nothing will be applied until the errors are fixed." in lines


def test_no_colour_unless_asked() -> None:
    p = plan(change(gnp("a"), Action.CREATE, ORDER), change(gnp("b"), Action.PRUNE))
    assert "\x1b[" not in render_text(p)
    coloured = render_text(p, color=True)
    assert "\x1b[1m\x1b[32m► GlobalNetworkPolicy.projectcalico.org/a create\x1b[0m" in coloured
    assert "\x1b[1m\x1b[31m► GlobalNetworkPolicy.projectcalico.org/b prune\x1b[0m" in coloured
    assert "\x1b[32m+ spec:\x1b[0m" in coloured


def test_drift_and_update_are_yellow() -> None:
    p = plan(change(gnp("a"), Action.DRIFT, ORDER), change(gnp("b"), Action.UPDATE, ORDER))
    coloured = render_text(p, color=True)
    assert "\x1b[33m► GlobalNetworkPolicy.projectcalico.org/a drift" in coloured
    assert "\x1b[33m► GlobalNetworkPolicy.projectcalico.org/b update" in coloured


def test_result_marks_each_block_and_lists_failures() -> None:
    a, b, c = (change(gnp(n), Action.CREATE, ORDER) for n in "abc")
    p = plan(a, b, c)
    result = ApplyResult(p, done=(a,), failed=(Failure(b, "admission denied"),), skipped=(c,))
    out = render_text(p, result=result)
    assert "► GlobalNetworkPolicy.projectcalico.org/a create (done)\n" in out
    assert "► GlobalNetworkPolicy.projectcalico.org/b create (failed)\n" in out
    assert "► GlobalNetworkPolicy.projectcalico.org/c create (skipped)\n" in out
    assert out.splitlines()[-2:] == [
        "Apply: 1 done, 1 failed, 1 skipped",
        "  failed: GlobalNetworkPolicy.projectcalico.org/b: admission denied",
    ]


KEYS = st.from_regex(r"[a-z]{1,8}", fullmatch=True)  # paths then hold no ": "
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=300),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=30,
)


@given(before=json_values, after=json_values)
def test_every_diff_line_is_one_minus_or_plus_line(before: Any, after: Any) -> None:
    entry = DiffEntry("spec.x", before, after)
    for line in diff_lines(change(gnp("x"), Action.UPDATE, entry)):
        assert line[:2] in ("- ", "+ ")
        assert "\n" not in line


def test_prune_guard_is_its_own_section_and_counted() -> None:
    """The issue's case: 17 of 26 refused read as a refusal, not a validation error."""
    sets = [
        ObjectRef("projectcalico.org", "v3", "GlobalNetworkSet", "", f"s-{i:02}") for i in range(26)
    ]
    labels = {"applyset.kubernetes.io/part-of": "x"}

    def body(r: ObjectRef) -> dict[str, Any]:
        return {
            "apiVersion": r.api_version,
            "kind": r.kind,
            "metadata": {"name": r.name, "labels": labels},
        }

    desired = [Desired(Resource(r, body(r), Origin("s.yaml", 1)), body(r)) for r in sets[:9]]
    live = [Live(r, body(r), owned=True) for r in sets]
    out = render_text(planned(desired, live))
    assert "Validation errors" not in out
    section = out.split("Prune refused:\n", 1)[1].split("\n\n", 1)[0]
    assert "refusing to prune 17 of 26" in section and "--max-prune 66%" in section
    assert "0 to prune, 17 prune refused," in out.splitlines()[-2]
    assert (
        out.splitlines()[-1]
        == "Nothing will be applied: the prune guard refused (see Prune refused)."
    )
    md = render_markdown(planned(desired, live))
    assert "#### Prune refused\n\n- " in md and "Validation errors" not in md
    assert "0 to prune · 17 prune refused ·" in md


def test_after_an_apply_only_the_failures_and_the_summary() -> None:
    a, b, c = (change(gnp(n), Action.CREATE, ORDER) for n in "abc")
    p = plan(a, b, c)
    result = ApplyResult(p, done=(a,), failed=(Failure(b, "admission denied"),), skipped=(c,))
    out = render_text(p, result=result, only_failures=True)
    assert (
        out.count("►") == 1 and "► GlobalNetworkPolicy.projectcalico.org/b create (failed)" in out
    )
    assert (
        out.splitlines()[-1]
        == "  failed: GlobalNetworkPolicy.projectcalico.org/b: admission denied"
    )
    assert render_text(p, result=result).count("►") == 3  # -v: every block


def test_a_bridged_order_lists_a_few_kept_flows_and_counts_the_rest() -> None:
    kept = (*(f"pods a{i} -> pods b tcp/{i}" for i in range(KEPT_SHOWN + 3)), "x" * 500)
    bridged = replace(plan(), order=Order("bridged", states=4, note="n", kept=kept))
    lines = order_lines(bridged)
    assert lines[0] == "Apply order: bridged, 4 states checked on the connectivity model (n)"
    assert lines[1:-1] == [f"  keeps: {k}" for k in kept[:KEPT_SHOWN]]
    assert lines[-1] == "  keeps: ... and 4 more (-o json: order.kept)"
    assert order_lines(plan()) == []  # the plain kind order says nothing
