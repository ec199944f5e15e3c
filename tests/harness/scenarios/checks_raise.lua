-- checks_raise.lua: checks raises a table (not the --impl skip marker): a
-- failed check (exit 1) with file:line, not a skip that passes.
return {
  name = "checks_raise",
  params = {
    n       = {default = 3, quick = 2, min = 1, max = 10, doc = "items"},
    workers = {default = 2, quick = 2, min = 1, max = 8, doc = "pool processes"},
  },
  workload = function(p) return {items = p.n, stages = {"identity"}} end,
  impls = {"map_async"},
  checks = function(r, p, check)
    check("map_async got every result", r.map_async.results == p.n)
    error({poolbench_skip = "map_async"})
  end,
}
