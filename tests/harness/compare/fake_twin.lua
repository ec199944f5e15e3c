-- fake_twin.lua: a quick scenario for tests/harness/test_compare.sh, paired
-- with a fake CPython twin (fake_twin.py, beside it: POOLBENCH_PYTHON_DIR)
-- whose figures are fixed, so that the test knows what CPython's side must
-- show: its ratio (0.3 / 0.1 = 3.00), a check that holds, one that fails,
-- and one the twin's `cannot` map covers (printed n/a, not FAIL).
return {
  name = "fake_twin",
  source = "none (written for the tests)",
  summary = "two map_async runs, one with longer tasks, beside a fake twin",
  params = {
    n       = {default = 4, quick = 4, min = 1, max = 100, doc = "items"},
    workers = {default = 2, quick = 2, min = 1, max = 8, doc = "pool processes"},
    t_ms    = {default = 10, quick = 10, min = 0, max = 1000, doc = "each task sleeps this long"},
  },
  tasks = {
    nap = function(x) pb.sleep(P.t_ms / 1000) return x end,
  },
  workload = function(p) return {items = p.n, stages = {"nap"}} end,
  impls = {"map_async", {impl = "map_async", label = "slow", set = {t_ms = 40}}},
  model = {
    map_async = function(p) return math.ceil(p.n / p.workers) * p.t_ms / 1000 end,
    slow = function(p) return math.ceil(p.n / p.workers) * 0.040 end,
  },
  ratios = {{"slow", "map_async"}, {"slow.results", "map_async.results"}},
  checks = function(r, p, check)
    check("every result came back", r.map_async.results == p.n and r.slow.results == p.n,
          string.format("%d and %d of %d", r.map_async.results, r.slow.results, p.n))
    check("map_async: the error names the worker (none here)", r.map_async.first_error == nil,
          tostring(r.map_async.first_error))
    check("no fact named x", (r.map_async.facts or {}).x == nil, "")
  end,
}
