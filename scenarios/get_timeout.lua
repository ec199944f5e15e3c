-- get_timeout.lua: get(timeout) raises, but the task runs on and holds its worker; a per-task time limit frees it.
--
-- Beyond the documents (issue 13, item 3; PHENOMENA P19). h.get(timeout)
-- bounds the caller's wait and nothing else: the TimeoutError says the
-- result is not there yet, the task goes on running, and its worker takes
-- no other work until it ends. Work submitted after the timeout waits for
-- it. A per-task time limit (poolbench's task_timeout; billiard's
-- time_limit; CPython's Pool has none) kills the worker at the limit and
-- starts another: the later work runs from then on.
--
-- One worker, one long task, then `later` short ones. held: the long task
-- runs long_ms (shorter than the limit, so it ends by itself). limited: it
-- would run LONG_LIMITED_MS, far past the limit, and is killed at LIMIT_S.
-- Both strategies are the same Lua code; the times are facts measured on
-- pb.now(), the one clock of every process: the long task's end (the
-- worker's clock when it returns; the parent's when its get fails with the
-- limit) and the first later task's start (the worker's clock).

-- The per-task time limit of the whole run (task_timeout below; a
-- --task-timeout on the command line replaces it, and the model with it).
local LIMIT_S = 0.5
-- limited's long task: ten times the limit.
local LONG_LIMITED_MS = 5000

-- A task that sleeps s seconds and says when it ran, on pb.now()'s clock.
local function timed(s)
  local t = pb.now()
  pb.sleep(s)
  return {t, pb.now()}
end

-- The strategy both labels run, as Python would:
--   h = pool.apply_async(f, (long,))
--   try: h.get(timeout)
--   except TimeoutError: pass        # the task runs on
--   later = [pool.apply_async(f, (x,)) for x in rest]
local function submit_after_timeout(pool, items, p)
  local t0 = pb.now()
  local ms = function(t) return 1000 * (t - t0) end
  pool:fact("long_ms", 1000 * items[1])
  local long = pool:apply_async("timed", {items[1]})
  local ok, err = pcall(long.get, long, p.timeout_ms / 1000)
  pool:fact("timed_out", (not ok and tostring(err):find("TimeoutError", 1, true)) and 1 or 0)
  local timeout_at = ms(pb.now())
  pool:fact("timeout_ms", timeout_at)
  local later = {}
  for i = 2, #items do later[i] = pool:apply_async("timed", {items[i]}) end
  -- Bounded: the limit, or the long task's own end, comes long before.
  local bound = 2 * math.max(items[1], LIMIT_S) + 5
  local lok, v = pcall(long.get, long, bound)
  local long_end = lok and ms(v[2]) or ms(pb.now())
  pool:fact("long_done", lok and 1 or 0)
  pool:fact("long_killed", (not lok and tostring(v):find("time limit", 1, true)) and 1 or 0)
  pool:fact("long_end_ms", long_end)
  pool:final(1, lok and v[2] - v[1] or nil, (not lok) and v or nil)
  local first = math.huge
  for i = 2, #items do
    local iok, w = pcall(later[i].get, later[i], bound)
    if iok then first = math.min(first, ms(w[1])) end
    pool:final(i, iok and w[2] - w[1] or nil, (not iok) and w or nil)
  end
  pool:fact("later_start_ms", first)
  pool:note(string.format("TimeoutError at %.0f ms; the long task ended at %.0f ms (%s); "
                          .. "the later work started at %.0f ms", timeout_at,
                          long_end, lok and "done" or "killed", first))
end

-- A fact in ms for a check's detail; '-' where the run did not report it.
local function ms(v) return v and string.format("%.0f", v) or "-" end

local function held_model(p) return (p.long_ms + (p.later) * p.later_ms) / 1000 end
local function limited_model(p) return LIMIT_S + p.later * p.later_ms / 1000 end

return {
  name = "get_timeout",
  source = "002_2fab88b10910dd43.txt",
  summary = "get(timeout) raises but the task holds its worker; a per-task time limit frees it",
  doc = [[Beyond the documents (issue 13, item 3; P19). One worker. A long task is
submitted with apply_async, get(timeout_ms) raises TimeoutError, then
`later` tasks of later_ms are submitted. held: the long task runs long_ms
and the later work waits for it: it starts at long_ms, not at timeout_ms.
limited: the long task would run 5000 ms; the run's per-task time limit
(task_timeout = 0.5 s in this file; --task-timeout replaces it) kills its
worker at 0.5 s, the item fails with the limit's error, a new worker
starts, and the later work runs from there. Facts (ms from the strategy's
start, on pb.now()): long_ms (the long task's length), timed_out,
timeout_ms, long_done, long_killed, long_end_ms, later_start_ms. Model: long_ms (or the limit) + later *
later_ms. bench/python/get_timeout.py: held with CPython (whose Pool has
no per-task time limit; billiard's has: limited is in its CANNOT).]],
  params = {
    long_ms    = {default = 300, quick = 200, min = 1, max = 100000,
                  doc = "the long task, ms (limited sets 5000: past the limit)"},
    timeout_ms = {default = 100, quick = 50, min = 1, max = 100000, doc = "get(timeout), ms"},
    later      = {default = 3, quick = 2, min = 1, max = 1000, doc = "tasks submitted after the timeout"},
    later_ms   = {default = 20, quick = 10, min = 1, max = 10000, doc = "each later task, ms"},
    workers    = {default = 1, quick = 1, min = 1, max = 1, doc = "pool processes (one: the one held)"},
  },
  task_timeout = LIMIT_S,
  tasks = {timed = timed},
  workload = function(p)
    local items = {p.long_ms / 1000}
    for i = 1, p.later do items[1 + i] = p.later_ms / 1000 end
    return {items = items, stages = {"timed"}}
  end,
  strategies = {submit_after_timeout = submit_after_timeout},
  impls = {
    {impl = "submit_after_timeout", label = "held"},
    {impl = "submit_after_timeout", label = "limited", set = {long_ms = LONG_LIMITED_MS}},
  },
  model = {held = held_model, limited = limited_model},
  lab = {
    title = "get_timeout: the timeout ends the wait, not the task",
    order = 21,
    vary = {long_ms = {150, 400, 50}, timeout_ms = {20, 100, 20}, later = {1, 4}},
    where = function(p) return p.long_ms >= 2 * p.timeout_ms and p.long_ms <= 0.8 * LIMIT_S * 1000 end,
    questions = {
      {ask = "One worker. A task of %long_ms ms, get(%timeout_ms / 1000) raises TimeoutError, "
             .. "then %later tasks are submitted. When does the first of them start (ms)?",
       answer = function(p) return p.long_ms end, unit = "ms", measure = "held.facts.later_start_ms"},
      {ask = "The long task would run 5000 ms, and each task may run 500 ms at most "
             .. "(task_timeout): when does the later work start (ms)?",
       answer = function() return 1000 * LIMIT_S end, unit = "ms",
       measure = "limited.facts.later_start_ms"},
      {ask = "And how long does the whole strategy take?",
       answer = limited_model, unit = "s", measure = "limited"},
    },
    explain = [[get(timeout) is a bounded wait for the caller: at %timeout_ms ms it raises
TimeoutError and the caller goes on, but nothing tells the worker. The task
runs its %long_ms ms, and the pool's only worker takes the later tasks after
it: they start at %long_ms ms. To free the worker the task itself must end:
a per-task time limit (poolbench's task_timeout, billiard's time_limit)
kills the worker at the limit and starts another, the task fails with the
limit's error and the later work starts at about the limit. CPython's Pool
has no such limit: terminate() the pool, or make the task check a deadline.]],
    exercise = {
      reference = "limited",
      margin = 0.5,
      task = [[The first item is a task that would run 5 s; the run limits each task to
0.5 s. Submit it with pool:apply_async, wait for it with a timeout of
p.timeout_ms ms (h:get raises "TimeoutError: ..."), then submit the other
items and report every item with pool:final(i, value) or pool:final(i, nil,
err): the first one fails with the time limit, the others run once its
worker is replaced.]],
      skeleton = [[
return function(pool, items, p)
  local task = pool.stages[1]
  local long = pool:apply_async(task, {items[1]})
  -- TODO: a bounded wait (pcall), then the other items; report each one
  local v = long:get()
  pool:final(1, v)
end
]],
    },
  },
  -- The ratios the checks rely on, for `poolbench compare` (docs/lua-api.md,
  -- "Ratios"): the later work's start against the timeout (held: the task
  -- held the worker long past it), and against the long task's own length
  -- (limited: the limit freed the worker long before it).
  ratios = {{"held.facts.later_start_ms", "held.facts.timeout_ms"},
            {"limited.facts.later_start_ms", "limited.facts.long_ms"}},
  checks = function(r, p, check)
    local h = r.held
    local f = h.facts
    if p.timeout_ms < p.long_ms then
      check("held: get(timeout) raised TimeoutError at the timeout",
            f.timed_out == 1 and f.timeout_ms >= 0.9 * p.timeout_ms,
            string.format("raised at %.0f ms, timeout %d ms", f.timeout_ms, p.timeout_ms))
    else -- a timeout longer than the task: get returned its value
      check("held: the timeout is longer than the task: get returned, nothing was raised",
            f.timed_out == 0, string.format("returned at %.0f ms, timeout %d ms, task %d ms",
                                            f.timeout_ms, p.timeout_ms, p.long_ms))
    end
    check("held: the long task ran on to its end after the TimeoutError",
          f.long_done == 1 and f.long_end_ms >= 0.95 * p.long_ms,
          string.format("ended at %.0f ms, long_ms %d", f.long_end_ms, p.long_ms))
    check("held: the later work started only after the long task ended",
          f.later_start_ms >= f.long_end_ms - 1 and h.results == p.later + 1 and h.errors == 0,
          string.format("later work at %.0f ms, long task ended at %.0f ms (timeout at %.0f ms)",
                        f.later_start_ms, f.long_end_ms, f.timeout_ms))
    local l = r.limited
    local g = l.facts
    local would = LONG_LIMITED_MS
    check("limited: get(timeout) raised, and the limit killed the long task (its item failed)",
          g.timed_out == 1 and g.long_killed == 1 and l.errors == 1
            and tostring(l.first_error):find("time limit", 1, true) ~= nil,
          string.format("%d errors: %s", l.errors, tostring(l.first_error)))
    -- Half of what the task would have held the worker: generous against
    -- the limit (a tenth of it; a fifth with --task-timeout 1) plus a
    -- worker's restart under load.
    check("limited: the later work started at the limit, long before the task would have ended",
          -- (the kill is seen in the parent a little after the new worker
          -- may start: 50 ms of slack on the two clocks' readers)
          -- (a run with no time limit, CPython's, has neither fact: a failed check)
          g.later_start_ms ~= nil and g.long_end_ms ~= nil
            and g.later_start_ms >= g.long_end_ms - 50 and g.later_start_ms < would / 2
            and l.results == p.later + 1,
          string.format("later work at %s ms, the task killed at %s ms, it would have run %d ms",
                        ms(g.later_start_ms), ms(g.long_end_ms), would))
  end,
}
