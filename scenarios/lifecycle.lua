-- lifecycle.lua: join before close is refused, close refuses new work but finishes the queued, terminate drops the unfinished (documents 004, 002).
--
-- Document 004 lists the pool's calls and their order: close() "stops the
-- pool accepting new tasks", terminate() "ends the workers, leaving the
-- unprocessed tasks", join() "waits for the workers to exit, and must come
-- after close or terminate". The lifecycle strategy is a probe: it tries
-- each rule on a pool with sleeping tasks queued and reports what happened
-- as facts, which the checks read.

return {
  name = "lifecycle",
  source = "004_fb99f51ccaea3c91.txt",
  summary = "join before close is refused; close finishes queued work but takes no more; terminate drops it",
  doc = [[Phenomenon P13. n tasks of t_ms (sleeps) on `workers` processes. The
lifecycle strategy runs the workload twice. First: submit every task, then
join() while the pool still runs (refused: CPython raises
ValueError("Pool is still running"), PHENOMENA.md), close(), one more
apply_async (refused: CPython's pool.py raises ValueError("Pool not
running"), not quoted in PHENOMENA.md), then wait:
every task queued before close still runs (done_after_close = n). Its wall
time is that run's, so the model is ceil(n/w)*t_ms. Second: submit every
task and terminate() at once: the workers are killed and every job not yet
finished fails (terminated_jobs), in a time (terminate_s) that has nothing to
do with the work dropped: killing and reaping w processes, a few
milliseconds, against the terminated_jobs*t_ms/w seconds the dropped work
would have taken. The checks read the strategy's facts: both refusals,
done_after_close == n, terminated_jobs > 0, done_before_terminate +
terminated_jobs == n, and terminate_s under a tenth of the dropped work's
time (a ratio, not a time). Document 004 states the rules without figures.]],
  params = {
    n       = {default = 16,  quick = 8,  min = 1, max = 10000, doc = "tasks queued"},
    workers = {default = 4,   quick = 2,  min = 1, max = 64, doc = "pool processes"},
    t_ms    = {default = 200, quick = 100, min = 1, max = 100000, doc = "each task (a sleep), ms"},
  },
  tasks = {
    nap = function(x) pb.sleep(P.t_ms / 1000) return x end,
  },
  workload = function(p) return {items = p.n, stages = {"nap"}} end,
  impls = {"lifecycle"},
  model = {
    lifecycle = function(p) return math.ceil(p.n / p.workers) * p.t_ms / 1000 end,
  },
  -- The classroom lab: `poolbench lab lifecycle` (docs/labs/11-lifecycle.md).
  lab = {
    -- The exercise "write the fix" (`poolbench lab lifecycle --exercise`).
    exercise = {
      reference = "lifecycle",
      margin = 1.0,
      task = [[No fix: the lab is about what a pool refuses and drops. Write the
orderly shutdown: submit every item, close(), join(), then read each handle
into pool:final. Try join() before close() in a pcall: it raises
ValueError, as CPython's "Pool is still running".]],
      skeleton = [[
return function(pool, items, p)
  local task, h = pool.stages[1], {}
  for i, item in ipairs(items) do h[i] = pool:apply_async(task, {item}) end
  -- TODO: close, join, then read every handle (pool:final)
end
]],
    },
    title = "close, join, terminate: what a pool refuses and what it drops",
    order = 11,
    vary = {n = {8, 16, 4}, workers = {2, 4}, t_ms = {150, 250, 50}},
    questions = {
      {ask = "%n tasks of %t_ms ms queued on %workers workers; join() while the pool still "
             .. "runs. Refused? (1 yes, 0 no)",
       answer = function(p) return 1 end, measure = "lifecycle.facts.join_before_close_refused"},
      {ask = "close(), then join(): how many of the %n queued tasks still run?",
       answer = function(p) return p.n end, measure = "lifecycle.facts.done_after_close"},
      {ask = "How long does that run take, close and join included?",
       answer = function(p) return math.ceil(p.n / p.workers) * p.t_ms / 1000 end,
       unit = "s", measure = "lifecycle"},
      {ask = "The %n tasks again, then terminate() at once: how many jobs fail?",
       answer = function(p) return p.n end, measure = "lifecycle.facts.terminated_jobs"},
    },
    explain = [[join() waits for the workers to exit, and they exit only when
told there is no more work, so it is refused while the pool accepts work
(CPython: ValueError("Pool is still running")). close() is that message: no
new work is accepted, but everything queued still runs, so close + join
waits for all %n tasks, ceil(n/w)*t = ceil(%n/%workers)*%t_ms ms.
terminate() kills the workers: every job not finished fails with "pool
terminated" at once, here all %n since none had a chance to finish, and it
takes milliseconds, not the work's time.]],
  },
  -- The ratios the checks rely on, for `poolbench compare` (docs/lua-api.md, "Ratios"); the
  -- first is the key ratio: close then join / the model: "waited for the work"; terminate / the
  -- run.
  ratios = {{"lifecycle", "lifecycle.model_s"}, {"lifecycle.facts.terminate_s", "lifecycle"}},
  checks = function(r, p, check)
    local x = r.lifecycle
    local f = x.facts or {}
    check("join before close refused (CPython: ValueError(\"Pool is still running\"))",
          f.join_before_close_refused == 1,
          string.format("join_before_close_refused = %s", tostring(f.join_before_close_refused)))
    check("submit after close refused (CPython: ValueError(\"Pool not running\"))",
          f.submit_after_close_refused == 1,
          string.format("submit_after_close_refused = %s", tostring(f.submit_after_close_refused)))
    check("close let the queued work finish",
          f.done_after_close == p.n and x.results == p.n and x.errors == 0,
          string.format("done_after_close = %s of %d; %d results, %d errors",
                        tostring(f.done_after_close), p.n, x.results, x.errors))
    check("close then join waited for the work (wall >= ceil(n/w)*t)",
          x.wall_s >= 0.95 * x.model_s,
          string.format("%.3f s, model %.3f s", x.wall_s, x.model_s))
    local dropped, before = f.terminated_jobs or 0, f.done_before_terminate or -1
    check("terminate dropped unfinished work; every job either done or dropped",
          dropped > 0 and before + dropped == p.n,
          string.format("terminated_jobs = %d, done_before_terminate = %d, n = %d", dropped,
                        before, p.n))
    local work_s = dropped * p.t_ms / 1000 / p.workers
    local ts = f.terminate_s or math.huge
    check("terminate takes far less than the work it dropped (under a tenth)",
          ts < 0.1 * work_s,
          string.format("terminate_s = %.1f ms, the dropped work %.3f s on %d workers: %.1f%%",
                        1e3 * ts, work_s, p.workers, 100 * ts / work_s))
  end,
}
