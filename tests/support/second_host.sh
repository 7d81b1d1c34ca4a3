#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# second_host.sh: a second "machine" for the tests, in its own network and
# mount namespaces, with its own virtlogd, libvirtd and sshd. Runs in the
# foreground until SIGTERM/SIGINT (or its parent dies: the C++ side,
# tests/support/namespace_host.h, starts it with PR_SET_PDEATHSIG).
# Usage: second_host.sh DIR INDEX AUTHORIZED_KEYS_FILE   (as root)
#
# - network: netns vigo-h<INDEX>-<pid>, a veth pair, host side
#   10.231.<INDEX>.1/30, namespace side 10.231.<INDEX>.2/30, lo up inside.
#   No route beyond the /30: a process inside reaches only 10.231.<INDEX>.1
#   (servers of the test must listen there or on 0.0.0.0). One supervisor
#   per INDEX at a time (a lock in /run/lock; a second one fails at once).
# - mounts (a private mount namespace, entered with `ip netns exec ...
#   unshare --mount --propagation private`): tmpfs over /run; DIR/lib,
#   DIR/cache, DIR/log over /var/lib/libvirt, /var/cache/libvirt,
#   /var/log/libvirt; DIR/etc-libvirt, a copy of /etc/libvirt whose qemu.conf
#   also sets `cgroup_controllers = [ ]` (the host's libvirtd owns the
#   cgroups), over /etc/libvirt. Everything else (the build tree, /tmp, DIR)
#   is the host's file system. The host's libvirtd is not touched.
# - daemons, in the foreground, children of the namespace's holder shell:
#   virtlogd, libvirtd, and sshd on 10.231.<INDEX>.2:22 (key authentication
#   with AUTHORIZED_KEYS_FILE only, read at every login, so keys may be
#   appended later; its host key DIR/ssh_host_key; no configuration file).
#   A login runs inside both namespaces, so qemu+ssh://root@10.231.<INDEX>.2/system
#   reaches this libvirtd (through virt-ssh-helper, from libvirt-daemon).
# - DIR/env (shell syntax, single-quoted values without quotes inside):
#   NETNS, HOLDER_PID (nsenter --net --mount --target it), HOST_ADDRESS
#   (host side), ADDRESS (namespace side), HOST_VETH, KNOWN_HOSTS (the line
#   for a known_hosts file), SUPERVISOR_PID. Written before READY.
# - prints READY on stdout once `virsh -c qemu:///system list` works inside
#   and sshd accepts connections, then waits.
# - on exit: destroys every domain of its libvirtd, kills every process left
#   in its mount namespace (qemu, ssh sessions, what the test started there),
#   stops the daemons, deletes the veth and the netns. Logs in DIR/*.log.
#   Only a SIGKILL of the supervisor leaves something: the (empty) netns's
#   name (`ip netns del` it); the rest goes when the holder sees it gone.
#   The lock files /run/lock/vigo-second-host-<INDEX>.lock stay (empty).
set -euo pipefail

die() { echo "second_host: error: $*" >&2; exit 1; }
log() { echo "second_host: $(date +%T.%N | cut -c1-12) $*" >&2; }

# ---------------------------------------------------------------------------
# Inside both namespaces (started by the outer part below as the holder).
# Globals, not locals: the EXIT trap may run after inner() returned.
inner() {
  dir=$1 index=$2 keys=$3
  address="10.231.$index.2"
  pids=()  # the daemons
  mnt_ns=$(readlink /proc/self/ns/mnt)
  net_ns=$(readlink /proc/self/ns/net)
  # Prints the pids of every process in this mount namespace or this network
  # namespace (libvirt runs each qemu in a mount namespace of its own) but
  # this shell. Zombies have no namespaces left and are not listed.
  ours() {
    local self=$BASHPID p  # in $(ours): the command substitution's subshell
    local pattern_mnt=${mnt_ns//[/\\[} pattern_net=${net_ns//[/\\[}
    for p in $(find /proc/[0-9]*/ns -maxdepth 1 \( -name mnt -lname "${pattern_mnt//]/\\]}" \
      -o -name net -lname "${pattern_net//]/\\]}" \) 2>/dev/null | cut -d/ -f3 | sort -u); do
      [[ "$p" == "$$" || "$p" == "$self" ]] && continue
      [[ -e "/proc/$p/ns/mnt" ]] && echo "$p"  # not when it was find, cut or sort
    done
    return 0
  }
  # Every process of ours: TERM, up to 5 s, then KILL.
  sweep() {
    local sig p left
    for sig in TERM KILL; do
      left=$(ours)
      [[ -z "$left" ]] && return 0
      for p in $left; do kill "-$sig" "$p" 2>/dev/null; done
      for _ in $(seq 1 50); do
        sleep 0.1
        [[ -z "$(ours)" ]] && return 0
      done
    done
  }
  cleanup_inner() {
    local rc=$?
    trap - TERM INT EXIT
    set +e
    log "stopping: destroying the domains"
    local d
    for d in $(timeout 20 virsh -q -c qemu:///system list --all --name 2>/dev/null); do
      timeout 20 virsh -q -c qemu:///system destroy "$d" >/dev/null 2>&1
      timeout 20 virsh -q -c qemu:///system undefine "$d" >/dev/null 2>&1
    done
    # qemu, ssh sessions, what the test started inside, the daemons
    log "stopping: ending $(ours | wc -l) processes"
    sweep
    wait 2>/dev/null
    # Deletes the pair, also when the supervisor is gone (SIGKILL).
    ip link del "$NS_VETH" 2>/dev/null
    log "stopped"
    exit "$rc"
  }
  trap cleanup_inner EXIT
  trap 'exit 143' TERM
  trap 'exit 130' INT

  mount -t tmpfs -o mode=0755 vigo-run /run
  mkdir -p /run/libvirt /run/sshd /run/lock /run/user
  chmod 0755 /run/sshd
  local d
  for d in lib cache log; do mkdir -p "$dir/$d"; done
  mkdir -p "$dir/lib/qemu" "$dir/cache/qemu" "$dir/log/qemu"
  mount --bind "$dir/lib" /var/lib/libvirt
  mount --bind "$dir/cache" /var/cache/libvirt
  mount --bind "$dir/log" /var/log/libvirt
  mount --bind "$dir/etc-libvirt" /etc/libvirt

  virtlogd >>"$dir/virtlogd.log" 2>&1 &
  pids+=($!)
  libvirtd >>"$dir/libvirtd.log" 2>&1 &
  pids+=($!)
  /usr/sbin/sshd -D -e -f /dev/null \
    -o "ListenAddress=$address" \
    -o Port=22 \
    -o "HostKey=$dir/ssh_host_key" \
    -o "AuthorizedKeysFile=$keys" \
    -o "PidFile=/run/sshd.pid" \
    -o StrictModes=no \
    -o PasswordAuthentication=no \
    -o KbdInteractiveAuthentication=no \
    -o UsePAM=no \
    -o PermitRootLogin=prohibit-password \
    -o MaxStartups=50 \
    -o "Subsystem=sftp internal-sftp" >>"$dir/sshd.log" 2>&1 &
  pids+=($!)

  local ok=0
  for _ in $(seq 1 300); do
    local p
    for p in "${pids[@]}"; do
      kill -0 "$p" 2>/dev/null || die "a daemon exited (pid $p); see $dir/*.log"
    done
    if timeout 10 virsh -q -c qemu:///system list >/dev/null 2>&1 &&
      timeout 2 bash -c "exec 3<>/dev/tcp/$address/22" 2>/dev/null; then
      ok=1
      break
    fi
    sleep 0.2
  done
  ((ok)) || die "libvirtd or sshd did not come up in 60 s; see $dir/*.log"

  {
    echo "NETNS='$NETNS'"
    echo "HOLDER_PID='$$'"
    echo "SUPERVISOR_PID='$SUPERVISOR_PID'"
    echo "HOST_ADDRESS='10.231.$index.1'"
    echo "ADDRESS='$address'"
    echo "HOST_VETH='$HOST_VETH'"
    echo "KNOWN_HOSTS='$address $(cut -d' ' -f1,2 "$dir/ssh_host_key.pub")'"
  } >"$dir/env.tmp"
  mv "$dir/env.tmp" "$dir/env"
  echo READY

  # Until the supervisor tells us to stop (or dies, or a daemon does).
  while kill -0 "$SUPERVISOR_PID" 2>/dev/null; do
    for p in "${pids[@]}"; do
      kill -0 "$p" 2>/dev/null || { echo "second_host: daemon $p exited" >&2; exit 1; }
    done
    sleep 1 &
    wait $! || true
  done
}

if [[ "${1:-}" == "--inner" ]]; then
  shift
  inner "$@"
  exit 0
fi

# ---------------------------------------------------------------------------
# Outside: the supervisor.
(($# == 3)) || die "usage: $0 DIR INDEX AUTHORIZED_KEYS_FILE"
dir=$(realpath "$1")
index=$2
keys=$(realpath "$3")
[[ $(id -u) -eq 0 ]] || die "must run as root"
[[ "$index" =~ ^[0-9]+$ ]] && ((index >= 1 && index <= 254)) || die "INDEX must be 1..254"
[[ -d "$dir" ]] || die "no directory $dir"
[[ -r "$keys" ]] || die "cannot read $keys"
for tool in ip unshare nsenter flock virsh libvirtd virtlogd /usr/sbin/sshd ssh-keygen virt-ssh-helper; do
  command -v "$tool" >/dev/null || die "missing $tool"
done

mkdir -p /run/lock
exec 9>"/run/lock/vigo-second-host-$index.lock"
flock -n 9 || die "index $index is in use by another second_host.sh"

export NETNS="vigo-h$index-$$"
export HOST_VETH="vh${index}p$$"
export SUPERVISOR_PID=$$
export NS_VETH="vn${index}p$$"
inner_pid=

cleanup() {
  local rc=$?
  trap - TERM INT EXIT
  set +e
  if [[ -n "$inner_pid" ]]; then
    kill -TERM "$inner_pid" 2>/dev/null
    for _ in $(seq 1 600); do
      kill -0 "$inner_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$inner_pid" 2>/dev/null
    wait "$inner_pid" 2>/dev/null
  fi
  # Anything still in the netns (nothing, normally) goes too.
  local p
  for p in $(ip netns pids "$NETNS" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
  ip link del "$HOST_VETH" 2>/dev/null
  ip netns del "$NETNS" 2>/dev/null
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

[[ -e "$dir/ssh_host_key" ]] || ssh-keygen -q -t ed25519 -N '' -C vigo-second-host -f "$dir/ssh_host_key"
rm -rf "$dir/etc-libvirt"
cp -a /etc/libvirt "$dir/etc-libvirt"
touch "$dir/etc-libvirt/qemu.conf"
sed -i '/^[[:space:]]*cgroup_controllers[[:space:]]*=/d' "$dir/etc-libvirt/qemu.conf"
echo 'cgroup_controllers = [ ]  # second_host.sh: the host libvirtd owns the cgroups' \
  >>"$dir/etc-libvirt/qemu.conf"
rm -rf "$dir/etc-libvirt/qemu/networks/autostart" "$dir/etc-libvirt/storage/autostart"
# The host's QEMU capabilities cache is valid here too (same binaries) and
# saves the new libvirtd a probe of every QEMU binary.
mkdir -p "$dir/cache"
[[ -d /var/cache/libvirt/qemu/capabilities ]] && mkdir -p "$dir/cache/qemu" &&
  cp -a /var/cache/libvirt/qemu/capabilities "$dir/cache/qemu/"

ip netns add "$NETNS"
ip link add "$HOST_VETH" type veth peer name "$NS_VETH"
ip link set "$NS_VETH" netns "$NETNS"
ip addr add "10.231.$index.1/30" dev "$HOST_VETH"
ip link set "$HOST_VETH" up
ip -n "$NETNS" link set lo up
ip -n "$NETNS" addr add "10.231.$index.2/30" dev "$NS_VETH"
ip -n "$NETNS" link set "$NS_VETH" up

ip netns exec "$NETNS" unshare --mount --propagation private \
  bash "$(realpath "${BASH_SOURCE[0]}")" --inner "$dir" "$index" "$keys" 9>&- &
inner_pid=$!
wait "$inner_pid"
rc=$?
echo "second_host: the namespace's holder exited ($rc); see $dir/*.log" >&2
exit 1
