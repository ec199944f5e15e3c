-- bad_stop.lua: the stop rule raises an error (line 8) in the parent, mid-run.
return {
  name = "bad_stop",
  summary = "a stop rule that fails",
  workload = function(p)
    return {items = 3, stages = {"identity"},
            stop = function(result, item)
              return result.no_such_field > 0
            end}
  end,
  impls = {"async_get_after"},
}
