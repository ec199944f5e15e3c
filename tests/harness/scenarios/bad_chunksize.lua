-- bad_chunksize.lua: a variant sets chunksize 1e300: exit 2 naming the
-- parameter and its range (it used to reach the engine as -2^63).
return {
  name = "bad_chunksize",
  params = {
    n         = {default = 3, quick = 2, min = 1, doc = "items"},
    chunksize = {default = 0, doc = "map chunk size"},
  },
  workload = function(p) return {items = p.n, stages = {"identity"}} end,
  impls = {{impl = "map_async", label = "huge", set = {chunksize = 1e300}}},
}
