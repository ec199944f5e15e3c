-- A reference solution of `poolbench lab get_placement --exercise`: submit
-- every item first, then get() each handle.
return function(pool, items, p)
  local task, h = pool.stages[1], {}
  for i, item in ipairs(items) do h[i] = pool:apply_async(task, {item}) end
  for i = 1, #items do
    local ok, v = pcall(h[i].get, h[i])
    if ok then pool:final(i, v) else pool:final(i, nil, v) end
  end
end
