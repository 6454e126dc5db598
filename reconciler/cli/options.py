"""Every flag the commands share, declared once, and the frozen arguments of each command.

A command's function receives click's keyword arguments and turns them into its `*Args`
value at once (`args_of`); nothing past that line looks a flag up by name. Values are
parsed by click types (`SHARE`, `CALICO_VERSION`, `DURATION`), so a malformed value is a
usage error (exit 2) before any work starts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

import click

from reconciler import pipeline
from reconciler.applyset import ApplySet
from reconciler.cluster.client import USER_AGENT, Connection
from reconciler.manifests.checks import dns_subdomain
from reconciler.plan import PlanOptions

F = TypeVar("F", bound=Callable[..., Any])
A = TypeVar("A")

# --- value types ------------------------------------------------------------------------


def parse_share(value: str) -> float:
    """ "30%", "0.3" or "30" -> 0.3."""
    text = value.strip()
    try:
        number = float(text.rstrip("%"))
    except ValueError:
        raise ValueError(f"{value!r} is not a share like 30% or 0.3") from None
    share = number / 100 if text.endswith("%") or number > 1 else number
    if not 0 <= share <= 1:
        raise ValueError(f"{value!r} is not a share between 0% and 100%")
    return share


def parse_calico_version(value: str) -> tuple[int, int]:
    """ "3.31", "v3.31" or "3.31.2" -> (3, 31)."""
    found = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.\d+)?", value.strip())
    if not found:
        raise ValueError(f"{value!r} is not a Calico release like 3.31")
    return int(found[1]), int(found[2])


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """ "90s", "1m30s", "500ms", "2h" or plain seconds -> seconds."""
    value = text.strip()
    try:
        return float(value)
    except ValueError:
        pass
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise ValueError(f"{text!r} is not a duration like 30s, 1m or 1h30m")
    return sum(float(n) * _UNITS[u] for n, u in parts)


class _Parsed(click.ParamType[Any, Any]):
    """A click type from a parse function that raises ValueError with a clear message."""

    def __init__(self, name: str, parse: Callable[[str], Any]) -> None:
        self.name = name
        self._parse = parse

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value  # a default already parsed
        try:
            return self._parse(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def parse_check_name(text: str) -> str:
    """A ConnectivityCheck's metadata.name (a DNS-1123 subdomain)."""
    problem = dns_subdomain(text)
    if problem:
        raise ValueError(problem)
    return text


SHARE = _Parsed("share", parse_share)
CHECK_NAME = _Parsed("name", parse_check_name)
CALICO_VERSION = _Parsed("version", parse_calico_version)
DURATION = _Parsed("duration", parse_duration)
PORT = click.IntRange(0, 65535)
DIRECTORY = click.Path(exists=True, file_okay=False, path_type=Path)
FILE = click.Path(dir_okay=False, path_type=Path)
EXISTING_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)

# --- the shared flags, each declared once -----------------------------------------------

KUBECONFIG = click.option(
    "--kubeconfig",
    envvar="KUBECONFIG",
    default="",
    help="Kubeconfig file [default: $KUBECONFIG; in a pod the in-cluster config; "
    "else ~/.kube/config].",
)
CONTEXT = click.option("--context", default="", help="Kubeconfig context [default: current].")
NAMESPACE = click.option(
    "--namespace",
    "ns",
    envvar="POLICY_RECONCILER_NAMESPACE",
    default="policy-reconciler",
    show_default=True,
    help="Namespace of the ApplySet parent ConfigMap that records what we own "
    "(and of the controller's status, Events and Lease).",
)
APPLYSET = click.option(
    "--applyset",
    "applyset_name",
    default="policy-reconciler",
    show_default=True,
    help="Name of the ApplySet parent ConfigMap.",
)
DEFAULT_NAMESPACE = click.option(
    "--default-namespace", default="", help="Namespace for namespaced objects that name none."
)
PRUNE = click.option(
    "--prune/--no-prune",
    default=True,
    show_default=True,
    help="Delete managed objects that Git no longer holds.",
)
MAX_PRUNE = click.option(
    "--max-prune",
    type=SHARE,
    default="30%",
    show_default=True,
    help="Refuse to delete more than this share of managed objects in one run.",
)
ALLOW_EMPTY = click.option(
    "--allow-empty", is_flag=True, help="Allow an empty render to prune everything we manage."
)
ADOPT = click.option(
    "--adopt",
    is_flag=True,
    help="Take over existing objects of the same name that we do not manage.",
)
CALICO = click.option(
    "--calico-version",
    type=CALICO_VERSION,
    default="3.31",
    show_default=True,
    help="Calico release whose CRD storage rules apply (without its API server).",
)
SKIP_CHECKS = click.option(
    "--skip-checks",
    "skip_checks",
    type=CHECK_NAME,
    multiple=True,
    metavar="NAME",
    help="Emergencies only: a failing ConnectivityCheck NAME blocks nothing (repeatable). "
    "Still evaluated and reported, with a warning on stderr, in the PR comment and as a "
    "Warning Event.",
)


SHOW_MANAGED = click.option(
    "--show-managed-fields",
    "show_managed",
    is_flag=True,
    help="Show bookkeeping in diffs too: the ApplySet label, Calico's metadata "
    "annotation, policy-reconciler.io/ and last-applied annotations.",
)
DIFF_STYLE = click.option(
    "--diff",
    "diff_style",
    type=click.Choice(["yaml", "fields"]),
    default="yaml",
    show_default=True,
    help="How a change reads: a YAML diff with context, or one `path: value` line per field.",
)


RUN_URL = click.option(
    "--run-url",
    default="",
    help="Link to the CI run in the comment [default: from GitHub Actions or GitLab CI].",
)


INVENTORY = click.option(
    "--inventory",
    type=EXISTING_FILE,
    help="With --offline: the cluster's facts, as "
    "`kubectl get nodes,namespaces,pods,serviceaccounts -o yaml` prints them; templates "
    "expand over its Nodes and Namespaces.",
)


def output(*choices: str) -> Callable[[F], F]:
    return click.option(
        "-o", "--output", type=click.Choice(choices), default=choices[0], show_default=True
    )


def stacked(*options: Callable[[F], F]) -> Callable[[F], F]:
    """Several option decorators as one, in the order given (as they show in --help)."""

    def apply(fn: F) -> F:
        for option in reversed(options):
            fn = option(fn)
        return fn

    return apply


cluster_options = stacked(KUBECONFIG, CONTEXT, NAMESPACE, APPLYSET)
diff_options = stacked(DIFF_STYLE, SHOW_MANAGED)
plan_options = stacked(
    cluster_options, DEFAULT_NAMESPACE, PRUNE, MAX_PRUNE, ALLOW_EMPTY, ADOPT, CALICO, SKIP_CHECKS
)

# --- the values the commands work with --------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClusterArgs:
    """Which cluster, and our ApplySet in it."""

    kubeconfig: str
    context: str
    applyset: ApplySet

    def connection(self, *, user_agent: str = USER_AGENT) -> Connection:
        return Connection(kubeconfig=self.kubeconfig, context=self.context, user_agent=user_agent)


@dataclass(frozen=True, slots=True)
class PlanArgs:
    """`plan DIR` (and `apply DIR`, which adds `dry_run`)."""

    directory: Path
    output: str
    cluster: ClusterArgs
    settings: pipeline.Settings
    offline: bool = False
    inventory: Path | None = None
    nodes_file: Path | None = None
    namespaces_file: Path | None = None
    base_dir: Path | None = None
    dry_run: bool = False
    diff_style: str = "yaml"
    show_managed: bool = False
    verbose: bool = False  # apply: print the whole diff, not only the summary and failures
    create_namespace: bool = False  # apply: create missing namespaces (ours and the objects')


@dataclass(frozen=True, slots=True)
class StatusArgs:
    cluster: ClusterArgs
    output: str
    count: int


@dataclass(frozen=True, slots=True)
class PublishArgs:
    """Where `report --publish` sends the comment (the forge is checked later)."""

    forge_name: str
    api_url: str
    repo: str
    project: str
    number: int | None
    token_env: str
    token_file: Path | None
    dry_run: bool


@dataclass(frozen=True, slots=True)
class ReportArgs:
    head_dir: Path
    base_dir: Path | None
    base_ref: str
    repo_dir: Path
    cluster: ClusterArgs
    settings: pipeline.Settings
    offline: bool
    target: str
    publish: PublishArgs
    inventory: Path | None
    fail_on_drift: bool
    max_chars: int | None
    diff_style: str = "yaml"
    show_managed: bool = False
    run_url: str = ""


def cluster_args(kw: Mapping[str, Any]) -> ClusterArgs:
    applyset = ApplySet(kw["applyset_name"], kw["ns"])
    return ClusterArgs(kw["kubeconfig"], kw["context"], applyset)


def settings_of(kw: Mapping[str, Any]) -> pipeline.Settings:
    """The pipeline settings from the values of `plan_options`."""
    options = PlanOptions(
        prune=kw["prune"],
        adopt=kw["adopt"],
        max_prune=kw["max_prune"],
        allow_empty=kw["allow_empty"],
    )
    return pipeline.Settings(
        applyset=ApplySet(kw["applyset_name"], kw["ns"]),
        options=options,
        default_namespace=kw["default_namespace"],
        calico=kw["calico_version"],
        create_namespace=kw.get("create_namespace", False),
        skip_checks=frozenset(kw.get("skip_checks") or ()),
    )


def args_of(cls: type[A], kw: Mapping[str, Any], **built: Any) -> A:
    """`cls` from the flags named as its fields; `built` gives the composed fields."""
    names = (f.name for f in fields(cls))  # type: ignore[arg-type]
    return cls(**{n: built[n] if n in built else kw[n] for n in names if n in built or n in kw})


def plan_args(kw: Mapping[str, Any]) -> PlanArgs:
    return args_of(PlanArgs, kw, cluster=cluster_args(kw), settings=settings_of(kw))


def report_args(kw: Mapping[str, Any]) -> ReportArgs:
    return args_of(
        ReportArgs,
        kw,
        cluster=cluster_args(kw),
        settings=settings_of(kw),
        publish=args_of(PublishArgs, kw),
    )


__all__ = [
    "CALICO_VERSION",
    "DURATION",
    "SHARE",
    "ClusterArgs",
    "PlanArgs",
    "PublishArgs",
    "ReportArgs",
    "StatusArgs",
    "args_of",
    "cluster_args",
    "cluster_options",
    "diff_options",
    "output",
    "parse_calico_version",
    "parse_duration",
    "parse_share",
    "plan_args",
    "plan_options",
    "report_args",
    "settings_of",
    "stacked",
]
