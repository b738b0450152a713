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

-- done(): the shared BENCH_JSON report (report.lua, beside this script).
done = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")
