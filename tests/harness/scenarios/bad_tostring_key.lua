-- bad_tostring_key.lua: a key of the scenario table is a table whose
-- __tostring raises. The schema names the key without calling __tostring:
-- exit 2 with file:line, never a crash.
local bad = setmetatable({}, {__tostring = function() error("no tostring for you") end})

return {
  name = "bad_tostring_key",
  [bad] = 1,
  workload = function(p) return {items = 2, stages = {"identity"}} end,
  impls = {"map_async"},
}
