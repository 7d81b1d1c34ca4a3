#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test.sh: set up and build (scripts/setup.sh), start libvirtd if needed
# (scripts/libvirt-up.sh), then run every test (unit and integration labels)
# through CTest, then the fuzz targets for 60 s each (scripts/fuzz.sh). The
# exit code is non-zero when either failed.
# Extra arguments go to ctest (e.g. -L unit, -R Config).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
bash scripts/libvirt-up.sh  # the scheduler's tests boot real guests through qemu:///system
echo "test: running ctest"
status=0
ctest --test-dir build --output-on-failure -j2 --timeout 600 "$@" || status=$?
# The libFuzzer targets of the API's request and JSON parsing, with ASan and
# UBSan, for a bounded time (skipped when ctest was asked for a subset).
if (($# == 0)); then
  echo "test: fuzzing (scripts/fuzz.sh 60)"
  bash scripts/fuzz.sh 60 || status=$?
fi
exit "$status"
