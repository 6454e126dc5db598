"""The peer benchmark's inputs and its audit log reader, without a cluster."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

from bench.peers import objects, tools
from bench.peers.audit import count


def _event(agent: str, verb: str, uri: str = "/api/v1/x", stage: str = "ResponseComplete") -> bytes:
    line = {"userAgent": agent, "verb": verb, "requestURI": uri, "stage": stage}
    return json.dumps(line).encode() + b"\n"


def test_count_takes_whole_lines_of_one_agent_and_a_watch_once() -> None:
    log = b"".join(
        [
            _event("kubectl/v1.34.4 (linux)", "patch", "/apis/x?dryRun=All&fieldManager=k"),
            _event("kubectl/v1.34.4 (linux)", "patch"),
            _event("kubectl/v1.34.4 (linux)", "watch", stage="ResponseStarted"),
            _event("kubectl/v1.34.4 (linux)", "watch"),
            _event("kustomize-controller/bench", "get"),
            _event("audit-sentinel/abc", "get"),
        ]
    )
    partial = _event("kubectl/v1.34.4", "delete")[:-10]  # being written: not whole yet

    counts = count(log + partial, user_agent="kubectl/")

    assert counts.verbs == Counter({"dry-run": 1, "patch": 1, "watch": 1})
    assert (counts.total, counts.writes) == (3, 1)
    assert count(log, user_agent="").total == 4  # the sentinel is never a tool's request


def test_every_tool_gets_the_same_objects_and_the_change_is_one_percent(tmp_path: Path) -> None:
    repos = objects.write(tmp_path, 600, prefix="t")

    peers = [d for d in yaml.safe_load_all((repos.peers / "objects.yaml").read_text()) if d]
    changed = [
        d for d in yaml.safe_load_all((repos.peers_changed / "objects.yaml").read_text()) if d
    ]
    kinds = Counter(d["kind"] for d in peers)
    assert len(peers) == len(changed) == 600
    assert (kinds["HostEndpoint"], kinds["GlobalNetworkPolicy"]) == (200, 200)
    assert {d["apiVersion"] for d in peers} == {"crd.projectcalico.org/v1", "networking.k8s.io/v1"}
    differ = [a for a, b in zip(peers, changed, strict=True) if a != b]
    assert len(differ) == repos.changed == 6
    assert all(
        d["metadata"]["labels"][objects.CHANGE_LABEL] == "one-percent"
        for d in changed
        if d not in peers
    )
    resource, _, name = repos.drift
    assert resource.startswith("globalnetworkpolicies.") and any(
        d["metadata"]["name"] == name for d in peers
    )


def test_a_flux_driver_that_cannot_build_says_why_and_caches_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "flux"
    source.mkdir()
    (source / "go.mod").write_text(
        "module example.com/driver\n\ngo 1.24\n\nrequire github.com/fluxcd/pkg/ssa v0.78.0\n"
    )
    (source / "go.sum").write_text("")  # nothing verified: -mod=readonly refuses to build
    (source / "main.go").write_text(
        'package main\n\nimport _ "github.com/fluxcd/pkg/ssa"\n\nfunc main() {}\n'
    )
    monkeypatch.setattr(tools, "FLUX_DIR", source)
    monkeypatch.setenv("POLICY_RECONCILER_HOME", str(tmp_path / "cache"))

    tool, why = tools.flux_or_why(lambda _: None)

    assert tool is None
    assert why.startswith("not built: ") and "github.com/fluxcd/pkg/ssa" in why
    assert not (tools.flux_bin_dir() / "flux-ssa").exists()


def test_the_pinned_flux_driver_is_cached_by_its_source() -> None:
    key = tools.flux_bin_dir().name
    assert key.startswith(f"flux-ssa-{tools.FLUX_SSA_VERSION}-")
    pins = (tools.FLUX_DIR / "go.mod").read_text()
    assert f"github.com/fluxcd/pkg/ssa {tools.FLUX_SSA_VERSION}" in pins
    assert "github.com/fluxcd/pkg/ssa" in (tools.FLUX_DIR / "go.sum").read_text()
