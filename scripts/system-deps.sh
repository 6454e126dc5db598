#!/usr/bin/env bash
# System tools the tests need besides Python and Go: git (with http-backend), gpg
# and ssh/sshd for the Git source's auth and signature tests, openssl for the
# local control plane's service-account key. Installed from Debian's packages when
# missing (as root, or with sudo); otherwise says what to install.
set -euo pipefail

missing=()
command -v git >/dev/null || missing+=(git)
command -v gpg >/dev/null || missing+=(gnupg)
command -v ssh >/dev/null || missing+=(openssh-client)
command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v openssl >/dev/null || missing+=(openssl)
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
