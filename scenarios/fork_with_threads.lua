-- fork_with_threads.lua: a worker forked while another thread of the parent holds a lock deadlocks on it; a time limit ends it, and the fork server and spawn never do it.
--
-- Beyond the documents (issue 13, item 5). fork() copies one thread, the
-- caller, and all of memory: a lock another thread held at that moment is
-- held in the child too, by a thread the child does not have, forever. The
-- child's first acquire never returns. In real programs the lock is inside
-- logging, malloc or a library; CPython 3.12 warns (DeprecationWarning:
-- "This process is multi-threaded, use of fork() may lead to deadlocks in
-- the child"), and 3.14 made forkserver the default on Linux.
--
-- Here the lock is LOG, a pb.lock() made when the file is loaded, and a
-- thread of the parent (pb.thread) holds it most of the time (hold_ms of
-- every hold_ms + gap_ms). Tasks "log" a line: take LOG, drop it. With
-- maxtasksperchild = 1 every task runs in a fresh worker, so every task is
-- a new start while the thread runs:
--   fork        a worker forked while the thread held LOG deadlocks; the
--               per-task time limit (task_timeout) kills it, the task fails
--               with TimeLimit, a new worker is started; the run goes on;
--   forkserver  the fork server was forked before the thread existed: its
--               copy of LOG is free, and so is every worker's;
--   spawn       each worker loads this file again: a fresh LOG.
-- Facts: deadlocked (tasks ended by the time limit), logged (tasks that
-- took the lock).

-- The per-task time limit: a task that takes LOG takes microseconds, so
-- anything near this is a deadlock. --task-timeout replaces it.
local LIMIT_S = 0.25

-- Made once per process that loads this file: the parent, and each spawned
-- worker. A forked worker has the parent's copy, in the state of the fork.
local LOG = pb.lock()

-- The task: "log a line", as a worker's initializer or task would with a
-- logging handler's lock.
local function log_line(i)
  LOG:acquire()
  LOG:release()
  return i
end

-- The strategy: a thread holds LOG most of the time while the tasks run one
-- after another, each in a fresh worker (maxtasksperchild = 1).
local function with_holder(pool, items, p)
  local stop = false
  local holder = pb.thread(function()
    while not stop do
      LOG:hold(p.hold_ms / 1000)
      pb.sleep(p.gap_ms / 1000)
    end
  end)
  -- The thread starts when it gets the interpreter lock: wait (bounded,
  -- sleeping, which lets it go) until it holds LOG, or the tasks could all
  -- be over before it first takes it.
  local until_t = pb.now() + 5
  while not LOG:locked() and pb.now() < until_t do pb.sleep(0.001) end
  local deadlocked, logged = 0, 0
  for i, x in ipairs(items) do
    local h = pool:apply_async("log_line", {x})
    -- Bounded: the time limit ends a deadlocked task long before.
    local ok, v = pcall(h.get, h, 10 * LIMIT_S + 5)
    if ok then logged = logged + 1
    elseif tostring(v):find("TimeLimit", 1, true) then deadlocked = deadlocked + 1 end
    pool:final(i, ok and v or nil, (not ok) and v or nil)
  end
  stop = true
  holder:join()
  pool:fact("deadlocked", deadlocked)
  pool:fact("logged", logged)
  pool:fact("tasks", #items)
  pool:note(string.format("%s: %d of %d tasks deadlocked on the lock (ended by the %g s "
                          .. "time limit), %d logged", pool.start_method, deadlocked, #items,
                          LIMIT_S, logged))
end

-- The fraction of the time the thread holds LOG: a forked worker has that
-- chance of starting with it held.
local function held(p) return p.hold_ms / (p.hold_ms + p.gap_ms) end

return {
  name = "fork_with_threads",
  source = "002_2fab88b10910dd43.txt",
  summary = "a fork while another thread holds a lock deadlocks the worker; a time limit ends it; forkserver and spawn never",
  doc = [[Beyond the documents (issue 13, item 5). A thread of the parent holds a
process-local lock (pb.lock) hold_ms of every hold_ms + gap_ms; n tasks take
and drop it, one after another, each in a fresh worker (maxtasksperchild =
1). fork: a worker forked while the lock was held deadlocks on it; the
per-task time limit (task_timeout = 0.25 s; --task-timeout replaces it) kills
it, the task fails with TimeLimit, the next worker is started: nothing
hangs. forkserver and spawn: no deadlock. Facts: deadlocked, logged. Model:
fork n * (held fraction) * the limit; the others about nothing.
bench/python/fork_with_threads.py does the same with CPython's three start
methods (a threading.Lock held by a thread; the task's acquire is bounded).]],
  params = {
    n        = {default = 8, quick = 6, min = 1, max = 1000, doc = "tasks, one per fresh worker"},
    hold_ms  = {default = 45, quick = 45, min = 1, max = 10000, doc = "the thread holds the lock this long"},
    gap_ms   = {default = 5, quick = 5, min = 1, max = 10000, doc = "then lets it go this long"},
    workers  = {default = 2, quick = 2, min = 1, max = 64, doc = "pool processes"},
    maxtasksperchild = {default = 1, quick = 1, min = 1, max = 1, doc = "a fresh worker per task"},
  },
  task_timeout = LIMIT_S,
  tasks = {log_line = log_line},
  workload = function(p)
    local items = {}
    for i = 1, p.n do items[i] = i end
    return {items = items, stages = {"log_line"}}
  end,
  strategies = {with_holder = with_holder},
  impls = {
    {impl = "with_holder", label = "fork", start_method = "fork"},
    {impl = "with_holder", label = "forkserver", start_method = "forkserver"},
    {impl = "with_holder", label = "spawn", start_method = "spawn"},
  },
  model = {
    fork = function(p) return p.n * held(p) * LIMIT_S end,
    forkserver = function(p) return p.n * 0.002 end,
    spawn = function(p) return p.n * 0.004 end,
  },
  lab = {
    title = "fork_with_threads: a lock held at the fork is held forever",
    order = 23,
    vary = {n = {4, 10, 2}, hold_ms = {20, 90, 10}},
    questions = {
      {ask = "A thread holds a lock %hold_ms ms of every %hold_ms + %gap_ms ms. %n tasks each "
             .. "take it in a freshly forked worker (start method fork); a deadlocked task is "
             .. "killed by a 0.25 s time limit. About how many deadlock?",
       answer = function(p) return p.n * held(p) end, unit = "",
       measure = "fork.facts.deadlocked"},
      {ask = "And with the fork server?",
       answer = function() return 0 end, unit = "", measure = "forkserver.facts.deadlocked"},
    },
    explain = [[fork() copies memory and the calling thread only. The lock's memory says
"held" in the child whenever the parent's thread held it at the fork, and
no thread of the child will ever release it: the worker blocks on its first
acquire. Each fresh worker is a draw: held about %hold_ms / (%hold_ms +
%gap_ms) of the time, so about that fraction of the %n tasks deadlock.
Without a time limit the pool would wait forever (CPython's Pool does); here
each is killed at the limit, fails with TimeLimit, and a new worker takes
the next task. The fork server was forked before the thread started, from a
single-threaded process: every worker copies a free lock. A spawned worker
makes its own lock when it loads the file.]],
  },
  -- The ratios the checks rely on (docs/lua-api.md, "Ratios"): the tasks
  -- that deadlocked under fork, against all of them.
  ratios = {{"fork.facts.deadlocked", "fork.facts.tasks"}},
  checks = function(r, p, check)
    local f = r.fork
    -- A worker forked while the lock is held deadlocks; with the lock held
    -- 90% of the time (by default) and n - workers forks after the thread
    -- started, at least one deadlock is all but certain, and it is all
    -- this checks. The count itself is reported.
    check("fork: workers forked while the thread held the lock deadlocked, and the time limit "
          .. "ended each one (none hung)",
          f.facts.deadlocked >= 1 and f.errors == f.facts.deadlocked
            and f.facts.deadlocked + f.facts.logged == p.n,
          string.format("%d deadlocked, %d logged, %d errors: %s", f.facts.deadlocked,
                        f.facts.logged, f.errors, tostring(f.first_error)))
    for _, m in ipairs({"forkserver", "spawn"}) do
      local x = r[m]
      check(m .. ": no worker deadlocked, every task logged",
            x.facts.deadlocked == 0 and x.facts.logged == p.n and x.errors == 0,
            string.format("%d deadlocked, %d logged", x.facts.deadlocked, x.facts.logged))
    end
  end,
}
