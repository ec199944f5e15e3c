-- start_methods.lua: one variant names its start method, the other takes the
-- command line's (or the file's, spawn); each task says whether it sees a
-- global the parent set in setup (a spawned worker loads this file again and
-- does not run setup). Used by tests/harness/test_cli.sh for --start-method.
SEEN = nil

return {
  name = "start_methods",
  source = "none (written for the tests)",
  summary = "a variant's start_method, the command line's, the file's",
  params = {
    n       = {default = 4, quick = 4, min = 1, max = 100, doc = "items"},
    workers = {default = 2, quick = 2, min = 1, max = 8, doc = "pool processes"},
  },
  start_method = "spawn",
  setup = function(p) SEEN = 1 end,
  tasks = {seen = function(x) return SEEN or 0 end},
  workload = function(p) return {items = p.n, stages = {"seen"}} end,
  impls = {
    {impl = "map_async", label = "forked", start_method = "fork"},
    {impl = "map_async", label = "default"},
  },
  checks = function(r, p, check)
    check("forked: every task ran, and saw setup's global",
          r.forked.results == p.n and r.forked.errors == 0)
    check("default: every task ran", r.default.results == p.n and r.default.errors == 0)
  end,
}
