-- pool_vs_fork.lua: a pool pays for its processes once; a process per task pays every time (document 004).
--
-- Document 004 opens with why pools exist: without one, "every task that must
-- run in parallel creates a process anew, which wastes time". Here n trivial
-- tasks run through a pool (map_async with chunksize 1, and merged: one
-- apply_async per item) and through process_per_task, which forks a process
-- for each task, reads its result from a pipe and waits for it.

-- Each task returns the pid that ran it, and the workload's observe hook (in
-- the parent) counts the distinct pids of each repeat into the run's facts
-- (pb.fact "distinct_pids"), which the checks read as
-- r[label].facts.distinct_pids; CPython's twin reports its own under that
-- name. One recorder per workload(p) call.
local function new_recorder(n)
  local rec = {pids = {}, distinct = 0, seen = 0}
  rec.observe = function(pid, item)
    if not rec.pids[pid] then
      rec.pids[pid] = true
      rec.distinct = rec.distinct + 1
    end
    pb.fact("distinct_pids", rec.distinct)
    rec.seen = rec.seen + 1
    if rec.seen == n then -- a repeat is over: the next starts afresh
      rec.pids, rec.distinct, rec.seen = {}, 0, 0
    end
  end
  return rec
end

return {
  name = "pool_vs_fork",
  source = "004_fb99f51ccaea3c91.txt",
  summary = "a pool pays for its processes once; a process per task pays every time",
  doc = [[Phenomenon P9. n trivial tasks (the built-in getpid: each says which
process ran it). A pool of `workers` processes starts them once and sends the
tasks as messages: map_async with chunksize 1 (CPython's Pool(4).map with
chunksize=1, the figure below) and merged (one apply_async per item).
process_per_task forks a process for every task, sends the result back
through a pipe and waits for it before the next, as document 002's
Process(...).start(); join() loop does: time = n * (fork + exit + wait). The
cost of a fork is the machine's (and grows with the parent's memory), so
there is no model; the checks are a ratio (at least 5x) and the process
counts: process_per_task uses n processes, one per task, the pool at most
`workers`. Pool start-up is measured apart (startup_s) and is not in the wall
time. The pids come back through the workload's observe hook. Quick runs use
n = 500 too: the run takes a third of a second, and a smaller n would leave
the pool's few milliseconds at the mercy of one scheduling delay. Document 004 gives no figure. CPython 3.11 on a 2-core machine
(PHENOMENA.md), 500 trivial tasks: Process per task 0.839 s, Pool(4).map
(chunksize=1) 0.024 s.]],
  params = {
    n         = {default = 500, quick = 500, min = 1, max = 1000000, doc = "trivial tasks"},
    workers   = {default = 4,   quick = 4,   min = 1, max = 64, doc = "pool processes"},
    chunksize = {default = 1,   quick = 1,   min = 0, max = 1000000,
                 doc = "map_async chunk size (1 as CPython's run; 0: ceil(n/(4*workers)))"},
  },
  workload = function(p)
    return {items = p.n, stages = {"getpid"}, observe = new_recorder(p.n).observe}
  end,
  impls = {"map_async", "merged", "process_per_task"},
  -- The classroom lab: `poolbench lab pool_vs_fork` (docs/labs/01-pool_vs_fork.md).
  lab = {
    -- The exercise "write the fix" (`poolbench lab pool_vs_fork --exercise`).
    exercise = {
      reference = "map_async",
      task = [[Run every item in ONE pool of workers, paid for once: a single map
over the items (one message per chunk), then report each value with
pool:final(i, value). process_per_task forks a process per item instead.]],
      skeleton = [[
return function(pool, items, p)
  local task = pool.stages[1]
  -- TODO: one call that runs `task` on every item in the pool's workers
  -- (pool:map), then pool:final(i, value) for each value.
end
]],
    },
    title = "why a pool: pay for the processes once, not per task",
    order = 1,
    vary = {n = {200, 600, 100}, workers = {2, 6}},
    questions = {
      {ask = "%n trivial tasks, one process per task (fork, run, send the result, exit, "
             .. "wait). How many processes are started?",
       answer = function(p) return p.n end, measure = "process_per_task.workers_started"},
      {ask = "The same %n tasks through a pool of %workers workers (map_async, chunksize 1). "
             .. "How many processes are started?",
       answer = function(p) return p.workers end, measure = "map_async.workers_started"},
      {ask = "If a fork + exit + wait costs 0.5 ms, how long does process per task take?",
       answer = function(p) return p.n * 0.0005 end, unit = "s", measure = "process_per_task"},
      {ask = "If a pool's task message costs 8 microseconds (lab 4 measures it), how long "
             .. "does the pool take, its start-up left out?",
       answer = function(p) return p.n * 8e-6 end, unit = "s", measure = "map_async"},
    },
    explain = [[A process costs a fork, an exit and a wait: hundreds of
microseconds, more as the parent grows. process_per_task pays it for each of
the %n tasks: n*(fork + exit + wait). A pool pays it %workers times, at
start-up (measured apart, in startup_s), and then sends each task as a
message of a few microseconds: n*message. Hence document 004: a pool "only
pays once for building the assembly line". The 0.5 ms and 8 us are this
project's machine's figures (0.35 to 0.7 ms, as busy as it was); yours show
in the run.]],
  },
  -- The ratios the checks rely on, for `poolbench compare` (docs/lua-api.md, "Ratios"); the
  -- first is the key ratio: a process per task / a pool: "process_per_task at least 5x slower
  -- than map_async".
  ratios = {{"process_per_task", "map_async"}},
  checks = function(r, p, check)
    -- Every label first: if --impl left one out, the checks stop here.
    local m, g, f = r.map_async, r.merged, r.process_per_task
    local labels = {"map_async", "merged", "process_per_task"}
    for i, label in ipairs(labels) do
      local x = r[label]
      check(label .. " ran every task",
            x.results == p.n and x.errors == 0 and x.tasks_run == p.n,
            string.format("%d results, %d errors; %.3f s = %.1f us per task", x.results,
                          x.errors, x.wall_s, 1e6 * x.wall_s / p.n))
    end
    check("process_per_task at least 5x slower than map_async",
          f.wall_s >= 5 * m.wall_s,
          string.format("%.3f s vs %.3f s: %.1fx (%.0f us per process); merged %.3f s "
                        .. "(CPython: 0.839 s vs 0.024 s, 35x); %d cores", f.wall_s, m.wall_s,
                        f.wall_s / m.wall_s, 1e6 * f.wall_s / p.n, g.wall_s, f.cores))
    local fd = f.facts.distinct_pids or -1
    check("process_per_task: one process per task",
          f.workers_started == p.n and fd == p.n,
          string.format("%d processes started, %d distinct pids ran the %d tasks",
                        f.workers_started, fd, p.n))
    for _, label in ipairs({"map_async", "merged"}) do
      local x = r[label]
      local d = x.facts.distinct_pids or -1
      check(label .. ": the pool's processes ran every task",
            x.workers_started <= p.workers and d >= 1 and d <= p.workers
              and #x.per_worker <= p.workers,
            string.format("%d processes started (startup %.1f ms), %d distinct pids ran the %d "
                          .. "tasks, %d workers", x.workers_started, 1e3 * x.startup_s,
                          d, p.n, p.workers))
    end
  end,
}
