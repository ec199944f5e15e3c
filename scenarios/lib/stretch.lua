-- stretch.lua: how much a busy machine stretched one run's tasks, for the
-- checks that compare wall times with a model (early_stop, get_placement,
-- serialized_get, straggler).
--
-- Not a scenario: scenarios/lib/ holds what scenarios load with dofile.
-- A task that sleeps t takes t on its worker on an idle machine; on a
-- loaded one each sleep wakes late, so the tasks' time on the workers
-- (per_worker busy_s) over what they sleep is 1.0 quiet and grows with the
-- load. A check judges a run's wall time at the run's own stretch: two runs
-- a second apart on a loaded machine are not stretched alike, and a burst
-- of load during one of them must not decide the check.

-- stretch(x, sleeps_s): x a strategy's result, sleeps_s what its tasks that
-- ran on workers sleep in all; at least 1 (1 when nothing sleeps).
return function(x, sleeps_s)
  local busy = 0
  for _, w in ipairs(x.per_worker) do busy = busy + w.busy_s end
  return sleeps_s > 0 and math.max(1, busy / sleeps_s) or 1
end
