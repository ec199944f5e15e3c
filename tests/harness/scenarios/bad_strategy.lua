-- bad_strategy.lua: impls names a strategy that does not exist, on line 7.
return {
  name = "bad_strategy",
  summary = "unknown strategy",
  workload = function(p) return {items = 2, stages = {"identity"}} end,
  impls = {"merged",
           "no_such_strategy"},
}
