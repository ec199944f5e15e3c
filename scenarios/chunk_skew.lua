-- chunk_skew.lua: a chunksize too large leaves workers idle: 16 tasks in chunks of 14 run as 14 + 2 (document 003).
--
-- Document 003 reads CPython's Pool.map: the input is cut into chunks, and a
-- chunk runs on one worker from start to end. 16 tasks with chunksize 14 make
-- two chunks, 14 and 2, so one worker does 14 tasks while the other does 2,
-- and a third worker changes nothing: it gets no chunk at all. The default
-- chunksize, ceil(n/(4*w)), makes small chunks that spread evenly.

-- The chunks of map_async, given in order to the worker that frees first.
-- Returns the tasks per worker (busiest first, idle workers left out) and
-- the makespan, for tasks of task_ms each.
local function schedule(p)
  local c = p.chunksize > 0 and p.chunksize or math.ceil(p.n / (4 * p.workers))
  local load = {}
  for w = 1, p.workers do load[w] = 0 end
  for first = 1, p.n, c do
    table.sort(load)
    load[1] = load[1] + math.min(c, p.n - first + 1)
  end
  table.sort(load, function(a, b) return a > b end)
  local counts = {}
  for _, l in ipairs(load) do if l > 0 then counts[#counts + 1] = l end end
  return {chunksize = c, counts = counts, makespan = load[1] * p.task_ms / 1000}
end

return {
  name = "chunk_skew",
  source = "003_148c127c0e6336ae.txt",
  summary = "a large chunksize leaves workers idle: the largest chunk sets the time",
  doc = [[Phenomenon P7. n = 16 tasks of task_ms each (sleeps) go through
map_async. A chunk runs on one worker from its first task to its last, so the
time is that of the busiest worker: with chunksize 14 the chunks are 14 and
2, the counts per worker are [14, 2], and the time is 14*t whether the pool
has 2 workers or 3 (the third gets nothing). With the default chunksize,
ceil(16/(4*2)) = 2, the 8 chunks spread over both workers: [8, 8] and 8*t.
The model assigns the chunks in order to the worker that frees first
(makespan = the busiest worker's chunks * t). Defaults as document 003 and
PHENOMENA.md: 16 tasks, t = 50 ms, chunksize 14. CPython 3.11 on a 2-core
machine (PHENOMENA.md): counts [14, 2] and 0.704 s for pool 2 and pool 3
(ideal 0.40 s and 0.30 s). Sleep tasks: the result does not depend on the
core count.]],
  params = {
    n         = {default = 16, quick = 16, min = 1, max = 100000, doc = "tasks"},
    task_ms   = {default = 50, quick = 20, min = 1, max = 10000, doc = "sleep per task, ms"},
    workers   = {default = 2,  quick = 2,  min = 1, max = 64, doc = "pool processes"},
    chunksize = {default = 14, quick = 14, min = 0, max = 100000,
                 doc = "map_async chunk size (0: CPython's default, ceil(n/(4*workers)))"},
  },
  workload = function(p)
    local items = {}
    for i = 1, p.n do items[i] = p.task_ms / 1000 end
    return {items = items, stages = {"sleep"}}
  end,
  -- map_async runs with the parameters as given (2 workers, chunksize 14);
  -- map_async_w3 adds a third worker; map_async_default uses CPython's
  -- default chunksize on the same workers.
  impls = {"map_async",
           {impl = "map_async", label = "map_async_w3", set = {workers = 3}},
           {impl = "map_async", label = "map_async_default", set = {chunksize = 0}}},
  -- One model for the three (a label without its own model uses its
  -- strategy's): schedule(p) above, the busiest worker's time.
  model = {map_async = function(p) return schedule(p).makespan end},
  -- The classroom lab: `poolbench lab chunk_skew` (docs/labs/05-chunk_skew.md).
  lab = {
    -- The exercise "write the fix" (`poolbench lab chunk_skew --exercise`).
    exercise = {
      reference = "map_async_default",
      margin = 0.5,
      task = [[map deals its chunks to the workers whole: with few large chunks the
busiest worker sets the time. Choose the chunking yourself (the third
argument of pool:map) so that the work spreads evenly over the workers,
then report each value with pool:final(i, value).]],
      skeleton = [[
return function(pool, items, p)
  local task = pool.stages[1]
  -- TODO: choose a chunksize that spreads the work evenly
  local chunksize = #items
  local values = pool:map(task, items, chunksize)
  for i = 1, #items do pool:final(i, values[i]) end -- sleep returns nil: no ipairs
end
]],
    },
    title = "chunk skew: the largest chunk sets the time",
    order = 5,
    vary = {n = {12, 24}, chunksize = {4, 14}, workers = {2, 3}, task_ms = {20, 50, 10}},
    where = function(p) return p.chunksize < p.n end, -- at least two chunks
    questions = {
      {ask = "map_async cuts %n tasks of %task_ms ms into chunks of %chunksize; a chunk runs "
             .. "on one worker from its first task to its last. On %workers workers, how many "
             .. "tasks does the busiest worker run?",
       answer = function(p) return schedule(p).counts[1] end,
       measure = function(r)
         local most = 0
         for _, w in ipairs(r.map_async.per_worker) do most = math.max(most, w.tasks) end
         return most
       end},
      {ask = "How long does the map take?",
       answer = function(p) return schedule(p).makespan end, unit = "s", measure = "map_async"},
      {ask = "map_async_w3 runs the same map on 3 workers. How long?",
       answer = function(p)
         return schedule({n = p.n, chunksize = p.chunksize, workers = 3,
                          task_ms = p.task_ms}).makespan
       end,
       unit = "s", measure = "map_async_w3"},
      {ask = "map_async_default uses CPython's default chunksize, ceil(n/(4*workers)), on "
             .. "%workers workers. How long?",
       answer = function(p)
         return schedule({n = p.n, chunksize = 0, workers = p.workers,
                          task_ms = p.task_ms}).makespan
       end,
       unit = "s", measure = "map_async_default"},
    },
    explain = [[A chunk is one message: the worker that takes it runs all of its
tasks, so the time is the busiest worker's, (its tasks)*t, not n*t/w. The
chunks of %chunksize go, in order, to whichever worker frees first; when the
chunks are few and unequal, one worker gets the long one while the others
finish early and wait, and a worker beyond the number of chunks gets nothing
at all: more workers do not help. CPython's default, ceil(n/(4*w)), makes
about four chunks per worker, small enough to even out. Document 003 reads
this rule out of pool.py: 16 tasks in chunks of 14 run as 14 + 2, on 2
workers or 3.]],
  },
  -- The ratios the checks rely on, for `poolbench compare` (docs/lua-api.md, "Ratios"); the
  -- first is the key ratio: default chunksize / chunks of 14: "faster than the large chunks by
  -- the model's ratio".
  ratios = {{"map_async_default", "map_async"}, {"map_async_w3", "map_async"}},
  checks = function(r, p, check)
    local function counts(x)
      local c = {}
      for _, w in ipairs(x.per_worker) do c[#c + 1] = w.tasks end
      table.sort(c, function(a, b) return a > b end)
      return c
    end
    local function show(c) return "[" .. table.concat(c, ", ") .. "]" end
    -- The mean time one task took on its worker (busy_s over tasks): task_ms
    -- on an idle machine, more under load (each sleep wakes late). The wall
    -- time is checked in these ticks, the machine's own task time: a chunk
    -- runs its tasks back to back, so the busiest worker's count of ticks
    -- sets the time however much the machine stretches each tick.
    local function tick(x)
      local busy, tasks = 0, 0
      for _, w in ipairs(x.per_worker) do busy, tasks = busy + w.busy_s, tasks + w.tasks end
      return tasks > 0 and busy / tasks or p.task_ms / 1000
    end
    -- Never faster than the model (nothing ends before its sleeps); at most
    -- 1.5 times the busiest worker's tasks at the measured tick, plus 0.05 s
    -- of hand-offs. Against the nominal t the upper bound flipped under load
    -- (0.328 s for a model of 0.160 s at a load average of 5 on 2 cores).
    local function follows(x)
      local busiest = schedule(x.params).counts[1]
      return x.wall_s >= 0.9 * x.model_s and x.wall_s <= 1.5 * busiest * tick(x) + 0.05,
             string.format("%.3f s, model %.3f s (%+.0f%%); %d tasks at the measured %.1f ms "
                           .. "a task: %.3f s", x.wall_s, x.model_s,
                           100 * (x.wall_s / x.model_s - 1), busiest, 1000 * tick(x),
                           busiest * tick(x))
    end
    for _, label in ipairs({"map_async", "map_async_w3"}) do
      local x = r[label]
      local got, want = show(counts(x)), show(schedule(x.params).counts)
      local sch = schedule(x.params)
      local c = counts(x)
      if math.ceil(p.n / sch.chunksize) <= x.params.workers then
        -- One chunk per worker at most: the counts are the chunks, whatever
        -- the machine does.
        check(label .. ": the per-worker counts are " .. want,
              got == want,
              string.format("%s on %d workers (chunksize %d, %d tasks)", got, x.params.workers,
                            x.params.chunksize, p.n))
      else
        -- More chunks than workers (--set chunksize=0): which worker frees
        -- first depends on the machine; a delayed worker loses a chunk or
        -- two to the others. Every count is whole chunks, and the busiest
        -- ran at least the model's busiest (someone must).
        local whole = true
        for _, k in ipairs(c) do
          if k % sch.chunksize ~= 0 and k % sch.chunksize ~= p.n % sch.chunksize then whole = false end
        end
        check(label .. ": the per-worker counts are whole chunks, the busiest at least "
                .. sch.counts[1] .. " (model " .. want .. ")",
              whole and c[1] >= sch.counts[1],
              string.format("%s on %d workers (chunksize %d, %d tasks)", got, x.params.workers,
                            sch.chunksize, p.n))
      end
      local ok, detail = follows(x)
      local ideal = math.ceil(p.n / x.params.workers) * p.task_ms / 1000
      check(label .. ": the wall time follows the largest chunk", ok,
            string.format("%s; ideal for %d workers %.3f s", detail, x.params.workers, ideal))
    end
    local d, big = r.map_async_default, r.map_async
    local c, chunk = counts(d), schedule(d.params).chunksize
    -- Balanced: every worker got chunks, and the busiest got at most two
    -- chunks more than the idlest (a worker the machine delays loses a
    -- chunk or two to the others; with chunksize 14 the gap is 12).
    check("default chunksize: the per-worker counts are balanced",
          #c == math.min(d.params.workers, math.ceil(p.n / chunk))
            and c[1] - c[#c] <= 2 * chunk,
          string.format("%s on %d workers (chunksize ceil(%d/(4*%d)) = %d)", show(c),
                        d.params.workers, p.n, d.params.workers, chunk))
    -- The model's ratio is 8/14 = 0.57 with the defaults; 1.4 times it
    -- (0.8) still says "far faster", and other settings get their own. The
    -- two wall times are compared in ticks (each run's own task time): two
    -- runs a second apart on a loaded machine stretch their sleeps
    -- differently (--set chunksize=0, where both are the same map, measured
    -- 0.33 s against 0.20 s at a load average of 5 on 2 cores).
    local dt, bt = d.wall_s / tick(d), big.wall_s / tick(big)
    check("default chunksize: faster than the large chunks by the model's ratio",
          dt <= 1.4 * (d.model_s / big.model_s) * bt,
          string.format("%.3f s vs %.3f s: %.2f; in ticks of its own task time %.1f vs %.1f: "
                          .. "%.2f (model %.2f)", d.wall_s, big.wall_s, d.wall_s / big.wall_s,
                        dt, bt, dt / bt, d.model_s / big.model_s))
    local ok, detail = follows(d)
    check("default chunksize follows its model", ok, detail)
  end,
}
