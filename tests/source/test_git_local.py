"""Git source against real local bare repositories: refs, shallow fetch, paths, stability."""

from __future__ import annotations

import fcntl
import os
import stat
from pathlib import Path

import pytest

from reconciler.source import (
    CacheBusy,
    ConfigError,
    PathError,
    RefNotFound,
    RepositoryNotFound,
    SourceError,
)
from tests.source.conftest import MakeSource
from tests.source.repos import Upstream, git


def files(root: str | Path) -> dict[str, str]:
    base = Path(root)
    return {str(p.relative_to(base)): p.read_text() for p in sorted(base.rglob("*")) if p.is_file()}


def cache_repo(cache: Path) -> Path:
    (repo,) = cache.glob("*/repo.git")
    return repo


@pytest.mark.parametrize("style", ["path", "file-url"])
def test_branch_head_with_path_is_checked_out_shallow(
    upstream: Upstream, make_source: MakeSource, cache: Path, style: str
) -> None:
    upstream.commit({"prod/a.yaml": "a: 1\n"}, message="first")
    upstream.commit({"prod/a.yaml": "a: 2\n", "dev/b.yaml": "b: 1\n"}, message="second")
    head = upstream.commit(
        {"prod/sub/c.yaml": "c: 1\n"}, message="Allow SSH from bastion\n\nlonger body"
    )
    url = str(upstream.bare) if style == "path" else upstream.bare.as_uri()

    revision = make_source(url=url, path="prod").fetch()

    assert revision.id == head
    assert revision.author == "Alice Example <alice@example.com>"
    assert revision.subject == "Allow SSH from bastion"
    assert Path(revision.path).is_absolute()
    assert files(revision.path) == {"a.yaml": "a: 2\n", "sub/c.yaml": "c: 1\n"}
    repo = cache_repo(cache)
    assert (repo / "shallow").is_file()
    assert git(repo, "rev-list", "--count", "--all") == "1"


def test_new_commits_are_picked_up_and_old_trees_stay_unchanged(
    upstream: Upstream, make_source: MakeSource
) -> None:
    source = make_source()
    upstream.commit({"p.yaml": "v: 1\n"})
    first = source.fetch()
    assert source.fetch() == first  # nothing new: same revision, same directory

    upstream.commit({"p.yaml": "v: 2\n", "q.yaml": "new\n"})
    second = source.fetch()
    assert second.id != first.id and second.path != first.path
    assert files(first.path) == {"p.yaml": "v: 1\n"}  # the tree being rendered is untouched
    assert files(second.path) == {"p.yaml": "v: 2\n", "q.yaml": "new\n"}
    assert stat.S_IMODE((Path(first.path) / "p.yaml").stat().st_mode) == 0o444  # read-only

    upstream.commit({"p.yaml": "v: 3\n"})
    third = source.fetch()
    assert not Path(first.path).exists()  # only the last two are kept
    assert files(second.path)["p.yaml"] == "v: 2\n"
    assert files(third.path)["p.yaml"] == "v: 3\n"


def test_force_pushed_branch_is_followed(upstream: Upstream, make_source: MakeSource) -> None:
    source = make_source()
    base = upstream.commit({"p.yaml": "base\n"})
    upstream.commit({"p.yaml": "abandoned\n"})
    source.fetch()
    upstream.reset_hard(base)
    rewritten = upstream.commit({"p.yaml": "rewritten\n"}, push=False)
    upstream.push(force=True)

    revision = source.fetch()

    assert revision.id == rewritten
    assert files(revision.path) == {"p.yaml": "rewritten\n"}


def test_other_branch(upstream: Upstream, make_source: MakeSource) -> None:
    upstream.commit({"p.yaml": "main\n"})
    git(upstream.work, "checkout", "-q", "-b", "staging")
    upstream.branch = "staging"
    sha = upstream.commit({"p.yaml": "staging\n"})

    revision = make_source(branch="staging").fetch()

    assert revision.id == sha and files(revision.path) == {"p.yaml": "staging\n"}


@pytest.mark.parametrize("annotated", [False, True])
def test_tag_and_a_moved_tag(upstream: Upstream, make_source: MakeSource, annotated: bool) -> None:
    tagged = upstream.commit({"p.yaml": "v1\n"})
    upstream.tag("v1.0", annotated=annotated)
    upstream.commit({"p.yaml": "later\n"})
    source = make_source(tag="v1.0")

    revision = source.fetch()
    assert revision.id == tagged and files(revision.path) == {"p.yaml": "v1\n"}

    moved = git(upstream.work, "rev-parse", "HEAD")
    upstream.tag("v1.0", annotated=annotated, force=True)
    assert source.fetch().id == moved


def test_pinned_full_sha_behind_the_tip_is_fetched_shallow(
    upstream: Upstream, make_source: MakeSource, cache: Path
) -> None:
    old = upstream.commit({"p.yaml": "old\n"})
    upstream.commit({"p.yaml": "new\n"})
    upstream.commit({"p.yaml": "newer\n"})

    revision = make_source(commit=old).fetch()

    assert revision.id == old and files(revision.path) == {"p.yaml": "old\n"}
    assert git(cache_repo(cache), "rev-list", "--count", "--all") == "1"


def test_pinned_short_sha_is_found_in_the_branch_history(
    upstream: Upstream, make_source: MakeSource, cache: Path
) -> None:
    old = upstream.commit({"p.yaml": "old\n"})
    upstream.commit({"p.yaml": "new\n"})
    make_source().fetch()  # the cache is shallow now: the pin needs --unshallow
    assert (cache_repo(cache) / "shallow").exists()
    source = make_source(commit=old[:10])

    revision = source.fetch()

    assert revision.id == old and files(revision.path) == {"p.yaml": "old\n"}
    assert not (cache_repo(cache) / "shallow").exists()  # the deeper fetch happened
    assert source.fetch() == revision


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"branch": "nope"}, "branch 'nope'"),
        ({"tag": "v9"}, "tag 'v9'"),
        ({"commit": "0123456789abcdef0123456789abcdef01234567"}, "commit 0123456789abcdef"),
        ({"commit": "0123456789ab"}, "commit 0123456789ab not found on branch 'main'"),
    ],
)
def test_ref_not_found(
    upstream: Upstream, make_source: MakeSource, spec: dict[str, str], message: str
) -> None:
    upstream.commit({"p.yaml": "x\n"})
    with pytest.raises(RefNotFound, match=message) as caught:
        make_source(**spec).fetch()
    assert not caught.value.transient


def test_repository_not_found(make_source: MakeSource, tmp_path: Path) -> None:
    with pytest.raises(RepositoryNotFound, match="nothing-here"):
        make_source(url=str(tmp_path / "nothing-here.git")).fetch()


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("missing", "does not exist"),
        ("prod/a.yaml", "is a file"),
        ("current", "is a symlink"),
        ("current/sub", "current is a symlink"),
    ],
)
def test_bad_path_in_commit(
    upstream: Upstream, make_source: MakeSource, cache: Path, path: str, message: str
) -> None:
    upstream.commit({"prod/a.yaml": "a\n", "prod/sub/b.yaml": "b\n"}, links={"current": "prod"})
    with pytest.raises(PathError, match=message):
        make_source(path=path).fetch()


@pytest.mark.parametrize(
    "links",
    [
        {"prod/leak.yaml": "/etc/passwd"},
        {"prod/leak.yaml": "../secret.yaml"},
        {"prod/d/up": "..", "prod/leak": "d/up/.."},  # looks inside when read lexically
    ],
)
def test_symlinks_escaping_the_path_are_refused(
    upstream: Upstream, make_source: MakeSource, cache: Path, links: dict[str, str]
) -> None:
    upstream.commit({"prod/a.yaml": "a\n", "secret.yaml": "s\n"}, links=links)
    with pytest.raises(PathError, match="points outside prod"):
        make_source(path="prod").fetch()
    assert not any((cache_repo(cache).parent / "trees").iterdir())  # nothing half-written


def test_symlinks_inside_the_path_are_kept(upstream: Upstream, make_source: MakeSource) -> None:
    upstream.commit({"prod/a.yaml": "a\n"}, links={"prod/alias.yaml": "a.yaml"})
    revision = make_source(path="./prod/").fetch()
    alias = Path(revision.path) / "alias.yaml"
    assert alias.is_symlink() and alias.read_text() == "a\n"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"path": "../other"}, "must not contain '..'"),
        ({"path": "prod/../../x"}, "must not contain '..'"),
        ({"path": "/etc"}, "must be relative"),
        ({"branch": "main:refs/heads/evil"}, "branch 'main:refs/heads/evil'"),
        ({"branch": "--upload-pack=x"}, "not a valid ref name"),
        ({"branch": "a..b"}, "holds '..'"),
        ({"tag": "v1 2"}, "holds a space"),
        ({"commit": "HEAD~1"}, "not a hex sha"),
        ({"url": "-oProxyCommand=x"}, "is not valid"),
        ({"url": "ext::sh -c touch% /tmp/pwned"}, "remote helper"),
        ({"url": "git://example.com/x.git"}, "unsupported URL scheme 'git'"),
        ({"timeout": 0}, "timeout must be positive"),
    ],
)
def test_invalid_spec_is_refused_up_front(
    make_source: MakeSource, spec: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        make_source(**spec)


def test_a_busy_cache_is_a_transient_error(upstream: Upstream, make_source: MakeSource) -> None:
    upstream.commit({"p.yaml": "x\n"})
    make_source().fetch()
    source = make_source(timeout=0.3)
    (root,) = Path(source.spec.cache_dir).iterdir()
    fd = os.open(root / ".lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(CacheBusy) as caught:
            source.fetch()
        assert caught.value.transient and isinstance(caught.value, SourceError)
    finally:
        os.close(fd)
