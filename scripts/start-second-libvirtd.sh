#!/usr/bin/env bash
# Starts a second, independent libvirt daemon on this machine, so that a
# live migration between two daemons can be tested on one host.
#
#   scripts/start-second-libvirtd.sh           start it (or find it running);
#                                              the last line of stdout is its URI
#   scripts/start-second-libvirtd.sh --stop    destroy its running guests, stop it
#
# It is a second *system-mode* libvirtd (root, QEMU as libvirt-qemu, DAC
# relabelling: the same rules as qemu:///system) in a private mount
# namespace, where its own directories under $VNEXT_NODE2_DIR (default
# /var/lib/vnext-node2) are bind-mounted over /etc/libvirt, /run/libvirt,
# /var/lib/libvirt, /var/cache/libvirt and /var/log/libvirt. A session
# daemon of an unprivileged user was tried first and is worse: the system
# daemon gives disks back to root when a guest migrates away (so the
# unprivileged QEMU cannot reopen them, e.g. to restart the guest), its
# virtlogd cannot append to the root-owned console log, and it cannot
# reach qemu:///system back (polkit, which needs D-Bus).
#
# Everything else (the network namespace, /tmp, server disks, the
# template) is shared with the system daemon, so a domain keeps its file
# paths across a migration; the disks are on "shared storage" (the same
# files). Its network `default` bridges onto the system's virbr0, so NICs
# on the system's `default` network migrate too (same L2, same DHCP lease).
#
# Migrating between it and qemu:///system: the disks are the same local
# files, which libvirt calls unsafe unless told (VIR_MIGRATE_UNSAFE,
# `virsh migrate --unsafe`); never copy storage (--copy-storage-all would
# copy a disk onto itself). Peer to peer works towards this daemon only:
# inside any libvirtd, a destination URI without a transport
# (qemu:///system) is that daemon itself ("Attempt to migrate guest to the
# same host"); a migration driven by the client (a connection to each
# daemon, no --p2p) works both ways.
set -euo pipefail
base=${VNEXT_NODE2_DIR:-/var/lib/vnext-node2}
# Namespaces and the daemon itself need root (sudo drops the environment).
[ "$(id -u)" = 0 ] || exec sudo -- env VNEXT_NODE2_DIR="$base" "$(readlink -f "$0")" "$@"
cd "$(dirname "$0")/.."
log() { printf '\033[1m[second-libvirtd]\033[0m %s\n' "$*" >&2; }
uri="qemu+unix:///system?socket=$base/run/libvirt-sock"

# The pid in a pidfile of ours, if that process still lives as `name` in
# another mount namespace: never one of the system's daemons, never a
# reused pid, never a zombie.
ours() {
  local file=$1 name=$2 pid
  pid=$(cat "$file" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] || return 1
  [ "$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)" != Z ] || return 1
  [ "$(readlink "/proc/$pid/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ] || return 1
  echo "$pid"
}

stop_pid() {
  local pid=$1
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do
    [ -d "/proc/$pid" ] && [ "$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)" != Z ] || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

answers() { timeout 10 virsh -c "$uri" version >/dev/null 2>&1; }

stop() {
  # QEMU outlives libvirtd: left running, a guest would keep the
  # namespace (and its disk) busy with nothing managing it.
  if answers; then
    for dom in $(virsh -c "$uri" list --name); do
      log "destroying $dom"
      virsh -c "$uri" destroy "$dom" >/dev/null || true
    done
  fi
  local pid
  if pid=$(ours "$base/run/libvirtd.pid" libvirtd); then
    log "stopping libvirtd ($pid)"
    stop_pid "$pid"
  fi
  if pid=$(ours "$base/run/virtlogd.pid" virtlogd); then
    log "stopping virtlogd ($pid)"
    stop_pid "$pid"
  fi
}

if [ "${1:-}" = --stop ]; then
  stop
  exit 0
fi
[ $# = 0 ] || { echo "usage: $0 [--stop]" >&2; exit 2; }

if answers; then
  log "already running"
  echo "$uri"
  exit 0
fi
# A daemon that does not answer (hung, or half of a pair) is restarted.
stop

mkdir -p "$base"/{etc,run,lib,cache,log}
chmod 0700 "$base/etc" "$base/run"
# libvirt refuses to migrate to a daemon with the host UUID of the source
# ("Attempt to migrate guest to the same host"); kept across restarts so
# the daemon stays the same host.
if [ ! -s "$base/etc/libvirtd.conf" ]; then
  cat >"$base/etc/libvirtd.conf" <<EOF
host_uuid = "$(cat /proc/sys/kernel/random/uuid)"
# Root only: this daemon runs guests as root's qemu:///system does.
unix_sock_rw_perms = "0700"
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
EOF
fi
cat >"$base/etc/qemu.conf" <<'EOF'
# Both daemons would otherwise create machine/qemu-<id>-<name> cgroups,
# and the ids of a guest on both sides of a migration can be the same.
cgroup_controllers = [ ]
# Ranges apart from the system daemon's (49152-49215, 5900-...), so the
# two never race for a port while a guest is on both during a migration.
migration_port_min = 49216
migration_port_max = 49279
remote_display_port_min = 6900
remote_display_port_max = 6999
EOF
cat >"$base/etc/virtlogd.conf" <<'EOF'
log_outputs = "3:file:/var/log/libvirt/virtlogd.log"
EOF

command -v unshare >/dev/null || { echo "unshare (util-linux) is missing" >&2; exit 1; }
log "starting libvirtd in a private mount namespace ($base)"
# Daemons fork to the background and keep the namespace alive; unshare
# returns once both have. The socket ends up at $base/run/libvirt-sock,
# the same path inside and outside the namespace (a bind mount shows the
# directory at both places), so the URI works for both daemons' p2p.
unshare --mount --propagation private -- /bin/sh -euc '
  b=$1
  mount --bind "$b/etc" /etc/libvirt
  mount --bind "$b/run" /run/libvirt
  mount --bind "$b/lib" /var/lib/libvirt
  mount --bind "$b/cache" /var/cache/libvirt
  mount --bind "$b/log" /var/log/libvirt
  # The system daemons use /run/libvirtd.pid and /run/virtlogd.pid,
  # outside the bind mounts.
  virtlogd -d -p /run/libvirt/virtlogd.pid
  libvirtd -d -p /run/libvirt/libvirtd.pid
' sh "$base"

for _ in $(seq 100); do
  answers && break
  sleep 0.2
done
answers || { echo "the second libvirtd does not answer on $uri (see $base/log/libvirtd.log)" >&2; exit 1; }

# Its network `default`: the system's bridge, not a NAT of its own (a
# second virbr0 and dnsmasq would clash in the one network namespace).
if ip link show virbr0 >/dev/null 2>&1; then
  if ! virsh -c "$uri" net-info default >/dev/null 2>&1; then
    net=$(mktemp)
    printf "<network>\n  <name>default</name>\n  <forward mode='bridge'/>\n  <bridge name='virbr0'/>\n</network>\n" >"$net"
    virsh -c "$uri" net-define "$net" >/dev/null
    rm -f "$net"
    virsh -c "$uri" net-autostart default >/dev/null
  fi
  info=$(virsh -c "$uri" net-info default)
  if ! grep -q '^Active: *yes' <<<"$info"; then
    virsh -c "$uri" net-start default >/dev/null
  fi
else
  log "no virbr0 (the system's network default is not started): network default left out"
fi

log "host UUID $(virsh -c "$uri" capabilities | awk -F'[<>]' '/<uuid>/ { print $3; exit }')"
echo "$uri"
