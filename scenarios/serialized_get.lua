-- serialized_get.lua: get() inside the submit loop serializes a two-stage pipeline (document 000).
--
-- Document 000 runs getA then getB on each item through a Pool. Calling
-- .get() on getA's result right after submitting it makes the loop wait for
-- each getA before submitting the next: the pool runs one task at a time, and
-- "1 minute became 10". Its two fixes: merge both stages into one task (getC),
-- or chain getB as the callback of getA. The callback fix only helps when getB
-- is cheap: callbacks run in the parent, one at a time (phenomenon P2).
-- How much a busy machine stretched a run (scenarios/lib/stretch.lua).
local stretch_of = dofile(((debug.getinfo(1, "S").source:gsub("^@", "")):match("^(.*/)") or "./")
                          .. "lib/stretch.lua")

return {
  name = "serialized_get",
  source = "000_80a7a203a5a748e6.txt",
  summary = "get() inside the submit loop serializes a two-stage pipeline",
  doc = [[Each item goes through stage A then stage B (sleeps of a_ms and b_ms).
async_get_loop waits for every A before submitting the next item, so the A
stages run one after another: n*a + b. merged runs A and B in one task, so
every worker stays busy: ceil(n/w)*(a+b). callback_chain submits every A at
once but runs each B in the parent's result-handler thread, one callback at a
time: a + n*b, no better than the loop when b = a, which document 000 does not
say. map_async maps A over all items, then B: ceil(n/w)*a + ceil(n/w)*b.
CPython 3.11 on 2 cores (n=8, w=4, 50 ms): get-in-loop 0.478 s, merged 0.220 s,
callback 0.474 s.]],
  params = {
    n       = {default = 8,  quick = 8,  min = 1, max = 10000, doc = "items"},
    workers = {default = 4,  quick = 4,  min = 1, max = 64, doc = "pool processes"},
    -- quick = 50 ms (was 30): a loaded machine adds a fixed few tens of ms
    -- of hand-offs to each run, which weighs most on merged's 2 rounds. At a
    -- load average of 9 on 2 cores the loop/merged ratio (model 2.25) went
    -- down to 1.34x with 30 ms stages (1 of 6 runs under 1.6x) and stayed
    -- 1.83-3.67x with 50 ms (2.00-2.82x at each run's stretch; 6 runs).
    a_ms    = {default = 50, quick = 50, min = 0, max = 10000, doc = "stage A per item, ms"},
    b_ms    = {default = 50, quick = 50, min = 0, max = 10000, doc = "stage B per item, ms"},
  },
  -- Run inside the workers (P holds the run's parameters there). B also runs
  -- in the parent, in callback_chain's callback.
  tasks = {
    A = function(x) pb.sleep(P.a_ms / 1000) return x end,
    B = function(x) pb.sleep(P.b_ms / 1000) return x end,
  },
  workload = function(p) return {items = p.n, stages = {"A", "B"}} end,
  -- Three runs each, the wall time their median: on a loaded 2-core machine
  -- one run in several loses 0.1-0.2 s to a descheduling (merged measured
  -- 0.392 s for a model of 0.200 s at a load average of 9), which one run
  -- alone turns into a failed ratio (1.32x; 1 in 8 runs).
  repeats = 3,
  impls = {"async_get_loop", "merged", "callback_chain", "map_async"},
  model = {
    async_get_loop = function(p) return p.n * p.a_ms / 1000 + p.b_ms / 1000 end,
    merged         = function(p) return math.ceil(p.n / p.workers) * (p.a_ms + p.b_ms) / 1000 end,
    callback_chain = function(p) return p.a_ms / 1000 + p.n * p.b_ms / 1000 end,
    map_async      = function(p) return math.ceil(p.n / p.workers) * (p.a_ms + p.b_ms) / 1000 end,
  },
  -- The classroom lab: `poolbench lab serialized_get` (docs/labs/03-serialized_get.md).
  lab = {
    -- The exercise "write the fix" (`poolbench lab serialized_get --exercise`).
    exercise = {
      reference = "merged",
      task = [[Each item goes through stage A then stage B. get() on A inside the loop
costs n*a. Run each item's whole pipeline as ONE task in a worker
(pool:pipeline(item) returns that task and its args), submit every item,
then collect the handles in order with pool:final(i, value).]],
      skeleton = [[
return function(pool, items, p)
  local A, B = pool.stages[1], pool.stages[2]
  for i, item in ipairs(items) do
    -- TODO: the trap: A waited for in the loop, then B.
    local a = pool:apply_async(A, {item}):get()
    pool:final(i, pool:apply_async(B, {a}):get())
  end
end
]],
    },
    title = "get() inside the loop: a two-stage pipeline, three ways",
    order = 3,
    vary = {n = {6, 12}, workers = {2, 6}, a_ms = {20, 60, 10}, b_ms = {20, 60, 10}},
    -- Settings where the trap shows (the loop at least twice merged's time)
    -- and the callback model holds (the parent, running every B, is the
    -- bottleneck, not the As): exercise 3 of the page leaves the second.
    where = function(p)
      local rounds = math.ceil(p.n / p.workers)
      return p.n * p.a_ms + p.b_ms >= 2 * rounds * (p.a_ms + p.b_ms)
        and p.n * p.b_ms >= rounds * p.a_ms
    end,
    questions = {
      {ask = "%n items each go through stage A (%a_ms ms) then stage B (%b_ms ms) on a pool "
             .. "of %workers workers. get in the loop: submit A, call get() on it at once, "
             .. "submit B with its result. How long does the whole run take?",
       answer = function(p) return (p.n * p.a_ms + p.b_ms) / 1000 end,
       unit = "s", measure = "async_get_loop"},
      {ask = "merged (document 000's getC): one task runs A then B, and every item is "
             .. "submitted at once. How long?",
       answer = function(p) return math.ceil(p.n / p.workers) * (p.a_ms + p.b_ms) / 1000 end,
       unit = "s", measure = "merged"},
      {ask = "callback chaining: every A is submitted at once, with B as its callback. How long?",
       answer = function(p) return (p.a_ms + p.n * p.b_ms) / 1000 end,
       unit = "s", measure = "callback_chain"},
      {ask = "With callback chaining, how many callbacks (Bs) ever run at the same time?",
       answer = function(p) return 1 end,
       unit = "callbacks", measure = "callback_chain.callbacks_max_overlap"},
    },
    explain = [[get in the loop waits for each A before it submits the next
item, so the As run one after another whatever the pool's size: n*a + b =
%n*%a_ms + %b_ms ms (only the last B overlaps nothing, the others overlap the
next A). merged keeps every worker busy with whole items: ceil(n/w) rounds of
a + b = ceil(%n/%workers)*(%a_ms + %b_ms) ms. callback chaining runs every A in
parallel, but a callback runs in the parent, on the pool's one result-handler
thread, one at a time (phenomenon P2): the Bs queue up behind each other,
a + n*b = %a_ms + %n*%b_ms ms, no better than the loop when b = a. Document 000
misses this: its callback fix only helps when B is cheap.]],
  },
  -- The ratios the checks rely on, for `poolbench compare` (docs/lua-api.md, "Ratios"); the
  -- first is the key ratio: get-in-loop / merged: the check "get-in-loop at least 1.6x slower
  -- than merged"; P2: callback_chain / merged.
  ratios = {{"async_get_loop", "merged"}, {"callback_chain", "merged"}},
  checks = function(r, p, check)
    -- How much the machine stretched this run's tasks: their time on the
    -- workers (busy_s) over their sleeps (n*(a+b); callback_chain's workers
    -- run only A, its B runs in the parent). 1.0 on an idle machine; a
    -- loaded one wakes each sleep late. Wall times are judged at the run's
    -- own stretch: two runs a second apart on a loaded machine are not
    -- stretched alike.
    local function stretch(x, label)
      return stretch_of(x, p.n * (p.a_ms + (label == "callback_chain" and 0 or p.b_ms)) / 1000)
    end
    local loop, merged, cb = r.async_get_loop, r.merged, r.callback_chain
    -- The raw wall times: the loop's B tasks run beside its A tasks, off
    -- the critical path, so a run's mean stretch says little about the
    -- loop's time. Measured at a load average of 9 on 2 cores with the quick
    -- 50 ms stages: 1.79-3.67x in 7 runs (model 2.25).
    check("get-in-loop at least 1.6x slower than merged",
          loop.wall_s >= 1.6 * merged.wall_s,
          string.format("%.3f s vs %.3f s: %.2fx (model %.2fx)", loop.wall_s, merged.wall_s,
                        loop.wall_s / merged.wall_s, loop.model_s / merged.model_s))
    check("callbacks ran in the parent, one at a time",
          cb.callbacks == p.n and cb.callback_pid == cb.parent_pid
            and cb.callbacks_max_overlap == 1,
          string.format("%d callbacks in pid %d (parent %d), at most %d at once",
                        cb.callbacks, cb.callback_pid, cb.parent_pid, cb.callbacks_max_overlap))
    -- The model leaves out per-task overhead (a few ms) and the noise of a
    -- shared 2-core machine, so the margin is generous above (at the run's
    -- stretch) and tight below: nothing finishes before its sleeps.
    for _, label in ipairs({"async_get_loop", "merged", "callback_chain", "map_async"}) do
      local x = r[label]
      local f = stretch(x, label)
      check(label .. " follows its model",
            x.wall_s >= 0.9 * x.model_s and x.wall_s <= 2 * f * x.model_s + 0.1,
            string.format("%.3f s, model %.3f s; the tasks took %.2fx their sleeps",
                          x.wall_s, x.model_s, f))
    end
    for _, label in ipairs({"async_get_loop", "merged", "callback_chain", "map_async"}) do
      local x = r[label]
      check(label .. " ran every item without error", x.errors == 0 and x.results == p.n,
            string.format("%d results, %d errors", x.results, x.errors))
    end
  end,
}
