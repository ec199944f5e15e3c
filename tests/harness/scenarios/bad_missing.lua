-- bad_missing.lua: no name (the error points at the `return {` of line 3).

return {
  summary = "no name",
  workload = function(p) return {items = 2, stages = {"identity"}} end,
  impls = {"merged"},
}
