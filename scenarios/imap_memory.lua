-- imap_memory.lua: map holds every result at once, so its peak memory grows with n; imap with a buffersize streams them with flat memory (document 002).
--
-- Document 002, section 1.2.5: "when memory is short, use imap: far slower
-- than map, but it needs little memory". Small inputs, big results: each
-- task turns an integer into a string of `payload` bytes. map_async's get()
-- returns one list of every result, so the parent holds n * payload bytes
-- at the end; imap hands each result over as it comes and the strategy
-- drops it, so the parent holds only the chunks in flight. imap streams
-- only with a buffersize (CPython 3.14's Executor.map, Pool.imap after
-- gh-64192): without one it takes its whole input at the call, as CPython's
-- does (scenarios/eager_input.lua shows that side).

return {
  name = "imap_memory",
  source = "002_2fab88b10910dd43.txt",
  summary = "map holds every result at once (memory grows with n); imap with a buffersize streams flat",
  doc = [[Phenomenon P12. n items (small integers) through a task that returns a
string of `payload` bytes. map_async collects every chunk's results and
returns them as one list: the parent's peak memory grows by about n * payload
(more while the chunks' messages and the assembled list coexist). imap with
buffersize b (here 4, 2 * the default workers) pulls the input as the loop
consumes it, at most b chunks out, and the loop drops each result once it
has looked at it: the parent's peak stays flat whatever n. Without a
buffersize imap takes its whole input at the call, as CPython's Pool.imap
does, and flatness is then not promised (scenarios/eager_input.lua). Each strategy runs at n and at scale * n (the *_4n variants,
scale = 4), and peak_rss_kb is each run's own high-water mark of the parent
(VmHWM reset before it). The model: map's peak grows by about
(scale - 1) * n * payload between the two sizes, imap's by next to nothing.
The checks: map's growth is at least 40% of (scale - 1) * n * payload, and
imap's growth is under a third of map's (with a buffersize; without one,
--set buffersize=0, it is printed as a figure). imap runs first, so that memory
map's run left with the allocator cannot raise imap's baseline. Document 002
gives no figure beyond the advice; PHENOMENA.md has none for CPython. Times
are reported, not checked (imap costs one message per item at chunksize 1,
map one per chunk: phenomenon P6).]],
  params = {
    n       = {default = 2000, quick = 500,  min = 1, max = 10000000, doc = "items at scale 1"},
    payload = {default = 8192, quick = 8192, min = 1, max = 16777216, doc = "bytes per result"},
    scale   = {default = 1,    quick = 1,    min = 1, max = 64,
               doc = "items = scale * n (the *_4n variants set 4)"},
    workers = {default = 2,    quick = 2,    min = 1, max = 64, doc = "pool processes"},
    buffersize = {default = 4, quick = 4,    min = 0, max = 1000000,
                  doc = "imap's chunks out at most (0: none, the whole input at the call)"},
  },
  tasks = {
    big_result = function(x) return string.rep("x", P.payload) end,
  },
  workload = function(p) return {items = p.n * p.scale, stages = {"big_result"}} end,
  impls = {
    "imap",
    {impl = "imap", label = "imap_4n", set = {scale = 4}},
    "map_async",
    {impl = "map_async", label = "map_async_4n", set = {scale = 4}},
  },
  -- The classroom lab: `poolbench lab imap_memory` (docs/labs/10-imap_memory.md).
  lab = {
    -- The exercise "write the fix" (`poolbench lab imap_memory --exercise`).
    exercise = {
      reference = "imap",
      margin = 0.5,
      task = [[map holds every result in the parent at once; imap hands them over one
by one. Stream: iterate pool:imap over the items and report each value
as it comes (pool:final(i, value)), keeping none of them. (The reference
strategy imap runs with buffersize 4, so its input is read as it goes.)]],
      skeleton = [[
return function(pool, items, p)
  local task = pool.stages[1]
  -- TODO: the trap: every result held at once
  local all = pool:map(task, items)
  for i, v in ipairs(all) do pool:final(i, v) end
end
]],
    },
    title = "map holds every result, imap streams: the parent's peak memory",
    order = 10,
    vary = {n = {1000, 2000, 500}, payload = {4096, 8192, 4096}, workers = {2, 4}},
    questions = {
      {ask = "map_async over %n items, each result %payload bytes, then over 4 times as many "
             .. "(map_async_4n). By how much does the parent's peak memory grow between the "
             .. "two?",
       answer = function(p) return 3 * p.n * p.payload / 1048576 end,
       unit = "MB",
       measure = function(r) return (r.map_async_4n.peak_rss_kb - r.map_async.peak_rss_kb) / 1024 end},
      {ask = "The same with imap with buffersize %buffersize (imap, then imap_4n), which hands "
             .. "each result to the loop and drops it. By how much does the peak grow?",
       answer = function(p) return 0 end,
       unit = "MB",
       measure = function(r) return (r.imap_4n.peak_rss_kb - r.imap.peak_rss_kb) / 1024 end},
    },
    explain = [[map_async returns one list, so every result is in the parent at
once before the first can be used: the peak grows by about n*payload, here
3*%n*%payload bytes more for the 4n run (more while the chunks' messages and
the list coexist). imap with buffersize %buffersize keeps at most that many
chunks out and the loop drops each result after looking at it, so the peak
stays flat whatever n: a growth near zero, within the allocator's noise.
Without a buffersize imap takes its whole input at the call, as CPython's
does (lab eager_input).
Document 002: "use imap when memory is short". The price is P6: imap sends
one message per item.]],
  },
  -- The ratios the checks rely on, for `poolbench compare` (docs/lua-api.md, "Ratios"); the
  -- first is the key ratio: peak memory at 4n / at n: "map_async's peak grows with n", "imap's
  -- grows far less".
  ratios = {{"map_async_4n.peak_rss_kb", "map_async.peak_rss_kb"}, {"imap_4n.peak_rss_kb", "imap.peak_rss_kb"}},
  checks = function(r, p, check)
    local i1, i4, m1, m4 = r.imap, r.imap_4n, r.map_async, r.map_async_4n
    local scale = m4.params.scale
    local extra_mb = (scale - 1) * p.n * p.payload / 1048576 -- what map must hold more
    local function mb(kb) return kb / 1024 end
    for _, label in ipairs({"imap", "imap_4n", "map_async", "map_async_4n"}) do
      local x = r[label]
      local items = p.n * x.params.scale
      check(label .. ": every result came back",
            x.results == items and x.errors == 0,
            string.format("%d results of %d bytes, %d errors; peak %.1f MB, %.3f s", x.results,
                          p.payload, x.errors, mb(x.peak_rss_kb), x.wall_s))
    end
    local map_growth = mb(m4.peak_rss_kb - m1.peak_rss_kb)
    local imap_growth = mb(i4.peak_rss_kb - i1.peak_rss_kb)
    check("map_async's peak grows with n (by at least 40% of the extra results)",
          map_growth >= 0.4 * extra_mb,
          string.format("%.1f MB at n=%d, %.1f MB at n=%d: +%.1f MB; the extra results are "
                        .. "%.1f MB", mb(m1.peak_rss_kb), p.n, mb(m4.peak_rss_kb), scale * p.n,
                        map_growth, extra_mb))
    local detail = string.format("imap %.1f MB at n=%d, %.1f MB at n=%d: %+.1f MB, vs map +%.1f MB",
                                 mb(i1.peak_rss_kb), p.n, mb(i4.peak_rss_kb), scale * p.n,
                                 imap_growth, map_growth)
    if i1.params.buffersize > 0 then
      check("imap's peak (with a buffersize) grows far less (under a third of map's growth)",
            imap_growth < map_growth / 3, detail)
    else
      -- Without a buffersize imap takes its whole input at the call and
      -- nothing bounds what piles up but the loop's pace against the
      -- workers': flat while the loop keeps up, growing when the machine
      -- holds the parent back (lab eager_input checks that side, with a
      -- loop slowed on purpose). Which one a run gets is the machine's
      -- doing, so it is a figure here, not a check.
      print("imap without a buffersize (a figure, not a check: flat only while the loop "
            .. "keeps up): " .. detail)
    end
  end,
}
