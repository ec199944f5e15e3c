-- bad_workload_meta.lua: what workload(p) returns has a key whose
-- __tostring raises (an unknown field): exit 2 with file:line.
local bad = setmetatable({}, {__tostring = function() error("no tostring for you") end})

return {
  name = "bad_workload_meta",
  workload = function(p)
    return {items = 2, stages = {"identity"}, [bad] = true}
  end,
  impls = {"map_async"},
}
