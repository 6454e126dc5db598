"""The pull-request report: what this PR changes, kept apart from what is already out of sync.

Two read-only plans against the same cluster: the PR head's (H) and the base branch's (B).
Changes are paired by object identity (group, kind, namespace, name); an object a plan
does not mention counts as unchanged there. Then, per object:

1. **Already out of sync** is every B that is not unchanged: the cluster differs from
   the base branch there (someone edited it, or the base is not applied yet). It is
   shown with the field manager and time of each drifted field.
2. **This PR's change** is
   - nothing when H is unchanged. If B is not, the PR writes the cluster's state into
     Git for that object: it is listed as *kept as the cluster has it*.
   - when H and B both change the live object in place (update or drift): H's field
     entries that B does not have identically (same path, before and after). Fields
     that B changes and H leaves alone are *kept as the cluster has them*.
   - otherwise H in full, unless B has the same action with identical field entries
     (then it is drift already present, not this PR's).
   A drifted field the PR changes to yet another value is this PR's change, shown as
   an update: from the PR's point of view, Git changed.

Offline (no cluster), H is planned against the base render as if the base had been
applied by us, so every difference is this PR's and drift is not checked.

The plans come from `pipeline.review` (one read of the cluster for both); this module
only pairs and renders values.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

from reconciler.applyset import PART_OF
from reconciler.connectivity import Diff
from reconciler.model import Action, Change, DiffEntry, ObjectKey, ObjectRef, Origin, Plan, Revision
from reconciler.plan.guard import is_refusal
from reconciler.plan.planner import REASONS
from reconciler.report import checks, flows
from reconciler.report.markdown import (
    Section,
    code_span,
    details,
    drift_phrase,
    escape,
    findings_blocks,
    fit,
    row,
)
from reconciler.report.text import PLAIN, DiffStyle

EXIT_CLEAN, EXIT_CHANGES, EXIT_ERROR = 0, 1, 2
OFFLINE = "offline"
_IN_PLACE = frozenset({Action.UPDATE, Action.DRIFT})
_PR_PHRASES = (
    (Action.CREATE, "{} to create", True),
    (Action.UPDATE, "{} to update", True),
    (Action.ADOPT, "{} to adopt", False),
    (Action.PRUNE, "{} to prune", True),
    (Action.CONFLICT, "{} in conflict (left alone)", False),
)
_DRIFT_PHRASES = (
    (Action.DRIFT, "{} drifted"),
    (Action.UPDATE, "{} not applied yet"),
    (Action.CREATE, "{} missing"),
    (Action.ADOPT, "{} to adopt"),
    (Action.PRUNE, "{} left over"),
    (Action.CONFLICT, "{} in conflict"),
)
_CAUSES = {
    Action.UPDATE: "differs from the base branch (not applied yet?)",
    Action.CREATE: "missing from the cluster",
    Action.PRUNE: "in the cluster, gone from the base branch",
    Action.CONFLICT: "exists, not managed by policy-reconciler",
    Action.ADOPT: "exists, would be adopted",
}
_KEPT = {
    Action.CREATE: "stays absent: this PR drops it from Git",
    Action.PRUNE: "stays: this PR puts it back into Git as it is",
    Action.CONFLICT: "no longer asked for",
    Action.ADOPT: "no longer asked for",
}
_FULL_REPORT = "the CI job's log has the full report."
_BARE_PIPE = re.compile(r"(?<!\\)\|")
_DRIFT_HEAD = "| Action | Kind | Namespace | Name | Cause |\n|---|---|---|---|---|"


@dataclass(frozen=True, slots=True)
class Kept:
    """An object the PR leaves as the cluster has it, although the base branch differs."""

    ref: ObjectRef
    base_action: Action
    paths: tuple[str, ...] = ()  # the fields, for in-place drift


@dataclass(frozen=True, slots=True)
class PrReport:
    target: str
    head: Plan
    base: Plan | None  # None offline: the head was planned against the base render
    base_revision: Revision
    base_ref: str = ""
    changes: tuple[Change, ...] = ()
    kept: tuple[Kept, ...] = ()
    drift: tuple[Change, ...] = ()
    base_errors: int = 0  # validation errors of the base branch: drift cannot be told apart
    # Where each base object came from: a prune's object has no desired side to say it.
    base_origins: Mapping[ObjectKey, Origin] = field(default_factory=dict)
    flows: Diff | None = None  # the engine's diff base -> head (None: not computed)
    drift_flows: Diff | None = None  # live -> base, online: what drift does to traffic

    @property
    def offline(self) -> bool:
        return self.base is None

    @property
    def base_invalid(self) -> bool:
        return self.base_errors > 0

    @property
    def has_changes(self) -> bool:
        return any(c.action.writes for c in self.changes) or bool(self.kept)


# --- building ---------------------------------------------------------------------------


def compare(head: Plan, base: Plan, *, target: str, base_ref: str = "") -> PrReport:
    """Split the head plan into this PR's changes, and the drift the base plan shows."""
    report = PrReport(target, head, base, base.revision, base_ref, base_errors=len(base.errors))
    if base.errors:  # no trustworthy base: every difference is shown as this PR's
        return replace(report, changes=as_pr_changes(head.changes))
    changes, kept = split(head, base)
    drift = tuple(_quiet(c) for c in base.changes if c.action is not Action.UNCHANGED)
    return replace(report, changes=changes, kept=kept, drift=drift)


def split(head: Plan, base: Plan) -> tuple[tuple[Change, ...], tuple[Kept, ...]]:
    """This PR's changes and what it keeps as the cluster has it (see the module doc)."""
    before = {c.ref.key: c for c in base.changes}
    changes: list[Change] = []
    kept: list[Kept] = []
    for change in head.changes:
        mine, keeps = _own_part(change, before.get(change.ref.key))
        changes += [mine] if mine else []
        kept += [keeps] if keeps else []
    planned = {c.ref.key for c in head.changes}
    kept += [_kept(c) for c in base.changes if _writes(c) and c.ref.key not in planned]
    return tuple(changes), tuple(kept)


def _own_part(head: Change, base: Change | None) -> tuple[Change | None, Kept | None]:
    if head.action is Action.UNCHANGED:
        return None, (_kept(base) if base and _writes(base) else None)
    if base is not None and head.action in _IN_PLACE and base.action in _IN_PLACE:
        return _in_place(head, base)
    if base is not None and base.action is head.action and base.diff == head.diff:
        return None, None
    return _pr_change(head, head.diff), None


def _in_place(head: Change, base: Change) -> tuple[Change | None, Kept | None]:
    mine = tuple(e for e in head.diff if e not in base.diff)
    touched = {e.path for e in head.diff}
    kept_paths = tuple(e.path for e in base.diff if e.path not in touched)
    change = _pr_change(head, mine, shared=len(head.diff) - len(mine)) if mine else None
    return change, (Kept(head.ref, base.action, kept_paths) if kept_paths else None)


def _pr_change(change: Change, entries: tuple[DiffEntry, ...], *, shared: int = 0) -> Change:
    """As this PR's: a drifted object the PR changes is, from the PR's side, an update."""
    action = Action.UPDATE if change.action is Action.DRIFT else change.action
    reason = REASONS.get(action, "") if action is not change.action else change.reason
    if shared:
        fields = "field differs" if shared == 1 else "fields differ"
        reason = f"{reason}; {shared} other {fields} from the base branch already (see below)"
    return replace(_quiet(change), action=action, diff=entries, drifted_by=(), reason=reason)


def _quiet(change: Change) -> Change:
    """A prune lists the live object's fields: without our part-of label, which every
    object we manage carries and which says nothing to a reviewer."""
    if change.action is not Action.PRUNE or not change.live:
        return change
    meta = dict(change.live.get("metadata") or {})
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k != PART_OF}
    meta["labels"] = labels
    if not labels:
        del meta["labels"]
    return replace(change, live={**change.live, "metadata": meta})


def as_pr_changes(changes: Sequence[Change]) -> tuple[Change, ...]:
    listed = (c for c in changes if c.action is not Action.UNCHANGED)
    return tuple(_pr_change(c, c.diff) for c in listed)


def _kept(base: Change) -> Kept:
    paths = tuple(e.path for e in base.diff) if base.action in _IN_PLACE else ()
    return Kept(base.ref, base.action, paths)


def _writes(change: Change) -> bool:
    return change.action is not Action.UNCHANGED


# --- exit code --------------------------------------------------------------------------


def exit_code(report: PrReport, *, fail_on_drift: bool = False) -> int:
    """As `plan`: 2 invalid head, 1 this PR changes the cluster (or drift, when asked), 0."""
    if report.head.errors or report.head.failing_checks:
        return EXIT_ERROR
    if report.has_changes or (fail_on_drift and report.drift):
        return EXIT_CHANGES
    return EXIT_CLEAN


# --- Markdown ---------------------------------------------------------------------------


def render_report(
    report: PrReport,
    *,
    marker: str = "",
    max_chars: int = 65_536,
    forge: str = "GitHub",
    run_url: str = "",
    style: DiffStyle = PLAIN,
) -> str:
    """The comment body: title, this PR's changes, what it keeps, then drift; fits max_chars.

    Each part is a small section builder, so more sections slot in without a rewrite."""
    sections = [
        Section(head=(*_title(report, marker), *_run_line(run_url))),
        *_top(report),
        _pr_section(report, style),
        *([Section(head=(_kept_block(report),))] if report.kept else []),
        _drift_section(report, style),
    ]
    limit = f"{forge}'s comment size limit" if forge else "the size limit"
    tail = f"omitted to stay under {limit} ({max_chars:,} characters); {_FULL_REPORT}"
    return fit(sections, max_chars=max_chars, note_tail=tail)


def _top(report: PrReport) -> Iterator[Section]:
    """What the change means before what it edits: failing (and skipped) checks, then the
    flows it opens and closes."""
    failing = checks.markdown_section(report.head)
    if failing:
        yield Section(head=(failing,))
    moved = flows.section(report.flows, report.drift_flows)
    if moved:
        yield Section(head=(moved,))


def _title(report: PrReport, marker: str) -> Iterator[str]:
    if marker:
        yield marker
    head, base = _revision(report.head.revision), _revision(report.base_revision)
    base += f" ({code_span(report.base_ref)})" if report.base_ref else ""
    if report.offline:
        yield "### policy-reconciler report (offline)"
        yield (
            f"**Offline:** no cluster was contacted. Head {head} is compared with the render "
            f"of base {base}, as if the base were applied; drift in the cluster was not checked."
        )
        return
    yield f"### policy-reconciler report for {escape(report.target)}"
    yield (
        f"Head {head} planned against the live cluster; drift is measured against base "
        f"{base}. Read-only: nothing was applied."
    )


def _revision(revision: Revision) -> str:
    text = revision.id.removeprefix("dir:")
    is_sha = len(text) >= 12 and all(ch in "0123456789abcdef" for ch in text)
    shown = code_span(text[:12] if is_sha else text)
    return f"{shown} with local changes" if revision.dirty else shown


def _run_line(run_url: str) -> Iterator[str]:
    if run_url:
        yield f"[CI run]({run_url.replace(')', '%29').replace(' ', '%20')})"


def _pr_section(report: PrReport, style: DiffStyle = PLAIN) -> Section:
    head = ["#### Changes from this pull request", *_deletion_banner(report), _pr_counts(report)]
    head += findings_blocks(report.head.findings, level="#####")
    if report.base_invalid:
        head.append(
            f"The base branch has {report.base_errors} validation errors, so drift "
            "cannot be told apart: every difference from the cluster is listed here."
        )
    origin = {c.ref: _base_origin(report, c) for c in report.changes}
    return Section(
        head=tuple(head),
        rows=tuple(row(c, origin=_in_base(origin[c.ref])) for c in report.changes),
        details=tuple(
            d for c in report.changes if (d := details(c, style=style, origin=origin[c.ref]))
        ),
    )


def _base_origin(report: PrReport, change: Change) -> str:
    """Where a pruned object was in the base branch (`path:line`), when known."""
    found = report.base_origins.get(change.ref.key) if change.desired is None else None
    return str(found) if found else ""


def _in_base(origin: str) -> str:
    return f"{origin} (base)" if origin else ""


def _deletion_banner(report: PrReport) -> Iterator[str]:
    """Deleting firewall objects is the risky half: say so before anything else."""
    pruned = [c for c in report.changes if c.action is Action.PRUNE]
    if not pruned:
        return
    names = ", ".join(code_span(c.ref.qualified) for c in pruned[:5])
    more = f" and {len(pruned) - 5} more" if len(pruned) > 5 else ""
    noun = "object" if len(pruned) == 1 else "objects"
    yield (
        f"> [!CAUTION]\n> **This pull request deletes {len(pruned)} {noun} from the cluster:** "
        f"{names}{more}."
    )


def _pr_counts(report: PrReport) -> str:
    if not report.changes and not report.kept and not report.head.errors:
        return "No changes: this pull request writes nothing to the cluster."
    counts = [
        phrase.format(n)
        for action, phrase, always in _PR_PHRASES
        if (n := sum(c.action is action for c in report.changes)) or always
    ]
    if report.head.refused_prunes:
        counts.insert(counts.index(_PRUNES.format(_count(report, Action.PRUNE))) + 1,
                      f"{report.head.refused_prunes} prune refused")  # fmt: skip
    if report.head.errors and all(is_refusal(f) for f in report.head.errors):
        counts.append("**nothing is applied: the prune guard refused (see Prune refused)**")
    elif report.head.errors:
        counts.append("**nothing is applied until the validation errors are fixed**")
    return "**This PR:** " + " · ".join(counts)


_PRUNES = "{} to prune"


def _count(report: PrReport, action: Action) -> int:
    return sum(c.action is action for c in report.changes)


def _kept_block(report: PrReport) -> str:
    lines = [
        f"**Kept as the cluster has it ({len(report.kept)}):** this PR writes the cluster's "
        "current state into Git here, so applying it changes nothing in the cluster."
    ]
    lines += [f"- {code_span(k.ref.qualified)}: {_kept_text(k)}" for k in report.kept]
    return "\n".join(lines)


def _kept_text(kept: Kept) -> str:
    if kept.paths:
        return "keeps " + ", ".join(code_span(p) for p in kept.paths)
    return _KEPT.get(kept.base_action, "kept as it is")


def _drift_section(report: PrReport, style: DiffStyle = PLAIN) -> Section:
    title = "#### Already out of sync (not from this pull request)"
    if report.offline:
        return Section(head=(title, "Not checked: this report ran `--offline`."))
    if report.base_invalid:
        return Section(head=(title, "Unknown: the base branch does not validate."))
    if not report.drift:
        return Section(head=(title, "None: the cluster matches the base branch."))
    return Section(
        head=(title, _drift_counts(report)),
        rows=tuple(_drift_row(c) for c in report.drift),
        details=tuple(d for c in report.drift if (d := details(c, style=style))),
        table_head=_DRIFT_HEAD,
    )


def _drift_counts(report: PrReport) -> str:
    counts = [
        phrase.format(n)
        for action, phrase in _DRIFT_PHRASES
        if (n := sum(c.action is action for c in report.drift))
    ]
    line = "**Out of sync:** " + " · ".join(counts)
    note = "The cluster differs from the base branch here; the next apply restores what Git says"
    note += ", except what this pull request keeps (above)." if report.kept else "."
    return f"{line}\n\n{note}"


def _drift_row(change: Change) -> str:
    ref = change.ref
    cells = [escape(c) for c in (change.action.value, str(ref.group_kind), ref.namespace, ref.name)]
    return "| " + " | ".join([*cells, _cause(change)]) + " |"


def _cause(change: Change) -> str:
    if change.action is Action.DRIFT and change.drifted_by:
        phrases = "; ".join(drift_phrase(d) for d in change.drifted_by)
        return _BARE_PIPE.sub(r"\\|", phrases)  # GFM splits cells even inside code spans
    if change.action is Action.DRIFT:
        return "changed in the cluster by an unknown manager"
    return escape(_CAUSES.get(change.action, ""))


__all__ = [
    "EXIT_CHANGES",
    "EXIT_CLEAN",
    "EXIT_ERROR",
    "Kept",
    "PrReport",
    "as_pr_changes",
    "compare",
    "exit_code",
    "render_report",
    "split",
]
