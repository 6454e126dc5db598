"""The Markdown renderer (pull-request comment): layout, escaping, truncation, golden."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from hypothesis import given, settings
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
    Origin,
    Plan,
    Resource,
    Revision,
    Severity,
)
from reconciler.report import render_markdown
from reconciler.report.markdown import code_span, escape, fenced
from tests.factories import gnp_ref as gnp
from tests.factories import knp_ref as knp

GOLDEN = Path(__file__).parent / "golden" / "plan.md"
REV = Revision("4f1c2a9be07d3355aa1100ccddeeff0011223344", "/repo")
MARKER = "<!-- policy-reconciler: prod -->"
TABLE_HEAD = "| Action | Kind | Namespace | Name | Origin |"
CALICO = ("projectcalico.org", "v3")


def body(ref: ObjectRef, spec: dict[str, Any], labels: dict[str, str] | None = None) -> Any:
    meta = {"name": ref.name, **({"labels": labels} if labels else {})}
    return {"apiVersion": ref.api_version, "kind": ref.kind, "metadata": meta, "spec": spec}


def desired(ref: ObjectRef, path: str, line: int, spec: dict[str, Any] | None = None) -> Resource:
    return Resource(ref, body(ref, spec or {}), Origin(path, line))


def change(ref: ObjectRef, action: Action, *diff: DiffEntry, origin: str = "a.yaml") -> Change:
    return Change(ref, action, desired(ref, origin, 1), {}, diff)


# --- a representative plan: a node firewall rollout plus an app policy change -----------

HOST_INGRESS = {
    "order": 10,
    "selector": "has(host-endpoint)",
    "preDNAT": True,
    "applyOnForward": True,
    "types": ["Ingress"],
    "ingress": [{"action": "Allow", "source": {"nets": ["10.240.0.0/16", "192.168.0.0/16"]}}],
}
NGINX_BEFORE = [{"from": [{"podSelector": {"matchLabels": {"access": "true"}}}]}]
NGINX_AFTER = [
    {
        "from": [
            {"podSelector": {"matchLabels": {"access": "true"}}},
            {"ipBlock": {"cidr": "100.64.0.0/10"}},
            {"ipBlock": {"cidr": "203.0.113.0/24"}},
        ]
    }
]


def representative_plan() -> Plan:
    allow = gnp("allow-cluster-internal-ingress")
    hep = ObjectRef(*CALICO, "HostEndpoint", "", "node-2")
    hep_spec = {"node": "node-2", "interfaceName": "*", "expectedIPs": ["10.240.0.12"]}
    hep_body = body(hep, hep_spec, {"host-endpoint": "ingress"})
    drop = gnp("drop-other-ingress")
    nginx = knp("shop", "allow-nginx")
    legacy = knp("shop", "legacy-allow-all")
    ping = gnp("allow-ping-in-cluster")
    changes = (
        Change(
            allow, Action.CREATE, desired(allow, "hosts/node-firewall.yaml", 14, HOST_INGRESS), None
        ),
        Change(
            hep,
            Action.CREATE,
            Resource(hep, hep_body, Origin("hosts/host-endpoints.yaml", 21)),
            None,
        ),
        Change(
            drop,
            Action.DRIFT,
            desired(drop, "hosts/node-firewall.yaml", 38),
            {},
            (DiffEntry("spec.order", 30, 20),),
            drifted_by=(FieldChange("kubectl-edit", "Update", "2026-11-21T06:01:02Z"),),
        ),
        Change(
            nginx,
            Action.UPDATE,
            desired(nginx, "apps/shop/nginx.yaml", 1),
            {},
            (DiffEntry("spec.ingress", NGINX_BEFORE, NGINX_AFTER),),
        ),
        *(
            Change(gnp(f"same-{i}"), Action.UNCHANGED, desired(gnp(f"same-{i}"), "g.yaml", i), {})
            for i in range(14)
        ),
        Change(
            legacy,
            Action.PRUNE,
            None,
            body(legacy, {"podSelector": {}, "ingress": [{}]}),
            reason="no longer in the repository",
        ),
        Change(ping, Action.CONFLICT, desired(ping, "global/cluster-defaults.yaml", 9), {}),
    )
    warning = Finding(
        Severity.WARNING,
        "selector matches no HostEndpoint in the repository",
        Origin("hosts/masters.yaml", 5),
        gnp("ingress-k8s-masters"),
        "spec.selector",
    )
    return Plan(REV, changes, (warning,), target="prod")


def test_golden_representative_plan() -> None:
    rendered = render_markdown(representative_plan(), marker=MARKER)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(rendered, encoding="utf-8")
    assert rendered == GOLDEN.read_text(encoding="utf-8")


# --- layout -----------------------------------------------------------------------------


def test_marker_first_then_default_title_and_revision() -> None:
    lines = render_markdown(representative_plan(), marker=MARKER).splitlines()
    assert lines[0] == MARKER
    assert "### policy-reconciler plan for prod" in lines
    assert "Revision `4f1c2a9be07d`" in lines


def test_given_title_and_no_marker() -> None:
    out = render_markdown(representative_plan(), title="Firewall plan: staging")
    assert out.startswith("### Firewall plan: staging\n")
    assert "<!--" not in out


def test_summary_counts_by_action() -> None:
    out = render_markdown(representative_plan())
    assert (
        "**Plan:** 2 to create · 1 to update · 1 drifted (will heal) · 1 to prune"
        " · 1 in conflict (left alone) · 14 unchanged"
    ) in out.splitlines()


def test_table_lists_changed_objects_only() -> None:
    lines = render_markdown(representative_plan()).splitlines()
    start = lines.index(TABLE_HEAD)
    rows = lines[start + 2 : start + 8]
    assert rows[0] == (
        "| create | GlobalNetworkPolicy.projectcalico.org |  | allow-cluster-internal-ingress"
        " | hosts/node-firewall.yaml:14 |"
    )
    assert rows[3] == (
        "| update | NetworkPolicy.networking.k8s.io | shop | allow-nginx | apps/shop/nginx.yaml:1 |"
    )
    assert lines[start + 8] == ""
    assert not any("same-" in line for line in lines)


def test_details_block_per_changed_object_with_diff_fence() -> None:
    out = render_markdown(representative_plan())
    assert out.count("<details><summary>") == 6
    assert out.count("</details>") == 6
    drift = (
        "<details><summary>drift <code>GlobalNetworkPolicy.projectcalico.org/drop-other-ingress"
        "</code> (+1 -1)</summary>\n\n"
        "- Drifted: changed by `kubectl-edit` (Update) at 2026-11-21T06:01:02Z\n"
        "- From `hosts/node-firewall.yaml:38`\n\n"
        "```diff\n  spec:\n    types:\n    - Ingress\n-   order: 30\n+   order: 20\n```\n\n"
        "</details>"
    )
    assert drift in out


def test_validation_errors_section_with_locations() -> None:
    error = Finding(
        Severity.ERROR, "must be a number", Origin("hosts/a.yaml", 7), gnp("x"), "spec.order"
    )
    out = render_markdown(Plan(REV, (), (error,)))
    assert "#### Validation errors (1)" in out
    assert "- `hosts/a.yaml:7`: GlobalNetworkPolicy/x: spec.order: must be a number" in out
    assert "**Nothing will be applied until the validation errors are fixed.**" in out


def test_result_title_counts_and_failures() -> None:
    plan = representative_plan()
    first, second = plan.changes[:2]
    result = ApplyResult(plan, done=(first,), failed=(Failure(second, "denied | by `webhook`"),))
    out = render_markdown(plan, result=result)
    assert out.startswith("### policy-reconciler apply for prod\n")
    assert "**Apply:** 1 done, 1 failed, 0 skipped" in out
    assert "- `HostEndpoint.projectcalico.org/node-2`: denied \\| by \\`webhook\\`" in out
    assert "| create (done) | GlobalNetworkPolicy.projectcalico.org |" in out
    assert "| create (failed) | HostEndpoint.projectcalico.org |" in out


def test_no_changes() -> None:
    out = render_markdown(Plan(REV, (change(gnp("a"), Action.UNCHANGED),)))
    assert "No changes: the cluster matches the repository." in out
    assert TABLE_HEAD not in out


# --- escaping ---------------------------------------------------------------------------


def test_table_cells_escape_pipes_and_backticks() -> None:
    c = Change(gnp("a"), Action.CREATE, Resource(gnp("a"), {}, Origin("we|rd/`x`.yaml", 3)), None)
    row = next(line for line in render_markdown(Plan(REV, (c,))).splitlines() if "we" in line)
    assert (
        row == "| create | GlobalNetworkPolicy.projectcalico.org |  | a | we\\|rd/\\`x\\`.yaml:3 |"
    )
    assert len(re.split(r"(?<!\\)\|", row)) == 7  # five cells, no extra column


def test_fence_outgrows_backticks_in_values() -> None:
    value = "a ```\n``` b ````"
    out = render_markdown(
        Plan(REV, (change(gnp("a"), Action.UPDATE, DiffEntry("spec.x", None, value)),))
    )
    assert "`````diff\n" in out
    block = out.split("`````diff\n", 1)[1].split("\n`````", 1)[0]
    assert '+   x: "a ```\\n``` b ````"' in block.splitlines()


def test_fenced_and_code_span_helpers() -> None:
    assert fenced("plain", "diff") == "```diff\nplain\n```"
    assert fenced("x\n```\ny") == "````\nx\n```\ny\n````"
    assert code_span("a`b") == "``a`b``"
    assert code_span("`edge`") == "`` `edge` ``"


def test_inline_escape_keeps_one_line_and_neutralises_markup() -> None:
    assert escape("a|b *c* <script>\n# d") == "a\\|b \\*c\\* \\<script\\> \\# d"


def test_summary_and_reason_cannot_inject_html() -> None:
    c = Change(gnp("a"), Action.CONFLICT, None, {}, reason="</details><img src=x>")
    out = render_markdown(Plan(REV, (c,)))
    assert re.search(r"(?<!\\)<img", out) is None  # only the escaped form
    assert "- Reason: \\</details\\>\\<img src=x\\>" in out


# --- truncation -------------------------------------------------------------------------


def big_plan(objects: int) -> Plan:
    def one(i: int) -> Change:
        before = [{"action": "Allow", "ports": list(range(i, i + 40))}]
        after = [{"action": "Deny", "ports": list(range(i, i + 41))}]
        return change(
            gnp(f"policy-{i:04d}"), Action.UPDATE, DiffEntry("spec.ingress", before, after)
        )

    return Plan(REV, tuple(one(i) for i in range(objects)), target="prod")


def test_fits_untouched_when_small() -> None:
    out = render_markdown(big_plan(3), max_chars=60000)
    assert "omitted" not in out
    assert out.count("<details>") == 3


def test_drops_last_diffs_first_and_says_how_many() -> None:
    full = render_markdown(big_plan(40), max_chars=10**9)
    out = render_markdown(big_plan(40), max_chars=len(full) // 2)
    assert len(out) <= len(full) // 2
    kept = out.count("<details>")
    assert 0 < kept < 40
    assert "policy-0000</code>" in out  # the first objects keep their diffs
    assert "policy-0039</code>" not in out
    assert out.count("| update |") == 40  # every table row stays
    note = (
        f"_{40 - kept} object diffs omitted to stay under GitHub's comment size limit;"
        " run `policy-reconciler plan` for the full output._"
    )
    assert out.rstrip("\n").endswith(note)


def test_then_drops_table_rows() -> None:
    out = render_markdown(big_plan(400), max_chars=4000)
    assert len(out) <= 4000
    assert "<details>" not in out
    rows = out.count("| update |")
    assert 0 < rows < 400
    assert f"_400 object diffs and {400 - rows} table rows omitted" in out


def test_huge_findings_are_cut_at_a_line() -> None:
    findings = tuple(
        Finding(Severity.ERROR, f"problem {i}", Origin("f.yaml", i)) for i in range(1, 2000)
    )
    out = render_markdown(Plan(REV, (), findings), max_chars=3000)
    assert len(out) <= 3000
    assert "the rest of the report omitted" in out
    assert out.splitlines()[-3].startswith("- `f.yaml:")


@settings(max_examples=40, deadline=None)
@given(objects=st.integers(0, 60), max_chars=st.integers(300, 20000))
def test_never_exceeds_max_chars(objects: int, max_chars: int) -> None:
    out = render_markdown(big_plan(objects), max_chars=max_chars, marker=MARKER)
    assert len(out) <= max_chars
    assert out.startswith(MARKER)
    assert out.count("<details>") == out.count("</details>")
    assert out.count("```diff") * 2 == len(re.findall(r"^```", out, flags=re.M))
