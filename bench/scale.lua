-- scale.lua: a benchmark, not a lesson: n trivial tasks through imap (bounded buffer), imap_unordered (bounded) and map_async, for the sweep of time and peak memory from 10^3 to 10^7 items (bench/scale.sh, `make bench-scale`).
--
-- Issue 14: "imap with a bounded buffer over 10^7 trivial items peaks under
-- 64 MiB, with and without --trace; time grows linearly in n". Each task is
-- the built-in identity (the work is nothing: what grows with n is the
-- messages and whatever the parent keeps per task). imap and imap_unordered
-- pull their input as they go, at most `buffersize` chunks of `chunksize`
-- items out, and the strategy drops each result once it is counted, so the
-- parent should hold nothing per item: its peak is flat in n. map_async
-- returns one list of every result: its peak grows with n (the contrast,
-- phenomenon P12 at scale). It lives in bench/, not scenarios/: a
-- benchmark with no document, no CPython twin and no lab page.

return {
  name = "scale",
  summary = "time and peak memory against n: imap (bounded), imap_unordered (bounded), map_async",
  doc = [[n trivial tasks (the built-in identity) through imap and imap_unordered
with a buffersize (at most `buffersize` chunks of `chunksize` items out) and
through map_async (every result in one list). The checks: every result came
back; the streaming strategies' peak stays under 64 MiB (the parent keeps
nothing per item: the items 1..n are made as they are read, the trace's
records stream out of the engine in batches and feed running aggregates).
Time per task is reported; that it is flat in n is what the sweep's figure
shows (bench/scale.sh), not a check.]],
  params = {
    n          = {default = 1000, quick = 1000, min = 1, max = 10000000, doc = "trivial tasks"},
    workers    = {default = 2, quick = 2, min = 1, max = 64, doc = "pool processes"},
    chunksize  = {default = 16, quick = 16, min = 0, max = 1000000,
                  doc = "items per message for imap and imap_unordered (0: the API default; map_async: its own)"},
    buffersize = {default = 8, quick = 8, min = 1, max = 1000000,
                  doc = "imap's chunks out at most"},
  },
  workload = function(p) return {items = p.n, stages = {"identity"}} end,
  impls = {"imap", "imap_unordered", {impl = "map_async", label = "map_async", set = {chunksize = 0}}},
  checks = function(r, p, check)
    for _, label in ipairs({"imap", "imap_unordered", "map_async"}) do
      local x = r[label]
      check(label .. ": every result came back", x.results == p.n and x.errors == 0,
            string.format("%d results of %d, %d errors; %.3f s, %.2f us per task, peak %.1f MiB",
                          x.results, p.n, x.errors, x.wall_s, 1e6 * x.wall_s / p.n,
                          x.peak_rss_kb / 1024))
    end
    for _, label in ipairs({"imap", "imap_unordered"}) do
      local x = r[label]
      check(label .. ": the parent's peak stays under 64 MiB (nothing kept per item)",
            x.peak_rss_kb < 64 * 1024,
            string.format("peak %.1f MiB at n=%d", x.peak_rss_kb / 1024, p.n))
    end
  end,
}
