-- start_method.lua: fork, a fork server and spawn: what a worker costs to start, and what it inherits.
--
-- Beyond the documents (issue 13, item 4). A pool starts its workers one
-- of three ways (CPython's start methods, pool_options.start_method):
--   fork        each worker is forked from the pool's process as it is then
--               (threads, locks and all): cheap, and everything is inherited;
--   forkserver  each worker is forked by a single-threaded server, itself
--               forked when the pool was created (poolbench's default; CPython
--               3.14's default on Linux): as cheap, and it inherits the
--               process as it was at pool creation;
--   spawn       each worker is a fresh program (here `poolbench worker`,
--               which loads this file again): it inherits only what is passed
--               (three descriptors, the parameters), and pays a program start.
--
-- Each label is one method and one pool size. The initializer stamps when
-- its worker came up (pb.now(), one clock for every process); the strategy
-- runs one short task per worker until it has seen every worker, each
-- telling when it came up, whether it sees a global the parent set in
-- setup (after loading the file), and how many descriptors it holds. The
-- figures are facts: up_ms (pool creation to the last worker up),
-- per_worker_ms (up_ms / workers), cpu_ms (a worker's own CPU time until
-- its initializer ran, the mean over workers), inherited (1 when every
-- worker saw the global), fds (the most any worker held).

local METHODS = {"fork", "forkserver", "spawn"}
local COUNTS = {1, 2, 4}
-- How long each probe task keeps its worker: a round of probes then
-- spreads over distinct workers.
local HOLD_S = 0.05
-- Start-up in ms, measured on this machine (2 cores; three runs of
-- `poolbench run scenarios/start_method.lua`): wall time from pool creation
-- to the last worker up is c0 + c * workers (noisy: a fork waits for the
-- interpreter lock, as CPython's waits for the GIL), and each worker's own
-- CPU time until its initializer ran, cpu (steady: 0.12-0.16 ms for a
-- fork, 1.4-1.6 ms for a fresh poolbench loading this file). The model is
-- the wall time; the checks rest on CPU time only.
local COST = {fork = {c0 = 1.0, c = 0.3, cpu = 0.14}, forkserver = {c0 = 0.5, c = 0.2, cpu = 0.14},
              spawn = {c0 = 2.0, c = 1.5, cpu = 1.5}}

-- Set by setup in the parent, after this file was loaded: a forked worker
-- has it, a spawned one (which loads the file again and runs no setup) not.
SET_IN_SETUP = nil

local T_UP, CPU_UP -- in each worker: when its initializer ran, and its CPU time then

local function mark_up() T_UP, CPU_UP = pb.now(), pb.cpu() end

-- A probe: holds its worker HOLD_S, then says who it is and what it has.
local function probe(hold)
  pb.sleep(hold)
  return {pid = pb.pid(), up = T_UP, cpu = CPU_UP, inherited = SET_IN_SETUP ~= nil and 1 or 0,
          fds = pb.fds()}
end

-- Rounds of one probe per worker until every worker has answered (bounded).
local function startup(pool, items, p)
  local w = pool.workers
  local seen, n, last, inherited, fds, cpu = {}, 0, 0, 1, 0, 0
  for _ = 1, 20 do
    if n == w then break end
    local hs = {}
    for j = 1, w do hs[j] = pool:apply_async("probe", {HOLD_S}) end
    for j = 1, w do
      local ok, v = pcall(hs[j].get, hs[j], 30)
      if ok and not seen[v.pid] then
        seen[v.pid] = true
        n = n + 1
        last = math.max(last, v.up)
        inherited = math.min(inherited, v.inherited)
        fds = math.max(fds, v.fds)
        cpu = cpu + v.cpu
      end
    end
  end
  for i = 1, #items do pool:final(i, i <= n and 1 or nil, i > n and "a worker never answered" or nil) end
  local up_ms = 1000 * (last - pool.t_create)
  pool:fact("workers_up", n)
  pool:fact("up_ms", up_ms)
  pool:fact("per_worker_ms", up_ms / w)
  pool:fact("inherited", inherited)
  pool:fact("fds", fds)
  pool:fact("cpu_ms", n > 0 and 1000 * cpu / n or 0)
  pool:note(string.format("%s: %d workers up %.1f ms after pool creation (%.2f ms each, %.2f ms CPU "
                          .. "each); setup's global %s; at most %d descriptors", pool.start_method,
                          n, up_ms, up_ms / w, n > 0 and 1000 * cpu / n or 0,
                          inherited == 1 and "seen" or "not seen", fds))
end

local impls, model = {}, {}
for _, m in ipairs(METHODS) do
  for _, w in ipairs(COUNTS) do
    local label = m .. "_w" .. w
    impls[#impls + 1] = {impl = "startup", label = label, start_method = m, set = {workers = w}}
    model[label] = function(p) return (COST[m].c0 + COST[m].c * w) / 1000 + HOLD_S end
  end
end

return {
  name = "start_method",
  source = "002_2fab88b10910dd43.txt",
  summary = "fork, fork server, spawn: what a worker costs to start and what it inherits",
  doc = [[Beyond the documents (issue 13, item 4). Each label is a start method
(fork, forkserver, spawn) and a pool of 1, 2 or 4 workers (the variant's
start_method field; --start-method does not change a label that names its
own). The initializer stamps when each worker came up; one probe per worker
(each holding its worker 50 ms) reports it, with whether the worker sees a
global the parent set in setup (after loading the file) and how many
descriptors it holds. Facts: up_ms (pool creation to the last worker up),
per_worker_ms, cpu_ms (a worker's own CPU time until its initializer ran),
inherited, fds, workers_up. Model: c0 + c * workers ms (this
machine's constants, see the file) + the 50 ms probe.
bench/python/start_method.py measures CPython's three methods the same way.]],
  params = {
    workers = {default = 2, quick = 2, min = 1, max = 64, doc = "pool processes (set by each label)"},
  },
  setup = function(p) SET_IN_SETUP = 42 end,
  tasks = {mark_up = mark_up, probe = probe},
  workload = function(p)
    local items = {}
    for i = 1, p.workers do items[i] = i end
    return {items = items, stages = {"probe"}, initializer = "mark_up"}
  end,
  strategies = {startup = startup},
  impls = impls,
  model = model,
  lab = {
    title = "start_method: fork, a fork server, or a fresh program",
    order = 22,
    vary = {workers = {1, 4}},
    questions = {
      {ask = "A worker started with spawn is a fresh poolbench that loads the scenario "
             .. "again: how many ms of CPU does it use before its initializer runs?",
       answer = function() return COST.spawn.cpu end, unit = "ms",
       measure = "spawn_w4.facts.cpu_ms"},
      {ask = "And a worker forked by the fork server?",
       answer = function() return COST.forkserver.cpu end, unit = "ms",
       measure = "forkserver_w4.facts.cpu_ms"},
      {ask = "The parent sets a global in setup, after loading the file. Does a spawned "
             .. "worker see it (1 yes, 0 no)?",
       answer = function() return 0 end, unit = "", measure = "spawn_w4.facts.inherited"},
      {ask = "And a worker of the fork server (1 yes, 0 no)?",
       answer = function() return 1 end, unit = "", measure = "forkserver_w4.facts.inherited"},
    },
    explain = [[fork copies the running process: a worker is up in about a millisecond
and has everything the parent had at that moment, its globals and its open
descriptors (and its locks: see fork_with_threads). The fork server was
forked when the pool was created, from a process with one thread; its
workers are as cheap and inherit the process as it was then (setup had run:
they see its global). spawn execs a fresh program for each worker: it must
start, load the scenario and register its tasks, about ten times the CPU
of a fork per worker here, and it has only what was passed (three
descriptors and the parameters): setup's global is not there. CPython pays
far more for spawn (a new interpreter importing the main module, tens of
milliseconds per worker): see bench/python/start_method.py.]],
  },
  -- The ratios the checks rely on (docs/lua-api.md, "Ratios"): a spawned
  -- worker's start-up CPU against a forked one's, at 4 workers.
  ratios = {{"spawn_w4.facts.cpu_ms", "fork_w4.facts.cpu_ms"},
            {"spawn_w4.facts.cpu_ms", "forkserver_w4.facts.cpu_ms"}},
  checks = function(r, p, check)
    for _, m in ipairs(METHODS) do
      for _, w in ipairs(COUNTS) do
        local x = r[m .. "_w" .. w]
        check(m .. "_w" .. w .. ": every worker came up and answered",
              x.facts.workers_up == w and x.errors == 0,
              string.format("%d of %d workers, %d errors", x.facts.workers_up, w, x.errors))
      end
      local inherits = m ~= "spawn"
      check(m .. ": setup's global is " .. (inherits and "inherited" or "not inherited"),
            r[m .. "_w4"].facts.inherited == (inherits and 1 or 0),
            string.format("inherited = %d", r[m .. "_w4"].facts.inherited))
    end
    local s, f, fs = r.spawn_w4.facts, r.fork_w4.facts, r.forkserver_w4.facts
    check("spawn: a worker holds fewer descriptors than a forked one (only what is passed)",
          s.fds < f.fds, string.format("spawn %d, fork %d, forkserver %d", s.fds, f.fds, fs.fds))
    -- Measured here: a spawned worker uses about 10x a forked one's CPU to
    -- start (1.5 ms against 0.14); CPU time does not grow with the load, so
    -- 4x holds with a wide margin. Wall times (up_ms) are reported, not
    -- checked: a fork waits for the interpreter lock, so they are noisy.
    check("spawn: a worker uses more CPU to start than a forked one (4x at least)",
          s.cpu_ms > 4 * f.cpu_ms and s.cpu_ms > 4 * fs.cpu_ms,
          string.format("spawn %.2f ms, fork %.2f ms, forkserver %.2f ms of CPU per worker",
                        s.cpu_ms, f.cpu_ms, fs.cpu_ms))
  end,
}
