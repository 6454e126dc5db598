#!/usr/bin/env bash
# `make image`: build exactly ./Dockerfile with podman, tagged localhost/policy-reconciler:VERSION.
#
# The base is the Dockerfile's own (a python slim image) when a registry answers. When none
# does (this project's machines), the script makes a Debian bookworm base itself with
# debootstrap and imports it with podman, then passes it as the PYTHON_IMAGE build arg; the
# Dockerfile is not changed. The base is cached by suite, package list and host CAs (a tar
# under ~/.cache/policy-reconciler/image and podman's own storage), and podman caches the
# Dockerfile's layers, so a warm run takes seconds.
#
# Env: IMAGE (default localhost/policy-reconciler:VERSION), BASE_IMAGE (skip detection and use
# this base), DEBIAN_MIRROR (default: the host's first apt Debian mirror, else deb.debian.org).
# The last line printed on stdout is the image reference.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${POLICY_RECONCILER_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/policy-reconciler}/image"
mkdir -p "$CACHE"
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -1)
IMAGE="${IMAGE:-localhost/policy-reconciler:$VERSION}"
log() { echo "build-image: $*" >&2; }

# podman's defaults fail on hosts without CAP_SYS_RESOURCE (nofile/nproc above the hard
# limit) and crun refuses cgroup v1 hybrid hosts; runc and the host's own limits work everywhere.
conf="$CACHE/containers.conf"
nofile=$(ulimit -Hn); [ "$nofile" = unlimited ] && nofile=1048576
nproc=$(ulimit -Hu); [ "$nproc" = unlimited ] && nproc=1048576
[ "$nproc" -gt 20000 ] && nproc=20000  # a higher RLIMIT_NPROC was refused even below the hard limit
cat > "$conf.tmp" <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
CONF
mv "$conf.tmp" "$conf"
export CONTAINERS_CONF="$conf"

upstream=$(sed -n 's/^ARG PYTHON_IMAGE=\(.*\)$/\1/p' Dockerfile)
SUITE=bookworm  # the suite of the Dockerfile's own base
INCLUDE=python3,python3-venv,python3-pip,python-is-python3,ca-certificates

debootstrap_base() {
  local cas key tag tar mirror root
  cas=$(cat /usr/local/share/ca-certificates/*.crt 2>/dev/null | sha256sum | cut -c1-12)
  key=$(printf '%s %s %s' "$SUITE" "$INCLUDE" "$cas" | sha256sum | cut -c1-12)
  tag="localhost/policy-reconciler-base:python3-$SUITE-$key"
  tar="$CACHE/base-$SUITE-$key.tar"
  if podman image exists "$tag"; then echo "$tag"; return; fi
  if [ ! -s "$tar" ]; then
    mirror="${DEBIAN_MIRROR:-$(grep -rhoE '^(deb |URIs: )https?://[^ ]+/debian/?$' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null | head -1 | sed -E 's/^(deb |URIs: )//')}"
    mirror="${mirror:-http://deb.debian.org/debian}"
    log "no registry reachable: making the base with debootstrap ($SUITE from $mirror, ~2 min once)"
    root=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    trap 'rm -rf "$root"' EXIT
    debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$root" "$mirror" >"$CACHE/debootstrap.log" 2>&1 \
      || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
    # Like the python image: pip may install (no PEP 668 marker), and a TLS-intercepting
    # proxy's CA (if the host trusts one) is trusted inside too, for pip and uv.
    rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
    if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
      cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
      chroot "$root" update-ca-certificates >/dev/null
    fi
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar --numeric-owner -C "$root" -cf "$tar.tmp" . && mv "$tar.tmp" "$tar"
    rm -rf "$root"; trap - EXIT
  fi
  podman import -q \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["python3"]' "$tar" "$tag" >/dev/null
  echo "$tag"
}

if [ -z "${BASE_IMAGE:-}" ]; then
  if podman image exists "$upstream" || timeout 60 podman pull -q "$upstream" >/dev/null 2>&1; then
    BASE_IMAGE="$upstream"
  else
    BASE_IMAGE=$(debootstrap_base)
  fi
fi

revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
# The commit's time, not now: the same commit builds the same labels, so a rebuild is all cache.
created=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ 2>/dev/null || echo unknown)
source=$(git remote get-url origin 2>/dev/null || true)
log "podman build $IMAGE (base $BASE_IMAGE)"
# The same values again as --label: buildah 1.28 (Debian 12's podman) reuses a cached LABEL
# layer when only the build args it expands changed, so a new commit kept the old revision.
oci=org.opencontainers.image
podman build --pull=never --network=host \
  --build-arg PYTHON_IMAGE="$BASE_IMAGE" --build-arg VERSION="$VERSION" \
  --build-arg REVISION="$revision" --build-arg CREATED="$created" --build-arg SOURCE="$source" \
  --label "$oci.version=$VERSION" --label "$oci.revision=$revision" \
  --label "$oci.created=$created" --label "$oci.source=$source" \
  --label "$oci.base.name=$BASE_IMAGE" \
  -t "$IMAGE" -f Dockerfile . >"$CACHE/build.log" 2>&1 \
  || { tail -30 "$CACHE/build.log" >&2; log "podman build failed: see $CACHE/build.log"; exit 1; }
# Earlier builds of the image that this tag has replaced (600 MB each). Builder-stage images
# are kept: they are the layer cache of the next build.
podman images -q -f dangling=true -f label=org.opencontainers.image.title=policy-reconciler \
  | xargs -r podman rmi -f >/dev/null 2>&1 || true
echo "$IMAGE"
