-- bad_transport.lua: a variant naming an unknown transport (file:line, exit 2).
return {
  name = "bad_transport",
  summary = "a variant with transport = \"pigeon\"",
  workload = function(p) return {items = 3, stages = {"square"}} end,
  impls = {
    {impl = "map_async", label = "carried", transport = "pigeon"},
  },
}
