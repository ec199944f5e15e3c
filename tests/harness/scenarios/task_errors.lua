-- task_errors.lua: a Lua task fails on item 2 (line 9), a worker dies on item 4.
-- Every other result must be kept and both failures counted.
return {
  name = "task_errors",
  summary = "a failing task and a dying worker",
  params = {n = {default = 6, quick = 6, min = 4}, workers = {default = 2, quick = 2, min = 1}},
  tasks = {
    flaky = function(x)
      if x == 2 then error("boom on item " .. x) end
      if x == 4 then pb.exit(3) end
      return x * 10
    end,
  },
  workload = function(p) return {items = p.n, stages = {"flaky"}} end,
  impls = {"async_get_after", "merged"},
  checks = function(r, p, check)
    for _, label in ipairs({"async_get_after", "merged"}) do
      local x = r[label]
      check(label .. ": two errors, every other result kept",
            x.errors == 2 and x.results == p.n, x.errors .. " errors, " .. x.results .. " results")
      check(label .. ": the first error names the line", (x.first_error or ""):find(":9: boom") ~= nil,
            x.first_error)
    end
  end,
}
