#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# setup.sh: make a fresh Debian 12 machine (as root) ready to build and test
# vigo, then configure and build it. Idempotent and non-interactive: installs
# only the Debian packages that are missing (one `apt-get update`, only when
# something is missing), configures build/ only when it is not configured,
# and lets ninja decide what to rebuild. Quick when everything is in place.
# Usage: scripts/setup.sh [--no-build]
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

build=1
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    -h|--help) echo "usage: $0 [--no-build]"; exit 0 ;;
    *) echo "setup: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

say() { echo "setup: $*"; }

# postgresql-15 is the package that ships /usr/lib/postgresql/15/bin here;
# cpio..e2fsprogs is what guest/build.sh needs (depmod is in kmod, mke2fs and
# debugfs in e2fsprogs); nodejs and chromium run the portal's end-to-end
# test (web/e2e, playwright-core from the npm registry drives Debian's
# Chromium); clang and its runtime (libFuzzer, sanitizers) build the
# fuzz targets (scripts/fuzz.sh).
packages=(
  build-essential cmake ninja-build ccache pkg-config git
  libpqxx-dev libpq-dev postgresql-15 postgresql-client-15
  libspdlog-dev libfmt-dev libtomlplusplus-dev libcli11-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libssl-dev openssl libzstd-dev
  libfuse3-dev fuse3
  libvirt-dev libxml2-dev libvirt-clients libvirt-daemon libvirt-daemon-driver-qemu
  qemu-system-x86 qemu-utils
  openssh-server openssh-client sshfs
  libboost1.81-dev wrk
  cpio busybox-static kmod e2fsprogs
  nodejs chromium
  clang libclang-rt-14-dev
)

missing=()
for pkg in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done

if ((${#missing[@]} > 0)); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing packages (run as root to install): ${missing[*]}" >&2
    exit 1
  fi
  say "installing ${#missing[@]} package(s): ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  say "all ${#packages[@]} packages present"
fi

# Debian's nodejs ships npm separately (NodeSource's includes it).
if ! command -v npm > /dev/null; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: npm is missing (run as root to install)" >&2
    exit 1
  fi
  say "installing npm"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm
fi

# The portal's end-to-end test's node modules, exactly as locked.
if [[ ! -d web/e2e/node_modules/playwright-core || web/e2e/package-lock.json -nt web/e2e/node_modules ]]; then
  say "installing web/e2e's node modules (npm ci)"
  (cd web/e2e && npm ci --no-audit --no-fund --loglevel=error)
  touch web/e2e/node_modules
fi

if ((build == 0)); then
  say "skipping build (--no-build)"
  exit 0
fi

if [[ ! -f build/CMakeCache.txt || ! -f build/build.ninja ]]; then
  say "configuring build/"
  cmake -S . -B build -G Ninja
fi
say "building (-j2), with the demo guest"
cmake --build build -j2 --target all vigo-guest
say "done"
