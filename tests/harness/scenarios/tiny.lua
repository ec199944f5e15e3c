-- tiny.lua: a small, quick, passing scenario for the tests (squares on a few strategies).
-- The stop rule never fires; it records each result in the parent, so that
-- the checks can verify the values that came back from the workers.
seen = {}

return {
  name = "tiny",
  source = "none (written for the tests)",
  summary = "squares of 1..n through four strategies",
  doc = [[Squares 1..n in Lua tasks that sleep t_ms each. Used by tests/harness/test_cli.sh
and tests/harness/test_scenario.c; quick enough to run in well under a second.]],
  params = {
    n         = {default = 6, quick = 4, min = 1, max = 1000, doc = "items"},
    workers   = {default = 2, quick = 2, min = 1, max = 64, doc = "pool processes"},
    t_ms      = {default = 20, quick = 10, min = 0, max = 1000, doc = "each task sleeps this long"},
    chunksize = {default = 0, min = 0, doc = "map chunk size (0: the default)"},
  },
  tasks = {
    sq = function(x) pb.sleep(P.t_ms / 1000) return x * x end,
  },
  workload = function(p)
    return {
      items = p.n,
      stages = {"sq"},
      stop = function(result, item) seen[item] = result return false end,
    }
  end,
  impls = {
    "async_get_after",
    "map_async",
    {impl = "map_async", label = "map_one_chunk", set = {chunksize = 1000}},
    "merged",
  },
  model = {
    async_get_after = function(p) return math.ceil(p.n / p.workers) * p.t_ms / 1000 end,
    map_async = function(p) return math.ceil(p.n / p.workers) * p.t_ms / 1000 end,
    map_one_chunk = function(p) return p.n * p.t_ms / 1000 end,
  },
  checks = function(r, p, check)
    for _, label in ipairs({"async_get_after", "map_async", "map_one_chunk", "merged"}) do
      check(label .. " got every result", r[label].results == p.n and r[label].errors == 0,
            string.format("%d results", r[label].results))
    end
    local ok = true
    for i = 1, p.n do ok = ok and seen[i] == i * i end
    check("the parent saw the squares", ok)
    check("one chunk ran on one worker", #r.map_one_chunk.per_worker == 1,
          #r.map_one_chunk.per_worker .. " workers")
  end,
}
