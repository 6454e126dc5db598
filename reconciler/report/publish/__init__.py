"""PR comment publishers: one sticky comment per pull request and target, on three forges.

    secret = load_token(env="GITHUB_TOKEN")
    forge = connect(FORGES["github"], api_url="", repo="acme/policies", number=7, secret=secret)
    publish(forge, body=body, marker=marker_for("prod"))  # -> Published(created|updated|unchanged)

Each forge is one small class behind the `Publisher` protocol; `transport` speaks
JSON over HTTPS with the standard library and maps HTTP errors to typed ones.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.report.publish import gitea, github, gitlab
from reconciler.report.publish.base import (
    AuthFailed,
    Comment,
    ConnectionLost,
    Forbidden,
    NotFound,
    Outcome,
    Published,
    Publisher,
    PublishError,
    RateLimited,
    Rejected,
    Secret,
    TokenMissing,
    Unreachable,
    load_token,
    marker_for,
    publish,
)


@dataclass(frozen=True, slots=True)
class Forge:
    """What a forge needs from the command line, and where its defaults come from."""

    name: str  # "github"
    title: str  # "GitHub"
    token_env: str
    limit: int
    api_url_env: str = ""  # set by the forge's own CI
    api_url: str = ""  # "" -> --api-url is required
    by_project: bool = False  # GitLab: --project; the others: --repo owner/name


FORGES: Mapping[str, Forge] = {
    "github": Forge(
        "github", "GitHub", "GITHUB_TOKEN", github.LIMIT, "GITHUB_API_URL", github.API_URL
    ),
    "gitlab": Forge(
        "gitlab",
        "GitLab",
        "GITLAB_TOKEN",
        gitlab.LIMIT,
        "CI_API_V4_URL",
        gitlab.API_URL,
        by_project=True,
    ),
    # No default host: a self-hosted token must never go to someone else's server.
    "gitea": Forge("gitea", "Gitea", "GITEA_TOKEN", gitea.LIMIT),
}


def api_url_of(forge: Forge, given: str) -> str:
    """--api-url, else the forge CI's variable, else the public default."""
    from_ci = os.environ.get(forge.api_url_env, "") if forge.api_url_env else ""
    url = given or from_ci or forge.api_url
    if not url:
        raise Rejected(f"--api-url is required for {forge.title} (e.g. https://git.example/api/v1)")
    return url.rstrip("/")


def connect(
    forge: Forge, *, api_url: str, repo: str, number: int, secret: Secret, **options: Any
) -> Publisher:
    """The publisher for one pull request; `repo` is owner/name, or the project for GitLab."""
    url = api_url_of(forge, api_url)
    if forge.name == "github":
        return github.GitHub.connect(
            api_url=url, repo=repo, number=number, secret=secret, **options
        )
    if forge.name == "gitlab":
        return gitlab.GitLab.connect(
            api_url=url, project=repo, number=number, secret=secret, **options
        )
    return gitea.Gitea.connect(api_url=url, repo=repo, number=number, secret=secret, **options)


__all__ = [
    "FORGES",
    "AuthFailed",
    "Comment",
    "ConnectionLost",
    "Forbidden",
    "Forge",
    "NotFound",
    "Outcome",
    "PublishError",
    "Published",
    "Publisher",
    "RateLimited",
    "Rejected",
    "Secret",
    "TokenMissing",
    "Unreachable",
    "api_url_of",
    "connect",
    "load_token",
    "marker_for",
    "publish",
]
