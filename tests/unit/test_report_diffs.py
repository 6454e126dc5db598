"""Issue 12's cases, each as a test: every change a reviewer must see is on the page."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import pipeline
from reconciler.cli.report import ci_run_url
from reconciler.model import (
    Action,
    Change,
    DiffEntry,
    FieldChange,
    ObjectRef,
    Origin,
    Plan,
    Resource,
)
from reconciler.plan import Desired, Live
from reconciler.plan.planner import REASONS
from reconciler.report import render_json, render_markdown, render_text
from reconciler.report.jsonout import same_json
from reconciler.report.objdiff import (
    Line,
    diff_documents,
    object_diff,
    object_documents,
    parse_path,
)
from reconciler.report.pr import compare, render_report
from reconciler.report.text import DiffStyle, change_diff
from tests.factories import REVISION, planned

OLD = (
    "kubernetes.io/metadata.name not in {'kube-system', 'calico-system', 'calico-apiserver', "
    "'tigera-operator', 'ingress-nginx', 'cattle-system'}"
)
NEW = OLD.removesuffix("}") + ", 'shop'}"
GNP = ObjectRef("projectcalico.org", "v3", "GlobalNetworkPolicy", "", "default-deny-all")
PART_OF = "applyset.kubernetes.io/part-of"


def gnp_body(name: str, **spec: Any) -> dict[str, Any]:
    meta = {"name": name, "labels": {PART_OF: "applyset-x-v1"}}
    return {"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy", "metadata": meta,
            "spec": spec}  # fmt: skip


def update(before: dict[str, Any], after: dict[str, Any]) -> Plan:
    """The planner's own plan of `after` over a live object we applied as `before`."""
    ref = ObjectRef("projectcalico.org", "v3", "GlobalNetworkPolicy", "", after["metadata"]["name"])
    desired = Desired(Resource(ref, after, Origin("global/defaults.yaml", 70)), after)
    return planned([desired], [Live(ref, before, owned=True)])


def test_a_long_selector_that_changes_is_shown_whole_with_the_change_marked() -> None:
    plan = update(gnp_body("default-deny-all", namespaceSelector=OLD),
                  gnp_body("default-deny-all", namespaceSelector=NEW))  # fmt: skip
    for out in (render_text(plan), render_markdown(plan)):
        assert "'cattle-system', 'shop'}" in out
        assert "chars)" not in out and "…" not in out
    lines = render_text(plan).splitlines()
    added = next(i for i, line in enumerate(lines) if "'shop'}" in line)
    assert lines[added].lstrip().startswith("+")
    marks = lines[added + 1]  # `^` under exactly the words that are new
    start, end = marks.index("^"), marks.rindex("^") + 1
    assert lines[added][start:end] == ", 'shop'"
    coloured = render_text(plan, color=True)
    assert "\x1b[7m, 'shop'\x1b[27m" in coloured  # reverse video on a terminal, no carets
    # negative control: the pre-issue cut would have hidden it
    assert NEW[:88] == OLD[:88]


RULE = {"action": "Allow", "protocol": "TCP", "source": {"selector": "network-set == 'admin'"},
        "destination": {"ports": [22]}}  # fmt: skip
OTHER = {"action": "Deny", "protocol": "UDP", "destination": {"ports": [53]}}


def test_a_port_added_to_a_rule_shows_the_rule_its_action_and_peer() -> None:
    opened = {**RULE, "destination": {"ports": [22, 2222]}}
    plan = update(gnp_body("ssh", ingress=[OTHER, RULE]), gnp_body("ssh", ingress=[OTHER, opened]))
    assert [e.path for e in plan.changes[0].diff] == ["spec.ingress[1].destination.ports[1]"]
    diff = change_diff(plan.changes[0])
    assert diff == [
        "  spec:",
        "    ingress:",
        "@@ 5 unchanged lines @@",  # the other rule
        "    - action: Allow",
        "      protocol: TCP",
        "      source:",
        "        selector: network-set == 'admin'",
        "      destination:",
        "        ports:",
        "        - 22",
        "+       - 2222",
        "    types:",
        "    - Ingress",
    ]
    compact = change_diff(plan.changes[0], DiffStyle(fields=True))
    assert compact == ["+ spec.ingress[1].destination.ports[1]: 2222"]  # --diff fields


def test_a_calico_and_a_kubernetes_policy_of_one_name_read_apart_everywhere() -> None:
    calico = ObjectRef(
        "projectcalico.org", "v3", "NetworkPolicy", "shop", "allow-prometheus-scrape"
    )
    k8s = ObjectRef("networking.k8s.io", "v1", "NetworkPolicy", "shop", "allow-prometheus-scrape")
    changes = tuple(
        Change(
            r,
            Action.CREATE,
            Resource(r, {"spec": {"order": 1}}, Origin("a.yaml", 1)),
            None,
            (DiffEntry("spec.order", None, 1),),
        )
        for r in (calico, k8s)
    )
    plan = Plan(REVISION, changes)
    text, markdown = render_text(plan), render_markdown(plan)
    doc = json.loads(render_json(plan))
    for name in ("NetworkPolicy.projectcalico.org/shop/allow-prometheus-scrape",
                 "NetworkPolicy.networking.k8s.io/shop/allow-prometheus-scrape"):  # fmt: skip
        assert f"► {name} create" in text
        assert f"<code>{name}</code>" in markdown
        assert name in [c["qualifiedRef"] for c in doc["changes"]]
    assert "| create | NetworkPolicy.projectcalico.org | shop |" in markdown


LIVE = {
    "apiVersion": "crd.projectcalico.org/v1",
    "kind": "NetworkPolicy",
    "metadata": {
        "name": "legacy",
        "namespace": "shop",
        "uid": "u-1",
        "labels": {PART_OF: "applyset-x-v1", "team": "shop"},
        "annotations": {
            "projectcalico.org/metadata": '{"labels":{"team":"shop"}}',
            "policy-reconciler.io/origin": "x",
        },
    },
    "spec": {"selector": "app == 'legacy'", "ingress": [{"action": "Allow"}]},
}


def test_a_prune_hides_bookkeeping_and_reads_like_a_create() -> None:
    ref = ObjectRef("projectcalico.org", "v3", "NetworkPolicy", "shop", "legacy")
    prune = Change(ref, Action.PRUNE, None, LIVE)
    lines = change_diff(prune)
    assert lines == [
        "- metadata:",
        "-   labels:",
        "-     team: shop",
        "- spec:",
        "-   selector: app == 'legacy'",
        "-   ingress:",
        "-   - action: Allow",
    ]
    body = {k: v for k, v in LIVE.items() if k != "apiVersion"}
    create = Change(ref, Action.CREATE, Resource(ref, body, Origin("a.yaml", 1)), None)
    assert [line.replace("-", "+", 1) for line in lines] == change_diff(create)  # one format
    shown = "\n".join(change_diff(prune, DiffStyle(show_managed=True)))
    assert PART_OF in shown and "projectcalico.org/metadata" in shown  # --show-managed-fields


def test_a_pr_that_prunes_has_a_banner_its_origin_and_the_ci_run() -> None:
    ref = ObjectRef("networking.k8s.io", "v1", "NetworkPolicy", "shop", "legacy")
    prune = Change(ref, Action.PRUNE, None, {"spec": {"podSelector": {}}})
    report = compare(Plan(REVISION, (prune,)), Plan(REVISION, ()), target="prod")
    report = replace(report, base_origins={ref.key: Origin("apps/shop/legacy.yaml", 2)})
    body = render_report(report, run_url="https://ci.example/run/7")
    assert "> [!CAUTION]\n> **This pull request deletes 1 object from the cluster:**" in body
    row = "| prune | NetworkPolicy.networking.k8s.io | shop | legacy | "
    assert row + "apps/shop/legacy.yaml:2 (base) |" in body
    assert "[CI run](https://ci.example/run/7)" in body
    quiet = render_report(compare(Plan(REVISION, ()), Plan(REVISION, ()), target="prod"))
    assert "[!CAUTION]" not in quiet and "CI run" not in quiet


def test_the_run_url_defaults_from_github_actions_and_gitlab_ci() -> None:
    github = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/fw",
              "GITHUB_RUN_ID": "42"}  # fmt: skip
    assert ci_run_url(github) == "https://github.com/acme/fw/actions/runs/42"
    assert ci_run_url({"CI_JOB_URL": "https://gitlab.example/acme/fw/-/jobs/9"}) == (
        "https://gitlab.example/acme/fw/-/jobs/9"
    )
    assert ci_run_url({}) == ""


# --- the YAML diff never hides a field that differs ---------------------------------------

KEYS = st.sampled_from(["a", "b", "c", "ports", "selector"])
VALUES = st.recursive(
    st.integers(0, 3) | st.text("ab '{},", max_size=120) | st.booleans(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(
    before=st.dictionaries(KEYS, VALUES, max_size=3),
    after=st.dictionaries(KEYS, VALUES, max_size=3),
)
def test_the_yaml_diff_shows_exactly_what_the_planner_found(
    before: dict[str, Any], after: dict[str, Any]
) -> None:
    """The documents hold each entry's values at its path; the diff's `-`/` ` lines read
    back as one side and its `+`/` ` lines as the other; collapsing hides no changed line.
    Where that cannot be, the renderer falls back to one line per field, each value whole."""
    plan = update(gnp_body("x", **before), gnp_body("x", **after))
    (change,) = plan.changes
    docs = object_documents(change)
    if docs is None:
        lines = change_diff(change)
        assert lines and all(line[:2] in ("- ", "+ ") for line in lines)
        return
    old, new, _ = docs
    for entry in change.diff:
        path = parse_path(entry.path)
        assert path is not None
        assert same_json(_at(old, path), entry.before) and same_json(_at(new, path), entry.after)
    full = diff_documents(old, new)
    assert _read(full, "-") == (old or None) and _read(full, "+") == (new or None)
    shown = object_diff(change)
    assert shown is not None
    assert [line for line in shown.lines if line.changed] == [x for x in full if x.changed]


def _read(lines: list[Line], sign: str) -> Any:
    return yaml.safe_load("\n".join(x.text for x in lines if x.sign in (" ", sign)))


def _at(doc: Any, path: tuple[str | int, ...]) -> Any:
    for step in path:
        try:
            doc = doc[step]
        except (KeyError, IndexError, TypeError):
            return None
    return doc


README = Path(__file__).parents[2] / "README.md"
EXAMPLE = Path(__file__).parents[2] / "example-repo"


def test_the_readme_output_example_is_what_plan_prints() -> None:
    rendered = pipeline.render(EXAMPLE, REVISION, pipeline.Settings())
    (res,) = [r for r in rendered.resources if r.ref.name == "allow-cluster-internal-ingress"]
    live = {**res.body, "spec": {**res.body["spec"], "order": 999}}
    patched = FieldChange("kubectl-patch", "Update", "2026-11-21T05:45:09Z")
    drift = Change(res.ref, Action.DRIFT, res, live, (DiffEntry("spec.order", 999, 10),),
                   REASONS[Action.DRIFT], (patched,))  # fmt: skip
    block = render_text(Plan(REVISION, (drift,))).split("\n\n")[0]
    readme = README.read_text()
    assert f"```\n{block}\n\nPlan: " in readme


def test_a_pr_whose_prunes_are_refused_says_so() -> None:
    sets = [
        ObjectRef("projectcalico.org", "v3", "GlobalNetworkSet", "", f"s-{i}") for i in range(4)
    ]
    labels = {PART_OF: "x"}
    bodies = {r: {"apiVersion": r.api_version, "kind": r.kind,
                  "metadata": {"name": r.name, "labels": labels}} for r in sets}  # fmt: skip
    head = planned(
        [Desired(Resource(r, bodies[r], Origin("s.yaml", 1)), bodies[r]) for r in sets[:1]],
        [Live(r, bodies[r], owned=True) for r in sets],
    )
    body = render_report(compare(head, Plan(REVISION, ()), target="prod"))
    assert "0 to prune · 3 prune refused" in body
    assert "the prune guard refused" in body and "validation errors are fixed" not in body
    assert "##### Prune refused\n\n- refusing to prune 3 of 4" in body
