#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# smoke.sh: boot the guest that guest/build.sh made in OUT_DIR and wait for
# its "VIGO-READY" line on the serial console, twice: with qemu-system-x86_64
# directly, then as a transient libvirt domain (after scripts/libvirt-up.sh),
# which it also saves and restores. Each boot uses its own qcow2 overlay over
# root.ext4, which stays untouched. If the guest has a workload, the qemu boot
# also waits (same timeout) for its "VIGO-WORKLOAD-DONE rc=N" and shows its
# output. Prints the times; exits non-zero if a boot or the workload fails or
# times out. Everything it starts is stopped and removed on exit.
#
#   guest/smoke.sh OUT_DIR [--qemu-only] [--timeout SECONDS]
#
# TCG only (KVM does not run guests on these machines). Both VMs are
# headless (no VGA). The qemu boot gets a virtio NIC on user-mode networking
# with restrict=on (no traffic leaves the VM) and without the iPXE option ROM
# (direct kernel boot needs none; loading it costs ~0.3 s); the libvirt
# domain gets no NIC.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly here
say() { echo "smoke: $*"; }
die() { echo "smoke: error: $*" >&2; exit 1; }

out=""
qemu_only=0
timeout=60
while (($# > 0)); do
  case "$1" in
    --qemu-only) qemu_only=1; shift ;;
    --timeout) timeout=${2:?--timeout needs seconds}; shift 2 ;;
    -h|--help) grep -m1 '^#   guest/smoke.sh' "${BASH_SOURCE[0]}" | sed 's/^# *//'; exit 0 ;;
    -*) die "unknown option: $1" ;;
    *) out=$1; shift ;;
  esac
done
[[ -n "$out" ]] || die "usage: $0 OUT_DIR [--qemu-only] [--timeout SECONDS]"
out=$(realpath "$out")
for f in vmlinuz initrd.img root.ext4 cmdline; do
  [[ -f "$out/$f" ]] || die "no $out/$f (run guest/build.sh $out first)"
done
cmdline=$(cat "$out/cmdline")

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vigo-smoke.XXXXXX")
qemu_pid=""
domain="vigo-smoke-$$"
virsh=(virsh -q -c qemu:///system)
cleanup() {
  if [[ -n "$qemu_pid" ]]; then
    kill "$qemu_pid" 2>/dev/null || true
    wait "$qemu_pid" 2>/dev/null || true
  fi
  if ((qemu_only == 0)) && "${virsh[@]}" domid "$domain" >/dev/null 2>&1; then
    "${virsh[@]}" destroy "$domain" >/dev/null 2>&1 || true
  fi
  ((qemu_only)) || rm -f "/var/log/libvirt/qemu/$domain.log"
  rm -rf "$tmp"
}
trap cleanup EXIT

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# Waits until file $1 has a line with "VIGO-READY" (prints it from there; the
# firmware's escape sequences may come first) or "VIGO-FAILED", or $timeout
# seconds pass since $2 (ms).
wait_ready() {
  local log=$1 start=$2 line
  while (($(now_ms) - start < timeout * 1000)); do
    line=$(grep -a -o -m1 -E 'VIGO-(READY|FAILED).*' "$log" 2>/dev/null |
      tr -d '\r' || true)
    case "$line" in
      VIGO-READY*) echo "$line"; return 0 ;;
      VIGO-FAILED*) echo "smoke: guest says: $line" >&2; return 1 ;;
    esac
    sleep 0.05
  done
  echo "smoke: no VIGO-READY within ${timeout}s; console:" >&2
  tr -d '\r' <"$log" | tail -n 20 >&2
  return 1
}

# The guest's own count of root disk bytes read while booting, from console $1.
guest_read() {
  tr -d '\r' <"$1" | sed -n 's/.*vigo: read \([0-9]*\) bytes.*/\1/p' | head -n1
}

overlay() {
  qemu-img create -q -f qcow2 -b "$out/root.ext4" -F raw "$1"
}

# --- 1. qemu-system-x86_64 directly

overlay "$tmp/qemu.qcow2"
start=$(now_ms)
qemu-system-x86_64 -accel tcg -m 512 -nographic -no-reboot \
  -kernel "$out/vmlinuz" -initrd "$out/initrd.img" -append "$cmdline" \
  -drive "file=$tmp/qemu.qcow2,format=qcow2,if=virtio" \
  -vga none -netdev user,id=net0,restrict=on \
  -device virtio-net-pci,netdev=net0,romfile= \
  </dev/null >"$tmp/qemu.log" 2>&1 &
qemu_pid=$!
ready=$(wait_ready "$tmp/qemu.log" "$start") || die "qemu boot failed"
elapsed=$(($(now_ms) - start))
say "qemu: $ready after ${elapsed} ms (wall, from qemu's start);" \
  "guest read $(guest_read "$tmp/qemu.log") bytes of its root disk"
if ! grep -q '^workload none$' "$out/manifest" 2>/dev/null; then
  done_line=""
  while [[ -z "$done_line" ]] && (($(now_ms) - start < timeout * 1000)); do
    done_line=$(grep -a -o -m1 'VIGO-WORKLOAD-DONE rc=[0-9]*' "$tmp/qemu.log" || true)
    [[ -n "$done_line" ]] || sleep 0.2
  done
  [[ -n "$done_line" ]] || die "the workload did not finish within ${timeout}s"
  tr -d '\r' <"$tmp/qemu.log" | sed -n '/VIGO-READY/,/VIGO-WORKLOAD-DONE/p' |
    sed '1d; s/^/smoke: qemu: guest: /'
  say "qemu: workload done after $(($(now_ms) - start)) ms"
  [[ "$done_line" == *"rc=0" ]] || die "the workload failed: $done_line"
fi
kill "$qemu_pid"
wait "$qemu_pid" 2>/dev/null || true
qemu_pid=""
say "qemu: overlay grew to $(du -k "$tmp/qemu.qcow2" | cut -f1) KiB"
rm -f "$tmp/qemu.qcow2"

((qemu_only == 0)) || exit 0

# --- 2. a transient libvirt domain; save and restore it

bash "$here/../scripts/libvirt-up.sh"
overlay "$tmp/libvirt.qcow2"
cat >"$tmp/domain.xml" <<EOF
<domain type='qemu'>
  <name>$domain</name>
  <memory unit='MiB'>512</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$out/vmlinuz</kernel>
    <initrd>$out/initrd.img</initrd>
    <cmdline>$cmdline</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$tmp/libvirt.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <serial type='file'>
      <source path='$tmp/libvirt.log'/>
      <target port='0'/>
    </serial>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>
EOF

start=$(now_ms)
"${virsh[@]}" create "$tmp/domain.xml" >/dev/null
created=$(($(now_ms) - start))
ready=$(wait_ready "$tmp/libvirt.log" "$start") || die "libvirt boot failed"
elapsed=$(($(now_ms) - start))
rd_bytes=$("${virsh[@]}" domblkstat "$domain" vda | awk '$2 == "rd_bytes" { print $3 }')
say "libvirt: $ready after ${elapsed} ms (wall, from virsh create, which took" \
  "${created} ms); guest read $(guest_read "$tmp/libvirt.log") bytes of its" \
  "root disk, QEMU $rd_bytes"

start=$(now_ms)
"${virsh[@]}" save "$domain" "$tmp/state" >/dev/null
saved=$(($(now_ms) - start))
size=$(stat -c %s "$tmp/state")
start=$(now_ms)
"${virsh[@]}" restore "$tmp/state" >/dev/null
restored=$(($(now_ms) - start))
state=$("${virsh[@]}" domstate "$domain")
[[ "$state" == running ]] || die "restored domain is $state, not running"
say "libvirt: save ${saved} ms ($((size / 1024 / 1024)) MiB state file)," \
  "restore ${restored} ms (domain $state)"
"${virsh[@]}" destroy "$domain" >/dev/null
say "libvirt: overlay grew to $(du -k "$tmp/libvirt.qcow2" | cut -f1) KiB"
