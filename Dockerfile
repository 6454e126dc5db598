# syntax=docker/dockerfile:1
#
# policy-reconciler controller image: `policy-reconciler run` (see charts/policy-reconciler).
#
# CI builds exactly this file with podman (`make image`, scripts/build-image.sh) and runs it as
# the Helm chart's pod on a real node (`make e2e`, tests/e2e). To build it with Docker:
#
#   docker build -t policy-reconciler:0.1.0 --build-arg VERSION=0.1.0 \
#     --build-arg REVISION="$(git rev-parse HEAD)" --build-arg CREATED="$(date -u +%FT%TZ)" \
#     --build-arg SOURCE="$(git remote get-url origin)" .
#
# The image runs as a numeric non-root user and works with a read-only root filesystem: the only
# writable paths are /var/cache/policy-reconciler (the git checkout) and /tmp (HOME and TMPDIR),
# both declared as volumes (the Helm chart mounts emptyDirs there).

# Fully qualified, so the base.name label below names exactly what the image is built from
# (`make image` passes its own base here when no registry is reachable).
ARG PYTHON_IMAGE=docker.io/library/python:3.11.14-slim-bookworm

# ---- builder: install this project and exactly the dependencies uv.lock pins (nothing from the
# ---- dev groups) into a self-contained venv, with uv at the version the Makefile pins.
FROM ${PYTHON_IMAGE} AS builder

ARG UV_VERSION=0.13.9
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1

WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
COPY reconciler ./reconciler

# --locked fails the build if uv.lock is out of date with pyproject.toml; --no-editable puts
# the project itself into the venv, so the runtime stage needs no /src. uv compiles the .pyc
# files here, so nothing needs to be written at run time.
RUN python -m pip install "uv==${UV_VERSION}" \
    && uv sync --locked --no-dev --no-editable --python "$(command -v python)" \
    && /opt/venv/bin/policy-reconciler --version

# ---- runtime: the same slim Python base (no compilers), git + ssh + gnupg, the venv.
FROM ${PYTHON_IMAGE}

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

# Declared after the apt layer: values that change on every build must not bust its cache.
# PYTHON_IMAGE is declared again: a global ARG is not visible inside a stage otherwise.
ARG PYTHON_IMAGE
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
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"

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
