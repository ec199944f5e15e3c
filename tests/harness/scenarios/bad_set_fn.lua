-- bad_set_fn.lua: a variant's set = function(p) whose value is out of the
-- parameter's range for some --set n (tests/harness/test_gaps.c): the run
-- must refuse it before any output, naming the variant and the parameter.
return {
  name = "bad_set_fn",
  params = {
    n         = {default = 4, min = 1, max = 100, doc = "items"},
    chunksize = {default = 0, min = 0, max = 10, doc = "map chunk size"},
  },
  tasks = {noop = function(x) return x end},
  workload = function(p) return {items = p.n, stages = {"noop"}} end,
  impls = {
    {impl = "map_async", label = "map_n", set = {chunksize = function(p) return p.n end}},
  },
}
