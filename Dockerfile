# syntax=docker/dockerfile:1
#
# policy-reconciler controller image: `policy-reconciler run` (see charts/policy-reconciler).
#
# NOTE: there is no Docker engine on the project's development and CI machines, so this image is
# never built by `make test` or CI. CI only lints this file with hadolint (`make lint`) and
# tests/chart/test_dockerfile.py checks that what it copies and runs exists. Build it elsewhere:
#
#   docker build -t policy-reconciler:0.1.0 --build-arg VERSION=0.1.0 \
#     --build-arg REVISION="$(git rev-parse HEAD)" --build-arg CREATED="$(date -u +%FT%TZ)" \
#     --build-arg SOURCE="$(git remote get-url origin)" .
#
# The image runs as a numeric non-root user and works with a read-only root filesystem: the only
# writable paths are /var/cache/policy-reconciler (the git checkout) and /tmp (HOME and TMPDIR),
# both declared as volumes (the Helm chart mounts emptyDirs there).

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# ---- builder: build a wheel of this project and install it, with exactly the dependencies
# ---- pyproject.toml declares, into a self-contained venv.
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY reconciler ./reconciler

# The wheel is built in an isolated environment from [build-system] requires; installing it
# resolves [project] dependencies (and nothing from the dev extra). pip compiles the .pyc files
# here, so nothing needs to be written at run time.
RUN python -m venv /opt/venv \
    && python -m pip wheel --no-deps --wheel-dir /dist . \
    && /opt/venv/bin/pip install /dist/policy_reconciler-*.whl \
    && /opt/venv/bin/pip uninstall --yes pip \
    && /opt/venv/bin/policy-reconciler --version

# ---- runtime: the same slim Python base (no compilers), git + ssh + gnupg, the venv.
FROM ${PYTHON_IMAGE}

ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
# The repository URL this image is built from (empty when unknown).
ARG SOURCE=""

LABEL org.opencontainers.image.title="policy-reconciler" \
      org.opencontainers.image.description="GitOps reconciler for Kubernetes firewall policy (Calico and Kubernetes NetworkPolicy)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.base.name="docker.io/library/${PYTHON_IMAGE}"

# git fetches the policy repo (HTTPS or SSH), gnupg and ssh-keygen verify commit signatures.
# Debian package versions are not pinned: the bookworm archive drops superseded versions on
# every security update, so pins would break the build; the base image tag pins the release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates git gnupg openssh-client \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 reconciler \
    && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
        --shell /usr/sbin/nologin reconciler \
    && mkdir -p /var/cache/policy-reconciler \
    && chown 10001:10001 /var/cache/policy-reconciler

COPY --from=builder /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    TMPDIR=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GIT_TERMINAL_PROMPT=0

# Writable even with --read-only: the git checkout cache, and HOME/TMPDIR.
VOLUME ["/var/cache/policy-reconciler", "/tmp"]
WORKDIR /var/cache/policy-reconciler

USER 10001:10001
# 9090: /metrics, /healthz, /readyz ; 9292: the push webhook.
EXPOSE 9090 9292

ENTRYPOINT ["policy-reconciler", "run"]
CMD ["--help"]
