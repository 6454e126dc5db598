#!/usr/bin/env bash
# System tools for the real node and the image build (`make image`, `make e2e`,
# `local-cluster up --node`), on top of scripts/system-deps.sh: podman builds the image
# (from a debootstrap-made base when no registry is reachable), containerd + runc run the
# node's pods, containernetworking-plugins gives the CNI bridge, gcc builds the static
# pause binary from Kubernetes' own pause.c. Installed from Debian's packages when
# missing (as root, or with sudo); otherwise says what to install.
set -euo pipefail

missing=()
have() { command -v "$1" >/dev/null || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }
have podman || missing+=(podman)
have containerd || missing+=(containerd)
have runc || missing+=(runc)
have debootstrap || missing+=(debootstrap)
have gcc || missing+=(gcc)
# The pause binary is linked static: it needs libc.a, which gcc alone does not bring.
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || [ -e /usr/lib/aarch64-linux-gnu/libc.a ] || missing+=(libc6-dev)
have nsenter || missing+=(util-linux)
[ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "Installing system packages: ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if command -v apt-get >/dev/null; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "Please install: ${missing[*]}" >&2
  exit 1
fi
