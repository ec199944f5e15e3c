-- bad_workload_pos.lua: workload(p) raises for pos > n (line 12); the error
-- must be the run's only output, before the echo (tests/harness/test_cli.sh).
return {
  name = "bad_workload_pos",
  params = {
    n   = {default = 4, min = 1, max = 100, doc = "items"},
    pos = {default = 2, min = 1, max = 100, doc = "the item to look at"},
  },
  tasks = {noop = function(x) return x end},
  workload = function(p)
    if p.pos > p.n then
      error(string.format("pos (%d) must be at most n (%d)", p.pos, p.n))
    end
    return {items = p.n, stages = {"noop"}}
  end,
  impls = {"apply_sync"},
}
