-- The Redis store's engine: every change to queues, calls, callbacks and tallies, as one Redis
-- function library.
--
-- Each request is one FCALL of its one function (op name in ARGV[1], the caller's clock in
-- ARGV[2], its deadline in ARGV[3]: see the dispatch at the end), so each is atomic: no call is
-- popped twice, none half-moved, and every counter moves with the state it counts. Everything
-- above the dispatch (the tables and functions) is built once, when Redis loads the library
-- (FUNCTION LOAD, queue/redis_script.py and queue/redis_link.py's `fcall`); as an EVALSHA
-- script it was built again on every request (a route: 27 % of its instructions, BENCHMARKS.md).
-- Before acting, every op does what has fallen due (ring-no-answer, overflows at exactly
-- arrival + limit, callback retries, forgetting finished items), as the memory store does on
-- each call.
--
-- What it is told comes first, prepended by queue/redis_script.py when the store makes the
-- library (rendered once; a request sends only its op and arguments):
-- - `KEY`, `SLOTS`, `EVENT_CAP`: every key name and tally slot, and the event stream's
--   approximate cap, from queue/redis_keys.py. All queue-state
--   keys share one hash tag, so one cluster slot, on purpose: `next` across queues and "one
--   callback per caller" need them in one script.
-- - `CFG`: the policy (queue/policy.py).
-- - `RULES`: the decision tables of queue/decisions.py, which this engine looks up rather than
--   restates: state moves per action × status × who asks (`RULES.call`), callback outcomes
--   (`RULES.outcome`), which counters each event moves (`RULES.tally`), tier ranks, the tiers
--   that get a callback, who is admitted to a full queue, what an inbound answer resolves.
--
-- Still written twice, here and in Python, each held equal by the tests named:
-- - who asks, against the item's agent (`poster`, `outcome_poster` in queue/decisions.py), and
--   the meaning of the five tally amounts (`decisions.amount`); the effects of each move (which
--   indexes a call or callback leaves and joins; queue/memory_store.py, queue/callbacks.py's
--   apply_outcome): tests/queue/test_decision_tables.py, every entry on every store.
-- - the queue order, position and head (queue/ordering.py, queue/waitlist.py):
--   tests/queue/test_ordering_properties.py (a model against the memory store and a real Redis)
--   and tests/queue/test_queue_semantics.py on every store.
-- - the sweep (ring-no-answer, overflow on wait, callback retries, forgetting):
--   tests/queue/test_queue_semantics.py and tests/queue/test_callbacks.py on every store.
-- - the histogram bucket of an answered wait (metrics.bucket_index):
--   tests/queue/test_metrics_store.py on every store.
-- - the four questions asked of a queue's opening-hour window (queue/hours.py's is_open,
--   next_open, open_seconds, after_open: `w_*` below) and a callback's terms
--   (queue/callbacks.py's `terms`: `cb_terms`): tests/queue/test_hours.py on every store.
--   The calendar (zones, DST, holidays) is not: Python sends each queue's window, as epoch
--   seconds, with every request (ARGV[4], see the dispatch).
-- - the tier record blob `route_lookup` decodes (tiers/codec.py):
--   tests/redis/test_hot_path_and_restart.py.
-- - the four conditions of a rescheduled outcome's call_at (`RULES.call_at_checks` names them
--   and gives their codes; callbacks.call_at_fault: `call_at_fault` below) and the attempt log
--   entry an outcome appends (callbacks.apply_outcome): tests/queue/test_callback_attempts.py
--   on every store.
-- - the team lead's workload counts (callback_index.CallbackIndex.queue_load, the memory store's
--   callback_workload: `ops.workload`): tests/queue/test_callback_workload.py on every store.
-- - what a held place's leaving does (MemoryCallStore._release_hold: `release_hold`) and where a
--   re-call takes back an abandoned call's place (_take_resume, _resumed: `take_resume` and its
--   caller in `ops.route`; the key, calls.resume_key, in `route_lookup`):
--   tests/queue/test_virtual_hold.py and tests/queue/test_resume.py on every store,
--   tests/http/test_resume_api.py through `route_lookup`.
-- - the refusal messages' quoting of ids (Python's repr, here '<id>'): the codes are checked
--   by tests/queue/test_decision_tables.py, the texts are not.
--
-- Events (issue 15's trail; schema in queue/history/events.py): every change `emit`s its event
-- in the same script, `XADD` to the stream KEY.events in the queue slot, with the explicit id
-- `<epoch>-<seq>`: the store's epoch (set at each store open, queue/redis_store.py) and a
-- counter reset with it, so ids increase across every process sharing the store. The entry's
-- fields are the event struct's fields as text; Python builds the struct when reading
-- (queue/history/engine_events.py's `from_fields`). `MAXLEN ~ EVENT_CAP`: routing never waits
-- for history, so past the cap the oldest entries are trimmed (XINFO's entries-added minus
-- the length counts them). A refused or repeated request changes nothing and emits nothing.
--
-- Time: now = max(given, last seen), so time never runs backwards across router processes
-- whose clocks differ by a few milliseconds; arrival order (seq) then agrees with arrival time.

local RANK, TIER_OF = RULES.rank, RULES.tier_of

-- This request's arguments: set by the dispatch for each request (the library's locals outlive it).
local ARGV

-- A number as text that reads back as the same double. Formatting one costs ~6,000 instructions
-- (glibc's exact %.17g), and a run formats the same few (its now above all) many times: each
-- value is formatted once per request (the dispatch empties the memo).
local num_text = {}
local function num(x)
  local s = num_text[x]
  if s == nil then
    s = string.format("%.17g", x)
    if x == x and x ~= 0 then num_text[x] = s end  -- NaN is no key; 0 and -0 are one key
  end
  return s
end

local K_CLOCK, K_SEQ, K_CBSEQ = KEY.clock, KEY.seq, KEY.cbseq
local K_DUE, K_OFFERS, K_HOLD = KEY.due, KEY.offers, KEY.holding
local K_CBACTIVE, K_SNOOZED, K_FINISHED = KEY.cbactive, KEY.snoozed, KEY.finished
local K_CBACT, K_CBDONE, K_CBSTAT = KEY.cbact, KEY.cbdone, KEY.cbstat
local K_EVENTS, K_EVEPOCH, K_EVSEQ = KEY.events, KEY.evepoch, KEY.evseq
local K_HELD = KEY.held
-- Abandoned calls a re-call may take the place of (issue 16 item 4): "<queue>|<resume key>" ->
-- call_id, and the same fields by when they lapse (abandon + resume_window_s).
local K_RESUME, K_RESUMEQ = KEY.resume, KEY.resumeq

local function call_key(id) return KEY.call .. ":" .. id end
local function cb_key(id) return KEY.callback .. ":" .. id end
-- A lane's rank as text: concatenating a number formats it as a double (%.14g, ~3,500
-- instructions); the four ranks are written out once.
local RANK_TEXT = { [0] = "0", "1", "2", "3" }
local function lane_key(queue, rank) return KEY.lane .. ":" .. queue .. ":" .. (RANK_TEXT[rank] or rank) end
local function arrivals_key(queue) return KEY.arrivals .. ":" .. queue end
local function ready_key(queue) return KEY.ready .. ":" .. queue end
-- Active callbacks of one queue × tier by deadline: ZCARD and ZCOUNT answer the dashboard's
-- open and overdue counts in O(log n), moved in the same step as K_CBACT.
local function cb_lane_key(queue, tier) return KEY.cb_lane .. ":" .. queue .. ":" .. tier end
-- The estimated wait's inputs (queue/estimate.py): a hash per queue (`a<rank>`, `t<rank>`: the
-- decayed arrival count and last arrival per tier rank; `aht`, `ahtn`: the running mean handle
-- time and its count; `talk`: agents on an answered call), idle agents by when their `next`
-- found nothing, and the quotes' accuracy counters per queue × tier (queue/wait_accuracy.py).
local function est_key(queue) return KEY.est .. ":" .. queue end
local function idle_key(queue) return KEY.idle .. ":" .. queue end
local function acc_key(queue, tier) return KEY.accuracy .. ":" .. queue .. ":" .. tier end
local function life_key(queue, tier) return KEY.life .. ":" .. queue .. ":" .. tier end

local function fail(code, message) return { "err", code, message } end

-- A refusal from the decision tables: its code, and its message with `{name}` filled from `vars`.
local function refusal(decision, vars)
  return fail(decision.code, (decision.message:gsub("{(%a+)}", vars)))
end

local function quoted(id) return "'" .. (id or "") .. "'" end

-- --- events ---------------------------------------------------------------------------------

local ev_epoch = nil  -- read once per request
local wall_ms = 0  -- Redis's TIME in ms, set by the dispatch: the epoch when none is set

-- One event: kind, time, its subject's ids, then its figures as name, text pairs.
local function emit(kind, at, call_id, callback_id, caller, tier, queue, agent, ...)
  if not ev_epoch then
    ev_epoch = redis.call("GET", K_EVEPOCH)
    if not ev_epoch then
      -- The store's keys were lost under a running router (a Redis restart without persistence).
      ev_epoch = string.format("%d", wall_ms)
      redis.call("SET", K_EVEPOCH, ev_epoch)
      redis.call("SET", K_EVSEQ, 0)
    end
  end
  local seq = string.format("%d", redis.call("INCR", K_EVSEQ))
  local args = { "XADD", K_EVENTS, "MAXLEN", "~", EVENT_CAP, ev_epoch .. "-" .. seq,
    "kind", kind, "at", num(at) }
  local n = #args
  if call_id then args[n + 1] = "call_id"; args[n + 2] = call_id; n = n + 2 end
  if callback_id then args[n + 1] = "callback_id"; args[n + 2] = callback_id; n = n + 2 end
  if caller then args[n + 1] = "caller"; args[n + 2] = caller; n = n + 2 end
  if tier then args[n + 1] = "tier"; args[n + 2] = tier; n = n + 2 end
  if queue then args[n + 1] = "queue"; args[n + 2] = queue; n = n + 2 end
  if agent and agent ~= "" then args[n + 1] = "agent"; args[n + 2] = agent; n = n + 2 end
  local figures = { ... }
  for i = 1, #figures do args[n + i] = figures[i] end
  redis.call(unpack(args))
end

local function emit_call(kind, at, c, agent, ...)
  emit(kind, at, c.call_id, nil, c.caller, c.tier, c.queue, agent, ...)
end

local function emit_cb(kind, at, b, agent, ...)
  emit(kind, at, b.call_id, b.callback_id, b.caller, b.tier, b.queue, agent, ...)
end

local function flag(x) return x and "1" or "0" end

-- --- service-level tallies (RULES.tally) ------------------------------------------------------

-- The counters `kind` moves, into each of SLOTS: by minute and 15-minute interval (expiring),
-- and for the lifetime (with the histogram of answered waits, queue/metrics.py).
local function record(queue, tier, kind, at, value)
  local threshold = CFG.threshold[tier]
  local moves = RULES.tally[kind]
  local inc, top = {}, nil
  for i = 1, #moves, 2 do
    local field, amount = moves[i], moves[i + 1]
    if amount == "one" then
      inc[field] = 1
    elseif amount == "value" then
      inc[field] = value
    elseif amount == "within" then
      inc[field] = (value <= threshold) and 1 or 0
    elseif amount == "short" then
      inc[field] = (value < CFG.short_abandon) and 1 or 0
    else -- "max": a running maximum, not a sum
      top = field
    end
  end
  for _, slot in ipairs(SLOTS) do
    local width, ttl = slot[2], slot[3]
    local k = slot[1] .. ":" .. queue .. ":" .. tier
    if width > 0 then k = k .. ":" .. string.format("%d", math.floor(at / width)) end  -- %d: no %.14g
    for field, amount in pairs(inc) do
      if amount ~= 0 then redis.call("HINCRBYFLOAT", k, field, num(amount)) end
    end
    if top then
      local seen = tonumber(redis.call("HGET", k, top) or "0")
      if value > seen then redis.call("HSET", k, top, num(value)) end
    end
    if width == 0 and kind == RULES.histogram_kind then
      -- metrics.bucket_index, written a second time: the first bound >= the wait, else +Inf
      local index = #CFG.buckets
      for i, bound in ipairs(CFG.buckets) do
        if value <= bound then index = i - 1; break end
      end
      redis.call("HINCRBY", k, "wait_le_" .. index, 1)
    end
    if ttl > 0 then redis.call("EXPIRE", k, string.format("%d", ttl)) end
  end
end

-- --- calls ----------------------------------------------------------------------------------

local function load_call(id)
  local flat = redis.call("HGETALL", call_key(id))
  if #flat == 0 then return nil end
  local c = {}
  for i = 1, #flat, 2 do c[flat[i]] = flat[i + 1] end
  c.arrived = tonumber(c.arrived_at)
  c.seqn = tonumber(c.seq)
  c.rank = RANK[c.tier]
  return c
end

local function set_call(c, fields)
  local args = {}
  for field, value in pairs(fields) do
    if value == false then
      redis.call("HDEL", call_key(c.call_id), field)
      c[field] = nil
    else
      args[#args + 1] = field
      args[#args + 1] = value
      c[field] = value
    end
  end
  if #args > 0 then redis.call("HSET", call_key(c.call_id), unpack(args)) end
end

local function finish(kind, id, now)
  redis.call("ZADD", K_FINISHED, num(now), kind .. ":" .. id)
end

local function waited(c, now)
  local ending = c.answered_at or c.left_at
  local t = ending and tonumber(ending) or now
  return math.max(0, t - c.arrived)
end

local function is_aged(c, now)
  return CFG.aging > 0 and c.tier == "standard" and now - c.arrived > CFG.aging
end

local function lane_add(c)
  redis.call("ZADD", lane_key(c.queue, c.rank), c.seq, c.call_id)
  local limit = CFG.overflow[c.tier]
  if limit then redis.call("ZADD", K_DUE, num(c.arrived + limit), c.call_id) end
  if CFG.aging > 0 and c.tier == "standard" then
    redis.call("ZADD", arrivals_key(c.queue), num(c.arrived), c.call_id)
  end
end

local function lane_remove(c)
  redis.call("ZREM", lane_key(c.queue, c.rank), c.call_id)
  redis.call("ZREM", K_DUE, c.call_id)
  if CFG.aging > 0 and c.tier == "standard" then redis.call("ZREM", arrivals_key(c.queue), c.call_id) end
end

local function waiting_count(queue)
  local n = 0
  for rank = 0, 3 do n = n + redis.call("ZCARD", lane_key(queue, rank)) end
  return n
end

-- Standard calls that arrived strictly before now - aging: a prefix of the standard lane,
-- because arrival time never decreases as seq grows.
local function aged_count(queue, now)
  if CFG.aging <= 0 then return 0 end
  return redis.call("ZCOUNT", arrivals_key(queue), "-inf", "(" .. num(now - CFG.aging))
end

local function position(c, now)
  local q, s = c.queue, "(" .. c.seq  -- the seq as stored: no number to format
  local before = function(rank) return redis.call("ZCOUNT", lane_key(q, rank), "-inf", s) end
  local all = function(rank) return redis.call("ZCARD", lane_key(q, rank)) end
  if c.rank == 0 then return before(0) + 1 end
  if c.rank == 1 then return all(0) + before(1) + math.min(before(2), aged_count(q, now)) + 1 end
  if c.rank == 2 then
    if is_aged(c, now) then return all(0) + before(1) + before(2) + 1 end
    return all(0) + all(1) + before(2) + 1
  end
  return all(0) + all(1) + all(2) + before(3) + 1
end

-- The call that would be offered next in `queue`: {effective rank, seq, id}, or nil.
local function head(queue, now)
  local function first(rank)
    local got = redis.call("ZRANGE", lane_key(queue, rank), 0, 0, "WITHSCORES")
    if #got == 0 then return nil end
    return { rank, tonumber(got[2]), got[1] }
  end
  local vip = first(0)
  if vip then return vip end
  local mid, std = first(1), first(2)
  if std and CFG.aging > 0 then
    local arrived = tonumber(redis.call("HGET", call_key(std[3]), "arrived_at"))
    if now - arrived > CFG.aging and (not mid or std[2] < mid[2]) then return { 1, std[2], std[3] } end
  end
  if mid then return mid end
  if std then return std end
  return first(3)
end

-- --- opening hours (queue/hours.py) -----------------------------------------------------------

-- ARGV[4]: msgpack {queue = {start, end, s1, e1, s2, e2, ...}} for each queue with opening
-- hours, "" when none has any; decoded on first use in a run. A queue absent is always open.
local hours_map = nil
local function window(queue)
  if ARGV[4] == "" then return nil end
  if not hours_map then hours_map = cmsgpack.unpack(ARGV[4]) end
  return hours_map[queue]
end

-- The interval holding t (its index i: w[2i+1], w[2i+2]), or the first after it, or nil.
local function w_at(w, t)
  for i = 3, #w, 2 do
    if t < w[i + 1] then return i end
  end
  return nil
end

local function w_next_open(w, t)
  t = math.max(t, w[1])
  local i = w_at(w, t)
  if not i then return nil end
  return math.max(t, w[i])
end

local function w_is_open(w, t)
  return w_next_open(w, t) == math.max(t, w[1])
end

local function w_open_seconds(w, a, b)
  a = math.max(a, w[1])
  local total = 0
  for i = 3, #w, 2 do
    local lo, hi = math.max(w[i], a), math.min(w[i + 1], b)
    if hi > lo then total = total + (hi - lo) end
  end
  return total
end

local function w_after_open(w, t, seconds)
  t = math.max(t, w[1])
  local left = seconds
  for i = 3, #w, 2 do
    if w[i + 1] > t then
      local lo = math.max(w[i], t)
      if w[i + 1] - lo >= left then return lo + left end
      left = left - (w[i + 1] - lo)
    end
  end
  return nil
end

local function queue_open(queue, now)
  local w = window(queue)
  return not w or w_is_open(w, now)
end

-- queue/callbacks.py's `terms`: due, deadline, at_risk of a callback created at `at`.
local function cb_terms(queue, at)
  local open_rule = CFG.cb_rule == "open_hours"
  local w = window(queue)
  if not w then return at, at + (open_rule and CFG.cb_window_open or CFG.cb_window), false end
  local due = w_next_open(w, at)
  local deadline
  if open_rule then deadline = w_after_open(w, at, CFG.cb_window_open) else deadline = at + CFG.cb_window end
  if not due or not deadline then return due or at, deadline or (at + CFG.cb_window), true end
  return due, deadline, w_open_seconds(w, at, deadline) < CFG.cb_min_open
end

-- --- callbacks ------------------------------------------------------------------------------

local NOW = 0  -- this run's now, set by tick

local function load_cb(id)
  local flat = redis.call("HGETALL", cb_key(id))
  if #flat == 0 then return nil end
  local b = {}
  for i = 1, #flat, 2 do b[flat[i]] = flat[i + 1] end
  return b
end

local function cb_status(b, status, now)
  redis.call("HINCRBY", K_CBSTAT, b.status, -1)
  redis.call("HINCRBY", K_CBSTAT, status, 1)
  if b.at_risk == "true" and (status ~= "open" and status ~= "assigned") then
    redis.call("HINCRBY", K_CBSTAT, "at_risk", -1)
    redis.call("HINCRBY", K_CBSTAT, "at_risk:" .. b.queue, -1)
  end
  b.status = status
  redis.call("HSET", cb_key(b.callback_id), "status", status)
end

local function cb_close(b, status, now, agent)
  cb_status(b, status, now)
  emit_cb("callback_closed", now, b, agent, "reason", status, "deadline", b.deadline)
  redis.call("HSET", cb_key(b.callback_id), "closed_at", num(now))
  b.closed_at = num(now)
  if status == "completed" and now <= tonumber(b.deadline) then redis.call("HINCRBY", K_CBSTAT, "in_time", 1) end
  redis.call("HDEL", K_CBACTIVE, b.caller)
  redis.call("ZREM", K_CBACT, b.callback_id)
  redis.call("ZREM", cb_lane_key(b.queue, b.tier), b.callback_id)
  redis.call("ZADD", K_CBDONE, b.deadline, b.callback_id)
  redis.call("ZREM", ready_key(b.queue), b.callback_id)
  redis.call("ZREM", K_SNOOZED, b.callback_id)
  finish("b", b.callback_id, now)
end

local function open_callback(c, reason, at)
  local existing = redis.call("HGET", K_CBACTIVE, c.caller)
  local due, deadline, at_risk = cb_terms(c.queue, at)
  if existing then
    local k = cb_key(existing)
    deadline = math.min(tonumber(redis.call("HGET", k, "deadline")), deadline)
    redis.call("HSET", k, "deadline", num(deadline))
    redis.call("ZADD", K_CBACT, num(deadline), existing)
    local queue, tier = unpack(redis.call("HMGET", k, "queue", "tier"))
    redis.call("ZADD", cb_lane_key(queue, tier), num(deadline), existing)
    if redis.call("ZSCORE", ready_key(queue), existing) then
      redis.call("ZADD", ready_key(queue), num(deadline), existing)
    end
    set_call(c, { callback_id = existing })
    -- The call joins the callback: its timeline shows it (not counted as created).
    emit("callback_created", at, c.call_id, existing, c.caller, tier, queue, nil,
      "reason", reason, "deadline", num(deadline), "merged", "1")
    return
  end
  local id = "cb-" .. redis.call("INCR", K_CBSEQ)
  redis.call("HSET", cb_key(id),
    "callback_id", id, "caller", c.caller, "tier", c.tier, "queue", c.queue, "call_id", c.call_id,
    "reason", reason, "status", "open", "created_at", num(at), "deadline", num(deadline),
    "next_attempt_at", num(due), "attempts", 0, "record", c.record, "at_risk", at_risk and "true" or "false",
    "call_arrived_at", num(c.arrived), "waited_s", num(waited(c, at)))
  emit("callback_created", at, c.call_id, id, c.caller, c.tier, c.queue, nil, "reason", reason, "deadline", num(deadline))
  redis.call("HINCRBY", K_CBSTAT, "open", 1)
  if at_risk then
    redis.call("HINCRBY", K_CBSTAT, "at_risk", 1)
    redis.call("HINCRBY", K_CBSTAT, "at_risk:" .. c.queue, 1)
  end
  redis.call("HSET", K_CBACTIVE, c.caller, id)
  if due <= NOW then
    redis.call("ZADD", ready_key(c.queue), num(deadline), id)
  else  -- created while its queue is closed: due from the next opening
    redis.call("ZADD", K_SNOOZED, num(due), id)
  end
  redis.call("ZADD", K_CBACT, num(deadline), id)
  redis.call("ZADD", cb_lane_key(c.queue, c.tier), num(deadline), id)
  set_call(c, { callback_id = id })
end

-- A held place (issue 16 item 3), already out of its lane, stops holding: its callback is
-- handed out now ("handed_out"), joins the callbacks by deadline ("expired": the place's wait
-- ran out) or was closed ("resolved"). MemoryCallStore._release_hold, written a second time.
local function release_hold(c, at, how)
  local id = c.callback_id
  redis.call("HSET", cb_key(id), "held", "false")
  redis.call("HINCRBY", K_HELD, c.queue .. "|" .. c.tier, -1)
  local b = load_cb(id)
  emit_cb("hold_released", at, b, nil, "how", how)
  if how == "expired" and (b.status == "open" or b.status == "assigned") then
    local due = tonumber(b.next_attempt_at)
    if due <= NOW then
      redis.call("ZADD", ready_key(b.queue), b.deadline, id)
    else
      redis.call("ZADD", K_SNOOZED, num(due), id)
    end
  end
  finish("c", c.call_id, at)
end

-- The caller got through (or took an abandoned place back): an open callback is moot, and a
-- place it held leaves the line (MemoryCallStore._resolve_callback).
local function resolve_cb(b, now)
  if RULES.resolved_by_inbound[b.status] then
    if b.held == "true" then  -- its place leaves the line too
      local h = load_call(b.call_id)
      lane_remove(h)
      release_hold(h, now, "resolved")
    end
    cb_close(b, "resolved_inbound", now, nil)
  end
end

local function resolve_inbound(caller, now)
  local id = redis.call("HGET", K_CBACTIVE, caller)
  if not id then return end
  resolve_cb(load_cb(id), now)
end

-- --- moves shared by several ops ------------------------------------------------------------

local function overflow(c, reason, at)
  set_call(c, { status = "overflowed", overflow_reason = reason, left_at = num(at) })
  local wait = waited(c, at)
  record(c.queue, c.tier, "overflowed", at, wait)
  emit_call("overflow", at, c, nil, "wait_s", num(wait), "reason", reason)
  if RULES.callback_tier[c.tier] then open_callback(c, reason, at) end
  finish("c", c.call_id, at)
end

-- Take a waiting or offered call out of wherever it sits, freeing its agent.
local function take_out(c)
  if c.status == "waiting" then
    lane_remove(c)
  elseif c.status == "offered" then
    redis.call("ZREM", K_OFFERS, c.call_id)
    redis.call("HDEL", K_HOLD, c.agent_id)
  end
end

-- Ring-no-answer: back to its original place, unless its wait has run out.
local function back_to_queue(c, now)
  emit_call("ring_no_answer", now, c, c.agent_id)
  take_out(c)
  set_call(c, { status = "waiting", agent_id = false, offered_at = false })
  local limit = CFG.overflow[c.tier]
  if limit and now >= c.arrived + limit then
    overflow(c, "max_wait", now)
  else
    lane_add(c)
  end
end

local function forget(member)
  local kind, id = member:sub(1, 1), member:sub(3)
  if kind == "c" then
    redis.call("DEL", call_key(id))
  else
    local b = load_cb(id)
    if b then
      redis.call("HINCRBY", K_CBSTAT, b.status, -1)
      if b.status == "completed" and tonumber(b.closed_at) <= tonumber(b.deadline) then
        redis.call("HINCRBY", K_CBSTAT, "in_time", -1)
      end
      redis.call("ZREM", K_CBDONE, id)
      redis.call("DEL", cb_key(id))
    end
  end
end

-- Everything that fell due up to now, oldest first; a few O(log n) reads when nothing did.
local function tick(given)
  local now = math.max(given, tonumber(redis.call("GET", K_CLOCK) or "0"))
  NOW = now
  redis.call("SET", K_CLOCK, num(now))
  -- Back in the queue when the ringing stopped, so an overflow due meanwhile lands on time.
  local offers = redis.call("ZRANGEBYSCORE", K_OFFERS, "-inf", num(now - CFG.offer_timeout), "WITHSCORES")
  for i = 1, #offers, 2 do
    back_to_queue(load_call(offers[i]), tonumber(offers[i + 1]) + CFG.offer_timeout)
  end
  local due = redis.call("ZRANGEBYSCORE", K_DUE, "-inf", num(now), "WITHSCORES")
  for i = 1, #due, 2 do
    local c = load_call(due[i])
    lane_remove(c)
    if c.status == "callback_requested" then  -- a held place's wait ran out: an ordinary callback
      release_hold(c, tonumber(due[i + 1]), "expired")
    else
      overflow(c, "max_wait", tonumber(due[i + 1]))
    end
  end
  for _, id in ipairs(redis.call("ZRANGEBYSCORE", K_SNOOZED, "-inf", num(now))) do
    redis.call("ZREM", K_SNOOZED, id)
    local k = cb_key(id)
    redis.call("ZADD", ready_key(redis.call("HGET", k, "queue")), redis.call("HGET", k, "deadline"), id)
  end
  for _, field in ipairs(redis.call("ZRANGEBYSCORE", K_RESUMEQ, "-inf", "(" .. num(now))) do
    redis.call("ZREM", K_RESUMEQ, field)
    redis.call("HDEL", K_RESUME, field)
  end
  for _, member in ipairs(redis.call("ZRANGEBYSCORE", K_FINISHED, "-inf", num(now - CFG.retain))) do
    redis.call("ZREM", K_FINISHED, member)
    forget(member)
  end
  return now
end

-- One request: `op` with ARGV's arguments, once the deadline is checked and the sweep done (see
-- the dispatch at the end).
local function run(op)
  local time = redis.call("TIME")
  if tonumber(time[1]) + tonumber(time[2]) / 1e6 > tonumber(ARGV[3]) then return { "late" } end
  wall_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  local now = tick(tonumber(ARGV[2]))
  return op(now, unpack(ARGV, 5))
end

-- --- replies --------------------------------------------------------------------------------

-- The wait to quote a waiting call at `pos` (estimate.QueueLoad.estimate), nil before any AHT.
local function estimate_for(c, pos, now)
  local got = redis.call("HMGET", est_key(c.queue), "aht", "talk", "a0", "t0", "a1", "t1", "a2", "t2")
  if not got[1] then return nil end
  local span = now - tonumber(redis.call("GET", KEY.started) or num(now))
  local push = 0.0
  for rank = 0, c.rank - 1 do
    push = push + est_arrival_rate(tonumber(got[3 + 2 * rank] or "0"), tonumber(got[4 + 2 * rank] or "0"), now, span)
  end
  local idle = redis.call("ZCOUNT", idle_key(c.queue), num(now - EST.idle_ttl), "+inf")
  return est_wait(pos, tonumber(got[2] or "0"), idle, tonumber(got[1]), push)
end

-- {"call", fields, position|false, estimated wait|false, callback fields|false, now}. A waiting
-- call's announced position (field `announce`) only ever goes down.
local function call_reply(c, now, known_position, known_estimate)
  local pos, estimate = false, false
  if c.status == "waiting" then
    pos = known_position or position(c, now)
    local w = known_estimate or estimate_for(c, pos, now)
    if w then estimate = num(w) end
    local before = tonumber(c.announce)
    local announced = est_announce(before, pos)
    if announced ~= before then set_call(c, { announce = announced }) end
  end
  local cb = false
  if c.callback_id then cb = redis.call("HGETALL", cb_key(c.callback_id)) end
  -- whether the caller holds an active callback: the offer is shown only to one who does not
  local has_cb = c.status == "waiting" and redis.call("HEXISTS", K_CBACTIVE, c.caller) or 0
  return { "call", redis.call("HGETALL", call_key(c.call_id)), pos, estimate, cb, num(now), has_cb }
end

local function existing_call(id)
  local c = load_call(id)
  if not c then return nil, fail("call_not_found", "no call '" .. id .. "'") end
  return c
end

-- Who asks, against the call's agent: decisions.poster, written a second time ("" is no agent).
local function poster(agent, holder)
  if agent == "" then return "none" end
  if agent == holder then return "same" end
  return "other"
end

-- The move `action` makes on `c` (RULES.call): nil and the reply to send for a no-op or a
-- refusal, else the decision to apply.
local function decide(action, c, agent, now)
  local d = RULES.call[action][c.status][poster(agent, c.agent_id)]
  if d.kind == "noop" then return nil, call_reply(c, now) end
  if d.kind == "refuse" then
    return nil, refusal(d, { call = quoted(c.call_id), status = c.status, holder = quoted(c.agent_id),
      agent = quoted(agent) })
  end
  return d
end

-- --- ops ------------------------------------------------------------------------------------

local ops = {}

-- The abandoned call a new one may take back (MemoryCallStore._take_resume, written a second
-- time): off the resumable ones; `c` then holds its tier, arrival and seq, and names it.
local function take_resume(c, rkey)
  local field = c.queue .. "|" .. rkey
  local old_id = redis.call("HGET", K_RESUME, field)
  if not old_id then return nil end
  redis.call("HDEL", K_RESUME, field)
  redis.call("ZREM", K_RESUMEQ, field)
  local old = load_call(old_id)
  if not old or old.status ~= "abandoned" then return nil end
  set_call(c, { tier = old.tier, arrived_at = old.arrived_at, seq = old.seq, resumed_from = old_id })
  c.arrived, c.seqn, c.rank = old.arrived, old.seqn, RANK[old.tier]
  return old
end

-- A new call (its call_id unused), routed. `rkey`: the caller's resume key (calls.resume_key), ""
-- when resume_window_s is off.
local function enqueue(now, call_id, caller, tier, queue, rec, rkey)
  local seq = redis.call("INCR", K_SEQ)
  -- The call as load_call would read it back, kept rather than read (and its numbers parsed) again.
  local c = { call_id = call_id, caller = caller, tier = tier, queue = queue, status = "waiting",
    arrived_at = num(now), seq = string.format("%d", seq), record = rec }
  local write = { "HSET", call_key(call_id), "call_id", call_id, "caller", caller, "tier", tier, "queue", queue,
    "status", "waiting", "arrived_at", c.arrived_at, "seq", c.seq, "record", rec }
  if rkey and rkey ~= "" then
    c.rkey = rkey
    write[#write + 1] = "rkey"
    write[#write + 1] = rkey
  end
  redis.call(unpack(write))
  c.arrived, c.seqn, c.rank = now, seq, RANK[tier]
  local limit = CFG.max_waiting[queue]
  local closed = not queue_open(queue, now)
  local away = closed or (limit and not RULES.admitted_when_full[tier] and waiting_count(queue) >= limit)
  -- A re-call admitted within resume_window_s of its abandon takes back that place and tier.
  local old = nil
  if not away and c.rkey then old = take_resume(c, c.rkey) end
  record(queue, c.tier, "arrived", now, 0)
  if old and old.callback_id then
    -- The callback the abandon opened or joined is moot; a place it held leaves first.
    local b = load_cb(old.callback_id)
    if b then resolve_cb(b, now) end
  end
  if away then
    emit_call("enter", now, c, nil, "position", "0")  -- turned away at the door, never in line
    overflow(c, closed and RULES.closed_reason or "queue_full", now)
    return call_reply(c, now)
  end
  lane_add(c)
  local pos = position(c, now)
  local ek, rank = est_key(queue), c.rank
  local a, t = "a" .. RANK_TEXT[rank], "t" .. RANK_TEXT[rank]
  local last = redis.call("HMGET", ek, a, t)
  redis.call("HSET", ek, a, num(est_bump(tonumber(last[1] or "0"), tonumber(last[2] or "0"), now)), t, num(now))
  emit_call("enter", now, c, nil, "position", string.format("%d", pos))
  if old then
    -- Counters move forward: the abandon stays, a `resumed` is added.
    local was = waited(old, now)  -- the abandon's wait: `short` tells the archive what record counted
    record(queue, c.tier, "resumed", now, was)
    emit_call("resume", now, c, nil, "resumed_from", old.call_id, "position", pos, "short",
      flag(was < CFG.short_abandon))
  end
  local w = estimate_for(c, pos, now)
  if w then set_call(c, { quoted = num(w) }) end  -- compared with the real wait at answer
  return call_reply(c, now, pos, w)
end

function ops.route(now, call_id, caller, tier, queue, rec, rkey)
  local c = load_call(call_id)
  if c then
    if c.caller ~= caller or c.queue ~= queue then
      return fail("call_id_conflict", "call_id '" .. call_id .. "' is already used by a call from '" ..
        c.caller .. "' in queue '" .. c.queue .. "'")
    end
    local reply = call_reply(c, now)
    reply[1] = "existing"
    return reply
  end
  return enqueue(now, call_id, caller, tier, queue, rec, rkey)
end

-- Single Redis only (a cluster keeps tier buckets in other slots): the tier look-up and the
-- enqueue in one script, one round trip. The bucket blob is codec's msgpack array
-- [rank, field id, value, ..., (shared id)]; ids index the list at `fields_key`, where a shared
-- set (an even-length array's last item) is "\0" and JSON [field id, value, ...]. The record is
-- stored as the map a TierRecord decodes from, exactly as `route` stores the one Python encodes.
function ops.route_lookup(now, call_id, caller, queue, bucket_key, fields_key, default_tier)
  if redis.call("EXISTS", call_key(call_id)) == 1 then
    return ops.route(now, call_id, caller, default_tier, queue, "")
  end
  local blob = redis.call("HGET", bucket_key, caller)
  local rec
  local tier = default_tier
  local customer = ""
  if blob then
    local items = cmsgpack.unpack(blob)
    tier = TIER_OF[items[1]]
    if #items > 1 then
      -- Only the list's head up to the highest id this record names: a graded table's list
      -- also holds every shared set (up to 65,536 entries), which a route must not read whole.
      local last = #items
      local shared = nil
      if last % 2 == 0 then
        shared = cjson.decode(string.sub(redis.call("LINDEX", fields_key, items[last]), 2))
        last = last - 1
      end
      local top = 0
      for i = 2, last, 2 do top = math.max(top, items[i]) end
      if shared then
        for i = 1, #shared, 2 do top = math.max(top, shared[i]) end
      end
      local names = redis.call("LRANGE", fields_key, 0, top)
      local crm = {}
      if shared then
        for i = 1, #shared, 2 do crm[names[shared[i] + 1]] = shared[i + 1] end
      end
      for i = 2, last, 2 do crm[names[items[i] + 1]] = items[i + 1] end
      if crm.customer_id then customer = tostring(crm.customer_id) end
      rec = cmsgpack.pack({ caller = caller, tier = tier, known = true, crm = crm })
    else
      rec = cmsgpack.pack({ caller = caller, tier = tier, known = true })
    end
  else
    rec = cmsgpack.pack({ caller = caller, tier = tier, known = false })
  end
  -- calls.resume_key, written a second time
  return enqueue(now, call_id, caller, tier, queue, rec, CFG.resume > 0 and (caller .. "|" .. customer) or "")
end

function ops.get(now, call_id)
  local c, err = existing_call(call_id)
  if not c then return err end
  return call_reply(c, now)
end

function ops.answer(now, call_id, agent)
  local c, err = existing_call(call_id)
  if not c then return err end
  local move, reply = decide("answer", c, agent, now)
  if not move then return reply end
  if move.free_agent then
    local held = redis.call("HGET", K_HOLD, agent)
    if held then return fail("agent_busy", "agent '" .. agent .. "' already holds " .. held) end
  end
  take_out(c)
  set_call(c, { status = move.to, agent_id = agent, answered_at = num(now), offered_at = false })
  redis.call("HSET", K_HOLD, agent, "c:" .. call_id)
  local wait = waited(c, now)
  record(c.queue, c.tier, "answered", now, wait)
  emit_call("answer", now, c, agent, "wait_s", num(wait), "threshold_s", num(CFG.threshold[c.tier]))
  redis.call("HINCRBY", est_key(c.queue), "talk", 1)
  redis.call("ZREM", idle_key(c.queue), agent)
  if c.quoted then est_accuracy(acc_key(c.queue, c.tier), wait, tonumber(c.quoted)) end
  resolve_inbound(c.caller, now)
  return call_reply(c, now)
end

function ops.requeue(now, call_id, agent)
  local c, err = existing_call(call_id)
  if not c then return err end
  local move, reply = decide("requeue", c, agent, now)
  if not move then return reply end
  back_to_queue(c, now)
  return call_reply(c, now)
end

function ops.abandon(now, call_id)
  local c, err = existing_call(call_id)
  if not c then return err end
  local move, reply = decide("abandon", c, "", now)
  if not move then return reply end
  take_out(c)
  set_call(c, { status = move.to, left_at = num(now) })
  local wait = waited(c, now)
  record(c.queue, c.tier, "abandoned", now, wait)
  emit_call("abandon", now, c, nil, "wait_s", num(wait), "short", flag(wait < CFG.short_abandon),
    "threshold_s", num(CFG.threshold[c.tier]))
  if RULES.callback_tier[c.tier] and wait >= CFG.short_abandon then open_callback(c, "abandoned", now) end
  if CFG.resume > 0 and c.rkey then
    local field = c.queue .. "|" .. c.rkey
    redis.call("HSET", K_RESUME, field, call_id)
    redis.call("ZADD", K_RESUMEQ, num(now + CFG.resume), field)
  end
  finish("c", call_id, now)
  return call_reply(c, now)
end

-- The callback offer taken (issue 16 item 3): the call leaves the line as callback_requested;
-- its place stays in its lane (and in K_DUE: when that wait runs out the hold is released),
-- held for a callback (reason `requested`) that `next` hands out when the place is first.
function ops.callback(now, call_id)
  local c, err = existing_call(call_id)
  if not c then return err end
  local move, reply = decide("callback", c, "", now)
  if not move then return reply end
  local active = redis.call("HGET", K_CBACTIVE, c.caller)
  if active then
    return fail("callback_exists", "caller '" .. c.caller .. "' already has callback '" .. active .. "' active")
  end
  set_call(c, { status = move.to, left_at = num(now), quoted = false, announce = false })
  local wait = waited(c, now)
  record(c.queue, c.tier, "callback_requested", now, wait)
  emit_call("callback_request", now, c, nil, "wait_s", num(wait))
  open_callback(c, RULES.requested_reason, now)
  local id = c.callback_id
  redis.call("ZREM", ready_key(c.queue), id)  -- on no work list while its place waits
  redis.call("ZREM", K_SNOOZED, id)
  redis.call("HSET", cb_key(id), "held", "true")
  redis.call("HINCRBY", K_HELD, c.queue .. "|" .. c.tier, 1)
  return call_reply(c, now)
end

ops["end"] = function(now, call_id)
  local c, err = existing_call(call_id)
  if not c then return err end
  local move, reply = decide("end", c, "", now)
  if not move then return reply end
  set_call(c, { status = move.to, ended_at = num(now) })
  redis.call("HDEL", K_HOLD, c.agent_id)
  local handle = now - tonumber(c.answered_at)
  record(c.queue, c.tier, "ended", now, handle)
  local ek = est_key(c.queue)
  local was = redis.call("HMGET", ek, "aht", "ahtn")
  local aht, n = est_next_aht(tonumber(was[1] or "0"), tonumber(was[2] or "0"), handle)
  redis.call("HSET", ek, "aht", num(aht), "ahtn", n)
  redis.call("HINCRBY", ek, "talk", -1)
  emit_call("end", now, c, c.agent_id, "handle_s", num(handle))
  finish("c", call_id, now)
  return call_reply(c, now)
end

-- An agent `next` found nothing for is idle in the queues it asked for, until it takes work
-- (estimate.QueueLoad.idle and .busy); those idle longer than EST.idle_ttl are dropped here.
local function mark_agent(agent, queues, idle, now)
  for _, queue in ipairs(queues) do
    local k = idle_key(queue)
    if idle then
      redis.call("ZADD", k, num(now), agent)
      redis.call("ZREMRANGEBYSCORE", k, "-inf", "(" .. num(now - EST.idle_ttl))
    else
      redis.call("ZREM", k, agent)
    end
  end
end

-- {"work", call reply|false, callback fields|false}; a call's reply carries its record blob.
-- `only`: "callbacks" for the back office (store.WorkKind): never a call, and not counted idle.
function ops.next(now, agent, only, ...)
  local queues = { ... }
  local callbacks_only = only == "callbacks"
  local held = redis.call("HGET", K_HOLD, agent)
  if held then
    local kind, id = held:sub(1, 1), held:sub(3)
    if kind == "b" then return { "work", false, redis.call("HGETALL", cb_key(id)) } end
    if callbacks_only then
      return fail("agent_busy", "agent '" .. agent .. "' holds call '" .. id .. "': not a callback")
    end
    local c = load_call(id)
    if c.status ~= "offered" then
      return fail("agent_busy", "agent '" .. agent .. "' is on call '" .. id .. "': end it first")
    end
    return { "work", call_reply(c, now), false }
  end
  local best, best_queue = nil, nil
  for _, queue in ipairs(callbacks_only and {} or queues) do
    local h = head(queue, now)
    if h and (not best or h[1] < best[1] or (h[1] == best[1] and h[2] < best[2])) then
      best, best_queue = h, queue
    end
  end
  -- The callback due soonest that may be handed out now: next attempt come, queue open.
  local cb_best, cb_score = nil, nil
  for _, queue in ipairs(queues) do
    local got = redis.call("ZRANGE", ready_key(queue), 0, 0, "WITHSCORES")
    if #got > 0 then
      local score = tonumber(got[2])
      if (not cb_best or score < cb_score or (score == cb_score and got[1] < cb_best[1])) and queue_open(queue, now) then
        cb_best, cb_score = { got[1], queue }, score
      end
    end
  end
  -- decisions.next_pick, walking RULES.next_order: the first step the best call or callback fills.
  local pick = nil
  for _, step in ipairs(RULES.next_order) do
    if step[1] == "calls" then
      if best and best[1] == step[2] then pick = "call"; break end
    elseif cb_best and (step[2] == "rest" or (CFG.cb_urgent > 0 and cb_score - now <= CFG.cb_urgent)) then
      pick = "callback"; break
    end
  end
  if pick == "call" and redis.call("HGET", call_key(best[3]), "status") == "callback_requested" then
    -- a held place is first: it leaves the line and its callback is the work, handed out below
    local c = load_call(best[3])
    lane_remove(c)
    release_hold(c, now, "handed_out")
    pick, cb_best = "callback", { c.callback_id, best_queue }
  end
  if pick == "call" then
    local c = load_call(best[3])
    lane_remove(c)
    set_call(c, { status = "offered", agent_id = agent, offered_at = num(now) })
    redis.call("ZADD", K_OFFERS, num(now), c.call_id)
    redis.call("HSET", K_HOLD, agent, "c:" .. c.call_id)
    emit_call("offer", now, c, agent)
    mark_agent(agent, queues, false, now)
    return { "work", call_reply(c, now), false }
  end
  if not pick then
    if not callbacks_only then mark_agent(agent, queues, true, now) end
    return { "none" }
  end
  if not callbacks_only then mark_agent(agent, queues, false, now) end
  local id = cb_best[1]
  redis.call("ZREM", ready_key(cb_best[2]), id)
  local b = load_cb(id)
  cb_status(b, "assigned", now)
  redis.call("HSET", cb_key(id), "agent_id", agent, "assigned_at", num(now))
  redis.call("HDEL", cb_key(id), "last_outcome", "last_outcome_agent")  -- a new attempt
  redis.call("HSET", K_HOLD, agent, "b:" .. id)
  emit_cb("callback_assigned", now, b, agent, "attempt", tonumber(b.attempts) + 1)
  return { "work", false, redis.call("HGETALL", cb_key(id)) }
end

-- Who posts an outcome: decisions.outcome_poster, written a second time ("" is no agent).
local function outcome_poster(agent, outcome, b)
  if agent == "" then return "none" end
  if b.last_outcome == outcome and b.last_outcome_agent == agent then return "repeat" end
  if agent == b.agent_id then return "holder" end
  return "other"
end

-- callbacks.call_at_fault: the first of RULES.call_at_checks a rescheduled outcome's call_at
-- fails (its code and filled message), or nil. `call_at` is nil when the request gave none.
local function call_at_fault(b, call_at, now)
  local deadline = tonumber(b.deadline)
  for _, check in ipairs(RULES.call_at_checks) do
    local name, failed = check[1], false
    if name == "given" then
      failed = call_at == nil
    elseif name == "future" then
      failed = call_at <= now
    elseif name == "by_deadline" then
      failed = call_at > deadline
    else
      local w = window(b.queue)
      failed = w ~= nil and not w_is_open(w, call_at)
    end
    if failed then
      local vars = { call_at = num(call_at or 0), now = num(now), deadline = num(deadline), queue = quoted(b.queue) }
      return fail(check[2], (check[3]:gsub("{([%a_]+)}", vars)))
    end
  end
  return nil
end

-- Owned and idempotent per attempt (queue/callbacks.py): RULES.outcome decides. `agent` is ""
-- when the request named none; `has_note` is "1" when it carried a note (any text, even ""
-- or "\0": no value of the note itself stands for "no note"); `call_at` is "" when none was given.
function ops.outcome(now, id, outcome, agent, note, has_note, call_at)
  local b = load_cb(id)
  if not b then return fail("callback_not_found", "no callback '" .. id .. "'") end
  local k = cb_key(id)
  local d = RULES.outcome[outcome][b.status][outcome_poster(agent, outcome, b)]
  if d.kind == "noop" then
    return { "callback", redis.call("HGETALL", k) }  -- a retried outcome: the callback as it is
  end
  if d.kind == "refuse" then
    return refusal(d, { callback = quoted(id), status = b.status, holder = quoted(b.agent_id), agent = quoted(agent) })
  end
  local asked = tonumber(call_at or "")
  if d.due == "asked" then
    local fault = call_at_fault(b, asked, now)
    if fault then return fault end
  end
  if has_note == "1" then redis.call("HSET", k, "note", note) end
  redis.call("HDEL", K_HOLD, b.agent_id)
  redis.call("HDEL", k, "agent_id", "assigned_at")
  redis.call("HSET", k, "last_outcome", outcome, "last_outcome_agent", agent)
  local attempts = tonumber(b.attempts)
  if d.attempt then attempts = redis.call("HINCRBY", k, "attempts", 1) end
  emit_cb("callback_outcome", now, b, agent, "outcome", outcome, "attempts", attempts)
  local retry_at = now + CFG.cb_retry
  local due = nil
  if d.closes then
    cb_close(b, d.closes, now, agent)
  elseif d.due ~= "asked" and (attempts >= CFG.cb_attempts or retry_at > tonumber(b.deadline)) then
    cb_close(b, RULES.give_up_status, now, agent)
  else
    due = d.due == "asked" and asked or retry_at
    cb_status(b, RULES.retry_status, now)
    redis.call("HSET", k, "next_attempt_at", num(due))
    redis.call("ZADD", K_SNOOZED, num(due), id)
  end
  -- The attempt log (callbacks.Attempt), JSON in the hash, instants as text (cjson keeps 14
  -- digits of a number), at most RULES.attempt_log_cap entries.
  local log = b.attempt_log and cjson.decode(b.attempt_log) or {}
  log[#log + 1] = { at = num(now), agent_id = agent, outcome = outcome, taken_at = b.assigned_at,
    note = has_note == "1" and note or nil, next_attempt_at = due and num(due) or nil }
  while #log > RULES.attempt_log_cap do table.remove(log, 1) end
  redis.call("HSET", k, "attempt_log", cjson.encode(log))
  return { "callback", redis.call("HGETALL", k) }
end

function ops.sweep(now)
  return { "ok", num(now) }
end

-- Per queue × tier: waiting now, the oldest arrival, callbacks active and overdue, after the sweep;
-- then, apart, each lane's estimate-accuracy counters.
local function lanes(now, queues)
  local out, acc = {}, {}
  for _, queue in ipairs(queues) do
    for rank = 0, 3 do
      local k = lane_key(queue, rank)
      local count = redis.call("ZCARD", k)
      local oldest = false
      if count > 0 then
        local first = redis.call("ZRANGE", k, 0, 0)[1]
        oldest = redis.call("HGET", call_key(first), "arrived_at")
      end
      local cbl = cb_lane_key(queue, TIER_OF[rank])
      out[#out + 1] = {
        queue, TIER_OF[rank], count, oldest, redis.call("ZCARD", cbl), redis.call("ZCOUNT", cbl, "-inf", "(" .. num(now)),
        tonumber(redis.call("HGET", K_HELD, queue .. "|" .. TIER_OF[rank]) or "0"),  -- held places, in count
      }
      -- the quotes' accuracy counters of the lane (queue/wait_accuracy.py), in the same order
      acc[#acc + 1] = redis.call("HGETALL", acc_key(queue, TIER_OF[rank]))
    end
  end
  return out, acc
end

-- Tally hashes of `family` (minute or interval) read in the script, not as a pipeline of one
-- HGETALL per hash: the dashboard's reads then cost its router one command to pack and parse.
-- `args` from `i` on: queue, tier, a count n, then n slot numbers; again for each queue × tier.
-- One list of hashes per queue × tier, in the order given.
local function tally_hashes(family, args, i)
  local out = {}
  while i <= #args do
    local prefix = KEY[family] .. ":" .. args[i] .. ":" .. args[i + 1] .. ":"
    local n = tonumber(args[i + 2])
    local hashes = {}
    for j = 1, n do hashes[j] = redis.call("HGETALL", prefix .. args[i + 2 + j]) end
    out[#out + 1] = hashes
    i = i + 3 + n
  end
  return out
end

function ops.tallies(now, family, ...)
  return { "tallies", tally_hashes(family, { ... }, 1), num(now) }
end

-- /admin/sla in one round trip: the lanes of the first `nqueues` arguments, then the tallies
-- the rest name (as `tally_hashes`).
function ops.sla(now, family, nqueues, ...)
  local args = { ... }
  local n = tonumber(nqueues)
  local out, acc = lanes(now, { unpack(args, 1, n) })
  return { "sla", out, num(now), acc, tally_hashes(family, args, n + 1) }
end

-- Everything /metrics shows: lanes, lifetime tallies per queue × tier, callback counts.
function ops.metrics(now, ...)
  local out, acc = lanes(now, { ... })
  local life = {}
  for _, lane in ipairs(out) do life[#life + 1] = redis.call("HGETALL", life_key(lane[1], lane[2])) end
  local overdue = redis.call("ZCOUNT", K_CBACT, "-inf", "(" .. num(now))
  return { "metrics", out, life, redis.call("HGETALL", K_CBSTAT), overdue, num(now), acc }
end

-- Members compared as Redis orders equal scores: byte by byte (Lua's `<` follows the locale).
local function bytes_le(a, b)
  if a == b then return true end
  for i = 1, math.min(#a, #b) do
    local x, y = a:byte(i), b:byte(i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

-- The rank of the first member after (score, member) in the set's order: O(log² n), whether
-- or not that member is still there.
local function rank_after(k, score, member)
  local lo = redis.call("ZCOUNT", k, "-inf", "(" .. score)
  local hi = redis.call("ZCOUNT", k, "-inf", score)
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if bytes_le(redis.call("ZRANGE", k, mid, mid)[1], member) then lo = mid + 1 else hi = mid end
  end
  return lo
end

-- One page of a supervisors' list (queue/paging.py): at most `limit` callbacks by (deadline,
-- id) after the cursor's (score, id), "" for the first page, and 1 when more follow. The
-- work is bounded by the page, never by the backlog: the caller holds limit to MAX_PAGE.
function ops.callbacks(now, which, limit, after_score, after_id)
  limit = tonumber(limit)
  local k = (which == "done") and K_CBDONE or K_CBACT
  local start = 0
  if after_score ~= "" then start = rank_after(k, after_score, after_id) end
  local got = redis.call("ZRANGE", k, start, start + limit, "WITHSCORES")
  local out, more = {}, 0
  for i = 1, #got, 2 do
    if which == "overdue" and tonumber(got[i + 1]) >= now then break end
    if #out == limit then more = 1; break end
    out[#out + 1] = redis.call("HGETALL", cb_key(got[i]))
  end
  return { "callbacks", out, more }
end

-- The team lead's view (callback_index.CallbackIndex.queue_load, store.Workload): per queue,
-- active callbacks, overdue, by deadline in [edge i, edge i+1) (the first edge is now), at
-- risk; then every agent holding a callback, with it. `n` edges, then the queues. Bounded:
-- queues × tiers × edges ZCOUNTs, and one read per holding agent.
function ops.workload(now, n, ...)
  local args = { ... }
  n = tonumber(n)
  local edges = { num(now) }
  for i = 2, n do edges[i] = args[i - 1] end  -- the first edge is now: not sent
  local out = {}
  for qi = n, #args do
    local queue = args[qi]
    local total, overdue, spans = 0, 0, {}
    for i = 1, n - 1 do spans[i] = 0 end
    for rank = 0, 3 do
      local k = cb_lane_key(queue, TIER_OF[rank])
      total = total + redis.call("ZCARD", k)
      overdue = overdue + redis.call("ZCOUNT", k, "-inf", "(" .. edges[1])
      for i = 1, n - 1 do spans[i] = spans[i] + redis.call("ZCOUNT", k, edges[i], "(" .. edges[i + 1]) end
    end
    out[#out + 1] = { queue, total, overdue, spans, redis.call("HGET", K_CBSTAT, "at_risk:" .. queue) or "0" }
  end
  local holders = {}
  local held = redis.call("HGETALL", K_HOLD)
  for i = 1, #held, 2 do
    if held[i + 1]:sub(1, 1) == "b" then
      holders[#holders + 1] = { held[i], redis.call("HGETALL", cb_key(held[i + 1]:sub(3))) }
    end
  end
  return { "workload", out, holders, num(now) }
end

function ops.cbsummary(now)
  local overdue = redis.call("ZCOUNT", K_CBACT, "-inf", "(" .. num(now))
  return { "summary", redis.call("HGETALL", K_CBSTAT), overdue }
end

-- --- the dispatch ------------------------------------------------------------------------------

-- One request. ARGV: op name, the caller's (logical) clock, the request's deadline, the
-- opening-hour windows (see `window`), then the op's own arguments.
-- The deadline is real wall-clock time (epoch seconds, the tolerated clock skew already taken
-- off by the router), checked against Redis's own TIME, not the logical clock: a request that
-- reaches Redis after its router gave up (a stall, a fork, a slow disk) changes nothing.
-- The per-request state above starts empty: the library's locals live on between requests, and
-- what one request memoised (its now, the epoch it read, the hours it unpacked) must not leak
-- into the next.
local function dispatch(_, args)
  ARGV = args
  num_text, ev_epoch, wall_ms, hours_map, NOW = {}, nil, 0, nil, 0
  local op = ops[ARGV[1]]
  if not op then return fail("unknown_op", "no op " .. tostring(ARGV[1])) end
  return run(op)
end

redis.register_function(ENGINE_FUNCTION, dispatch)
