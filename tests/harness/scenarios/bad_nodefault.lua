-- bad_nodefault.lua: a parameter without a default (line 6).
return {
  name = "bad_nodefault",
  summary = "param without default",
  params = {
    n = {quick = 2, doc = "items"},
  },
  workload = function(p) return {items = 2, stages = {"identity"}} end,
  impls = {"merged"},
}
