"""Commit and tag signature verification: OpenPGP or SSH, with keys the user gave us only.

OpenPGP keys are imported into a throwaway GNUPGHOME for each check, so neither the
user's keyring nor its trust settings take part, and a key rotated in the Secret counts at
once. Any good signature by an imported key is trusted. SSH signatures are checked against
an allowed_signers file (`gpg.ssh.allowedSignersFile`). `git verify-commit`/`verify-tag`
do the cryptography.

What is checked: the head commit; for `--tag`, the tag object when the tag is annotated
and signed, else the commit it points to.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from reconciler.source.auth import Scrubber, base_env
from reconciler.source.errors import ConfigError, SignatureError
from reconciler.source.run import Runner

if TYPE_CHECKING:  # GitPython is imported by the code that fetches (source/git.py)
    from git import Commit, TagObject

Mode = Literal["openpgp", "ssh"]

# The armour line that opens a signature -> its format (as git's gpg-interface.c).
_FORMATS: tuple[tuple[str, str], ...] = (
    ("-----BEGIN PGP SIGNATURE-----", "openpgp"),
    ("-----BEGIN PGP MESSAGE-----", "openpgp"),
    ("-----BEGIN SSH SIGNATURE-----", "ssh"),
    ("-----BEGIN SIGNED MESSAGE-----", "x509"),
)
# Text in git's --raw verification output -> why the signature is refused. First match wins.
_REASONS: tuple[tuple[str, str], ...] = (
    ("NO_PUBKEY", "is signed by an untrusted key"),
    ("No principal matched", "is signed by an untrusted key"),
    ("REVKEYSIG", "is signed by a revoked key"),
    ("EXPKEYSIG", "is signed by an expired key"),
    ("EXPSIG", "has an expired signature"),
    ("BADSIG", "has a bad signature"),
    ("Could not verify signature", "has a bad signature"),
    ("Signature verification failed", "has a bad signature"),
)
_TOOLS: Mapping[str, str] = {"openpgp": "gpg", "ssh": "ssh-keygen"}


@dataclass(frozen=True, slots=True)
class Verification:
    mode: Mode
    keys: Path  # openpgp: a file or a folder of armored public keys; ssh: allowed_signers


@dataclass(frozen=True, slots=True)
class Signed:
    """The object whose signature decides: a commit, or an annotated signed tag."""

    kind: Literal["commit", "tag"]
    sha: str
    label: str  # "commit 1a2b3c4", "tag v1.2 (9f8e7d6)"
    signature: str  # "" when unsigned


def signed_object(*, commit: Commit, tag: TagObject | None = None) -> Signed:
    if tag is not None:
        signature = _tag_signature(tag.message)
        if signature:
            return Signed("tag", tag.hexsha, f"tag {tag.tag} ({tag.hexsha[:7]})", signature)
    return Signed("commit", commit.hexsha, f"commit {commit.hexsha[:7]}", commit.gpgsig or "")


def verify(signed: Signed, *, verification: Verification, git_dir: Path, timeout: float) -> None:
    """Returns when the signature is good and made by a trusted key; else SignatureError."""
    if not signed.signature:
        raise SignatureError(f"{signed.label} is not signed")
    found = _format(signed.signature)
    if found != verification.mode:
        raise SignatureError(
            f"{signed.label} is signed with {found}, but {verification.mode} keys are configured"
        )
    if shutil.which(_TOOLS[verification.mode]) is None:
        raise ConfigError(f"{_TOOLS[verification.mode]} is not installed: cannot verify")
    with _keyring(verification, timeout=timeout) as env:
        runner = Runner(git_dir, env, Scrubber("", ""), timeout)
        code, out, err = runner.call(f"verify-{signed.kind}", "--raw", signed.sha, what="verify")
    if code != 0:
        raise SignatureError(f"{signed.label} {_reason(out + err)} ({_whose(verification)})")


def _tag_signature(message: str) -> str:
    lines = message.splitlines(keepends=True)
    starts = [i for i, ln in enumerate(lines) if ln.startswith(tuple(f for f, _ in _FORMATS))]
    return "".join(lines[starts[-1] :]) if starts else ""


def _format(signature: str) -> str:
    head = signature.lstrip()
    return next((fmt for armour, fmt in _FORMATS if head.startswith(armour)), "an unknown format")


def _reason(output: str) -> str:
    return next((why for text, why in _REASONS if text in output), "has a signature that fails")


def _whose(verification: Verification) -> str:
    return f"{verification.mode} keys from {verification.keys}"


@contextmanager
def _keyring(verification: Verification, *, timeout: float) -> Iterator[dict[str, str]]:
    """A fresh, empty GNUPGHOME always (git may call gpg), with our keys for openpgp."""
    home = Path(tempfile.mkdtemp(prefix="gnupg-"))  # short path: gpg sockets have a limit
    try:
        if verification.mode == "openpgp":
            _import_keys(_key_files(verification.keys), home=home, timeout=timeout)
            env = base_env()
        else:
            env = base_env([("gpg.ssh.allowedSignersFile", str(_signers(verification.keys)))])
        env["GNUPGHOME"] = str(home)
        yield env
    finally:
        _stop_gpg(home)
        shutil.rmtree(home, ignore_errors=True)


def _key_files(keys: Path) -> list[Path]:
    """A file, or every visible file of a folder (a Secret volume's ..data links skipped)."""
    if keys.is_dir():
        files = sorted(p for p in keys.iterdir() if not p.name.startswith(".") and p.is_file())
    else:
        files = [keys] if keys.is_file() else []
    if not files:
        raise ConfigError(f"no OpenPGP key files at {keys}")
    return files


def _import_keys(files: list[Path], *, home: Path, timeout: float) -> None:
    home.chmod(0o700)
    argv = ["gpg", "--homedir", str(home), "--batch", "--no-tty", "--no-autostart"]
    argv += ["--status-fd", "1", "--import", *map(str, files)]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise ConfigError(f"importing OpenPGP keys from {files[0].parent} timed out") from None
    if "[GNUPG:] IMPORT_OK" not in done.stdout:
        shown = ", ".join(map(str, files))
        raise ConfigError(f"no OpenPGP public keys could be imported from {shown}")


def _signers(keys: Path) -> Path:
    if not keys.is_file() or not keys.read_text().strip():
        raise ConfigError(f"SSH allowed_signers file {keys} does not exist or is empty")
    return keys.resolve()


def _stop_gpg(home: Path) -> None:
    """Nothing should have started an agent (--no-autostart); make sure none outlives us."""
    if any(home.glob("S.*")) and shutil.which("gpgconf"):
        subprocess.run(
            ["gpgconf", "--homedir", str(home), "--kill", "all"],
            capture_output=True,
            timeout=10,
            check=False,
        )
