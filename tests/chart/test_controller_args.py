"""The controller's own command line accepts every argument list the chart renders.

The Deployment's args are parsed by the real `policy-reconciler run` (click), with the
mounted Secret files and the cache dir mapped into a temporary directory: a renamed flag, a
changed choice or a value the controller cannot read fails here, not in a crash-looping pod.
"""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from reconciler.cli import command
from tests.chart.helm import CI_VALUES, local_args, template

VALUES_FILES = sorted(p.name for p in CI_VALUES.glob("*.yaml"))


def _parse(args: list[str], tmp_path: Path) -> dict[str, object]:
    """Parse `run <args>` as the container would, files mapped into tmp_path."""
    run = command("run")
    with run.make_context("run", local_args(args, tmp_path)) as ctx:
        return dict(ctx.params)


@pytest.mark.parametrize("values", VALUES_FILES)
def test_run_parses_the_rendered_args(helm: str, values: str, tmp_path: Path) -> None:
    rendered = template(helm, values, namespace="firewall")
    params = _parse(rendered.args(), tmp_path)
    assert params["repo"] == rendered.args()[1]
    assert params["ns"] == "firewall"
    assert params["metrics_port"] == 9090
    assert params["leader_elect"] is ("--leader-elect" in rendered.args())


def test_full_values_reach_the_controller_options(helm: str, tmp_path: Path) -> None:
    params = _parse(template(helm, "full-values.yaml").args(), tmp_path)
    assert params["tag"] == "v1.4.0"
    assert params["repo_path"] == "clusters/prod"
    assert params["interval"] == 300.0
    assert params["webhook_port"] == 9292
    assert params["verify_signatures"] == "ssh"
    assert str(params["signing_keys"]).endswith("signing-keys/allowed_signers")
    assert str(params["git_known_hosts_file"]).endswith("git-ssh/known_hosts")
    assert params["git_username"] == "oauth2"
    assert (params["prune"], params["self_heal"], params["adopt"]) == (False, False, True)
    assert (params["log_level"], params["log_format"]) == ("debug", "text")
    assert params["skip_checks"] == ("admins-ssh", "nodes-reach-each-other")


def test_a_flag_the_controller_lacks_is_caught(helm: str, tmp_path: Path) -> None:
    """Control: the parser really rejects what it does not know."""
    args = [*template(helm, "default-values.yaml").args(), "--no-such-flag"]
    with pytest.raises(click.NoSuchOption):
        _parse(args, tmp_path)
