-- bad_runtime.lua: workload() fails at run time, on line 8.
return {
  name = "bad_runtime",
  summary = "workload calls a nil value",
  params = {n = {default = 2, quick = 1}},
  workload = function(p)
    local items = p.n
    return {items = items, stages = {"identity"}, extra = no_such_function(items)}
  end,
  impls = {"merged"},
}
