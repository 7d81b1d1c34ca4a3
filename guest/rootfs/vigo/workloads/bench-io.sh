#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# An IO-bound workload (bench/instantiation): read every file under /data
# (the bulk that booting leaves alone) from the root disk. Prints
# "VIGO-WORKLOAD-TIME bench-io SECONDS BYTES" (guest clock).
read -r t0 _ </proc/uptime
bytes=$(find /data -type f | sort | xargs cat | wc -c)
read -r t1 _ </proc/uptime
echo "VIGO-WORKLOAD-TIME bench-io $(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }") $bytes"
