-- worker_death.lua: a worker dies mid-task: only the job it held fails, with an error naming it; the pool replaces it and the run ends.
--
-- No document shows this; CPython's own bug tracker does. When a Pool
-- worker dies in the middle of a task (killed by the OOM killer, a crash in
-- a C extension, os._exit), CPython's Pool starts a new worker but never
-- fails the task the dead one held: get() waits forever (gh-66587).
-- ProcessPoolExecutor does the opposite: it marks the whole executor broken
-- and fails every pending future with BrokenProcessPool. The engine knows
-- which worker holds which task, so it fails exactly that job, says which
-- worker died and how, replaces the worker, and the run goes on.

-- Which items came back well: the stop rule, which never stops, is a tap on
-- the results that counts them into the run's facts (pb.fact), so the checks
-- read r[label].facts.values_back and .items_back_sum, and CPython's twin
-- reports its own under the same names.
local function tap(v, item)
  pb.fact("values_back", (pb.fact("values_back") or 0) + 1)
  pb.fact("items_back_sum", (pb.fact("items_back_sum") or 0) + item)
  return false
end

local LABELS = {"async_get_after", "async_get_after_kill", "map_async", "imap", "executor_submit"}

return {
  name = "worker_death",
  -- No document covers P16; 002 is the closest (the pool's APIs and their errors).
  source = "002_2fab88b10910dd43.txt",
  summary = "a worker dies mid-task: only the job it held fails, the pool replaces it, the run ends",
  doc = [[Phenomenon P16. No document covers it: this scenario names document
002, the closest (Pool's APIs and how their errors surface), for want of a
better one. n tasks of t_ms on `workers` processes; the task of item k ends
its worker at once with pb.exit(exit_code) (_exit, as os._exit or a crash
would), or, with signal > 0, has it killed by that signal (kill -SIGNAL pid
through os.execute, as the OOM killer would: the *_kill variant, signal 9).
PHENOMENA.md: "CPython's Pool waits forever (bug tracker gh-66587);
ProcessPoolExecutor fails every pending future (BrokenProcessPool)". The
model here (PHENOMENA.md): poolbench fails exactly the jobs the dead worker
held, replaces it and goes on. So async_get_after, imap and executor_submit
(one job per item) end with n results of which exactly one is an error, whose
message names the worker, its pid and its exit status or signal;
executor_submit keeps every other future (where CPython would break them
all). map_async is one job: the chunk holding item k fails, and with it the
whole map (every item an error, the message naming the worker), as a map
fails on any error (P10). Every strategy: worker_deaths >= 1, workers_started
> workers (the dead one was replaced), and the run ends in about its model's
time, ceil(n/w)*t_ms (checked with a generous margin: a hang would be far
over it).]],
  params = {
    n         = {default = 40, quick = 12, min = 2, max = 100000, doc = "tasks"},
    workers   = {default = 4,  quick = 2,  min = 1, max = 64, doc = "pool processes"},
    t_ms      = {default = 50, quick = 20, min = 0, max = 10000, doc = "each task (a sleep), ms"},
    k         = {default = 5,  quick = 3,  min = 1, max = 100000, doc = "the item whose worker dies"},
    exit_code = {default = 7,  quick = 7,  min = 1, max = 255, doc = "the dying worker's exit status"},
    signal    = {default = 0,  quick = 0,  min = 0, max = 64,
                 doc = "0: exit with exit_code; else killed by this signal (the *_kill variant: 9)"},
    tag       = {default = 1,  quick = 1,  min = 1, max = 5,
                 doc = "which record the results go to (set by each variant)"},
  },
  tasks = {
    mortal = function(x)
      if x == P.k then
        if P.signal > 0 then
          os.execute(string.format("kill -%d %d", P.signal, pb.pid()))
          pb.sleep(10) -- the signal is on its way; never returns from here
        end
        pb.exit(P.exit_code)
      end
      pb.sleep(P.t_ms / 1000)
      return x
    end,
  },
  workload = function(p)
    -- map_async (tag 3) gets no tap: its map fails whole, so no value comes
    -- back, and a stop rule would only add a note about stopping.
    return {items = p.n, stages = {"mortal"}, stop = p.tag ~= 3 and tap or nil}
  end,
  impls = {
    {impl = "async_get_after", label = "async_get_after", set = {tag = 1}},
    {impl = "async_get_after", label = "async_get_after_kill", set = {tag = 2, signal = 9}},
    {impl = "map_async", label = "map_async", set = {tag = 3}},
    {impl = "imap", label = "imap", set = {tag = 4}},
    {impl = "executor_submit", label = "executor_submit", set = {tag = 5}},
  },
  model = {
    async_get_after = function(p) return math.ceil(p.n / p.workers) * p.t_ms / 1000 end,
    map_async       = function(p) return math.ceil(p.n / p.workers) * p.t_ms / 1000 end,
    imap            = function(p) return math.ceil(p.n / p.workers) * p.t_ms / 1000 end,
    executor_submit = function(p) return math.ceil(p.n / p.workers) * p.t_ms / 1000 end,
  },
  -- The classroom lab: `poolbench lab worker_death` (docs/labs/13-worker_death.md).
  lab = {
    -- The exercise "write the fix" (`poolbench lab worker_death --exercise`).
    exercise = {
      reference = "async_get_after",
      margin = 0.5,
      task = [[A worker that dies fails exactly the task it held. Keep going: submit
every item, then read each handle with pcall(h.get, h); a WorkerLost error
goes to pool:final(i, nil, err), every other value to pool:final(i, v).
Your run uses async_get_after's parameters.]],
      skeleton = [[
return function(pool, items, p)
  local task, h = pool.stages[1], {}
  for i, item in ipairs(items) do h[i] = pool:apply_async(task, {item}) end
  for i = 1, #items do
    pool:final(i, h[i]:get()) -- TODO: a dead worker's task raises here
  end
end
]],
    },
    title = "a worker dies mid-task: which jobs fail?",
    order = 13,
    vary = {n = {8, 16, 4}, workers = {2, 4}, t_ms = {20, 50, 10}, k = {2, 8}},
    where = function(p) return p.k <= p.n end,
    questions = {
      {ask = "%n tasks of %t_ms ms on %workers workers, one apply_async each, get() after; "
             .. "the worker running item %k exits mid-task. How many of the get() calls fail?",
       answer = function(p) return 1 end, measure = "async_get_after.errors"},
      {ask = "How many worker processes does the pool start in all?",
       answer = function(p) return p.workers + 1 end,
       measure = "async_get_after.workers_started"},
      {ask = "map_async over the same items: how many items come back as errors?",
       answer = function(p) return p.n end, measure = "map_async.errors"},
      {ask = "How long does the apply_async run take? (CPython's Pool would wait forever.)",
       answer = function(p) return math.ceil(p.n / p.workers) * p.t_ms / 1000 end,
       unit = "s", measure = "async_get_after"},
    },
    explain = [[Every worker reads one shared queue, so only a worker knows
which task it took. poolbench's workers write "I hold job J" into shared
memory before they take a message, so when the fork server reports a death
the pool fails exactly the job item %k belonged to, names the pid and how it
ended, starts a replacement (%workers + 1 processes in all) and goes on: the
run ends in about ceil(n/w)*t = ceil(%n/%workers)*%t_ms ms. A map is one
job, so it fails whole (all %n items, as in lab 8). CPython's Pool starts a
replacement too but never fails the lost task: get() waits forever
(gh-66587). ProcessPoolExecutor fails every pending future
(BrokenProcessPool).]],
  },
  -- The ratios the checks rely on, for `poolbench compare` (docs/lua-api.md, "Ratios"); the
  -- first is the key ratio: the run / its model: "the run ended (no hang)".
  ratios = {{"async_get_after", "async_get_after.model_s"}, {"executor_submit", "executor_submit.model_s"}},
  checks = function(r, p, check)
    for _, label in ipairs(LABELS) do local _ = r[label] end -- all present, or skip here
    for _, label in ipairs(LABELS) do
      local x = r[label]
      -- the items that came back, as facts (pb.fact above; the twin's own)
      local good = x.facts.values_back or 0
      local missing = p.n * (p.n + 1) / 2 - (x.facts.items_back_sum or 0)
      local e = (x.first_error or ""):match("[^\n]*")
      local how = x.params.signal > 0 and ("killed by signal " .. x.params.signal)
                  or ("exited with status " .. x.params.exit_code)
      if label == "map_async" then
        check("map_async: the chunk with item k failed, and with it the whole map",
              x.results == p.n and x.errors == p.n and good == 0,
              string.format("%d results, %d errors, %d values", x.results, x.errors, good))
      else
        check(label .. ": only the job the dead worker held failed (item k)",
              x.results == p.n and x.errors == 1 and good == p.n - 1 and missing == p.k,
              string.format("%d results, %d errors; %d items came back, sum of the missing: %d (k = %d)",
                            x.results, x.errors, good, missing, p.k))
      end
      check(label .. ": the error names the worker, its pid and how it ended",
            e:find("worker") ~= nil and e:find("pid %d+") ~= nil and e:find(how, 1, true) ~= nil,
            e ~= "" and e or "no error")
      check(label .. ": the worker died and was replaced",
            x.worker_deaths >= 1 and x.workers_started > p.workers,
            string.format("%d deaths, %d workers started for %d", x.worker_deaths,
                          x.workers_started, p.workers))
      check(label .. ": the run ended (no hang: within 2x its model + 0.5 s)",
            x.wall_s <= 2 * x.model_s + 0.5,
            string.format("%.3f s, model %.3f s", x.wall_s, x.model_s))
    end
  end,
}
