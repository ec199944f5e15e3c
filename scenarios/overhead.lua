-- overhead.lua: per-task overhead depends on the API, that is on the messages per task (document 002).
--
-- Document 002 times 20 000 trivial tasks on a pool of 6 through several
-- APIs and finds map_async far ahead (0.45 s) of apply_async with a callback
-- (3.02 s) and imap (4.17 s). The work is nothing; what is timed is the
-- messages: map_async sends one per chunk (24 here), the others one per task.
-- Four APIs run twice, on the socket transport (a shared socket and a pipe per
-- worker) and on shared memory (rings, futex wake-ups only for a sleeping
-- side): the cost of one message is the medium's, the count is the API's.
return {
  name = "overhead",
  source = "002_2fab88b10910dd43.txt",
  summary = "per-task overhead depends on the API (messages per task)",
  doc = [[Phenomenon P6. n trivial tasks (the built-in square) on `workers`
processes, through every API. The task costs nothing, so the time is the
API's: time = startup + messages * cost per message. map_async cuts the input
into chunks of ceil(n/(4*w)) (834 for n=20000, w=6) and sends 24 messages;
imap, imap_unordered, apply_async (async_get_after, callback_chain),
executor_submit and executor_map at its default chunksize of 1 send one per
task; executor_map with chunksize 834 sends 24 again; apply_sync sends one
per task AND waits for each answer, so its round trips do not overlap: the
slowest by far. The cost per message is the machine's, so there is no
per-strategy model; the checks are ratios and message counts, and the report
gives the figure per task in microseconds. Document 002 (Python 2, its
machine): map_async 0.45 s, apply_async + callback 3.02 s, imap 4.17 s.
CPython 3.11 on a 2-core machine (PHENOMENA.md): map_async 0.037 s,
apply_async + callback 0.652 s, imap 0.528 s, imap_unordered 0.562 s, apply
(sync) 5.69 s; ProcessPoolExecutor submit + as_completed 2.31 s, map
(chunksize=1) 2.08 s, map (chunksize=834) 0.024 s. The quick run uses
n=10000 (executor_map_c834 then sends 12 messages). With tasks this short the
first worker to read the queue often takes most of the chunks (P8).

Three ways to move a message (issue 14): apply_sync, callback_chain,
map_async and imap run on the socket transport (pinned: their labels), and
again on the shared-memory transport (the labels ending in _shm: rings in
one MAP_SHARED segment, a futex or doorbell wake-up only when a side sleeps,
so a busy stream of messages makes no system call at all). The counts of
messages are the same; what one costs is not. CPython's twin runs its one
medium (pickled messages through pipes, a task-handler and a result-handler
thread) under both labels, so `poolbench compare` and `bench/overhead` put
the three side by side.]],
  params = {
    n         = {default = 20000, quick = 10000, min = 1, max = 10000000, doc = "trivial tasks"},
    workers   = {default = 6, quick = 6, min = 1, max = 64, doc = "pool processes"},
    chunksize = {default = 0, quick = 0, min = 0, max = 10000000,
                 doc = "chunk size of map/imap/executor map (0: the API's default)"},
  },
  workload = function(p) return {items = p.n, stages = {"square"}} end,
  impls = {{impl = "apply_sync", label = "apply_sync", transport = "socket"},
           "async_get_after",
           {impl = "callback_chain", label = "callback_chain", transport = "socket"},
           {impl = "map_async", label = "map_async", transport = "socket"},
           {impl = "imap", label = "imap", transport = "socket"},
           "imap_unordered", "executor_submit",
           {impl = "executor_map", label = "executor_map_c1", set = {chunksize = 1}},
           -- 834: map_async's default for n=20000 on 6 workers, as CPython's run.
           {impl = "executor_map", label = "executor_map_c834", set = {chunksize = 834}},
           -- The same four on the shared-memory transport (issue 14).
           {impl = "apply_sync", label = "apply_sync_shm", transport = "shm"},
           {impl = "callback_chain", label = "callback_chain_shm", transport = "shm"},
           {impl = "map_async", label = "map_async_shm", transport = "shm"},
           {impl = "imap", label = "imap_shm", transport = "shm"}},
  -- The classroom lab: `poolbench lab overhead` (docs/labs/04-overhead.md).
  lab = {
    -- The exercise "write the fix" (`poolbench lab overhead --exercise`).
    exercise = {
      reference = "map_async",
      task = [[Each tiny task costs a message out and a message back, more than the
task itself. Send the items in chunks: pool:map (or map_async) with a
chunksize (nil picks CPython's default, ceil(n / (4 * workers))), then
report each value with pool:final(i, value).]],
      skeleton = [[
return function(pool, items, p)
  local task = pool.stages[1]
  for i, item in ipairs(items) do
    -- TODO: one message per task: replace this loop with chunks
    pool:final(i, pool:apply(task, {item}))
  end
end
]],
    },
    title = "per-task overhead: count the messages",
    order = 4,
    vary = {n = {4000, 20000, 2000}, workers = {2, 8}},
    questions = {
      {ask = "%n trivial tasks on %workers workers through map_async, whose default chunksize "
             .. "is ceil(n/(4*workers)). How many task messages does it send?",
       answer = function(p) return math.ceil(p.n / math.ceil(p.n / (4 * p.workers))) end,
       measure = "map_async.messages_sent"},
      {ask = "imap, chunksize 1 by default. How many task messages?",
       answer = function(p) return p.n end, measure = "imap.messages_sent"},
      {ask = "The work costs nothing. If one message costs 10 microseconds, how long does "
             .. "imap take?",
       answer = function(p) return p.n * 10e-6 end, unit = "s", measure = "imap"},
      {ask = "apply() in a loop waits for each answer before it sends the next task: a round "
             .. "trip of about 60 microseconds. How long?",
       answer = function(p) return p.n * 60e-6 end, unit = "s", measure = "apply_sync"},
      {ask = "The same imap on the shared-memory transport (imap_shm): while both sides are "
             .. "busy a message costs two copies and no system call, say 1.5 microseconds. "
             .. "How long?",
       answer = function(p) return p.n * 1.5e-6 end, unit = "s", measure = "imap_shm"},
    },
    explain = [[With trivial tasks the time is the API's: startup + messages *
cost per message. map_async cuts the %n items into chunks of ceil(n/(4*w)) =
ceil(%n/(4*%workers)) and sends one message per chunk, 4*w messages or
fewer; imap, imap_unordered, apply_async and executor submit send one per
task, %n. apply() also waits for each answer, so its round trips cannot
overlap with each other or with the workers: the slowest by far. The costs
per message (10 and 60 microseconds) are this project's machine's; the run
shows yours, and the scenario prints them per task and per message. The
medium sets the cost of one message: the socket transport pays a system call
and a wake-up per message on each side; the shared-memory one copies into a
ring and wakes a side only when it sleeps, so a stream of %n messages costs
a few microseconds each or less (CPython: pickling, a task-handler thread, a
locked pipe and a result-handler thread, all under one GIL).]],
  },
  -- The ratios the checks rely on, for `poolbench compare` (docs/lua-api.md, "Ratios"); the
  -- first is the key ratio: imap / map_async: "map_async at least 3x cheaper than imap";
  -- Executor.map chunksize 1 / 834; apply / apply_async.
  ratios = {{"imap", "map_async"}, {"executor_map_c1", "executor_map_c834"},
            {"apply_sync", "async_get_after"}, {"imap", "callback_chain"}},
  checks = function(r, p, check)
    local labels = {"apply_sync", "async_get_after", "callback_chain", "map_async", "imap",
                    "imap_unordered", "executor_submit", "executor_map_c1", "executor_map_c834"}
    local function us(x) return 1e6 * x.wall_s / p.n end
    for _, label in ipairs(labels) do
      local x = r[label]
      check(label .. " ran every task",
            x.results == p.n and x.errors == 0 and x.tasks_run == p.n,
            string.format("%d results, %d errors; %.3f s = %.2f us per task; %d messages sent",
                          x.results, x.errors, x.wall_s, us(x), x.messages_sent))
    end
    -- The messages are the model's variable: count them.
    local m, i = r.map_async, r.imap
    local chunk = p.chunksize > 0 and p.chunksize or math.ceil(p.n / (4 * p.workers))
    check("map_async sends one message per chunk, imap one per task",
          m.messages_sent == math.ceil(p.n / chunk) and i.messages_sent == p.n,
          string.format("map_async %d (chunksize %d), imap %d, for %d tasks",
                        m.messages_sent, chunk, i.messages_sent, p.n))
    -- The messages cost the parent CPU (pack, send, wake, read, unpack), so
    -- the check counts cpu_s, which a descheduled worker does not inflate:
    -- map_async's wall time is a few big chunks and jumped from 5 ms to
    -- 30-76 ms in 1 run of 4 at a load of 5 on 2 cores, its CPU did not.
    -- Measured quiet: CPU 8.2x, wall 8.5x. The wall ratio is printed.
    check("map_async at least 3x cheaper than imap (the parent's CPU: the messages)",
          i.cpu_s >= 3 * m.cpu_s,
          string.format("CPU %.3f s vs %.3f s: %.1fx; wall %.3f s vs %.3f s: %.1fx (%d vs %d "
                        .. "messages)", m.cpu_s, i.cpu_s, i.cpu_s / math.max(m.cpu_s, 1e-6),
                        m.wall_s, i.wall_s, i.wall_s / m.wall_s, m.messages_sent,
                        i.messages_sent))
    local c1, c834 = r.executor_map_c1, r.executor_map_c834
    -- 2x, not 3x: both are short (tens of ms), and one scheduling delay
    -- of the 24-message run halves the ratio.
    check("executor_map: chunksize 834 at least 2x faster than chunksize 1",
          c1.wall_s >= 2 * c834.wall_s,
          string.format("%.3f s vs %.3f s: %.1fx (CPython 2.08 s vs 0.024 s)", c834.wall_s,
                        c1.wall_s, c1.wall_s / c834.wall_s))
    -- The shared-memory twins: the same work and the same messages, another medium.
    for _, label in ipairs({"apply_sync", "callback_chain", "map_async", "imap"}) do
      local x, y = r[label], r[label .. "_shm"]
      check(label .. "_shm ran every task, with as many messages as " .. label,
            y.results == p.n and y.errors == 0 and y.tasks_run == p.n
              and y.messages_sent == x.messages_sent,
            string.format("%d results, %d errors; %.2f us per task against %.2f on the socket; "
                          .. "%d messages sent", y.results, y.errors, us(y), us(x),
                          y.messages_sent))
    end
    -- On an MPI job (--transport mpi, docs/mpi.md) every pool is on MPI,
    -- pinned or not: rank 0 must not fork. Then all four say mpi.
    local on_mpi = r.imap_shm.transport == "mpi" and r.apply_sync_shm.transport == "mpi"
                   and r.imap.transport == "mpi" and r.apply_sync.transport == "mpi"
    check("the _shm variants ran on shared memory, the others named on the socket",
          (r.imap_shm.transport == "shm" and r.apply_sync_shm.transport == "shm"
            and r.imap.transport == "socket" and r.apply_sync.transport == "socket") or on_mpi,
          string.format("imap %s, imap_shm %s", tostring(r.imap.transport),
                        tostring(r.imap_shm.transport)))
    local a, next_label, next_s = r.apply_sync, nil, 0
    for _, label in ipairs(labels) do
      if label ~= "apply_sync" and r[label].wall_s > next_s then
        next_label, next_s = label, r[label].wall_s
      end
    end
    check("apply_sync is the slowest",
          a.wall_s > next_s,
          string.format("%.3f s (%.1f us per task); next %s %.3f s: %.1fx (CPython: apply 5.69 s); "
                        .. "%d cores", a.wall_s, us(a), next_label, next_s, a.wall_s / next_s,
                        a.cores))
  end,
  -- The figures per task, next to CPython's when the run is the document's.
  done = function(report)
    local cpython = {apply_sync = 5.69, callback_chain = 0.652, map_async = 0.037,
                     imap = 0.528, imap_unordered = 0.562, executor_submit = 2.31,
                     executor_map_c1 = 2.08, executor_map_c834 = 0.024}
    local p = report.params
    local same = p.n == 20000 and p.workers == 6
    print(string.format("per task (n=%d, %d workers, %d cores)%s:", p.n, p.workers,
                        report.machine.cores,
                        same and "; CPython 3.11 on 2 cores from PHENOMENA.md" or ""))
    for _, x in ipairs(report.results) do
      local c = same and cpython[x.label]
      print(string.format("  %-18s %8.3f s  %8.2f us/task  %6d messages  %8.2f us/message%s",
                          x.label, x.wall_s, 1e6 * x.wall_s / p.n, x.messages_sent,
                          1e6 * x.wall_s / math.max(1, x.messages_sent),
                          c and string.format("   CPython %.3f s = %.1f us/task", c, 1e6 * c / p.n)
                            or ""))
    end
    -- Three ways to move a message: CPython's pipes, the socket, shared memory.
    local by = {}
    for _, x in ipairs(report.results) do by[x.label] = x end
    print("one message, three media (us per task; `poolbench compare` or bench/overhead "
          .. "measure CPython in the same run):")
    for _, label in ipairs({"apply_sync", "callback_chain", "map_async", "imap"}) do
      local s, m = by[label], by[label .. "_shm"]
      if s and m then
        local c = same and cpython[label]
        print(string.format("  %-14s socket %8.2f  shm %8.2f  socket/shm %5.1fx%s", label,
                            1e6 * s.wall_s / p.n, 1e6 * m.wall_s / p.n, s.wall_s / m.wall_s,
                            c and string.format("  CPython %.1f (quoted)", 1e6 * c / p.n) or ""))
      end
    end
  end,
}
