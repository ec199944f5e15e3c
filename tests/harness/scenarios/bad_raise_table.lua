-- bad_raise_table.lua: workload(p) raises a table whose __tostring raises:
-- exit 2 with file:line, never a crash.
local obj = setmetatable({}, {__tostring = function() error("no tostring for you") end})

return {
  name = "bad_raise_table",
  workload = function(p)
    error(obj)
  end,
  impls = {"map_async"},
}
