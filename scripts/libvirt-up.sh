#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# libvirt-up.sh: make `virsh -c qemu:///system` work on this machine (as root),
# idempotently: the user and groups libvirt expects, its directories, a
# qemu.conf, then virtlogd and libvirtd when they are not running. Prints
# what it did; quick and silent-ish when everything is already up.
# Usage: scripts/libvirt-up.sh
#
# Why by hand: Debian's libvirt-daemon-system (which would do this and ship
# systemd units) fails to install here, and these machines have no systemd.
#
# The QEMU processes run as root with dynamic_ownership = 0 (libvirt does not
# chown images, overlays, kernels, logs or save files) and no security driver.
# Chosen because vigo boots VMs from images on its FUSE proxy: a FUSE mount
# made without allow_other is readable by root only, and chowning files there
# is meaningless. The price is no privilege separation between QEMU and the
# host: acceptable for these single-purpose grid hosts (and for TCG guests of
# our own), to be revisited with allow_other and a dedicated user if vigo ever
# runs VMs of untrusted images on shared hosts. An existing qemu.conf that is
# not ours is left alone (with a warning if it differs).
set -euo pipefail

say() { echo "libvirt-up: $*"; }
die() { echo "libvirt-up: error: $*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root"
for tool in libvirtd virtlogd virsh; do
  command -v "$tool" >/dev/null ||
    die "missing $tool (scripts/setup.sh --no-build installs it)"
done

getent group kvm >/dev/null || { groupadd --system kvm; say "added group kvm"; }
getent group libvirt-qemu >/dev/null ||
  { groupadd --system libvirt-qemu; say "added group libvirt-qemu"; }
if ! id libvirt-qemu >/dev/null 2>&1; then
  useradd --system --no-create-home --home-dir /var/lib/libvirt \
    --shell /usr/sbin/nologin -g libvirt-qemu -G kvm libvirt-qemu
  say "added user libvirt-qemu"
fi
mkdir -p /etc/libvirt /var/log/libvirt/qemu /run/libvirt \
  /var/lib/libvirt/qemu /var/cache/libvirt/qemu

conf=/etc/libvirt/qemu.conf
marker="# Written by vigo's scripts/libvirt-up.sh"
wanted=('user = "root"' 'group = "root"' 'dynamic_ownership = 0'
  'security_driver = "none"')
conf_changed=0
if [[ ! -e "$conf" ]]; then
  {
    echo "$marker: QEMU runs as root and libvirt"
    echo "# leaves file ownership alone (see that script for why)."
    printf '%s\n' "${wanted[@]}"
  } >"$conf.tmp"
  mv "$conf.tmp" "$conf"
  conf_changed=1
  say "wrote $conf"
elif ! grep -qF "$marker" "$conf"; then
  for line in "${wanted[@]}"; do
    grep -qxF "$line" "$conf" ||
      say "warning: $conf is not ours and lacks '$line'; left as it is"
  done
fi

# Prints the pid of the running daemon $1 (from its pid file), if any.
running() {
  local pid
  pid=$(cat "/run/$1.pid" 2>/dev/null || true)
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
  return 0
}

if [[ -z "$(running virtlogd)" ]]; then
  virtlogd -d
  say "started virtlogd"
fi
if [[ -z "$(running libvirtd)" ]]; then
  libvirtd -d
  say "started libvirtd"
elif ((conf_changed)); then
  say "warning: libvirtd (pid $(running libvirtd)) was already running;" \
    "it reads $conf only when it starts"
fi

for _ in $(seq 1 100); do
  virsh -q -c qemu:///system version >/dev/null 2>&1 && exit 0
  sleep 0.1
done
die "libvirtd does not answer on qemu:///system"
