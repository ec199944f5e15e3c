-- load.lua: steady load for fault injection: every item must end with exactly one value or one error.
--
-- tests/chaos/run.sh runs this scenario with `--impl X` for each strategy and
-- meanwhile SIGKILLs or SIGSTOPs workers and the fork server. The observe hook
-- counts the outcomes of every item, and the checks fail when an item got none
-- (lost) or more than one (duplicated), when a value is not the item's, or when
-- an error does not say what happened (names no worker, pid, signal, fork
-- server, termination or time limit).

local recorders = {}

local function new_recorder(n)
  local rec = {n = n, got = {}, bad = {}, vague = 0, first_vague = nil, used = false}
  rec.observe = function(result, item, err)
    if not rec.used then
      rec.used = true
      recorders[#recorders + 1] = rec
    end
    rec.got[item] = (rec.got[item] or 0) + 1
    -- 3x+1 after both stages; the lifecycle probe runs the first stage only (3x).
    if err == nil and result ~= 3 * item + 1 and result ~= 3 * item then rec.bad[#rec.bad + 1] = item end
    if err ~= nil then
      local e = tostring(err):lower()
      if not (e:find("worker") or e:find("pid") or e:find("signal") or e:find("fork")
              or e:find("terminat") or e:find("time") or e:find("broken")) then
        rec.vague = rec.vague + 1
        rec.first_vague = rec.first_vague or tostring(err)
      end
    end
  end
  return rec
end

return {
  name = "chaos_load",
  summary = "steady load for fault injection: every item ends with one value or one error",
  doc = [[n items of t_ms (a sleep) through two stages on `workers` processes,
while tests/chaos/run.sh kills and stops processes. Each item x ends as
3x+1 (stage one: x -> 3x, stage two: +1) or as an error naming its cause.]],
  params = {
    n       = {default = 120, quick = 60, min = 1, max = 100000, doc = "items"},
    workers = {default = 3,   quick = 3,  min = 1, max = 64, doc = "pool processes"},
    t_ms    = {default = 15,  quick = 15, min = 0, max = 10000, doc = "each stage, ms"},
  },
  tasks = {
    triple = function(x) pb.sleep(P.t_ms / 1000) return 3 * x end,
    plus1 = function(x) pb.sleep(P.t_ms / 1000) return x + 1 end,
  },
  workload = function(p)
    local rec = new_recorder(p.n)
    return {items = p.n, stages = {"triple", "plus1"}, observe = rec.observe}
  end,
  impls = {"apply_sync", "async_get_loop", "async_get_after", "callback_chain", "merged",
           "map_async", "imap", "imap_unordered", "producer_consumer", "executor_submit",
           "executor_map", "process_per_task", "lifecycle"},
  checks = function(r, p, check)
    check("some strategy observed results", #recorders > 0, #recorders .. " recorders")
    for k, rec in ipairs(recorders) do
      local lost, dup = 0, 0
      for i = 1, rec.n do
        local g = rec.got[i] or 0
        if g == 0 then lost = lost + 1 elseif g > 1 then dup = dup + 1 end
      end
      check("run " .. k .. ": every item got exactly one value or error", lost == 0 and dup == 0,
            string.format("%d lost, %d duplicated of %d", lost, dup, rec.n))
      check("run " .. k .. ": every value is its item's", #rec.bad == 0,
            string.format("%d wrong values", #rec.bad))
      check("run " .. k .. ": every error says what happened", rec.vague == 0,
            string.format("%d vague errors, first: %s", rec.vague, rec.first_vague or "-"))
    end
  end,
}
