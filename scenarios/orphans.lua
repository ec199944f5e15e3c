-- orphans.lua: SIGKILL the parent mid-map: poolbench's fork server and workers end with it; nothing is left.
--
-- Beyond the documents (issue 13, item 6; PHENOMENA P22). When the parent of
-- a CPython Pool is killed (SIGKILL, the OOM killer), nothing runs in it to
-- stop the workers: a worker inside a task runs it to its end, orphaned all
-- that time, and ProcessPoolExecutor's workers, idle ones too, stay blocked
-- on their call queue (bench/python/orphans.py counts them).
-- poolbench's must end with it: the fork server sets PR_SET_PDEATHSIG
-- (SIGKILL) when it starts, so the kernel kills it when the parent dies,
-- and every worker, forked by the fork server, sets the same towards the
-- fork server (impls/engine/pool_forkserver.c, pool_worker.c).
--
-- How it is measured: a scenario cannot SIGKILL its own poolbench and go on
-- reporting. So the sigkill_* labels are Lua strategies that run a CHILD
-- poolbench on this very file (`run orphans.lua --impl map_async --set
-- hang_s=60`) in a process group of its own, wait until its pool is up and
-- its map under way, SIGKILL its main process only (as the OOM killer
-- would), and count the processes of its group still alive grace_s later
-- (want 0), and how long the group took to empty. Anything left is killed
-- afterwards (and counted). Every wait is bounded.

-- ---- a child poolbench, signalled (scenarios/lib/child_run.lua) ----------

local SELF = (debug.getinfo(1, "S").source:gsub("^@", ""))
local child = dofile((SELF:match("^(.*/)") or "./") .. "lib/child_run.lua")

-- A Lua strategy: SIGKILL to the main process of a child run of `label`.
local function sigkill(label)
  return function(pool, items, p)
    local o = child.child_run(SELF, p, label, "KILL", false)
    pool:fact("processes_before", o.before)
    pool:fact("pool_processes", o.pool)
    pool:fact("survivors", o.survivors)
    pool:fact("empty_ms", 1000 * o.empty_s)
    pool:fact("exit_code", o.exit_code)
    pool:note(string.format("SIGKILL to the parent of %s: %d of %d processes left (waited up to %g s); "
                              .. "the group empty after %.0f ms", label, o.survivors, o.before,
                            p.grace_s, 1000 * o.empty_s))
    for i = 1, #items do pool:final(i, nil, "killed (in the child run)") end
  end
end

local function hang_model(p) return p.hang_s end

return {
  name = "orphans",
  source = "003_148c127c0e6336ae.txt",
  summary = "SIGKILL the parent mid-map: its fork server and workers end with it, no orphans",
  doc = [[Beyond the documents (issue 13, item 6; P22). n tasks of task_ms (sleeps),
the last one sleeping hang_s. map_async and executor_map run them (wall =
hang_s): they are the programs the sigkill_* labels kill. sigkill_map_async
and sigkill_executor_map run a child poolbench on this file with that
strategy and hang_s = child_hang_s, SIGKILL its main process delay_ms after
its pool is up, and report in facts: processes_before (the child, its fork
server, its workers), survivors (processes of its group alive grace_s after
the kill; want 0, then killed), empty_ms (from the kill until the group was
empty) and exit_code (137: killed). The kernel does the work: the fork
server's PR_SET_PDEATHSIG kills it with the parent, and the workers' kills
them with the fork server. Their wall_s is the whole child run and they have
no model. bench/python/orphans.py does the same to a CPython Pool and
ProcessPoolExecutor and counts their orphans.]],
  params = {
    n            = {default = 8, quick = 8, min = 1, max = 1000, doc = "tasks (the last one is long)"},
    task_ms      = {default = 20, quick = 10, min = 1, max = 1000, doc = "sleep per ordinary task, ms"},
    hang_s       = {default = 0.5, quick = 0.3, min = 0.01, max = 3600, doc = "the long task's sleep, s"},
    workers      = {default = 2, quick = 2, min = 1, max = 64, doc = "pool processes"},
    child_hang_s = {default = 60, quick = 60, min = 1, max = 3600,
                    doc = "the long task in the child runs, s (the kill comes long before)"},
    delay_ms     = {default = 200, quick = 100, min = 0, max = 10000,
                    doc = "SIGKILL comes this long after the child's pool is up, ms"},
    exit_bound_s = {default = 5, quick = 5, min = 0.5, max = 600,
                    doc = "the longest wait for the child's pool and for its exit, s"},
    grace_s      = {default = 1, quick = 1, min = 0, max = 60,
                    doc = "survivors are counted this long after the kill, s"},
  },
  workload = function(p)
    local items = {}
    for i = 1, p.n do items[i] = p.task_ms / 1000 end
    items[p.n] = p.hang_s
    return {items = items, stages = {"sleep"}}
  end,
  strategies = {
    sigkill_map_async = sigkill("map_async"),
    sigkill_executor_map = sigkill("executor_map"),
  },
  impls = {"map_async", "executor_map", "sigkill_map_async", "sigkill_executor_map"},
  model = {map_async = hang_model, executor_map = hang_model},
  lab = {
    title = "orphans: the parent killed mid-map",
    order = 19,
    vary = {n = {4, 12}, workers = {1, 4}, task_ms = {10, 30, 10}, hang_s = {0.2, 0.6, 0.1}},
    impls = {"map_async", "sigkill_map_async"},
    questions = {
      {ask = "%n tasks on %workers workers, the last one sleeping %hang_s s: how long does "
             .. "map_async take?",
       answer = hang_model, unit = "s", measure = "map_async"},
      {ask = "A child poolbench runs the same map; its main process is SIGKILLed mid-map. "
             .. "How many processes of its group (the child, its fork server, its workers) "
             .. "were there before the kill?",
       answer = function(p) return p.workers + 2 end,
       measure = "sigkill_map_async.facts.processes_before"},
      {ask = "How many of them are still alive %grace_s s after the kill?",
       answer = function() return 0 end, measure = "sigkill_map_async.facts.survivors"},
    },
    explain = [[SIGKILL gives the parent no chance to clean up: no handler, no atexit,
no terminate(). What ends its processes is the kernel: the fork server asked
for PR_SET_PDEATHSIG (SIGKILL) when it started, so it dies with the parent,
and each worker asked the same towards the fork server, so the %workers
workers follow within milliseconds, even the one inside its long task.
CPython does not do this: a Pool worker inside its task outlives the parent
until the task ends (idle ones see EOF on the task pipe and exit), and a
ProcessPoolExecutor's workers, idle ones too, stay blocked on its call queue
(bench/python/orphans.py counts them: 1 of 2 and 2 of 2 on this machine).]],
    exercise = {
      reference = "map_async",
      margin = 0.5,
      task = [[There is no fix to write here (the kernel ends the processes): write the
strategy the lab's child runs, pool:map_async of the items, get() its values,
and report each with pool:final(i, value).]],
      skeleton = [[
return function(pool, items, p)
  -- TODO: map_async, get, and pool:final for each item
end
]],
    },
  },
  -- The ratios the checks rely on, for `poolbench compare` (docs/lua-api.md,
  -- "Ratios"): the share of the child's processes left after the kill.
  ratios = {{"sigkill_map_async.facts.survivors", "sigkill_map_async.facts.processes_before"},
            {"sigkill_executor_map.facts.survivors", "sigkill_executor_map.facts.processes_before"}},
  cleanup = function()
    child.cleanup()
  end,
  checks = function(r, p, check)
    -- The lab's labels first (sigkill_map_async, map_async): a run with
    -- --impl stops the checks at the first label it left out.
    local function killed(label)
      local f = r[label].facts
      -- (pool_processes: poolbench's child, fork server and workers; CPython's
      -- fork start method has no fork server)
      check(label .. ": the child had its pool up when it was killed",
            f.processes_before >= f.pool_processes,
            string.format("%d processes in its group, %d with its pool up (%d workers)",
                          f.processes_before, f.pool_processes, p.workers))
      check(label .. ": no orphans: nothing of its group is alive after the kill",
            f.survivors == 0,
            string.format("%d of %d left (waited up to %g s); the group was empty after %.1f ms",
                          f.survivors, f.processes_before, p.grace_s, f.empty_ms))
    end
    local function ran(label)
      local x = r[label]
      check(label .. ": runs to its long task's end",
            x.results == p.n and x.errors == 0 and x.wall_s >= 0.9 * x.model_s,
            string.format("%.3f s, hang_s %.3f s; %d results", x.wall_s, p.hang_s, x.results))
    end
    killed("sigkill_map_async")
    ran("map_async")
    killed("sigkill_executor_map")
    ran("executor_map")
  end,
}
