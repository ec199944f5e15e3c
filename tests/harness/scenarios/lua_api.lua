-- lua_api.lua: every call of the Lua pool API once, each outcome recorded as a fact.
local function raises(pattern, f, ...)
  local ok, e = pcall(f, ...)
  return (not ok and type(e) == "string" and e:match(pattern)) and 1 or 0
end

return {
  name = "lua_api",
  summary = "the Lua pool API: every call, its values, its errors, its timeouts",
  params = {
    n = {default = 6, min = 1, max = 50, doc = "items"},
    workers = {default = 2, min = 1, max = 8, doc = "pool processes"},
  },
  tasks = {
    slow = function(s) pb.sleep(s) return s end,
    sq = function(x) return x * x end,
    add = function(a, b) return a + b end,
    boom = function(x) error("boom " .. tostring(x)) end,
  },
  workload = function(p) return {items = p.n, stages = {"sq"}} end,
  strategies = {
    api = function(pool, items, p)
      API = {} -- the parent's state: checks read it afterwards
      local F = function(k, v) API[k] = v end
      -- apply, apply_async + get, a task error, a timeout
      F("apply", pool:apply("sq", {7}) == 49 and 1 or 0)
      local h = pool:apply_async("add", {2, 3})
      F("get", h:get() == 5 and 1 or 0)
      F("ready", (h:ready() and h:successful()) and 1 or 0)
      local bad = pool:apply_async("boom", {1})
      F("task_error", raises("^TaskError: .*boom 1", bad.get, bad))
      F("unsuccessful", bad:successful() == false and 1 or 0)
      local slow = pool:apply_async("slow", {0.3})
      F("timeout", raises("^TimeoutError", slow.get, slow, 0.02))
      F("wait_false", slow:wait(0.01) == false and 1 or 0)
      F("not_ready", raises("^ValueError", slow.successful, slow))
      F("wait_true", slow:wait() == true and 1 or 0)
      -- map, starmap, map_async with its callback, chunksize
      local m = pool:map("sq", {1, 2, 3, 4}, 2)
      F("map", (#m == 4 and m[4] == 16) and 1 or 0)
      local sm = pool:starmap("add", {{1, 2}, {3, 4}})
      F("starmap", (sm[1] == 3 and sm[2] == 7) and 1 or 0)
      local got
      local ma = pool:map_async("sq", {5, 6}, {chunksize = 1, callback = function(v) got = v end})
      ma:wait()
      F("map_async_callback", (got and got[2] == 36) and 1 or 0)
      local sa = pool:starmap_async("add", {{1, 1}})
      F("starmap_async", sa:get()[1] == 2 and 1 or 0)
      F("map_error", raises("^TaskError", pool.map, pool, "boom", {1, 2}))
      local errseen
      local ea = pool:apply_async("boom", {9}, {error_callback = function(e) errseen = e end})
      ea:wait()
      F("error_callback", (errseen and errseen:match("^TaskError: .*boom 9")) and 1 or 0)
      -- imap in order, and an item's error in the loop
      local order = {}
      for i, v, err in pool:imap("sq", {3, 1, 2}) do order[#order + 1] = v end
      F("imap", (order[1] == 9 and order[3] == 4) and 1 or 0)
      local errs = 0
      for i, v, err in pool:imap_unordered("boom", {1, 2, 3}, 1) do
        if err then errs = errs + 1 end
      end
      F("imap_errors", errs == 3 and 1 or 0)
      -- break out of an imap: the iterator is closed at once
      local k = 0
      for i, v in pool:imap("slow", {0.01, 0.01, 0.01, 0.01, 0.01, 0.01}) do
        k = k + 1
        if k == 2 then break end
      end
      F("imap_break", k == 2 and 1 or 0)
      local it = pool:imap("sq", {2})
      local i1, v1 = it:next(5)
      F("iter_next", (i1 == 1 and v1 == 4 and it:next() == nil) and 1 or 0)
      -- futures: submit, result, add_done_callback, as_completed, executor map
      local futs, done = {}, 0
      for j = 1, 3 do
        futs[j] = pool:submit("slow", {0.05 * (4 - j)})
        futs[j]:add_done_callback(function(f) done = done + 1 end)
      end
      local seen = {}
      for f, j in pool.as_completed(futs) do seen[#seen + 1] = j end
      F("as_completed", (#seen == 3 and seen[1] == 2) and 1 or 0)
      F("done_callbacks", done == 3 and 1 or 0)
      F("result", math.abs(futs[1]:result(1) - 0.15) < 1e-9 and 1 or 0)
      local late = pool:submit("slow", {0.3})
      F("as_completed_timeout",
        raises("^TimeoutError", function() for f in pool.as_completed({late}, 0.02) do end end))
      local xs = {}
      for i, v in pool:executor_map("sq", {1, 2, 3}, {chunksize = 2}) do xs[i] = v end
      F("executor_map", (xs[3] == 9) and 1 or 0)
      -- a raising callback: counted by the engine, the run goes on
      pool:apply_async("sq", {1}, {callback = function() error("callback fails") end}):wait()
      -- a thread
      local t = pb.thread(function() pool:apply("sq", {3}) end)
      F("thread", t:join() == true and 1 or 0)
      local t2 = pb.thread(function() error("thread fails") end)
      local ok, e = t2:join()
      F("thread_error", (ok == false and e:match("thread fails")) and 1 or 0)
      -- the items, and their finals
      for i, v in ipairs(pool:map("sq", items)) do pool:final(i, v) end
      F("join_running", raises("^ValueError: Pool is still running", pool.join, pool))
      pool:close()
      F("closed", raises("^ValueError", pool.apply_async, pool, "sq", {1}))
      pool:join()
    end,
    p2 = function(pool, items, p)
      -- callbacks that hold the lock (CPU in the parent) run one at a time
      local hs = {}
      for i, item in ipairs(items) do
        hs[i] = pool:apply_async("sq", {item}, {callback = function(v)
          pb.spin(0.03)
          pool:final(i, v)
        end})
      end
      for i = 1, #items do hs[i]:wait() end
    end,
  },
  impls = {"api", "p2"},
  model = {p2 = function(p) return p.n * 0.03 end},
  checks = function(r, p, check)
    local a = r.api
    local names = {}
    for k in pairs(API) do names[#names + 1] = k end
    table.sort(names)
    for _, k in ipairs(names) do check("api: " .. k, API[k] == 1) end
    check("api: 28 facts", #names == 28, tostring(#names))
    check("api: every item final", a.results == p.n and a.errors == 0)
    check("api: callbacks in the parent, one at a time",
          a.callback_pid == a.parent_pid and a.callbacks_max_overlap == 1 and a.callbacks == 6,
          tostring(a.callbacks))
    check("p2: callbacks serialized (P2)", r.p2.wall_s >= 0.9 * p.n * 0.03 and r.p2.callbacks_max_overlap == 1,
          string.format("%.3f s", r.p2.wall_s))
  end,
}
