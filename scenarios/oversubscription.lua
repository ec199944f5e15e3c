-- oversubscription.lua: CPU-bound tasks on 1 to 4x the cores: the speed-up stops at the core count, and each task stretches.
--
-- Beyond the documents (issue 13, item 8; PHENOMENA P24). Sleep tasks (every
-- other scenario) overlap on any machine; CPU-bound tasks do not: past one
-- worker per core the processes take turns on the cores, so the pool's time
-- stays n*s/cores and each task's own wall time grows by workers/cores. The
-- core count comes from pb.cores() (the online CPUs) at load: the workers'
-- default and the variants' sizes are computed from it, and every result
-- names the cores it ran on (r[label].cores; the report's `ARG cores`).

local CORES = pb.cores()

-- Predicted wall time: w workers share min(w, cores) cores; a task burns
-- spin_ms of CPU time. Each worker runs ceil(n/w) tasks when w <= cores; past
-- the cores the machine is the limit, n*s/cores.
local function model(p)
  local s = p.spin_ms / 1000
  return math.max(math.ceil(p.n / p.workers) * s, p.n * s / CORES)
end

-- The mean wall time one task took on its worker (busy_s over tasks).
local function per_task(x)
  local busy, tasks = 0, 0
  for _, w in ipairs(x.per_worker) do busy, tasks = busy + w.busy_s, tasks + w.tasks end
  return tasks > 0 and busy / tasks or 0
end

local LABELS = {"w1", "w_cores", "w_2cores", "w_4cores"}

return {
  name = "oversubscription",
  source = "004_fb99f51ccaea3c91.txt",
  summary = "CPU-bound tasks: the speed-up flattens at the core count; more workers only stretch each task",
  doc = [[Beyond the documents (issue 13, item 8; P24). n spin tasks (each
burns spin_ms of CPU time, pb.spin) through map_async with chunksize 1, on
1 worker (w1), as many as the cores (w_cores, the default), twice (w_2cores)
and four times (w_4cores) as many. The model: max(ceil(n/w)*s, n*s/cores):
up to the cores each worker has one, past them the processes take turns and
the time stays n*s/cores, while each task's wall time grows to about
s*w/cores. The core count is pb.cores() on the machine that runs it (2 on
this project's machine): the workers' default and the variants' sizes are
computed from it at load, and every result carries `cores`. Defaults: 8
tasks per core of 50 ms. The speed-up over w1 is printed as a figure, not
checked (another CPU-heavy job on the machine takes cores away from it);
the checks are structural: w_4cores no faster than n*s/cores (what the cores
allow, however busy the machine), and the tasks' own time stretched.]],
  params = {
    n       = {default = 8 * CORES, quick = 4 * CORES, min = 1, max = 100000,
               doc = "tasks (default 8 per core)"},
    spin_ms = {default = 50, quick = 25, min = 1, max = 10000, doc = "CPU time per task, ms"},
    workers = {default = CORES, quick = CORES, min = 1, max = 256,
               doc = "pool processes (default: the cores)"},
  },
  workload = function(p)
    local items = {}
    for i = 1, p.n do items[i] = p.spin_ms / 1000 end
    return {items = items, stages = {"spin"}}
  end,
  impls = {
    {impl = "map_async", label = "w1", set = {workers = 1}},
    {impl = "map_async", label = "w_cores"},
    {impl = "map_async", label = "w_2cores", set = {workers = 2 * CORES}},
    {impl = "map_async", label = "w_4cores", set = {workers = 4 * CORES}},
  },
  model = {map_async = model},
  lab = {
    title = "oversubscription: more workers than cores",
    order = 17,
    vary = {n = {4 * CORES, 12 * CORES, CORES}, spin_ms = {20, 60, 10}},
    where = function(p) return p.n % (4 * CORES) == 0 end, -- every variant evenly loaded
    impls = {"w1", "w_cores", "w_4cores"},
    questions = {
      {ask = "%n tasks, each burning %spin_ms ms of CPU, on 1 worker: how long?",
       answer = function(p) return model({n = p.n, spin_ms = p.spin_ms, workers = 1}) end,
       unit = "s", measure = "w1"},
      {ask = "On as many workers as this machine has cores (" .. CORES .. "): how long?",
       answer = function(p) return model({n = p.n, spin_ms = p.spin_ms, workers = CORES}) end,
       unit = "s", measure = "w_cores"},
      {ask = "On " .. 4 * CORES .. " workers (four per core): how long?",
       answer = function(p) return model({n = p.n, spin_ms = p.spin_ms, workers = 4 * CORES}) end,
       unit = "s", measure = "w_4cores"},
      {ask = "On " .. 4 * CORES .. " workers, how long does one task take, from its start "
             .. "to its end on its worker?",
       answer = function(p) return 4 * p.spin_ms / 1000 end, unit = "s",
       measure = function(r) return per_task(r.w_4cores) end},
    },
    explain = [[A spin task needs a core for %spin_ms ms. With w workers and c cores
(here ]] .. CORES .. [[), min(w, c) tasks run at once: up to c workers the
time falls as ceil(n/w) * s, past c it stays n*s/c = %n * %spin_ms / c ms.
The extra workers are processes the kernel time-slices: each task still
needs its %spin_ms ms of CPU, but gets a core only c/w of the time, so it
takes about s*w/c from its start to its end, and the pool pays the
switches and the memory of w processes for nothing. Size a CPU-bound pool
to the cores (Pool()'s default, os.cpu_count()); sleep or I/O tasks are
another matter (every other lab).]],
    exercise = {
      reference = "w_cores",
      margin = 0.5,
      task = [[There is no fix to write here (the phenomenon is the machine's): write the
strategy the lab measures, pool:map of the spin tasks with chunksize 1 on the
pool given (as many workers as cores), and report each value with
pool:final(i, value).]],
      skeleton = [[
return function(pool, items, p)
  local task = pool.stages[1]
  -- TODO: map the tasks with chunksize 1, then report each value
end
]],
    },
  },
  -- The ratios the checks rely on, for `poolbench compare` (docs/lua-api.md,
  -- "Ratios"): no gain past the cores; then the speed-up (figures).
  ratios = {{"w_4cores", "w_cores"}, {"w1", "w_cores"}, {"w1", "w_4cores"}},
  checks = function(r, p, check)
    for _, label in ipairs(LABELS) do
      local x = r[label]
      check(label .. ": every task ran on " .. x.params.workers .. " workers, " .. x.cores .. " cores",
            x.results == p.n and x.errors == 0 and x.cores == CORES,
            string.format("%d results, %d errors; cores %d", x.results, x.errors, x.cores))
    end
    local one, c, four = r.w1, r.w_cores, r.w_4cores
    local function up(x) return one.wall_s / x.wall_s end
    -- The speed-up is a figure, not a check: printed here. The check: four
    -- times the workers are no faster than the cores allow. n tasks of s CPU
    -- seconds on CORES cores take at least n*s/CORES of wall time however many
    -- processes share them (what w_cores takes on an idle machine); sleep
    -- tasks, or more cores than pb.cores() says, would give n*s/(4*CORES) and
    -- fail it. It used to compare w_4cores with w_cores (at least 0.5x), but
    -- another CPU-heavy job takes cores from a small pool more than from a
    -- large one: 0.38 was measured at a load average of 7 on 2 cores (two
    -- hogs beside the lead's suite), so that ratio is printed, not checked.
    local floor_s = p.n * p.spin_ms / 1000 / CORES
    check("w_4cores is no faster than the cores allow (n*s/cores): no gain past the cores",
          four.wall_s >= 0.9 * floor_s,
          string.format("%.3f s, the cores' floor %.3f s; vs w_cores %.3f s: %.2f (model %.2f; "
                          .. "4x the workers would give 0.25 with a core each); speed-up over "
                          .. "w1 (a figure): w_cores %.2fx, w_2cores %.2fx, w_4cores %.2fx on "
                          .. "%d cores",
                        four.wall_s, floor_s, c.wall_s, four.wall_s / c.wall_s,
                        four.model_s / c.model_s, up(c), up(r.w_2cores), up(four), CORES))
    -- Each task's own time stretches: k = min(n, 4*cores) processes share the
    -- cores, so a task of s CPU takes about k/cores * s from start to end
    -- (4x with enough tasks; more under load). The check asks for 60% of
    -- that stretch, and at least 1.2x: well clear of a task that had a core.
    local s = p.spin_ms / 1000
    local stretch = math.min(p.n, 4 * CORES) / CORES
    local want = math.max(1.2, 0.6 * stretch)
    check(string.format("w_4cores: each task took at least %.1fx its CPU time, from start to end", want),
          per_task(four) >= want * s,
          string.format("%.3f s per task for %.3f s of CPU (%.1fx; w1 %.1fx; model %.1fx)",
                        per_task(four), s, per_task(four) / s, per_task(one) / s, stretch))
    check("w_4cores: more processes than cores ran tasks",
          #four.per_worker > CORES,
          string.format("%d processes ran tasks on %d cores", #four.per_worker, CORES))
  end,
}
