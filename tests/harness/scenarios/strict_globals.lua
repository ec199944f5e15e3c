-- strict_globals.lua: _G with a __newindex and an __index that raise (the
-- "strict globals" idiom): poolbench sets P raw, so the run passes.
setmetatable(_G, {
  __newindex = function(_, k) error("strict globals: cannot set " .. tostring(k), 2) end,
  __index = function(_, k) error("strict globals: no global " .. tostring(k), 2) end,
})

return {
  name = "strict_globals",
  params = {
    n       = {default = 3, quick = 3, min = 1, max = 10, doc = "items"},
    workers = {default = 2, quick = 2, min = 1, max = 8, doc = "pool processes"},
  },
  tasks = {
    plus = function(x) return x + P.n end,
  },
  workload = function(p) return {items = p.n, stages = {"plus"}} end,
  impls = {"map_async"},
  checks = function(r, p, check)
    check("map_async got every result", r.map_async.results == p.n and r.map_async.errors == 0,
          tostring(r.map_async.first_error))
  end,
}
