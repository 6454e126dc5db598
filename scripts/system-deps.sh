#!/usr/bin/env bash
# System tools the tests need besides Python and Go: git (with http-backend), gpg
# and ssh/sshd for the Git source's auth and signature tests, openssl for the
# local control plane's keys and certificates, and for the real Calico dataplane
# (Felix in network namespaces): iproute2, iptables, nftables, ipset, conntrack and
# socat; chromium (headless) for the PR comment's screenshot test. Installed from Debian's packages when missing (as root, or with sudo);
# otherwise says what to install.
set -euo pipefail

missing=()
command -v git >/dev/null || missing+=(git)
command -v gpg >/dev/null || missing+=(gnupg)
command -v ssh >/dev/null || missing+=(openssh-client)
command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v openssl >/dev/null || missing+=(openssl)
have() { command -v "$1" >/dev/null || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }
have ip || missing+=(iproute2)
have iptables || missing+=(iptables)
have nft || missing+=(nftables)
have ipset || missing+=(ipset)
have conntrack || missing+=(conntrack)
have socat || missing+=(socat)
have chromium || missing+=(chromium)
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
