-- wrk script: POST /v1/agents/{id}/next with a fresh agent id per request (agent pops).
--   wrk -t1 -c32 -d10s -s loadtest/wrk/pop.lua http://127.0.0.1:8080 -- PREFIX
-- A fresh agent holds nothing, so every request takes the best waiting call (preload the
-- queue first, e.g. with route.lua; once it is empty the answers are 204 no work).
-- done() prints one line "BENCH_JSON {...}" (latencies in microseconds) for loadtest/bench.py.

local threads = {}
local counter = 0
local prefix = "a"
local headers = { ["Content-Type"] = "application/json" }

function setup(thread)
   thread:set("tid", #threads + 1)
   table.insert(threads, thread)
end

function init(args)
   prefix = args[1] or prefix
end

function request()
   counter = counter + 1
   return wrk.format("POST", string.format("/v1/agents/%s-%d-%d/next", prefix, tid or 0, counter), headers, "{}")
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"status_errors":%d,"connect_errors":%d,'
         .. '"read_errors":%d,"write_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,'
         .. '"p999_us":%d,"max_us":%d,"mean_us":%.1f}\n',
      summary.requests, summary.duration, summary.bytes, e.status, e.connect, e.read, e.write, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
      latency.max, latency.mean))
end
