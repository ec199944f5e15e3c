-- observe_raise.lua: observe raises a table: exit 2 with file:line.
return {
  name = "observe_raise",
  params = {
    n       = {default = 3, quick = 2, min = 1, max = 10, doc = "items"},
    workers = {default = 2, quick = 2, min = 1, max = 8, doc = "pool processes"},
  },
  workload = function(p)
    return {items = p.n, stages = {"identity"},
            observe = function(result, item, err)
              error({"a table, not a message"})
            end}
  end,
  impls = {"async_get_after"},
}
