-- bad_start_method.lua: a variant's start_method that is no start method (line 7).
return {
  name = "bad_start_method",
  summary = "start_method = \"vfork\"",
  workload = function(p) return {items = 2, stages = {"identity"}} end,
  impls = {
    {impl = "merged", label = "vforked", start_method = "vfork"},
  },
}
