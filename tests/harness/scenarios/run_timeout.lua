-- run_timeout.lua: the file's run_timeout (1 s) ends a run whose tasks sleep
-- 20 s: exit 124, the report marked "run time limit" (for the tests).
return {
  name = "run_timeout",
  run_timeout = 1,
  params = {
    n       = {default = 4, quick = 4, min = 1, max = 20, doc = "items"},
    workers = {default = 2, quick = 2, min = 1, max = 8, doc = "pool processes"},
  },
  tasks = {
    nap = function(x) pb.sleep(20) return x end,
  },
  workload = function(p) return {items = p.n, stages = {"nap"}} end,
  impls = {"apply_sync", "map_async"},
}
