-- straggler.lua: one task k times longer than the rest: its chunk sets the makespan, so a chunksize of n/w costs most.
--
-- Beyond the documents (issue 13, item 2; PHENOMENA P18). A map's input is
-- cut into chunks and each chunk runs whole on the worker that takes it. When
-- one task is k times longer than the others, the worker that draws its chunk
-- finishes last: with chunks of one task the other workers share out the rest
-- meanwhile, with chunks of n/w the straggler drags its n/w - 1 companions
-- along and nobody can take them. CPython's default chunksize, ceil(n/(4w)),
-- lies between. imap_unordered (chunksize 1) schedules as map with chunks of 1.

-- The durations of the n tasks, in ms: task `at` is k times the others.
local function durations(p)
  local d = {}
  for i = 1, p.n do d[i] = p.task_ms end
  d[p.at] = p.k * p.task_ms
  return d
end

-- The chunksize each label's map uses (0: CPython's default).
local function chunk_of(p, c)
  if c == nil or c == 0 then return math.ceil(p.n / (4 * p.workers)) end
  return c
end

-- Greedy list scheduling, as the pool does it: the chunks, in input order, go
-- to whichever worker frees first. Returns the makespan in seconds and the
-- fewest tasks any worker ran.
local function schedule(p, c)
  c = chunk_of(p, c)
  local d, load, count = durations(p), {}, {}
  for w = 1, p.workers do load[w], count[w] = 0, 0 end
  for first = 1, p.n, c do
    local sum, last = 0, math.min(first + c - 1, p.n)
    for i = first, last do sum = sum + d[i] end
    local free = 1 -- the worker that frees first (the lowest slot on a tie)
    for w = 2, p.workers do if load[w] < load[free] then free = w end end
    load[free], count[free] = load[free] + sum, count[free] + last - first + 1
  end
  local most, fewest = 0, math.huge
  for w = 1, p.workers do most, fewest = math.max(most, load[w]), math.min(fewest, count[w]) end
  return most / 1000, fewest
end

-- The chunksize each label runs with, from the parameters (n/w is computed,
-- so it is a Lua strategy's, not a fixed `set`).
local function nw(p) return math.ceil(p.n / p.workers) end

-- How much a busy machine stretched a run (scenarios/lib/stretch.lua).
local stretch_of = dofile(((debug.getinfo(1, "S").source:gsub("^@", "")):match("^(.*/)") or "./")
                          .. "lib/stretch.lua")

return {
  name = "straggler",
  source = "003_148c127c0e6336ae.txt",
  summary = "one task k times longer: the straggler's chunk sets the makespan",
  doc = [[Beyond the documents (issue 13, item 2; P18). n tasks of task_ms each
(sleeps), one of them, task `at`, k times longer. map_async_c1 maps with
chunksize 1, map_async_default with CPython's default ceil(n/(4w)),
map_async_nw with n/w (one chunk per worker, the largest that still uses
them all), imap_unordered streams with chunksize 1. The model hands the
chunks, in input order, to the worker that frees first (greedy list
scheduling); the chunk that holds the straggler decides. Defaults: 32 tasks
of 30 ms on 4 workers, the first one 8 times longer (240 ms): chunksize 1
gives 0.300 s (ideal (31 + 8)/4 = 9.75 ticks), n/w = 8 gives (7 + 8) * 30 ms
= 0.450 s. A straggler at the end (--set at=32) hurts every chunksize: no
scheduling after the fact can hide a long task that starts last (put long
tasks first). Sleep tasks: the figures do not depend on the core count.]],
  params = {
    n       = {default = 32, quick = 32, min = 2, max = 10000, doc = "tasks"},
    task_ms = {default = 30, quick = 30, min = 1, max = 10000, doc = "sleep per ordinary task, ms"},
    k       = {default = 8,  quick = 8,  min = 1, max = 1000, doc = "the straggler is k times longer"},
    at      = {default = 1,  quick = 1,  min = 1, max = 10000, doc = "the straggler's position (1 = first)"},
    workers = {default = 4,  quick = 4,  min = 1, max = 64, doc = "pool processes"},
    chunksize = {default = 0, quick = 0, min = 0, max = 10000,
                 doc = "each variant sets its own (1, 0 = CPython's default); map_async_nw uses ceil(n/w)"},
  },
  workload = function(p)
    if p.at > p.n then error(string.format("at = %d is past the last task (n = %d)", p.at, p.n)) end
    local items = {}
    for i, ms in ipairs(durations(p)) do items[i] = ms / 1000 end
    return {items = items, stages = {"sleep"}}
  end,
  strategies = {
    -- pool.map_async(f, items, chunksize=ceil(n/w)).get(): one chunk per worker.
    map_async_nw = function(pool, items, p)
      local values = pool:map_async(pool.stages[1], items, nw(p)):get()
      for i = 1, #items do pool:final(i, values[i]) end -- sleep returns nil: no ipairs
    end,
  },
  impls = {
    {impl = "map_async", label = "map_async_c1", set = {chunksize = 1}},
    {impl = "map_async", label = "map_async_default", set = {chunksize = 0}},
    "map_async_nw",
    {impl = "imap_unordered", label = "imap_unordered", set = {chunksize = 1}},
  },
  model = {
    map_async_c1 = function(p) return (schedule(p, 1)) end,
    map_async_default = function(p) return (schedule(p, 0)) end,
    map_async_nw = function(p) return (schedule(p, nw(p))) end,
    imap_unordered = function(p) return (schedule(p, 1)) end,
  },
  lab = {
    title = "straggler: one long task, and the chunk it drags along",
    order = 15,
    vary = {n = {16, 32, 4}, workers = {2, 4}, k = {4, 12, 2}, task_ms = {20, 40, 10}},
    -- n/w chunks at least 4 tasks long, a straggler that is longer than the
    -- fair share's difference, so that the chunksizes differ visibly.
    where = function(p)
      local c1, nwm = schedule(p, 1), schedule(p, nw(p))
      return nw(p) >= 4 and nwm >= 1.25 * c1
    end,
    questions = {
      {ask = "%n tasks of %task_ms ms on %workers workers, the first %k times longer. map "
             .. "with chunksize 1: the chunks go, in order, to the worker that frees first. "
             .. "How long does the map take?",
       answer = function(p) return (schedule(p, 1)) end, unit = "s", measure = "map_async_c1"},
      {ask = "With chunksize n/w (one chunk per worker): how long?",
       answer = function(p) return (schedule(p, nw(p))) end, unit = "s", measure = "map_async_nw"},
      {ask = "With CPython's default chunksize, ceil(n/(4*workers)): how long?",
       answer = function(p) return (schedule(p, 0)) end, unit = "s",
       measure = "map_async_default"},
      {ask = "imap_unordered with chunksize 1: how long?",
       answer = function(p) return (schedule(p, 1)) end, unit = "s", measure = "imap_unordered"},
    },
    explain = [[A chunk runs whole on the worker that takes it. The straggler's chunk
costs k*t plus (chunk - 1)*t for its companions, and nobody else can take
those companions: with chunksize n/w that chunk alone is (n/w - 1 + %k)*%task_ms
ms, while the others finish after (n/w)*%task_ms ms and idle. With chunksize
1 the worker holding the straggler runs it alone and the other %workers - 1
workers share the rest: about max(k*t, (n - 1 + k)*t/w). CPython's default
is in between; imap_unordered with chunksize 1 schedules exactly as map with
chunksize 1 (its advantage is elsewhere: results as they come). A straggler
that starts last cannot be hidden by any chunksize: order long tasks first.]],
    exercise = {
      reference = "map_async_c1",
      margin = 0.5,
      task = [[One task is k times longer than the others. Choose a chunking (the third
argument of pool:map or pool:map_async) such that the straggler does not drag a
whole chunk of companions along, then report each value with
pool:final(i, value).]],
      skeleton = [[
return function(pool, items, p)
  local task = pool.stages[1]
  -- TODO: a chunksize that keeps the straggler's chunk short
  local chunksize = math.ceil(#items / pool.workers)
  local values = pool:map(task, items, chunksize)
  for i = 1, #items do pool:final(i, values[i]) end -- sleep returns nil: no ipairs
end
]],
    },
  },
  -- The ratios the checks rely on, for `poolbench compare` (docs/lua-api.md,
  -- "Ratios"): the first is the key one.
  ratios = {{"map_async_nw", "map_async_c1"}, {"map_async_default", "map_async_c1"},
            {"imap_unordered", "map_async_c1"}},
  checks = function(r, p, check)
    -- How much the machine stretched this run's tasks: the time they took
    -- on their workers (busy_s) over what they sleep, (n - 1 + k) * t. 1.0
    -- on an idle machine; a loaded one wakes each sleep late. The wall
    -- times are judged against the model scaled by it, since every task of
    -- a chunk, the straggler's too, waits its turn on the same cores.
    local function stretch(x) return stretch_of(x, (p.n - 1 + p.k) * p.task_ms / 1000) end
    for _, label in ipairs({"map_async_c1", "map_async_default", "map_async_nw", "imap_unordered"}) do
      local x = r[label]
      check(label .. ": every task ran", x.results == p.n and x.errors == 0,
            string.format("%d results, %d errors", x.results, x.errors))
      -- Never faster than the schedule; up to twice it (plus 0.1 s) at the
      -- run's measured stretch: a machine several times oversubscribed
      -- delays each sleep's wakeup and each hand-off (seen: +119% at a load
      -- average of 13 on 2 cores against the nominal model). The ratio and
      -- the counts below carry the phenomenon.
      local f = stretch(x)
      check(label .. ": the wall time follows the greedy schedule of its chunks",
            x.wall_s >= 0.9 * x.model_s and x.wall_s <= 2 * f * x.model_s + 0.1,
            string.format("%.3f s, model %.3f s (%+.0f%%); the tasks took %.2fx their sleeps",
                          x.wall_s, x.model_s, 100 * (x.wall_s / x.model_s - 1), f))
    end
    local big, small = r.map_async_nw, r.map_async_c1
    local ratio = big.model_s / small.model_s
    -- A third of the model's gain (1.17 with the defaults' 1.5): under a
    -- heavy load chunksize 1's 32 hand-offs stretch more than n/w's 4.
    -- Each wall time is taken at its own run's stretch (two runs a second
    -- apart on a loaded machine are not stretched alike).
    if ratio >= 1.2 then
      local bw, sw = big.wall_s / stretch(big), small.wall_s / stretch(small)
      check("chunksize n/w is slower than chunksize 1 by a third of the model's ratio",
            bw >= (1 + (ratio - 1) / 3) * sw,
            string.format("%.3f s vs %.3f s: %.2f; at each run's stretch %.2f (model %.2f)",
                          big.wall_s, small.wall_s, big.wall_s / small.wall_s, bw / sw, ratio))
    end
    -- Who ran what: with n/w every worker ran exactly its one chunk; with
    -- chunksize 1 the straggler's worker ran fewer tasks than a chunk of
    -- n/w, the others took them over.
    local function counts(x)
      local most, least = 0, math.huge
      for _, w in ipairs(x.per_worker) do
        most, least = math.max(most, w.tasks), math.min(least, w.tasks)
      end
      return most, least
    end
    local most = counts(big)
    check("map_async_nw: no worker ran more than one chunk of n/w",
          most <= nw(p), string.format("busiest worker %d tasks, n/w = %d", most, nw(p)))
    -- Only where the model's straggler worker runs 3 or more tasks fewer
    -- than n/w (the defaults: 3 against 8): a worker delayed by the machine
    -- shifts a task or two.
    local _, fewest = schedule(p, 1)
    if p.workers > 1 and fewest <= nw(p) - 3 then
      local _, least = counts(small)
      check("map_async_c1: the straggler's worker ran fewer tasks than n/w, the others took them",
            least < nw(p), string.format("least busy worker %d tasks, n/w = %d", least, nw(p)))
    end
  end,
}
