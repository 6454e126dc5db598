"""The local control plane's build step fails clearly when it cannot build."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.localcluster import build


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
