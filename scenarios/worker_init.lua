-- worker_init.lua: the initializer runs once per worker; maxtasksperchild replaces workers and pays a respawn each time (document 002).
--
-- Document 002 lists Pool's parameters: initializer ("every worker calls
-- initializer(*initargs) when it starts") and maxtasksperchild ("the tasks
-- a worker may complete before it exits and a new worker replaces it, so
-- that idle resources are freed; None: workers live as long as the pool").
-- Here the initializer counts its own runs in a global of the worker, and
-- every task returns that count with its pid: always 1, whether a worker
-- lives for the whole run or is replaced every 25 tasks. Replacing costs a
-- process start each time: the same trivial tasks, with and without
-- maxtasksperchild.

-- The stop rule, which never stops, is a tap on every final result: it
-- counts into the run's facts (pb.fact, per repeat), which the checks read
-- as r[label].facts: values_seen, not_one (counts other than 1),
-- distinct_pids and max_count. CPython's twin reports its own under the
-- same names. `pids` is the running repeat's set of pids.
local pids = {}

local function tap(v, item)
  local seen = pb.fact("values_seen") or 0
  if seen == 0 then -- a repeat's first result: its facts start empty
    pids = {}
    pb.fact("not_one", 0)
    pb.fact("distinct_pids", 0)
    pb.fact("max_count", 0)
  end
  local pid, count = v[1], v[2]
  pb.fact("values_seen", seen + 1)
  if count ~= 1 then pb.fact("not_one", pb.fact("not_one") + 1) end
  pb.fact("max_count", math.max(pb.fact("max_count"), count))
  if not pids[pid] then
    pids[pid] = true
    pb.fact("distinct_pids", pb.fact("distinct_pids") + 1)
  end
  return false
end

local PLAIN = {"async_get_after", "executor_submit"}

return {
  name = "worker_init",
  source = "002_2fab88b10910dd43.txt",
  summary = "the initializer runs once per worker; maxtasksperchild replaces workers at a respawn cost",
  doc = [[Phenomenon P14. n trivial tasks on `workers` processes whose
initializer (the Lua task init, named by the workload's `initializer` field)
counts its runs in a global of the worker. Each task returns {its pid, that
count}; a stop rule that never stops records them in the parent. The
initializer runs once per worker process, so every count is 1, also with
maxtasksperchild, where each replacement is a new process (forked from the
engine's fork server, which never ran the initializer) that runs it once
again. Strategies: async_get_after (Pool.apply_async, one task message per
item) and executor_submit (ProcessPoolExecutor.submit), each plain and as
*_mt with maxtasksperchild = 25 (the _mt variants set it: a worker exits
after 25 task messages and the pool starts another). Without it,
workers_started == workers; with it, workers_started > workers (about
n/25), no process runs more than 25 tasks, and the run is slower by the
respawns: the model is time = plain time + (respawns / workers) * (cost of
one respawn), and the report gives that cost from the times ((mt - plain) *
workers / respawns). The checks: every count 1, the process counts, and the
_mt runs slower than the plain ones (the faster of the two _mt runs at least
1.5 times the faster plain run: a ratio, robust to one run's hiccup). CPython's
figure, reported elsewhere and quoted in PHENOMENA.md: 3 956 tasks/s
without, 237 tasks/s with max_tasks_per_child=25 (spawn start method,
where each new worker starts a fresh interpreter). Document 002 gives no
figure.]],
  params = {
    n       = {default = 10000, quick = 4000, min = 1, max = 1000000, doc = "trivial tasks"},
    workers = {default = 2,    quick = 2,    min = 1, max = 64, doc = "pool processes"},
    maxtasksperchild = {default = 0, quick = 0, min = 0, max = 1000000,
                        doc = "tasks per worker before it is replaced (0: never; the _mt "
                                .. "variants set 25)"},
    tag     = {default = 1,    quick = 1,    min = 1, max = 4,
               doc = "which variant this is (set by each variant)"},
  },
  tasks = {
    init = function() INIT_RUNS = (INIT_RUNS or 0) + 1 end,
    whoami = function(x) return {pb.pid(), INIT_RUNS or 0} end,
  },
  workload = function(p)
    return {items = p.n, stages = {"whoami"}, initializer = "init", stop = tap}
  end,
  impls = {
    {impl = "async_get_after", label = "async_get_after", set = {tag = 1}},
    {impl = "async_get_after", label = "async_get_after_mt", set = {tag = 2, maxtasksperchild = 25}},
    {impl = "executor_submit", label = "executor_submit", set = {tag = 3}},
    {impl = "executor_submit", label = "executor_submit_mt", set = {tag = 4, maxtasksperchild = 25}},
  },
  -- The classroom lab: `poolbench lab worker_init` (docs/labs/12-worker_init.md).
  lab = {
    -- The exercise "write the fix" (`poolbench lab worker_init --exercise`).
    exercise = {
      reference = "async_get_after",
      margin = 0.5,
      task = [[No fix: the initializer runs once per worker, whatever the client does.
Write async_get_after yourself: submit every item, then get() each in
order into pool:final (the workload's stop rule may end it early: break
when pool:final says true). Your run uses async_get_after's parameters.]],
      skeleton = [[
return function(pool, items, p)
  local task = pool.stages[1]
  -- TODO: submit every item (pool:apply_async), then read each handle
end
]],
    },
    title = "initializer and maxtasksperchild: once per worker, and a new worker every N tasks",
    order = 12,
    vary = {n = {3000, 8000, 1000}, workers = {2, 4}},
    questions = {
      {ask = "%n trivial tasks on %workers workers (async_get_after); each worker runs an "
             .. "initializer when it starts. How many worker processes are started?",
       answer = function(p) return p.workers end, measure = "async_get_after.workers_started"},
      {ask = "With maxtasksperchild = 25 (async_get_after_mt), a worker exits after 25 tasks "
             .. "and a new one takes its place. About how many processes are started?",
       answer = function(p) return math.ceil(p.n / 25) + p.workers end,
       measure = "async_get_after_mt.workers_started"},
      {ask = "Each task returns how many times its worker ran the initializer. What is the "
             .. "largest count any task sees with maxtasksperchild = 25?",
       answer = function(p) return 1 end,
       measure = "async_get_after_mt.facts.max_count"},
    },
    explain = [[The initializer runs once in each worker process, before its
first task. Without maxtasksperchild the %workers workers live the whole run.
With it, a worker exits after 25 task messages and the pool starts another
(from the fork server, which never ran the initializer), so about n/25 + w
= %n/25 + %workers processes start, each running the initializer once: a
count of 1 everywhere. Each replacement costs a process start, so the run
is slower by (respawns/w) * (cost of one respawn). CPython with the spawn
start method pays a fresh interpreter each time: 3 956 tasks/s without,
237 with max_tasks_per_child=25.]],
  },
  -- The ratios the checks rely on, for `poolbench compare` (docs/lua-api.md, "Ratios"); the
  -- first is the key ratio: maxtasksperchild=25 / without: the respawn cost (time), and the
  -- workers started.
  ratios = {{"async_get_after_mt", "async_get_after"},
            {"async_get_after_mt.workers_started", "async_get_after.workers_started"}},
  checks = function(r, p, check)
    for k, plain in ipairs(PLAIN) do
      local a, b = r[plain], r[plain .. "_mt"]
      local fa, fb = a.facts, b.facts
      local mt = b.params.maxtasksperchild
      for _, v in ipairs({{plain, a}, {plain .. "_mt", b}}) do
        local label, x = v[1], v[2]
        local f = x.facts
        check(label .. ": the initializer ran once in every worker (every count 1)",
              x.errors == 0 and (f.values_seen or 0) == p.n and f.not_one == 0,
              string.format("%d results seen, %d with a count other than 1; %d distinct pids",
                            f.values_seen or 0, f.not_one or -1, f.distinct_pids or -1))
      end
      check(plain .. ": without maxtasksperchild the workers live the whole run",
            a.workers_started == p.workers and (fa.distinct_pids or math.huge) <= p.workers,
            string.format("%d workers started, %d pids ran tasks, %d workers", a.workers_started,
                          fa.distinct_pids or -1, p.workers))
      local most = 0
      for _, w in ipairs(b.per_worker) do most = math.max(most, w.tasks) end
      check(plain .. "_mt: workers replaced every " .. mt .. " tasks",
            b.workers_started > p.workers and most <= mt
              and (fb.distinct_pids or 0) >= math.ceil(p.n / mt),
            string.format("%d workers started (%d pids ran tasks, n/%d = %d), at most %d tasks "
                          .. "per process", b.workers_started, fb.distinct_pids or -1, mt,
                          math.ceil(p.n / mt), most))
    end
    -- Slower by the respawns. The plain runs last some tens of milliseconds
    -- at quick sizes, so one scheduling hiccup of a busy machine can double
    -- one of them: the check compares the faster of the two strategies'
    -- runs on each side, and reports each pair.
    local fastest_plain, fastest_mt, pairs = math.huge, math.huge, {}
    for _, plain in ipairs(PLAIN) do
      local a, b = r[plain], r[plain .. "_mt"]
      local respawns = b.workers_started - a.workers_started
      local cost = respawns > 0 and (b.wall_s - a.wall_s) * p.workers / respawns or 0
      -- a pair that could not run (CPython's executor refuses
      -- max_tasks_per_child under fork: run_failed) has no time to compare
      if a.run_failed or b.run_failed then
        pairs[#pairs + 1] = plain .. " not compared (a run could not run)"
      else
        fastest_plain = math.min(fastest_plain, a.wall_s)
        fastest_mt = math.min(fastest_mt, b.wall_s)
        pairs[#pairs + 1] = string.format("%s %.3f s vs %.3f s, %.0f vs %.0f tasks/s, %d "
                                          .. "respawns of about %.0f us each", plain, b.wall_s,
                                          a.wall_s, p.n / b.wall_s, p.n / a.wall_s, respawns,
                                          1e6 * cost)
      end
    end
    check("maxtasksperchild: the respawns make it slower (the faster _mt run at least 1.5x "
          .. "the faster plain one)",
          fastest_mt >= 1.5 * fastest_plain,
          string.format("%.3f s vs %.3f s: %.2fx; %s (CPython, spawn, max_tasks_per_child=25: "
                        .. "237 vs 3 956 tasks/s)", fastest_mt, fastest_plain,
                        fastest_mt / fastest_plain, table.concat(pairs, "; ")))
  end,
}
