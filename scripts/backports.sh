#!/usr/bin/env bash
# Adds Debian's bookworm-backports to apt's sources (once) and refreshes the
# package lists. libvirt 11 and QEMU 10 come from there (scripts/setup.sh,
# scripts/setup-libvirt.sh).
set -euo pipefail
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
list=/etc/apt/sources.list.d/bookworm-backports.sources
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  printf '\033[1m[setup]\033[0m adding bookworm-backports to %s\n' "$list"
  $SUDO tee "$list" >/dev/null <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
$SUDO apt-get update -qq
