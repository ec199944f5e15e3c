-- A reference solution of `poolbench lab get_timeout --exercise`: a bounded
-- wait for the long task, then the other items; the time limit fails the
-- long one and frees its worker for them.
return function(pool, items, p)
  local task = pool.stages[1]
  local long = pool:apply_async(task, {items[1]})
  pcall(long.get, long, p.timeout_ms / 1000) -- TimeoutError: the task runs on
  local later = {}
  for i = 2, #items do later[i] = pool:apply_async(task, {items[i]}) end
  local ok, v = pcall(long.get, long, 30)
  pool:final(1, ok and v or nil, (not ok) and v or nil)
  for i = 2, #items do
    local iok, w = pcall(later[i].get, later[i], 30)
    pool:final(i, iok and w or nil, (not iok) and w or nil)
  end
end
