-- gaps.lua: issue 11's gaps closed, each checked by the scenario itself and by
-- tests/harness/test_gaps.c: initargs, a variant's set as a function(p), a
-- scenario-level repeat, the trace in checks (trace = true), queue wait and
-- run time percentiles, bytes sent and received, item numbers on trace rows.
seen = {}

return {
  name = "gaps",
  source = "none (written for the tests)",
  summary = "initargs, set functions, repeat, the trace in checks",
  doc = [[Tags 1..n with what the initializer was given (initargs) after sleeping
t_ms each. Used by tests/harness/test_gaps.c and tests/harness/test_cli.sh.]],
  repeats = 2, -- `repeat` is a Lua keyword
  trace = true,
  params = {
    n         = {default = 8, quick = 6, min = 1, max = 1000, doc = "items"},
    workers   = {default = 2, quick = 2, min = 1, max = 64, doc = "pool processes"},
    t_ms      = {default = 20, quick = 10, min = 0, max = 1000, doc = "each task sleeps this long"},
    chunksize = {default = 0, min = 0, doc = "map chunk size (0: the default)"},
  },
  tasks = {
    init = function(a, b) TAG = a .. "-" .. b end,
    tag = function(x) pb.sleep(P.t_ms / 1000) return {x, TAG} end,
  },
  workload = function(p)
    return {
      items = p.n, stages = {"tag"}, initializer = "init", initargs = {"hello", 42},
      observe = function(result, item) if result then seen[item] = result[2] end end,
    }
  end,
  impls = {
    "apply_sync",
    {impl = "map_async", label = "map_half", set = {chunksize = function(p) return p.n // p.workers end}},
  },
  checks = function(r, p, check)
    local ok = true
    for i = 1, p.n do ok = ok and seen[i] == "hello-42" end
    check("the initializer got its initargs", ok, tostring(seen[1]))
    check("set = function(p) follows n", r.map_half.params.chunksize == p.n // p.workers,
          r.map_half.params.chunksize)
    check("the scenario's repeat = 2", r.apply_sync.repeats == 2, r.apply_sync.repeats)
    local t = r.apply_sync.trace
    check("the trace has a row per item", t ~= nil and #t == p.n, t and #t)
    local order = true
    for k = 1, #t do
      order = order and t[k].index == k and t[k].state == "done" and t[k].item == 0
    end
    check("apply_sync's rows are items 1..n in order, done", order)
    local serial = true
    for k = 2, #t do serial = serial and t[k].t_start >= t[k - 1].t_end end
    check("apply_sync ran one task at a time", serial)
    local q = r.apply_sync.queue_wait
    check("queue wait percentiles are ordered", q.n == p.n and q.p50 <= q.p90 and
          q.p90 <= q.p99 and q.p99 <= q.max, q.p50)
    local run = r.map_half.run_time
    check("run time p50 is at least the sleep", run.p50 >= p.t_ms / 1000, run.p50)
    -- rows come in the order results arrived: each item once, in any order
    local got = {}
    for _, row in ipairs(r.map_half.trace) do got[row.index] = (got[row.index] or 0) + 1 end
    local each = #r.map_half.trace == p.n
    for i = 1, p.n do each = each and got[i] == 1 end
    check("map_half's rows carry item numbers 1..n", each)
    check("bytes crossed both ways", r.apply_sync.bytes_sent > 0 and
          r.apply_sync.bytes_received > r.apply_sync.bytes_sent / 10)
  end,
}
