-- eager_input.lua: imap and Executor.map take their whole input at the call, so the parent's memory grows with n; a buffersize keeps it flat, at a cost in time (P25).
--
-- Issue 13, item 9. CPython's Pool.imap hands its whole input to the task
-- handler at once and Executor.map submits every item before it returns; an
-- endless input never returns. CPython 3.14's Executor.map(buffersize=) and
-- Pool.imap(buffersize=) (gh-64192) bound it: at most buffersize chunks
-- submitted whose results have not been yielded. Here a slow consumer (it
-- waits `consume` seconds on each result, as one writing each result out
-- would) meets quick tasks that
-- return `payload` bytes each: without a buffer the workers run ahead and
-- every result waits in the parent; with one, they wait for the consumer.

return {
  name = "eager_input",
  source = "002_2fab88b10910dd43.txt",
  summary = "imap/Executor.map take every item at once (memory grows with n); buffersize keeps it flat",
  doc = [[Phenomenon P25 (issue 13, item 9). n small integers through a task that
returns a string of `payload` bytes; the consumer waits `consume` seconds on
each result (the observe hook sleeps, as a consumer writing each result out
waits on I/O; a sleep, not a spin, so that CPython's twin leaves the GIL to
its result thread as such a consumer does), so it is slower than the workers.
Without a buffersize (CPython's default, and the engine's) imap and
Executor.map submit every item at the call: the workers run ahead of the
consumer and the results wait in the parent, so its peak memory grows by
about n * payload (more, with each result's message buffers). With
buffersize b, at most b chunks are out: the workers wait for the consumer
and the peak stays flat whatever n. Each strategy runs at n
and at scale * n (the *_4n labels, scale = 4); peak_rss_kb is each run's own
high-water mark of the parent (VmHWM reset before it). The buffered labels
run first, so that memory an eager run left with the allocator cannot raise
their baseline, and each size's runs go together (n, then 4n), so that a 4n
run's leftovers do not raise an n run's baseline. The model: eager growth
about (scale - 1) * n * payload (less the results the consumer took while
the workers ran, more with their buffers), buffered growth next to nothing; the time is the consumer's, n * consume, either way. The
checks: each eager growth is at least 40% of (scale - 1) * n * payload, each
buffered growth under a third of its eager twin's, and the buffered run
takes at most 3 times the eager one's time (the cost of waiting: a wake-up
per chunk; bench/overhead prints it for trivial tasks). An endless input is
not run: without a buffer the call would never return.]],
  params = {
    n          = {default = 1000,  quick = 300,   min = 1, max = 1000000, doc = "items at scale 1"},
    payload    = {default = 16384, quick = 16384, min = 1, max = 16777216, doc = "bytes per result"},
    -- quick: 1 ms, eight times what the workers take per result here
    -- (0.13 ms, 32 KiB results), so that the results still pile up when
    -- a loaded machine halves the workers' pace (the sleep does not slow).
    consume    = {default = 0.0003, quick = 0.001, min = 0, max = 1,
                  doc = "seconds the consumer waits on each result (a sleep)"},
    scale      = {default = 1, quick = 1, min = 1, max = 64,
                  doc = "items = scale * n (the *_4n labels set 4)"},
    buffersize = {default = 0, quick = 0, min = 0, max = 1000000,
                  doc = "chunks out at most (0: none, every item at the call; *_buffered set 4)"},
    workers    = {default = 2, quick = 2, min = 1, max = 64, doc = "pool processes"},
    chunksize  = {default = 1, quick = 1, min = 1, max = 100000,
                  doc = "items per task message (buffersize counts these chunks)"},
  },
  tasks = {
    big_result = function(x) return string.rep("x", P.payload) end,
  },
  workload = function(p)
    return {items = p.n * p.scale, stages = {"big_result"},
            observe = function() pb.sleep(p.consume) end} -- the slow consumer
  end,
  impls = {
    {impl = "imap", label = "imap_buffered", set = {buffersize = 4}},
    {impl = "executor_map", label = "executor_map_buffered", set = {buffersize = 4}},
    {impl = "imap", label = "imap_buffered_4n", set = {buffersize = 4, scale = 4}},
    {impl = "executor_map", label = "executor_map_buffered_4n", set = {buffersize = 4, scale = 4}},
    "imap",
    "executor_map",
    {impl = "imap", label = "imap_4n", set = {scale = 4}},
    {impl = "executor_map", label = "executor_map_4n", set = {scale = 4}},
  },
  -- The classroom lab: `poolbench lab eager_input` (docs/labs/16-eager_input.md).
  lab = {
    -- The exercise "write the fix" (`poolbench lab eager_input --exercise`).
    exercise = {
      reference = "imap_buffered",
      margin = 0.5,
      task = [[imap without a buffersize submits every item at the call, so with a
consumer slower than the workers every result waits in the parent. Bound
it: iterate pool:imap over the items with {buffersize = p.buffersize}
(at most that many chunks out) and report each value as it comes
(pool:final(i, value)), keeping none of them.]],
      skeleton = [[
return function(pool, items, p)
  local task = pool.stages[1]
  -- TODO: the trap: every item submitted at once, the results pile up
  for i, v in pool:imap(task, items) do pool:final(i, v) end
end
]],
    },
    title = "imap takes its whole input at once; buffersize keeps memory flat",
    order = 16,
    vary = {n = {600, 1000, 200}, payload = {8192, 16384, 8192}, workers = {2, 3}},
    questions = {
      {ask = "imap without a buffersize over %n items, each result %payload bytes, a consumer "
             .. "slower than the workers; then over 4 times as many (imap_4n). By how much does "
             .. "the parent's peak memory grow between the two?",
       answer = function(p) return 3 * p.n * p.payload / 1048576 end,
       unit = "MB",
       measure = function(r)
         if r.imap.run_failed or r.imap_4n.run_failed then return nil end -- nothing to show
         return (r.imap_4n.peak_rss_kb - r.imap.peak_rss_kb) / 1024
       end},
      {ask = "The same with buffersize 4 (imap_buffered, imap_buffered_4n). By how much does "
             .. "the peak grow?",
       answer = function(p) return 0 end,
       unit = "MB",
       measure = function(r) -- nil where the engine has no buffersize (CPython 3.11)
         if r.imap_buffered.run_failed or r.imap_buffered_4n.run_failed then return nil end
         return (r.imap_buffered_4n.peak_rss_kb - r.imap_buffered.peak_rss_kb) / 1024
       end},
    },
    explain = [[Without a buffersize, imap (like CPython's Pool.imap and
Executor.map) submits every item at the call: the workers are quicker than
the consumer, so the results pile up in the parent: about 3*%n*%payload
bytes more for the 4n run (more, as each waits with its message's buffers;
less, by the results the consumer took while the workers ran). With buffersize 4 at most 4 chunks are out: the workers
wait for the consumer and the peak stays flat. The time is the consumer's
either way; the buffer's cost is a wake-up per chunk, which only shows with
trivial tasks (bench/overhead: imap with and without a buffer).]],
  },
  -- The ratios the checks rely on, for `poolbench compare` (docs/lua-api.md,
  -- "Ratios"); the first is the key ratio. Peak memory at 4n / at n, without
  -- and with a buffer; then the buffer's price in time.
  ratios = {{"imap_4n.peak_rss_kb", "imap.peak_rss_kb"},
            {"imap_buffered_4n.peak_rss_kb", "imap_buffered.peak_rss_kb"},
            {"executor_map_4n.peak_rss_kb", "executor_map.peak_rss_kb"},
            {"executor_map_buffered_4n.peak_rss_kb", "executor_map_buffered.peak_rss_kb"},
            {"imap_buffered_4n", "imap_4n"}},
  checks = function(r, p, check)
    local function mb(kb) return kb / 1024 end
    local scale = r.imap_4n.params.scale
    local extra_mb = (scale - 1) * p.n * p.payload / 1048576
    for label, x in pairs(r) do
      check(label .. ": every result came back",
            x.results == p.n * x.params.scale and x.errors == 0,
            string.format("%d results, %d errors; peak %.1f MB, %.3f s", x.results, x.errors,
                          mb(x.peak_rss_kb), x.wall_s))
    end
    for _, api in ipairs({"imap", "executor_map"}) do
      local e1, e4 = r[api], r[api .. "_4n"]
      local b1, b4 = r[api .. "_buffered"], r[api .. "_buffered_4n"]
      local eager = mb(e4.peak_rss_kb - e1.peak_rss_kb)
      local bounded = mb(b4.peak_rss_kb - b1.peak_rss_kb)
      check(api .. " without a buffersize: the peak grows with n (at least 40% of the extra results)",
            eager >= 0.4 * extra_mb,
            string.format("%.1f MB at n=%d, %.1f MB at n=%d: +%.1f MB; the extra results are %.1f MB",
                          mb(e1.peak_rss_kb), p.n, mb(e4.peak_rss_kb), scale * p.n, eager, extra_mb))
      check(api .. " with buffersize 4: the peak grows far less (under a third of the eager growth)",
            bounded < eager / 3,
            string.format("%+.1f MB with the buffer against %+.1f MB without", bounded, eager))
      check(api .. " with buffersize 4: the price in time is bounded (at most 3x the eager run)",
            b4.wall_s <= 3 * e4.wall_s,
            string.format("%.3f s with the buffer, %.3f s without (ratio %.2f) at n=%d",
                          b4.wall_s, e4.wall_s, b4.wall_s / e4.wall_s, scale * p.n))
    end
  end,
}
