-- task_timeout.lua: item 2 never ends; the file's task_timeout (1 s, or
-- --task-timeout) fails it with a time-limit error naming item 2, the others
-- come back, and the run ends (for the tests).
return {
  name = "task_timeout",
  task_timeout = 1,
  params = {
    n       = {default = 4, quick = 4, min = 2, max = 20, doc = "items"},
    workers = {default = 2, quick = 2, min = 1, max = 8, doc = "pool processes"},
  },
  tasks = {
    stuck = function(x)
      if x == 2 then while true do pb.sleep(1000) end end
      return x
    end,
  },
  workload = function(p) return {items = p.n, stages = {"stuck"}} end,
  impls = {"async_get_after", "imap", "process_per_task"},
  checks = function(r, p, check)
    for _, l in ipairs({"async_get_after", "imap", "process_per_task"}) do
      local x = r[l]
      check(l .. ": one time-limit error, every other result",
            x.results == p.n and x.errors == 1 and tostring(x.first_error):find("time limit") ~= nil,
            string.format("%d results, %d errors: %s", x.results, x.errors, tostring(x.first_error)))
    end
  end,
}
