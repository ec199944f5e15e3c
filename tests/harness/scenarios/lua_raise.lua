-- lua_raise.lua: a Lua strategy that raises fails alone; the next one runs.
-- threaded raises while a pb.thread loops on a flag it would have set: the
-- thread is stopped, not waited for forever.
return {
  name = "lua_raise",
  params = {n = {default = 4, min = 1, max = 10}, workers = {default = 2, min = 1, max = 4}},
  workload = function(p) return {items = p.n, stages = {"square"}} end,
  strategies = {
    raising = function(pool, items, p)
      pool:apply("square", {1})
      error("the strategy fails")
    end,
    threaded = function(pool, items, p)
      local stop = false
      pb.thread(function()
        while not stop do pb.sleep(0.001) end
      end)
      pool:apply("no_such_task", {1}) -- raises before stop is set
      stop = true
    end,
    fine = function(pool, items, p)
      for i, v in ipairs(pool:map("square", items)) do pool:final(i, v) end
    end,
  },
  impls = {"raising", "threaded", "fine"},
  checks = function(r, p, check)
    check("fine ran after raising failed", r.fine.results == p.n and r.raising.first_error ~= nil)
  end,
}
