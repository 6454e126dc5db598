"""The local control plane's build step fails clearly when it cannot build."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from reconciler.localcluster import build, dataplane


def test_missing_go_is_a_clear_error_saying_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POLICY_RECONCILER_HOME", str(tmp_path))  # nothing cached here
    monkeypatch.setenv("PATH", str(tmp_path))  # and no `go` on PATH
    with pytest.raises(build.BuildError, match="Go is not installed or not on PATH") as err:
        build.ensure_binaries(progress=lambda _: None)
    assert "install Go" in str(err.value)


def test_binary_cache_is_keyed_by_the_pinned_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POLICY_RECONCILER_HOME", str(tmp_path))
    key = build.bin_dir()
    assert key.parent == tmp_path / "bin"
    assert key.name.startswith(f"k8s-{build.KUBERNETES_VERSION}-")


def test_cached_binaries_are_used_without_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POLICY_RECONCILER_HOME", str(tmp_path))
    cached = build.bin_dir()
    cached.mkdir(parents=True)
    for target in build.TARGETS:
        (cached / target.binary).write_text("")
    monkeypatch.setenv("PATH", str(tmp_path))  # no go: must not be needed
    assert build.ensure_binaries(progress=lambda _: None) == cached


def test_calico_parts_have_their_own_cache_key_so_they_never_invalidate_the_control_plane(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POLICY_RECONCILER_HOME", str(tmp_path))
    calico = build.calico_bin_dir()
    assert calico.name.startswith(f"calico-{build.CALICO_VERSION}-")
    assert calico != build.bin_dir()
    # adding or changing Calico's module leaves the control plane's key as it was
    before = build.bin_dir()
    sums = tmp_path / "gomod"
    shutil.copytree(build.GOMOD, sums)
    (sums / build.CALICO_MODULE / "go.sum").write_text("changed\n")
    monkeypatch.setattr(build, "GOMOD", sums)
    assert build.bin_dir() == before
    assert build.calico_bin_dir() != calico
    assert "cgo" not in repr(build.TARGETS)


def test_calico_binaries_need_go_only_when_not_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POLICY_RECONCILER_HOME", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(build.BuildError, match="Go is not installed"):
        build.ensure_calico_binaries(("calico-felix",), progress=lambda _: None)
    cached = build.calico_bin_dir()
    cached.mkdir(parents=True)
    (cached / "calico-felix").write_text("")
    assert build.ensure_calico_binaries(("calico-felix",), progress=lambda _: None) == cached
    assert all(not t.cgo for t in build.CALICO_TARGETS)  # static: felix's libbpf is a stub


def test_dataplane_without_root_or_tools_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(dataplane.DataplaneError, match="needs root"):
        dataplane.check_host()
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(dataplane, "_which", lambda tool: None if tool == "ipset" else tool)
    with pytest.raises(dataplane.DataplaneError, match=r"needs ipset: run scripts/system-deps.sh"):
        dataplane.check_host()
