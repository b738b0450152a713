-- wrk script: POST /v1/calls with a unique call id per request (route decisions).
--   wrk -t1 -c32 -d10s -s loadtest/wrk/route.lua http://127.0.0.1:8080 -- PREFIX CUSTOMERS UNKNOWN_SHARE
-- Callers follow loadtest/tiermix.py: customer i is +86139 and i on 8 digits; with
-- UNKNOWN_SHARE the number is one the tier file does not hold (routed as the default tier).
-- done() prints one line "BENCH_JSON {...}" (latencies in microseconds) for loadtest/bench.py.

local threads = {}
local counter = 0
local prefix, customers, unknown_share = "r", 100000, 0.1
local headers = { ["Content-Type"] = "application/json" }

function setup(thread)
   thread:set("tid", #threads + 1)
   table.insert(threads, thread)
end

function init(args)
   prefix = args[1] or prefix
   customers = tonumber(args[2] or customers)
   unknown_share = tonumber(args[3] or unknown_share)
   math.randomseed(os.time() * 1000 + (tid or 0))
end

function request()
   counter = counter + 1
   local number
   if math.random() < unknown_share then
      number = customers + math.random(0, math.max(math.floor(customers / 10), 1000) - 1)
   else
      number = math.random(0, customers - 1)
   end
   local body = string.format('{"call_id":"%s-%d-%d","caller":"+86139%08d"}', prefix, tid or 0, counter, number)
   return wrk.format("POST", "/v1/calls", headers, body)
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
