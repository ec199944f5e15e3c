-- sleepy.lua: tasks that sleep long, a temporary file made with pb.tmpname
-- and a cleanup hook: for SIGINT, SIGTERM and the run time limit (for the
-- tests). run_timeout = 30: the run never outlives the test that signals it.
FILE = nil

return {
  name = "sleepy",
  run_timeout = 30,
  params = {
    n       = {default = 8, quick = 8, min = 1, max = 100, doc = "items"},
    workers = {default = 2, quick = 2, min = 1, max = 8, doc = "pool processes"},
    t       = {default = 5, quick = 5, min = 0, max = 60, doc = "each task sleeps, seconds"},
  },
  tasks = {
    nap = function(x) pb.sleep(P.t) return x end,
  },
  setup = function(p)
    FILE = pb.tmpname()
    local f = assert(io.open(FILE, "w"))
    f:write(string.rep("x", 1000))
    f:close()
  end,
  workload = function(p) return {items = p.n, stages = {"nap"}} end,
  impls = {"async_get_after", "process_per_task", "imap"},
  checks = function(r, p, check)
    check("async_get_after got every result", r.async_get_after.results == p.n)
  end,
  cleanup = function()
    io.write("cleanup ran\n")
  end,
}
