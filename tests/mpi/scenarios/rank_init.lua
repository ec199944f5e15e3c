-- rank_init.lua: a pool's initializer on MPI ranks: its initargs travel with the pool, and
-- when it fails the pool breaks as on one machine (every item fails, naming the initializer).
-- Used by tests/mpi/test_mpi.sh; it passes when its checks see exactly that.
return {
  name = "rank_init",
  source = "none (written for the tests)",
  summary = "an initializer on MPI ranks: initargs travel; a failure breaks the pool",
  doc = [[Two pools of `workers` ranks: `good` runs an initializer that stores its
initargs, and each task returns them; `bad` runs one that raises, so every
item fails with the initializer's message (POOL_EBROKEN), as a forked pool
does. Also runs without MPI, on any transport, with the same checks.]],
  params = {
    n       = {default = 4, quick = 4, min = 1, max = 100, doc = "items"},
    workers = {default = 2, quick = 2, min = 1, max = 8, doc = "pool processes (ranks)"},
    fail    = {default = 0, min = 0, max = 1, doc = "1: the initializer raises"},
  },
  tasks = {
    init = function(a, b) if P.fail == 1 then error("the initializer fails on purpose") end
                          TAG = a .. "-" .. b end,
    tag = function(x) return {x, TAG} end,
  },
  workload = function(p)
    return {items = p.n, stages = {"tag"}, initializer = "init", initargs = {"hello", 42}}
  end,
  impls = {{impl = "async_get_after", label = "good", set = {fail = 0}},
           {impl = "async_get_after", label = "bad", set = {fail = 1}}},
  checks = function(r, p, check)
    check("good: every item saw the initargs", r.good.results == p.n and r.good.errors == 0,
          string.format("%d results, %d errors", r.good.results, r.good.errors))
    check("bad: every item failed, naming the initializer",
          r.bad.tasks_run == 0 and r.bad.errors == p.n and r.bad.first_error ~= nil
            and r.bad.first_error:find("initializer 'init' failed", 1, true) ~= nil
            and r.bad.first_error:find("fails on purpose", 1, true) ~= nil,
          tostring(r.bad.first_error))
  end,
}
