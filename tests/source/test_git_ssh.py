"""Git over SSH against a real sshd on loopback: key, known_hosts, strict host checking."""

from __future__ import annotations

import logging
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.source import AuthFailed, ConfigError, GitAuth, GitSource, SourceSpec
from reconciler.source.auth import ssh_command
from tests.source.repos import Upstream, git
from tests.source.sshd import SSHServer, keygen, sshd


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("sshkeys")
    keygen(base / "client", "client")
    keygen(base / "stranger", "stranger")
    keygen(base / "impostor_host", "impostor")
    return base


@pytest.fixture(scope="module")
def server(keys: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    with sshd(
        tmp_path_factory.mktemp("sshd"), authorized_keys=(keys / "client.pub").read_text()
    ) as s:
        yield s


@pytest.fixture
def known_hosts(server: SSHServer, tmp_path: Path) -> Path:
    path = tmp_path / "known_hosts"
    path.write_text(server.known_hosts_line())
    return path


def fetch(server: SSHServer, upstream: Upstream, cache: Path, auth: GitAuth) -> str:
    spec = SourceSpec(url=server.url(upstream.bare), auth=auth, cache_dir=cache, timeout=20)
    return GitSource(spec).fetch().id


def test_key_and_known_hosts_fetch(
    server: SSHServer, upstream: Upstream, keys: Path, known_hosts: Path, cache: Path
) -> None:
    head = upstream.commit({"p.yaml": "x\n"})
    auth = GitAuth(ssh_key_file=keys / "client", known_hosts_file=known_hosts)
    assert fetch(server, upstream, cache, auth) == head


def test_a_key_readable_by_others_is_used_through_a_private_copy(
    server: SSHServer,
    upstream: Upstream,
    keys: Path,
    known_hosts: Path,
    cache: Path,
    tmp_path: Path,
) -> None:
    head = upstream.commit({"p.yaml": "x\n"})
    mounted = tmp_path / "secret-volume-key"  # Secret volumes default to mode 0644
    mounted.write_bytes((keys / "client").read_bytes())
    mounted.chmod(0o644)
    auth = GitAuth(ssh_key_file=mounted, known_hosts_file=known_hosts)
    assert fetch(server, upstream, cache, auth) == head
    assert not list(cache.rglob(".ssh-*"))  # the private copy is gone


def test_an_unknown_host_key_is_refused(
    server: SSHServer, upstream: Upstream, keys: Path, cache: Path, tmp_path: Path
) -> None:
    upstream.commit({"p.yaml": "x\n"})
    impostor = " ".join((keys / "impostor_host.pub").read_text().split()[:2])
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"[127.0.0.1]:{server.port} {impostor}\n")
    with pytest.raises(AuthFailed, match="host key is not in known_hosts_file"):
        fetch(
            server, upstream, cache, GitAuth(ssh_key_file=keys / "client", known_hosts_file=wrong)
        )


def test_an_unauthorized_key_is_refused_and_never_logged(
    server: SSHServer,
    upstream: Upstream,
    keys: Path,
    known_hosts: Path,
    cache: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="reconciler.source")
    upstream.commit({"p.yaml": "x\n"})
    auth = GitAuth(ssh_key_file=keys / "stranger", known_hosts_file=known_hosts)
    with pytest.raises(AuthFailed, match="refused the SSH key") as caught:
        fetch(server, upstream, cache, auth)
    key_body = (keys / "stranger").read_text().splitlines()[1]
    assert key_body not in str(caught.value) and key_body not in caplog.text


def test_ssh_needs_known_hosts(
    server: SSHServer, upstream: Upstream, keys: Path, cache: Path
) -> None:
    with pytest.raises(ConfigError, match="needs known_hosts_file"):
        fetch(server, upstream, cache, GitAuth(ssh_key_file=keys / "client"))


def test_scp_like_urls_are_ssh(tmp_path: Path) -> None:
    src = GitSource(SourceSpec(url="git@github.com:org/policies.git", cache_dir=tmp_path))
    with pytest.raises(ConfigError, match="needs known_hosts_file"):
        src.fetch()
    assert src.redacted_url() == "git@github.com:org/policies.git"


def test_the_ssh_command_trusts_only_what_it_is_given(tmp_path: Path) -> None:
    key, hosts = tmp_path / "my key", tmp_path / "known hosts"
    argv = shlex.split(ssh_command(key=key, known_hosts=hosts, timeout=7.5))
    options = {argv[i + 1] for i, a in enumerate(argv) if a == "-o"}
    assert argv[0] == "ssh" and argv[argv.index("-i") + 1] == str(key)
    assert argv[argv.index("-F") + 1] == "/dev/null"
    assert {
        f"UserKnownHostsFile={hosts}",
        "GlobalKnownHostsFile=/dev/null",
        "StrictHostKeyChecking=yes",
        "IdentitiesOnly=yes",
        "BatchMode=yes",
        "ConnectTimeout=7",
    } == options


def test_fetch_over_ssh_is_shallow(
    server: SSHServer, upstream: Upstream, keys: Path, known_hosts: Path, cache: Path
) -> None:
    upstream.commit({"p.yaml": "1\n"})
    upstream.commit({"p.yaml": "2\n"})
    fetch(
        server, upstream, cache, GitAuth(ssh_key_file=keys / "client", known_hosts_file=known_hosts)
    )
    (repo,) = cache.glob("*/repo.git")
    assert git(repo, "rev-list", "--count", "--all") == "1"
