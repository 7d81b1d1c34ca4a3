#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/api/run.sh: vigod's HTTPS API under wrk, with nginx serving the same
# bytes as a static file as the ceiling, side by side in one run
# (docs/benchmarks.md, "API"). Builds vigo (scripts/setup.sh) and makes sure
# libvirt answers (scripts/libvirt-up.sh), then, in a temporary directory
# deleted at exit:
#
#   1. `vigo up --state-dir DIR --api-port 0` in the background (its own
#      PostgreSQL, sshd, vigo-fs, vigod, and the demo user's workspace
#      running a real guest, so that GET /v1/workspaces returns a real row),
#      with a libvirt domain prefix of its own; waits for the portal URL and
#      the demo token in its output.
#   2. A second vigod, the one measured, from a copy of DIR/vigod.toml (same
#      database, pool, certificate, threads, host and domain prefix, so that
#      it lists the workspace exactly as the stack's vigod does), with these
#      overrides (flags and VIGO_* environment, common/config.h): a free
#      port, log level warn, rate_per_token and burst_per_token 1,000,000
#      (the default 200/s would make wrk measure the limiter), and no
#      periodic reconciliation or checkpoint tick. Its one reconciliation at
#      start finds the stack's guest running in both the GIS and libvirt and
#      leaves it alone; it is stopped before `vigo up`. vigod logs no line
#      per request.
#   3. nginx (Debian package nginx-light) as a non-daemon child with its own
#      configuration and prefix in the temporary directory: 127.0.0.1 on a
#      free port, TLS with the same certificate and key, 2 workers, access
#      log off, keep-alive for 1,000,000 requests, serving at
#      /v1/workspaces the exact body vigod returned for it (a JSON file).
#
# Then wrk (--latency, wrk.lua beside this script for the bearer token and
# the POST body), one run after the other, each after an unmeasured warm-up
# (--warmup), with the same threads and keep-alive connections:
#   vigod GET  /v1/workspaces                      (the demo user's list)
#   vigod POST /v1/gis/hosts-that-fit {"memory_mb":512}
#   nginx GET  /v1/workspaces                      (the static file)
# and prints a Markdown table: requests/s, p50, p99, errors, and where the
# CPU went during each run (cores busy, from /proc: the server, the stack's
# PostgreSQL, everything else, which is mostly wrk), and the ratio
# vigod GET / nginx. The target (tracker): GET >= 10,000 requests/s with
# p99 < 10 ms on a 2-core machine. Nothing is asserted.
#
# On exit, also on failure or Ctrl-C: stops wrk, nginx, the measured vigod
# and `vigo up` (SIGTERM: it deletes the workspace and stops what it
# started; up to 5 minutes), by pid, and removes the temporary directory
# (unless --state-dir named one to keep). libvirtd stays up, as after
# scripts/test.sh.
#
# Usage: bench/api/run.sh [--duration S] [--warmup S] [--threads N]
#            [--connections N] [--gis-body JSON] [--no-workspace]
#            [--state-dir DIR] [--no-build]
#   --duration S     seconds per measured run (default 15)
#   --warmup S       seconds of unmeasured load before each run (default 3; 0: none)
#   --threads N      wrk threads (default 2)
#   --connections N  wrk connections, kept alive (default 32)
#   --gis-body JSON  body of the GIS query (default {"memory_mb":512})
#   --no-workspace   no demo workspace (quicker; the GET then lists nothing)
#   --state-dir DIR  the stack's state directory, kept (a second run is quicker)
#   --no-build       do not run scripts/setup.sh (the binaries must be built)
set -euo pipefail
export LC_ALL=C  # decimal points in $EPOCHREALTIME and awk
cd "$(dirname "$0")/../.."
repo=$PWD

duration=15
warmup=3
threads=2
connections=32
gis_body='{"memory_mb":512}'
workspace=1
state_dir=
build=1
while (($#)); do
  case "$1" in
    --duration) duration=$2; shift ;;
    --warmup) warmup=$2; shift ;;
    --threads) threads=$2; shift ;;
    --connections) connections=$2; shift ;;
    --gis-body) gis_body=$2; shift ;;
    --no-workspace) workspace=0 ;;
    --state-dir) state_dir=$2; shift ;;
    --no-build) build=0 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/api/run.sh: unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
for n in "$duration" "$threads" "$connections" "$warmup"; do
  [[ $n =~ ^[0-9]+$ ]] || { echo "bench/api/run.sh: '$n' is not a whole number" >&2; exit 2; }
done
((duration > 0 && threads > 0 && connections >= threads)) ||
  { echo "bench/api/run.sh: need --duration > 0 and --connections >= --threads > 0" >&2; exit 2; }

((build == 0)) || bash scripts/setup.sh >&2

vigo=$repo/build/cli/vigo
vigod=$repo/build/web/vigod
for b in "$vigo" "$vigod"; do
  [[ -x $b ]] || { echo "bench/api/run.sh: $b was not built" >&2; exit 1; }
done
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
if [[ ! -x $nginx_bin ]]; then
  # Installed here, not by scripts/setup.sh: only this benchmark needs it.
  # policy-rc.d keeps the package from starting its own nginx on port 80.
  [[ $(id -u) -eq 0 ]] || { echo "bench/api/run.sh: nginx is missing (apt-get install nginx-light)" >&2; exit 1; }
  echo "bench/api/run.sh: installing nginx-light (the ceiling)" >&2
  own_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && own_policy=1
  fi
  installed=0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light >&2 && installed=1
  ((own_policy == 0)) || rm -f /usr/sbin/policy-rc.d
  ((installed == 1)) || exit 1
  nginx_bin=/usr/sbin/nginx
fi
for tool in wrk curl ss setsid openssl; do
  command -v "$tool" >/dev/null || { echo "bench/api/run.sh: $tool is missing" >&2; exit 1; }
done
bash scripts/libvirt-up.sh >&2

work=$(mktemp -d /tmp/vigo-bench-api-XXXXXX)
chmod 755 "$work"  # postgres (another user) must reach the state directory inside
state=${state_dir:-$work/state}
mkdir -p "$state"
state=$(cd "$state" && pwd)
t_start=$SECONDS

# ---------------------------------------------------------------- cleanup
up_pid='' vigod_pid='' nginx_pid='' wrk_pid=''

say() { printf '[%3d:%02d] %s\n' $(((SECONDS - t_start) / 60)) $(((SECONDS - t_start) % 60)) "$*" >&2; }

# Stops one of our children: SIGTERM, up to $2 seconds, then SIGKILL; reaps it.
stop_pid() {
  local pid=$1 limit=$2 what=$3 i
  [[ -n $pid ]] || return 0
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  say "stopping $what (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < limit * 10; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    say "$what did not stop within $limit s: killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  stop_pid "$wrk_pid" 5 wrk
  stop_pid "$nginx_pid" 10 nginx
  stop_pid "$vigod_pid" 60 "the measured vigod"
  stop_pid "$up_pid" 300 "vigo up"
  if [[ -n $up_pid && -f $work/up.log ]] && ! grep -q '^stopped' "$work/up.log"; then
    echo "bench/api/run.sh: vigo up did not report a clean stop; its last lines:" >&2
    tail -n 15 "$work/up.log" >&2
  fi
  if grep -qs " ${work}[/ ]" /proc/self/mounts; then
    echo "bench/api/run.sh: something is still mounted under $work; left in place" >&2
  else
    rm -rf --one-file-system "$work"
  fi
  ((rc == 0)) || echo "bench/api/run.sh: failed (exit $rc)" >&2
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() { echo "bench/api/run.sh: $*" >&2; exit 1; }

# Waits until FILE holds a line matching the extended regex PATTERN, while
# PID runs, for at most LIMIT seconds. The sleeps let a Ctrl-C in at once.
wait_for_line() {
  local file=$1 pattern=$2 pid=$3 limit=$4 what=$5 deadline=$((SECONDS + $4))
  until grep -Eq "$pattern" "$file" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "bench/api/run.sh: $what exited; its output:" >&2
      tail -n 30 "$file" >&2
      [[ ! -f ${6:-} ]] || tail -n 30 "$6" >&2
      exit 1
    fi
    ((SECONDS < deadline)) || fail "$what did not get ready within $limit s (output in $file)"
    sleep 0.2
  done
}

# A TCP port on 127.0.0.1 that nothing uses right now.
free_port() {
  local p i
  for ((i = 0; i < 200; i++)); do
    p=$((20000 + RANDOM % 40000))
    [[ -z $(ss -Htan "sport = :$p") ]] && { echo "$p"; return 0; }
  done
  fail "no free port found"
}

hex() { od -An -N3 -tx1 /dev/urandom | tr -d ' \n'; }

# ------------------------------------------------------ CPU, from /proc
clk_tck=$(getconf CLK_TCK)
# utime + stime (ticks) summed over the pids given (those still there).
ticks_of() {
  local t=0 p s f
  for p in "$@"; do
    s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    s=${s##*) }
    read -r -a f <<<"$s"
    t=$((t + f[11] + f[12]))
  done
  echo "$t"
}
# Busy ticks of the whole machine (all CPUs).
machine_ticks() {
  local user nice system irq softirq steal
  read -r _ user nice system _ _ irq softirq steal _ </proc/stat
  echo $((user + nice + system + irq + softirq + steal))
}
# The private PostgreSQL: the postmaster and its children (the backends of
# both vigods among them).
postgres_ticks() {
  local pm pids
  pm=$(head -n 1 "$state/pg/postmaster.pid" 2>/dev/null) || { echo 0; return 0; }
  read -r -a pids <<<"$pm $(pgrep -P "$pm" | tr '\n' ' ')"
  ticks_of "${pids[@]}"
}

# ---------------------------------------------------------------- the stack
prefix=vigobench-$(hex)-
say "starting vigo up in $state (domain prefix $prefix; the first run boots the demo guest: minutes)"
up_args=(up --state-dir "$state" --api-port 0 --domain-prefix "$prefix")
((workspace)) || up_args+=(--no-workspace)
# setsid: a Ctrl-C at the terminal reaches this script only, which then
# stops everything in order (vigo up first deletes its workspace through
# its own vigod, which must still run then).
setsid "$vigo" "${up_args[@]}" >"$work/up.log" 2>&1 </dev/null &
up_pid=$!
wait_for_line "$work/up.log" '^Press Ctrl-C to stop' "$up_pid" 1200 "vigo up"
portal=$(sed -n 's/^  portal: *\(https:[^ ]*\).*/\1/p' "$work/up.log" | tail -n 1)
token=$(sed -n 's/^  demo token: *//p' "$work/up.log" | tail -n 1)
[[ -n $portal && -n $token ]] || fail "no portal URL or demo token in the output of vigo up ($work/up.log)"
say "vigo up is up: portal $portal"
cacert=$state/tls/cert.pem
tls_key=$state/tls/key.pem
umask 077
printf 'Authorization: Bearer %s\n' "$token" >"$work/auth.header"
umask 022

# The measured vigod.
cp "$state/vigod.toml" "$work/vigod-bench.toml"
say "starting the measured vigod (copy of $state/vigod.toml, limits 1,000,000/s, log level warn)"
VIGO_API_RATE_PER_TOKEN=1000000 VIGO_API_BURST_PER_TOKEN=1000000 \
  VIGO_SCHEDULER_RECONCILE_INTERVAL_S=0 VIGO_SCHEDULER_CHECKPOINT_TICK_S=0 \
  setsid "$vigod" --config "$work/vigod-bench.toml" --listen 127.0.0.1:0 --log-level warn \
  >"$work/vigod.out" 2>"$work/vigod.log" </dev/null &
vigod_pid=$!
wait_for_line "$work/vigod.out" '^vigod: listening on https://' "$vigod_pid" 120 "the measured vigod" "$work/vigod.log"
api=$(sed -n 's/^vigod: listening on //p' "$work/vigod.out" | head -n 1)
say "measured vigod: $api (pid $vigod_pid)"

# What the GET returns is what nginx will serve; the POST must answer 200 too.
mkdir -p "$work/www"
status=$(curl -sS --cacert "$cacert" -H @"$work/auth.header" -o "$work/www/workspaces.json" \
  -w '%{http_code}' "$api/v1/workspaces")
[[ $status == 200 ]] || fail "GET $api/v1/workspaces answered $status: $(cat "$work/www/workspaces.json")"
chmod 644 "$work/www/workspaces.json"
get_bytes=$(stat -c %s "$work/www/workspaces.json")
if ((workspace)) && ! grep -q '"name":"demo"' "$work/www/workspaces.json"; then
  fail "GET /v1/workspaces does not list the demo workspace: $(cat "$work/www/workspaces.json")"
fi
status=$(curl -sS --cacert "$cacert" -H @"$work/auth.header" -H 'Content-Type: application/json' \
  -d "$gis_body" -o "$work/gis.json" -w '%{http_code}' "$api/v1/gis/hosts-that-fit")
[[ $status == 200 ]] || fail "POST $api/v1/gis/hosts-that-fit $gis_body answered $status: $(cat "$work/gis.json")"
gis_bytes=$(stat -c %s "$work/gis.json")
gis_hosts=$(grep -o '"host":' "$work/gis.json" | wc -l)
say "GET /v1/workspaces: $get_bytes bytes: $(head -c 300 "$work/www/workspaces.json")"
say "POST /v1/gis/hosts-that-fit $gis_body: $gis_bytes bytes, $gis_hosts host(s)"

# nginx, the ceiling.
ngx=$work/nginx
mkdir -p "$ngx/tmp"
start_nginx() {
  nginx_port=$(free_port)
  cat >"$ngx/nginx.conf" <<EOF
# bench/api/run.sh: a static copy of vigod's answer, as the ceiling.
daemon off;
master_process on;
worker_processes 2;
pid $ngx/nginx.pid;
error_log $ngx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  server_tokens off;
  keepalive_timeout 75s;
  keepalive_requests 1000000;
  client_body_temp_path $ngx/tmp/body;
  proxy_temp_path $ngx/tmp/proxy;
  fastcgi_temp_path $ngx/tmp/fastcgi;
  uwsgi_temp_path $ngx/tmp/uwsgi;
  scgi_temp_path $ngx/tmp/scgi;
  server {
    listen 127.0.0.1:$nginx_port ssl;
    ssl_certificate $cacert;
    ssl_certificate_key $tls_key;
    ssl_protocols TLSv1.2 TLSv1.3;
    location = /v1/workspaces {
      default_type application/json;
      alias $work/www/workspaces.json;
    }
    location / { return 404; }
  }
}
EOF
  "$nginx_bin" -t -q -p "$ngx/" -c "$ngx/nginx.conf" -e "$ngx/error.log" >&2 ||
    fail "nginx refuses its configuration ($ngx/nginx.conf)"
  setsid "$nginx_bin" -p "$ngx/" -c "$ngx/nginx.conf" -e "$ngx/error.log" </dev/null >>"$ngx/stderr.log" 2>&1 &
  nginx_pid=$!
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -n $(ss -Htln "sport = :$nginx_port") ]] && return 0
    kill -0 "$nginx_pid" 2>/dev/null || break
    sleep 0.1
  done
  stop_pid "$nginx_pid" 5 nginx
  nginx_pid=
  return 1
}
for attempt in 1 2 3 4 5; do
  start_nginx && break
  ((attempt < 5)) || { tail -n 20 "$ngx/error.log" >&2; fail "nginx did not listen"; }
  say "nginx did not listen on $nginx_port; another port"
done
ceiling=https://127.0.0.1:$nginx_port
cmp -s <(curl -sS --cacert "$cacert" -H @"$work/auth.header" "$ceiling/v1/workspaces") "$work/www/workspaces.json" ||
  fail "nginx does not serve the same bytes as vigod"
say "nginx: $ceiling (pid $nginx_pid), serving the same $get_bytes bytes"

tls_of() {
  openssl s_client -connect "${1#https://}" -CAfile "$cacert" </dev/null 2>/dev/null |
    sed -n 's/^New, \(.*\), Cipher is \(.*\)/\1 \2/p' | head -n 1
}
tls_vigod=$(tls_of "$api")
tls_nginx=$(tls_of "$ceiling")

# ---------------------------------------------------------------- the runs
# run_wrk NAME URL METHOD BODY SERVER_PIDS...: a warm-up, then the measured
# run; keeps wrk's output in $work/NAME.txt and the figures in r_NAME_*.
run_wrk() {
  local name=$1 url=$2 method=$3 body=$4
  shift 4
  local server_pids=("$@")
  local env_args=(VIGO_BENCH_TOKEN="$token" VIGO_BENCH_METHOD="$method" VIGO_BENCH_BODY="$body")
  local wrk_args=(-t"$threads" -c"$connections" --timeout 5s -s "$repo/bench/api/wrk.lua")
  if ((warmup > 0)); then
    say "$name: warm-up ${warmup} s"
    env "${env_args[@]}" wrk "${wrk_args[@]}" -d"${warmup}s" "$url" >"$work/$name.warmup.txt" 2>&1 &
    wrk_pid=$!
    wait "$wrk_pid" || fail "wrk failed: $(cat "$work/$name.warmup.txt")"
    wrk_pid=
  fi
  say "$name: $method $url, $threads threads, $connections connections, ${duration} s"
  local m0 s0 p0 m1 s1 p1 w0 w1
  # PostgreSQL's processes are listed at each end: a backend that the
  # pool opened during the run counts from its start.
  w0=$EPOCHREALTIME; m0=$(machine_ticks); s0=$(ticks_of "${server_pids[@]}"); p0=$(postgres_ticks)
  env "${env_args[@]}" wrk "${wrk_args[@]}" -d"${duration}s" --latency "$url" >"$work/$name.txt" 2>&1 &
  wrk_pid=$!
  wait "$wrk_pid" || fail "wrk failed: $(cat "$work/$name.txt")"
  wrk_pid=
  m1=$(machine_ticks); s1=$(ticks_of "${server_pids[@]}"); p1=$(postgres_ticks); w1=$EPOCHREALTIME
  grep -v '^RESULT ' "$work/$name.txt" | sed 's/^/    /' >&2
  local line kv
  line=$(grep '^RESULT ' "$work/$name.txt") || fail "no RESULT line from wrk.lua in $work/$name.txt"
  for kv in ${line#RESULT }; do
    printf -v "r_${name}_${kv%%=*}" '%s' "${kv#*=}"
  done
  # CPU busy during the run, in cores (ticks over the wall time between the
  # two samples, which includes wrk's start and end): server, PostgreSQL,
  # the rest.
  awk -v s=$((s1 - s0)) -v p=$((p1 - p0)) -v m=$((m1 - m0)) -v hz="$clk_tck" -v w0="$w0" -v w1="$w1" -v n="$name" \
    'BEGIN { t = w1 - w0; printf "c_%s_server=%.2f c_%s_pg=%.2f c_%s_rest=%.2f\n", n, s/hz/t, n, p/hz/t, n, (m-s-p)/hz/t }' \
    >"$work/$name.cpu"
  # shellcheck disable=SC1090
  source <(sed 's/ /\n/g' "$work/$name.cpu")
}

nginx_pids() { echo "$nginx_pid" $(pgrep -P "$nginx_pid"); }

# How busy the machine is with every server idle (other people's work, the
# idle guest), before and after the runs: they share the cores with it.
idle_load() {
  local m0
  m0=$(machine_ticks)
  sleep 3
  awk -v m=$(($(machine_ticks) - m0)) -v hz="$clk_tck" 'BEGIN { printf "%.2f", m / hz / 3 }'
}
idle_before=$(idle_load)
say "machine busy before the runs (servers idle, 3 s): $idle_before cores"

run_wrk get "$api/v1/workspaces" GET "" "$vigod_pid"
run_wrk gis "$api/v1/gis/hosts-that-fit" POST "$gis_body" "$vigod_pid"
read -r -a ngx_pids <<<"$(nginx_pids)"
run_wrk nginx "$ceiling/v1/workspaces" GET "" "${ngx_pids[@]}"
idle_after=$(idle_load)
say "machine busy after the runs (servers idle, 3 s): $idle_after cores"

# ---------------------------------------------------------------- the table
# (r_NAME_* and c_NAME_* were set by run_wrk through printf -v and source.)
fmt_row() {
  local name=$1 label=$2 bytes=$3
  local req dur p50 p99 errs
  eval "req=\$r_${name}_requests dur=\$r_${name}_duration_us p50=\$r_${name}_p50_us p99=\$r_${name}_p99_us"
  eval "errs=\$((r_${name}_connect + r_${name}_read + r_${name}_write + r_${name}_timeout))"
  local non2xx
  eval "non2xx=\$r_${name}_status"
  local cs cp cr
  eval "cs=\$c_${name}_server cp=\$c_${name}_pg cr=\$c_${name}_rest"
  awk -v l="$label" -v b="$bytes" -v r="$req" -v d="$dur" -v a="$p50" -v z="$p99" -v e="$errs" -v s="$non2xx" \
    -v cs="$cs" -v cp="$cp" -v cr="$cr" \
    'BEGIN { printf "| %s | %d | %.0f | %.2f | %.2f | %d / %d | %s / %s / %s |\n", l, b, r / (d / 1e6), a / 1000, z / 1000, s, e, cs, cp, cr }'
}
rate() { eval "awk -v r=\$r_${1}_requests -v d=\$r_${1}_duration_us 'BEGIN { printf \"%.0f\", r / (d / 1e6) }'"; }

get_rps=$(rate get)
nginx_rps=$(rate nginx)
# shellcheck disable=SC2154
get_p99_ms=$(awk -v z="$r_get_p99_us" 'BEGIN { printf "%.2f", z / 1000 }')
met() { if eval "$1"; then echo met; else echo "**missed**"; fi; }

cat <<EOF

### bench/api/run.sh, $(date -u '+%Y-%m-%d %H:%M UTC')

$(nproc) CPUs, busy $idle_before cores in the 3 s before the runs and $idle_after in the 3 s after them, with every server idle. wrk $threads threads, $connections keep-alive connections, ${duration} s per run after ${warmup} s of warm-up; TLS: vigod $tls_vigod, nginx $tls_nginx. CPU: cores busy during the run, from /proc.

| run | body bytes | requests/s | p50 ms | p99 ms | non-2xx / socket errors | CPU: server / PostgreSQL / everything else (wrk, ...) |
|---|---|---|---|---|---|---|
$(fmt_row get "vigod GET /v1/workspaces" "$get_bytes")
$(fmt_row gis "vigod POST /v1/gis/hosts-that-fit $gis_body" "$gis_bytes")
$(fmt_row nginx "nginx, the same body as a static file" "$get_bytes")

| measure | value | target | |
|---|---|---|---|
| vigod GET / nginx, requests/s | $(awk -v a="$get_rps" -v b="$nginx_rps" 'BEGIN { printf "%.2fx", a / b }') | - | - |
| vigod GET requests/s | $get_rps | >= 10,000 | $(met "((get_rps >= 10000))") |
| vigod GET p99 | $get_p99_ms ms | < 10 ms | $(met "((r_get_p99_us < 10000))") |
EOF
# shellcheck disable=SC2154
bad=$((r_get_status + r_gis_status + r_nginx_status))
((bad == 0)) || echo "Warning: $bad answers were not 2xx (see wrk's output above); those runs measured errors." >&2
