-- errors.lua: who sees a task's error: map fails whole and late, fire-and-forget loses it, per-item APIs see each one (document 002).
--
-- A task fails on every even input. Document 002 says which APIs tell you:
-- map/get re-raise the first error; apply_async with neither get() nor an
-- error_callback loses it silently; submit() needs result() or a
-- done-callback. Here every API meets the same failing task, and the checks
-- count the errors each one saw. Odd items sleep t_ms; item 1 sleeps
-- slow_ms, so that a map that waits for all its chunks before it reports
-- its first error shows it in its wall time. Item 1 is the first of its
-- chunk, so it runs under either rule for a failing chunk (CPython's chunk
-- stops at its first failing item; the engine's runs every item).

return {
  name = "errors",
  source = "002_2fab88b10910dd43.txt",
  summary = "map fails whole and late, fire-and-forget loses errors, per-item APIs see each one",
  doc = [[Phenomenon P10. n items through a Lua task that calls error() on every
even input (n/2 of them fail at once) and sleeps t_ms on odd ones; item 1
sleeps slow_ms instead (the first item of the first chunk). What each API reports:
map_async has no per-item errors: one item failing fails the whole map with
the first error, and only once every chunk has ended (no fail-fast), so all n
items come back as errors and the wall time is at least slow_ms although the
first failure happened in the first milliseconds (CPython 3.11 does the
same: its MapResult is ready only once every chunk has reported). async_get_after_forget and
executor_submit_forget submit every task and drop the handle (document 002's
apply_async without get() or error_callback, and submit() without result()
or add_done_callback()): the errors reach nobody; the engine counts them in
errors_unobserved, and the run reports zero errors. callback_chain's
error_callback sees each error, in the parent; imap yields each error at the
failing item and iteration goes on; executor_submit's result() raises once
per failed future: n/2 errors each, n results. Document 002's figure is a
rule, not a number ("map raises, submit needs add_done_callback");
PHENOMENA.md has no CPython figure for P10. The model is the count of errors
seen per API: n for map_async, n/2 for the per-item APIs, 0 seen and n/2
unobserved for fire and forget. The only time checked is map_async's lower
bound (slow_ms); its time model is slow_ms or ceil(odd items/w)*t_ms,
whichever is larger (failing items cost no time).]],
  params = {
    n       = {default = 40,  quick = 12,  min = 4, max = 100000, doc = "items (the even ones fail)"},
    workers = {default = 4,   quick = 2,   min = 1, max = 64, doc = "pool processes"},
    t_ms    = {default = 20,  quick = 10,  min = 0, max = 10000, doc = "each odd item, ms"},
    slow_ms = {default = 400, quick = 200, min = 0, max = 100000,
               doc = "item 1 (the first of the first chunk), ms"},
    forget  = {default = 0,   quick = 0,   min = 0, max = 1,
               doc = "1: drop the handles (fire and forget); set by the *_forget variants"},
  },
  tasks = {
    odd_only = function(x)
      if x % 2 == 0 then error("even input " .. x) end
      pb.sleep((x == 1 and P.slow_ms or P.t_ms) / 1000)
      return x
    end,
  },
  workload = function(p)
    return {items = p.n, stages = {"odd_only"}, fire_and_forget = p.forget == 1}
  end,
  impls = {
    "map_async",
    {impl = "async_get_after", label = "async_get_after_forget", set = {forget = 1}},
    {impl = "executor_submit", label = "executor_submit_forget", set = {forget = 1}},
    "callback_chain",
    "imap",
    "executor_submit",
  },
  model = {
    map_async = function(p)
      return math.max(p.slow_ms, math.ceil((p.n // 2) / p.workers) * p.t_ms) / 1000
    end,
  },
  -- The classroom lab: `poolbench lab errors` (docs/labs/08-errors.md).
  lab = {
    -- The exercise "write the fix" (`poolbench lab errors --exercise`).
    exercise = {
      reference = "executor_submit",
      margin = 0.5,
      task = [[Fire and forget loses errors: nobody reads a handle that failed. Keep
every future (pool:submit), read each one with pcall(f.result, f), and
hand its value or its error to pool:final(i, value) / pool:final(i, nil,
err): every error is seen.]],
      skeleton = [[
return function(pool, items, p)
  local task = pool.stages[1]
  for i, item in ipairs(items) do
    pool:submit(task, {item}) -- TODO: the future is dropped: its error is lost
  end
end
]],
    },
    title = "who sees a task's error, and when",
    order = 8,
    vary = {n = {8, 24, 4}, workers = {2, 4}, t_ms = {10, 30, 10}, slow_ms = {100, 300, 50}},
    questions = {
      {ask = "%n items on %workers workers; the task raises on every even item, sleeps "
             .. "%t_ms ms on the odd ones and %slow_ms ms on item 1. map_async: how many of "
             .. "the %n items come back as errors?",
       answer = function(p) return p.n end, measure = "map_async.errors"},
      {ask = "When does map_async report its error (the even items fail at once)?",
       answer = function(p)
         return math.max(p.slow_ms, math.ceil((p.n // 2) / p.workers) * p.t_ms) / 1000
       end,
       unit = "s", measure = "map_async"},
      {ask = "apply_async with neither get() nor an error_callback (fire and forget): how "
             .. "many errors does the program see?",
       answer = function(p) return 0 end, measure = "async_get_after_forget.errors"},
      {ask = "How many errors happened that nobody saw?",
       answer = function(p) return p.n // 2 end,
       measure = "async_get_after_forget.errors_unobserved"},
      {ask = "imap: how many errors does the loop over its results see?",
       answer = function(p) return p.n // 2 end, measure = "imap.errors"},
    },
    explain = [[A map is one job: its result is a list or an error, so one
failing item fails all %n, and the map is ready only when every chunk has
ended (no fail-fast), at max(slow, ceil((n/2)/w)*t) = max(%slow_ms,
ceil(%n/2/%workers)*%t_ms) ms, although the first even item failed in the
first milliseconds. apply_async keeps each item's error in its handle:
nobody sees it unless get() or an error_callback asks (document 002: "submit
needs add_done_callback"), so fire and forget loses all %n/2 of them
silently; poolbench counts them as errors_unobserved. The per-item APIs
(imap, a callback with error_callback, executor submit with result())
see each error at its item and go on.]],
  },
  -- The ratios the checks rely on, for `poolbench compare` (docs/lua-api.md, "Ratios"); the
  -- first is the key ratio: map_async's wall / its model: "the error came only after the slowest
  -- chunk".
  ratios = {{"map_async", "map_async.model_s"}},
  checks = function(r, p, check)
    local evens = p.n // 2
    local m = r.map_async
    check("map_async: one error fails the whole map (every item an error)",
          m.results == p.n and m.errors == p.n,
          string.format("%d results, %d errors of %d items", m.results, m.errors, p.n))
    check("map_async: the error is a task's (even input)",
          (m.first_error or ""):find("even input %d*[02468]") ~= nil,
          ((m.first_error or "none"):match("[^\n]*")))
    check("map_async: the error came only after the slowest chunk (no fail-fast)",
          m.wall_s >= 0.95 * p.slow_ms / 1000,
          string.format("map ended at %.3f s, slowest chunk %.3f s; the first even item failed at once",
                        m.wall_s, p.slow_ms / 1000))

    for _, label in ipairs({"async_get_after_forget", "executor_submit_forget"}) do
      local f = r[label]
      check(label .. ": errors lost (none seen, every one unobserved)",
            f.errors == 0 and f.errors_unobserved == evens and f.tasks_run == p.n,
            string.format("%d errors seen, %d unobserved, %d tasks run; %d even items failed",
                          f.errors, f.errors_unobserved, f.tasks_run, evens))
    end

    local cb = r.callback_chain
    check("callback_chain: the error callback saw each error, in the parent",
          cb.errors == evens and cb.results == p.n and cb.callbacks == p.n
            and cb.callback_pid == cb.parent_pid,
          string.format("%d errors, %d results, %d callbacks in pid %d (parent %d)", cb.errors,
                        cb.results, cb.callbacks, cb.callback_pid, cb.parent_pid))

    local im = r.imap
    check("imap: each error at its item, iteration went on",
          im.errors == evens and im.results == p.n,
          string.format("%d errors, %d results", im.errors, im.results))

    local ex = r.executor_submit
    check("executor_submit: result() raised once per failed future",
          ex.errors == evens and ex.results == p.n,
          string.format("%d errors, %d results", ex.errors, ex.results))

    for _, label in ipairs({"callback_chain", "imap", "executor_submit"}) do
      local x = r[label]
      check(label .. ": nothing unobserved, the error names the even input",
            x.errors_unobserved == 0 and (x.first_error or ""):find("even input") ~= nil,
            string.format("%d unobserved; %s", x.errors_unobserved,
                          ((x.first_error or "none"):match("[^\n]*"))))
    end
  end,
}
