#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# build.sh: build the tiny vigo test guest from Debian packages into OUT_DIR.
#
#   guest/build.sh OUT_DIR [--root-size SIZE] [--workload FILE]
#                          [--kernel-package PKG] [--bulk-from DIR]
#                          [--bulk-mib N]
#
# Produces, in OUT_DIR:
#   vmlinuz      the Debian 12 cloud kernel (newest linux-image-6.1.0-*-cloud-amd64
#                that apt knows, or --kernel-package)
#   initrd.img   gzip'ed cpio (newc): static busybox, the virtio modules
#                (virtio_pci, virtio_blk, virtio_net and their dependencies) and
#                an /init that mounts /dev/vda (ext4, read-write) and
#                switch_roots into it
#   root.ext4    a sparse ext4 image (--root-size, default 1G) made without
#                root privileges (mke2fs -d): busybox, busybox init, an rcS
#                that prints "VIGO-READY <uptime>" on the console, the optional
#                workload (/vigo/workload.sh, ended by "VIGO-WORKLOAD-DONE
#                rc=N"), the kernel's whole module tree, and bulk under /data
#                that a boot never reads (--bulk-mib MiB of --bulk-from)
#   cmdline      the kernel command line to boot with
#   tiny.toml    the guest's VM profile (guest/profiles/tiny.toml)
#   manifest     what went in (package versions, sizes)
#   cache/       the downloaded .deb files, reused by later builds
#
# Only `apt-get download` touches the network (Debian mirrors, through apt).
# A stamp (.stamp: a hash of every input) makes a rebuild with unchanged
# inputs a no-op; builds into one OUT_DIR are serialized by a lock.
# Outputs are replaced atomically (rename), the stamp last.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly here
readonly modules_wanted=(virtio virtio_ring virtio_pci_legacy_dev
  virtio_pci_modern_dev virtio_pci virtio_blk virtio_net)
readonly cmdline="console=ttyS0 root=/dev/vda rw quiet panic=-1"

usage() {
  sed -n '/^#   guest\/build.sh/,/^#$/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}
say() { echo "guest: $*"; }
die() { echo "guest: error: $*" >&2; exit 1; }

out=""
root_size=1G
workload=""
kernel_pkg=""
bulk_from=/usr/lib/x86_64-linux-gnu
bulk_mib=256
while (($# > 0)); do
  case "$1" in
    --root-size) root_size=${2:?--root-size needs a value}; shift 2 ;;
    --workload) workload=${2:?--workload needs a file}; shift 2 ;;
    --kernel-package) kernel_pkg=${2:?--kernel-package needs a name}; shift 2 ;;
    --bulk-from) bulk_from=${2:?--bulk-from needs a directory}; shift 2 ;;
    --bulk-mib) bulk_mib=${2:?--bulk-mib needs a number}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) die "unknown option: $1" ;;
    *) [[ -z "$out" ]] || die "one OUT_DIR only"; out=$1; shift ;;
  esac
done
[[ -n "$out" ]] || { usage >&2; exit 2; }
[[ "$bulk_mib" =~ ^[0-9]+$ ]] || die "--bulk-mib: not a number: $bulk_mib"
if [[ -n "$workload" ]]; then
  [[ -f "$workload" ]] || die "--workload: no such file: $workload"
  workload=$(realpath "$workload")
fi
if ((bulk_mib > 0)); then
  [[ -d "$bulk_from" ]] || die "--bulk-from: no such directory: $bulk_from"
fi

for tool in apt-get apt-cache dpkg-deb depmod cpio gzip mke2fs sha256sum flock; do
  command -v "$tool" >/dev/null ||
    die "missing $tool (scripts/setup.sh --no-build installs what is needed)"
done

mkdir -p "$out/cache"
out=$(realpath "$out")
readonly cache="$out/cache"
exec 9>"$out/.lock"
flock 9

# --- Which packages: the newest cloud kernel apt knows, and busybox-static.

# The candidate versions apt knows (one apt-cache call: each takes ~1 s).
readonly kernel_re='^linux-image-6\.1\.0-[0-9]+-cloud-amd64$'
declare -A candidate=()
while read -r p v; do
  candidate[$p]=$v
done < <(apt-cache show --no-all-versions "${kernel_pkg:-$kernel_re}" \
  busybox-static 2>/dev/null | awk '/^Package: / { p = $2 }
                                    /^Version: / { print p, $2 }')
if [[ -z "$kernel_pkg" ]]; then
  kernel_pkg=$(for p in "${!candidate[@]}"; do
    [[ "$p" =~ $kernel_re ]] && echo "${candidate[$p]} $p"
  done | sort -V | tail -n1 | cut -d' ' -f2 || true)
fi

# Prints the path of the cached .deb of package $1 at version $2 (downloading
# it when absent), or, when apt does not know the package (no apt lists, e.g.
# offline), the newest cached .deb of it.
fetch_deb() {
  local pkg=$1 ver=$2 f
  if [[ -n "$ver" ]]; then
    for f in "$cache/${pkg}_${ver//:/%3a}_"*.deb; do
      [[ -f "$f" ]] && { echo "$f"; return; }
    done
    local sandbox=()
    [[ $(id -u) -eq 0 ]] && sandbox=(-o APT::Sandbox::User=root)
    say "downloading $pkg $ver" >&2
    (cd "$cache" && apt-get download -q "${sandbox[@]}" "$pkg=$ver" >&2) ||
      die "apt-get download $pkg=$ver failed"
    for f in "$cache/${pkg}_${ver//:/%3a}_"*.deb; do
      [[ -f "$f" ]] && { echo "$f"; return; }
    done
    die "apt-get download $pkg=$ver left no .deb in $cache"
  fi
  f=$(find "$cache" -maxdepth 1 -name "${pkg}_*.deb" | sort -V | tail -n1)
  [[ -n "$f" ]] || die "apt knows no $pkg and none is cached (apt-get update?)"
  say "apt knows no $pkg: using the cached $(basename "$f")" >&2
  echo "$f"
}

if [[ -z "$kernel_pkg" ]]; then
  kernel_pkg=$(find "$cache" -maxdepth 1 \
    -name 'linux-image-6.1.0-*-cloud-amd64_*.deb' -printf '%f\n' |
    sed 's/_.*//' | sort -V | tail -n1)
  [[ -n "$kernel_pkg" ]] ||
    die "apt knows no linux-image-6.1.0-*-cloud-amd64 (apt-get update?)"
fi
kernel_deb=$(fetch_deb "$kernel_pkg" "${candidate[$kernel_pkg]:-}")
busybox_deb=$(fetch_deb busybox-static "${candidate[busybox-static]:-}")

# --- The stamp: a hash of everything that goes into the outputs.

inputs_hash() {
  {
    echo "cmdline $cmdline"
    echo "modules ${modules_wanted[*]}"
    echo "root-size $root_size"
    sha256sum "$kernel_deb" "$busybox_deb" | sed 's| .*/| |'
    (cd "$here" && find build.sh initramfs rootfs profiles -type f -printf '%p %m\n' |
      sort | while read -r f m; do echo "$m $(sha256sum "$f")"; done)
    if [[ -n "$workload" ]]; then
      echo "workload $(sha256sum <"$workload")"
    fi
    if ((bulk_mib > 0)); then
      echo "bulk $bulk_mib $(realpath "$bulk_from")"
      find "$bulk_from" -printf '%P %s %T@\n' | LC_ALL=C sort | sha256sum
    fi
  } | sha256sum | cut -d' ' -f1
}
hash=$(inputs_hash)
outputs=(vmlinuz initrd.img root.ext4 cmdline manifest tiny.toml)
up_to_date=1
for f in "${outputs[@]}"; do [[ -f "$out/$f" ]] || up_to_date=0; done
if ((up_to_date)) && [[ "$(cat "$out/.stamp" 2>/dev/null)" == "$hash" ]]; then
  say "up to date in $out"
  exit 0
fi

say "building in $out"
rm -f "$out/.stamp"
work=$(mktemp -d "$out/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT

dpkg-deb -x "$kernel_deb" "$work/kernel"
dpkg-deb -x "$busybox_deb" "$work/busybox"
kver=$(ls "$work/kernel/lib/modules")
[[ $(wc -w <<<"$kver") -eq 1 ]] || die "expected one module tree, got: $kver"
moddir="$work/kernel/lib/modules/$kver"
# Debian's package leaves modules.dep to the postinst's depmod: make it here.
depmod -b "$work/kernel" "$kver"
bb="$work/busybox/bin/busybox"

# Sets the times of everything under $1 to $epoch (reproducible images).
readonly epoch=${SOURCE_DATE_EPOCH:-1700000000}
touch_all() {
  find "$1" -exec touch -h -d "@$epoch" {} +
}

# Installs static busybox and all its applets (as symlinks) under root $1.
install_busybox() {
  local root=$1 applet
  install -D -m 0755 "$bb" "$root/bin/busybox"
  while read -r applet; do
    [[ "$applet" == bin/busybox || -e "$root/$applet" || -L "$root/$applet" ]] &&
      continue
    mkdir -p "$root/$(dirname "$applet")"
    ln -s /bin/busybox "$root/$applet"
  done < <("$bb" --list-full)
}

# Prints, in load order, the module files (relative to $moddir) that module $1
# needs, itself last; modules already printed (in the set "seen") are skipped.
declare -A seen=()
load_order() {
  local name=${1//-/_} line path dep
  [[ -n "${seen[$name]:-}" ]] && return
  seen[$name]=1
  line=$(awk -v n="$name" -F: '{ b = $1; sub(/.*\//, "", b); sub(/\.ko.*/, "", b);
           gsub(/-/, "_", b); if (b == n) { print; exit } }' "$moddir/modules.dep")
  if [[ -z "$line" ]]; then
    grep -qE "/${name//_/[-_]}\.ko" "$moddir/modules.builtin" && return
    die "module $name is neither in modules.dep nor built in"
  fi
  path=${line%%:*}
  for dep in ${line#*:}; do
    dep=$(basename "$dep"); load_order "${dep%%.ko*}"
  done
  echo "$path"
}

# --- initrd.img

ird="$work/initramfs"
mkdir -p "$ird"/{dev,proc,sys,newroot,lib/modules}
install_busybox "$ird"
install -m 0755 "$here/initramfs/init" "$ird/init"
for m in "${modules_wanted[@]}"; do load_order "$m"; done >"$work/modules"
: >"$ird/lib/modules/load-order"
while read -r path; do
  f=$(basename "$path")
  case "$f" in
    *.ko) cp "$moddir/$path" "$ird/lib/modules/$f" ;;
    *.ko.xz) xz -dc "$moddir/$path" >"$ird/lib/modules/${f%.xz}" ;;
    *.ko.zst) zstd -qdc "$moddir/$path" >"$ird/lib/modules/${f%.zst}" ;;
    *) die "unknown module file: $f" ;;
  esac
  f=${f%%.ko*}.ko
  echo "$f" >>"$ird/lib/modules/load-order"
done <"$work/modules"
touch_all "$ird"
(cd "$ird" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort |
  cpio --quiet -o -H newc -R 0:0 --reproducible) | gzip -9 -n >"$work/initrd.img"

# --- root.ext4

rfs="$work/rootfs"
mkdir -p "$rfs"/{dev,proc,sys,tmp,run,root,mnt,var/log,vigo,lib/modules}
chmod 1777 "$rfs/tmp"
chmod 0700 "$rfs/root"
install_busybox "$rfs"
cp -a "$here/rootfs/." "$rfs/"
cp -a "$moddir" "$rfs/lib/modules/"
if [[ -n "$workload" ]]; then
  install -m 0755 "$workload" "$rfs/vigo/workload.sh"
fi
bulk_bytes=0
if ((bulk_mib > 0)); then
  # The first regular files of $bulk_from (by name, hard links left out)
  # that fit in --bulk-mib.
  limit=$((bulk_mib * 1024 * 1024))
  find "$bulk_from" -type f -links 1 -printf '%s %P\0' | LC_ALL=C sort -z -k2 |
    while IFS=' ' read -r -d '' size name; do
      ((bulk_bytes + size <= limit)) || continue
      bulk_bytes=$((bulk_bytes + size))
      printf '%s\0' "$name"
    done >"$work/bulk-list"
  mkdir -p "$rfs/data"
  tar -C "$bulk_from" --null -T "$work/bulk-list" -cf - | tar -C "$rfs/data" -xf -
  bulk_bytes=$(du -sb "$rfs/data" | cut -f1)
fi
touch_all "$rfs"
truncate -s "$root_size" "$work/root.ext4"
# A fixed UUID, hash seed and times make the image a function of its inputs;
# fully initialized inode tables and journal keep the guest kernel from
# zeroing them (writes) after mounting.
uuid=$(sed -E 's/^(.{8})(.{4})(.{4})(.{4})(.{12}).*/\1-\2-\3-\4-\5/' <<<"$hash")
E2FSPROGS_FAKE_TIME=$epoch \
  mke2fs -q -F -t ext4 -L vigo-root -U "$uuid" -d "$rfs" \
  -E "root_owner=0:0,hash_seed=$uuid,lazy_itable_init=0,lazy_journal_init=0" \
  "$work/root.ext4"
# mke2fs -d copies each file's owner (the builder, who may not be root) and
# ctime (the time of this build): make them root's and $epoch.
find "$rfs" -printf 'sif "/%P" ctime @'"$epoch"'\nsif "/%P" uid 0\nsif "/%P" gid 0\n' |
  E2FSPROGS_FAKE_TIME=$epoch debugfs -w -f - "$work/root.ext4" >/dev/null 2>&1

# --- the rest, then everything into place (stamp last)

cp "$work/kernel/boot/vmlinuz-$kver" "$work/vmlinuz"
cp "$here/profiles/tiny.toml" "$work/tiny.toml"  # its relative paths name the files beside it
echo "$cmdline" >"$work/cmdline"
{
  echo "kernel $kernel_pkg $(dpkg-deb -f "$kernel_deb" Version) ($kver)"
  echo "busybox busybox-static $(dpkg-deb -f "$busybox_deb" Version)"
  echo "initramfs modules $(tr '\n' ' ' <"$ird/lib/modules/load-order")"
  echo "root-size $root_size"
  echo "root-used-bytes $(du -sb "$rfs" | cut -f1)"
  echo "bulk ${bulk_bytes} bytes from $bulk_from under /data"
  echo "workload ${workload:-none}"
  echo "cmdline $cmdline"
} >"$work/manifest"
for f in "${outputs[@]}"; do mv -f "$work/$f" "$out/$f"; done
# Cached packages other than the ones in use are stale.
for f in "$cache"/*.deb; do
  [[ "$f" == "$kernel_deb" || "$f" == "$busybox_deb" ]] || rm -f "$f"
done
echo "$hash" >"$out/.stamp"
say "built $(sed -n 's/^kernel //p' "$out/manifest"); root disk" \
  "$(du -h --apparent-size "$out/root.ext4" | cut -f1) ($(du -h "$out/root.ext4" | cut -f1) allocated)"
