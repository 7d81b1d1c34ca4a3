#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# A CPU-bound workload (bench/instantiation): MD5 of 384 MiB of zeros, in
# memory, no disk (several seconds under TCG, so that 2% is well above the
# 50 ms at which the bench polls the console). Prints "VIGO-WORKLOAD-TIME bench-cpu SECONDS" (guest clock).
read -r t0 _ </proc/uptime
dd if=/dev/zero bs=1048576 count=384 2>/dev/null | md5sum >/dev/null
read -r t1 _ </proc/uptime
echo "VIGO-WORKLOAD-TIME bench-cpu $(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }")"
