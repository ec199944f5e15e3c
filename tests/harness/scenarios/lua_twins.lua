-- lua_twins.lua: five C strategies beside their twins written in Lua: the same figures.
-- Each lua_* strategy is the C strategy of the same name (impls/NAME.c) line for line,
-- written with the Lua pool API (docs/lua-api.md, "Strategies in Lua"). The checks
-- hold each twin to its C original: wall time within 10% + 20 ms, the same counts,
-- the same callback facts. tests/harness/test_cli.sh runs it with --repeat 3.

-- An item's handle read as a final result: its value, or its error.
local function collect(pool, i, h)
  local ok, v = pcall(h.get, h)
  if ok then return pool:final(i, v) end
  return pool:final(i, nil, v)
end

return {
  name = "lua_twins",
  summary = "C strategies beside their Lua twins: the same wall times, counts and callbacks",
  params = {
    n       = {default = 8,  quick = 6,  min = 1, max = 200, doc = "items"},
    workers = {default = 2,  quick = 2,  min = 1, max = 16,  doc = "pool processes"},
    a_ms    = {default = 40, quick = 30, min = 0, max = 1000, doc = "stage A, ms"},
    b_ms    = {default = 30, quick = 30, min = 0, max = 1000, doc = "stage B, ms"},
    two     = {default = 1,  min = 0, max = 1, doc = "1: stages A then B; 0: A alone"},
    stop_at = {default = 0,  min = 0, max = 200, doc = "stop at this result (0: never)"},
  },
  tasks = {
    A = function(x) pb.sleep(P.a_ms / 1000) return x end,
    B = function(x) pb.sleep(P.b_ms / 1000) return x end,
  },
  workload = function(p)
    return {
      items = p.n,
      stages = p.two == 1 and {"A", "B"} or {"A"},
      stop = p.stop_at > 0 and function(r) return r == p.stop_at end or nil,
    }
  end,

  strategies = {
    -- impls/async_get_loop.c: get() right after each submit, for every stage but the last.
    lua_get_loop = function(pool, items, p)
      local S, last = pool.stages, {}
      for i, item in ipairs(items) do
        local v, err = item, nil
        for s = 1, math.max(#S - 1, 1) do
          local ok, r = pcall(function() return pool:apply_async(S[s], {v}):get() end)
          if ok then v = r else v, err = nil, r break end
        end
        if err or #S == 1 then
          if pool:final(i, v, err) then return end
        else
          last[i] = pool:apply_async(S[#S], {v})
        end
      end
      for i = 1, #items do
        if last[i] and collect(pool, i, last[i]) then return end
      end
    end,

    -- impls/async_get_after.c: each stage submitted for every item, then collected.
    lua_get_after = function(pool, items, p)
      local S, prev, failed = pool.stages, items, {}
      for s = 1, #S do
        local h, cur = {}, {}
        for i = 1, #items do
          if not failed[i] then h[i] = pool:apply_async(S[s], {prev[i]}) end
        end
        for i = 1, #items do
          if h[i] then
            local ok, v = pcall(h[i].get, h[i])
            if not ok then
              failed[i] = true
              if pool:final(i, nil, v) then return end
            elseif s == #S then
              if pool:final(i, v) then return end
            else
              cur[i] = v
            end
          end
        end
        prev = cur
      end
    end,

    -- impls/callback_chain.c: stage 1 in the pool, the others in its callback, in the parent.
    lua_callback_chain = function(pool, items, p)
      local S, h, stopped = pool.stages, {}, false
      pool:set_tasks_total(#items) -- the workers run stage 1 only
      for i, item in ipairs(items) do
        if stopped then break end
        h[i] = pool:apply_async(S[1], {item}, {
          callback = function(v)
            if stopped then return end
            local ok, r = pcall(function()
              for s = 2, #S do v = pool:call(S[s], {v}) end
              return v
            end)
            if pool:final(i, ok and r or nil, not ok and r or nil) then
              stopped = true
              pool:terminate()
            end
          end,
          error_callback = function(e)
            if not stopped then pool:final(i, nil, e) end
          end,
        })
      end
      for i = 1, #items do
        if h[i] then h[i]:wait() end
      end
    end,

    -- impls/imap.c (imap_unordered): read results as they come, break at the answer.
    lua_imap_unordered = function(pool, items, p)
      for i, v, err in pool:imap_unordered(pool.stages[1], items, pool.chunksize) do
        if pool:final(i, v, err) then break end
      end
    end,

    -- impls/producer_consumer.c: a producer thread submits, callbacks queue the
    -- results, the main thread consumes the queue.
    lua_producer_consumer = function(pool, items, p)
      local queue, head, stop = {}, 1, false
      pool:set_tasks_total(#items) -- one task per item: its whole pipeline
      local producer = pb.thread(function()
        for i, item in ipairs(items) do
          if stop then break end
          local task, args = pool:pipeline(item)
          pool:apply_async(task, args, {
            callback = function(v) queue[#queue + 1] = {i, v} end,
            error_callback = function(e) queue[#queue + 1] = {i, nil, e} end,
          })
        end
      end)
      local seen = 0
      while seen < #items do
        local q = queue[head]
        if q then
          head, seen = head + 1, seen + 1
          if pool:final(q[1], q[2], q[3]) then stop = true break end
        else
          pb.sleep(0.001) -- the lock is released while it sleeps
        end
      end
      producer:join()
    end,
  },

  impls = {
    "async_get_loop", "lua_get_loop",
    "async_get_after", "lua_get_after",
    "callback_chain", "lua_callback_chain",
    {impl = "imap_unordered", label = "imap_unordered_stop", set = {two = 0, stop_at = 3}},
    {impl = "lua_imap_unordered", label = "lua_imap_unordered_stop", set = {two = 0, stop_at = 3}},
    "producer_consumer", "lua_producer_consumer",
  },
  model = {
    async_get_loop = function(p) return (p.n * p.a_ms + p.b_ms) / 1000 end,
    lua_get_loop = function(p) return (p.n * p.a_ms + p.b_ms) / 1000 end,
    async_get_after = function(p) return math.ceil(p.n / p.workers) * (p.a_ms + p.b_ms) / 1000 end,
    lua_get_after = function(p) return math.ceil(p.n / p.workers) * (p.a_ms + p.b_ms) / 1000 end,
  },

  checks = function(r, p, check)
    local twins = {
      {"async_get_loop", "lua_get_loop"},
      {"async_get_after", "lua_get_after"},
      {"callback_chain", "lua_callback_chain"},
      {"imap_unordered_stop", "lua_imap_unordered_stop"},
      {"producer_consumer", "lua_producer_consumer"},
    }
    for _, t in ipairs(twins) do
      local c, l = r[t[1]], r[t[2]]
      check(t[2] .. " ran", l.first_error == nil, l.first_error)
      check(t[2] .. " takes the time of " .. t[1] .. " (within 10% + 20 ms)",
            math.abs(l.wall_s - c.wall_s) <= 0.10 * c.wall_s + 0.020,
            string.format("%.3f s vs %.3f s", l.wall_s, c.wall_s))
      check(t[2] .. ": the same counts as " .. t[1],
            l.errors == c.errors and l.tasks_total == c.tasks_total
              and l.stopped_early == c.stopped_early
              -- after a stop, how many results came first and how many tasks
              -- ended before the terminate depends on the moment
              and (c.stopped_early or (l.tasks_run == c.tasks_run and l.results == c.results)),
            string.format("results %d/%d errors %d/%d tasks %d/%d of %d/%d",
                          l.results, c.results, l.errors, c.errors, l.tasks_run, c.tasks_run,
                          l.tasks_total, c.tasks_total))
      local lsum, csum = 0, 0
      for _, w in ipairs(l.per_worker) do lsum = lsum + w.tasks end
      for _, w in ipairs(c.per_worker) do csum = csum + w.tasks end
      check(t[2] .. ": per-worker counts add up as " .. t[1] .. "'s",
            c.stopped_early or (lsum == l.tasks_run and csum == c.tasks_run and lsum == csum),
            string.format("%d vs %d", lsum, csum))
      check(t[2] .. ": the same callback facts as " .. t[1],
            l.callbacks == c.callbacks
              and (l.callbacks == 0 or (l.callback_pid == l.parent_pid
                                        and l.callbacks_max_overlap == 1))
              and l.callbacks_max_overlap == c.callbacks_max_overlap,
            string.format("callbacks %d/%d, overlap %d/%d", l.callbacks, c.callbacks,
                          l.callbacks_max_overlap, c.callbacks_max_overlap))
    end
  end,
}
