-- quick_tasks.lua: quick tasks land unevenly across the workers: whoever reads the queue first takes them (document 003).
--
-- Document 003 maps 16 trivial tasks over a Pool(4) with starmap and prints
-- the pid of each: all 16 ran in one process, "rarely in 2". The tasks are
-- so short that the first worker to read the shared queue comes back for the
-- next one before the others have even looked. Nothing is wrong, and nothing
-- is fixed: the split depends on the start-up race, so this scenario reports
-- it, over --repeat N runs, and checks only that every task ran.

-- Per-repeat records, filled by the observe hook (in the parent) and read by
-- done. workload(p) makes a recorder each time it is called (the harness may
-- call it more than once); a recorder joins the list when its observe hook
-- first runs, and recorder_of finds a variant's by its task_ms. What the
-- checks need goes into the run's facts (pb.fact): repeats_recorded and
-- repeats_good (those that ran n tasks on at most `workers` processes), so
-- the checks read r[label].facts, and CPython's twin reports its own.
local recorders = {}

local function new_recorder(n, task_ms, workers)
  local rec = {n = n, task_ms = task_ms, repeats = {}, cur = {}, seen = 0, used = false, good = 0}
  rec.observe = function(pid, item)
    if not rec.used then
      rec.used = true
      recorders[#recorders + 1] = rec
    end
    rec.cur[pid] = (rec.cur[pid] or 0) + 1
    rec.seen = rec.seen + 1
    if rec.seen == n then -- one repeat's n results: close it
      local counts, sum = {}, 0
      for _, c in pairs(rec.cur) do counts[#counts + 1] = c sum = sum + c end
      table.sort(counts, function(a, b) return a > b end)
      rec.repeats[#rec.repeats + 1] = counts
      if sum == n and #counts <= workers then rec.good = rec.good + 1 end
      pb.fact("repeats_recorded", #rec.repeats)
      pb.fact("repeats_good", rec.good)
      rec.cur, rec.seen = {}, 0
    end
  end
  return rec
end

-- The recorder of a result: the variants differ by task_ms.
local function recorder_of(x)
  for _, rec in ipairs(recorders) do
    if rec.task_ms == x.params.task_ms then return rec end
  end
  return {repeats = {}}
end

-- "[16] 3 idle" for 4 workers: the counts, busiest first, and the idle ones.
local function describe(counts, workers)
  local sum = 0
  for _, c in ipairs(counts) do sum = sum + c end
  return string.format("[%s] max %d min %d, %d of %d workers got none",
                       table.concat(counts, ", "), counts[1] or 0,
                       #counts == workers and counts[#counts] or 0, workers - #counts, workers)
end

return {
  name = "quick_tasks",
  source = "003_148c127c0e6336ae.txt",
  summary = "quick tasks land unevenly: whoever reads the queue first takes them",
  doc = [[Phenomenon P8. n near-zero tasks go through map_async on `workers`
processes (document 003's starmap; the default chunksize is ceil(16/16) = 1,
so one message per task). Each task returns the pid that ran it (the
built-in getpid, as cheap as square), and the observe hook counts them per
repeat. A task takes microseconds, far less than a worker takes to wake
up, so whoever reads the queue first takes most of them: the per-worker
counts depend on the start-up race. There is no fixed expectation: the report
shows the counts of each repeat (run with --repeat 10 to see the spread) and
the checks only that every task ran. For contrast, map_async_slow runs the
same map with tasks of 20 ms (it sets task_ms = 20; a sleep): a worker is then
busy long enough for the others to take their share. Document 003 (Windows, spawn): all 16 in
one worker, rarely 2. CPython 3.11 on a 2-core machine (PHENOMENA.md):
[6, 6, 2, 2].]],
  params = {
    n       = {default = 16, quick = 16, min = 1, max = 100000, doc = "tasks"},
    workers = {default = 4,  quick = 4,  min = 1, max = 64, doc = "pool processes"},
    task_ms = {default = 0,  quick = 0,  min = 0, max = 10000,
               doc = "task length, ms: 0 is the built-in getpid (near zero)"},
  },
  tasks = {
    -- The contrast: a task long enough to keep its worker away from the queue.
    nap = function(x) pb.sleep(P.task_ms / 1000) return pb.pid() end,
  },
  workload = function(p)
    local rec = new_recorder(p.n, p.task_ms, p.workers)
    return {items = p.n, stages = {p.task_ms > 0 and "nap" or "getpid"}, observe = rec.observe}
  end,
  impls = {"map_async",
           {impl = "map_async", label = "map_async_slow", set = {task_ms = 20}}},
  -- The classroom lab: `poolbench lab quick_tasks` (docs/labs/06-quick_tasks.md).
  lab = {
    -- The exercise "write the fix" (`poolbench lab quick_tasks --exercise`).
    exercise = {
      reference = "map_async",
      margin = 0.5,
      task = [[No fix here: quick tasks land on whoever reads the shared queue first,
whatever the client does. Write map_async's strategy yourself: pool:map_async
with a callback that reports each value (pool:final), then wait for the
handle; compare your per-worker counts with map_async's.]],
      skeleton = [[
return function(pool, items, p)
  local task = pool.stages[1]
  -- TODO: pool:map_async(task, items, {callback = function(values) ... end}),
  -- each value to pool:final(i, value); then wait for the handle.
end
]],
    },
    title = "quick tasks land unevenly: whoever reads the queue first takes them",
    order = 6,
    vary = {n = {12, 32, 4}, workers = {2, 6}},
    questions = {
      {ask = "map_async's default chunksize is ceil(n/(4*workers)). For %n tasks on %workers "
             .. "workers, how many messages (chunks) does it send?",
       answer = function(p) return math.ceil(p.n / math.ceil(p.n / (4 * p.workers))) end,
       measure = "map_async.messages_sent"},
      {ask = "With tasks of 20 ms (map_async_slow), the chunks go to whichever worker is "
             .. "free. How many tasks does the busiest worker run?",
       answer = function(p)
         local c, load = math.ceil(p.n / (4 * p.workers)), {}
         for w = 1, p.workers do load[w] = 0 end
         for first = 1, p.n, c do
           table.sort(load)
           load[1] = load[1] + math.min(c, p.n - first + 1)
         end
         table.sort(load)
         return load[p.workers]
       end,
       measure = function(r)
         local most = 0
         for _, w in ipairs(r.map_async_slow.per_worker) do most = math.max(most, w.tasks) end
         return most
       end},
      {ask = "Now the tasks take microseconds (getpid). A fair split would give the busiest "
             .. "worker ceil(n/workers). How many does it really run?",
       answer = function(p) return math.ceil(p.n / p.workers) end,
       measure = function(r)
         local most = 0
         for _, w in ipairs(r.map_async.per_worker) do most = math.max(most, w.tasks) end
         return most
       end},
    },
    explain = [[Every worker reads the same queue, and the first to ask gets the
next message. A task of microseconds is over before a sleeping worker has
even been scheduled (on 2 cores, %workers workers take turns), so the first
reader comes back for the next one, and the next: one or two workers take
most of the %n tasks. Nothing is wrong and nothing is fixed: the split is a
start-up race, and the model has no answer for question 3; the fair share
is only what a student would guess. With 20 ms tasks a worker is busy long
enough for the others to take their share, and the split follows the
chunks. Document 003 saw all 16 tasks on one worker; CPython 3.11 here gave
[6, 6, 2, 2].]],
  },
  -- The ratios the checks rely on, for `poolbench compare` (docs/lua-api.md, "Ratios"); the
  -- first is the key ratio: the busiest worker's tasks, quick / 20 ms tasks: the imbalance the
  -- counts show.
  ratios = {{"map_async.busiest", "map_async_slow.busiest"}},
  checks = function(r, p, check)
    for i, label in ipairs({"map_async", "map_async_slow"}) do
      local x = r[label]
      local sum, per = 0, {}
      for _, w in ipairs(x.per_worker) do
        sum = sum + w.tasks
        per[#per + 1] = w.tasks
      end
      table.sort(per, function(a, b) return a > b end)
      check(label .. ": every task ran, and the per-worker counts sum to n",
            x.results == p.n and x.errors == 0 and x.tasks_run == p.n and sum == p.n,
            string.format("%d results, %d errors; last repeat %s", x.results, x.errors,
                          describe(per, p.workers)))
    end
    for _, label in ipairs({"map_async", "map_async_slow"}) do
      local x = r[label]
      local seen, good = x.facts.repeats_recorded or 0, x.facts.repeats_good or 0
      -- seen <= x.repeats, not ==: `poolbench compare` runs CPython's twin
      -- once per repeat, so its facts cover the last run's one repeat.
      check(label .. ": every repeat ran n tasks on at most `workers` processes",
            good == seen and seen >= 1 and seen <= x.repeats,
            string.format("%d repeats recorded of %d, %d of them n tasks on <= %d processes",
                          seen, x.repeats, good, p.workers))
    end
  end,
  done = function(report)
    local p = report.params
    for _, x in ipairs(report.results) do
      local rec = recorder_of(x)
      if #rec.repeats > 0 then
        print(string.format("%s: per-worker counts of %d tasks of %s on %d workers, per repeat "
                            .. "(busiest first):", x.label, p.n,
                            x.params.task_ms > 0 and (x.params.task_ms .. " ms") or "~0 ms",
                            p.workers))
        local idle_total, busiest = 0, 0
        for k, counts in ipairs(rec.repeats) do
          print(string.format("  repeat %2d: %s", k, describe(counts, p.workers)))
          idle_total = idle_total + (p.workers - #counts)
          busiest = math.max(busiest, counts[1] or 0)
        end
        print(string.format("  over %d repeats: on average %.1f of %d workers idle; the "
                            .. "busiest took up to %d of %d", #rec.repeats,
                            idle_total / math.max(1, #rec.repeats), p.workers, busiest, p.n))
      end
    end
  end,
}
