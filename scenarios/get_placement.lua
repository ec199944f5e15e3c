-- get_placement.lua: get() right after apply_async makes a pool synchronous; get() after the loop keeps it parallel (documents 001, 002).
--
-- Document 001 collects the AsyncResult handles in a list and calls get()
-- on them after the loop, and warns: written inside the for loop, get()
-- "turns it synchronous, and efficiency will be very low". Document 002
-- says the same of apply(). Here one stage of task_ms per item runs three
-- ways: get at once (async_get_loop), get after (async_get_after) and
-- apply() (apply_sync), which is what get at once amounts to.
-- How much a busy machine stretched a run (scenarios/lib/stretch.lua).
local stretch_of = dofile(((debug.getinfo(1, "S").source:gsub("^@", "")):match("^(.*/)") or "./")
                          .. "lib/stretch.lua")

return {
  name = "get_placement",
  source = "001_f61eaeda99fb6a3d.txt",
  summary = "apply_async(...).get() at once is synchronous; get() after the loop is parallel",
  doc = [[Phenomenon P3. Each of n items is one task that sleeps task_ms.
async_get_loop calls get() on every apply_async as soon as it is submitted,
so the loop waits for each task before it submits the next one: the pool runs
one task at a time, n*t, whatever the number of workers. apply_sync (apply()
in a loop) is the same thing by another name: n*t. async_get_after submits
every task first, keeps the handles, and calls get() on them after the loop:
every worker stays busy, ceil(n/w)*t. With the defaults (n=8, w=4, 50 ms) the
model says 0.40 s against 0.10 s, 4x. Document 001 gives no figure ("the
efficiency will be very low"), nor does PHENOMENA.md for CPython (P3 has
none; the two-stage form of the same mistake, P1, measured 0.478 s against
0.220 s, PHENOMENA.md, CPython 3.11 on a 2-core machine). Sleep tasks: the
result does not depend on the core count.]],
  params = {
    n       = {default = 8,  quick = 8,  min = 1, max = 10000, doc = "items (one task each)"},
    workers = {default = 4,  quick = 4,  min = 1, max = 64,    doc = "pool processes"},
    -- quick = 50 ms (was 20): the sequential labels hand each task over
    -- one at a time, and at a load average of 9 on 2 cores each hand-off
    -- lost tens of ms; with 20 ms tasks apply_sync missed its model's band
    -- in 3 of 6 runs, with 50 ms in 0 of 6 (a quick run ~1 s).
    task_ms = {default = 50, quick = 50, min = 1, max = 10000, doc = "sleep per task, ms"},
  },
  -- Three runs each, the wall time their median: at a load average of 9 on
  -- 2 cores one run in several loses 0.1-0.2 s to a descheduling
  -- (async_get_after 0.264 s for a model of 0.100 s, its tasks stretched
  -- only 1.24x), which a single run turns into a failed band.
  repeats = 3,
  tasks = {
    work = function(x) pb.sleep(P.task_ms / 1000) return x end,
  },
  workload = function(p) return {items = p.n, stages = {"work"}} end,
  impls = {"async_get_loop", "async_get_after", "apply_sync"},
  model = {
    async_get_loop  = function(p) return p.n * p.task_ms / 1000 end,
    async_get_after = function(p) return math.ceil(p.n / p.workers) * p.task_ms / 1000 end,
    apply_sync      = function(p) return p.n * p.task_ms / 1000 end,
  },
  -- The classroom lab: `poolbench lab get_placement` (docs/labs/02-get_placement.md).
  lab = {
    -- The exercise "write the fix" (`poolbench lab get_placement --exercise`).
    exercise = {
      reference = "async_get_after",
      task = [[get() right after apply_async waits for that task before the next is
submitted: the pool runs one task at a time. Submit every item first,
keep the handles, and only then get() each one (pcall it: a failed task
raises; report it with pool:final(i, nil, err)).]],
      skeleton = [[
return function(pool, items, p)
  local task = pool.stages[1]
  for i, item in ipairs(items) do
    -- TODO: this is the trap: the get() waits for each task in turn.
    local v = pool:apply_async(task, {item}):get()
    pool:final(i, v)
  end
end
]],
    },
    title = "get() at once or get() after: where one call makes a pool serial",
    order = 2,
    vary = {n = {6, 12}, workers = {3, 6}, task_ms = {20, 60, 10}},
    questions = {
      {ask = "%n tasks of %task_ms ms each on a pool of %workers workers. get at once: "
             .. "apply_async(...).get() inside the submit loop. How long does the loop take?",
       answer = function(p) return p.n * p.task_ms / 1000 end,
       unit = "s", measure = "async_get_loop"},
      {ask = "get after: apply_async every task, keep the handles, call get() on them after "
             .. "the loop. How long?",
       answer = function(p) return math.ceil(p.n / p.workers) * p.task_ms / 1000 end,
       unit = "s", measure = "async_get_after"},
      {ask = "apply() in the loop (apply_sync). How long?",
       answer = function(p) return p.n * p.task_ms / 1000 end,
       unit = "s", measure = "apply_sync"},
      {ask = "How many times faster is get after than get at once?",
       answer = function(p) return p.n / math.ceil(p.n / p.workers) end,
       measure = function(r) return r.async_get_loop.wall_s / r.async_get_after.wall_s end},
    },
    explain = [[get() blocks until that task's result is back, so get at once
submits the next task only when the previous one is done: one task in flight,
n*t = %n*%task_ms ms, however many workers wait. apply() is the same thing
under another name. get after puts every task in the queue first; the
%workers workers take them as they free up, ceil(n/w) rounds of t =
ceil(%n/%workers)*%task_ms ms. The ratio is n/ceil(n/w): the pool's size when
w divides n, less when the last round is partly idle.]],
  },
  -- The ratios the checks rely on, for `poolbench compare` (docs/lua-api.md, "Ratios"); the
  -- first is the key ratio: get at once / get after: "get at once at least 1.6x slower than get
  -- after".
  ratios = {{"async_get_loop", "async_get_after"}, {"apply_sync", "async_get_after"}},
  checks = function(r, p, check)
    -- How much the machine stretched this run's tasks: their time on the
    -- workers (busy_s) over their sleeps, n * t. 1.0 on an idle machine; a
    -- loaded one wakes each sleep late, and the wall times are judged
    -- against the model scaled by it (two runs a second apart on a loaded
    -- machine are not stretched alike: apply_sync +100% over the nominal
    -- model and the ratio under 1.6x were seen at load averages of 10-18).
    local function stretch(x) return stretch_of(x, p.n * p.task_ms / 1000) end
    local at_once, after = r.async_get_loop, r.async_get_after
    local predicted = at_once.model_s / after.model_s
    local sa, sf = stretch(at_once), stretch(after)
    check("get at once at least 1.6x slower than get after",
          at_once.wall_s / sa >= 1.6 * after.wall_s / sf,
          string.format("%.3f s vs %.3f s: %.2fx; at each run's stretch (%.2f, %.2f) %.2fx "
                          .. "(model %.2fx)", at_once.wall_s, after.wall_s,
                        at_once.wall_s / after.wall_s, sa, sf,
                        (at_once.wall_s / sa) / (after.wall_s / sf), predicted))
    -- The model leaves out per-task overhead (a message each way, well under
    -- a millisecond, more on a busy machine): generous above (at the run's
    -- stretch), tight below, since nothing finishes before its sleeps.
    for _, label in ipairs({"async_get_loop", "async_get_after", "apply_sync"}) do
      local x = r[label]
      local f = stretch(x)
      check(label .. " follows its model",
            x.wall_s >= 0.9 * x.model_s and x.wall_s <= 1.5 * f * x.model_s + 0.05,
            string.format("%.3f s, model %.3f s (%+.0f%%); the tasks took %.2fx their sleeps",
                          x.wall_s, x.model_s, 100 * (x.wall_s / x.model_s - 1), f))
      check(label .. " ran every item without error", x.errors == 0 and x.results == p.n,
            string.format("%d results, %d errors", x.results, x.errors))
    end
  end,
}
