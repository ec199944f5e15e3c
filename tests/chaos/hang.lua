-- hang.lua: a task that never ends (sleeps forever, or spins forever): the run must still end.
--
-- tests/chaos/run.sh runs it under a time limit: a task time limit or a
-- whole-run watchdog must end the stuck task with an error that names it, and
-- poolbench must exit (0 or 1, never hang). mode 1 sleeps, mode 2 spins.

return {
  name = "chaos_hang",
  summary = "a task that never ends: the run must end anyway, with that item's error",
  doc = [[n items of t_ms on `workers` processes; item k never returns
(mode 1: pb.sleep(1e6) in a loop; mode 2: an endless loop burning CPU).]],
  params = {
    n       = {default = 8,  quick = 6,  min = 1, max = 1000, doc = "items"},
    workers = {default = 2,  quick = 2,  min = 1, max = 64, doc = "pool processes"},
    t_ms    = {default = 20, quick = 10, min = 0, max = 10000, doc = "each other task, ms"},
    k       = {default = 3,  quick = 2,  min = 1, max = 1000, doc = "the item that never ends"},
    mode    = {default = 1,  quick = 1,  min = 1, max = 2, doc = "1 sleep forever, 2 spin forever"},
  },
  tasks = {
    stuck = function(x)
      if x == P.k then
        if P.mode == 1 then while true do pb.sleep(1e6) end end
        local i = 0
        while true do i = i + 1 end
      end
      pb.sleep(P.t_ms / 1000)
      return x
    end,
  },
  workload = function(p) return {items = p.n, stages = {"stuck"}} end,
  impls = {"async_get_after", "map_async", "imap", "imap_unordered", "executor_submit",
           "callback_chain", "process_per_task"},
  -- No checks here: run.sh reads the JSON (results == n), so that `--impl X`
  -- needs no other strategy's result.
}
