"""Loading a repo: files, safe YAML with lines, the kinds allowlist, identity and duplicates."""

from __future__ import annotations

import os
import signal
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import kinds
from reconciler.manifests import Limits, LoadResult, load_dir, load_text
from reconciler.model import Finding, ObjectRef, Severity

# Every case once per YAML loader (libyaml's composer and PyYAML's): the same findings.
pytestmark = pytest.mark.usefixtures("yaml_loader")


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def gns(name: str) -> str:
    return f"""\
        apiVersion: projectcalico.org/v3
        kind: GlobalNetworkSet
        metadata:
          name: {name}
        spec:
          nets: [10.0.0.0/8]
        """


def errors(result: LoadResult) -> list[Finding]:
    return [f for f in result.findings if f.severity is Severity.ERROR]


def where(finding: Finding) -> str:
    assert finding.origin is not None
    return f"{finding.origin.path}:{finding.origin.line}"


def only_error(result: LoadResult) -> Finding:
    found = errors(result)
    assert len(found) == 1, [str(f) for f in found]
    return found[0]


def names(result: LoadResult) -> list[str]:
    return [r.ref.name for r in result.resources]


def origins(result: LoadResult) -> list[str]:
    return [str(r.origin) for r in result.resources]


# --- files -------------------------------------------------------------------------------


def test_every_yaml_file_recursively_in_sorted_order(tmp_path: Path) -> None:
    write(tmp_path, "b.yaml", gns("b"))
    write(tmp_path, "a/z.yml", gns("az"))
    write(tmp_path, "a/b/c.yaml", gns("abc"))
    write(tmp_path, "a.yaml", gns("a"))
    write(tmp_path, "README.md", "# not yaml: ignored\n")
    write(tmp_path, ".git/config.yaml", gns("git"))
    write(tmp_path, ".gitlab-ci.yml", gns("hidden"))

    result = load_dir(tmp_path)

    assert result.ok, [str(f) for f in result.findings]
    assert origins(result) == ["a.yaml:1", "a/b/c.yaml:1", "a/z.yml:1", "b.yaml:1"]  # by string
    assert names(result) == ["a", "abc", "az", "b"]


def test_documents_keep_file_order_and_their_own_line(tmp_path: Path) -> None:
    write(
        tmp_path,
        "sets.yaml",
        """\
        # leading comment
        ---
        ---
        apiVersion: projectcalico.org/v3
        kind: GlobalNetworkSet
        metadata: {name: second}
        ---
        apiVersion: projectcalico.org/v3
        kind: GlobalNetworkSet
        metadata: {name: first}
        """,
    )

    result = load_dir(tmp_path)

    assert result.ok
    assert names(result) == ["second", "first"]
    assert origins(result) == ["sets.yaml:4", "sets.yaml:8"]


def test_a_dir_without_yaml_gives_nothing_and_no_error(tmp_path: Path) -> None:
    write(tmp_path, "docs/README.md", "nothing here\n")

    result = load_dir(tmp_path)

    assert result.resources == ()
    assert result.findings == ()
    assert result.ok


def test_empty_and_comment_only_files_give_nothing(tmp_path: Path) -> None:
    write(tmp_path, "empty.yaml", "")
    write(tmp_path, "comments.yaml", "# todo\n---\n")

    result = load_dir(tmp_path)

    assert (result.resources, result.findings) == ((), ())


def test_a_missing_root_is_an_error(tmp_path: Path) -> None:
    result = load_dir(tmp_path / "nope")

    assert not result.ok
    assert "cannot read the repo" in only_error(result).message


def test_symlinked_file_outside_the_repo_is_refused(tmp_path: Path) -> None:
    repo, outside = tmp_path / "repo", tmp_path / "outside"
    write(outside, "secret.yaml", gns("outside"))
    write(repo, "ok.yaml", gns("ok"))
    (repo / "link.yaml").symlink_to(outside / "secret.yaml")

    result = load_dir(repo)

    error = only_error(result)
    assert where(error) == "link.yaml:0"
    assert "outside the repo" in error.message
    assert names(result) == ["ok"]


def test_symlinked_dir_outside_the_repo_is_refused(tmp_path: Path) -> None:
    repo, outside = tmp_path / "repo", tmp_path / "outside"
    write(outside, "more/x.yaml", gns("outside"))
    write(repo, "ok.yaml", gns("ok"))
    (repo / "vendor").symlink_to(outside / "more", target_is_directory=True)

    result = load_dir(repo)

    error = only_error(result)
    assert error.origin is not None and error.origin.path == "vendor"
    assert "outside the repo" in error.message
    assert names(result) == ["ok"]


def test_symlinks_inside_the_repo_are_fine(tmp_path: Path) -> None:
    write(tmp_path, "real/a.yaml", gns("a"))
    write(tmp_path, "real/b.yml", gns("b"))
    (tmp_path / "alias").symlink_to(tmp_path / "real", target_is_directory=True)
    (tmp_path / "top.yaml").symlink_to(tmp_path / "real" / "b.yml")
    (tmp_path / "loop").symlink_to(tmp_path, target_is_directory=True)

    result = load_dir(tmp_path)

    # The dir link is not walked again (no loop, no second copy); the file link is read,
    # and being the same object as real/b.yml, it is reported as a duplicate.
    assert names(result) == ["a", "b"]
    error = only_error(result)
    assert where(error) == "top.yaml:1"
    assert "also at real/b.yml:1" in error.message


def test_a_broken_yaml_symlink_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "gone.yaml").symlink_to(tmp_path / "missing.yaml")

    error = only_error(load_dir(tmp_path))

    assert (where(error), error.message) == ("gone.yaml:0", "broken symlink")


@pytest.fixture
def alarm() -> Iterator[None]:
    """Turn a hang into a failure instead of a stuck test run."""

    def fail(signum: int, frame: object) -> None:
        raise TimeoutError("load_dir hung")

    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.mark.usefixtures("alarm")
def test_a_fifo_named_yaml_is_not_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.yaml")
    write(tmp_path, "ok.yaml", gns("ok"))

    result = load_dir(tmp_path)

    assert names(result) == ["ok"]


def test_invalid_utf8_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_bytes(b"kind: \xff\xfe\n")

    error = only_error(load_dir(tmp_path))

    assert where(error) == "bad.yaml:0"
    assert "not UTF-8" in error.message


def test_a_file_over_the_size_cap_is_refused_unread(tmp_path: Path) -> None:
    body = "# padding\n" * (450 * 1024)  # 4.4 MiB of comments
    write(tmp_path, "huge.yaml", body)
    write(tmp_path, "ok.yaml", gns("ok"))

    result = load_dir(tmp_path)

    error = only_error(result)
    assert where(error) == "huge.yaml:0"
    assert "larger than 4194304 bytes" in error.message
    assert names(result) == ["ok"]


def test_load_text_applies_the_size_cap_too() -> None:
    result = load_text(gns("x"), path="x.yaml", limits=Limits(max_bytes=50))

    assert "the limit is 50" in only_error(result).message


# --- safe YAML ---------------------------------------------------------------------------


def test_syntax_error_points_at_its_line() -> None:
    text = "apiVersion: v1\nkind: a: b\nmetadata: {}\n"

    error = only_error(load_text(text, path="p.yaml"))

    assert where(error) == "p.yaml:2"
    # libyaml says "...in this context", PyYAML's Python scanner "...here".
    assert error.message.startswith("YAML error: mapping values are not allowed")


def test_documents_before_a_syntax_error_still_load() -> None:
    text = textwrap.dedent(gns("good")) + "---\nkind: [\n"

    result = load_text(text, path="p.yaml")

    assert names(result) == ["good"]
    assert where(only_error(result)) == "p.yaml:9"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("!!python/object/apply:os.system ['true']", "!!python/object/apply:os.system"),
        ("!!python/name:os.system ''", "!!python/name:os.system"),
        ("!custom {a: 1}", "!custom"),
        ("!!binary aGVsbG8=", "!!binary"),
        ("!!set {a, b}", "!!set"),
    ],
)
def test_non_standard_tags_are_refused(value: str, shown: str) -> None:
    text = f"apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata:\n  name: {value}\n"

    found = errors(load_text(text, path="p.yaml"))

    tag_error = found[0]
    assert (where(tag_error), tag_error.field) == ("p.yaml:4", "metadata.name")
    assert f"YAML tag {shown} is not allowed" in tag_error.message


def test_plain_anchors_and_aliases_are_allowed() -> None:
    text = """\
        apiVersion: projectcalico.org/v3
        kind: GlobalNetworkSet
        metadata:
          name: a
          labels: &common {team: net}
        spec:
          nets: &nets [10.0.0.0/8]
        ---
        apiVersion: projectcalico.org/v3
        kind: GlobalNetworkSet
        metadata:
          name: b
          labels: {team: net}
        spec:
          nets: [10.0.0.0/8]
        """

    result = load_text(textwrap.dedent(text), path="p.yaml")

    assert result.ok, [str(f) for f in result.findings]
    assert result.resources[0].body["spec"] == {"nets": ["10.0.0.0/8"]}


def billion_laughs(levels: int) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused() -> None:
    # 10**9 strings if expanded; the node budget stops the build after 250,000.
    error = only_error(load_text(billion_laughs(9), path="bomb.yaml"))

    assert error.origin is not None and error.origin.path == "bomb.yaml"
    assert "too many YAML nodes" in error.message


def test_the_node_budget_is_a_limit_that_can_be_set() -> None:
    small = Limits(max_nodes=500)
    fits = errors(load_text(billion_laughs(2), path="p.yaml", limits=small))
    too_big = errors(load_text(billion_laughs(3), path="p.yaml", limits=small))

    assert [f.message for f in fits] == ["apiVersion is missing", "kind is missing"]
    assert [f.message for f in too_big] == [
        "too many YAML nodes (alias expansion?): refusing the file"
    ]


def test_a_recursive_alias_is_refused() -> None:
    error = only_error(load_text("a: &x [*x]\n", path="p.yaml"))

    assert "nested deeper than 64 levels" in error.message


def test_nesting_past_our_limit_is_refused_by_our_loader() -> None:
    text = "a: " + "[" * 100 + "]" * 100 + "\n"

    error = only_error(load_text(text, path="p.yaml"))

    assert (where(error), "nested deeper than 64 levels" in error.message) == ("p.yaml:1", True)


def test_extreme_nesting_is_refused_with_file_and_line_without_recursion_errors() -> None:
    # libyaml's scanner may refuse such input before our composer sees it (PyYAML >= 6.0.3
    # bundles a libyaml with a nesting limit): whose words the message carries is not
    # ours to pin, only that the file is refused where it is, and nothing crashes.
    text = "a: " + "[" * 5000 + "]" * 5000 + "\n"

    error = only_error(load_text(text, path="p.yaml"))

    assert where(error) == "p.yaml:1"


def test_duplicate_keys_are_an_error_naming_both_lines() -> None:
    text = """\
        apiVersion: projectcalico.org/v3
        kind: GlobalNetworkSet
        metadata:
          name: a
        spec:
          nets: [10.0.0.0/8]
          nets: [0.0.0.0/0]
        """

    error = only_error(load_text(textwrap.dedent(text), path="p.yaml"))

    assert (where(error), error.field) == ("p.yaml:7", "spec.nets")
    assert "duplicate key 'nets' (first at line 6)" in error.message


def test_sexagesimal_looking_port_ranges_stay_strings() -> None:
    # PyYAML alone reads 20:30 as the integer 1230; kubectl's go-yaml reads "20:30".
    text = """\
        apiVersion: projectcalico.org/v3
        kind: GlobalNetworkPolicy
        metadata: {name: p}
        spec:
          ingress: [{action: Allow, protocol: TCP, destination: {ports: [20:30]}}]
        """

    result = load_text(textwrap.dedent(text), path="p.yaml")

    assert result.ok, [str(f) for f in result.findings]
    rule = result.resources[0].body["spec"]["ingress"][0]
    assert rule["destination"]["ports"] == ["20:30"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("80: x", "mapping key '80' must be a string: quote it"),
        ("on: x", "mapping key 'on' must be a string: quote it"),
        ("? [a]\n: x", "a mapping key must be a plain string"),
        ("<<: {a: 1}", "YAML merge keys (<<) are not supported"),
        ("x: .inf", "infinity and NaN cannot be written as JSON"),
    ],
)
def test_values_json_cannot_hold_are_refused(line: str, message: str) -> None:
    text = f"apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata:\n  name: t\n{line}\n"

    found = errors(load_text(text, path="p.yaml"))

    assert (where(found[0]), message in found[0].message) == ("p.yaml:5", True)


def test_control_characters_are_a_yaml_error_with_a_line() -> None:
    error = only_error(load_text("a: 1\nb: \x07\n", path="p.yaml"))

    assert where(error) == "p.yaml:2"
    # libyaml says "control characters", PyYAML's Python reader "special characters".
    assert error.message.startswith("YAML error: character #x0007: ")
    assert error.message.endswith("characters are not allowed")


# --- objects and the kinds allowlist -----------------------------------------------------


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [
        ("rbac.authorization.k8s.io/v1", "RoleBinding"),
        ("apps/v1", "Deployment"),
        ("v1", "Secret"),
        ("projectcalico.org/v3", "BGPPeer"),
        ("projectcalico.org/v3", "GlobalNetworkPolicyy"),
        ("networking.k8s.io/v1beta1", "NetworkPolicy"),
        ("projectcalico.org/v1", "GlobalNetworkPolicy"),
    ],
)
def test_kinds_outside_the_allowlist_are_refused(api_version: str, kind: str) -> None:
    text = f"# {kind}\napiVersion: {api_version}\nkind: {kind}\nmetadata: {{name: x}}\n"

    result = load_text(text, path="p.yaml")

    error = only_error(result)
    assert (where(error), error.field) == ("p.yaml:3", "")
    assert f"{kind} ({api_version}) is not allowed" in error.message
    assert kinds.allowed_list() in error.message
    assert result.resources == ()


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("kind: GlobalNetworkSet\nmetadata: {name: x}\n", 1, "apiVersion is missing"),
        ("apiVersion: projectcalico.org/v3\nmetadata: {name: x}\n", 1, "kind is missing"),
        ("apiVersion: projectcalico.org/v3\nkind: Tier\n", 1, "metadata.name is missing"),
        ("apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {}\n", 3, "name is missing"),
        ("apiVersion: projectcalico.org/v3\nkind: 7\n", 2, "kind is missing"),
        ("- a\n- b\n", 1, "a document must be a Kubernetes object"),
        ("just text\n", 1, "a document must be a Kubernetes object"),
    ],
)
def test_a_document_must_name_an_object(text: str, line: int, message: str) -> None:
    result = load_text(text, path="p.yaml")

    error = only_error(result)
    assert where(error) == f"p.yaml:{line}"
    assert message in error.message
    assert result.resources == ()


NETPOL = """\
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata:
      name: web
    spec:
      podSelector: {}
    """


def test_a_namespaced_kind_needs_a_namespace() -> None:
    error = only_error(load_text(textwrap.dedent(NETPOL), path="p.yaml"))

    assert (where(error), error.field) == ("p.yaml:3", "metadata.namespace")
    assert "NetworkPolicy is namespaced" in error.message


def test_the_default_namespace_fills_a_missing_one() -> None:
    result = load_text(textwrap.dedent(NETPOL), path="p.yaml", default_namespace="team-a")

    assert result.ok
    (res,) = result.resources
    assert res.ref == ObjectRef("networking.k8s.io", "v1", "NetworkPolicy", "team-a", "web")
    assert res.body["metadata"] == {"name": "web", "namespace": "team-a"}


def test_a_written_namespace_wins_over_the_default() -> None:
    text = textwrap.dedent(NETPOL).replace("name: web", "name: web\n  namespace: mine")

    result = load_text(text, path="p.yaml", default_namespace="team-a")

    assert [r.ref.namespace for r in result.resources] == ["mine"]


def test_a_cluster_scoped_kind_must_not_have_a_namespace() -> None:
    text = "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata:\n  name: t\n  namespace: x\n"

    result = load_text(text, path="p.yaml", default_namespace="team-a")

    error = only_error(result)
    assert (where(error), error.field) == ("p.yaml:5", "metadata.namespace")
    assert "Tier is cluster-scoped" in error.message
    assert result.resources[0].ref.namespace == ""


def test_a_list_is_unpacked_with_lines_of_its_items() -> None:
    text = """\
        apiVersion: v1
        kind: List
        items:
          - apiVersion: projectcalico.org/v3
            kind: GlobalNetworkSet
            metadata: {name: one}
          - apiVersion: projectcalico.org/v3
            kind: GlobalNetworkSet
            metadata: {name: two}
            spec:
              nets: [not-a-cidr]
        """

    result = load_text(textwrap.dedent(text), path="list.yaml")

    assert origins(result) == ["list.yaml:4", "list.yaml:7"]
    error = only_error(result)
    assert (where(error), error.field) == ("list.yaml:11", "spec.nets[0]")


def test_a_list_without_items_is_an_error() -> None:
    error = only_error(load_text("apiVersion: v1\nkind: List\nitems: {}\n", path="p.yaml"))

    assert (where(error), error.message) == ("p.yaml:3", "a List needs a list of items")


# --- duplicates --------------------------------------------------------------------------


def test_the_same_object_in_two_files_is_an_error_naming_both(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", gns("dup"))
    write(tmp_path, "b/c.yaml", "# again\n" + textwrap.dedent(gns("dup")))

    result = load_dir(tmp_path)

    error = only_error(result)
    assert where(error) == "b/c.yaml:2"
    assert error.message == "GlobalNetworkSet/dup is defined twice: also at a.yaml:1"
    assert origins(result) == ["a.yaml:1"]


def test_v1_and_v3_flavours_of_one_object_are_duplicates() -> None:
    text = (
        textwrap.dedent(gns("dup"))
        + "---\n"
        + textwrap.dedent(gns("dup")).replace("projectcalico.org/v3", "crd.projectcalico.org/v1")
    )

    error = only_error(load_text(text, path="p.yaml"))

    assert where(error) == "p.yaml:8"
    assert "projectcalico.org/v3 and crd.projectcalico.org/v1 alike" in error.message
    assert "also at p.yaml:1" in error.message


def test_same_name_in_other_namespaces_or_groups_is_not_a_duplicate() -> None:
    calico = "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: web}\n"
    k8s = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: web}\n"
    spec = "spec: {podSelector: {}}\n"
    other_ns = calico.replace("name: web}", "name: web, namespace: b}")
    text = f"{calico}---\n{k8s}{spec}---\n{other_ns}"

    result = load_text(text, path="p.yaml", default_namespace="a")

    assert result.ok, [str(f) for f in result.findings]
    assert [str(r.ref) for r in result.resources] == [
        "NetworkPolicy/a/web",
        "NetworkPolicy/a/web",
        "NetworkPolicy/b/web",
    ]


# --- all errors, in order ----------------------------------------------------------------


def test_a_file_with_many_problems_reports_every_one_in_order(tmp_path: Path) -> None:
    write(
        tmp_path,
        "many.yaml",
        """\
        apiVersion: projectcalico.org/v3
        kind: GlobalNetworkPolicy
        metadata:
          name: Bad_Name
        spec:
          selectro: all()
          ingress:
            - action: allow
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: x}
        ---
        apiVersion: projectcalico.org/v3
        kind: GlobalNetworkSet
        metadata: {name: s, labels: {a: b, a: c}}
        spec:
          nets: [10.0.0.0/33]
        """,
    )
    write(tmp_path, "also.yaml", "kind: [\n")

    result = load_dir(tmp_path)

    assert [(where(f), f.field) for f in errors(result)] == [
        ("also.yaml:2", ""),
        ("many.yaml:4", "metadata.name"),
        ("many.yaml:6", "spec.selectro"),
        ("many.yaml:8", "spec.ingress[0].action"),
        ("many.yaml:11", ""),
        ("many.yaml:16", "metadata.labels.a"),
        ("many.yaml:18", "spec.nets[0]"),
    ]
    assert names(result) == ["Bad_Name", "s"]


# --- never raise -------------------------------------------------------------------------


YAMLISH = st.text(alphabet=st.sampled_from(list("ak: -[]{}&*!|>'\"#\n\t,?%@<=~0129.")))


@settings(max_examples=300, deadline=None)
@given(YAMLISH | st.text(max_size=100))
def test_any_text_gives_findings_not_exceptions(text: str) -> None:
    result = load_text(text, path="fuzz.yaml")

    assert all(f.origin is not None and f.origin.path == "fuzz.yaml" for f in result.findings)
    assert not any("internal error" in f.message for f in result.findings)


def test_the_example_repo_loads_without_findings() -> None:
    # Guards against false positives on the policies we ship as the reference.
    repo = Path(__file__).resolve().parents[2] / "example-repo"

    result = load_dir(repo)

    assert result.findings == (), [str(f) for f in result.findings]
    assert len(result.resources) > 10
