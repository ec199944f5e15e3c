-- fails_check.lua: a scenario whose second check fails on purpose (exit status 1).
return {
  name = "fails_check",
  summary = "one check passes, one fails",
  params = {n = {default = 3, quick = 2, min = 1}},
  workload = function(p) return {items = p.n, stages = {"identity"}} end,
  impls = {"async_get_after"},
  checks = function(r, p, check)
    check("every item came back", r.async_get_after.results == p.n)
    check("this check fails on purpose", false, "as the test wants")
  end,
}
