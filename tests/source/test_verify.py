"""Signature verification with real keys: a throwaway GPG key and SSH keys made per run."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.source import ConfigError, SignatureError, Verification
from tests.source.conftest import MakeSource
from tests.source.repos import Signer, Upstream
from tests.source.sshd import keygen


@dataclass(frozen=True)
class Keys:
    pgp: Signer  # signs with the trusted OpenPGP key
    pgp_stranger: Signer  # a key nobody trusts
    pgp_public: Path  # armored public key of `pgp`
    ssh: Signer
    ssh_stranger: Signer
    allowed_signers: Path  # trusts `ssh` only


def gpg(home: Path, *args: str) -> str:
    done = subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback",
         "--passphrase", "", *args],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return done.stdout


def pgp_signer(home: Path, uid: str) -> Signer:
    home.mkdir(mode=0o700)
    gpg(home, "--quick-gen-key", uid, "ed25519", "sign", "never")
    return Signer(("-c", f"user.signingkey={uid}"), {"GNUPGHOME": str(home)})


def ssh_signer(key: Path) -> Signer:
    return Signer(("-c", "gpg.format=ssh", "-c", f"user.signingkey={key}"), {})


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keys]:
    base = tmp_path_factory.mktemp("keys")
    homes = Path(tempfile.mkdtemp(prefix="gpgt-"))  # short: gpg-agent socket paths
    trusted = pgp_signer(homes / "a", "Release Bot <release@example.com>")
    stranger = pgp_signer(homes / "b", "Mallory <mallory@example.com>")
    public = base / "release.asc"
    public.write_text(gpg(homes / "a", "--armor", "--export", "release@example.com"))
    ssh_key, other = keygen(base / "ssh_signer", "signer"), keygen(base / "ssh_other", "other")
    allowed = base / "allowed_signers"
    allowed.write_text(f"release@example.com {Path(f'{ssh_key}.pub').read_text()}")
    yield Keys(trusted, stranger, public, ssh_signer(ssh_key), ssh_signer(other), allowed)
    for home in (homes / "a", homes / "b"):
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)
    shutil.rmtree(homes, ignore_errors=True)


@pytest.fixture(autouse=True)
def user_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The user's own keyring: verification must never touch it."""
    home = tmp_path / "user-gnupg"
    home.mkdir(mode=0o700)
    monkeypatch.setenv("GNUPGHOME", str(home))
    yield home
    assert list(home.iterdir()) == []


def openpgp(keys: Keys) -> Verification:
    return Verification(mode="openpgp", keys=keys.pgp_public)


def ssh(keys: Keys) -> Verification:
    return Verification(mode="ssh", keys=keys.allowed_signers)


def test_openpgp_signed_commit_is_accepted(
    upstream: Upstream, make_source: MakeSource, keys: Keys
) -> None:
    head = upstream.commit({"p.yaml": "x\n"}, signer=keys.pgp)
    assert make_source(verify=openpgp(keys)).fetch().id == head


def test_openpgp_keys_from_a_secret_volume_folder(
    upstream: Upstream, make_source: MakeSource, keys: Keys, tmp_path: Path
) -> None:
    """A mounted Secret: keys are symlinks into ..data; hidden entries must be skipped."""
    volume = tmp_path / "volume"
    data = volume / "..2024_01_01"
    data.mkdir(parents=True)
    (data / "release.asc").write_text(keys.pgp_public.read_text())
    (data / "notes.asc").write_text("")  # an empty key among the keys is no reason to fail
    (volume / "..data").symlink_to(data.name)
    for name in ("release.asc", "notes.asc"):
        (volume / name).symlink_to(f"..data/{name}")
    head = upstream.commit({"p.yaml": "x\n"}, signer=keys.pgp)
    assert make_source(verify=Verification("openpgp", volume)).fetch().id == head


@pytest.mark.parametrize("mode", ["openpgp", "ssh"])
def test_an_unsigned_commit_is_refused(
    upstream: Upstream, make_source: MakeSource, keys: Keys, cache: Path, mode: str
) -> None:
    head = upstream.commit({"p.yaml": "x\n"})
    verification = openpgp(keys) if mode == "openpgp" else ssh(keys)
    with pytest.raises(SignatureError, match=f"^commit {head[:7]} is not signed$") as caught:
        make_source(verify=verification).fetch()
    assert not caught.value.transient
    assert not list(cache.glob("*/trees/*"))  # nothing checked out for the pipeline


@pytest.mark.parametrize("mode", ["openpgp", "ssh"])
def test_a_commit_signed_by_an_untrusted_key_is_refused(
    upstream: Upstream, make_source: MakeSource, keys: Keys, mode: str
) -> None:
    signer = keys.pgp_stranger if mode == "openpgp" else keys.ssh_stranger
    head = upstream.commit({"p.yaml": "x\n"}, signer=signer)
    verification = openpgp(keys) if mode == "openpgp" else ssh(keys)
    with pytest.raises(SignatureError, match=f"commit {head[:7]} is signed by an untrusted key"):
        make_source(verify=verification).fetch()


def test_ssh_signed_commit_is_accepted(
    upstream: Upstream, make_source: MakeSource, keys: Keys
) -> None:
    head = upstream.commit({"p.yaml": "x\n"}, signer=keys.ssh)
    assert make_source(verify=ssh(keys)).fetch().id == head


def test_a_signature_of_the_other_kind_is_refused(
    upstream: Upstream, make_source: MakeSource, keys: Keys
) -> None:
    head = upstream.commit({"p.yaml": "x\n"}, signer=keys.ssh)
    with pytest.raises(SignatureError, match=f"commit {head[:7]} is signed with ssh, but openpgp"):
        make_source(verify=openpgp(keys)).fetch()


@pytest.mark.parametrize("mode", ["openpgp", "ssh"])
def test_a_signed_tag_vouches_for_an_unsigned_commit(
    upstream: Upstream, make_source: MakeSource, keys: Keys, mode: str
) -> None:
    head = upstream.commit({"p.yaml": "x\n"})
    upstream.tag("v1", signer=keys.pgp if mode == "openpgp" else keys.ssh)
    verification = openpgp(keys) if mode == "openpgp" else ssh(keys)
    assert make_source(tag="v1", verify=verification).fetch().id == head


def test_a_tag_signed_by_an_untrusted_key_is_refused(
    upstream: Upstream, make_source: MakeSource, keys: Keys
) -> None:
    upstream.commit({"p.yaml": "x\n"}, signer=keys.pgp)  # a good commit does not save a bad tag
    upstream.tag("v1", signer=keys.pgp_stranger)
    with pytest.raises(SignatureError, match=r"^tag v1 \([0-9a-f]{7}\) is signed by an untrusted"):
        make_source(tag="v1", verify=openpgp(keys)).fetch()


@pytest.mark.parametrize("annotated", [False, True])
def test_an_unsigned_tag_falls_back_to_the_commit(
    upstream: Upstream, make_source: MakeSource, keys: Keys, annotated: bool
) -> None:
    head = upstream.commit({"p.yaml": "x\n"})
    upstream.tag("v1", annotated=annotated)
    with pytest.raises(SignatureError, match=f"commit {head[:7]} is not signed"):
        make_source(tag="v1", verify=openpgp(keys)).fetch()
    signed = upstream.commit({"p.yaml": "y\n"}, signer=keys.pgp)
    upstream.tag("v1", annotated=annotated, force=True)
    assert make_source(tag="v1", verify=openpgp(keys)).fetch().id == signed


def test_unusable_keys_are_a_config_error(
    upstream: Upstream, make_source: MakeSource, keys: Keys, tmp_path: Path
) -> None:
    upstream.commit({"p.yaml": "x\n"}, signer=keys.pgp)
    garbage = tmp_path / "garbage.asc"
    garbage.write_text("not a key\n")
    with pytest.raises(ConfigError, match="no OpenPGP public keys could be imported"):
        make_source(verify=Verification("openpgp", garbage)).fetch()
    with pytest.raises(ConfigError, match="no OpenPGP key files"):
        make_source(verify=Verification("openpgp", tmp_path / "absent")).fetch()
    upstream.commit({"p.yaml": "y\n"}, signer=keys.ssh)
    with pytest.raises(ConfigError, match=r"allowed_signers file .* does not exist or is empty"):
        make_source(verify=Verification("ssh", tmp_path / "absent")).fetch()
