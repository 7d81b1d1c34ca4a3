-- SPDX-License-Identifier: Apache-2.0
-- bench/api/wrk.lua: the request that bench/api/run.sh has wrk send, from
-- the environment (so that the token stays off the command line):
--   VIGO_BENCH_TOKEN   bearer token (Authorization: Bearer ...); unset: none
--   VIGO_BENCH_METHOD  GET (default) or POST
--   VIGO_BENCH_BODY    request body (sent with Content-Type: application/json)
-- At the end it prints one line that run.sh reads:
--   RESULT requests=N duration_us=N bytes=N p50_us=N ... status=N timeout=N
-- (latencies in microseconds; status counts answers that were not 2xx/3xx).
-- No response() callback: wrk would then parse every response into Lua
-- tables, and the client would cost more than the servers it measures.

local token = os.getenv("VIGO_BENCH_TOKEN")
local method = os.getenv("VIGO_BENCH_METHOD")
local body = os.getenv("VIGO_BENCH_BODY")

wrk.method = (method ~= nil and method ~= "") and method or "GET"
if token ~= nil and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
if body ~= nil and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d bytes=%d p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d "
      .. "mean_us=%d connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
