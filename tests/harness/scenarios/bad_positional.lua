-- bad_positional.lua: a positional entry in the scenario table (a value
-- without a name): the message says so.
return {
  name = "bad_positional",
  42,
  workload = function(p) return {items = 2, stages = {"identity"}} end,
  impls = {"map_async"},
}
