-- strict.lua: every table the harness reads is a "strict table" whose
-- metatable raises on a missing field (the common idiom). poolbench reads
-- scenario tables raw, so this runs and passes; it used to end with
-- "PANIC: unprotected error in call to Lua API" (exit 134).
local function strict(t, what)
  return setmetatable(t, {
    __index = function(_, k) error("strict " .. what .. ": no field " .. tostring(k), 2) end,
    __newindex = function(_, k) error("strict " .. what .. ": cannot add " .. tostring(k), 2) end,
  })
end

return strict({
  name = "strict",
  source = "none (written for the tests)",
  summary = "strict tables everywhere: the harness reads them raw",
  params = strict({
    n       = strict({default = 4, quick = 3, min = 1, max = 100, doc = "items"}, "param"),
    workers = strict({default = 2, quick = 2, min = 1, max = 8, doc = "pool processes"}, "param"),
  }, "params"),
  tasks = strict({
    double = function(x) return 2 * x end,
  }, "tasks"),
  workload = function(p)
    return strict({items = p.n, stages = strict({"double"}, "stages")}, "workload")
  end,
  impls = strict({"map_async", strict({impl = "imap", label = "imap"}, "variant")}, "impls"),
  model = strict({
    map_async = function(p) return 0.001 * p.n end,
  }, "model"),
  checks = function(r, p, check)
    check("map_async got every result", r.map_async.results == p.n and r.map_async.errors == 0)
    check("imap got every result", r.imap.results == p.n and r.imap.errors == 0)
  end,
}, "scenario")
