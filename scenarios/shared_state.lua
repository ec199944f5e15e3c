-- shared_state.lua: a Manager's dict, list, queue and counter (a round trip per access, reads are copies) against shared memory (a memory access, racy without its lock) (document 002).
--
-- Document 002, sections 1.3 and 1.4: processes share nothing, so state is
-- shared through multiprocessing.Value and Array (shared memory, with a
-- lock) or through a Manager (a server process holding dict, list, Queue,
-- Namespace, whose proxies send every access to it; it "uses a lot of
-- resources"). Its program: 20 apply_async tasks run `d[k] = v` on a manager
-- dict, and every one lands. Its warning: apart from assignment, operations
-- on an element act on a COPY: `d['k'] = []; d['k'].append(x)` changes
-- nothing. Here pb.manager is the manager (a process on a Unix socket) and
-- pb.shared the shared memory; the tasks do the accesses, the strategies
-- are the document's apply_async (async_get_after) and map_async.

-- Per-run state of the parent: the shared objects (made in setup, before any
-- pool forks) and what observe hooks collect, by tag (each variant's own).
local S = {}
local seen = {}

local function window(p) return p.window_ms / 1000 end

-- The span of one read-modify-write (after the read, before the write), in
-- shared memory: 3 cells per item (pid, microseconds after the read,
-- microseconds before the write). A task's result stays its item, so that
-- runs of the same label give the same results (the lab's exercise compares
-- them).
local function record_span(spans, item, t_read, t_write)
  local a = pb.shared.array(spans)
  a:set(3 * item - 2, pb.pid())
  a:set(3 * item - 1, math.floor(t_read * 1e6))
  a:set(3 * item, math.floor(t_write * 1e6))
end

-- Pairs of items run by different processes whose windows intersect: with
-- [after read, before write] intersecting, each read came before the
-- other's write, so one of the two increments is certainly lost.
local function overlaps(name, n)
  local a, spans, count = pb.shared.array(name), {}, 0
  for i = 1, n do
    spans[i] = {a:get(3 * i - 2), a:get(3 * i - 1), a:get(3 * i)}
  end
  table.sort(spans, function(x, y) return x[2] < y[2] end)
  for i = 1, n do
    for j = i + 1, n do
      if spans[j][2] > spans[i][3] then break end
      if spans[j][1] ~= spans[i][1] then count = count + 1 end
    end
  end
  return count
end

-- What a manager dict of lists holds: the values in all its lists, its keys.
local function list_totals(name)
  local t, n = 0, 0
  for _, l in pairs(pb.manager.copy(pb.manager.dict(name))) do
    n = n + 1
    t = t + #l
  end
  return t, n
end

local function dict_keys(name)
  local n = 0
  for _ in pairs(pb.manager.copy(pb.manager.dict(name))) do n = n + 1 end
  return n
end

local function dict_wrong(name)
  local n = 0
  for k, v in pairs(pb.manager.copy(pb.manager.dict(name))) do
    if v ~= k * k then n = n + 1 end
  end
  return n
end

-- Drains the manager queue: how many times each of "1 is done" .. "n is
-- done" came out if every one came out equally often, else -1 (a message
-- lost, repeated or foreign). The distinct messages go to S.q_distinct.
local function drain_queue(name, n)
  local q, drained, distinct = pb.manager.queue(name), {}, 0
  while q:len() > 0 do
    local m = q:get(0)
    if drained[m] == nil then distinct = distinct + 1 end
    drained[m] = (drained[m] or 0) + 1
  end
  S.q_distinct = distinct
  local each = drained["1 is done"] or 0
  for i = 1, n do
    if drained[string.format("%d is done", i)] ~= each then return -1 end
  end
  return distinct == n and each or -1
end

local TAGS = {dict_set = 1, append_copy = 2, append_reassign = 3, queue_put = 4,
              counter_unlocked = 5, counter_locked = 6, counter_manager = 7,
              cost_shared = 8, cost_manager = 9}
local STAGE = {"set_square", "append_copy", "append_reassign", "put_done", "incr_unlocked",
               "incr_locked", "incr_manager", "probe_shared", "probe_manager"}

-- A figure of the CPython twin's (its facts; the lab's CPython column), or
-- nil for poolbench's own results, whose figures the manager and the
-- shared segment hold.
local function fact(r, label, key)
  local f = r[label] and r[label].facts
  return type(f) == "table" and f[key] or nil
end

local function median(xs)
  if #xs == 0 then return 0 end
  table.sort(xs)
  return #xs % 2 == 1 and xs[(#xs + 1) // 2] or (xs[#xs // 2] + xs[#xs // 2 + 1]) / 2
end

local function cost_items(p) return 2 * p.workers end

return {
  name = "shared_state",
  source = "002_2fab88b10910dd43.txt",
  summary = "manager proxies cost a round trip and return copies; shared memory loses updates "
            .. "without its lock",
  doc = [[Phenomenon P15. pb.manager is a manager process (a server on a Unix
socket, msgpack messages) holding named dicts, lists, queues and counters;
tasks reach it through proxies, each access one round trip, each read a copy.
pb.shared is a MAP_SHARED segment mapped before the pools fork, with a
value, an array and a process-shared lock each. dict_set: the document's
program, n tasks (apply_async) each setting d[i] = i*i: all n land.
append_copy: each task sets d[k] = {} then appends through d[k] (the
document's d['k'].append(x)): the append changes the copy the read
returned, and every list stays empty. append_reassign: read, append,
assign back: each list holds its value. queue_put: the document's second
program, n tasks each putting "i is done" on a manager queue; the parent
drains n. counter_*: incr tasks (map_async) each add 1 to a counter: read,
hold the value window_ms (pb.sleep: a widened race window), write back.
counter_unlocked (shared memory, no lock) loses updates wherever two
processes' windows overlap (certain when they do: both read before either
wrote; the check counts the overlapping pairs and asks for a loss only
then); counter_locked holds the value's lock across the window: exact, and
serial (incr * window); counter_manager adds through the manager's counter
(one round trip, the read-modify-write done in the server): exact. cost_*:
2*workers tasks each making m reads, of a shared value or of a manager dict
key: the time per access. The model: a shared-memory access is a memory
access (plus the Lua call), a manager access one round trip (measured in
setup with pb.manager.ping()); the check asks the manager's per-access time
to be at least 10 times shared memory's. Document 002 gives no figure
("the Manager uses a lot of resources").]],
  params = {
    n         = {default = 20,  quick = 20,  min = 1, max = 10000,
                 doc = "tasks for the dict, append and queue programs (the document's 20)"},
    workers   = {default = 4,   quick = 2,   min = 1, max = 64, doc = "pool processes"},
    incr      = {default = 200, quick = 60,  min = 1, max = 20000, doc = "counter increments"},
    window_ms = {default = 2,   quick = 2,   min = 0, max = 1000,
                 doc = "ms between a counter's read and its write (the race window)"},
    m         = {default = 2000, quick = 500, min = 1, max = 10000000,
                 doc = "accesses per cost task"},
    tag       = {default = 1, quick = 1, min = 1, max = 9,
                 doc = "which program the tasks run (set by each variant)"},
  },
  tasks = {
    set_square = function(i) pb.manager.dict("d")[i] = i * i return i end,
    append_copy = function(i)
      local d, k = pb.manager.dict("lists_copy"), "k" .. i
      d[k] = {}
      d[k][#d[k] + 1] = i -- d['k'].append(i): the read returned a copy
      return i
    end,
    append_reassign = function(i)
      local d, k = pb.manager.dict("lists_fixed"), "k" .. i
      d[k] = {}
      local l = d[k] -- read (a copy), modify, assign back
      l[#l + 1] = i
      d[k] = l
      return i
    end,
    put_done = function(i) pb.manager.queue("q"):put(string.format("%d is done", i)) return i end,
    incr_unlocked = function(i)
      local v = pb.shared.value("counter_u")
      local x = v:get() -- v.value += 1 is a load ...
      local t1 = pb.now()
      pb.sleep(P.window_ms / 1000)
      local t2 = pb.now()
      v:set(x + 1) -- ... and a store
      record_span("spans_u", i, t1, t2)
      return i
    end,
    incr_locked = function(i)
      local v = pb.shared.value("counter_l")
      v:with_lock(function() -- with v.get_lock(): v.value += 1
        local x = v:get()
        local t1 = pb.now()
        pb.sleep(P.window_ms / 1000)
        local t2 = pb.now()
        v:set(x + 1)
        record_span("spans_l", i, t1, t2)
      end)
      return i
    end,
    incr_manager = function(i)
      pb.sleep(P.window_ms / 1000)
      pb.manager.counter("c"):add(1)
      return i
    end,
    probe_shared = function(i)
      local v, x = pb.shared.value("probe"), nil
      local t0 = pb.now()
      for _ = 1, P.m do x = v:get() end
      return (pb.now() - t0) / P.m + 0 * x
    end,
    probe_manager = function(i)
      local d, x = pb.manager.dict("probe"), nil
      local t0 = pb.now()
      for _ = 1, P.m do x = d.x end
      return (pb.now() - t0) / P.m + 0 * x
    end,
  },
  -- Parent, before the first pool: the manager and the shared segment, so
  -- that every worker inherits them; the cost of one round trip and of one
  -- shared access, for the model.
  setup = function(p)
    pb.manager.start()
    S.cu = pb.shared.value("counter_u", 0)
    S.cl = pb.shared.value("counter_l", 0)
    S.probe = pb.shared.value("probe", 1)
    pb.shared.array("spans_u", 3 * 20000)
    pb.shared.array("spans_l", 3 * 20000)
    pb.manager.dict("probe").x = 1
    local rtts = {}
    for k = 1, 201 do rtts[k] = pb.manager.ping() end
    S.rtt = median(rtts)
    local t0, x = pb.now(), 0
    for _ = 1, 100000 do x = S.probe:get() end
    S.mem = (pb.now() - t0) / 100000 + 0 * x
  end,
  workload = function(p)
    local label
    for l, t in pairs(TAGS) do if t == p.tag then label = l end end
    local rec = {values = {}}
    if S.cu then -- after setup (not at load): reset what this label counts
      seen[p.tag] = rec
      local reset = {
        function() pb.manager.clear(pb.manager.dict("d")) end,
        function() pb.manager.clear(pb.manager.dict("lists_copy")) end,
        function() pb.manager.clear(pb.manager.dict("lists_fixed")) end,
        function() pb.manager.queue("q"):clear() end,
        function() S.cu:set(0) end,
        function() S.cl:set(0) end,
        function() pb.manager.counter("c"):set(0) end,
      }
      if reset[p.tag] then reset[p.tag]() end
    end
    local items = (label == "cost_shared" or label == "cost_manager") and cost_items(p)
                  or label:match("^counter") and p.incr or p.n
    return {items = items, stages = {STAGE[p.tag]},
            observe = function(v) rec.values[#rec.values + 1] = v end}
  end,
  impls = {
    {impl = "async_get_after", label = "dict_set", set = {tag = 1}},
    {impl = "async_get_after", label = "append_copy", set = {tag = 2}},
    {impl = "async_get_after", label = "append_reassign", set = {tag = 3}},
    {impl = "async_get_after", label = "queue_put", set = {tag = 4}},
    {impl = "map_async", label = "counter_unlocked", set = {tag = 5}},
    {impl = "map_async", label = "counter_locked", set = {tag = 6}},
    {impl = "map_async", label = "counter_manager", set = {tag = 7}},
    {impl = "map_async", label = "cost_shared", set = {tag = 8}},
    {impl = "map_async", label = "cost_manager", set = {tag = 9}},
  },
  model = {
    counter_unlocked = function(p) return math.ceil(p.incr / p.workers) * window(p) end,
    counter_locked = function(p) return p.incr * window(p) end,
    counter_manager = function(p)
      return math.ceil(p.incr / p.workers) * (window(p) + (S.rtt or 0))
    end,
    -- cost_*: no wall-time model (the pool's start-up outweighs m accesses);
    -- the per-access model (a memory access, a round trip) is in the check.
  },
  -- The ratios the checks rely on, for `poolbench compare` (docs/lua-api.md,
  -- "Ratios"): the lock serialises the increments (locked / unlocked ~ w),
  -- and a manager's cost task against shared memory's (its per-access
  -- figures are in the checks).
  ratios = {{"counter_locked", "counter_unlocked"}, {"cost_manager", "cost_shared"}},
  lab = {
    title = "shared state: a manager's round trips and copies, shared memory's lost updates",
    order = 14,
    vary = {n = {10, 40, 5}, workers = {2, 4}, incr = {60, 200, 20}, window_ms = {1, 3}},
    questions = {
      {ask = "%n tasks each set d[i] = i*i on a manager dict (%workers workers). How many "
             .. "keys does d hold afterwards?",
       answer = function(p) return p.n end,
       measure = function(r) return fact(r, "dict_set", "keys") or dict_keys("d") end},
      {ask = "Each of %n tasks does d[k] = {} and then appends to d[k] (d['k'].append(x)). "
             .. "How many values do d's lists hold in all afterwards?",
       answer = function(p) return 0 end,
       measure = function(r)
         return fact(r, "append_copy", "values_in_lists") or (list_totals("lists_copy"))
       end},
      {ask = "%incr increments by %workers workers through a shared value held under its "
             .. "lock, each holding it %window_ms ms: how long does it take?",
       answer = function(p) return p.incr * p.window_ms / 1000 end,
       unit = "s", measure = "counter_locked"},
      {ask = "The same increments without the lock: how long?",
       answer = function(p) return math.ceil(p.incr / p.workers) * p.window_ms / 1000 end,
       unit = "s", measure = "counter_unlocked"},
      {ask = "Under the lock, how many of the %incr increments land?",
       answer = function(p) return p.incr end,
       measure = function(r) return fact(r, "counter_locked", "final") or S.cl:get() end},
    },
    explain = [[Every manager access is a message to the manager process and a
reply: d[i] = i*i from %n tasks is %n round trips, and all %n keys land
(the server applies one request at a time). A read returns a copy,
unpacked from the reply, so appending to d[k] appends to that copy: the
lists stay empty, and the fix is to assign the changed list back. A
shared value is memory both processes map: an access costs a load or a
store, but v = v + 1 is a load and a store, and two workers whose windows
overlap both read the old value: one increment is lost each time. Under
the lock the %incr increments are exact and serial: %incr * %window_ms ms;
without it ceil(%incr/%workers) * %window_ms ms, and wrong.]],
    exercise = {
      reference = "counter_locked",
      margin = 1.0, -- the lock's convoy is slow to hand over on a loaded machine
      task = [[No fix in the strategy: the fix is the lock, in the task (incr_locked
holds the value's lock across its read and write). Write the strategy
counter_locked measures: pool:map_async over the items, get() its list, and
hand each value to pool:final (or, if the map failed, its error to every
item). Your run uses counter_locked's parameters.]],
      skeleton = [[
return function(pool, items, p)
  local task = pool.stages[1]
  -- TODO: pool:map_async(task, items):get(), then pool:final(i, values[i]) for each i
end
]],
    },
  },
  -- The checks read what each label left: for CPython's results the twin's
  -- facts (one run's), for poolbench's what its manager and shared segment
  -- hold (every repeat's). `left` gives both the same shape.
  checks = function(r, p, check)
    local left = function(label, key, own)
      local v = fact(r, label, key)
      if v ~= nil then return v, 1 end
      return own(), r[label].repeats or 1
    end
    -- The cost of one access, each way.
    -- (first: `--impl cost_shared,cost_manager` runs these alone; each group
    -- below reads its label's result first, so that a label --impl left out
    -- stops the checks there, as a skip.)
    local ms = r.cost_shared and left("cost_shared", "per_access_s",
                                      function() return median(seen[8].values) end)
    local mm = r.cost_manager and left("cost_manager", "per_access_s",
                                       function() return median(seen[9].values) end)
    check("a manager access costs at least 10x a shared-memory access",
          mm >= 10 * ms,
          string.format("measured per access: shared memory %.3f us, manager %.1f us (%.0fx); "
                        .. "modelled: a memory access %.3f us (setup's loop), one round trip "
                        .. "%.1f us (setup's ping)", 1e6 * ms, 1e6 * mm, mm / ms,
                        1e6 * (S.mem or 0), 1e6 * (S.rtt or 0)))
    local _ = r.dict_set
    local keys = left("dict_set", "keys", function() return dict_keys("d") end)
    local wrong = left("dict_set", "wrong", function() return dict_wrong("d") end)
    check("dict_set: all " .. p.n .. " keys land (the document's output)",
          keys == p.n and wrong == 0 and r.dict_set.errors == 0,
          string.format("%d keys, %d with a value other than i*i", keys, wrong))
    _ = r.append_copy
    local lost_total = left("append_copy", "values_in_lists",
                            function() return (list_totals("lists_copy")) end)
    local lost_keys = left("append_copy", "keys", function() return dict_keys("lists_copy") end)
    check("append_copy: d[k][#d[k]+1] = x changes a copy: every list stays empty (document "
          .. "002's warning)", lost_keys == p.n and lost_total == 0,
          string.format("%d keys, %d values in their lists", lost_keys, lost_total))
    _ = r.append_reassign
    local fixed_total = left("append_reassign", "values_in_lists",
                             function() return (list_totals("lists_fixed")) end)
    local fixed_keys = left("append_reassign", "keys",
                            function() return dict_keys("lists_fixed") end)
    check("append_reassign: read, append, assign back: every list holds its value",
          fixed_keys == p.n and fixed_total == p.n,
          string.format("%d keys, %d values in their lists", fixed_keys, fixed_total))
    _ = r.queue_put
    local once, runs = left("queue_put", "each_once", function() return drain_queue("q", p.n) end)
    local distinct = left("queue_put", "drained", function() return S.q_distinct end)
    check("queue_put: the parent drains every put, once per run", once == runs,
          string.format("%d distinct messages, each of the %d drained %s", distinct, p.n,
                        once == runs and "once per run" or "a wrong number of times"))

    -- The counters: the value each label left (each has its own).
    local final_u, ru = left("counter_unlocked", "final", function() return S.cu:get() end)
    local pairs_u = left("counter_unlocked", "overlapping_pairs",
                         function() return overlaps("spans_u", p.incr) end)
    local exp_u, lost = p.incr * ru, p.incr * ru - final_u
    check(string.format("counter_unlocked: updates lost wherever two windows overlapped (%d "
                        .. "overlapping pairs)", pairs_u), pairs_u == 0 or lost > 0,
          string.format("%d of %d increments lost (%.0f%%); %d pairs of windows from "
                        .. "different processes overlapped%s", lost, exp_u, 100 * lost / exp_u,
                        pairs_u, pairs_u == 0 and ": no loss is certain, none checked" or ""))
    local final_l, rl = left("counter_locked", "final", function() return S.cl:get() end)
    local pairs_l = left("counter_locked", "overlapping_pairs",
                         function() return overlaps("spans_l", p.incr) end)
    check("counter_locked: none lost under the lock, and no windows overlap",
          final_l == p.incr * rl and pairs_l == 0,
          string.format("%d of %d; %d overlapping pairs", final_l, p.incr * rl, pairs_l))
    local got_m, rm = left("counter_manager", "final",
                           function() return pb.manager.counter("c"):get() end)
    check("counter_manager: none lost through the manager's counter", got_m == p.incr * rm,
          string.format("%d of %d", got_m, p.incr * rm))

  end,
}
