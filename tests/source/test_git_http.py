"""Git over HTTP against a loopback `git http-backend` that really demands a token."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.source import (
    AuthFailed,
    ConfigError,
    GitAuth,
    GitSource,
    SourceError,
    SourceSpec,
    Unreachable,
)
from tests.source.gitserver import GitServer, closed_port, silent_server
from tests.source.repos import Upstream, git

TOKEN = "ghp_Sup3rSecretTok3n0123456789"


@pytest.fixture
def server(upstream: Upstream) -> Iterator[GitServer]:
    upstream.commit({"prod/p.yaml": "p: 1\n"}, message="policy")
    with GitServer(upstream.bare.parent, token=TOKEN) as srv:
        yield srv


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret" / "token"
    path.parent.mkdir()
    path.write_text(TOKEN + "\n")  # a Secret often ends with a newline
    return path


def source(url: str, cache: Path, auth: GitAuth | None = None) -> GitSource:
    spec = SourceSpec(url=url, auth=auth or GitAuth(), cache_dir=cache, timeout=10)
    return GitSource(spec)


def assert_secret_free(
    error: BaseException, caplog: pytest.LogCaptureFixture, *secrets: str
) -> None:
    for secret in secrets:
        assert secret not in str(error)
        assert secret not in repr(error)
        assert secret not in caplog.text


@pytest.mark.parametrize("scheme", ["basic", "bearer"])
def test_a_good_token_fetches(
    server: GitServer,
    upstream: Upstream,
    token_file: Path,
    cache: Path,
    caplog: pytest.LogCaptureFixture,
    scheme: str,
) -> None:
    caplog.set_level(logging.DEBUG, logger="reconciler.source")
    auth = GitAuth(token_file=token_file, scheme=scheme)  # type: ignore[arg-type]

    revision = GitSource(
        SourceSpec(url=f"{server.url}/policies.git", auth=auth, cache_dir=cache, path="prod")
    ).fetch()

    assert revision.id == git(upstream.work, "rev-parse", "HEAD")
    assert (Path(revision.path) / "p.yaml").read_text() == "p: 1\n"
    assert server.requests and all(r.authorized for r in server.requests)
    assert {r.scheme for r in server.requests} == {scheme}
    assert any("/git-upload-pack" in r.path for r in server.requests)
    assert TOKEN not in caplog.text
    on_disk = b"".join(p.read_bytes() for p in cache.rglob("*") if p.is_file())
    assert TOKEN.encode() not in on_disk  # not in the cache repo's config, nor anywhere


def test_a_wrong_token_is_refused_without_leaking_it(
    server: GitServer, tmp_path: Path, cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="reconciler.source")
    wrong = tmp_path / "wrong"
    wrong.write_text("glpat-Wr0ngTok3nValue")

    with pytest.raises(AuthFailed) as caught:
        source(f"{server.url}/policies.git", cache, GitAuth(token_file=wrong)).fetch()

    assert "authentication failed" in str(caught.value) or "credentials" in str(caught.value)
    assert f"{server.url}/policies.git" in str(caught.value)
    assert not caught.value.transient
    assert_secret_free(caught.value, caplog, "glpat-Wr0ngTok3nValue", TOKEN)
    assert server.requests and not any(r.authorized for r in server.requests)


def test_the_basic_auth_user_name_is_configurable(
    upstream: Upstream, token_file: Path, cache: Path
) -> None:
    upstream.commit({"p.yaml": "x\n"})
    with GitServer(upstream.bare.parent, token=TOKEN, username="deploy") as srv:
        url = f"{srv.url}/policies.git"
        with pytest.raises(AuthFailed):
            source(url, cache, GitAuth(token_file=token_file)).fetch()  # sends "git"
        source(url, cache, GitAuth(token_file=token_file, username="deploy")).fetch()


def test_a_pinned_commit_is_found_in_history_when_the_server_refuses_a_bare_sha(
    upstream: Upstream, cache: Path
) -> None:
    old = upstream.commit({"p.yaml": "old\n"})
    upstream.commit({"p.yaml": "new\n"})
    with GitServer(upstream.bare.parent, protocol_v2=False) as srv:
        spec = SourceSpec(url=f"{srv.url}/policies.git", commit=old, cache_dir=cache, timeout=10)
        revision = GitSource(spec).fetch()
    assert revision.id == old
    assert (Path(revision.path) / "p.yaml").read_text() == "old\n"
    (repo,) = cache.glob("*/repo.git")
    assert not (repo / "shallow").exists()  # fell back to the branch's full history


def test_no_token_is_refused(server: GitServer, cache: Path) -> None:
    with pytest.raises(AuthFailed, match="credentials"):
        source(f"{server.url}/policies.git", cache).fetch()
    assert {r.scheme for r in server.requests} == {""}


def test_credentials_in_the_url_are_never_printed(
    server: GitServer, cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="reconciler.source")
    host = server.url.removeprefix("http://")
    url = f"http://bob:Hunter2Secret@{host}/policies.git?private_token=Qu3rySecret"
    src = source(url, cache)
    assert src.redacted_url() == f"http://{host}/policies.git"

    with pytest.raises(AuthFailed) as caught:
        src.fetch()
    assert_secret_free(caught.value, caplog, "Hunter2Secret", "bob:", "Qu3rySecret")


def test_a_good_token_in_the_url_works_too(server: GitServer, cache: Path) -> None:
    host = server.url.removeprefix("http://")
    revision = source(f"http://git:{TOKEN}@{host}/policies.git", cache).fetch()
    assert len(revision.id) == 40


def test_closed_port_is_unreachable_and_transient(cache: Path) -> None:
    with pytest.raises(Unreachable, match=r"connection refused|cannot connect") as caught:
        source(f"http://127.0.0.1:{closed_port()}/policies.git", cache).fetch()
    assert caught.value.transient


def test_a_hung_server_times_out(cache: Path) -> None:
    with silent_server() as url:
        started = time.monotonic()
        with pytest.raises(Unreachable, match=r"no answer within 1\.5s") as caught:
            GitSource(SourceSpec(url=f"{url}/p.git", cache_dir=cache, timeout=1.5)).fetch()
    assert time.monotonic() - started < 10
    assert caught.value.transient


def test_missing_or_empty_token_file_is_a_config_error(tmp_path: Path, cache: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/policies.git"
    with pytest.raises(ConfigError, match=f"cannot read token file {tmp_path}/absent"):
        source(url, cache, GitAuth(token_file=tmp_path / "absent")).fetch()
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="is empty") as caught:
        source(url, cache, GitAuth(token_file=tmp_path / "empty")).fetch()
    assert isinstance(caught.value, SourceError) and not caught.value.transient
