#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# A CPU-bound workload (bench/instantiation): MD5 of 96 MiB of zeros, in
# memory, no disk. Prints "VIGO-WORKLOAD-TIME bench-cpu SECONDS" (guest clock).
read -r t0 _ </proc/uptime
dd if=/dev/zero bs=1048576 count=96 2>/dev/null | md5sum >/dev/null
read -r t1 _ </proc/uptime
echo "VIGO-WORKLOAD-TIME bench-cpu $(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }")"
