-- tmpfiles.lua: pb.tmpname in the parent; a worker that ends with os.exit
-- (allowed in workers) must not remove the parent's directory on its way
-- out; the directory goes when poolbench ends (for the tests).
FILE = nil

return {
  name = "tmpfiles",
  params = {
    n       = {default = 4, quick = 4, min = 2, max = 20, doc = "items"},
    workers = {default = 2, quick = 2, min = 1, max = 8, doc = "pool processes"},
  },
  tasks = {
    maybe_exit = function(x)
      if x == 1 then os.exit(3) end
      return x
    end,
  },
  setup = function(p)
    FILE = pb.tmpname()
    local f = assert(io.open(FILE, "w"))
    f:write("kept")
    f:close()
  end,
  workload = function(p) return {items = p.n, stages = {"maybe_exit"}} end,
  impls = {"async_get_after"},
  checks = function(r, p, check)
    local x = r.async_get_after
    check("item 1's worker died, the others came back", x.results == p.n and x.errors == 1,
          tostring(x.first_error))
    check("the error names item 1 as Lua numbers it", tostring(x.first_error):find("^item 1: ") ~= nil,
          tostring(x.first_error))
    local f = io.open(FILE)
    check("the worker's exit left the parent's temporary file", f ~= nil, FILE)
    if f then f:close() end
    check("pb.tmpname is inside pb.tmpdir", FILE:sub(1, #pb.tmpdir()) == pb.tmpdir(), FILE)
  end,
}
