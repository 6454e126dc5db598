"""Credentials for git: read from files (a mounted Kubernetes Secret), handed to git
through its environment, never through the URL or argv, and scrubbed from any text.

HTTPS: the token goes into an `Authorization` header via `http.extraHeader`, set with
GIT_CONFIG_COUNT/KEY/VALUE env variables (git >= 2.31). SSH: GIT_SSH_COMMAND with the key,
our known_hosts only and strict host key checking.
"""

from __future__ import annotations

import base64
import os
import re
import shlex
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from reconciler.source.errors import ConfigError

Transport = Literal["http", "ssh", "file"]

# Inherited from our own environment: proxies and CA bundles matter in clusters.
_INHERIT = (
    "PATH", "HOME", "TMPDIR", "http_proxy", "https_proxy", "no_proxy", "all_proxy",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR",
    "CURL_CA_BUNDLE", "GIT_SSL_CAINFO", "GIT_SSL_CAPATH",
)  # fmt: skip

# Hermetic git: no user/system config, no prompts, no credential helpers, known transports.
_BASE_ENV = {
    "LC_ALL": "C",  # stable messages: errors are classified by their text
    "LANG": "C",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_ALLOW_PROTOCOL": "file:http:https:ssh",
    "GCM_INTERACTIVE": "never",
}
_BASE_CONFIG = (
    ("credential.helper", ""),  # an empty value clears any inherited helper list
    ("protocol.version", "2"),
    ("transfer.fsckObjects", "true"),  # a malformed tree could smuggle paths past checkout
)

_SCHEMES: Mapping[str, Transport] = {
    "http": "http", "https": "http", "ssh": "ssh", "git+ssh": "ssh", "ssh+git": "ssh",
    "file": "file",
}  # fmt: skip
_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?[^/:]+:")  # git's rule: "host:path" before any "/"
_HELPER = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*::")  # "ext::cmd": a remote helper runs commands


@dataclass(frozen=True, slots=True)
class GitAuth:
    """Secrets are file paths, as a Kubernetes Secret volume mounts them."""

    token_file: Path | None = None
    username: str = "git"
    ssh_key_file: Path | None = None
    known_hosts_file: Path | None = None
    scheme: Literal["basic", "bearer"] = "basic"  # how the token goes in the header


@dataclass(frozen=True, slots=True)
class Scrubber:
    """Replaces secrets and the raw URL in any text that may be printed or logged."""

    url: str
    safe_url: str
    secrets: tuple[str, ...] = ()

    def __call__(self, text: str) -> str:
        if self.url != self.safe_url:
            text = text.replace(self.url, self.safe_url)
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text


@dataclass(frozen=True, slots=True)
class Prepared:
    env: Mapping[str, str]
    scrub: Scrubber


def transport(url: str) -> Transport:
    if _HELPER.match(url):
        raise ConfigError("remote helper URLs (<transport>::<address>) are not supported")
    scheme, sep, _ = url.partition("://")
    if sep:
        kind = _SCHEMES.get(scheme.lower())
        if kind is None:
            raise ConfigError(
                f"unsupported URL scheme {scheme!r}: use https://, ssh://, file:// or a path"
            )
        return kind
    return "ssh" if _SCP_LIKE.match(url) else "file"


def redact(url: str) -> str:
    """The URL without credentials, query or fragment. An SSH user name is kept: not secret."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0] if transport(url) == "ssh" and at else ""
    netloc = f"{user}@{hostport}" if user else hostport
    return f"{parts.scheme}://{netloc}{parts.path}"


def base_env(config: Sequence[tuple[str, str]] = ()) -> dict[str, str]:
    env = {k: os.environ[k] for k in _INHERIT if k in os.environ}
    env.update(_BASE_ENV)
    pairs = (*_BASE_CONFIG, *config)
    env["GIT_CONFIG_COUNT"] = str(len(pairs))
    for i, (key, value) in enumerate(pairs):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    return env


@contextmanager
def prepared(auth: GitAuth, *, url: str, workdir: Path, timeout: float) -> Iterator[Prepared]:
    """Environment for network git commands; temporary key copies are gone afterwards."""
    kind = transport(url)
    url_secrets = _url_secrets(url)
    if kind == "http" and auth.token_file is not None:
        token = _read_secret(auth.token_file, what="token file")
        value = _header_value(auth, token)
        encoded = value.partition(" ")[2]
        scrub = Scrubber(url, redact(url), (*url_secrets, token, encoded))
        yield Prepared(base_env([("http.extraHeader", f"Authorization: {value}")]), scrub)
        return
    scrub = Scrubber(url, redact(url), url_secrets)
    if kind != "ssh":
        yield Prepared(base_env(), scrub)
        return
    with _usable_key(auth.ssh_key_file, workdir) as key:
        env = base_env()
        env["GIT_SSH_COMMAND"] = ssh_command(
            key=key, known_hosts=_known_hosts(auth), timeout=timeout
        )
        env["GIT_SSH_VARIANT"] = "ssh"
        yield Prepared(env, scrub)


def ssh_command(*, key: Path | None, known_hosts: Path, timeout: float) -> str:
    """Only our key, only our known_hosts, never a prompt, never ~/.ssh/config."""
    argv = ["ssh", "-F", os.devnull]
    if key is not None:
        argv += ["-i", str(key)]
    for option in (
        f"UserKnownHostsFile={known_hosts}",
        f"GlobalKnownHostsFile={os.devnull}",
        "StrictHostKeyChecking=yes",
        "IdentitiesOnly=yes",
        "BatchMode=yes",
        f"ConnectTimeout={max(1, int(timeout))}",
    ):
        argv += ["-o", option]
    return shlex.join(argv)


def _header_value(auth: GitAuth, token: str) -> str:
    if auth.scheme == "bearer":
        return f"Bearer {token}"
    pair = base64.b64encode(f"{auth.username}:{token}".encode()).decode()
    return f"Basic {pair}"


def _url_secrets(url: str) -> tuple[str, ...]:
    if "://" not in url:
        return ()
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    found = [userinfo, unquote(userinfo), parts.query, parts.password or ""]
    found.append(unquote(parts.password or ""))
    return tuple(s for s in found if s)


def _read_secret(path: Path, *, what: str) -> str:
    try:
        text = path.read_text().strip()
    except OSError as e:
        raise ConfigError(f"cannot read {what} {path}: {e.strerror}") from None
    if not text:
        raise ConfigError(f"{what} {path} is empty")
    if any(c in text for c in "\r\n"):
        raise ConfigError(f"{what} {path} holds more than one line")
    return text


def _known_hosts(auth: GitAuth) -> Path:
    if auth.known_hosts_file is None:
        raise ConfigError("an SSH URL needs known_hosts_file: host keys are always checked")
    _require_file(auth.known_hosts_file, what="known_hosts file")
    return auth.known_hosts_file


def _require_file(path: Path, *, what: str) -> None:
    if not os.access(path, os.R_OK) or not path.is_file():
        raise ConfigError(f"{what} {path} does not exist or is not readable")


@contextmanager
def _usable_key(key: Path | None, workdir: Path) -> Iterator[Path | None]:
    """ssh refuses a key of ours that others can read; Secret volumes default to 0644.
    Then use a private 0600 copy, removed when the command is done."""
    if key is None:
        yield None
        return
    _require_file(key, what="SSH key file")
    info = key.stat()
    if info.st_uid != os.getuid() or not info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        yield key
        return
    private = Path(tempfile.mkdtemp(prefix=".ssh-", dir=workdir))
    try:
        copy = private / "key"
        fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(key.read_bytes())
        yield copy
    finally:
        shutil.rmtree(private, ignore_errors=True)
