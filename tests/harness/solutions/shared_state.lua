-- A reference solution of `poolbench lab shared_state --exercise`: no fix in
-- the strategy (the lock is in the task): counter_locked's map_async, one
-- map over every item, each value handed to pool:final.
return function(pool, items, p)
  local task = pool.stages[1]
  local ok, values = pcall(function() return pool:map_async(task, items):get() end)
  for i = 1, #items do
    if ok then pool:final(i, values[i]) else pool:final(i, nil, values) end
  end
end
