-- A reference solution of `poolbench lab serialized_get --exercise`: each
-- item's whole pipeline as one task, every item submitted, then collected.
return function(pool, items, p)
  local h = {}
  for i, item in ipairs(items) do
    h[i] = pool:apply_async(pool:pipeline(item))
  end
  for i = 1, #items do
    local ok, v = pcall(h[i].get, h[i])
    if ok then pool:final(i, v) else pool:final(i, nil, v) end
  end
end
