#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# An example workload (guest/build.sh OUT_DIR --workload
# guest/workloads/read-data.sh): read all of /data, the bulk a boot leaves
# alone, and print how many bytes it read from the root disk and how long it
# took. Exits non-zero if /data is missing.
set -e
[ -d /data ] || { echo "read-data: no /data"; exit 1; }
dev=$(awk '$2 == "/" { print $1 }' /proc/mounts | tail -n1)
sectors() { awk '{ printf "%d", $3 }' "/sys/class/block/${dev#/dev/}/stat"; }
before=$(sectors)
read -r t0 _ </proc/uptime
bytes=$(find /data -type f -exec cat {} + | wc -c)
read -r t1 _ </proc/uptime
echo "read-data: $bytes bytes of files in $(awk "BEGIN { print $t1 - $t0 }") s;" \
  "$((($(sectors) - before) * 512)) bytes read from $dev"
