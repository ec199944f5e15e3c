-- A reference solution of `poolbench lab interrupt --exercise`: a bounded
-- wait, then terminate() so that nothing waits for the hung task.
return function(pool, items, p)
  local h = pool:map_async(pool.stages[1], items)
  local ok, values = pcall(h.get, h, p.timeout_ms / 1000)
  if ok then
    for i = 1, #items do pool:final(i, values[i]) end
  else
    pool:terminate()
    for i = 1, #items do pool:final(i, nil, values) end
  end
end
