-- A reference solution of `poolbench lab chunk_skew --exercise`: chunks of
-- one item, so that no worker is left with the largest share.
return function(pool, items, p)
  local values = pool:map(pool.stages[1], items, 1)
  for i = 1, #items do pool:final(i, values[i]) end -- nil values: no ipairs
end
