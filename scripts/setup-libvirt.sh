#!/usr/bin/env bash
# Sets a machine up to run real guests with the libvirt driver: QEMU 10 and
# the libvirt 11 daemons (from bookworm-backports), both daemons started when
# no init system runs them (as in containers and CI), and the tiny guest
# template (scripts/build-tiny-template.sh). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '\033[1m[setup-libvirt]\033[0m %s\n' "$*"; }
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v libvirtd >/dev/null || need+=(libvirt-daemon-system)
command -v virsh >/dev/null || need+=(libvirt-clients)
command -v qemu-img >/dev/null || need+=(qemu-utils)
command -v genisoimage >/dev/null || need+=(genisoimage)  # config drives
if [ ${#need[@]} -gt 0 ]; then
  bash scripts/backports.sh
  log "apt packages (bookworm-backports): ${need[*]} (about a minute)"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t bookworm-backports "${need[@]}" >/dev/null
fi

# No systemd here: start the daemons by hand (each forks to the background).
if ! pgrep -x virtlogd >/dev/null; then
  log "starting virtlogd"
  $SUDO virtlogd -d
fi
# (Asked through virsh: a session daemon is a libvirtd process too.)
if ! virsh -c qemu:///system version >/dev/null 2>&1; then
  log "starting libvirtd"
  $SUDO libvirtd -d
fi
for _ in $(seq 50); do
  virsh -c qemu:///system version >/dev/null 2>&1 && break
  sleep 0.1
done
virsh -c qemu:///system version >/dev/null || { echo "libvirtd does not answer on qemu:///system" >&2; exit 1; }

# The NAT network guests' NICs plug into (libvirt_network = "default").
# (Read whole first: grep -q closing the pipe early fails it under pipefail.)
net=$(virsh -c qemu:///system net-info default 2>/dev/null || true)
if ! grep -q '^Active: *yes' <<<"$net"; then
  log "starting libvirt's default network"
  virsh -c qemu:///system net-start default >/dev/null
fi

bash scripts/build-tiny-template.sh
log "done: libvirt $(virsh -c qemu:///system version | awk '/^Using library/ { print $4 }'), $(qemu-system-x86_64 --version | head -n 1)"
