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

-- done(): the shared BENCH_JSON report (report.lua, beside this script).
done = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")
