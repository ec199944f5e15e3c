-- interrupt.lua: a map waits for its slowest task; get(timeout) bounds the wait, and Ctrl-C ends a poolbench map at once.
--
-- Beyond the documents (issue 13, item 7; PHENOMENA P23). A task that hangs
-- holds every blocking API hostage: map, imap and an executor's map all wait
-- for it. In CPython 2, Pool.map's wait could not even be interrupted by
-- Ctrl-C (bpo-8296); the fixes people give are map_async(...).get(timeout)
-- (a bounded wait, which also lets the signal in) and ignoring SIGINT in the
-- workers' initializer (so that Ctrl-C does not kill each worker with a
-- traceback while the parent waits). bench/python/interrupt.py shows what
-- CPython 3 does.
--
-- How Ctrl-C is measured: a scenario cannot interrupt its own poolbench and
-- go on reporting (SIGINT ends the run with exit 130). So the sigint_*
-- labels are Lua strategies that run a CHILD poolbench on this very file
-- (`run interrupt.lua --impl map_async --set hang_s=60`), in a process group
-- of its own as a shell's foreground job is, wait until its pool is up and
-- its map under way, send SIGINT to the whole group as Ctrl-C does, and
-- measure the time until the child exits, its exit status, and the processes
-- of its group still alive afterwards (its fork server and workers). The
-- time includes starting `kill` from a shell (about a millisecond). Every
-- wait is bounded: a child that does not exit within exit_bound_s is killed
-- with its group and reported hung.

-- ---- a child poolbench, signalled (scenarios/lib/child_run.lua) ----------

local SELF = (debug.getinfo(1, "S").source:gsub("^@", ""))
local child = dofile((SELF:match("^(.*/)") or "./") .. "lib/child_run.lua")

-- A Lua strategy: Ctrl-C on a child run of `label`; facts and a note.
local function sigint(label)
  return function(pool, items, p)
    local o = child.child_run(SELF, p, label, "INT", true)
    pool:fact("exit_ms", 1000 * o.exit_s)
    pool:fact("exit_code", o.exit_code)
    pool:fact("hung", o.hung and 1 or 0)
    pool:fact("processes_before", o.before)
    pool:fact("pool_processes", o.pool)
    pool:fact("survivors", o.survivors)
    pool:note(string.format("Ctrl-C on %s: exit %d after %.0f ms; %d of %d processes left",
                            label, o.exit_code, 1000 * o.exit_s, o.survivors, o.before))
    for i = 1, #items do pool:final(i, nil, "interrupted (in the child run)") end
  end
end

local SIGINT_LABELS = {sigint_map_async = "map_async", sigint_imap = "imap",
                       sigint_executor_map = "executor_map"}

local function hang_model(p) return p.hang_s end

return {
  name = "interrupt",
  source = "002_2fab88b10910dd43.txt",
  summary = "a hung task holds map; get(timeout) bounds the wait; Ctrl-C ends poolbench's map at once",
  doc = [[Beyond the documents (issue 13, item 7; P23). n tasks of task_ms (sleeps),
the last one hanging for hang_s. map_async, imap and executor_map each wait
for it: wall = hang_s. get_timeout is the usual fix, map_async(...).get(
timeout_ms): TimeoutError at timeout_ms, then terminate(): wall =
timeout_ms, the items counted as errors. sigint_map_async, sigint_imap and
sigint_executor_map run a child poolbench on this file with that strategy
and hang_s = child_hang_s, send Ctrl-C (SIGINT to its process group) delay_ms
after its pool is up, and report in facts: exit_ms (signal to exit),
exit_code (130), hung, processes_before (the child, its fork server and its
workers) and survivors (processes of the group alive grace_s after the
exit; want 0). poolbench's workers ignore SIGINT (the fork server sets it)
and the parent's handler terminates the pool: one orderly exit, no worker
tracebacks. Their wall_s is the whole child run and they have no model; the
figure is exit_ms. bench/python/interrupt.py runs the same with CPython.]],
  params = {
    n            = {default = 8, quick = 8, min = 1, max = 1000, doc = "tasks (the last one hangs)"},
    task_ms      = {default = 20, quick = 10, min = 1, max = 1000, doc = "sleep per ordinary task, ms"},
    hang_s       = {default = 1, quick = 0.5, min = 0.01, max = 3600, doc = "the hung task's sleep, s"},
    timeout_ms   = {default = 200, quick = 100, min = 1, max = 100000, doc = "get_timeout's get(timeout), ms"},
    workers      = {default = 2, quick = 2, min = 1, max = 64, doc = "pool processes"},
    child_hang_s = {default = 60, quick = 60, min = 1, max = 3600,
                    doc = "the hung task in the child runs, s (Ctrl-C comes long before)"},
    delay_ms     = {default = 200, quick = 100, min = 0, max = 10000,
                    doc = "Ctrl-C comes this long after the child's pool is up, ms"},
    exit_bound_s = {default = 5, quick = 2, min = 0.5, max = 600,
                    doc = "a child not gone this long after the signal is killed and counted hung"},
    grace_s      = {default = 1, quick = 1, min = 0, max = 60,
                    doc = "how long the child's group may take to empty after its exit, s"},
  },
  workload = function(p)
    local items = {}
    for i = 1, p.n do items[i] = p.task_ms / 1000 end
    items[p.n] = p.hang_s
    return {items = items, stages = {"sleep"}}
  end,
  strategies = {
    -- pool.map_async(f, items).get(timeout): bounded; then terminate().
    get_timeout = function(pool, items, p)
      local h = pool:map_async(pool.stages[1], items)
      local ok, values = pcall(h.get, h, p.timeout_ms / 1000)
      if ok then
        for i = 1, #items do pool:final(i, values[i]) end
      else
        pool:terminate() -- the hung task would hold close()/join() for hang_s
        for i = 1, #items do pool:final(i, nil, values) end
      end
    end,
    sigint_map_async = sigint(SIGINT_LABELS.sigint_map_async),
    sigint_imap = sigint(SIGINT_LABELS.sigint_imap),
    sigint_executor_map = sigint(SIGINT_LABELS.sigint_executor_map),
  },
  impls = {"map_async", "imap", "executor_map", "get_timeout",
           "sigint_map_async", "sigint_imap", "sigint_executor_map"},
  model = {
    map_async = hang_model,
    imap = hang_model,
    executor_map = hang_model,
    get_timeout = function(p) return math.min(p.timeout_ms / 1000, p.hang_s) end,
  },
  lab = {
    title = "interrupt: a hung task, get(timeout), and Ctrl-C",
    order = 18,
    vary = {n = {4, 12}, task_ms = {10, 30, 10}, hang_s = {0.3, 1.0, 0.1},
            timeout_ms = {50, 200, 50}},
    where = function(p) return p.timeout_ms / 1000 <= p.hang_s / 2 end,
    impls = {"map_async", "get_timeout", "sigint_map_async"},
    questions = {
      {ask = "%n tasks of %task_ms ms on %workers workers, the last one hanging for %hang_s s. "
             .. "How long does map_async(...).get() take?",
       answer = hang_model, unit = "s", measure = "map_async"},
      {ask = "get_timeout calls get(%timeout_ms / 1000) instead, then terminate(). How long?",
       answer = function(p) return math.min(p.timeout_ms / 1000, p.hang_s) end, unit = "s",
       measure = "get_timeout"},
      {ask = "Ctrl-C on a poolbench map whose task hangs for %child_hang_s s: how many "
             .. "processes of its group are left a second after it exits?",
       answer = function() return 0 end, measure = "sigint_map_async.facts.survivors"},
      {ask = "... and its exit status?",
       answer = function() return 130 end, measure = "sigint_map_async.facts.exit_code"},
    },
    explain = [[A blocking map returns when its last task does: a task that hangs for
%hang_s s holds map_async, imap and executor_map for %hang_s s alike. A
bounded wait, get(timeout), gives control back after %timeout_ms ms with a
TimeoutError; the task still runs, so the strategy terminates the pool (close
and join would wait for it). Ctrl-C reaches the whole foreground group: in
poolbench the fork server and the workers ignore SIGINT, the parent's
handler terminates the pool and exits 130 within milliseconds, and nothing
of its group is left. In CPython (bench/python/interrupt.py) every worker
gets the KeyboardInterrupt too and prints its traceback, unless the
initializer ignores SIGINT, which is the second usual fix.]],
    exercise = {
      reference = "get_timeout",
      margin = 0.5,
      task = [[One task hangs. Wait for the map at most p.timeout_ms milliseconds
(h:get(timeout) raises "TimeoutError: ..."), then terminate the pool so that
nothing waits for the hung task, and report every item with pool:final(i, nil,
err) (or its value when the map finished in time).]],
      skeleton = [[
return function(pool, items, p)
  local h = pool:map_async(pool.stages[1], items)
  -- TODO: a bounded wait, then terminate on a timeout
  local values = h:get()
  for i = 1, #items do pool:final(i, values[i]) end
end
]],
    },
  },
  -- The ratios the checks rely on, for `poolbench compare` (docs/lua-api.md,
  -- "Ratios"): the bounded wait against the hung map; the processes left.
  ratios = {{"get_timeout", "map_async"},
            {"sigint_map_async.facts.survivors", "sigint_map_async.facts.processes_before"},
            {"sigint_executor_map.facts.survivors", "sigint_executor_map.facts.processes_before"}},
  cleanup = function()
    child.cleanup()
  end,
  checks = function(r, p, check)
    -- In the order the lab's labels come first (map_async, get_timeout,
    -- sigint_map_async): a run with --impl stops the checks at the first
    -- label it left out.
    local function ctrl_c(label)
      local f, inner = r[label].facts, SIGINT_LABELS[label]
      -- Within exit_bound_s at most (the hang is child_hang_s): exiting in
      -- time at all is the point; the measured figure is printed.
      check(label .. ": Ctrl-C ends the child's " .. inner .. " with status 130, at once",
            f.exit_code == 130 and f.hung == 0,
            string.format("exit %d after %.1f ms (its task hangs %g s); %d processes before",
                          f.exit_code, f.exit_ms, p.child_hang_s, f.processes_before))
      check(label .. ": nothing of the child's group is left",
            f.survivors == 0 and f.processes_before >= f.pool_processes,
            string.format("%d of %d processes left (waited up to %g s after the exit; %d with "
                          .. "its pool up)", f.survivors, f.processes_before, p.grace_s,
                          f.pool_processes))
    end
    local function waits(label)
      local x = r[label]
      check(label .. ": waits for the hung task",
            x.wall_s >= 0.9 * x.model_s and x.wall_s <= 1.5 * x.model_s + 0.1,
            string.format("%.3f s, hang_s %.3f s", x.wall_s, p.hang_s))
    end
    ctrl_c("sigint_map_async")
    local g = r.get_timeout
    check("get_timeout: returns at its timeout, the items failed with TimeoutError",
          g.wall_s >= 0.9 * g.model_s and g.wall_s <= 1.5 * g.model_s + 0.1
            and g.errors == p.n and tostring(g.first_error):find("TimeoutError", 1, true) ~= nil,
          string.format("%.3f s, timeout %.3f s; %d errors: %s", g.wall_s, g.model_s, g.errors,
                        tostring(g.first_error)))
    waits("map_async")
    ctrl_c("sigint_imap")
    ctrl_c("sigint_executor_map")
    waits("imap")
    waits("executor_map")
  end,
}
