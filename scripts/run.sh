#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# run.sh: the one-command start. Sets up and builds (scripts/setup.sh), then
# replaces itself with `vigo up`, passing every argument through.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh >&2
exec build/cli/vigo up "$@"
