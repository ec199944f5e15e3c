-- big_argument.lua: a large read-only argument sent with every task costs n copies; set once per worker or inherited through fork it costs none per task.
--
-- Beyond the documents (issue 13, item 1; PHENOMENA P17). A task that needs
-- a big read-only table (a model, a lookup table) is often written
-- pool.map(f, [(x, big) for x in xs]): the argument is serialized, written
-- down the pipe and decoded once per task, so the parent's send time and the
-- bytes on the wire grow with n * size. The usual fixes send it once per
-- worker (Pool(initializer=init, initargs=(big,)), the worker keeps it in a
-- global) or not at all (a global built before the pool exists is inherited
-- by fork: here a Lua global the workload builds in the parent, which the
-- workers' copy of the Lua state holds already).
--
-- The three labels run the same map_async; the parameter `mode` (set by each
-- variant) decides how the workload passes the argument. The checks are
-- structural on bytes_sent (the report's bytes of task messages) and a
-- generous ratio on time.

-- This machine's copy rate for a task's argument, bytes per second, as the
-- model's constant: the parent encodes it, the pipe carries it, the worker
-- decodes it (measured here with per_task: 200 tasks of 1 MiB in 0.45 s on
-- 2 workers, about 0.47 GB/s end to end; the model is a guide, the checks do
-- not rest on it).
local COPY_RATE = 0.45e9

local function size(p) return p.size_kb * 1024 end

return {
  name = "big_argument",
  source = "003_148c127c0e6336ae.txt",
  summary = "a big argument sent with every task costs n copies; initializer or fork: none per task",
  doc = [[Beyond the documents (issue 13, item 1; P17). n tasks each read a
string of size_kb KiB (its length, plus the item). per_task sends it with
every task ({i, big} per item): n * size bytes on the wire. initializer
sends it once per worker (initializer = "init", initargs = {big}; the
worker keeps it in a global): poolbench keeps initargs in the pool's
configuration, which each worker inherits at its fork, so no bytes cross
the task pipe, as with CPython's fork start method. fork builds it as
a global in the parent before the pool exists; the workers inherit it: no
bytes. The model: n * size / COPY_RATE (this machine's, measured, see the
file) for per_task, 0 for initializer and fork,
plus n * task_ms / workers for the tasks themselves.
bench/python/big_argument.py runs the same with CPython (whose fork start
method inherits initargs instead of sending them).]],
  params = {
    n       = {default = 200, quick = 100, min = 1, max = 100000, doc = "tasks"},
    size_kb = {default = 1024, quick = 512, min = 1, max = 65536, doc = "the argument's size, KiB"},
    task_ms = {default = 0, quick = 0, min = 0, max = 1000, doc = "sleep per task, ms"},
    workers = {default = 2, quick = 2, min = 1, max = 64, doc = "pool processes"},
    mode    = {default = 1, quick = 1, min = 1, max = 3,
               doc = "set by each variant: 1 per task, 2 initializer, 3 inherited through fork"},
  },
  tasks = {
    -- per_task: the item carries the argument.
    with_arg = function(item)
      if P.task_ms > 0 then pb.sleep(P.task_ms / 1000) end
      return #item[2] + item[1]
    end,
    -- initializer: the worker keeps its copy in a global.
    init = function(big) WORKER_BIG = big end,
    with_global = function(i)
      if P.task_ms > 0 then pb.sleep(P.task_ms / 1000) end
      return #WORKER_BIG + i
    end,
    -- fork: BIG was built in the parent before the pool existed.
    with_inherited = function(i)
      if P.task_ms > 0 then pb.sleep(P.task_ms / 1000) end
      return #BIG + i
    end,
  },
  workload = function(p)
    local big = string.rep("x", size(p))
    if p.mode == 1 then
      BIG = nil
      local items = {}
      for i = 1, p.n do items[i] = {i, big} end
      return {items = items, stages = {"with_arg"}}
    elseif p.mode == 2 then
      BIG = nil
      return {items = p.n, stages = {"with_global"}, initializer = "init", initargs = {big}}
    end
    BIG = big -- a global of the parent's Lua state: the pool's workers are forked from it
    return {items = p.n, stages = {"with_inherited"}}
  end,
  impls = {
    {impl = "map_async", label = "per_task", set = {mode = 1}},
    {impl = "map_async", label = "initializer", set = {mode = 2}},
    {impl = "map_async", label = "fork", set = {mode = 3}},
  },
  model = {
    per_task = function(p) return p.n * size(p) / COPY_RATE + p.n * p.task_ms / 1000 / p.workers end,
    initializer = function(p) return p.n * p.task_ms / 1000 / p.workers end,
    fork = function(p) return p.n * p.task_ms / 1000 / p.workers end,
  },
  lab = {
    title = "big_argument: a large argument with every task, or once per worker",
    order = 20,
    vary = {n = {50, 200, 50}, size_kb = {256, 1024, 256}},
    where = function(p) return p.n * p.size_kb >= 4 * 256 * 50 end,
    questions = {
      {ask = "%n tasks each get a %size_kb KiB argument with the task. How many bytes of "
             .. "task messages does the parent send, at least?",
       answer = function(p) return p.n * size(p) end, unit = "B", measure = "per_task.bytes_sent"},
      {ask = "Built as a global before the pool, inherited through fork: how long does the map take?",
       answer = function(p) return p.n * p.task_ms / 1000 / p.workers end, unit = "s",
       measure = "fork"},
    },
    explain = [[A task's arguments are encoded in the parent, written down a pipe and
decoded in the worker, for every task: %n tasks with a %size_kb KiB argument
move n * size bytes, and the parent's time grows with it. An initializer's
initargs reach each worker once, and not through the task pipe: poolbench
keeps them in the pool's configuration, which every worker inherits at its
fork (as CPython's fork start method does; spawn would pickle them once per
worker). A global built before the pool is inherited by fork and never sent. The argument must be
read-only: a worker's changes stay in that worker.]],
    exercise = {
      reference = "initializer",
      margin = 0.5,
      task = [[The pool was made as the fix makes it: initializer = "init" with
initargs = {big}, so every worker already holds the big argument (in its
global WORKER_BIG) and items are just the positions 1..n. Map the task
(pool.stages[1]) over the items, sending nothing big, and report each value
with pool:final(i, value). (The fix itself is in how the pool is made, which
a strategy cannot change: the lab's three labels show it.)]],
      skeleton = [[
return function(pool, items, p)
  -- TODO: one map over the small items; the argument is in the workers already
  for i = 1, #items do pool:final(i, nil, "not written yet") end
end
]],
    },
  },
  -- The ratios the checks rely on, for `poolbench compare` (docs/lua-api.md,
  -- "Ratios"): the time, and the parent's peak memory, of the argument sent
  -- with every task against inherited. (bytes_sent, the structural figure,
  -- is counted by the twin too, on its pool's task pipe.)
  ratios = {{"per_task", "fork"}, {"per_task.peak_rss_kb", "fork.peak_rss_kb"}},
  checks = function(r, p, check)
    local s = size(p)
    for _, label in ipairs({"per_task", "initializer", "fork"}) do
      local x = r[label]
      check(label .. ": every task ran and read the whole argument",
            x.results == p.n and x.errors == 0,
            string.format("%d results, %d errors", x.results, x.errors))
    end
    local a, b, c = r.per_task, r.initializer, r.fork
    check("per_task: the argument crossed with every task (bytes_sent >= n * size)",
          a.bytes_sent >= p.n * s,
          string.format("%d bytes sent, n * size = %d", a.bytes_sent, p.n * s))
    -- poolbench keeps initargs in the pool's configuration, which every
    -- worker inherits when it is forked (as CPython's fork start method
    -- does): they never cross the task pipe either.
    for _, x in ipairs({{"initializer", b}, {"fork", c}}) do
      check(x[1] .. ": the argument never crosses the task pipe (bytes_sent < size)",
            x[2].bytes_sent < s, string.format("%d bytes sent, size = %d", x[2].bytes_sent, s))
    end
    -- The messages queued for the pipe hold the copies: the parent's peak
    -- grows by about n * size (seen: +435 MB for 200 MiB); half of it, where
    -- n * size (16 MiB or more) stands well above the RSS's own noise (a
    -- small total may be written to the pipe as fast as it is encoded).
    if p.n * s >= 16 * 1024 * 1024 then
      check("per_task: the parent's peak memory grows by at least n * size / 2",
            a.peak_rss_kb - c.peak_rss_kb >= p.n * s / 2048,
            string.format("%d kB vs fork's %d kB; n * size = %d kB", a.peak_rss_kb,
                          c.peak_rss_kb, p.n * s // 1024))
    end
    -- Seen: 0.45 s against 0.002 s at the defaults, 0.08 s against 0.002 s
    -- quick; 2x holds under any load where n * size is 16 MiB or more.
    if p.n * s >= 16 * 1024 * 1024 and p.task_ms == 0 then
      local other = math.max(b.wall_s, c.wall_s)
      check("per_task is at least 2x slower than initializer and fork",
            a.wall_s >= 2 * other,
            string.format("%.3f s vs %.3f s and %.3f s", a.wall_s, b.wall_s, c.wall_s))
    end
  end,
}
