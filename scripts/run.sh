#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# run.sh: the one-command start. Sets up and builds (scripts/setup.sh),
# starts libvirtd if needed (scripts/libvirt-up.sh; not for --gis-only),
# then replaces itself with `vigo up`, passing every argument through.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh >&2
# libvirtd and virtlogd when they are not running (vigo up checks that
# libvirt answers; the GIS alone needs neither).
if [[ " $* " != *" --gis-only "* ]]; then
  bash scripts/libvirt-up.sh >&2
fi
exec build/cli/vigo up "$@"
