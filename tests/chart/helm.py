"""Drive the real Helm binary (built by `policy-reconciler local-cluster build`) on our chart."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from reconciler.applyset import ApplySet

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "policy-reconciler"
CI_VALUES = CHART / "ci"
SECRETS_DIR = "/etc/policy-reconciler/"  # where the chart mounts referenced Secrets
CACHE_DIR = "/var/cache/policy-reconciler"
KUBE_VERSION = "1.34.0"  # `helm template` has no cluster to ask; the chart needs >= 1.27


class HelmError(AssertionError):
    """Helm exited non-zero; the message carries its stderr."""


@dataclass(frozen=True, slots=True)
class Rendered:
    """The objects one `helm template` produced, looked up by kind and name."""

    objects: tuple[dict[str, Any], ...]

    def kinds(self) -> list[str]:
        return sorted(o["kind"] for o in self.objects)

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str) -> dict[str, Any]:
        (found,) = self.all(kind)
        return found

    def container(self) -> dict[str, Any]:
        (container,) = self.one("Deployment")["spec"]["template"]["spec"]["containers"]
        found: dict[str, Any] = container
        return found

    def args(self) -> list[str]:
        return list(self.container()["args"])


def run(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([helm, *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise HelmError(f"helm {' '.join(args)}:\n{proc.stderr}")
    return proc


def value_args(values: Iterable[str | Path] = (), sets: Sequence[str] = ()) -> list[str]:
    files = [a for v in values for a in ("-f", str(_values_path(v)))]
    return [*files, *(a for s in sets for a in ("--set", s))]


def template(
    helm: str,
    *values: str | Path,
    sets: Sequence[str] = (),
    release: str = "fw",
    namespace: str = "firewall",
    kube_version: str | None = KUBE_VERSION,  # None: Helm's own default
) -> Rendered:
    versions = ["--kube-version", kube_version] if kube_version else []
    proc = run(
        helm,
        "template",
        release,
        str(CHART),
        "--namespace",
        namespace,
        *versions,
        *value_args(values, sets),
    )
    return Rendered(tuple(d for d in yaml.safe_load_all(proc.stdout) if d))


def lint(helm: str, *values: str | Path, sets: Sequence[str] = ()) -> str:
    return run(helm, "lint", "--strict", str(CHART), *value_args(values, sets)).stdout


def local_args(args: Sequence[str], root: Path) -> list[str]:
    """The Deployment's args with in-pod paths moved under `root`: each mounted Secret key
    becomes a file with content, the cache dir a directory."""
    return [_local(arg, root) for arg in args]


def _local(arg: str, root: Path) -> str:
    if not arg.startswith((SECRETS_DIR, CACHE_DIR)):
        return arg
    mapped = root / arg.lstrip("/")
    if arg.startswith(SECRETS_DIR):
        mapped.parent.mkdir(parents=True, exist_ok=True)
        mapped.write_text("secret\n")
    else:
        mapped.mkdir(parents=True, exist_ok=True)
    return str(mapped)


def _values_path(value: str | Path) -> Path:
    """A bare name means one of the chart's ci/ values files."""
    path = Path(value)
    return path if path.is_absolute() else CI_VALUES / path


@dataclass(frozen=True, slots=True)
class Release:
    """One installed release of the chart."""

    namespace: str
    name: str  # the release's full name: Deployment, ServiceAccount, Role, Service ...
    applyset: ApplySet
    output: str  # helm's stdout + stderr (NOTES, warnings)

    @property
    def cluster_name(self) -> str:  # ClusterRole and ClusterRoleBinding
        return f"{self.namespace}-{self.name}"

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"

    @property
    def lease(self) -> str:
        return f"{self.applyset.name}-leader"
