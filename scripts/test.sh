#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test.sh: set up and build (scripts/setup.sh), then run every test (unit and
# integration labels) through CTest. The exit code is ctest's.
# Extra arguments go to ctest (e.g. -L unit, -R Config).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
echo "test: running ctest"
status=0
ctest --test-dir build --output-on-failure -j2 --timeout 600 "$@" || status=$?
exit "$status"
