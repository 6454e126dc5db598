"""extraVolumes, extraVolumeMounts and extraEnv: a private git CA can be mounted and used."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.chart.helm import HelmError, template

CA_VALUES: dict[str, list[dict[str, Any]]] = {
    "extraVolumes": [{"name": "git-ca", "configMap": {"name": "git-ca"}}],
    "extraVolumeMounts": [{"name": "git-ca", "mountPath": "/etc/git-ca", "readOnly": True}],
    "extraEnv": [{"name": "GIT_SSL_CAINFO", "value": "/etc/git-ca/ca.crt"}],
}


def _values(tmp_path: Path, values: object) -> Path:
    path = tmp_path / "extra.yaml"
    path.write_text(json.dumps(values))
    return path


def test_a_private_git_ca_is_mounted_and_named_to_git(helm: str, tmp_path: Path) -> None:
    rendered = template(helm, "default-values.yaml", _values(tmp_path, CA_VALUES))
    pod = rendered.one("Deployment")["spec"]["template"]["spec"]
    container = rendered.container()
    assert CA_VALUES["extraVolumes"][0] in pod["volumes"]
    assert CA_VALUES["extraVolumeMounts"][0] in container["volumeMounts"]
    assert CA_VALUES["extraEnv"][0] in container["env"]
    # The chart's own volumes and mounts stay, first.
    assert [v["name"] for v in pod["volumes"]][:2] == ["cache", "tmp"]
    assert [m["name"] for m in container["volumeMounts"]][:2] == ["cache", "tmp"]


def test_no_extras_by_default(helm: str) -> None:
    rendered = template(helm, "default-values.yaml")
    pod = rendered.one("Deployment")["spec"]["template"]["spec"]
    assert [v["name"] for v in pod["volumes"]] == ["cache", "tmp"]
    assert [e["name"] for e in rendered.container()["env"]] == ["POD_NAME", "HOME", "TMPDIR"]


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"extraVolumes": [{"configMap": {"name": "x"}}]}, "/extraVolumes/0"),
        ({"extraVolumeMounts": [{"name": "x"}]}, "/extraVolumeMounts/0"),
        ({"extraVolumeMounts": {"name": "x", "mountPath": "/x"}}, "/extraVolumeMounts"),
    ],
)
def test_schema_rejects_malformed_extras(
    helm: str, tmp_path: Path, values: object, complaint: str
) -> None:
    with pytest.raises(HelmError, match="schema") as err:
        template(helm, "default-values.yaml", _values(tmp_path, values))
    assert complaint in str(err.value)
