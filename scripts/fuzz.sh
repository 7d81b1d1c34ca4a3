#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# fuzz.sh: build the libFuzzer targets (fuzz/, with AddressSanitizer and
# UndefinedBehaviorSanitizer) in build-fuzz/ with clang, and run each for
# SECONDS (default 60) on a scratch copy of its seed corpus
# (fuzz/corpus/<target>/). Exit 0 when nothing was found; 1 when a target
# crashed, hit a sanitizer report, timed out or ran out of memory (the input
# that did it is printed and kept in build-fuzz/crashes/<target>/); 2 for a
# usage or setup problem. Installs nothing: needs clang++ and libFuzzer
# (Debian: clang, libclang-rt-14-dev), plus cmake, ninja-build,
# libboost1.81-dev and nlohmann-json3-dev like the main build.
# Usage: scripts/fuzz.sh [SECONDS]
# Environment: VIGO_FUZZ_JOBS (build parallelism, default 2).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { echo "fuzz: $*"; }
die() { echo "fuzz: $*" >&2; exit 2; }

seconds=60
if (($# > 1)); then die "usage: $0 [SECONDS]"; fi
if (($# == 1)); then
  case "$1" in
    -h|--help) echo "usage: $0 [SECONDS]"; exit 0 ;;
    ''|*[!0-9]*) die "SECONDS must be a positive whole number, not '$1'" ;;
  esac
  seconds=$1
  ((seconds > 0)) || die "SECONDS must be at least 1"
fi

if ! command -v clang >/dev/null || ! command -v clang++ >/dev/null; then
  die "clang/clang++ not found (Debian: apt-get install clang libclang-rt-14-dev)"
fi
fuzzer_lib="$(clang++ -print-resource-dir)/lib/linux/libclang_rt.fuzzer-x86_64.a"
[[ -f "$fuzzer_lib" ]] || die "libFuzzer not found ($fuzzer_lib; Debian: apt-get install libclang-rt-14-dev)"
command -v cmake >/dev/null || die "cmake not found"
command -v ninja >/dev/null || die "ninja not found (Debian: ninja-build)"

# Target, -max_len: HTTP a bit over the 16 KiB header limit (so it can hit
# it), JSON bodies smaller (the 32-level nesting limit needs few bytes).
targets=(fuzz_http_request fuzz_json_fields)
declare -A max_len=([fuzz_http_request]=20000 [fuzz_json_fields]=8192)

# fuzz/ is its own CMake project: it compiles only the sources it tests,
# so it needs none of the main build's libraries (libvirt, libpqxx, ...).
# Configuring again is quick and keeps -DVIGO_FUZZ=ON whatever the cache had.
build="build-fuzz"
if [[ -f $build/CMakeCache.txt ]] && ! grep -q '^CMAKE_CXX_COMPILER:FILEPATH=.*clang' "$build/CMakeCache.txt"; then
  die "$build/ was configured with another compiler; remove it"
fi
say "configuring $build/"
CC=clang CXX=clang++ cmake -S fuzz -B "$build" -G Ninja -DVIGO_FUZZ=ON >/dev/null
say "building ${targets[*]}"
cmake --build "$build" -j "${VIGO_FUZZ_JOBS:-2}" --target "${targets[@]}"

# A UBSan report stops the run (-fno-sanitize-recover) with its stack.
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

work=$(mktemp -d "${TMPDIR:-/tmp}/vigo-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

failed=()
for t in "${targets[@]}"; do
  corpus="$work/corpus-$t"
  crashes="$build/crashes/$t"
  log="$build/$t.log"
  mkdir -p "$corpus" "$crashes"
  cp fuzz/corpus/"$t"/* "$corpus"/
  say "running $t for ${seconds}s (log: $log)"
  status=0
  # -timeout: one input taking this long is a finding (a request that
  # stalls a server thread); -rss_limit_mb: so is one that needs this much.
  "$build/$t" "$corpus" \
    -max_total_time="$seconds" -max_len="${max_len[$t]}" -dict="fuzz/$t.dict" \
    -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$crashes/" >"$log" 2>&1 || status=$?
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb):' "$log" |
    sed "s/^/fuzz: $t: /" || true
  if ((status != 0)); then
    failed+=("$t")
    echo "fuzz: $t FAILED (exit $status); its report:" >&2
    report='^==[0-9]+==ERROR|^fuzz_[a-z_]+: |runtime error:|^SUMMARY:'
    if grep -qE "$report" "$log"; then
      grep -E -A40 "$report" "$log" | head -80 >&2 || true
    else
      tail -40 "$log" >&2
    fi
    inputs=$(grep -oE 'Test unit written to [^ ]+' "$log" | sed 's/^Test unit written to //' || true)
    for input in $inputs; do
      echo "fuzz: $t: the input is $input; reproduce with: $build/$t $input" >&2
    done
    [[ -n "$inputs" ]] || echo "fuzz: $t: no input written; see $log" >&2
  fi
done

if ((${#failed[@]} > 0)); then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
say "no findings (${#targets[@]} targets, ${seconds}s each)"
