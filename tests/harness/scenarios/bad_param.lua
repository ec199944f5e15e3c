-- bad_param.lua: a parameter whose quick value is outside its range (line 6).
return {
  name = "bad_param",
  summary = "quick outside min..max",
  params = {
    workers = {default = 2, quick = 0, min = 1, max = 8},
  },
  workload = function(p) return {items = 2, stages = {"identity"}} end,
  impls = {"merged"},
}
