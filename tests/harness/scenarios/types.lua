-- types.lua: Lua values of every type go to a Lua task in a worker and come back.
-- `sample` holds each type the glue carries; `same` compares deeply (1 ~= 1.0).
sample = {
  nothing = nil, yes = true, no = false, int = 42, neg = -7, big = math.maxinteger,
  float = 0.5, whole_float = 2.0, str = "h\0llo", empty = {},
  list = {1, "two", 3.0, {4}}, map = {a = 1, [10] = "ten", nested = {x = {y = "z"}}},
}

function same(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) == "number" then return math.type(a) == math.type(b) and a == b end
  if type(a) ~= "table" then return a == b end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

return {
  name = "types",
  summary = "values of every type through a real pool, both ways",
  tasks = {
    echo = function(...) return {...} end,            -- parent -> worker -> parent
    make = function() return sample end,               -- built in the worker
    is_sample = function(x) return same(x, sample) end, -- checked in the worker
    whoami = function() return {pid = pb.pid(), n = P.n} end,
  },
  params = {n = {default = 3, quick = 3}},
  workload = function(p) return {items = {sample, sample}, stages = {"is_sample"}} end,
  impls = {"async_get_after"},
}
