"""The peer benchmark's inputs and its audit log reader, without a cluster."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import yaml

from bench.peers import objects
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
