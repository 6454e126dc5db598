"""Objects Calico's own validation rejects are rejected by ours first, with file:line.

Each bad object goes through both: our offline render (no cluster), and Calico's real
API server (projectcalico.org/v3, aggregated), which must refuse it too. The table is
the contract: if either side starts accepting one of these, the test fails.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler import pipeline
from reconciler.localcluster import ClusterError, ClusterInfo, kubectl
from reconciler.model import Revision


@dataclass(frozen=True, slots=True)
class Bad:
    spec: dict[str, Any]
    line: str  # our finding must point at the first line of the file containing this
    ours: str  # in our message
    calicos: str  # in Calico's API server's message


_PRE = {"selector": "has(host-endpoint)", "preDNAT": True, "types": ["Ingress"]}
_ALLOW_22 = {"action": "Allow", "protocol": "TCP", "destination": {"ports": [22]}}
CASES = {
    "predNAT-with-egress-rules": Bad(
        {**_PRE, "applyOnForward": True, "ingress": [_ALLOW_22], "egress": [{"action": "Allow"}]},
        "egress:",
        "preDNAT policy cannot have egress rules",
        "PreDNAT PolicySpec cannot have any Egress rules",
    ),
    "predNAT-without-applyOnForward": Bad(
        {**_PRE, "ingress": [_ALLOW_22]},
        "spec:",  # the missing field's parent
        "need applyOnForward: true",
        "ApplyOnForward must be true if either PreDNAT or DoNotTrack is true",
    ),
    "bad-action": Bad(
        {"selector": "all()", "ingress": [{**_ALLOW_22, "action": "Allowz"}]},
        "action: Allowz",
        "Allowz",
        'Invalid value: "Allowz"',
    ),
    "port-70000": Bad(
        {"selector": "all()", "ingress": [{**_ALLOW_22, "destination": {"ports": [70000]}}]},
        "- 70000",
        "70000",
        "70000",
    ),
}


def _policy(name: str, bad: Bad) -> dict[str, Any]:
    return {
        "apiVersion": "projectcalico.org/v3",
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": name},
        "spec": bad.spec,
    }


def _line_of(text: str, needle: str) -> int:
    """1-based number of the first line of text containing needle."""
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {text}")


@pytest.mark.parametrize("case", sorted(CASES))
def test_offline_validation_refuses_it_naming_file_and_line(tmp_path: Path, case: str) -> None:
    bad = CASES[case]
    path = tmp_path / "repo" / "bad.yaml"
    path.parent.mkdir()
    text = yaml.safe_dump(_policy(case.lower(), bad), sort_keys=False)
    path.write_text(text)
    settings = pipeline.Settings()
    rendered = pipeline.render(path.parent, Revision("dir:test", str(path.parent)), settings)
    errors = pipeline.plan_offline(rendered, settings).errors
    assert errors, f"{case}: our validation accepted it"
    found = [e for e in errors if bad.ours in e.message]
    assert found, [str(e) for e in errors]
    origin = found[0].origin
    assert origin is not None and origin.path == "bad.yaml"
    assert origin.line == _line_of(text, bad.line), f"{found[0]}\n{text}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_calicos_api_server_refuses_it_too(
    v3_control_plane: ClusterInfo, uid: str, case: str
) -> None:
    body = json.dumps(_policy(f"{uid}-{case.lower()}", CASES[case]))
    with pytest.raises(ClusterError) as refused:
        kubectl(v3_control_plane, "create", "-f", "-", stdin=body)
    assert CASES[case].calicos in str(refused.value)
    listed = kubectl(
        v3_control_plane, "get", "globalnetworkpolicies.projectcalico.org", "-o", "name"
    )
    assert f"{uid}-{case.lower()}" not in listed  # nothing stored
