-- observe.lua: the workload's observe hook sees every final result, value or error (for the tests).
seen = {}

return {
  name = "observe",
  source = "none (written for the tests)",
  summary = "observe(result, item, error) is told of every final result",
  doc = [[Items 1..n; even items fail in the worker. observe records what it is
told; the checks compare that with what the strategy counted.]],
  params = {
    n       = {default = 8, quick = 6, min = 2, max = 100, doc = "items"},
    workers = {default = 2, quick = 2, min = 1, max = 8, doc = "pool processes"},
  },
  tasks = {
    odd_only = function(x)
      if x % 2 == 0 then error("even item " .. x) end
      return x * 10
    end,
  },
  workload = function(p)
    local rec = {values = 0, errors = 0, bad = 0}
    seen[#seen + 1] = rec
    return {
      items = p.n,
      stages = {"odd_only"},
      observe = function(result, item, err)
        if err then
          rec.errors = rec.errors + 1
          if not err:find("even item " .. item, 1, true) then rec.bad = rec.bad + 1 end
        elseif result == item * 10 then
          rec.values = rec.values + 1
        else
          rec.bad = rec.bad + 1
        end
      end,
    }
  end,
  impls = {"imap", "async_get_after"},
  checks = function(r, p, check)
    -- The last two recorders belong to the two runs (workload(p) is also
    -- called once at load).
    for k, label in ipairs({"imap", "async_get_after"}) do
      local rec = seen[#seen - 2 + k]
      local evens = p.n // 2
      check(label .. ": observe saw every value and every error",
            rec.values == p.n - evens and rec.errors == evens and rec.bad == 0
              and r[label].errors == evens,
            string.format("%d values, %d errors, %d wrong; the strategy counted %d errors",
                          rec.values, rec.errors, rec.bad, r[label].errors))
    end
  end,
}
