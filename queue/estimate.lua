-- The estimated wait and its inputs: queue/estimate.py written a second time, line for line
-- (see its docstring for the model). Prepended to redis_engine.lua by queue/redis_script.py,
-- after `EST` (estimate.LUA_CONSTANTS); tests/queue/test_estimate_lua.py runs these functions
-- on a real Redis against the Python ones, and tests/queue/test_estimate.py the engine on
-- every store.
--
-- Numbers are Lua's doubles, the Python floats, and exp is the same libm's: each function
-- does the same operations in the same order, so both give the same figure.

local function est_round_tenth(x) return math.floor(x * 10 + 0.5) / 10 end

local function est_bump(count, at, now)
  return count * math.exp(-math.max(now - at, 0) / EST.tau) + 1
end

local function est_arrival_rate(count, at, now, span_s)
  if count <= 0 then return 0.0 end
  local span = math.max(span_s, EST.min_span)
  return count * math.exp(-math.max(now - at, 0) / EST.tau) / (EST.tau * (1 - math.exp(-span / EST.tau)))
end

-- Returns the new mean and count.
local function est_next_aht(aht, calls, handle_s)
  local n = math.min(calls + 1, EST.aht_calls)
  return aht + (handle_s - aht) / n, n
end

-- nil when there is no AHT yet.
local function est_wait(position, talking, idle, aht_s, push_rate)
  if not aht_s then return nil end
  local frees = position - idle
  if frees <= 0 then return 0.0 end
  local drain = math.max(talking + idle, 1) / math.max(aht_s, EST.min_aht)
  local net = math.max(drain - push_rate, drain * EST.min_drain)
  local mean = frees / net
  local shape = frees * net / (2 * drain - net)
  local factor
  if shape >= EST.knee then
    local f = 1 - 1 / (9 * shape)
    factor = f * f * f
  else
    factor = EST.knee_factor * math.sqrt(shape / EST.knee)
  end
  return math.max(est_round_tenth(mean * factor), EST.min_wait)
end

local function est_announce(previous, position)
  if not previous or position < previous then return position end
  return previous
end

-- One answered call's quote against its real wait, into the queue × tier's counters: what
-- queue/wait_accuracy.py's `increments` adds (the bin rule written a second time).
local function est_accuracy(k, real_s, quoted_s)
  local r = math.max(real_s, ACC.floor) / math.max(quoted_s, ACC.floor)
  local i = math.floor(math.log(r) / math.log(2) * ACC.per_octave) + ACC.octaves * ACC.per_octave
  i = math.min(math.max(i, 0), ACC.bins - 1)
  redis.call("HINCRBY", k, "n", 1)
  redis.call("HINCRBYFLOAT", k, "err", string.format("%.17g", math.abs(real_s - quoted_s)))
  if r >= ACC.within_low and r <= ACC.within_high then redis.call("HINCRBY", k, "within", 1) end
  redis.call("HINCRBY", k, "r" .. i, 1)
end
