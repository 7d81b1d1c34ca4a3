#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test.sh: set up and build (scripts/setup.sh), start libvirtd if needed
# (scripts/libvirt-up.sh), then run every test (unit and integration labels)
# through CTest. The exit code is ctest's.
# Extra arguments go to ctest (e.g. -L unit, -R Config).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
bash scripts/libvirt-up.sh  # the scheduler's tests boot real guests through qemu:///system
echo "test: running ctest"
status=0
ctest --test-dir build --output-on-failure -j2 --timeout 600 "$@" || status=$?
exit "$status"
