-- parent_exit.lua: os.exit() in a stage that runs in the parent
-- (callback_chain runs stages after the first there): an error, not a
-- silent exit 0.
return {
  name = "parent_exit",
  params = {
    n       = {default = 2, quick = 2, min = 1, max = 10, doc = "items"},
    workers = {default = 2, quick = 2, min = 1, max = 8, doc = "pool processes"},
  },
  tasks = {
    first = function(x) return x end,
    second = function(x) os.exit(0) end,
  },
  workload = function(p) return {items = p.n, stages = {"first", "second"}} end,
  impls = {"callback_chain"},
  checks = function(r, p, check)
    check("no error", r.callback_chain.errors == 0, r.callback_chain.first_error)
  end,
}
