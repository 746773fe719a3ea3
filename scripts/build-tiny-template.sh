#!/usr/bin/env bash
# Builds the tiny guest template the libvirt driver's tests and the
# real-VM walk-through boot: a Debian kernel and a busybox initramfs whose
# /init prints a banner with the hostname from the kernel command line
# (`vnext.hostname=`), answers the ACPI power button (clean shutdown and
# reboot from libvirt), and prints a heartbeat line every 10 s.
#
#   scripts/build-tiny-template.sh [OUT_DIR]   (default target/templates/tiny)
#
# Everything comes from Debian packages: the kernel package is downloaded
# and unpacked (not installed: no initramfs-tools run, nothing in /boot),
# busybox-static and cpio are installed if missing. Writes OUT_DIR/vmlinuz
# and OUT_DIR/initramfs.gz; does nothing when both exist and are newer than
# this script.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '\033[1m[template]\033[0m %s\n' "$*"; }
out=${1:-target/templates/tiny}
if [ -s "$out/vmlinuz" ] && [ -s "$out/initramfs.gz" ] && [ "$out/initramfs.gz" -nt "$0" ]; then
  exit 0
fi
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
need=()
# Static: the initramfs has no libraries.
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
command -v cpio >/dev/null || need+=(cpio)
if [ ${#need[@]} -gt 0 ]; then
  log "apt packages: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The kernel: the package linux-image-amd64 points at, unpacked.
kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
if [ -z "$kpkg" ]; then
  $SUDO apt-get update -qq
  kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
fi
[ -n "$kpkg" ] || { echo "no kernel package behind linux-image-amd64" >&2; exit 1; }
log "kernel $kpkg (downloaded and unpacked)"
# As root, apt hands downloads to its `_apt` user, which cannot write here.
(cd "$work" && apt-get download -qq -o APT::Sandbox::User=root "$kpkg" >/dev/null)
dpkg-deb -x "$work"/"$kpkg"_*.deb "$work/kernel"
kver=${kpkg#linux-image-}
mods="$work/kernel/lib/modules/$kver/kernel"

root="$work/root"
mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,var/log,lib/modules,etc/acpi/PWRF}
cp /bin/busybox "$root/bin/busybox"
# ACPI power button -> input event -> busybox acpid -> this script; virtio
# (PCI, net, block) for the NIC and the config drive, isofs to read it.
# Loaded in this order by /init (each after what it depends on).
MODULES="drivers/acpi/button drivers/input/evdev drivers/virtio/virtio_ring drivers/virtio/virtio
drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci
net/core/failover drivers/net/net_failover drivers/net/virtio_net drivers/block/virtio_blk
drivers/cdrom/cdrom fs/isofs/isofs"
for m in $MODULES; do
  m="$m.ko"
  f="$mods/$m"
  [ -f "$f" ] || f=$(ls "$f".* 2>/dev/null | head -n 1)
  case "$f" in
    *.xz) xz -dc "$f" > "$root/lib/modules/$(basename "${m}")" ;;
    *.zst) zstd -qdc "$f" > "$root/lib/modules/$(basename "${m}")" ;;
    *) cp "$f" "$root/lib/modules/" ;;
  esac
done
# acpid runs it detached: its output goes to the console explicitly.
cat > "$root/etc/acpi/PWRF/00000080" <<'SH'
#!/bin/sh
echo "vnext: power button pressed, shutting down" > /dev/console
sync
poweroff -f
SH
chmod +x "$root/etc/acpi/PWRF/00000080"
# udhcpc's hook: configure the lease and say it on the console.
mkdir -p "$root/etc/udhcpc"
cat > "$root/etc/udhcpc/script" <<'SH'
#!/bin/sh
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route add default via "${router%% *}" dev "$interface" 2>/dev/null
    echo "vnext tiny guest: $interface has $ip" > /dev/console ;;
esac
SH
chmod +x "$root/etc/udhcpc/script"
printf '%s\n' $MODULES | sed 's#.*/##' > "$root/etc/modules"
cat > "$root/init" <<'SH'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
host=$(sed -n 's/.*vnext\.hostname=\([^ ]*\).*/\1/p' /proc/cmdline)
[ -n "$host" ] || host=tiny
hostname "$host"
for m in $(cat /etc/modules); do insmod "/lib/modules/$m.ko" 2>/dev/null; done
acpid -c /etc/acpi -l /var/log/acpid.log
echo "vnext tiny guest: $host is up (kernel $(uname -r))"
# The config drive (a config-2 ISO on a virtio disk): show user_data.
sleep 1
for d in /dev/vd?; do
  mkdir -p /mnt/config
  mount -t iso9660 -o ro "$d" /mnt/config 2>/dev/null || continue
  if [ -f /mnt/config/openstack/latest/meta_data.json ]; then
    echo "vnext tiny guest: config drive on $d"
    [ -f /mnt/config/openstack/latest/user_data ] && echo "vnext tiny guest: user_data: $(head -c 200 /mnt/config/openstack/latest/user_data)"
  fi
  umount /mnt/config
done
# The swap disk (the type's swap_mb), found by its serial: virtio disks
# are named in probe order, not as the host's domain XML says.
for s in /sys/block/vd*/serial; do
  [ "$(cat "$s" 2>/dev/null)" = vnext-swap ] || continue
  d=/dev/$(basename "$(dirname "$s")")
  mkswap "$d" >/dev/null 2>&1 && swapon "$d" && echo "vnext tiny guest: swap $(awk '/SwapTotal/ { print $2 }' /proc/meminfo) kB on $d"
done
# Every NIC asks for an address (in the background: the banner comes first).
for n in /sys/class/net/eth*; do
  [ -e "$n" ] || continue
  i=$(basename "$n")
  ip link set "$i" up
  udhcpc -i "$i" -q -n -t 10 -T 2 -s /etc/udhcpc/script >/dev/null 2>&1 &
done
while true; do
  sleep 10
  echo "$host: up $(cut -d' ' -f1 /proc/uptime) s"
done
SH
chmod +x "$root/init"
mkdir -p "$out"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -9) > "$out/initramfs.gz.tmp"
cp "$work/kernel/boot/vmlinuz-$kver" "$out/vmlinuz.tmp"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
mv "$out/initramfs.gz.tmp" "$out/initramfs.gz"
log "wrote $out/vmlinuz and $out/initramfs.gz ($(du -h "$out/initramfs.gz" | cut -f1))"
